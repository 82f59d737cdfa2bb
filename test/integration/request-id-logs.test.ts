import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, OTHER_APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';

const EXCHANGE = `mutation ($input: ExchangePhoneCodeInput!) {
  exchangePhoneCode(input: $input) { __typename ... on ExchangeError { code } }
}`;

interface Line {
  msg?: string;
  requestId?: string;
  appid?: string;
  yoga?: string[];
}

describe.each(BACKENDS)('request ids on log lines ($name)', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  const linesSince = (index: number): Line[] => t.logs.slice(index).map((l) => JSON.parse(l) as Line);

  async function send(requestId: string, body: object, sub = 'o_request_id', scopes?: string[]) {
    const res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await t.token(sub, { scopes })}`, 'x-request-id': requestId },
      body: JSON.stringify(body),
    });
    expect(res.headers.get('x-request-id')).toBe(requestId);
    return (await res.json()) as { data?: any; errors?: { message: string }[] };
  }

  it("every line the gateway writes for a request carries the caller's x-request-id, and no other", async () => {
    const code = await mintCode(t.sim);
    const before = t.logs.length;
    // The gateway's first exchange fetches the app's access token, and says so at info.
    const r = await send('req-first-token', { query: EXCHANGE, variables: { input: { code, purpose: 'login' } } });
    expect(r.data.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const during = linesSince(before);
    expect(during.find((l) => l.msg === 'fetched a WeChat access token')).toMatchObject({ requestId: 'req-first-token', appid: expect.any(String) });
    // Apart from a one-time notice about the deployment (the test client's loopback address).
    const forRequest = during.filter((l) => l.msg !== undefined && !l.msg.startsWith('exchange requests arrive from a loopback'));
    expect(forRequest.filter((l) => l.requestId !== 'req-first-token')).toEqual([]);
    // yoga's own debug chatter is written without a request in hand: it names none.
    const yogaLines = during.filter((l) => l.yoga);
    expect(yogaLines.some((l) => l.yoga!.some((m) => m.includes('Processing GraphQL Parameters')))).toBe(true);
    expect(yogaLines.filter((l) => 'requestId' in l)).toEqual([]);
  });

  it('a WeChat fault logged mid-exchange carries the id too', async () => {
    await t.sim.fault('/wxa/business/getuserphonenumber', { errcode: 40001, times: 1 });
    const code = await mintCode(t.sim);
    const before = t.logs.length;
    const r = await send('req-token-fault', { query: EXCHANGE, variables: { input: { code, purpose: 'login' } } });
    expect(r.data.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    expect(linesSince(before).find((l) => l.msg === 'WeChat rejected the access token; refreshing once')).toMatchObject({
      requestId: 'req-token-fault',
    });
  });

  it('concurrent requests each log under their own id', async () => {
    // Two syncs at once, each losing the optional recent-average call: each says so under its own id.
    await t.sim.fault('/wxa/charge/usage/get_recent_average', { errcode: 40097, times: 2 });
    const before = t.logs.length;
    const sync = { query: 'mutation ($a: String!) { syncUsage(appid: $a) { __typename } }', variables: { a: APP } };
    const admin = (id: string) => send(id, sync, 'svc_request_id', ['billing:admin']);
    const [a, b] = await Promise.all([admin('req-concurrent-a'), admin('req-concurrent-b')]);
    expect([a.data.syncUsage.__typename, b.data.syncUsage.__typename]).toEqual(['UsageSynced', 'UsageSynced']);
    const unavailable = linesSince(before).filter((l) => l.msg === 'recent average unavailable');
    expect(unavailable.map((l) => l.requestId).sort()).toEqual(['req-concurrent-a', 'req-concurrent-b']);
  });

  it('lines logged outside any request carry no id', async () => {
    const before = t.logs.length;
    // The other app's first token fetch, by a usage sync rather than a request.
    await t.gateway.services.billing.usage.sync(OTHER_APP.appid).catch(() => {});
    t.gateway.log.info('between requests');
    const outside = linesSince(before);
    expect(outside.find((l) => l.msg === 'fetched a WeChat access token')).toMatchObject({ appid: OTHER_APP.appid });
    expect(outside.find((l) => l.msg === 'between requests')).toBeDefined();
    expect(outside.filter((l) => 'requestId' in l)).toEqual([]);
  });

  // Last: it breaks a table of this gateway's database.
  it("yoga's line for an unexpected error names the request whose operation failed", async () => {
    await sql`drop table app_trials`.execute(t.gateway.store.db);
    const before = t.logs.length;
    const r = await send('req-unexpected', { query: 'query ($a: String!) { quota(appid: $a) { remaining lowQuota } }', variables: { a: APP } }, 'svc_request_id', ['quota:read']);
    expect(r.errors?.[0], JSON.stringify(r)).toMatchObject({ message: 'Unexpected error.' });
    const logged = linesSince(before).find((l) => l.msg === 'graphql error');
    expect(logged).toMatchObject({ requestId: 'req-unexpected' });
  });
});
