// Real HTTP against small local servers: the wire (keep-alive, timeouts,
// resets, odd Content-Types) is what this adapter is for.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  WechatApiError,
  WechatUpstreamError,
  checkWatermark,
  createWechatClient,
} from '../../src/wechat/index.js';
import type { UpstreamFailureKind, WechatCallEvent, WechatClient, WechatClientOptions } from '../../src/wechat/index.js';

interface Hit {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
}
type Handler = (req: IncomingMessage, res: ServerResponse, hit: Hit, n: number) => unknown;

interface FakeWechat {
  baseUrl: string;
  hits: Hit[];
  connections: () => number;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function fakeWechat(handler: Handler): Promise<FakeWechat> {
  const hits: Hit[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const hit = { method: req.method ?? '', path: url.pathname, query: url.searchParams, body: Buffer.concat(chunks).toString() };
      hits.push(hit);
      void handler(req, res, hit, hits.length);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}`, hits, connections: () => connections };
}

function send(res: ServerResponse, body: unknown, contentType = 'application/json') {
  res.writeHead(200, { 'content-type': contentType });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

function client(fake: FakeWechat, opts: Partial<WechatClientOptions> = {}): WechatClient {
  const c = createWechatClient({ baseUrl: fake.baseUrl, timeoutMs: 1000, retryBaseDelayMs: 1, ...opts });
  cleanups.push(() => c.close());
  return c;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function upstream(p: Promise<unknown>, kind: UpstreamFailureKind): Promise<WechatUpstreamError> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(WechatUpstreamError);
  expect((e as WechatUpstreamError).kind).toBe(kind);
  return e as WechatUpstreamError;
}

async function apiError(p: Promise<unknown>, errcode: number): Promise<WechatApiError> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(WechatApiError);
  expect((e as WechatApiError).errcode).toBe(errcode);
  return e as WechatApiError;
}

const TOKEN = 'ACCESS-TOKEN-5f2b9c7e1d';
const CODE = 'PHONE-CODE-0a1b2c3d4e';
const SECRET = 'APP-SECRET-9e8d7c6b5a';
const APPID = 'wx4f4bc4dec97d474b';
const PHONE_INFO = {
  phoneNumber: '13800138000',
  purePhoneNumber: '13800138000',
  countryCode: 86,
  watermark: { timestamp: 1637744274, appid: APPID },
};

describe('access tokens', () => {
  it('getStableToken POSTs the JSON body, normal mode by default; text/plain answer parsed', async () => {
    const fake = await fakeWechat((_q, res) => send(res, '{"access_token":"T1","expires_in":7000}', 'text/plain'));
    const c = client(fake);
    expect(await c.getStableToken({ appid: APPID, secret: SECRET })).toEqual({ accessToken: 'T1', expiresIn: 7000 });
    await c.getStableToken({ appid: APPID, secret: SECRET, forceRefresh: true });
    expect(fake.hits.map((h) => [h.method, h.path])).toEqual([
      ['POST', '/cgi-bin/stable_token'],
      ['POST', '/cgi-bin/stable_token'],
    ]);
    expect(JSON.parse(fake.hits[0]!.body)).toEqual({ grant_type: 'client_credential', appid: APPID, secret: SECRET, force_refresh: false });
    expect(JSON.parse(fake.hits[1]!.body).force_refresh).toBe(true);
    expect([...fake.hits[0]!.query.keys()]).toEqual([]); // the secret stays out of the URL
  });

  it('getToken GETs the legacy endpoint; "application/json; encoding=utf-8" answer parsed', async () => {
    const fake = await fakeWechat((_q, res) =>
      send(res, { access_token: 'T2', expires_in: '7200' }, 'application/json; encoding=utf-8'),
    );
    expect(await client(fake).getToken({ appid: APPID, secret: SECRET })).toEqual({ accessToken: 'T2', expiresIn: 7200 });
    const hit = fake.hits[0]!;
    expect([hit.method, hit.path]).toEqual(['GET', '/cgi-bin/token']);
    expect(Object.fromEntries(hit.query)).toEqual({ grant_type: 'client_credential', appid: APPID, secret: SECRET });
  });

  it('40013 on a token endpoint is a credentials error', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 40013, errmsg: 'invalid appid' }));
    const e = await apiError(client(fake).getStableToken({ appid: 'wxbad', secret: SECRET }), 40013);
    expect(e.kind).toBe('credentials');
  });
});

describe('getUserPhoneNumber', () => {
  it('sends the code with the token in the query; countryCode 86 becomes "86"', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 0, errmsg: 'ok', phone_info: PHONE_INFO }));
    const info = await client(fake).getUserPhoneNumber(TOKEN, { code: CODE, openid: 'o-user' });
    expect(info).toEqual({ ...PHONE_INFO, countryCode: '86' });
    const hit = fake.hits[0]!;
    expect([hit.method, hit.path, hit.query.get('access_token')]).toEqual(['POST', '/wxa/business/getuserphonenumber', TOKEN]);
    expect(JSON.parse(hit.body)).toEqual({ code: CODE }); // openid only when configured
  });

  it('accepts countryCode "86", a missing errcode, and sends openid when configured', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { phone_info: { ...PHONE_INFO, countryCode: '86' } }, 'text/plain'));
    const info = await client(fake, { sendOpenid: true }).getUserPhoneNumber(TOKEN, { code: CODE, openid: 'o-user' });
    expect(info.countryCode).toBe('86');
    expect(JSON.parse(fake.hits[0]!.body)).toEqual({ code: CODE, openid: 'o-user' });
  });

  it('40013 here means the code belongs to another app', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 40013, errmsg: 'invalid appid' }));
    const e = await apiError(client(fake).getUserPhoneNumber(TOKEN, { code: CODE }), 40013);
    expect(e.kind).toBe('app_mismatch');
  });

  it('a success answer without phone_info is an upstream bad_json', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 0, errmsg: 'ok', phone_info: { phoneNumber: 1 } }));
    const e = await upstream(client(fake).getUserPhoneNumber(TOKEN, { code: CODE }), 'bad_json');
    expect(e.message).toMatch(/phone_info/);
  });

  it('the watermark is left to checkWatermark', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { phone_info: { ...PHONE_INFO, watermark: { appid: 'wxother', timestamp: 1 } } }));
    const info = await client(fake).getUserPhoneNumber(TOKEN, { code: CODE });
    expect(checkWatermark(info, APPID)).toBe(false);
    expect(checkWatermark(info, 'wxother')).toBe(true);
  });
});

describe('code2Session', () => {
  it('GETs jscode2session with the login code; unionid only when sent', async () => {
    const fake = await fakeWechat((_q, res, _h, n) =>
      send(res, n === 1 ? { openid: 'o1', session_key: 'SK==' } : { openid: 'o1', session_key: 'SK==', unionid: 'u1' }),
    );
    const c = client(fake);
    const plain = await c.code2Session({ appid: APPID, secret: SECRET, jsCode: 'LOGIN-CODE' });
    expect(plain).toEqual({ openid: 'o1', sessionKey: 'SK==' });
    expect('unionid' in plain).toBe(false);
    expect(await c.code2Session({ appid: APPID, secret: SECRET, jsCode: 'LOGIN-CODE' })).toEqual({ openid: 'o1', sessionKey: 'SK==', unionid: 'u1' });
    expect(fake.hits[0]!.path).toBe('/sns/jscode2session');
    expect(Object.fromEntries(fake.hits[0]!.query)).toEqual({ appid: APPID, secret: SECRET, js_code: 'LOGIN-CODE', grant_type: 'authorization_code' });
  });

  it('40163 (code already used) is an invalid_code error', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 40163, errmsg: 'code been used' }));
    const e = await apiError(client(fake).code2Session({ appid: APPID, secret: SECRET, jsCode: 'LOGIN-CODE' }), 40163);
    expect(e.kind).toBe('invalid_code');
  });
});

describe('usage', () => {
  const SPU = '10000077';
  const row = (n: number) => ({ pkgId: `ZY${2823973277692477440n + BigInt(n)}`, orderId: `DD${n}`, status: 1, startTime: 1, endTime: 2, all: '1000', used: '3', spuId: SPU, skuId: '20000094', source: 2 });

  it('parses 64-bit string counters exactly, beyond 2^53, and numeric enums as numbers', async () => {
    const fake = await fakeWechat((_q, res) =>
      send(res, { errcode: 0, all: '18446744073709551615', effectiveUse: '9007199254740993', effectiveAll: '0', total: 1, startServiceTime: 1692028800, endServiceTime: 4294967295, detailList: [row(1)] }),
    );
    const page = await client(fake).getUsagePage(TOKEN, { spuId: SPU, offset: 0, limit: 20 });
    expect(page.all).toBe(18446744073709551615n);
    expect(page.effectiveUse).toBe(9007199254740993n);
    expect(page.effectiveAll).toBe(0n);
    expect(page).toMatchObject({ startServiceTime: 1692028800, endServiceTime: 4294967295 });
    expect(page.detailList).toEqual([
      { pkgId: 'ZY2823973277692477441', orderId: 'DD1', status: 1, startTime: 1, endTime: 2, all: 1000n, used: 3n, spuId: SPU, skuId: '20000094', source: 2 },
    ]);
    expect(Object.fromEntries(fake.hits[0]!.query)).toEqual({ access_token: TOKEN, spuId: SPU, offset: '0', limit: '20' });
  });

  it("reads the trial's row: pkgId \"\", source 1, endTime 2^32 − 1", async () => {
    const trial = { pkgId: '', orderId: '', status: 1, startTime: 1692028800, endTime: 4294967295, all: '1000', used: '1', spuId: SPU, skuId: '20000093', source: 1 };
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 0, all: '1000', effectiveUse: '1', effectiveAll: '0', total: 1, detailList: [trial] }));
    const usage = await client(fake).getUsage(TOKEN, { spuId: SPU });
    expect(usage.details).toEqual([{ ...trial, all: 1000n, used: 1n }]);
  });

  it('always sends spuId, offset and limit; refuses to call without a product id or with a limit over 20', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 0, all: '0', effectiveUse: '0', total: 0 }));
    const c = client(fake);
    await expect(c.getUsagePage(TOKEN, { spuId: '', offset: 0, limit: 20 })).rejects.toBeInstanceOf(RangeError);
    await expect(c.getUsagePage(TOKEN, { spuId: SPU, offset: 0, limit: 21 })).rejects.toBeInstanceOf(RangeError);
    await expect(c.getUsage(TOKEN, { spuId: undefined as unknown as string })).rejects.toBeInstanceOf(RangeError);
    await expect(c.getRecentAverage(TOKEN, { spuId: 'x' })).rejects.toBeInstanceOf(RangeError);
    expect(fake.hits).toHaveLength(0);
    await c.getUsage(TOKEN, { spuId: '10000086' });
    expect(Object.fromEntries(fake.hits[0]!.query)).toEqual({ access_token: TOKEN, spuId: '10000086', offset: '0', limit: '20' });
  });

  it('10120002 (a parameter missing or out of range) is a typed bad_request', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: 10120002, errmsg: 'invalid param' }));
    const e = await apiError(client(fake).getUsagePage(TOKEN, { spuId: SPU, offset: 0, limit: 20 }), 10120002);
    expect(e).toMatchObject({ kind: 'bad_request', retryable: false, endpoint: 'usage_get' });
  });

  it('rejects a counter sent as a number beyond 2^53 (its digits are already lost)', async () => {
    const fake = await fakeWechat((_q, res) => send(res, '{"all":18446744073709551615,"effectiveUse":"1","total":0}'));
    await upstream(client(fake).getUsagePage(TOKEN, { spuId: SPU, offset: 0, limit: 20 }), 'bad_json');
  });

  it('getUsage pages through 3 pages until total is read', async () => {
    const fake = await fakeWechat((_q, res, hit) => {
      const offset = Number(hit.query.get('offset'));
      const rows = Array.from({ length: Math.min(20, 45 - offset) }, (_, i) => row(offset + i));
      send(res, { errcode: 0, all: '5000', effectiveUse: '1200', total: 45, detailList: rows });
    });
    const usage = await client(fake).getUsage(TOKEN, { spuId: SPU });
    expect(fake.hits.map((h) => [h.query.get('spuId'), h.query.get('offset'), h.query.get('limit')])).toEqual([[SPU, '0', '20'], [SPU, '20', '20'], [SPU, '40', '20']]);
    expect(usage.details.map((d) => d.pkgId)).toEqual(Array.from({ length: 45 }, (_, i) => row(i).pkgId));
    expect(usage).toMatchObject({ all: 5000n, effectiveUse: 1200n, total: 45, detailsComplete: true });
  });

  it('getUsage follows a server that serves fewer rows than asked', async () => {
    const fake = await fakeWechat((_q, res, hit) => {
      const offset = Number(hit.query.get('offset'));
      const rows = Array.from({ length: Math.min(7, 45 - offset) }, (_, i) => row(offset + i));
      send(res, { all: '10', effectiveUse: '1', total: 45, detailList: rows });
    });
    const usage = await client(fake).getUsage(TOKEN, { spuId: SPU });
    expect(fake.hits.map((h) => h.query.get('offset'))).toEqual(['0', '7', '14', '21', '28', '35', '42']);
    expect(usage.details.length).toBe(45);
    expect(usage.detailsComplete).toBe(true);
  });

  it('getUsage counts a row repeated across pages once, the trial (pkgId "") included', async () => {
    const trial = { pkgId: '', orderId: '', status: 1, startTime: 1, endTime: 4294967295, all: '1000', used: '0', spuId: SPU, skuId: '20000093', source: 1 };
    const fake = await fakeWechat((_q, res, hit) => {
      // The second page starts one row early (a pack was added meanwhile): the trial comes twice.
      const rows = hit.query.get('offset') === '0' ? [trial, ...Array.from({ length: 19 }, (_, i) => row(i))] : [row(18), row(19), row(20)];
      send(res, { all: '10', effectiveUse: '1', total: 22, detailList: rows });
    });
    const usage = await client(fake).getUsage(TOKEN, { spuId: SPU });
    expect(usage.details.filter((d) => d.pkgId === '')).toHaveLength(1);
    expect(usage.details).toHaveLength(22);
    expect(usage.detailsComplete).toBe(true);
  });

  it('getUsage stops when the server ignores offset (same page again)', async () => {
    const fake = await fakeWechat((_q, res) =>
      send(res, { all: '10', effectiveUse: '1', total: 100, detailList: Array.from({ length: 20 }, (_, i) => row(i)) }),
    );
    const usage = await client(fake).getUsage(TOKEN, { spuId: SPU });
    expect(fake.hits.length).toBe(2);
    expect(usage.details.length).toBe(20);
    expect(usage.detailsComplete).toBe(false);
  });

  it('getUsage stops when total keeps growing', async () => {
    let served = 0;
    const fake = await fakeWechat((_q, res) => {
      const rows = Array.from({ length: 20 }, () => row(served++));
      send(res, { all: '10', effectiveUse: '1', total: served + 20, detailList: rows });
    });
    const usage = await client(fake).getUsage(TOKEN, { spuId: SPU });
    expect(fake.hits.length).toBe(3); // ceil(40 / 20) pages, plus one of slack
    expect(usage.detailsComplete).toBe(false);
  });

  it('getUsage stops on an empty page and with no rows at all', async () => {
    const fake = await fakeWechat((_q, res, hit) =>
      send(res, { all: '10', effectiveUse: '1', total: 30, detailList: hit.query.get('offset') === '0' ? [row(1)] : [] }),
    );
    expect((await client(fake).getUsage(TOKEN, { spuId: SPU })).detailsComplete).toBe(false);
    expect(fake.hits.length).toBe(2);

    const empty = await fakeWechat((_q, res) => send(res, { errcode: 0, errmsg: 'ok', all: '0', effectiveUse: '0', total: 0 }));
    expect(await client(empty).getUsage(TOKEN, { spuId: SPU })).toMatchObject({ details: [], total: 0, detailsComplete: true });
    expect(empty.hits.length).toBe(1);
  });

  it("getRecentAverage reads averageData, WeChat's fuzzed monthly figure (a number; a string too)", async () => {
    const fake = await fakeWechat((_q, res, _h, n) =>
      send(res, n === 1 ? { errcode: 0, errmsg: 'ok', averageData: 260000 } : { errcode: 0, averageData: '12345678901234567890' }),
    );
    const c = client(fake);
    expect(await c.getRecentAverage(TOKEN, { spuId: SPU })).toEqual({ monthlyAverage: 260000n });
    expect(await c.getRecentAverage(TOKEN, { spuId: '10000086' })).toEqual({ monthlyAverage: 12345678901234567890n });
    expect(fake.hits[0]!.path).toBe('/wxa/charge/usage/get_recent_average');
    expect(fake.hits.map((h) => h.query.get('spuId'))).toEqual([SPU, '10000086']);
  });

  it('getRecentAverage: 10122000 (no recent data) is a typed error; an answer without averageData is bad_json', async () => {
    const none = await fakeWechat((_q, res) => send(res, { errcode: 10122000, errmsg: 'no recent usage data' }));
    await apiError(client(none).getRecentAverage(TOKEN, { spuId: SPU }), 10122000);
    const odd = await fakeWechat((_q, res) => send(res, { errcode: 0, errmsg: 'ok', average: 3 }));
    await upstream(client(odd).getRecentAverage(TOKEN, { spuId: SPU }), 'bad_json');
  });
});

describe('upstream failures', () => {
  it('a non-JSON body is bad_json', async () => {
    const fake = await fakeWechat((_q, res) => send(res, '<html>502 Bad Gateway</html>', 'text/html'));
    await upstream(client(fake).getUserPhoneNumber(TOKEN, { code: CODE }), 'bad_json');
  });

  it('a 502 is http_status with the status', async () => {
    const fake = await fakeWechat((_q, res) => {
      res.writeHead(502);
      res.end('bad gateway');
    });
    const e = await upstream(client(fake, { maxRetries: 0 }).getUserPhoneNumber(TOKEN, { code: CODE }), 'http_status');
    expect(e.status).toBe(502);
    expect(e.retryable).toBe(true);
  });

  it('a reset connection is network', async () => {
    const fake = await fakeWechat((req) => req.socket.destroy());
    await upstream(client(fake).getUserPhoneNumber(TOKEN, { code: CODE }), 'network');
    expect(fake.hits.length).toBe(1);
  });

  it('a refused connection is network', async () => {
    const c = createWechatClient({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 1000 });
    cleanups.push(() => c.close());
    const e = await upstream(c.getStableToken({ appid: APPID, secret: SECRET }), 'network');
    expect(e.message).toBe('WeChat stable_token upstream failure (network): ECONNREFUSED');
  });

  it('slow headers hit the timeout, and are not retried', async () => {
    const fake = await fakeWechat((_q, res) => {
      setTimeout(() => send(res, { phone_info: PHONE_INFO }), 2000).unref();
    });
    const started = Date.now();
    await upstream(client(fake, { timeoutMs: 150 }).getUserPhoneNumber(TOKEN, { code: CODE }), 'timeout');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(fake.hits.length).toBe(1);
  });

  it('a body that stalls after the headers hits the same timeout', async () => {
    const fake = await fakeWechat((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"phone_info":');
    });
    const started = Date.now();
    await upstream(client(fake, { timeoutMs: 150 }).getUserPhoneNumber(TOKEN, { code: CODE }), 'timeout');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a body that trickles in, never idle for a whole timeout, still ends at the call deadline', async () => {
    // undici's body timeout is per gap between chunks: only the call's own deadline ends this one.
    const fake = await fakeWechat((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const drip = setInterval(() => res.write(' '), 40);
      res.once('close', () => clearInterval(drip));
    });
    const started = Date.now();
    await upstream(client(fake, { timeoutMs: 200 }).getUserPhoneNumber(TOKEN, { code: CODE }), 'timeout');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('the pool survives failures: a good call after each bad one succeeds', async () => {
    const fake = await fakeWechat((req, res, _h, n) => {
      if (n === 1) return req.socket.destroy();
      if (n === 3) return send(res, 'not json');
      send(res, { access_token: `T${n}`, expires_in: 7200 });
    });
    const c = client(fake);
    await upstream(c.getToken({ appid: APPID, secret: SECRET }), 'network');
    expect((await c.getToken({ appid: APPID, secret: SECRET })).accessToken).toBe('T2');
    await upstream(c.getToken({ appid: APPID, secret: SECRET }), 'bad_json');
    expect((await c.getToken({ appid: APPID, secret: SECRET })).accessToken).toBe('T4');
  });
});

describe('retries', () => {
  it('errcode -1 then success is retried', async () => {
    const fake = await fakeWechat((_q, res, _h, n) =>
      send(res, n === 1 ? { errcode: -1, errmsg: 'system error' } : { errcode: 0, errmsg: 'ok', phone_info: PHONE_INFO }),
    );
    const info = await client(fake).getUserPhoneNumber(TOKEN, { code: CODE });
    expect(info.purePhoneNumber).toBe('13800138000');
    expect(fake.hits.length).toBe(2);
  });

  it('5xx is retried up to maxRetries, then fails', async () => {
    const fake = await fakeWechat((_q, res) => {
      res.writeHead(503);
      res.end('x'.repeat(200_000)); // an error page the client must drain to keep its socket
    });
    await upstream(client(fake, { maxRetries: 3 }).getStableToken({ appid: APPID, secret: SECRET }), 'http_status');
    expect(fake.hits.length).toBe(4);
    expect(fake.connections()).toBeLessThanOrEqual(2);
  });

  it('-1 every time gives up after the default 2 retries with the busy error', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode: -1, errmsg: 'system error' }));
    const e = await apiError(client(fake).getUsagePage(TOKEN, { spuId: '10000077', offset: 0, limit: 20 }), -1);
    expect(e.kind).toBe('busy');
    expect(fake.hits.length).toBe(3);
  });

  it.each([40029, 45011, 40001, 40013])('errcode %i is not retried', async (errcode) => {
    const fake = await fakeWechat((_q, res) => send(res, { errcode, errmsg: 'no' }));
    await apiError(client(fake).getUserPhoneNumber(TOKEN, { code: CODE }), errcode);
    expect(fake.hits.length).toBe(1);
  });

  it('a 4xx is not retried', async () => {
    const fake = await fakeWechat((_q, res) => {
      res.writeHead(404);
      res.end();
    });
    const e = await upstream(client(fake).getUserPhoneNumber(TOKEN, { code: CODE }), 'http_status');
    expect(e.status).toBe(404);
    expect(fake.hits.length).toBe(1);
  });

  it('onCall reports every attempt with its outcome', async () => {
    const events: WechatCallEvent[] = [];
    const fake = await fakeWechat((_q, res, _h, n) => {
      if (n === 1) return send(res, { errcode: -1, errmsg: 'busy' });
      if (n === 2) {
        res.writeHead(500);
        return res.end();
      }
      send(res, { phone_info: PHONE_INFO });
    });
    await client(fake, {
      onCall: (e) => {
        events.push(e);
        throw new Error('a broken hook must not matter');
      },
    }).getUserPhoneNumber(TOKEN, { code: CODE });
    expect(events.map(({ endpoint, outcome, errcode }) => ({ endpoint, outcome, errcode }))).toEqual([
      { endpoint: 'getuserphonenumber', outcome: 'error', errcode: -1 },
      { endpoint: 'getuserphonenumber', outcome: 'upstream', errcode: undefined },
      { endpoint: 'getuserphonenumber', outcome: 'ok', errcode: undefined },
    ]);
    for (const e of events) expect(e.ms).toBeGreaterThanOrEqual(0);
  });
});

describe('connections', () => {
  it('20 sequential calls reuse at most 2 connections', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { phone_info: PHONE_INFO }));
    const c = client(fake);
    for (let i = 0; i < 20; i++) await c.getUserPhoneNumber(TOKEN, { code: `${CODE}-${i}` });
    expect(fake.hits.length).toBe(20);
    expect(fake.connections()).toBeLessThanOrEqual(2);
  });

  it('works behind a base URL with a path prefix', async () => {
    const fake = await fakeWechat((_q, res) => send(res, { access_token: 'T', expires_in: 7200 }));
    const c = createWechatClient({ baseUrl: `${fake.baseUrl}/wechat/`, timeoutMs: 1000 });
    cleanups.push(() => c.close());
    await c.getStableToken({ appid: APPID, secret: SECRET });
    expect(fake.hits[0]!.path).toBe('/wechat/cgi-bin/stable_token');
  });
});

describe('secrets stay out of errors', () => {
  const secrets = [TOKEN, CODE, SECRET];
  const leaks = (e: unknown) => {
    const text = `${(e as Error).message} ${JSON.stringify(e)} ${String((e as Error).stack)}`;
    return secrets.filter((s) => text.includes(s));
  };

  it('an errmsg that echoes the token, the code and a URL is redacted', async () => {
    const fake = await fakeWechat((_q, res) =>
      send(res, {
        errcode: 40029,
        errmsg: `invalid code ${CODE} with ${TOKEN}, see https://api.weixin.qq.com/x?access_token=${TOKEN}&k=v rid: 1`,
      }),
    );
    const e = await apiError(client(fake).getUserPhoneNumber(TOKEN, { code: CODE }), 40029);
    expect(leaks(e)).toEqual([]);
    expect(e.errmsg).not.toContain('k=v');
    expect(e.message).toContain('getuserphonenumber');
    expect(e.message).toContain('rid: 1');
  });

  it('the secret and the login code never appear in token or login errors', async () => {
    // Echoes whatever the request carried, as a careless proxy might.
    const fake = await fakeWechat((_q, res, hit) =>
      send(res, { errcode: 40125, errmsg: `invalid appsecret ${hit.query.get('secret')} ${hit.query.get('js_code')}` }),
    );
    const c = client(fake);
    expect(leaks(await apiError(c.getToken({ appid: APPID, secret: SECRET }), 40125))).toEqual([]);
    expect(leaks(await apiError(c.code2Session({ appid: APPID, secret: SECRET, jsCode: CODE }), 40125))).toEqual([]);
  });

  it('upstream failures name the endpoint but no URL or secret', async () => {
    const fake = await fakeWechat((req, res, _h, n) => {
      if (n === 1) return req.socket.destroy();
      if (n === 2) return; // never answers: timeout
      res.writeHead(500);
      res.end(`error for ${TOKEN}`);
    });
    const c = client(fake, { timeoutMs: 150, maxRetries: 0 });
    const errors = [
      await upstream(c.getUsagePage(TOKEN, { spuId: '10000077', offset: 0, limit: 20 }), 'network'),
      await upstream(c.code2Session({ appid: APPID, secret: SECRET, jsCode: CODE }), 'timeout'),
      await upstream(c.getUserPhoneNumber(TOKEN, { code: CODE }), 'http_status'),
    ];
    for (const e of errors) {
      expect(leaks(e)).toEqual([]);
      expect(e.message).not.toMatch(/https?:|\?/);
    }
    expect(errors.map((e) => e.endpoint)).toEqual(['usage_get', 'jscode2session', 'getuserphonenumber']);
  });
});
