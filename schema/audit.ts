import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { appNamed, badUserInput } from './errors.js';
import { InvalidInputError } from '../src/phone/errors.js';
import { checkNoticeVersion, checkPurpose, resolveApp } from '../src/phone/input.js';
import type { AuditRecord } from '../src/consent/audit-record.js';
import type { GraphQLContext } from './context.js';

export const AuditRecordRef = builder.objectRef<AuditRecord>('AuditRecord').implement({
  description: 'One entry of an app\'s consent log (hash-chained). Personal fields are null after erasure.',
  fields: (t) => ({
    id: t.exposeID('id'),
    appid: t.exposeString('appid'),
    seq: t.exposeInt('seq'),
    kind: t.string({ description: 'exchange, withdrawal, consent, erasure or checkpoint', resolve: (r) => r.kind }),
    flow: t.string({ nullable: true, resolve: (r) => r.flow }),
    purpose: t.exposeString('purpose', { nullable: true }),
    noticeVersion: t.exposeString('noticeVersion', { nullable: true }),
    requestId: t.exposeString('requestId', { nullable: true }),
    outcome: t.string({ nullable: true, description: 'disclosed, replayed or refused', resolve: (r) => r.outcome }),
    errorCode: t.exposeString('errorCode', { nullable: true }),
    subjectHash: t.exposeString('subjectHash', { nullable: true, description: 'Keyed hash of the openid.' }),
    maskedPhone: t.exposeString('maskedPhone', { nullable: true, description: 'e.g. 138****8000; never the number.' }),
    phoneHash: t.exposeString('phoneHash', { nullable: true, description: 'Keyed hash of the number.' }),
    detail: t.exposeString('detail', { nullable: true, description: 'JSON, for withdrawals, erasures and checkpoints.' }),
    at: t.field({ type: DateTime, resolve: (r) => r.at }),
    erasedAt: t.field({ type: DateTime, nullable: true, resolve: (r) => r.erasedAt }),
    prevHash: t.exposeString('prevHash'),
    hash: t.exposeString('hash'),
  }),
});

const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
  fields: (t) => ({ hasNextPage: t.exposeBoolean('hasNextPage'), endCursor: t.exposeString('endCursor', { nullable: true }) }),
});
const Edge = builder.objectRef<{ node: AuditRecord; cursor: string }>('AuditRecordEdge').implement({
  fields: (t) => ({ cursor: t.exposeString('cursor'), node: t.field({ type: AuditRecordRef, resolve: (e) => e.node }) }),
});
const Connection = builder.objectRef<{ edges: { node: AuditRecord; cursor: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }>('AuditRecordConnection').implement({
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
  if (!m) throw badUserInput('invalid cursor');
  return Number(m[1]);
}

/** A subject named by openid is hashed here, so internal tools never store openids to search by. */
function subjectHash(ctx: GraphQLContext, subject: string | null | undefined, hash: string | null | undefined): string | null {
  if (subject && hash) throw badUserInput('give subject or subjectHash, not both');
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
      if (appid) appNamed(ctx.services.apps, appid);
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
      appNamed(ctx.services.apps, a.appid);
      const first = a.first ?? 50;
      if (first < 1 || first > 500) throw badUserInput('first must be between 1 and 500');
      const page = await ctx.services.audit.page(
        { appid: a.appid, subjectHash: subjectHash(ctx, a.subject, a.subjectHash), purpose: a.purpose ?? null, from: a.from ?? null, to: a.to ?? null },
        first,
        a.after ? seqOf(a.after) : null,
      );
      const edges = page.records.map((node) => ({ node, cursor: cursorOf(node.seq) }));
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
      appNamed(ctx.services.apps, a.appid);
      const hash = subjectHash(ctx, a.subject, a.subjectHash);
      if (!hash) throw badUserInput('give subject (an openid) or subjectHash');
      return ctx.services.audit.erase(a.appid, hash);
    },
  }),
}));
