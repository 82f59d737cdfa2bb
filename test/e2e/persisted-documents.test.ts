import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { print } from 'graphql';
import { BACKENDS } from '../support/backends.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { SessionDocument } from '../../sdk/generated.js';

/** Persisted documents, driven by Apollo Client's own persisted-queries link and by raw requests. */

let running: TestGateway[] = [];
afterEach(async () => {
  for (const g of running) await g.close();
  running = [];
});

async function gateway(backend = BACKENDS[0]!, env: Record<string, string> = {}) {
  const t = await startTestGateway({ backend, env });
  running.push(t);
  return t;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** An Apollo Client with the APQ link, recording what each request sent. */
function apollo(t: TestGateway, token: string, sent: { query?: string; extensions?: unknown }[]) {
  const http = new HttpLink({
    uri: t.url,
    headers: { authorization: `Bearer ${token}` },
    fetch: async (input, init) => {
      sent.push(JSON.parse(String(init?.body)) as { query?: string });
      return fetch(input, init);
    },
  });
  return new ApolloClient({ link: ApolloLink.from([new PersistedQueryLink({ sha256: async (q) => sha256(q) }), http]), cache: new InMemoryCache() });
}

async function post(t: TestGateway, token: string, body: object) {
  const res = await fetch(t.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { data?: Record<string, unknown>; errors?: { message: string; extensions?: { code?: string } }[] } };
}

describe.each(BACKENDS)('automatic persisted queries (Apollo Client 4) ($name)', (backend) => {
  it('the first request sends only the hash, is told PERSISTED_QUERY_NOT_FOUND, resends with the text; afterwards any client sends the hash alone', async () => {
    const t = await gateway(backend);
    const token = await t.token('o_apq', { scopes: ['phone:exchange', 'quota:read'] });
    const query = gql`
      query MyOwnQuota($appid: String!) {
        quota(appid: $appid) {
          appid
          trialRemaining
        }
      }
    `;
    const first: { query?: string }[] = [];
    const r1 = await apollo(t, token, first).query({ query, variables: { appid: 'wxa1b2c3d4e5f60001' }, fetchPolicy: 'network-only' });
    expect(r1.data).toMatchObject({ quota: { appid: 'wxa1b2c3d4e5f60001' } });
    expect(first.map((b) => typeof b.query)).toEqual(['undefined', 'string']);
    // A second client (another process, say) sends the hash alone and is answered.
    const second: { query?: string }[] = [];
    const r2 = await apollo(t, token, second).query({ query, variables: { appid: 'wxa1b2c3d4e5f60001' }, fetchPolicy: 'network-only' });
    expect(r2.data).toEqual(r1.data);
    expect(second.map((b) => typeof b.query)).toEqual(['undefined']);
  });

  it('a hash that does not match its text is refused, and nothing is registered under it', async () => {
    const t = await gateway(backend);
    const token = await t.token('o_apq_bad');
    const wrong = sha256('query { something }');
    const r = await post(t, token, { query: '{ session { subject } }', extensions: { persistedQuery: { version: 1, sha256Hash: wrong } } });
    expect(r.status).toBe(400);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_HASH_MISMATCH');
    const again = await post(t, token, { extensions: { persistedQuery: { version: 1, sha256Hash: wrong } } });
    expect(again.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });
});

describe('trusted documents only (TRUSTED_DOCUMENTS=only)', () => {
  it("the SDK's operations run, by text or by hash; any other document is refused, and cannot be registered", async () => {
    const t = await gateway(BACKENDS[0]!, { TRUSTED_DOCUMENTS: 'only' });
    const token = await t.token('o_trusted');
    // The SDK sends the text of its own operations.
    expect((await (await t.client('o_trusted')).Session()).session.subject).toBe('o_trusted');
    // By hash, as the GraphQL-over-HTTP proposal sends it, and as Apollo's link does.
    const hash = sha256(print(SessionDocument));
    for (const body of [{ documentId: `sha256:${hash}` }, { extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }]) {
      const r = await post(t, token, body);
      expect(r.status, JSON.stringify([body, r.body])).toBe(200);
      expect(r.body.data).toMatchObject({ session: { subject: 'o_trusted' } });
    }
    // Anything else, however sent, is refused before it runs.
    const adHoc = '{ session { subject scopes } }';
    for (const body of [{ query: adHoc }, { query: adHoc, extensions: { persistedQuery: { version: 1, sha256Hash: sha256(adHoc) } } }]) {
      const r = await post(t, token, body);
      expect(r.status).toBe(400);
      expect(r.body.errors?.[0]?.extensions?.code).toBe('TRUSTED_DOCUMENT_REQUIRED');
      expect(r.body.data).toBeUndefined();
    }
    const unknown = await post(t, token, { extensions: { persistedQuery: { version: 1, sha256Hash: sha256(adHoc) } } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });
});
