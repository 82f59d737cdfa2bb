import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, OTHER_APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { GatewayClient } from '../../sdk/client.js';
import { parse, print } from 'graphql';
import { persistedDocuments } from '../../sdk/persisted.js';
import * as consoleDocuments from '../../console/src/graphql/generated.js';
import { ensureConsoleBuilt } from '../../console/build.js';
import { CONSOLE_CSP } from '../../console/serve.js';

const DAY = 86_400_000;

/**
 * The fields the operations console added: usage history, exchange outcomes over time, a pack's
 * refund eligibility, and consent records by id. Real exchanges, syncs and erasures through a
 * real gateway and its simulator.
 */
describe.each(BACKENDS)('the console\'s queries ($name)', (backend) => {
  let t: TestGateway;
  let user: GatewayClient;
  let operator: string;
  let auditor: string;
  const start = Date.now() - 60_000;

  async function gql<T = Record<string, any>>(token: string, query: string, variables: Record<string, unknown> = {}): Promise<{ data?: T; errors?: { message: string; extensions?: { code?: string } }[] }> {
    const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
    return (await res.json()) as never;
  }

  beforeAll(async () => {
    t = await startTestGateway({ backend });
    user = await t.client('o_console_user');
    operator = await t.token('ops', { appid: undefined, scopes: ['quota:read', 'billing:admin'] });
    auditor = await t.token('dpo', { appid: undefined, scopes: ['audit:read', 'audit:admin'] });

    // Three disclosed, one replayed, one refused as already used, one expired (INVALID_CODE, unconfirmed).
    const codes = [await mintCode(t.sim), await mintCode(t.sim), await mintCode(t.sim)];
    for (const code of codes) expect((await user.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    expect((await user.ExchangePhoneCode({ input: { code: codes[0]!, purpose: 'login' } })).exchangePhoneCode).toMatchObject({ replayed: true });
    const other = await t.client('o_someone_else');
    expect((await other.ExchangePhoneCode({ input: { code: codes[1]!, purpose: 'login' } })).exchangePhoneCode).toMatchObject({ code: 'CODE_ALREADY_USED' });
    const expiring = await mintCode(t.sim);
    await t.sim.advance(301);
    expect((await user.ExchangePhoneCode({ input: { code: expiring, purpose: 'login' } })).exchangePhoneCode).toMatchObject({ code: 'INVALID_CODE' });
    // Two syncs around a tap never brought to the gateway: the second reveals one unseen charge.
    expect((await gql(operator, 'mutation($a:String!){ syncUsage(appid:$a){ __typename } }', { a: APP })).data?.syncUsage.__typename).toBe('UsageSynced');
    await mintCode(t.sim);
    expect((await gql(operator, 'mutation($a:String!){ syncUsage(appid:$a){ __typename } }', { a: APP })).data?.syncUsage.__typename).toBe('UsageSynced');
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  it("usageHistory: each day's charges by tap time, the unseen ones syncs revealed, and WeChat's counts at the day's last sync", async () => {
    const r = await gql(operator, 'query($a:String!,$f:DateTime!,$t:DateTime!){ usageHistory(appid:$a,from:$f,to:$t){ appid days { date confirmed unconfirmed unseen } snapshots { syncedAt remaining unitsInEffect effectiveUse } } quota(appid:$a){ remaining unitsInEffect } }', {
      a: APP,
      f: new Date(start - 6 * DAY).toISOString(),
      t: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(r.errors).toBeUndefined();
    const h = r.data!.usageHistory;
    expect(h.days.length).toBeGreaterThanOrEqual(7);
    const dates = h.days.map((d: { date: string }) => d.date);
    expect([...dates].sort()).toEqual(dates);
    const total = (k: string) => h.days.reduce((n: number, d: Record<string, number>) => n + d[k]!, 0);
    expect({ confirmed: total('confirmed'), unconfirmed: total('unconfirmed'), unseen: total('unseen') }).toEqual({ confirmed: 3, unconfirmed: 1, unseen: 1 });
    // Both syncs fell on the same day: the later one stands for it, and it is what quota reads.
    expect(h.snapshots).toHaveLength(1);
    expect(h.snapshots[0]).toMatchObject({ remaining: r.data!.quota.remaining, unitsInEffect: r.data!.quota.unitsInEffect, effectiveUse: 5 });
  });

  it('usageHistory refuses a period that ends before it starts, or runs over 366 days', async () => {
    const q = 'query($f:DateTime!,$t:DateTime!){ usageHistory(appid:"' + APP + '",from:$f,to:$t){ appid } }';
    const backwards = await gql(operator, q, { f: new Date().toISOString(), t: new Date(Date.now() - DAY).toISOString() });
    expect(backwards.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const long = await gql(operator, q, { f: new Date(Date.now() - 400 * DAY).toISOString(), t: new Date().toISOString() });
    expect(long.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('exchangeOutcomes: outcomes by error code per bucket, for one app and for all, from the consent log', async () => {
    const q = 'query($a:String,$f:DateTime!,$t:DateTime!,$b:OutcomeBucketSize){ exchangeOutcomes(appid:$a,from:$f,to:$t,bucket:$b){ bucket buckets { start counts { outcome errorCode count } } totals { outcome errorCode count } } }';
    const vars = { f: new Date(start - 2 * DAY).toISOString(), t: new Date(Date.now() + 60_000).toISOString() };
    const expected = [
      { outcome: 'DISCLOSED', errorCode: null, count: 3 },
      { outcome: 'REFUSED', errorCode: 'CODE_ALREADY_USED', count: 1 },
      { outcome: 'REFUSED', errorCode: 'INVALID_CODE', count: 1 },
      { outcome: 'REPLAYED', errorCode: null, count: 1 },
    ];
    const byDay = await gql(operator, q, { ...vars, a: APP, b: 'DAY' });
    expect(byDay.errors).toBeUndefined();
    const d = byDay.data!.exchangeOutcomes;
    expect(d.totals).toEqual(expected);
    expect(d.buckets.length).toBeGreaterThanOrEqual(3);
    // Days start at 00:00 Asia/Shanghai.
    for (const b of d.buckets) expect((Date.parse(b.start) + 8 * 3_600_000) % DAY).toBe(0);
    const sum = d.buckets.flatMap((b: { counts: { count: number }[] }) => b.counts).reduce((n: number, c: { count: number }) => n + c.count, 0);
    expect(sum).toBe(6);

    const byHour = await gql(operator, q, { ...vars, a: null, b: 'HOUR' });
    expect(byHour.data!.exchangeOutcomes.totals).toEqual(expected);
    expect(byHour.data!.exchangeOutcomes.buckets.length).toBeGreaterThanOrEqual(48);

    const quiet = await gql(operator, q, { ...vars, a: OTHER_APP.appid, b: 'DAY' });
    expect(quiet.data!.exchangeOutcomes.totals).toEqual([]);
    const tooMany = await gql(operator, q, { f: new Date(Date.now() - 40 * DAY).toISOString(), t: new Date().toISOString(), a: APP, b: 'HOUR' });
    expect(tooMany.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('Pack.refundable and refundRefusal say what requestPackRefund would answer', async () => {
    const record = (paidAt: number) =>
      gql(operator, 'mutation($i:RecordPackPurchaseInput!){ recordPackPurchase(input:$i){ __typename ... on Pack { packId } } }', {
        i: { appid: OTHER_APP.appid, units: 100, paidAt: new Date(paidAt).toISOString(), validityDays: 365, pricePaidMilli: '3000' },
      });
    const fresh = (await record(Date.now() - 60_000)).data!.recordPackPurchase.packId;
    const old = (await record(Date.now() - 8 * DAY)).data!.recordPackPurchase.packId;
    const packs = async () => {
      const r = await gql(operator, 'query($a:String!){ packs(appid:$a){ packId refundable refundRefusal } }', { a: OTHER_APP.appid });
      return Object.fromEntries(r.data!.packs.map((p: { packId: string }) => [p.packId, p]));
    };
    expect((await packs())[fresh]).toMatchObject({ refundable: true, refundRefusal: null });
    expect((await packs())[old]).toMatchObject({ refundable: false, refundRefusal: 'REFUND_WINDOW_PASSED' });
    const refund = await gql(operator, 'mutation($p:ID!){ requestPackRefund(packId:$p){ __typename } }', { p: fresh });
    expect(refund.data!.requestPackRefund.__typename).toBe('RefundRequested');
    expect((await packs())[fresh]).toMatchObject({ refundable: false, refundRefusal: 'ALREADY_REQUESTED' });
  });

  it("auditRecordsByIds reads a subject's records again after their erasure, only the app's, and needs audit:read", async () => {
    const page = await gql(auditor, 'query($a:String!,$s:String){ auditRecords(appid:$a,subject:$s,first:50){ edges { node { id maskedPhone subjectHash } } } }', { a: APP, s: 'o_console_user' });
    const ids: string[] = page.data!.auditRecords.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(ids.length).toBe(5);
    const erased = await gql(auditor, 'mutation($a:String!,$s:String){ eraseSubject(input:{appid:$a,subject:$s}){ records } }', { a: APP, s: 'o_console_user' });
    expect(erased.data!.eraseSubject.records).toBe(5);
    const q = 'query($a:String!,$ids:[ID!]!){ auditRecordsByIds(appid:$a,ids:$ids){ id seq erasedAt subjectHash maskedPhone phoneHash requestId } }';
    const again = await gql(auditor, q, { a: APP, ids: [...ids].reverse() });
    expect(again.data!.auditRecordsByIds.map((r: { id: string }) => r.id)).toEqual(ids);
    for (const r of again.data!.auditRecordsByIds) expect(r).toMatchObject({ subjectHash: null, maskedPhone: null, phoneHash: null, requestId: null, erasedAt: expect.any(String) });
    expect((await gql(auditor, q, { a: OTHER_APP.appid, ids })).data!.auditRecordsByIds).toEqual([]);
    expect((await gql(auditor, q, { a: APP, ids: Array.from({ length: 501 }, (_, i) => `x${i}`) })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await gql(operator, q, { a: APP, ids })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe("the console's documents with TRUSTED_DOCUMENTS=only", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend: BACKENDS[0]!, env: { TRUSTED_DOCUMENTS: 'only' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('are trusted documents: a gateway that runs nothing else runs them, as the console sends them', async () => {
    const trusted = new Set(Object.values(persistedDocuments()));
    const documents = Object.entries(consoleDocuments).filter(([name, v]) => name.endsWith('Document') && v instanceof String);
    expect(documents.length).toBeGreaterThanOrEqual(13);
    for (const [name, doc] of documents) expect(trusted.has(print(parse(String(doc)))), name).toBe(true);

    const token = await t.token('ops', { appid: undefined, scopes: ['quota:read'] });
    const send = (query: string) =>
      fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables: {} }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] } }));
    // Spaced as codegen wrote them, and on one line as the console's bundle carries them.
    const apps = await send(String(consoleDocuments.ConsoleAppsDocument));
    expect(apps.body.errors).toBeUndefined();
    expect((apps.body.data as { apps: unknown[] }).apps.length).toBe(2);
    const compact = await send(String(consoleDocuments.ConsoleSessionDocument).replace(/\s+/g, ' '));
    expect(compact.body.errors).toBeUndefined();
    const other = await send('{ apps { appid } }');
    expect(other.status).toBe(400);
    expect(other.body.errors?.[0]?.extensions?.code).toBe('TRUSTED_DOCUMENT_REQUIRED');
  });
});

describe('the console in production', () => {
  let t: TestGateway;
  beforeAll(async () => {
    await ensureConsoleBuilt();
    t = await startTestGateway({ backend: BACKENDS[0]!, env: { NODE_ENV: 'production' } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  it('is served (it is for operators, and shows only what their tokens allow), with its CSP', async () => {
    const origin = new URL(t.url).origin;
    const page = await fetch(`${origin}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(await page.text()).toMatch(/<script type="module" src="\/console\/assets\/app-[\w-]+\.js"><\/script>/);
    expect((await fetch(`${origin}/console`, { method: 'POST' })).status).toBe(405);
    // GraphiQL is not, in production.
    expect((await fetch(t.url, { headers: { accept: 'text/html' } })).headers.get('content-type') ?? '').not.toMatch(/html/);
  });
});
