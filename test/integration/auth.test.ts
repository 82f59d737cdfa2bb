import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { signSessionToken } from '../../src/auth/index.js';
import { APP, OTHER_APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';

const MUTATION = `mutation ($input: ExchangePhoneCodeInput!) {
  exchangePhoneCode(input: $input) { __typename ... on ExchangeError { code message retryable } }
}`;

// In-process requests through yoga.fetch: the HTTP semantics without a socket.
describe('session and scopes on /graphql', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend: BACKENDS[0]! });
  });
  afterAll(() => t?.close());

  async function post(body: object, headers: Record<string, string> = {}) {
    const res = await t.gateway.yoga.fetch('http://gateway/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as { data?: any; errors?: any[] } };
  }

  it('no token: HTTP 401, UNAUTHENTICATED, WWW-Authenticate, and nothing executed', async () => {
    const code = await mintCode(t.sim);
    const r = await post({ query: MUTATION, variables: { input: { code, purpose: 'login' } } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(r.body.data).toBeUndefined();
    expect((await t.sim.stats()).calls['/wxa/business/getuserphonenumber'] ?? 0).toBe(0);
  });

  it('a bad, expired or foreign token: HTTP 401 UNAUTHENTICATED', async () => {
    const expired = await t.token('o_user', { ttl: '-1m' });
    const foreign = await signSessionToken({ secret: 'x'.repeat(40), issuer: t.config.jwt.issuer, audience: t.config.jwt.audience }, { subject: 'o_user', scopes: ['phone:exchange'] });
    for (const token of ['garbage', 'a.b.c', expired, foreign]) {
      const r = await post({ query: '{ session { subject } }' }, { authorization: `Bearer ${token}` });
      expect(r.status, token).toBe(401);
      expect(r.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const basic = await post({ query: '{ session { subject } }' }, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(basic.status).toBe(401);
  });

  it("a user's session token that names no app: HTTP 401 for every field that acts for the user, even with another app's appid in the input", async () => {
    // Correctly signed, with sub, scope, iss, aud and exp: only the appid claim is missing.
    const noApp = await t.token('o_anyone', { appid: undefined, scopes: ['phone:exchange'] });
    const code = await mintCode(t.sim, undefined, OTHER_APP.appid);
    const before = (await t.sim.stats()).calls['/wxa/business/getuserphonenumber'] ?? 0;
    const requests = [
      { query: MUTATION, variables: { input: { code, purpose: 'login', appid: OTHER_APP.appid } } },
      { query: `mutation { giveConsent(input: { appid: "${OTHER_APP.appid}", purpose: "login" }) { __typename } }` },
      { query: `mutation { withdrawConsent(input: { appid: "${OTHER_APP.appid}" }) { __typename } }` },
      { query: `mutation { reportButtonOutcome(input: { appid: "${OTHER_APP.appid}", outcome: USER_DENY, clientEventId: "e1" }) { __typename } }` },
    ];
    for (const body of requests) {
      const r = await post(body, { authorization: `Bearer ${noApp}` });
      expect(r.status, body.query).toBe(401);
      expect(r.body.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
      expect(r.body.errors?.[0]?.message).toMatch(/must name its app/);
    }
    expect((await t.sim.stats()).calls['/wxa/business/getuserphonenumber'] ?? 0).toBe(before);
    // An operator's token spans apps.
    const ops = await t.token('ops', { appid: undefined, scopes: ['quota:read'] });
    const q = await post({ query: `{ quota(appid: "${OTHER_APP.appid}") { appid } }` }, { authorization: `Bearer ${ops}` });
    expect(q.status).toBe(200);
    expect(q.body.data.quota).toEqual({ appid: OTHER_APP.appid });
  });

  it('a token without phone:exchange: FORBIDDEN, and WeChat is not called', async () => {
    const code = await mintCode(t.sim);
    const token = await t.token('svc_quota', { scopes: ['quota:read'] });
    const before = (await t.sim.stats()).calls['/wxa/business/getuserphonenumber'] ?? 0;
    const r = await post({ query: MUTATION, variables: { input: { code, purpose: 'login' } } }, { authorization: `Bearer ${token}` });
    expect(r.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(r.body.data?.exchangePhoneCode ?? null).toBeNull();
    expect((await t.sim.stats()).calls['/wxa/business/getuserphonenumber'] ?? 0).toBe(before);
  });

  it('the session query reflects the verified token', async () => {
    const token = await t.token('o_me', { scopes: ['phone:exchange'] });
    const r = await post({ query: '{ session { subject appid scopes } }' }, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    expect(r.body.data.session).toEqual({ subject: 'o_me', appid: APP, scopes: ['phone:exchange'] });
  });

  it('wrong variable types and unknown fields are GraphQL validation errors (HTTP 400), not crashes', async () => {
    const token = await t.token('o_types');
    const wrongType = await post({ query: MUTATION, variables: { input: { code: 123, purpose: 'login' } } }, { authorization: `Bearer ${token}` });
    const wrongType2 = await post({ query: MUTATION, variables: { input: { code: 987654321123, purpose: 'login' } } }, { authorization: `Bearer ${token}` });
    expect(JSON.stringify(wrongType2.body)).not.toContain('987654321123');
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errors?.[0]?.message).toMatch(/String/);
    expect(wrongType.body.errors?.[0]?.message).toMatch(/input\.code/);
    const literal = await post(
      { query: 'mutation { exchangePhoneCode(input: { code: 987654321123, purpose: "login" }) { __typename } }' },
      { authorization: `Bearer ${token}` },
    );
    expect(literal.status).toBe(400);
    for (const r of [wrongType, literal]) {
      const text = JSON.stringify(r.body);
      // The submitted value (a code, or a number) is never echoed back.
      expect(text).not.toContain('987654321123');
      expect(text).not.toMatch(/invalid value 123\b/);
    }
    const unknown = await post({ query: '{ nope }' }, { authorization: `Bearer ${token}` });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors?.[0]?.message).toMatch(/nope/);
    const malformed = await t.gateway.yoga.fetch('http://gateway/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{"query": ',
    });
    expect(malformed.status).toBe(400);
  });
});
