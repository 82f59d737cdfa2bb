import { createDecipheriv } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import { errmsg } from '../support/wechat-errmsg.js';

const A = { appid: 'wx00000000000000a1', secret: 'secret-a' };
const B = { appid: 'wx00000000000000b2', secret: 'secret-b' };
const PHONE = '13800138000';

let sim: RunningSimulator;
let tokenA: string;
let tokenB: string;

type Json = Record<string, any>;

async function tokenFor(app: typeof A): Promise<string> {
  const res = await fetch(`${sim.url}/cgi-bin/stable_token`, {
    method: 'POST',
    body: JSON.stringify({ grant_type: 'client_credential', ...app }),
  });
  return ((await res.json()) as Json).access_token as string;
}

async function control(path: string, body: Json): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

async function phoneCode(body: Json = {}): Promise<string> {
  const { status, json } = await control('/__sim__/phone-codes', { appid: A.appid, phoneNumber: PHONE, ...body });
  expect(status).toBe(200);
  return json.code as string;
}

async function exchange(code: unknown, token = tokenA, extra: Json = {}): Promise<{ res: Response; json: Json }> {
  const res = await fetch(`${sim.url}/wxa/business/getuserphonenumber?access_token=${encodeURIComponent(token)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, ...extra }),
  });
  // The simulator answers text/plain here, like WeChat: parse whatever the type says.
  return { res, json: JSON.parse(await res.text()) as Json };
}

async function session(params: Record<string, string>): Promise<Json> {
  const res = await fetch(`${sim.url}/sns/jscode2session?${new URLSearchParams(params)}`);
  return (await res.json()) as Json;
}
const sessionFor = (jsCode: string, app = A) =>
  session({ appid: app.appid, secret: app.secret, js_code: jsCode, grant_type: 'authorization_code' });

function decrypt(sessionKey: string, encryptedData: string, iv: string): Json {
  const decipher = createDecipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), Buffer.from(iv, 'base64'));
  const plain = Buffer.concat([decipher.update(Buffer.from(encryptedData, 'base64')), decipher.final()]);
  return JSON.parse(plain.toString('utf8')) as Json;
}

beforeAll(async () => {
  sim = await startSimulator({ apps: [A, B] });
});
afterAll(() => sim.close());
beforeEach(async () => {
  sim.state.reset();
  tokenA = await tokenFor(A);
  tokenB = await tokenFor(B);
});

describe('phone codes', () => {
  it('are 64 lowercase hex characters, valid 300 s from minting on the simulator clock', async () => {
    const before = sim.state.now();
    const { json } = await control('/__sim__/phone-codes', { appid: A.appid, phoneNumber: PHONE });
    expect(json.code).toMatch(/^[0-9a-f]{64}$/);
    expect(json.expiresAt).toBeGreaterThanOrEqual(before + 300_000);
    expect(json.expiresAt).toBeLessThanOrEqual(sim.state.now() + 300_000);
  });

  it("exchange to production's answer (countryCode the string \"86\"), as text/plain", async () => {
    const mintedAt = sim.state.now();
    const code = await phoneCode();
    sim.state.advance(100);
    const { res, json } = await exchange(code);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(json).toEqual({
      errcode: 0,
      errmsg: 'ok',
      phone_info: {
        phoneNumber: PHONE,
        purePhoneNumber: PHONE,
        countryCode: '86',
        watermark: { timestamp: expect.any(Number), appid: A.appid },
      },
    });
    // The watermark is when the user tapped, not when the backend exchanged.
    expect(Math.abs(json.phone_info.watermark.timestamp - Math.floor(mintedAt / 1000))).toBeLessThanOrEqual(1);
  });

  it('carry the calling code in phoneNumber outside mainland China, with no space; never in purePhoneNumber', async () => {
    const code = await phoneCode({ phoneNumber: '61234567', countryCode: '852' });
    const { json } = await exchange(code);
    expect(json.phone_info).toMatchObject({ phoneNumber: '+85261234567', purePhoneNumber: '61234567', countryCode: '852' });
    const us = await phoneCode({ phoneNumber: '4155550100', countryCode: 1 });
    expect((await exchange(us)).json.phone_info).toMatchObject({ phoneNumber: '+14155550100', purePhoneNumber: '4155550100', countryCode: '1' });
  });

  it('can be used once: the second exchange is 40029', async () => {
    const code = await phoneCode();
    expect((await exchange(code)).json.errcode).toBe(0);
    expect((await exchange(code)).json).toEqual({ errcode: 40029, errmsg: errmsg('invalid code', 'hint') });
  });

  it('expire 300 s after minting', async () => {
    const early = await phoneCode();
    const late = await phoneCode();
    sim.state.advance(299);
    expect((await exchange(early)).json.errcode).toBe(0);
    sim.state.advance(2);
    expect((await exchange(late)).json.errcode).toBe(40029);
  });

  it("another app's valid code is 40013 and is not used up by the attempt", async () => {
    const code = await phoneCode();
    expect((await exchange(code, tokenB)).json).toEqual({ errcode: 40013, errmsg: errmsg('invalid appid') });
    expect((await exchange(code, tokenA)).json.errcode).toBe(0);
    // Once used it is only an invalid code, for any app.
    expect((await exchange(code, tokenB)).json.errcode).toBe(40029);
  });

  it('check the openid when one is sent', async () => {
    const code = await phoneCode({ openid: 'o-user-1' });
    expect((await exchange(code, tokenA, { openid: 'o-user-2' })).json.errcode).toBe(40029);
    expect((await exchange(code, tokenA, { openid: 'o-user-1' })).json.errcode).toBe(0);
    const anonymous = await phoneCode();
    expect((await exchange(anonymous, tokenA, { openid: 'o-anyone' })).json.errcode).toBe(0);
  });

  it.each([
    ['a short string', 'abc'],
    ['uppercase hex', 'A'.repeat(64)],
    ['a never-issued code', '0'.repeat(64)],
    ['a login code', 'Abcdefghijklmnopqrstuvwxyz012345'],
    ['a number', 42],
  ])('%s is 40029', async (_name, code) => {
    expect((await exchange(code)).json.errcode).toBe(40029);
  });

  it('a body without code (or with a null one) is 47001 data format error, and the code stays usable', async () => {
    const code = await phoneCode();
    for (const body of [{}, { code: null }, { openid: 'o-user' }]) {
      const res = await fetch(`${sim.url}/wxa/business/getuserphonenumber?access_token=${tokenA}`, { method: 'POST', body: JSON.stringify(body) });
      expect(JSON.parse(await res.text())).toEqual({ errcode: 47001, errmsg: errmsg('data format error', 'hint') });
    }
    expect((await exchange(code)).json.errcode).toBe(0);
  });

  it('no access_token (absent or empty) is 41001 access_token missing, before anything else', async () => {
    const code = await phoneCode();
    for (const query of ['', '?access_token=']) {
      const res = await fetch(`${sim.url}/wxa/business/getuserphonenumber${query}`, { method: 'POST', body: JSON.stringify({ code }) });
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(JSON.parse(await res.text())).toEqual({ errcode: 41001, errmsg: errmsg('access_token missing') });
    }
    expect((await exchange(code)).json.errcode).toBe(0);
  });

  it('checks the token first and keeps the code on a token error', async () => {
    const code = await phoneCode();
    expect((await exchange(code, 'bogus-token')).json.errcode).toBe(40014);
    expect((await exchange(code)).json.errcode).toBe(0);
  });

  it('needs POST (43002) and a JSON body (47001)', async () => {
    const get = await fetch(`${sim.url}/wxa/business/getuserphonenumber?access_token=${tokenA}`);
    expect(((await get.json()) as Json).errcode).toBe(43002);
    const bad = await fetch(`${sim.url}/wxa/business/getuserphonenumber?access_token=${tokenA}`, { method: 'POST', body: '{code' });
    expect(((await bad.json()) as Json).errcode).toBe(47001);
    // A form-encoded body (a common client mistake) is not JSON either.
    const form = await fetch(`${sim.url}/wxa/business/getuserphonenumber?access_token=${tokenA}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `code=${'a'.repeat(64)}`,
    });
    expect(JSON.parse(await form.text())).toEqual({ errcode: 47001, errmsg: errmsg('data format error', 'hint') });
  });

  it('counts issued and exchanged codes', async () => {
    const code = await phoneCode();
    await phoneCode();
    await exchange(code);
    await exchange(code);
    expect(sim.state.stats()).toMatchObject({ codesIssued: 2, codesExchanged: 1 });
  });
});

describe('login codes and jscode2session', () => {
  it('exchange once for the openid and a 16-byte session key; reuse is 40163', async () => {
    const { json } = await control('/__sim__/login-codes', { appid: A.appid, openid: 'o-login-1' });
    expect(json).toEqual({ code: expect.stringMatching(/^[A-Za-z0-9]{32}$/) });
    const answer = await sessionFor(json.code);
    expect(answer).toEqual({ openid: 'o-login-1', session_key: expect.any(String) });
    // WeChat's bytes: session_key first, no errcode, no unionid (the app is bound to no Open Platform account).
    expect(Object.keys(answer)).toEqual(['session_key', 'openid']);
    expect(Buffer.from(answer.session_key, 'base64')).toHaveLength(16);
    expect(await sessionFor(json.code)).toEqual({ errcode: 40163, errmsg: errmsg('code been used', 'sns') });
  });

  it('answers text/plain, and succeeds without grant_type', async () => {
    const { json } = await control('/__sim__/login-codes', { appid: A.appid, openid: 'o-no-grant' });
    const res = await fetch(`${sim.url}/sns/jscode2session?${new URLSearchParams({ appid: A.appid, secret: A.secret, js_code: json.code })}`);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(JSON.parse(await res.text())).toEqual({ session_key: expect.any(String), openid: 'o-no-grant' });
  });

  it('reads the query string only: a POST with the parameters in its body is 41002 appid missing, and the code stays usable', async () => {
    const { json } = await control('/__sim__/login-codes', { appid: A.appid, openid: 'o-post' });
    const params = { appid: A.appid, secret: A.secret, js_code: json.code, grant_type: 'authorization_code' };
    for (const [type, body] of [
      ['application/json', JSON.stringify(params)],
      ['application/x-www-form-urlencoded', new URLSearchParams(params).toString()],
    ] as const) {
      const res = await fetch(`${sim.url}/sns/jscode2session`, { method: 'POST', headers: { 'content-type': type }, body });
      expect(JSON.parse(await res.text())).toEqual({ errcode: 41002, errmsg: errmsg('appid missing', 'sns') });
    }
    expect((await sessionFor(json.code)).openid).toBe('o-post');
  });

  it('unknown, expired or other-app login codes are 40029', async () => {
    expect((await sessionFor('Z'.repeat(32))).errcode).toBe(40029);
    const a = (await control('/__sim__/login-codes', { appid: A.appid, openid: 'o1' })).json.code;
    expect((await sessionFor(a, B)).errcode).toBe(40029);
    sim.state.advance(301);
    expect((await sessionFor(a)).errcode).toBe(40029);
  });

  it.each([
    ['wrong grant_type', { grant_type: 'client_credential' }, 40002],
    ['unknown appid', { appid: 'wx0000000000000099' }, 40013],
    ['wrong secret', { secret: 'nope' }, 40125],
    ['missing js_code', { js_code: '' }, 41008],
  ])('%s -> %i', async (_name, override, errcode) => {
    const params = { appid: A.appid, secret: A.secret, js_code: 'x'.repeat(32), grant_type: 'authorization_code', ...override };
    expect((await session(params)).errcode).toBe(errcode);
  });

  it('login with a phone number gives data that decrypts under the new session key', async () => {
    const { json } = await control('/__sim__/login-codes', { appid: A.appid, openid: 'o-legacy', phoneNumber: PHONE });
    const { session_key } = await sessionFor(json.code);
    const payload = decrypt(session_key, json.encryptedData, json.iv);
    expect(payload).toEqual({
      phoneNumber: PHONE,
      purePhoneNumber: PHONE,
      countryCode: '86',
      watermark: { appid: A.appid, timestamp: expect.any(Number) },
    });
  });

  it('a later wx.login rotates the session key: earlier button data no longer decrypts', async () => {
    const first = (await control('/__sim__/login-codes', { appid: A.appid, openid: 'o-rot' })).json.code;
    const button = await control('/__sim__/encrypted-phone', { appid: A.appid, openid: 'o-rot', phoneNumber: PHONE });
    expect(button.status).toBe(200);
    const sameSession = await sessionFor(first);
    expect(decrypt(sameSession.session_key, button.json.encryptedData, button.json.iv).purePhoneNumber).toBe(PHONE);

    await control('/__sim__/login-codes', { appid: A.appid, openid: 'o-rot' });
    const stale = await control('/__sim__/encrypted-phone', { appid: A.appid, openid: 'o-rot', phoneNumber: PHONE });
    const decryptsWithOldKey = (() => {
      try {
        return decrypt(sameSession.session_key, stale.json.encryptedData, stale.json.iv).purePhoneNumber === PHONE;
      } catch {
        return false;
      }
    })();
    expect(decryptsWithOldKey).toBe(false);
  });

  it('encrypted-phone needs an existing session (400)', async () => {
    const { status, json } = await control('/__sim__/encrypted-phone', { appid: A.appid, openid: 'o-never', phoneNumber: PHONE });
    expect(status).toBe(400);
    expect(json.error).toMatch(/session/);
  });
});
