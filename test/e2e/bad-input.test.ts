import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getIntrospectionQuery } from 'graphql';
import { BACKENDS } from '../support/backends.js';
import { APP, OTHER_APP, SECRETS, mintCode, rememberSecret, startTestGateway, type TestGateway } from '../support/gateway.js';
import { SANDBOX_APP } from '../../src/simulator/index.js';
import { signSessionToken } from '../../src/auth/index.js';
import { createGatewayClient, type GatewayClient } from '../../sdk/client.js';

/**
 * Hostile and broken requests over real HTTP. Each case asserts a clear 4xx or a typed error,
 * that nothing reached WeChat's exchange endpoint, and that the gateway still serves a normal
 * exchange right afterwards.
 */

const EXCHANGE = `mutation ($input: ExchangePhoneCodeInput!) {
  exchangePhoneCode(input: $input) { __typename ... on ExchangeError { code message retryable } ... on InvalidInputError { field } }
}`;
const EXCHANGE_PATH = '/wxa/business/getuserphonenumber';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  text: string;
  body: { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  headers: Headers;
}

describe.each(BACKENDS)('bad input over real HTTP ($name)', (backend) => {
  let t: TestGateway;
  let jwt: string;
  let auditor: GatewayClient;
  let normals = 0;

  beforeAll(async () => {
    t = await startTestGateway({
      backend,
      // The real limits come from the config file below (the harness's high ones are unset).
      env: { RATE_LIMIT_SESSION: '', RATE_LIMIT_IP: '' },
      configFile: {
        apps: [
          { appid: APP, secret: SANDBOX_APP.secret, purposes: ['login', 'order-contact'] },
          { appid: OTHER_APP.appid, secret: OTHER_APP.secret, purposes: ['login'] },
        ],
        wechat: { timeoutMs: 1500, maxRetries: 2 },
        billing: { syncIntervalSeconds: 0 },
        hardening: { trustProxy: true, rateLimit: { session: { limit: 3, windowSeconds: 1 }, ip: { limit: 3, windowSeconds: 1 } } },
      },
    });
    jwt = await t.token('o_attacker');
    auditor = await t.client('svc_dpo', { scopes: ['audit:read'] });
  });
  afterAll(() => t?.close());

  async function send(init: RequestInit & { headers?: Record<string, string> }, query = ''): Promise<Answer> {
    const res = await fetch(t.url + query, init);
    const text = await res.text();
    // Nothing secret sent in a bad request comes back (codes, tokens, numbers).
    for (const secret of SECRETS) expect(text.includes(secret), `response echoes ${secret.slice(0, 4)}…`).toBe(false);
    let body: Answer['body'] = {};
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (GraphiQL's page)
    }
    return { status: res.status, text, body, headers: res.headers };
  }

  const postJson = (body: unknown, headers: Record<string, string> = {}) =>
    send({
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', authorization: `Bearer ${jwt}`, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  const codesOf = (a: Answer) => (a.body.errors ?? []).map((e) => e.extensions?.code);
  const wechatExchanges = async () => (await t.sim.stats()).calls[EXCHANGE_PATH] ?? 0;

  /** Nothing reached WeChat since `before`, and a normal exchange still works (and does reach it). */
  async function stillServing(before: number) {
    expect(await wechatExchanges(), 'an exchange reached WeChat').toBe(before);
    normals += 1;
    const client = await t.client(`o_normal_${normals}`);
    const r = await client.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } });
    expect(r.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    expect(await wechatExchanges()).toBe(before + 1);
  }

  it('malformed JSON, in a body or in GET variables: 400 BAD_REQUEST without echoing it', async () => {
    const code = await mintCode(t.sim);
    const before = await wechatExchanges();
    const broken = await postJson(`{"query": ${JSON.stringify(EXCHANGE)}, "variables": {"input": {"code": "${code}", "purpose": "login"`);
    expect(broken.status).toBe(400);
    expect(codesOf(broken)).toEqual(['BAD_REQUEST']);
    expect(broken.text).not.toMatch(/originalError|SyntaxError/);
    // Answered 400 whatever the client accepts.
    const legacy = await postJson('{"query": ', { accept: 'application/json' });
    expect(legacy.status).toBe(400);
    const get = await send(
      { headers: { authorization: `Bearer ${jwt}` } },
      `?query=${encodeURIComponent('{ session { subject } }')}&variables=${encodeURIComponent(`{"code":"${code}`)}`,
    );
    expect(get.status).toBe(400);
    expect(codesOf(get)).toEqual(['BAD_REQUEST']);
    await stillServing(before);
  });

  it('a body over 64 KB is 413; a 60 KB document full of fields is refused by the token limit', async () => {
    const code = await mintCode(t.sim);
    const before = await wechatExchanges();
    const huge = await postJson({ query: EXCHANGE.replace('__typename', '__typename '.repeat(7000)), variables: { input: { code, purpose: 'login' } } });
    expect(huge.status).toBe(413);
    expect(codesOf(huge)).toEqual(['REQUEST_TOO_LARGE']);

    const wide = JSON.stringify({ query: EXCHANGE.replace('__typename', '__typename '.repeat(5600)), variables: { input: { code, purpose: 'login' } } });
    expect(wide.length).toBeGreaterThan(60 * 1024);
    expect(wide.length).toBeLessThan(64 * 1024);
    const r = await postJson(wide);
    expect(r.status).toBe(400);
    expect(codesOf(r)).toEqual(['TOKEN_LIMIT_EXCEEDED']);
    expect(r.body.errors![0]!.message).toBe('the document is longer than the limit of 2000 tokens');
    expect(r.body.errors![0]!.extensions).toMatchObject({ limit: 2000 });
    expect(r.body.data).toBeUndefined();
    await stillServing(before);
  });

  it('deep nesting: a deep document is refused by the depth limit, deeply nested JSON is a plain 400', async () => {
    const code = await mintCode(t.sim);
    const before = await wechatExchanges();
    const nested = (n: number, inner: string) => `${'... on Mutation { '.repeat(n)}${inner}${' }'.repeat(n)}`;
    const deep = await postJson({
      query: `mutation ($input: ExchangePhoneCodeInput!) { ${nested(30, 'exchangePhoneCode(input: $input) { __typename }')} }`,
      variables: { input: { code, purpose: 'login' } },
    });
    expect(deep.status).toBe(400);
    expect(codesOf(deep)).toContain('DEPTH_LIMIT_EXCEEDED');
    expect(deep.body.errors!.find((e) => e.extensions?.code === 'DEPTH_LIMIT_EXCEEDED')!.message).toBe('the operation is nested deeper than the limit of 12 levels');
    // Within the limit, the same shape runs (the limit is what refused the deep one).
    const shallow = await postJson({ query: `{ ${nested(8, '__typename')} }`.replaceAll('Mutation', 'Query') });
    expect(shallow.status).toBe(200);
    expect(shallow.body.data).toEqual({ __typename: 'Query' });

    const jsonDepth = 20_000;
    const deepJson = await postJson(`{"query": ${JSON.stringify(EXCHANGE)}, "variables": {"input": ${'['.repeat(jsonDepth)}${']'.repeat(jsonDepth)}}}`);
    expect(deepJson.status).toBe(400);
    expect(deepJson.body.data).toBeUndefined();
    await stillServing(before);
  });

  it('alias amplification: 100 aliases of exchangePhoneCode are refused before any runs', async () => {
    const code = await mintCode(t.sim);
    const before = await wechatExchanges();
    const aliases = Array.from({ length: 100 }, (_, i) => `a${i}: exchangePhoneCode(input: $input) { __typename }`).join('\n');
    const r = await postJson({ query: `mutation ($input: ExchangePhoneCodeInput!) { ${aliases} }`, variables: { input: { code, purpose: 'login' } } });
    expect(r.status).toBe(400);
    expect(codesOf(r)).toEqual(['ALIAS_LIMIT_EXCEEDED']);
    expect(r.body.errors![0]!.message).toBe('the operation uses more than the limit of 15 aliases');
    expect(r.body.data).toBeUndefined();
    // 15 are allowed.
    const fifteen = await postJson({ query: `{ ${Array.from({ length: 15 }, (_, i) => `s${i}: session { subject }`).join(' ')} }` });
    expect(fifteen.status).toBe(200);
    expect(Object.keys(fifteen.body.data)).toHaveLength(15);
    await stillServing(before);
  });

  it('batch arrays: 400 BATCHING_NOT_SUPPORTED, not N executions', async () => {
    const codes = await Promise.all([mintCode(t.sim), mintCode(t.sim), mintCode(t.sim)]);
    const before = await wechatExchanges();
    const r = await postJson(codes.map((code) => ({ query: EXCHANGE, variables: { input: { code, purpose: 'login' } } })));
    expect(r.status).toBe(400);
    expect(codesOf(r)).toEqual(['BATCHING_NOT_SUPPORTED']);
    expect(Array.isArray(r.body)).toBe(false);
    await stillServing(before);
  });

  it('wrong variable types: 400, the value not echoed', async () => {
    const before = await wechatExchanges();
    for (const input of [
      { code: 13_812_345_678, purpose: 'login' },
      { code: { $gt: '' }, purpose: 'login' },
      { code: ['a', 'b'], purpose: 'login' },
      { code: null, purpose: 'login' },
      { code: 'abc', purpose: ['login'] },
      'just a string',
      42,
    ]) {
      const r = await postJson({ query: EXCHANGE, variables: { input } });
      expect(r.status, JSON.stringify(input)).toBe(400);
      expect(r.body.data).toBeUndefined();
      expect(r.text).not.toContain('13812345678');
      expect(r.text).not.toContain('$gt');
    }
    await stillServing(before);
  });

  it('control and zero-width characters in codes: typed INVALID_INPUT, and the real code is not spent', async () => {
    const code = await mintCode(t.sim);
    const before = await wechatExchanges();
    const tampered = [`${code}\u0000`, `\u200b${code}`, `${code.slice(0, 4)}\u200d${code.slice(4)}`, `\ufeff${code}`, `${code}\u202e`, `${code}\u0007`, `${code}\u001b[0m`, `${code}\n`, ` ${code}`, `${code}\u00a0`];
    // A session each: one session's ten tries in a second would meet the rate limit first.
    for (const [i, variant] of tampered.entries()) {
      const client = await t.client(`o_invisible_${i}`);
      const r = (await client.ExchangePhoneCode({ input: { code: variant, purpose: 'login' } })).exchangePhoneCode;
      expect(r, JSON.stringify(variant)).toMatchObject({ __typename: 'InvalidInputError', code: 'INVALID_INPUT', field: 'code', retryable: false });
    }
    expect(await wechatExchanges()).toBe(before);
    const clean = (await (await t.client('o_invisible')).ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;
    expect(clean.__typename).toBe('PhoneNumberVerified');
    await stillServing(before + 1);
  });

  describe('session tokens', () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = () => ({ sub: 'o_forger', appid: APP, scope: 'phone:exchange', iss: t.config.jwt.issuer, aud: t.config.jwt.audience, exp: Math.floor(Date.now() / 1000) + 600 });
    const key = () => ({ secret: t.config.jwt.secret!, issuer: t.config.jwt.issuer, audience: t.config.jwt.audience });
    const forged: Record<string, () => Promise<string>> = {
      'alg: none': async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
      'alg: none with a signature': async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.${b64({})}`,
      'the wrong key': () => signSessionToken({ ...key(), secret: 'y'.repeat(40) }, { subject: 'o_forger', appid: APP, scopes: ['phone:exchange'] }),
      'the wrong aud': () => signSessionToken({ ...key(), audience: 'another-service' }, { subject: 'o_forger', appid: APP, scopes: ['phone:exchange'] }),
      'the wrong iss': () => signSessionToken({ ...key(), issuer: 'https://evil.example' }, { subject: 'o_forger', appid: APP, scopes: ['phone:exchange'] }),
      'an expired token': () => t.token('o_forger', { ttl: '-2m' }),
    };
    for (const [name, make] of Object.entries(forged)) {
      it(`${name}: 401 UNAUTHENTICATED, nothing executed`, async () => {
        const token = await make();
        rememberSecret(token);
        const code = await mintCode(t.sim);
        const before = await wechatExchanges();
        const r = await postJson({ query: EXCHANGE, variables: { input: { code, purpose: 'login' } } }, { authorization: `Bearer ${token}` });
        expect(r.status).toBe(401);
        expect(codesOf(r)).toEqual(['UNAUTHENTICATED']);
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(r.body.data).toBeUndefined();
        await stillServing(before);
      });
    }
  });

  it('CSRF: a GET mutation is 405; form, plain-text and multipart POSTs need the CSRF header (403)', async () => {
    const code = await mintCode(t.sim);
    const before = await wechatExchanges();
    const variables = JSON.stringify({ input: { code, purpose: 'login' } });
    const qs = `?query=${encodeURIComponent(EXCHANGE)}&variables=${encodeURIComponent(variables)}`;
    for (const extra of [{}, { 'x-graphql-yoga-csrf': '1' }] as Record<string, string>[]) {
      const get = await send({ headers: { authorization: `Bearer ${jwt}`, ...extra } }, qs);
      expect(get.status).toBe(405);
      expect(get.body.data).toBeUndefined();
    }
    const form = new URLSearchParams({ query: EXCHANGE, variables }).toString();
    const multipart = new FormData();
    multipart.set('operations', JSON.stringify({ query: EXCHANGE, variables: JSON.parse(variables) }));
    for (const [contentType, body] of [
      ['application/x-www-form-urlencoded', form],
      ['text/plain', JSON.stringify({ query: EXCHANGE, variables: JSON.parse(variables) })],
      [undefined, multipart],
    ] as const) {
      const r = await send({ method: 'POST', headers: { authorization: `Bearer ${jwt}`, ...(contentType ? { 'content-type': contentType } : {}) }, body });
      expect(r.status, contentType ?? 'multipart').toBe(403);
      expect(codesOf(r)).toEqual(['CSRF_HEADER_REQUIRED']);
    }
    // Checked before the session: a cross-site form post carries no bearer token either.
    const anonymous = await send({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    expect(anonymous.status).toBe(403);
    expect(codesOf(anonymous)).toEqual(['CSRF_HEADER_REQUIRED']);
    // The header is what a browser cannot add without a preflight: with it, a form post is served.
    const withHeader = await send({
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/x-www-form-urlencoded', 'x-graphql-yoga-csrf': '1' },
      body: new URLSearchParams({ query: '{ session { subject } }' }).toString(),
    });
    expect(withHeader.status).toBe(200);
    expect(withHeader.body.data.session.subject).toBe('o_attacker');
    // GET queries keep working without it (GET can never mutate).
    const getQuery = await send({ headers: { authorization: `Bearer ${jwt}` } }, `?query=${encodeURIComponent('{ session { subject } }')}`);
    expect(getQuery.status).toBe(200);
    expect(getQuery.body.data.session.subject).toBe('o_attacker');
    await stillServing(before);
  });

  it('too many directives, or too costly: 400 with the limit named', async () => {
    const code = await mintCode(t.sim);
    const before = await wechatExchanges();
    const many = await postJson({
      query: EXCHANGE.replace('__typename', '__typename @include(if: true) '.repeat(11)),
      variables: { input: { code, purpose: 'login' } },
    });
    expect(many.status).toBe(400);
    expect(codesOf(many)).toContain('DIRECTIVE_LIMIT_EXCEEDED');
    const costly = await postJson({
      query: `{ auditRecords(appid: "${APP}", first: 500) { edges { cursor node { id appid seq kind flow purpose noticeVersion requestId outcome errorCode subjectHash maskedPhone phoneHash detail at erasedAt prevHash hash } } } }`,
    });
    expect(costly.status).toBe(400);
    expect(codesOf(costly)).toEqual(['COST_LIMIT_EXCEEDED']);
    expect(costly.body.errors![0]!.message).toMatch(/^the operation's estimated cost is over the limit of 5000/);
    await stillServing(before);
  });

  it('no field, argument or enum suggestions: the schema is not mapped for whoever probes it', async () => {
    const before = await wechatExchanges();
    const field = await postJson({ query: '{ sesion { subject } }' });
    expect(field.status).toBe(400);
    const input = await postJson({ query: EXCHANGE, variables: { input: { cod: 'x', purpose: 'login' } } });
    expect(input.status).toBe(400);
    const arg = await postJson({ query: '{ quota(appi: "x") { appid } }' });
    const enumValue = await postJson({ query: 'query ($s: PackStatus) { packs(appid: "x", status: $s) { id } }', variables: { s: 'ACTIV' } });
    expect(enumValue.status).toBe(400);
    for (const r of [field, input, arg, enumValue]) {
      expect(r.body.errors?.length).toBeGreaterThan(0);
      expect(r.text).not.toMatch(/Did you mean|Suggestion/);
    }
    await stillServing(before);
  });

  it('GraphiQL still works outside production: the page, and its introspection query under the limits', async () => {
    const before = await wechatExchanges();
    const page = await send({ headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/graphiql/i);
    const query = getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true });
    const r = await postJson({ query, operationName: 'IntrospectionQuery' }, { 'x-graphql-yoga-csrf': 'graphiql' });
    expect(r.status).toBe(200);
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data.__schema.types.some((ty: { name: string }) => ty.name === 'ExchangePhoneCodeInput')).toBe(true);
    await stillServing(before);
  });

  async function chargeCount() {
    const row = await t.gateway.store.db
      .selectFrom('charges')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  const verified = (r: { __typename: string }) => r.__typename === 'PhoneNumberVerified';

  /** Phase one of the per-session case; returns the check to run once its window is over. */
  async function perSession() {
    const client = await t.client('o_rl_session');
    const codes = await Promise.all(Array.from({ length: 4 }, () => mintCode(t.sim)));
    const before = await wechatExchanges();
    const charges = await chargeCount();
    const started = Date.now();
    const results = await Promise.all(codes.map((code) => client.ExchangePhoneCode({ input: { code, purpose: 'login' } }).then((r) => r.exchangePhoneCode)));
    const limited = results.filter((r) => r.__typename === 'RateLimitedError');
    expect(limited).toHaveLength(1);
    expect(limited[0]).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect((limited[0] as { message: string }).message).toMatch(/^too many exchange requests from this session \(limit 3 per 1 s\); retry in 1 s$/);
    expect(results.filter(verified)).toHaveLength(3);
    expect(await wechatExchanges()).toBe(before + 3);
    expect(await chargeCount()).toBe(charges + 3);

    // The legacy flow shares the limit: nothing reaches jscode2session either.
    const logins = (await t.sim.stats()).calls['/sns/jscode2session'] ?? 0;
    const legacy = await client.DecryptPhoneNumber({ input: { loginCode: 'any', encryptedData: 'AAAA', iv: 'AAAA', purpose: 'login' } });
    expect(legacy.decryptPhoneNumber).toMatchObject({ __typename: 'RateLimitedError', code: 'RATE_LIMITED' });
    expect((await t.sim.stats()).calls['/sns/jscode2session'] ?? 0).toBe(logins);

    const records = (await auditor.AuditRecords({ appid: APP, subject: 'o_rl_session', first: 50 })).auditRecords.edges.map((e) => e.node);
    expect(records.filter((r) => r.outcome === 'DISCLOSED')).toHaveLength(3);
    expect(records.filter((r) => r.outcome === 'REFUSED').map((r) => [r.flow, r.errorCode]).sort()).toEqual([
      ['EXCHANGE', 'RATE_LIMITED'],
      ['LEGACY', 'RATE_LIMITED'],
    ]);
    // Another session is not affected meanwhile.
    await stillServing(before + 3);

    const refusedCode = codes[results.indexOf(limited[0]!)]!;
    return {
      started,
      async recovered() {
        // The refused code was never sent, so it still works.
        const n = await wechatExchanges();
        const again = (await client.ExchangePhoneCode({ input: { code: refusedCode, purpose: 'login' } })).exchangePhoneCode;
        expect(again.__typename).toBe('PhoneNumberVerified');
        expect(await wechatExchanges()).toBe(n + 1);
      },
    };
  }

  /** Phase one of the per-IP case (X-Forwarded-For from the one trusted proxy). */
  async function perAddress() {
    const viaProxy = async (sub: string, forwardedFor: string) =>
      createGatewayClient({ url: t.url, token: await t.token(sub), headers: { 'x-forwarded-for': forwardedFor } });
    // The client made up the left-hand entries; the proxy appended the address it saw.
    const clients = await Promise.all([
      viaProxy('o_ip_1', '203.0.113.50'),
      viaProxy('o_ip_2', '198.51.100.1, 203.0.113.50'),
      viaProxy('o_ip_3', '10.0.0.1, 203.0.113.50'),
      viaProxy('o_ip_4', '192.0.2.77, 203.0.113.50'),
    ]);
    const codes = await Promise.all(clients.map(() => mintCode(t.sim)));
    const before = await wechatExchanges();
    const started = Date.now();
    const results = await Promise.all(clients.map((c, i) => c.ExchangePhoneCode({ input: { code: codes[i]!, purpose: 'login' } }).then((r) => r.exchangePhoneCode)));
    const limited = results.filter((r) => r.__typename === 'RateLimitedError');
    expect(limited).toHaveLength(1);
    expect((limited[0] as { message: string }).message).toMatch(/^too many exchange requests from this client address \(limit 3 per 1 s\); retry in 1 s$/);
    expect(results.filter(verified)).toHaveLength(3);
    expect(await wechatExchanges()).toBe(before + 3);

    // Another address is served meanwhile.
    const other = await viaProxy('o_ip_other', '203.0.113.51');
    const fine = (await other.ExchangePhoneCode({ input: { code: await mintCode(t.sim), purpose: 'login' } })).exchangePhoneCode;
    expect(fine.__typename).toBe('PhoneNumberVerified');
    // A fresh session from the limited address is still limited: the address is the key.
    const fresh = await viaProxy('o_ip_5', '203.0.113.50');
    const spare = await mintCode(t.sim);
    expect((await fresh.ExchangePhoneCode({ input: { code: spare, purpose: 'login' } })).exchangePhoneCode.__typename).toBe('RateLimitedError');
    await stillServing(before + 4);
    return {
      started,
      async recovered() {
        expect((await fresh.ExchangePhoneCode({ input: { code: spare, purpose: 'login' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
      },
    };
  }

  it('rate limits per session and per IP: RATE_LIMITED saying when to retry, no WeChat call, no charge, audited; both recover after the window', async () => {
    const session = await perSession();
    const address = await perAddress();
    // One wait for both windows (1 s each).
    await sleep(Math.max(0, Math.max(session.started, address.started) + 1100 - Date.now()));
    await session.recovered();
    await address.recovered();
  });
});
