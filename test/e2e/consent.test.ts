import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';
import { createGatewayClient, type GatewayClient } from '../../sdk/client.js';
import { ConsentAudit } from '../../src/consent/audit.js';
import { consentChainStore } from '../../src/store/consent-chain/index.js';
import { ClaimStore } from '../../src/phone/claims.js';
import { consentWithdrawnError } from '../../src/phone/errors.js';
import { maskPhone } from '../../src/crypto/keys.js';

describe.each(BACKENDS)('consent audit, withdrawal, erasure and verification tokens ($name)', (backend) => {
  let t: TestGateway;
  let auditor: GatewayClient;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
    auditor = await t.client('svc_dpo', { scopes: ['audit:read', 'audit:admin'] });
  });
  afterAll(() => t?.close());

  const records = async (subject?: string) =>
    (await auditor.AuditRecords({ appid: APP, first: 500, ...(subject ? { subject } : {}) })).auditRecords.edges.map((e) => e.node);

  it('every exchange leaves one record: who, why, under which notice, which request, what came of it — never the number', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const jwt = await t.token('o_audited');
    const client = createGatewayClient({ url: t.url, token: jwt, headers: { 'x-request-id': 'req-audit-1' } });
    const r = await client.ExchangePhoneCode({ input: { code, purpose: 'order-contact', noticeVersion: 'privacy-2026-03' } });
    expect(r.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    await client.ExchangePhoneCode({ input: { code, purpose: 'order-contact' } }); // replay
    await (await t.client('o_intruder')).ExchangePhoneCode({ input: { code, purpose: 'login' } }); // another session
    await client.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'marketing' } }); // a purpose not declared

    const mine = await records('o_audited');
    expect(mine.map((m) => [m.kind, m.outcome, m.errorCode, m.purpose])).toEqual([
      ['EXCHANGE', 'DISCLOSED', null, 'order-contact'],
      ['EXCHANGE', 'REPLAYED', null, 'order-contact'],
      ['EXCHANGE', 'REFUSED', 'INVALID_INPUT', null],
    ]);
    expect(mine[0]).toMatchObject({ flow: 'EXCHANGE', noticeVersion: 'privacy-2026-03', requestId: 'req-audit-1', maskedPhone: maskPhone(phone) });
    expect(mine[0]!.maskedPhone).toMatch(/^\d{3}\*{4}\d{4}$/);
    expect(mine[0]!.phoneHash).toBeTruthy();
    expect(mine[0]!.subjectHash).not.toContain('o_audited');
    const intruder = await records('o_intruder');
    expect(intruder.map((m) => [m.outcome, m.errorCode, m.maskedPhone])).toEqual([['REFUSED', 'CODE_ALREADY_USED', null]]);
    // Nowhere in the stored rows: the number or the openid.
    const raw = JSON.stringify(await t.gateway.store.db.selectFrom('audit_records').selectAll().execute());
    expect(raw).not.toContain(phone);
    expect(raw).not.toContain('o_audited');
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain).toMatchObject({ ok: true, firstBrokenId: null });
  });

  it('a record edited in the database breaks the chain at that record', async () => {
    const before = await auditor.VerifyAuditChain({ appid: APP });
    expect(before.verifyAuditChain.ok).toBe(true);
    const target = (await records())[1]!;
    const db = t.gateway.store.db;
    await db.updateTable('audit_records').set({ purpose: 'login' }).where('id', '=', target.recordId).execute();
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain).toMatchObject({ ok: false, firstBrokenId: target.recordId });
    await db.updateTable('audit_records').set({ purpose: target.purpose }).where('id', '=', target.recordId).execute();
    // A masked number swapped for another: caught through the personal digest.
    await db.updateTable('audit_records').set({ masked_phone: '139****0000' }).where('id', '=', target.recordId).execute();
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.firstBrokenId).toBe(target.recordId);
    await db.updateTable('audit_records').set({ masked_phone: target.maskedPhone }).where('id', '=', target.recordId).execute();
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(true);
    // The newest record deleted: the head no longer matches.
    const last = (await records()).at(-1)!;
    const stored = await db.selectFrom('audit_records').selectAll().where('id', '=', last.recordId).executeTakeFirstOrThrow();
    await db.deleteFrom('audit_records').where('id', '=', last.recordId).execute();
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(false);
    await db.insertInto('audit_records').values(stored).execute();
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(true);
  });

  it('withdrawal deletes stored answers at once and refuses that purpose until consent is given again', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const user = await t.client('o_withdraws');
    expect((await user.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const w = await user.WithdrawConsent({ purposes: ['login'] });
    expect(w.withdrawConsent).toMatchObject({ __typename: 'ConsentWithdrawn', purposes: ['login'], answersDeleted: 1 });
    const replay = await user.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    expect(replay.exchangePhoneCode).toMatchObject({ code: 'CONSENT_WITHDRAWN' });
    const calls = (await t.sim.stats()).calls['/wxa/business/getuserphonenumber'] ?? 0;
    const refused = await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    expect(refused.exchangePhoneCode).toMatchObject({ __typename: 'ConsentWithdrawnError', code: 'CONSENT_WITHDRAWN', retryable: false });
    expect((await t.sim.stats()).calls['/wxa/business/getuserphonenumber'] ?? 0).toBe(calls);
    // Other purposes are not affected; the stored answer is gone even for the same session.
    expect((await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'order-contact' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    expect((await user.GiveConsent({ purpose: 'login', noticeVersion: 'privacy-2026-04' })).giveConsent.__typename).toBe('ConsentGiven');
    expect((await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const kinds = (await records('o_withdraws')).map((r) => r.kind);
    expect(kinds).toEqual(['EXCHANGE', 'WITHDRAWAL', 'EXCHANGE', 'EXCHANGE', 'EXCHANGE', 'CONSENT', 'EXCHANGE']);
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(true);
  });

  it("erasure redacts a subject's personal data while the chain still verifies", async () => {
    const phone = nextPhone();
    const user = await t.client('o_erase_me');
    await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim, phone), purpose: 'login' } });
    expect((await records('o_erase_me')).length).toBeGreaterThan(0);
    const erased = await auditor.EraseSubject({ appid: APP, subject: 'o_erase_me' });
    expect(erased.eraseSubject.records).toBeGreaterThan(0);
    expect(await records('o_erase_me')).toEqual([]);
    const all = await records();
    const redacted = all.filter((r) => r.erasedAt);
    expect(redacted.length).toBe(erased.eraseSubject.records);
    for (const r of redacted) expect([r.subjectHash, r.maskedPhone, r.phoneHash]).toEqual([null, null, null]);
    expect(all.at(-1)).toMatchObject({ kind: 'ERASURE', subjectHash: null });
    expect(JSON.stringify(all)).not.toContain(maskPhone(phone));
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain).toMatchObject({ ok: true, firstBrokenId: null });
  });

  it('retention purges old records and leaves a chained checkpoint; the chain still verifies', async () => {
    const db = t.gateway.store.db;
    const count = async () => Number((await db.selectFrom('audit_records').select((eb) => eb.fn.countAll().as('n')).where('appid', '=', APP).executeTakeFirst())?.n);
    const before = await count();
    // Seen from 2 days later, with 1 day of retention: everything so far is old.
    const later = new ConsentAudit(db, t.gateway.services.keys, t.gateway.config.apps, {
      retentionDays: 1,
      now: () => Date.now() + 2 * 86_400_000,
      chain: consentChainStore(t.gateway.store.dialect),
      answers: new ClaimStore(db),
      erasable: [],
      withdrawnError: consentWithdrawnError,
    });
    const purged = await later.purgeExpired();
    expect(purged).toBe(before);
    const left = await records();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ kind: 'CHECKPOINT' });
    expect(JSON.parse(left[0]!.detail!)).toMatchObject({ purgedCount: before });
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain).toMatchObject({ ok: true, checked: 1 });
    await (await t.client('o_after_purge')).ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain).toMatchObject({ ok: true, checked: 2 });
    // The checkpoint itself is protected: moving where the chain starts breaks it.
    await db.updateTable('audit_records').set({ detail: sql`replace(detail, '"purgedCount"', '"purgedCount_"')` }).where('kind', '=', 'checkpoint').execute();
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(false);
    await db.updateTable('audit_records').set({ detail: sql`replace(detail, '"purgedCount_"', '"purgedCount"')` }).where('kind', '=', 'checkpoint').execute();
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(true);
  });

  it('a verification token proves the verification to downstream services without the number; rotation keeps old tokens valid', async () => {
    const phone = nextPhone();
    const user = await t.client('o_bound');
    const r = await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim, phone), purpose: 'login', issueVerificationToken: true } });
    if (r.exchangePhoneCode.__typename !== 'PhoneNumberVerified') throw new Error('exchange failed');
    const token = r.exchangePhoneCode.verificationToken!.token;
    const jwks = createRemoteJWKSet(new URL(t.url.replace('/graphql', '/.well-known/jwks.json')));
    const verify = (tk: string) =>
      jwtVerify(tk, jwks, { issuer: t.config.verificationTokens.issuer, audience: t.config.verificationTokens.audience, algorithms: ['ES256'] });
    const { payload } = await verify(token);
    expect(payload).toMatchObject({ sub: 'o_bound', appid: APP });
    expect(typeof payload.phone_verified_at).toBe('number');
    expect(payload.phone_hash).toBe(t.gateway.services.keys.phoneHash(phone, 'binding'));
    expect(Buffer.from(token.split('.')[1]!, 'base64url').toString()).not.toContain(phone);
    await t.gateway.services.tokens.rotate();
    const r2 = await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login', issueVerificationToken: true } });
    if (r2.exchangePhoneCode.__typename !== 'PhoneNumberVerified') throw new Error('exchange failed');
    const second = r2.exchangePhoneCode.verificationToken!.token;
    const fresh = createRemoteJWKSet(new URL(t.url.replace('/graphql', '/.well-known/jwks.json')));
    const kid = (tk: string) => JSON.parse(Buffer.from(tk.split('.')[0]!, 'base64url').toString()).kid;
    expect(kid(second)).not.toBe(kid(token));
    for (const tk of [token, second]) await expect(jwtVerify(tk, fresh, { issuer: t.config.verificationTokens.issuer, audience: t.config.verificationTokens.audience })).resolves.toBeTruthy();
    const plain = await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    expect(plain.exchangePhoneCode.__typename === 'PhoneNumberVerified' && plain.exchangePhoneCode.verificationToken).toBeNull();
  });

  it('internal tools page through records and export NDJSON, with audit:read only', async () => {
    for (let i = 0; i < 3; i++) await (await t.client('o_paged')).ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    const p1 = (await auditor.AuditRecords({ appid: APP, subject: 'o_paged', first: 2 })).auditRecords;
    expect(p1.edges).toHaveLength(2);
    expect(p1.pageInfo.hasNextPage).toBe(true);
    const p2 = (await auditor.AuditRecords({ appid: APP, subject: 'o_paged', first: 2, after: p1.pageInfo.endCursor })).auditRecords;
    expect(p2.edges).toHaveLength(1);
    expect(p2.pageInfo.hasNextPage).toBe(false);
    expect(new Set([...p1.edges, ...p2.edges].map((e) => e.node.id)).size).toBe(3);
    const none = (await auditor.AuditRecords({ appid: APP, subject: 'o_paged', from: new Date(Date.now() + 60_000).toISOString() })).auditRecords;
    expect(none.edges).toEqual([]);
    await expect((await t.client('o_nosy')).AuditRecords({ appid: APP })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect((await t.client('svc_reader', { scopes: ['audit:read'] })).EraseSubject({ appid: APP, subject: 'o_paged' })).rejects.toMatchObject({ code: 'FORBIDDEN' });

    const url = `${t.url.replace('/graphql', '/audit/export.ndjson')}?appid=${APP}&subject=o_paged`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${await t.token('svc_dpo', { scopes: ['audit:read'] })}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/ndjson/);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ appid: APP, kind: 'exchange', outcome: 'disclosed' });
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${await t.token('o_user')}` } })).status).toBe(403);
  });

  it('a withdrawal committed while an exchange is at WeChat wins: the number is withheld and the refusal recorded', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const user = await t.client('o_racing_withdrawal');
    await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } }); // warm the token
    await t.sim.fault('/wxa/business/getuserphonenumber', { delayMs: 700, times: 1 });
    const pending = user.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    await new Promise((r) => setTimeout(r, 200));
    expect((await user.WithdrawConsent({ purposes: ['login'] })).withdrawConsent.__typename).toBe('ConsentWithdrawn');
    const r = await pending;
    expect(r.exchangePhoneCode).toMatchObject({ code: 'CONSENT_WITHDRAWN' });
    expect(JSON.stringify(r)).not.toContain(phone);
    const mine = await records('o_racing_withdrawal');
    expect(mine.slice(-2).map((m) => [m.kind, m.outcome, m.errorCode])).toEqual([
      ['WITHDRAWAL', null, null],
      ['EXCHANGE', 'REFUSED', 'CONSENT_WITHDRAWN'],
    ]);
    // Nothing was stored to replay, and the withdrawal survives an erasure.
    expect((await user.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode).toMatchObject({ code: 'CONSENT_WITHDRAWN' });
    await auditor.EraseSubject({ appid: APP, subject: 'o_racing_withdrawal' });
    expect((await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } })).exchangePhoneCode).toMatchObject({ code: 'CONSENT_WITHDRAWN' });
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(true);
  });

  it('tampering without the key is caught: a fake erasure, a deleted head, a head rolled back', async () => {
    const db = t.gateway.store.db;
    const user = await t.client('o_tamper_target');
    await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    await user.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    const [first] = await records('o_tamper_target');
    const ok = async () => (await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain;
    expect((await ok()).ok).toBe(true);

    // Marking a record erased to point it at someone else.
    const stored = await db.selectFrom('audit_records').selectAll().where('id', '=', first!.recordId).executeTakeFirstOrThrow();
    await db.updateTable('audit_records').set({ erased_at: Date.now(), subject_hash: 'someone-else', masked_phone: '139****0000' }).where('id', '=', first!.recordId).execute();
    expect(await ok()).toMatchObject({ ok: false, firstBrokenId: first!.recordId });
    await db.updateTable('audit_records').set({ erased_at: Date.now(), subject_hash: null, masked_phone: null, phone_hash: null, request_id: null, digest_salt: null }).where('id', '=', first!.recordId).execute();
    expect(await ok()).toMatchObject({ ok: false, firstBrokenId: first!.recordId }); // emptied, but no erasure record names it
    await db.updateTable('audit_records').set(stored).where('id', '=', first!.recordId).execute();
    expect((await ok()).ok).toBe(true);

    // Deleting the head does not hide the chain from a full verification.
    const head = await db.selectFrom('audit_heads').selectAll().where('appid', '=', APP).executeTakeFirstOrThrow();
    await db.deleteFrom('audit_heads').where('appid', '=', APP).execute();
    expect((await auditor.VerifyAuditChain({})).verifyAuditChain.ok).toBe(false);
    await db.insertInto('audit_heads').values(head).execute();

    // Deleting the newest record and rolling the head back to the one before: the head's MAC no longer fits.
    const last = await db.selectFrom('audit_records').selectAll().where('appid', '=', APP).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    await db.deleteFrom('audit_records').where('id', '=', last.id).execute();
    await db.updateTable('audit_heads').set({ last_seq: Number(last.seq) - 1, last_hash: last.prev_hash }).where('appid', '=', APP).execute();
    expect(await ok()).toMatchObject({ ok: false, firstBrokenId: `head:${APP}` });
    await db.insertInto('audit_records').values(last).execute();
    await db.updateTable('audit_heads').set(head).where('appid', '=', APP).execute();
    expect((await ok()).ok).toBe(true);
  });

  it('verification during a burst of appends never reports a break that is not there', async () => {
    const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => t.client(`o_burst_${i}`)));
    const codes = await Promise.all(Array.from({ length: 40 }, () => mintCode(t.sim)));
    const exchanges = Promise.all(codes.map((code, i) => clients[i % 5]!.ExchangePhoneCode({ input: { code, purpose: 'login' } })));
    const verdicts = [];
    for (let i = 0; i < 8; i++) verdicts.push((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok);
    await exchanges;
    verdicts.push((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok);
    expect(verdicts.every(Boolean)).toBe(true);
  });

  it("erasure also clears the request ids the subject's records carried", async () => {
    const jwt = await t.token('o_reqid');
    const client = createGatewayClient({ url: t.url, token: jwt, headers: { 'x-request-id': '13912345678' } });
    await client.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    expect((await records('o_reqid'))[0]!.requestId).toBe('13912345678');
    await auditor.EraseSubject({ appid: APP, subject: 'o_reqid' });
    const raw = JSON.stringify(await t.gateway.store.db.selectFrom('audit_records').selectAll().execute());
    expect(raw).not.toContain('13912345678');
    expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain.ok).toBe(true);
  });
});
