import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { OTHER_APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';

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

  async function send(requestId: string, body: object, sub = 'o_request_id') {
    const res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await t.token(sub)}`, 'x-request-id': requestId },
      body: JSON.stringify(body),
    });
    expect(res.headers.get('x-request-id')).toBe(requestId);
    return (await res.json()) as { data?: any };
  }

  it("every line logged while a request is handled carries the caller's x-request-id", async () => {
    const code = await mintCode(t.sim);
    const before = t.logs.length;
    // The gateway's first exchange fetches the app's access token, and says so at info.
    const r = await send('req-first-token', { query: EXCHANGE, variables: { input: { code, purpose: 'login' } } });
    expect(r.data.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const during = linesSince(before);
    expect(during.find((l) => l.msg === 'fetched a WeChat access token')).toMatchObject({ requestId: 'req-first-token' });
    // yoga's own (debug) lines too, written from inside its request pipeline.
    expect(during.some((l) => l.yoga?.some((m) => m.includes('Processing GraphQL Parameters')))).toBe(true);
    expect(during.filter((l) => l.requestId !== 'req-first-token')).toEqual([]);
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

  it('concurrent requests each keep their own id', async () => {
    const before = t.logs.length;
    await Promise.all([send('req-concurrent-a', { query: '{ session { subject } }' }), send('req-concurrent-b', { query: '{ session { subject } }' })]);
    const during = linesSince(before);
    const a = during.filter((l) => l.requestId === 'req-concurrent-a').length;
    expect(a).toBeGreaterThan(0);
    expect(during.filter((l) => l.requestId === 'req-concurrent-b').length).toBe(a);
    expect(during.length).toBe(2 * a);
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
});
