import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS, SHARED_BACKENDS } from '../support/backends.js';
import { mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';

const EXCHANGE_PATH = '/wxa/business/getuserphonenumber';

let running: TestGateway[] = [];
afterEach(async () => {
  for (const g of running.reverse()) await g.close();
  running = [];
});

async function pair(backend: (typeof BACKENDS)[number]) {
  const a = await startTestGateway({ backend });
  running.push(a);
  const b = await startTestGateway({ backend, peerOf: a });
  running.push(b);
  return [a, b] as const;
}

describe.each(BACKENDS)('two gateway instances sharing one database ($name)', (backend) => {
  it('a code reaches WeChat once even when the same session sends it to both instances at once', async () => {
    const [a, b] = await pair(backend);
    const phone = nextPhone();
    const code = await mintCode(a.sim, phone);
    const token = await a.token('o_two_instances');
    const ca = await a.client('o_two_instances');
    const cb = await b.client('o_two_instances');
    expect(token).toBeTruthy();
    const before = (await a.sim.stats()).calls[EXCHANGE_PATH] ?? 0;

    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? ca : cb).ExchangePhoneCode({ input: { code, purpose: 'login' } }).then((r) => r.exchangePhoneCode)),
    );
    expect(((await a.sim.stats()).calls[EXCHANGE_PATH] ?? 0) - before).toBe(1);
    // Each is the number, or (a duplicate that outwaited its budget) a retryable IN_PROGRESS; never a second call.
    for (const r of results) {
      if (r.__typename === 'PhoneNumberVerified') expect(r.phoneNumber).toBe(phone);
      else expect(r).toMatchObject({ code: 'IN_PROGRESS', retryable: true });
    }
    expect(results.filter((r) => r.__typename === 'PhoneNumberVerified' && !r.replayed)).toHaveLength(1);
  });

  it('another session on the other instance gets CODE_ALREADY_USED', async () => {
    const [a, b] = await pair(backend);
    const code = await mintCode(a.sim);
    const first = (await (await a.client('o_first')).ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(first.__typename).toBe('PhoneNumberVerified');
    const second = (await (await b.client('o_second')).ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(second).toMatchObject({ code: 'CODE_ALREADY_USED' });
    const replay = (await (await b.client('o_first')).ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(replay).toMatchObject({ __typename: 'PhoneNumberVerified', replayed: true });
  });
});

describe.each(SHARED_BACKENDS)('two instances sharing Redis ($name)', (backend) => {
  it('200 concurrent cold exchanges spread over two instances fetch one token in total', async () => {
    const [a, b] = await pair(backend);
    const codes = await Promise.all(Array.from({ length: 200 }, () => mintCode(a.sim)));
    const ca = await a.client('o_spread');
    const cb = await b.client('o_spread');
    const results = await Promise.all(
      codes.map((code, i) => (i % 2 ? ca : cb).ExchangePhoneCode({ input: { code, purpose: 'login' } }).then((r) => r.exchangePhoneCode)),
    );
    expect(results.every((r) => r.__typename === 'PhoneNumberVerified')).toBe(true);
    const stats = await a.sim.stats();
    expect(stats.calls['/cgi-bin/stable_token']).toBe(1);
    expect(stats.tokensIssued.forced).toBe(0);
  });

  it("a token error seen by one instance refreshes once; the other adopts the new token from Redis", async () => {
    const [a, b] = await pair(backend);
    const ca = await a.client('o_shared_refresh');
    const cb = await b.client('o_shared_refresh');
    await ca.ExchangePhoneCode({ input: { code: await mintCode(a.sim), purpose: 'login' } });
    await cb.ExchangePhoneCode({ input: { code: await mintCode(a.sim), purpose: 'login' } });
    const s0 = await a.sim.stats();
    expect(s0.calls['/cgi-bin/stable_token']).toBe(1);
    // Move WeChat's clock past the token's lifetime: both instances hold an expired token.
    await a.sim.advance(7201);
    const ra = (await ca.ExchangePhoneCode({ input: { code: await mintCode(a.sim), purpose: 'login' } })).exchangePhoneCode;
    const rb = (await cb.ExchangePhoneCode({ input: { code: await mintCode(a.sim), purpose: 'login' } })).exchangePhoneCode;
    expect(ra.__typename).toBe('PhoneNumberVerified');
    expect(rb.__typename).toBe('PhoneNumberVerified');
    const s1 = await a.sim.stats();
    expect((s1.calls['/cgi-bin/stable_token'] ?? 0) - (s0.calls['/cgi-bin/stable_token'] ?? 0)).toBe(1);
  });
});
