import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { appNamed, badUserInput } from './errors.js';
import { InvalidInputError } from '../src/phone/errors.js';
import { checkNoticeVersion, checkPurpose, resolveApp } from '../src/phone/input.js';
import type { AuditRecord } from '../src/consent/audit-record.js';
import type { GraphQLContext } from './context.js';
import { NodeInterface, registerNode } from './node.js';
import { AuditRecordKindEnum, ExchangeFlowEnum, ExchangeOutcomeEnum, auditKindName, errorCodeName, flowName, outcomeName } from './enums.js';
import { ExchangeErrorCodeEnum } from './errors.js';

export const AuditRecordRef = builder.objectRef<AuditRecord>('AuditRecord').implement({
  description: "One entry of an app's consent log (hash-chained). Personal fields are null after erasure.",
  interfaces: [NodeInterface],
  fields: (t) => ({
    recordId: t.exposeString('id', { description: "The record's key in the consent log (what verifyAuditChain's firstBrokenId names)." }),
    appid: t.exposeString('appid', { description: 'The app whose log holds it.' }),
    seq: t.exposeInt('seq', { description: "Position in the app's chain, from 1." }),
    kind: t.field({ type: AuditRecordKindEnum, description: 'What the record records.', resolve: (r) => auditKindName(r.kind) }),
    flow: t.field({ type: ExchangeFlowEnum, nullable: true, description: 'For EXCHANGE records: which flow; null for the other kinds.', resolve: (r) => (r.flow ? flowName(r.flow) : null) }),
    purpose: t.exposeString('purpose', { nullable: true, description: 'The consent purpose; null for erasures and checkpoints (and for a withdrawal of several, see detail).' }),
    noticeVersion: t.exposeString('noticeVersion', { nullable: true, description: 'The privacy notice the user was shown, when the client said.' }),
    requestId: t.exposeString('requestId', { nullable: true, description: 'The request that wrote it (X-Request-Id), for finding its logs.' }),
    outcome: t.field({ type: ExchangeOutcomeEnum, nullable: true, description: 'For EXCHANGE records: how it ended.', resolve: (r) => outcomeName(r.outcome) }),
    errorCode: t.field({ type: ExchangeErrorCodeEnum, nullable: true, description: 'For a REFUSED exchange: why.', resolve: (r) => errorCodeName(r.errorCode) }),
    subjectHash: t.exposeString('subjectHash', { nullable: true, description: 'Keyed hash of the openid.' }),
    maskedPhone: t.exposeString('maskedPhone', { nullable: true, description: 'e.g. 138****8000; never the number.' }),
    phoneHash: t.exposeString('phoneHash', { nullable: true, description: 'Keyed hash of the number.' }),
    detail: t.exposeString('detail', { nullable: true, description: 'JSON, for withdrawals, erasures and checkpoints.' }),
    at: t.field({ type: DateTime, description: 'When it was recorded.', resolve: (r) => r.at }),
    erasedAt: t.field({ type: DateTime, nullable: true, description: 'When its personal fields were erased; null unless they were.', resolve: (r) => r.erasedAt }),
    prevHash: t.exposeString('prevHash', { description: "The previous record's hash (the link the chain verifies)." }),
    hash: t.exposeString('hash', { description: "This record's hash over its content and prevHash." }),
  }),
});

registerNode<AuditRecord>('AuditRecord', {
  keyParts: 2,
  key: (r) => [r.appid, r.id],
  scope: 'audit:read',
  load: async ([appid, id], ctx) => (ctx.services.apps.has(appid!) ? ((await ctx.services.auditLookup.byIds(appid!, [id!]))[0] ?? null) : null),
});

interface Page {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

const PageInfo = builder.objectRef<Page>('PageInfo').implement({
  description: 'Where a page of a connection stands (Relay cursor connections).',
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage', { description: 'More records follow endCursor.' }),
    hasPreviousPage: t.exposeBoolean('hasPreviousPage', { description: 'Records come before startCursor: true when the page started after a cursor (pages only go forward).' }),
    startCursor: t.exposeString('startCursor', { nullable: true, description: "The first edge's cursor; null on an empty page." }),
    endCursor: t.exposeString('endCursor', { nullable: true, description: "The last edge's cursor (pass it as after); null on an empty page." }),
  }),
});
const Edge = builder.objectRef<{ node: AuditRecord; cursor: string }>('AuditRecordEdge').implement({
  description: 'A consent record in a page, with its cursor.',
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'Opaque: pass it as after to read on from this record.' }),
    node: t.field({ type: AuditRecordRef, description: 'The record.', resolve: (e) => e.node }),
  }),
});
const Connection = builder.objectRef<{ edges: { node: AuditRecord; cursor: string }[]; pageInfo: Page }>('AuditRecordConnection').implement({
  description: 'A page of consent records, in chain order.',
  fields: (t) => ({
    edges: t.field({ type: [Edge], description: 'The records of the page.', resolve: (c) => c.edges }),
    pageInfo: t.field({ type: PageInfo, description: 'Where the page stands.', resolve: (c) => c.pageInfo }),
  }),
});

const Verification = builder.objectRef<{ ok: boolean; checked: number; firstBrokenId: string | null; appid?: string | null }>('AuditChainVerification').implement({
  description: "The result of walking a consent log's hash chain.",
  fields: (t) => ({
    ok: t.exposeBoolean('ok', { description: 'Every link and every record verified.' }),
    checked: t.exposeInt('checked', { description: 'Records verified.' }),
    firstBrokenId: t.exposeString('firstBrokenId', { nullable: true, description: 'The recordId of the first record whose link or content does not verify.' }),
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
    nullable: true,
    description: "Walks the consent log's hash chain (one app's, or every app's) and reports the first broken link.",
    authScopes: { scope: 'audit:read' },
    args: { appid: t.arg.string({ required: false, description: "One app's chain; every app's when absent." }) },
    resolve: (_r, { appid }, ctx) => {
      if (appid) appNamed(ctx.services.apps, appid);
      return ctx.services.audit.verify(appid);
    },
  }),
  auditRecords: t.field({
    type: Connection,
    nullable: true,
    description: 'Consent records of an app, in chain order, filtered by subject, purpose and time (Relay cursor pages, forward only).',
    authScopes: { scope: 'audit:read' },
    args: {
      appid: t.arg.string({ description: 'The app whose log to read.' }),
      subject: t.arg.string({ required: false, description: 'An openid: hashed by the gateway, never stored.' }),
      subjectHash: t.arg.string({ required: false, description: 'A subject by its keyed hash (as records show it); not with subject.' }),
      purpose: t.arg.string({ required: false, description: 'Only records of this purpose.' }),
      from: t.arg({ type: DateTime, required: false, description: 'Only records at or after this instant.' }),
      to: t.arg({ type: DateTime, required: false, description: 'Only records before this instant.' }),
      first: t.arg.int({ required: false, defaultValue: 50, description: 'Page size, 1 to 500.' }),
      after: t.arg.string({ required: false, description: "A cursor (pageInfo.endCursor): the page starts after it." }),
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
      return {
        edges,
        pageInfo: { hasNextPage: page.hasNextPage, hasPreviousPage: Boolean(a.after), startCursor: edges[0]?.cursor ?? null, endCursor: edges.at(-1)?.cursor ?? null },
      };
    },
  }),
}));

const Withdrawn = builder.objectRef<{ purposes: string[]; answersDeleted: number }>('ConsentWithdrawn').implement({
  description: 'Consent is withdrawn: exchanges for these purposes are refused (CONSENT_WITHDRAWN) until giveConsent.',
  fields: (t) => ({
    purposes: t.exposeStringList('purposes', { description: 'The purposes withdrawn.' }),
    answersDeleted: t.exposeInt('answersDeleted', { description: 'Stored replay answers deleted at once.' }),
  }),
});
const Given = builder.objectRef<{ purpose: string }>('ConsentGiven').implement({
  description: 'Consent is given again: exchanges for the purpose are accepted.',
  fields: (t) => ({ purpose: t.exposeString('purpose', { description: 'The purpose consented to.' }) }),
});
const Erased = builder.objectRef<{ records: number }>('SubjectErased').implement({
  description: "The subject's personal data is erased; the chain still verifies.",
  fields: (t) => ({ records: t.exposeInt('records', { description: 'Consent records whose personal fields were redacted.' }) }),
});

const WithdrawConsentInput = builder.inputType('WithdrawConsentInput', {
  description: 'What the user withdraws.',
  fields: (t) => ({
    appid: t.string({ required: false, description: "The mini program; defaults to the session token's appid." }),
    purposes: t.stringList({ required: false, description: 'The purposes withdrawn; every configured purpose when absent or empty.' }),
  }),
});

const GiveConsentInput = builder.inputType('GiveConsentInput', {
  description: 'The consent the user gives again.',
  fields: (t) => ({
    appid: t.string({ required: false, description: "The mini program; defaults to the session token's appid." }),
    purpose: t.string({ description: "One of the app's configured purposes." }),
    noticeVersion: t.string({ required: false, description: 'The privacy notice the user was shown.' }),
  }),
});

const EraseSubjectInput = builder.inputType('EraseSubjectInput', {
  description: 'Whose personal data to erase: a subject by openid or by its keyed hash (one of the two).',
  fields: (t) => ({
    appid: t.string({ description: 'The app whose records to erase from.' }),
    subject: t.string({ required: false, description: 'An openid: hashed by the gateway, never stored.' }),
    subjectHash: t.string({ required: false, description: 'The keyed hash, as records show it.' }),
  }),
});

builder.mutationFields((t) => ({
  withdrawConsent: t.field({
    type: Withdrawn,
    description: "The session's user withdraws consent for the app (for the given purposes, or all): stored answers are deleted at once.",
    nullable: true,
    authScopes: { scope: 'phone:exchange' },
    args: { input: t.arg({ type: WithdrawConsentInput, required: false, description: 'What to withdraw; everything of the token\'s app when absent.' }) },
    errors: { types: [InvalidInputError], union: { name: 'WithdrawConsentResult', description: 'The withdrawal, or why the input was refused.' } },
    resolve: async (_r, { input }, ctx) => {
      const a = input ?? {};
      const app = resolveApp(ctx.session, a.appid, ctx.services.apps);
      const purposes = a.purposes?.length ? a.purposes.map((p) => checkPurpose(p, app)) : [...app.purposes];
      const hash = ctx.services.audit.subjectHashOf(ctx.session.issuer, ctx.session.subject);
      return ctx.services.audit.withdraw(app.appid, hash, purposes, { requestId: ctx.requestId });
    },
  }),
  giveConsent: t.field({
    type: Given,
    description: 'The user consents again to a purpose after a withdrawal (recorded with the notice shown).',
    nullable: true,
    authScopes: { scope: 'phone:exchange' },
    args: { input: t.arg({ type: GiveConsentInput, description: 'The consent.' }) },
    errors: { types: [InvalidInputError], union: { name: 'GiveConsentResult', description: 'The consent recorded, or why the input was refused.' } },
    resolve: async (_r, { input: a }, ctx) => {
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
    nullable: true,
    authScopes: { scope: 'audit:admin' },
    args: { input: t.arg({ type: EraseSubjectInput, description: 'Whose data.' }) },
    resolve: (_r, { input: a }, ctx) => {
      appNamed(ctx.services.apps, a.appid);
      const hash = subjectHash(ctx, a.subject, a.subjectHash);
      if (!hash) throw badUserInput('give subject (an openid) or subjectHash');
      return ctx.services.audit.erase(a.appid, hash);
    },
  }),
}));
