// The simulator enforces API security mode for apps registered with keys: it checks the
// signature, decrypts, checks the additional data and timestamp, and answers encrypted and
// signed with its platform key. Driven over real HTTP by the adapter, and by hand where a
// request must be wrong in one precise way.
import { constants, createCipheriv, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SimulatorControl, startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import {
  WechatApiError,
  createWechatClient,
  parseApiSecurityKeys,
  type ApiSecurityKeys,
  type WechatClient,
} from '../../src/wechat/index.js';

const SECURED = { appid: 'wx00000000000000f1', secret: 'secret-f1' };
const PLAIN = { appid: 'wx00000000000000f2', secret: 'secret-f2' };
const EXCHANGE = '/wxa/business/getuserphonenumber';
const SNS = { symmetricKeySn: 'b1b2b3b4b5b6b7b8b9b0b1b2b3b4b5b6', publicKeySn: 'c1c2c3c4c5c6c7c8c9c0c1c2c3c4c5c6', platformCertificateSn: 'd1d2d3d4d5d6d7d8d9d0d1d2d3d4d5d6' };

type Json = Record<string, any>;
let sim: RunningSimulator;
let ctl: SimulatorControl;
let appKey: { privateKey: KeyObject; publicKey: KeyObject };
let platformPublicKey: string;
const symmetricKey = randomBytes(32);
const clients: WechatClient[] = [];

beforeAll(async () => {
  appKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  sim = await startSimulator({ apps: [PLAIN] });
  ctl = new SimulatorControl(sim.url);
  const registered = await ctl.registerApp({
    ...SECURED,
    apiSecurity: { symmetricKey: symmetricKey.toString('base64'), publicKey: appKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(), ...SNS },
  });
  platformPublicKey = registered.apiSecurity!.platformPublicKey;
});
afterAll(async () => {
  for (const c of clients) await c.close();
  await sim.close();
});
beforeEach(() => sim.state.reset());

function keys(o: Partial<{ privateKey: KeyObject; symmetricKey: Buffer; platformCertificateSn: string }> = {}): ApiSecurityKeys {
  const parsed = parseApiSecurityKeys(
    {
      algorithm: 'AES256_GCM',
      signatureAlgorithm: 'RSAwithSHA256',
      symmetricKey: (o.symmetricKey ?? symmetricKey).toString('base64'),
      symmetricKeySn: SNS.symmetricKeySn,
      privateKey: (o.privateKey ?? appKey.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(),
      privateKeySn: SNS.publicKeySn,
      platformCertificate: platformPublicKey,
      platformCertificateSn: o.platformCertificateSn ?? SNS.platformCertificateSn,
    },
    (f) => f,
  );
  if (!parsed.keys) throw new Error(parsed.problems.join('; '));
  return parsed.keys;
}

function client(k: ApiSecurityKeys | undefined, o: { now?: () => number; appid?: string } = {}): WechatClient {
  const c = createWechatClient({
    baseUrl: sim.url,
    timeoutMs: 2000,
    maxRetries: 0,
    apiSecurity: { keysFor: (appid) => (appid === (o.appid ?? SECURED.appid) ? k : undefined), ...(o.now ? { now: o.now } : {}) },
  });
  clients.push(c);
  return c;
}

async function token(app = SECURED): Promise<string> {
  const res = await fetch(`${sim.url}/cgi-bin/stable_token`, { method: 'POST', body: JSON.stringify({ grant_type: 'client_credential', ...app }) });
  return ((await res.json()) as Json).access_token as string;
}

async function code(appid = SECURED.appid, phoneNumber = '13700137000'): Promise<string> {
  const minted = await ctl.phoneCode({ appid, phoneNumber });
  if (!('code' in minted)) throw new Error('no quota');
  return minted.code;
}

async function errorOf(p: Promise<unknown>): Promise<WechatApiError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(WechatApiError);
  return e as WechatApiError;
}

describe('registering an app with API security keys', () => {
  it("answers the platform's public key and key numbers, never the symmetric key; the documented fields still work", async () => {
    const res = await fetch(`${sim.url}/__sim__/apps`, { method: 'POST', body: JSON.stringify({ appid: 'wx00000000000000f3', secret: 's', product: 'realtime' }) });
    expect(await res.json()).toMatchObject({ appid: 'wx00000000000000f3', exempt: false, product: 'realtime' });
    const summary = sim.state.apiSecurity.summary(SECURED.appid)!;
    expect(summary).toMatchObject(SNS);
    expect(createPublicKey(summary.platformPublicKey).asymmetricKeyType).toBe('rsa');
    expect(JSON.stringify(await ctl.listApps())).not.toContain(symmetricKey.toString('base64'));
  });

  it('bad keys are a 400 that changes nothing', async () => {
    const res = await fetch(`${sim.url}/__sim__/apps`, {
      method: 'POST',
      body: JSON.stringify({ ...PLAIN, secret: 'changed', apiSecurity: { ...SNS, symmetricKey: 'short', publicKey: 'x' } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).error).toMatch(/symmetricKey/);
    expect(sim.state.apiSecurity.get(PLAIN.appid)).toBeUndefined();
    expect((await ctl.listApps()).find((a) => a.appid === PLAIN.appid)?.secret).toBe(PLAIN.secret);
  });
});

describe('getuserphonenumber for an app in API security mode', () => {
  it('verifies, decrypts, exchanges and answers encrypted and signed with the platform key', async () => {
    const info = await client(keys()).getUserPhoneNumber(await token(), { code: await code(), appid: SECURED.appid });
    expect(info).toMatchObject({ phoneNumber: '13700137000', watermark: { appid: SECURED.appid } });
    expect(sim.state.stats().codesExchanged).toBe(1);
  });

  it('answers a business error inside the encrypted answer (a code used twice is 40029)', async () => {
    const c = client(keys());
    const [t, once] = [await token(), await code()];
    await c.getUserPhoneNumber(t, { code: once, appid: SECURED.appid });
    expect(await errorOf(c.getUserPhoneNumber(t, { code: once, appid: SECURED.appid }))).toMatchObject({ errcode: 40029 });
  });

  it('refuses a plain call with 40233, leaving the code unspent', async () => {
    const c = await code();
    const t = await token();
    const res = await fetch(`${sim.url}${EXCHANGE}?access_token=${t}`, { method: 'POST', body: JSON.stringify({ code: c }) });
    expect(res.headers.get('wechatmp-signature')).toBeNull();
    expect(await res.json()).toMatchObject({ errcode: 40233 });
    expect(await client(keys()).getUserPhoneNumber(t, { code: c, appid: SECURED.appid })).toMatchObject({ phoneNumber: '13700137000' });
  });

  it('refuses a request signed with another key (40234) and one encrypted with another key (40235), codes unspent', async () => {
    const [t, c] = [await token(), await code()];
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(await errorOf(client(keys({ privateKey: other.privateKey })).getUserPhoneNumber(t, { code: c, appid: SECURED.appid }))).toMatchObject({
      errcode: 40234,
      kind: 'credentials',
    });
    expect(await errorOf(client(keys({ symmetricKey: randomBytes(32) })).getUserPhoneNumber(t, { code: c, appid: SECURED.appid }))).toMatchObject({ errcode: 40235 });
    expect(sim.state.stats().codesExchanged).toBe(0);
    expect(await client(keys()).getUserPhoneNumber(t, { code: c, appid: SECURED.appid })).toMatchObject({ purePhoneNumber: '13700137000' });
  });

  it('refuses a request timestamp more than 300 s from its clock (40240)', async () => {
    const [t, c] = [await token(), await code()];
    const late = client(keys(), { now: () => Date.now() - 400_000 });
    expect(await errorOf(late.getUserPhoneNumber(t, { code: c, appid: SECURED.appid }))).toMatchObject({ errcode: 40240 });
  });

  it("refuses Wechatmp-Appid naming another app than the token's (40237), and keys for an app without the mode (40238)", async () => {
    const [t, c] = [await token(PLAIN), await code(PLAIN.appid)];
    const body = '{"iv":"AAAAAAAAAAAAAAAA","data":"AA==","authtag":"AAAAAAAAAAAAAAAAAAAAAA=="}';
    const res = await fetch(`${sim.url}${EXCHANGE}?access_token=${t}`, {
      method: 'POST',
      body,
      headers: { 'Wechatmp-Appid': SECURED.appid, 'Wechatmp-TimeStamp': String(Math.floor(Date.now() / 1000)), 'Wechatmp-Signature': 'AAAA' },
    });
    expect(await res.json()).toMatchObject({ errcode: 40237 });
    expect(await errorOf(client(keys(), { appid: PLAIN.appid }).getUserPhoneNumber(t, { code: c, appid: PLAIN.appid }))).toMatchObject({ errcode: 40238 });
  });

  it('checks the additional data: a request encrypted for another URL is 40235 even though its signature is right', async () => {
    const [t, c] = [await token(), await code()];
    const ts = Math.floor(Date.now() / 1000);
    const urlpath = `${sim.url}${EXCHANGE}`;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', symmetricKey, iv);
    cipher.setAAD(Buffer.from(`${sim.url}/wxa/other|${SECURED.appid}|${ts}|${SNS.symmetricKeySn}`));
    const data = Buffer.concat([cipher.update(JSON.stringify({ _n: 'abc', _appid: SECURED.appid, _timestamp: ts, code: c })), cipher.final()]);
    const body = JSON.stringify({ iv: iv.toString('base64'), data: data.toString('base64'), authtag: cipher.getAuthTag().toString('base64') });
    const signature = sign('sha256', Buffer.from(`${urlpath}\n${SECURED.appid}\n${ts}\n${body}`), { key: appKey.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    const res = await fetch(`${urlpath}?access_token=${t}`, {
      method: 'POST',
      body,
      headers: { 'Wechatmp-Appid': SECURED.appid, 'Wechatmp-TimeStamp': String(ts), 'Wechatmp-Signature': signature.toString('base64') },
    });
    expect(await res.json()).toMatchObject({ errcode: 40235 });
  });

  it('leaves apps without keys as they were: a plain call works', async () => {
    const [t, c] = [await token(PLAIN), await code(PLAIN.appid, '13600136000')];
    expect(await client(undefined).getUserPhoneNumber(t, { code: c, appid: PLAIN.appid })).toMatchObject({ phoneNumber: '13600136000' });
  });
});
