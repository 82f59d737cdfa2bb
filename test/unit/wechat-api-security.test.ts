// The adapter in API security mode against a local server that does what WeChat does: it
// checks the request (headers, signature, encryption, additional data) with its own crypto,
// written here apart from the adapter's, and answers encrypted and signed.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants, createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  WechatAnswerUnverifiedError,
  WechatApiError,
  createWechatClient,
  parseApiSecurityKeys,
  type ApiSecurityKeys,
  type ApiSecurityNotice,
  type WechatClient,
} from '../../src/wechat/index.js';

const APPID = 'wx1111111111111111';
const PATH = '/wxa/business/getuserphonenumber';
const PHONE = { phoneNumber: '13800138000', purePhoneNumber: '13800138000', countryCode: '86', watermark: { timestamp: 1700000000, appid: APPID } };

interface Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}
let app: Pair;
let platform: Pair;
let otherPlatform: Pair;
const symmetricKey = randomBytes(32);
const SYM_SN = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const APP_KEY_SN = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const CERT_SN = '79ba700ea147819f640941bceb38b1d1';

beforeAll(() => {
  app = generateKeyPairSync('rsa', { modulusLength: 2048 });
  platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
  otherPlatform = generateKeyPairSync('rsa', { modulusLength: 2048 });
});

function keys(platformCertificateSn = CERT_SN): ApiSecurityKeys {
  const parsed = parseApiSecurityKeys(
    {
      algorithm: 'AES256_GCM',
      signatureAlgorithm: 'RSAwithSHA256',
      symmetricKey: symmetricKey.toString('base64'),
      symmetricKeySn: SYM_SN,
      privateKey: app.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      privateKeySn: APP_KEY_SN,
      platformCertificate: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      platformCertificateSn,
    },
    (f) => f,
  );
  if (!parsed.keys) throw new Error(parsed.problems.join('; '));
  return parsed.keys;
}

// --- what WeChat does, written out independently ----------------------------------------

interface Seen {
  headers: IncomingMessage['headers'];
  query: URLSearchParams;
  body: string;
  /** The decrypted request, when it verified. */
  plaintext?: Record<string, unknown>;
  refusal?: string;
}

function checkRequest(urlpath: string, req: IncomingMessage, body: string): Seen {
  const seen: Seen = { headers: req.headers, query: new URL(req.url!, 'http://x').searchParams, body };
  const h = (n: string) => req.headers[n] as string | undefined;
  const ts = h('wechatmp-timestamp');
  const sig = h('wechatmp-signature');
  if (h('wechatmp-appid') !== APPID || !ts || !sig) return { ...seen, refusal: 'headers' };
  const message = `${urlpath}\n${APPID}\n${ts}\n${body}`;
  if (!verify('sha256', Buffer.from(message), { key: app.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(sig, 'base64'))) {
    return { ...seen, refusal: 'signature' };
  }
  const { iv, data, authtag } = JSON.parse(body) as Record<string, string>;
  const d = createDecipheriv('aes-256-gcm', symmetricKey, Buffer.from(iv!, 'base64'));
  d.setAAD(Buffer.from(`${urlpath}|${APPID}|${ts}|${SYM_SN}`));
  d.setAuthTag(Buffer.from(authtag!, 'base64'));
  const plaintext = JSON.parse(Buffer.concat([d.update(Buffer.from(data!, 'base64')), d.final()]).toString()) as Record<string, unknown>;
  return { ...seen, plaintext };
}

interface AnswerOptions {
  timestamp?: number;
  signWith?: KeyObject;
  serial?: string;
  deprecated?: { serial: string; signWith: KeyObject };
  tamper?: boolean;
  appid?: string;
}

function sealedAnswer(urlpath: string, answer: object, o: AnswerOptions = {}): { headers: Record<string, string>; body: string } {
  const ts = o.timestamp ?? Math.floor(Date.now() / 1000);
  const appid = o.appid ?? APPID;
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', symmetricKey, iv);
  c.setAAD(Buffer.from(`${urlpath}|${appid}|${ts}|${SYM_SN}`));
  const data = Buffer.concat([c.update(JSON.stringify({ _n: 'n0nce', _appid: appid, _timestamp: ts, ...answer })), c.final()]);
  const body = JSON.stringify({ iv: iv.toString('base64'), data: data.toString('base64'), authtag: c.getAuthTag().toString('base64') });
  const signature = (key: KeyObject) =>
    sign('sha256', Buffer.from(`${urlpath}\n${appid}\n${ts}\n${body}`), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }).toString('base64');
  const headers: Record<string, string> = {
    'Wechatmp-Appid': appid,
    'Wechatmp-TimeStamp': String(ts),
    'Wechatmp-Serial': o.serial ?? CERT_SN,
    'Wechatmp-Signature': signature(o.signWith ?? platform.privateKey),
  };
  if (o.deprecated) {
    headers['Wechatmp-Serial-Deprecated'] = o.deprecated.serial;
    headers['Wechatmp-Signature-Deprecated'] = signature(o.deprecated.signWith);
  }
  return { headers, body: o.tamper ? body.replace('"iv":"', '"iv":"A') : body };
}

type Reply = (urlpath: string, seen: Seen) => { headers?: Record<string, string>; body: string };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function fakeWechat(reply: Reply): Promise<{ baseUrl: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  let urlpath = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = checkRequest(urlpath, req, Buffer.concat(chunks).toString());
      seen.push(s);
      const r = reply(urlpath, s);
      res.writeHead(200, { 'content-type': 'text/plain', ...r.headers });
      res.end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  urlpath = baseUrl + PATH;
  return { baseUrl, seen };
}

function client(baseUrl: string, o: { keys?: ApiSecurityKeys; notices?: ApiSecurityNotice[]; now?: () => number } = {}): WechatClient {
  const k = o.keys ?? keys();
  const c = createWechatClient({
    baseUrl,
    timeoutMs: 2000,
    retryBaseDelayMs: 1,
    apiSecurity: { keysFor: (appid) => (appid === APPID ? k : undefined), onNotice: (n) => o.notices?.push(n), ...(o.now ? { now: o.now } : {}) },
  });
  cleanups.push(() => c.close());
  return c;
}

const phoneAnswer = { errcode: 0, errmsg: 'ok', phone_info: PHONE };
const okReply: Reply = (urlpath, s) => (s.refusal ? { body: JSON.stringify({ errcode: 40234, errmsg: 'invalid signature rid: 1' }) } : sealedAnswer(urlpath, phoneAnswer));

async function refused(p: Promise<unknown>): Promise<WechatAnswerUnverifiedError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(WechatAnswerUnverifiedError);
  return e as WechatAnswerUnverifiedError;
}

describe('getuserphonenumber in API security mode', () => {
  it('sends the code encrypted and signed (access_token only in the query) and returns the verified, decrypted answer', async () => {
    const wx = await fakeWechat(okReply);
    const info = await client(wx.baseUrl).getUserPhoneNumber('ACCESS_TOKEN_1234', { code: 'the-code-0001', appid: APPID });
    expect(info).toEqual(PHONE);
    const [s] = wx.seen;
    expect(s!.refusal).toBeUndefined();
    expect(s!.query.get('access_token')).toBe('ACCESS_TOKEN_1234');
    expect(s!.headers['wechatmp-serial']).toBe(APP_KEY_SN);
    expect(s!.body).not.toContain('the-code-0001');
    expect(Object.keys(JSON.parse(s!.body) as object)).toEqual(['iv', 'data', 'authtag']);
    expect(Buffer.from((JSON.parse(s!.body) as { iv: string }).iv, 'base64')).toHaveLength(12);
    const p = s!.plaintext!;
    expect(p).toMatchObject({ code: 'the-code-0001', _appid: APPID, _timestamp: Number(s!.headers['wechatmp-timestamp']) });
    expect(typeof p._n).toBe('string');
    expect(p).not.toHaveProperty('access_token');
  });

  it('calls an app without keys in the clear', async () => {
    const wx = await fakeWechat(() => ({ body: JSON.stringify(phoneAnswer) }));
    expect(await client(wx.baseUrl).getUserPhoneNumber('T0KEN_PLAIN', { code: 'c0de-plain', appid: 'wx2222222222222222' })).toEqual(PHONE);
    expect(JSON.parse(wx.seen[0]!.body)).toEqual({ code: 'c0de-plain' });
    expect(wx.seen[0]!.headers['wechatmp-signature']).toBeUndefined();
  });

  it('refuses a bad platform signature, once (never sent again: the code may be spent)', async () => {
    const notices: ApiSecurityNotice[] = [];
    const wx = await fakeWechat((urlpath) => sealedAnswer(urlpath, phoneAnswer, { signWith: otherPlatform.privateKey }));
    const e = await refused(client(wx.baseUrl, { notices }).getUserPhoneNumber('T0KEN_BADSIG', { code: 'c0de-badsig', appid: APPID }));
    expect(e).toMatchObject({ kind: 'unverified', reason: 'bad_signature', endpoint: 'getuserphonenumber', retryable: true });
    expect(e.message).not.toContain('c0de-badsig');
    expect(wx.seen).toHaveLength(1);
    expect(notices).toEqual([{ kind: 'answer_refused', appid: APPID, reason: 'bad_signature', serial: CERT_SN }]);
  });

  it('refuses an answer changed in transit', async () => {
    const wx = await fakeWechat((urlpath) => sealedAnswer(urlpath, phoneAnswer, { tamper: true }));
    expect((await refused(client(wx.baseUrl).getUserPhoneNumber('T0KEN_TAMPER', { code: 'c0de-tamper', appid: APPID }))).reason).toBe('bad_signature');
  });

  it('refuses an unknown certificate number', async () => {
    const wx = await fakeWechat((urlpath) => sealedAnswer(urlpath, phoneAnswer, { serial: 'ffffffffffffffffffffffffffffffff' }));
    expect((await refused(client(wx.baseUrl).getUserPhoneNumber('T0KEN_SERIAL', { code: 'c0de-serial', appid: APPID }))).reason).toBe('unknown_serial');
  });

  it('refuses a stale timestamp (and one far ahead), even validly signed', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const timestamp of [now - 400, now + 400]) {
      const wx = await fakeWechat((urlpath) => sealedAnswer(urlpath, phoneAnswer, { timestamp }));
      expect((await refused(client(wx.baseUrl).getUserPhoneNumber('T0KEN_STALE', { code: 'c0de-stale', appid: APPID }))).reason).toBe('stale_timestamp');
    }
  });

  it("refuses a signed answer for another app, and an unsigned answer that is not a refusal", async () => {
    const other = await fakeWechat((urlpath) => sealedAnswer(urlpath, phoneAnswer, { appid: 'wx3333333333333333' }));
    expect((await refused(client(other.baseUrl).getUserPhoneNumber('T0KEN_OTHER', { code: 'c0de-other', appid: APPID }))).reason).toBe('appid_mismatch');
    const plain = await fakeWechat(() => ({ body: JSON.stringify(phoneAnswer) }));
    expect((await refused(client(plain.baseUrl).getUserPhoneNumber('T0KEN_UNSIGNED', { code: 'c0de-unsigned', appid: APPID }))).reason).toBe('missing_signature');
  });

  it("verifies with the deprecated signature during WeChat's certificate rotation, and says so", async () => {
    const notices: ApiSecurityNotice[] = [];
    const wx = await fakeWechat((urlpath) =>
      sealedAnswer(urlpath, phoneAnswer, { serial: 'new0000000000000000000000000000n', signWith: otherPlatform.privateKey, deprecated: { serial: CERT_SN, signWith: platform.privateKey } }),
    );
    expect(await client(wx.baseUrl, { notices }).getUserPhoneNumber('T0KEN_ROTATE', { code: 'c0de-rotate', appid: APPID })).toEqual(PHONE);
    expect(notices).toEqual([{ kind: 'platform_certificate_deprecated', appid: APPID, serial: CERT_SN, newSerial: 'new0000000000000000000000000000n' }]);
  });

  it("passes on WeChat's plain refusal of the request (40234 invalid signature) as a typed error, naming the configuration", async () => {
    const wx = await fakeWechat(() => ({ body: '{"errcode":40234,"errmsg":"invalid signature rid: 69af74a4-39bbb3e9-06b4d7c0"}' }));
    const wrongKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const misconfigured = { ...keys(), privateKey: wrongKey.privateKey };
    const e = await client(wx.baseUrl, { keys: misconfigured })
      .getUserPhoneNumber('T0KEN_40234', { code: 'c0de-40234', appid: APPID })
      .then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(WechatApiError);
    expect(e).toMatchObject({ errcode: 40234, kind: 'credentials', retryable: false });
    expect((e as Error).message).toMatch(/privateKey/);
    expect(wx.seen[0]!.refusal).toBe('signature');
  });

  it("passes on a business error from inside the encrypted answer (40029) as usual", async () => {
    const wx = await fakeWechat((urlpath) => sealedAnswer(urlpath, { errcode: 40029, errmsg: 'invalid code rid: 1' }));
    const e = await client(wx.baseUrl).getUserPhoneNumber('T0KEN_40029', { code: 'c0de-40029', appid: APPID }).then(() => undefined, (err: unknown) => err);
    expect(e).toMatchObject({ errcode: 40029, kind: 'invalid_code' });
  });
});

describe('the captured 40234 refusal (test/fixtures/wechat/getuserphonenumber/api_security_invalid_signature.json)', () => {
  it('reads the same in API security mode (unsigned refusal) and in plain mode', async () => {
    const fixture = JSON.parse(readFileSync(new URL('../fixtures/wechat/getuserphonenumber/api_security_invalid_signature.json', import.meta.url), 'utf8')) as {
      body: string;
      contentType: string;
      expect: { error: { errcode: number; kind: string } };
    };
    const wx = await fakeWechat(() => ({ headers: { 'content-type': fixture.contentType }, body: fixture.body }));
    for (const appid of [APPID, 'wx2222222222222222']) {
      const e = await client(wx.baseUrl).getUserPhoneNumber('T0KEN_FIXTURE', { code: 'c0de-fixture', appid }).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(WechatApiError);
      expect(e).toMatchObject(fixture.expect.error);
    }
    expect(wx.seen[0]!.headers['wechatmp-signature']).toBeDefined();
    expect(wx.seen[1]!.headers['wechatmp-signature']).toBeUndefined();
  });
});
