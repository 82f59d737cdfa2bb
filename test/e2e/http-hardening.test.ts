import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';

let running: TestGateway[] = [];
afterEach(async () => {
  for (const g of running) await g.close();
  running = [];
});

async function gateway(env: Record<string, string> = {}) {
  const t = await startTestGateway({ backend: BACKENDS[0]!, env });
  running.push(t);
  return t;
}

/** A raw chunked POST: no content-length, so only a streaming count can catch it. */
function chunkedPost(url: string, token: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (e) => (String(e).includes('EPIPE') || String(e).includes('ECONNRESET') ? resolve(413) : reject(e)));
    const chunk = Buffer.alloc(16 * 1024, 'a');
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('HTTP hardening', () => {
  it('bodies over 64 KB are refused with 413, chunked or not, and the server keeps serving', async () => {
    const t = await gateway();
    const token = await t.token('o_big');
    const declared = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `{ session { subject } }`, pad: 'x'.repeat(200_000) }),
    });
    expect(declared.status).toBe(413);
    expect(await chunkedPost(t.url, token, 4 * 1024 * 1024)).toBe(413);
    const ok = await (await t.client('o_big')).Session();
    expect(ok.session.subject).toBe('o_big');
  });

  it('a request that makes no URL (a Host header with a bad escape) gets a masked 500, logged, with no stack; the server keeps serving', async () => {
    const t = await gateway();
    const token = await t.token('o_host');
    const body = JSON.stringify({ query: '{ session { subject } }' });
    const raw = (chunked: boolean) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const url = new URL(t.url);
        const headers: Record<string, string> = { host: 'a%zz', 'content-type': 'application/json', authorization: `Bearer ${token}` };
        if (chunked) headers['transfer-encoding'] = 'chunked';
        else headers['content-length'] = String(Buffer.byteLength(body));
        const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    for (const chunked of [false, true]) {
      const { status, text } = await raw(chunked);
      expect(status).toBe(500);
      expect(JSON.parse(text)).toEqual({ errors: [{ message: 'internal error' }] });
      expect(text).not.toMatch(/node_modules|at |Error:/);
    }
    expect(t.logs.filter((l) => l.includes('request handler failed')).length).toBe(2);
    expect((await (await t.client('o_host')).Session()).session.subject).toBe('o_host');
  });

  it('production refuses introspection and serves no GraphiQL', async () => {
    const t = await gateway({ NODE_ENV: 'production' });
    const token = await t.token('o_prod');
    const res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ __schema { types { name } } }' }),
    });
    const body = (await res.json()) as { data?: unknown; errors?: { message: string }[] };
    expect(body.data).toBeUndefined();
    expect(body.errors?.[0]?.message).toMatch(/introspection/i);
    const page = await fetch(t.url, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toMatch(/graphiql/i);
    const exchange = await (await t.client('o_prod')).ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    expect(exchange.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
  });

  it('NODE_ENV=development still masks unexpected errors: no message, no stack', async () => {
    const t = await gateway({ NODE_ENV: 'development' });
    const token = await t.token('o_dev');
    await t.gateway.store.close(); // the database goes away under the gateway
    const res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'mutation($i: ExchangePhoneCodeInput!){ exchangePhoneCode(input:$i){ __typename } }', variables: { i: { code: 'a'.repeat(64), purpose: 'login' } } }),
    });
    const text = await res.text();
    expect(text).toMatch(/Unexpected error/);
    expect(text).not.toMatch(/stack|at .*\.ts|destroy|Kysely|driver/i);
  });

  it('close() lets an exchange in flight finish before shutting down', async () => {
    const t = await gateway();
    const code = await mintCode(t.sim);
    const client = await t.client('o_shutdown');
    await client.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } }); // warm the token
    await t.sim.fault('/wxa/business/getuserphonenumber', { delayMs: 600, times: 1 });
    const pending = client.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    await new Promise((r) => setTimeout(r, 100));
    const closing = t.gateway.close();
    const r = await pending;
    await closing;
    expect(r.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    await expect(fetch(t.url)).rejects.toThrow();
  });
});

describe('CORS', () => {
  const preflight = (url: string, origin: string) =>
    fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
  const post = async (t: TestGateway, origin: string) =>
    fetch(t.url, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${await t.token('o_cors')}` },
      body: JSON.stringify({ query: '{ session { subject } }' }),
    });

  it('outside sandbox mode no origin is allowed by default: no CORS headers, never allow-credentials', async () => {
    const t = await gateway();
    for (const res of [await preflight(t.url, 'https://evil.example'), await post(t, 'https://evil.example')]) {
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  it('listed origins (CORS_ORIGINS) are allowed, with the bearer token header and without credentials; others are not', async () => {
    const t = await gateway({ CORS_ORIGINS: 'https://console.example.com,http://localhost:5173' });
    const pre = await preflight(t.url, 'https://console.example.com');
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://console.example.com');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    const res = await post(t, 'http://localhost:5173');
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/x-request-id/);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    for (const other of [await preflight(t.url, 'https://evil.example'), await post(t, 'https://console.example.com.evil.example')]) {
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it("CORS_ORIGINS=* (what sandbox mode defaults to) allows any origin, still without allow-credentials", async () => {
    const t = await gateway({ CORS_ORIGINS: '*' });
    const res = await post(t, 'https://anywhere.example');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://anywhere.example');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
