import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, OTHER_APP, mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';
import { SANDBOX_APP } from '../../src/simulator/index.js';

const EXCHANGE_PATH = '/wxa/business/getuserphonenumber';

describe.each(BACKENDS)('no secrets in logs or error messages ($name)', (backend) => {
  let t: TestGateway;
  const secrets = new Set<string>();
  const errorTexts: string[] = [];
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  function remember(...values: (string | undefined)[]) {
    for (const v of values) if (v) secrets.add(v);
  }

  it('drives every outcome at debug log level', async () => {
    remember(SANDBOX_APP.secret, OTHER_APP.secret, t.config.jwt.secret, t.config.dataKey.toString('base64'));
    const exchange = async (sub: string, code: string, extra: Record<string, string> = {}) => {
      const jwt = await t.token(sub);
      remember(jwt);
      const res = await fetch(t.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
        body: JSON.stringify({
          query: 'mutation($input: ExchangePhoneCodeInput!){ exchangePhoneCode(input:$input){ __typename ... on ExchangeError { code message } } }',
          variables: { input: { code, purpose: 'login', ...extra } },
        }),
      });
      const text = await res.text();
      if (!text.includes('PhoneNumberVerified')) errorTexts.push(text);
      return text;
    };
    const phoneCode = async (appid = APP) => {
      const phone = nextPhone();
      remember(phone);
      const code = await mintCode(t.sim, phone, appid);
      remember(code);
      return code;
    };

    const code = await phoneCode();
    expect(await exchange('o_leak', code)).toContain('PhoneNumberVerified');
    await exchange('o_leak', code); // replay
    expect(await exchange('o_other', code)).toContain('CODE_ALREADY_USED');
    for (const [fault, expected] of [
      [{ errcode: 40001, times: 1 }, 'PhoneNumberVerified'],
      [{ errcode: 45011, times: 1 }, 'RATE_LIMITED'],
      [{ httpStatus: 502, times: 3 }, 'UPSTREAM_UNAVAILABLE'],
      [{ delayMs: 2000, times: 1 }, 'OUTCOME_UNKNOWN'],
      [{ reset: true, times: 1 }, 'OUTCOME_UNKNOWN'],
    ] as const) {
      await t.sim.fault(EXCHANGE_PATH, fault);
      expect(await exchange('o_leak', await phoneCode())).toContain(expected);
    }
    expect(await exchange('o_leak', await phoneCode(OTHER_APP.appid))).toContain('APP_MISMATCH');
    const expiring = await phoneCode();
    await t.sim.advance(301);
    expect(await exchange('o_leak', expiring)).toContain('INVALID_CODE');
    const near = await phoneCode();
    expect(await exchange('o_leak', `${near}\u200b`)).toContain('INVALID_INPUT');
    expect(await exchange('o_leak', near, { purpose: 'marketing' })).toContain('INVALID_INPUT');

    // The access token the gateway holds: stable_token in normal mode hands back the same one.
    const tokenRes = await fetch(`${t.simulator.url}/cgi-bin/stable_token`, {
      method: 'POST',
      body: JSON.stringify({ grant_type: 'client_credential', appid: APP, secret: SANDBOX_APP.secret }),
    });
    remember(((await tokenRes.json()) as { access_token: string }).access_token);

    // Legacy flow, success and failures.
    const jwt = await t.token('o_legacy_leak');
    const client = await t.client('o_legacy_leak');
    remember(jwt);
    const phone = nextPhone();
    remember(phone);
    const login = await t.sim.loginCode({ appid: APP, openid: 'o_legacy_leak', phoneNumber: phone });
    remember(login.code, login.encryptedData, login.iv);
    await client.DecryptPhoneNumber({ input: { loginCode: login.code, encryptedData: login.encryptedData!, iv: login.iv!, purpose: 'login' } });
    const stale = await t.sim.loginCode({ appid: APP, openid: 'o_legacy_leak', phoneNumber: phone });
    const fresh = await t.sim.loginCode({ appid: APP, openid: 'o_legacy_leak' });
    remember(stale.code, stale.encryptedData, fresh.code);
    const mismatch = await client.DecryptPhoneNumber({ input: { loginCode: fresh.code, encryptedData: stale.encryptedData!, iv: stale.iv!, purpose: 'login' } });
    errorTexts.push(JSON.stringify(mismatch));

    // Bad session tokens.
    for (const bad of [`${jwt}x`, 'not-a-token']) {
      const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bad}` }, body: '{"query":"{ session { subject } }"}' });
      expect(res.status).toBe(401);
      errorTexts.push(await res.text());
    }
    expect(t.logs.length).toBeGreaterThan(10);
  });

  it('none of the numbers, codes, tokens or secrets used appear in any log line or error message', () => {
    expect(secrets.size).toBeGreaterThan(20);
    const haystacks = [...t.logs, ...errorTexts];
    const leaks: string[] = [];
    for (const s of secrets) {
      for (const h of haystacks) if (h.includes(s)) leaks.push(`${s.slice(0, 6)}… in ${h.slice(0, 160)}`);
    }
    expect(leaks).toEqual([]);
  });
});
