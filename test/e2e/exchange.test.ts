import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, OTHER_APP, mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';

const EXCHANGE_PATH = '/wxa/business/getuserphonenumber';

describe.each(BACKENDS)('exchangePhoneCode over real HTTP ($name)', (backend) => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function calls(path = EXCHANGE_PATH) {
    return (await t.sim.stats()).calls[path] ?? 0;
  }

  it('exchanges a code for the verified number, and replays it to the same session only', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const alice = await t.client('o_alice');
    const before = await calls();

    const first = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(first).toMatchObject({
      __typename: 'PhoneNumberVerified',
      phoneNumber: phone,
      purePhoneNumber: phone,
      countryCode: '86',
      watermark: { appid: APP },
      replayed: false,
    });

    const again = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(again).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone, replayed: true });

    const mallory = await t.client('o_mallory');
    const stolen = (await mallory.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(stolen).toMatchObject({ __typename: 'CodeAlreadyUsedError', code: 'CODE_ALREADY_USED', retryable: false });
    expect(JSON.stringify(stolen)).not.toContain(phone);

    expect((await calls()) - before).toBe(1);
  });

  it('50 concurrent requests with the same code from one session make one WeChat call', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const alice = await t.client('o_alice_concurrent');
    const before = await calls();

    const results = await Promise.all(
      Array.from({ length: 50 }, () => alice.ExchangePhoneCode({ input: { code, purpose: 'login' } }).then((r) => r.exchangePhoneCode)),
    );
    expect((await calls()) - before).toBe(1);
    for (const r of results) expect(r).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone });
    expect(results.filter((r) => r.__typename === 'PhoneNumberVerified' && !r.replayed)).toHaveLength(1);
  });

  it('50 concurrent requests with the same code from 50 sessions: one number, 49 CODE_ALREADY_USED, one WeChat call', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => t.client(`o_racer_${i}`)));
    const before = await calls();

    const results = await Promise.all(clients.map((c) => c.ExchangePhoneCode({ input: { code, purpose: 'login' } }).then((r) => r.exchangePhoneCode)));
    expect((await calls()) - before).toBe(1);
    const winners = results.filter((r) => r.__typename === 'PhoneNumberVerified');
    expect(winners).toHaveLength(1);
    const losers = results.filter((r) => r.__typename === 'CodeAlreadyUsedError');
    expect(losers).toHaveLength(49);
    for (const l of losers) expect(JSON.stringify(l)).not.toContain(phone);
  });

  it('an injected 40001 is survived with exactly one token refresh and one retry', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_40001');
    await alice.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } }); // warm token
    const s0 = await t.sim.stats();

    await t.sim.fault(EXCHANGE_PATH, { errcode: 40001, times: 1 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r.__typename).toBe('PhoneNumberVerified');
    const s1 = await t.sim.stats();
    expect((s1.calls[EXCHANGE_PATH] ?? 0) - (s0.calls[EXCHANGE_PATH] ?? 0)).toBe(2);
    expect((s1.calls['/cgi-bin/stable_token'] ?? 0) - (s0.calls['/cgi-bin/stable_token'] ?? 0)).toBe(1);
    expect(s1.tokensIssued.forced).toBe(0);
  });

  it('a second token error in a row is not retried again: UPSTREAM_UNAVAILABLE, retryable', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_40001x2');
    const before = await calls();
    await t.sim.fault(EXCHANGE_PATH, { errcode: 42001, times: 2 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ __typename: 'UpstreamUnavailableError', code: 'UPSTREAM_UNAVAILABLE', retryable: true });
    expect((await calls()) - before).toBe(2);
    // The code was never consumed: the same session's retry now succeeds.
    const retry = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(retry.__typename).toBe('PhoneNumberVerified');
  });

  it('45011 comes back as RATE_LIMITED and retryable, not retried by the gateway, and the code survives', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_45011');
    const before = await calls();
    await t.sim.fault(EXCHANGE_PATH, { errcode: 45011, times: 1 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ __typename: 'RateLimitedError', code: 'RATE_LIMITED', retryable: true });
    expect((await calls()) - before).toBe(1);
    const retry = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(retry.__typename).toBe('PhoneNumberVerified');
  });

  it('47001 (data format error: WeChat never read the code) is GATEWAY_MISCONFIGURED, not OUTCOME_UNKNOWN, and the code survives', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_47001');
    await t.sim.fault(EXCHANGE_PATH, { errcode: 47001, times: 1 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ __typename: 'GatewayMisconfiguredError', code: 'GATEWAY_MISCONFIGURED', retryable: false });
    expect(r.__typename !== 'PhoneNumberVerified' && r.message).toMatch(/malformed/);
    const retry = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(retry.__typename).toBe('PhoneNumberVerified');
  });

  it('-1 (busy) is retried with backoff inside one request', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_busy');
    const before = await calls();
    await t.sim.fault(EXCHANGE_PATH, { errcode: -1, times: 2 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r.__typename).toBe('PhoneNumberVerified');
    expect((await calls()) - before).toBe(3);
  });

  it('a 502 that persists past the retries is UPSTREAM_UNAVAILABLE', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_502');
    await t.sim.fault(EXCHANGE_PATH, { httpStatus: 502, times: 3 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
  });

  it('a WeChat timeout is OUTCOME_UNKNOWN: the code may be spent, so it is never sent again', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_timeout');
    const before = await calls();
    await t.sim.fault(EXCHANGE_PATH, { delayMs: 2500, times: 1 }); // the test config's timeout is 1500 ms
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ __typename: 'OutcomeUnknownError', code: 'OUTCOME_UNKNOWN', retryable: false });
    const again = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(again).toMatchObject({ code: 'OUTCOME_UNKNOWN', retryable: false });
    expect((await calls()) - before).toBe(1);
  });

  it('a connection reset mid-request is OUTCOME_UNKNOWN too, and not resent', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_reset');
    const before = await calls();
    await t.sim.fault(EXCHANGE_PATH, { reset: true, times: 1 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ code: 'OUTCOME_UNKNOWN', retryable: false });
    await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    expect((await calls()) - before).toBe(1);
  });

  it('a 502 that persists past the retries is UPSTREAM_UNAVAILABLE, and the same session may retry', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_502_retry');
    await t.sim.fault(EXCHANGE_PATH, { httpStatus: 503, times: 3 });
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
    const retry = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(retry.__typename).toBe('PhoneNumberVerified');
  });

  it('an expired code (simulator clock +301 s) is INVALID_CODE, and a retry is answered without WeChat', async () => {
    const code = await mintCode(t.sim);
    const alice = await t.client('o_alice_expired');
    await t.sim.advance(301);
    const before = await calls();
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ __typename: 'InvalidCodeError', code: 'INVALID_CODE', retryable: false });
    const again = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(again).toMatchObject({ code: 'INVALID_CODE' });
    expect((await calls()) - before).toBe(1);
  });

  it('one code sent under two apps is still one claim: the second app gets CODE_ALREADY_USED without a WeChat call', async () => {
    const code = await mintCode(t.sim);
    const a = await t.client('o_two_apps', { appid: APP });
    const b = await t.client('o_two_apps_b', { appid: OTHER_APP.appid });
    expect((await a.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const before = await calls();
    const r = (await b.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ code: 'CODE_ALREADY_USED' });
    expect((await calls()) - before).toBe(0);
  });

  it("a code of another app is refused and gives no number", async () => {
    const phone = nextPhone();
    const foreign = await mintCode(t.sim, phone, OTHER_APP.appid);
    const alice = await t.client('o_alice_foreign');
    const r = (await alice.ExchangePhoneCode({ input: { code: foreign, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ __typename: 'AppMismatchError', code: 'APP_MISMATCH', retryable: false });
    expect(JSON.stringify(r)).not.toContain(phone);
  });

  it('a session of one app cannot exchange for another app', async () => {
    const code = await mintCode(t.sim, nextPhone(), OTHER_APP.appid);
    const alice = await t.client('o_alice_crossapp');
    const before = await calls();
    const r = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login', appid: OTHER_APP.appid } })).exchangePhoneCode;
    expect(r).toMatchObject({ code: 'APP_MISMATCH' });
    expect((await calls()) - before).toBe(0);
  });

  it('malformed input is refused before anything reaches WeChat', async () => {
    const alice = await t.client('o_alice_input');
    const before = await calls();
    const code = await mintCode(t.sim);
    const cases: [Record<string, string>, string][] = [
      [{ code: `${code}\u200b`, purpose: 'login' }, 'code'],
      [{ code: `${code}\u0000`, purpose: 'login' }, 'code'],
      [{ code: 'a b', purpose: 'login' }, 'code'],
      [{ code: '', purpose: 'login' }, 'code'],
      [{ code: 'x'.repeat(129), purpose: 'login' }, 'code'],
      [{ code, purpose: '' }, 'purpose'],
      [{ code, purpose: 'marketing' }, 'purpose'],
      [{ code, purpose: 'login', appid: 'not-an-appid' }, 'appid'],
    ];
    for (const [input, field] of cases) {
      const r = (await alice.ExchangePhoneCode({ input: input as never })).exchangePhoneCode;
      expect(r, JSON.stringify(input)).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT', field, retryable: false });
    }
    expect((await calls()) - before).toBe(0);
    // ...and the untouched code still works.
    const ok = (await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(ok.__typename).toBe('PhoneNumberVerified');
  });
});

describe.each(BACKENDS)('cold cache ($name)', (backend) => {
  let t: TestGateway;
  beforeEach(async () => {
    t = await startTestGateway({ backend });
    return () => t.close();
  });

  it('200 concurrent exchanges on a cold cache fetch exactly one access token', async () => {
    const codes = await Promise.all(Array.from({ length: 200 }, () => mintCode(t.sim)));
    const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => t.client(`o_cold_${i}`)));
    const results = await Promise.all(
      codes.map((code, i) => clients[i % 10]!.ExchangePhoneCode({ input: { code, purpose: 'login' } }).then((r) => r.exchangePhoneCode)),
    );
    expect(results.every((r) => r.__typename === 'PhoneNumberVerified')).toBe(true);
    const stats = await t.sim.stats();
    expect(stats.tokensIssued.stable).toBe(1);
    expect(stats.calls['/cgi-bin/stable_token']).toBe(1);
    expect(stats.tokensIssued.forced).toBe(0);
    expect(stats.calls[EXCHANGE_PATH]).toBe(200);
  });
});
