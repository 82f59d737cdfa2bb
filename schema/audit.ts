import { createGraphQLError } from 'graphql-yoga';
import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { requireApp } from './quota.js';
import { InvalidInputError } from '../src/phone/errors.js';
import { checkPurpose, resolveApp } from '../src/phone/input.js';
import type { AuditRecordsTable } from '../src/store/schema.js';
import type { GraphQLContext } from './context.js';

export const AuditRecordRef = builder.objectRef<AuditRecordsTable>('AuditRecord').implement({
  description: 'One entry of an app\'s consent log (hash-chained). Personal fields are null after erasure.',
  fields: (t) => ({
    id: t.exposeID('id'),
    appid: t.exposeString('appid'),
    seq: t.int({ resolve: (r) => Number(r.seq) }),
    kind: t.string({ description: 'exchange, withdrawal, consent, erasure or checkpoint', resolve: (r) => r.kind }),
    flow: t.string({ nullable: true, resolve: (r) => r.flow }),
    purpose: t.exposeString('purpose', { nullable: true }),
    noticeVersion: t.string({ nullable: true, resolve: (r) => r.notice_version }),
    requestId: t.string({ nullable: true, resolve: (r) => r.request_id }),
    outcome: t.string({ nullable: true, description: 'disclosed, replayed or refused', resolve: (r) => r.outcome }),
    errorCode: t.string({ nullable: true, resolve: (r) => r.error_code }),
    subjectHash: t.string({ nullable: true, description: 'Keyed hash of the openid.', resolve: (r) => r.subject_hash }),
    maskedPhone: t.string({ nullable: true, description: 'e.g. 138****8000; never the number.', resolve: (r) => r.masked_phone }),
    phoneHash: t.string({ nullable: true, description: 'Keyed hash of the number.', resolve: (r) => r.phone_hash }),
    detail: t.string({ nullable: true, description: 'JSON, for withdrawals, erasures and checkpoints.', resolve: (r) => r.detail }),
    at: t.field({ type: DateTime, resolve: (r) => r.at }),
    erasedAt: t.field({ type: DateTime, nullable: true, resolve: (r) => r.erased_at }),
    prevHash: t.string({ resolve: (r) => r.prev_hash }),
    hash: t.exposeString('hash'),
  }),
});

const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
  fields: (t) => ({ hasNextPage: t.exposeBoolean('hasNextPage'), endCursor: t.exposeString('endCursor', { nullable: true }) }),
});
const Edge = builder.objectRef<{ node: AuditRecordsTable; cursor: string }>('AuditRecordEdge').implement({
  fields: (t) => ({ cursor: t.exposeString('cursor'), node: t.field({ type: AuditRecordRef, resolve: (e) => e.node }) }),
});
const Connection = builder.objectRef<{ edges: { node: AuditRecordsTable; cursor: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }>('AuditRecordConnection').implement({
  fields: (t) => ({
    edges: t.field({ type: [Edge], resolve: (c) => c.edges }),
    pageInfo: t.field({ type: PageInfo, resolve: (c) => c.pageInfo }),
  }),
});

const Verification = builder.objectRef<{ ok: boolean; checked: number; firstBrokenId: string | null }>('AuditChainVerification').implement({
  fields: (t) => ({
    ok: t.exposeBoolean('ok'),
    checked: t.exposeInt('checked', { description: 'Records verified.' }),
    firstBrokenId: t.exposeString('firstBrokenId', { nullable: true, description: 'The first record whose link or content does not verify.' }),
  }),
});

const cursorOf = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');
function seqOf(cursor: string): number {
  const m = /^seq:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw createGraphQLError('invalid cursor', { extensions: { code: 'BAD_USER_INPUT' } });
  return Number(m[1]);
}

/** A subject named by openid is hashed here, so internal tools never store openids to search by. */
function subjectHash(ctx: GraphQLContext, subject: string | null | undefined, hash: string | null | undefined): string | null {
  if (subject && hash) throw createGraphQLError('give subject or subjectHash, not both', { extensions: { code: 'BAD_USER_INPUT' } });
  if (subject) return ctx.services.audit.subjectHashOf(ctx.services.issuer, subject);
  return hash ?? null;
}

builder.queryFields((t) => ({
  verifyAuditChain: t.field({
    type: Verification,
    description: "Walks the consent log's hash chain (one app's, or every app's) and reports the first broken link.",
    authScopes: { scope: 'audit:read' },
    args: { appid: t.arg.string({ required: false }) },
    resolve: (_r, { appid }, ctx) => {
      if (appid) requireApp(ctx.services.apps, appid);
      return ctx.services.audit.verify(appid);
    },
  }),
  auditRecords: t.field({
    type: Connection,
    description: 'Consent records of an app, in chain order, filtered by subject, purpose and time (Relay-style pages).',
    authScopes: { scope: 'audit:read' },
    args: {
      appid: t.arg.string(),
      subject: t.arg.string({ required: false, description: 'An openid: hashed by the gateway, never stored.' }),
      subjectHash: t.arg.string({ required: false }),
      purpose: t.arg.string({ required: false }),
      from: t.arg({ type: DateTime, required: false }),
      to: t.arg({ type: DateTime, required: false }),
      first: t.arg.int({ required: false, defaultValue: 50 }),
      after: t.arg.string({ required: false }),
    },
    resolve: async (_r, a, ctx) => {
      requireApp(ctx.services.apps, a.appid);
      const first = a.first ?? 50;
      if (first < 1 || first > 500) throw createGraphQLError('first must be between 1 and 500', { extensions: { code: 'BAD_USER_INPUT' } });
      const page = await ctx.services.audit.page(
        { appid: a.appid, subjectHash: subjectHash(ctx, a.subject, a.subjectHash), purpose: a.purpose ?? null, from: a.from ?? null, to: a.to ?? null },
        first,
        a.after ? seqOf(a.after) : null,
      );
      const edges = page.records.map((node) => ({ node, cursor: cursorOf(Number(node.seq)) }));
      return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
    },
  }),
}));

const Withdrawn = builder.objectRef<{ purposes: string[]; answersDeleted: number }>('ConsentWithdrawn').implement({
  fields: (t) => ({
    purposes: t.exposeStringList('purposes'),
    answersDeleted: t.exposeInt('answersDeleted', { description: 'Stored replay answers deleted at once.' }),
  }),
});
const Given = builder.objectRef<{ purpose: string }>('ConsentGiven').implement({ fields: (t) => ({ purpose: t.exposeString('purpose') }) });
const Erased = builder.objectRef<{ records: number }>('SubjectErased').implement({
  fields: (t) => ({ records: t.exposeInt('records', { description: 'Consent records whose personal fields were redacted.' }) }),
});

builder.mutationFields((t) => ({
  withdrawConsent: t.field({
    type: Withdrawn,
    description: "The session's user withdraws consent for the app (for the given purposes, or all): stored answers are deleted at once.",
    authScopes: { scope: 'phone:exchange' },
    args: { appid: t.arg.string({ required: false }), purposes: t.arg.stringList({ required: false }) },
    errors: { types: [InvalidInputError], union: { name: 'WithdrawConsentResult' } },
    resolve: async (_r, a, ctx) => {
      const app = resolveApp(ctx.session, a.appid, ctx.services.apps);
      const purposes = a.purposes?.length ? a.purposes.map((p) => checkPurpose(p, app)) : [...app.purposes];
      const hash = ctx.services.audit.subjectHashOf(ctx.session.issuer, ctx.session.subject);
      return ctx.services.audit.withdraw(app.appid, hash, purposes, { requestId: ctx.requestId });
    },
  }),
  giveConsent: t.field({
    type: Given,
    description: 'The user consents again to a purpose after a withdrawal (recorded with the notice shown).',
    authScopes: { scope: 'phone:exchange' },
    args: { appid: t.arg.string({ required: false }), purpose: t.arg.string(), noticeVersion: t.arg.string({ required: false }) },
    errors: { types: [InvalidInputError], union: { name: 'GiveConsentResult' } },
    resolve: async (_r, a, ctx) => {
      const app = resolveApp(ctx.session, a.appid, ctx.services.apps);
      const purpose = checkPurpose(a.purpose, app);
      const hash = ctx.services.audit.subjectHashOf(ctx.session.issuer, ctx.session.subject);
      await ctx.services.audit.giveConsent(app.appid, hash, purpose, { noticeVersion: checkNoticeVersion(a.noticeVersion), requestId: ctx.requestId });
      return { purpose };
    },
  }),
  eraseSubject: t.field({
    type: Erased,
    description: "Erases a subject's personal data from the app's consent records, stored answers and reports; the chain still verifies.",
    authScopes: { scope: 'audit:admin' },
    args: { appid: t.arg.string(), subject: t.arg.string({ required: false }), subjectHash: t.arg.string({ required: false }) },
    resolve: (_r, a, ctx) => {
      requireApp(ctx.services.apps, a.appid);
      const hash = subjectHash(ctx, a.subject, a.subjectHash);
      if (!hash) throw createGraphQLError('give subject (an openid) or subjectHash', { extensions: { code: 'BAD_USER_INPUT' } });
      return ctx.services.audit.erase(a.appid, hash);
    },
  }),
}));

/** The notice the user was shown (e.g. "privacy-2026-03"): short plain text, recorded as given. */
export function checkNoticeVersion(v: string | null | undefined): string | null {
  if (v == null) return null;
  if (!/^[\x21-\x7e]{1,64}$/.test(v)) throw new InvalidInputError('noticeVersion must be 1 to 64 printable ASCII characters', 'noticeVersion');
  return v;
}
