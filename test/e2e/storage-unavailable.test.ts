import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';
import { EXCHANGE_PATH } from '../support/processes.js';

/**
 * The gateway's storage unavailable, for real, on SQLite: another process's connection holds the
 * database's write lock past the gateway's busy timeout (5 s), so every write fails with
 * SQLITE_BUSY, as it does when an operator's tool or a stuck process holds the file. (PostgreSQL
 * stopped and started under load: test/e2e/pg-outage.test.ts; reset and partitioned connections:
 * test/e2e/faults.test.ts.)
 */

type Result = { __typename: string; code?: string; message?: string; retryable?: boolean; phoneNumber?: string; replayed?: boolean };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the SQLite file locked by another connection past the busy timeout', () => {
  let t: TestGateway;
  let holder: Database.Database | undefined;
  afterEach(async () => {
    if (holder?.inTransaction) holder.exec('rollback');
    holder?.close();
    holder = undefined;
    await t?.close();
  });

  async function start() {
    t = await startTestGateway({ backend: { name: 'sqlite', databaseUrl: undefined, redisUrl: undefined } });
    holder = new Database(t.config.databaseUrl.slice('file:'.length));
    return t;
  }
  /** Takes the write lock (readers still read: WAL), as a tool's long transaction would. */
  const lock = () => holder!.exec('begin immediate');
  const unlock = () => holder!.exec('rollback');
  const rows = (table: string) => (holder!.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
  const exchangeCalls = async () => (await t.sim.stats()).calls[EXCHANGE_PATH] ?? 0;

  it('before the call: SERVICE_UNAVAILABLE, retryable, nothing sent to WeChat; once the lock is gone the same code gets its number', async () => {
    await start();
    const alice = await t.client('o_store_locked');
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const before = { claims: rows('code_claims'), charges: rows('charges'), audit: rows('audit_records') };
    lock();
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode as Result;
    expect(r).toMatchObject({ __typename: 'ServiceUnavailableError', code: 'SERVICE_UNAVAILABLE', retryable: true });
    expect(r.message).toMatch(/nothing was sent to WeChat and the code was not used/);
    expect(await exchangeCalls()).toBe(0);
    unlock();
    expect({ claims: rows('code_claims'), charges: rows('charges'), audit: rows('audit_records') }).toEqual(before);
    const again = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode as Result;
    expect(again).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone, replayed: false });
    const metrics = await fetch(t.url.replace(/\/graphql$/, '/metrics')).then((res) => res.text());
    expect(metrics).toMatch(/wxphone_exchanges_total\{flow="exchange",outcome="SERVICE_UNAVAILABLE"\} 1/);
  }, 30_000);

  it('while WeChat answers: the number is withheld, nothing is charged or recorded, and the answer says the code is spent (not retryable)', async () => {
    await start();
    const alice = await t.client('o_store_locked_mid');
    const code = await mintCode(t.sim);
    const before = { charges: rows('charges'), audit: rows('audit_records') };
    // WeChat takes 600 ms; the lock is taken while it answers, after the claim was committed.
    await t.sim.fault(EXCHANGE_PATH, { delayMs: 600, times: 1 });
    const pending = alice.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    const claimed = Date.now() + 5000;
    while (rows('code_claims') === 0 && Date.now() < claimed) await sleep(10);
    lock();
    const r = (await pending).exchangePhoneCode as Result;
    unlock();
    expect(r).toMatchObject({ __typename: 'ServiceUnavailableError', code: 'SERVICE_UNAVAILABLE', retryable: false });
    expect(r.message).toMatch(/WeChat answered.*the number is withheld and the code is spent; ask the user to tap again/);
    expect(r).not.toHaveProperty('phoneNumber');
    expect(await exchangeCalls()).toBe(1);
    expect({ charges: rows('charges'), audit: rows('audit_records') }).toEqual(before);
  }, 30_000);

  it('other fields: HTTP 503 with extensions.code SERVICE_UNAVAILABLE and Retry-After, and a warning with the request id', async () => {
    await start();
    const token = await t.token('o_store_locked_consent');
    lock();
    const res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': 'req-store-503' },
      body: JSON.stringify({ query: 'mutation { giveConsent(input: { purpose: "login" }) { __typename } }' }),
    });
    unlock();
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = (await res.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
    expect(body.errors).toEqual([expect.objectContaining({ extensions: { code: 'SERVICE_UNAVAILABLE' } })]);
    expect(body.errors[0]!.message).toMatch(/storage is unavailable/);
    const line = t.logs.find((l) => l.includes('storage unavailable'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 40, requestId: 'req-store-503' });
    // The process serves on.
    const alice = await t.client('o_store_after');
    const r = (await alice.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } })).exchangePhoneCode as Result;
    expect(r.__typename).toBe('PhoneNumberVerified');
  }, 30_000);

  it('a field that fails alone leaves the others their data: HTTP 200, the error at its path with SERVICE_UNAVAILABLE and Retry-After', async () => {
    await start();
    const token = await t.token('o_store_partial');
    lock();
    const res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        // The first field is refused before anything is stored (its refusal's record is given up); the second must write.
        query: 'mutation { refused: exchangePhoneCode(input: { code: "", purpose: "login" }) { __typename } consent: giveConsent(input: { purpose: "login" }) { __typename } }',
      }),
    });
    unlock();
    const body = (await res.json()) as { data: Record<string, unknown>; errors: { path: string[]; extensions: Record<string, unknown> }[] };
    expect(res.status).toBe(200);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(body.data).toEqual({ refused: { __typename: 'InvalidInputError' }, consent: null });
    expect(body.errors).toEqual([expect.objectContaining({ path: ['consent'], extensions: { code: 'SERVICE_UNAVAILABLE' } })]);
  }, 30_000);
});
