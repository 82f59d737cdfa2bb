import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

// The HTTP server caps bodies itself (test/e2e/http-hardening); these are the requests that do not
// come through it.
describe('request body cap for in-process requests (yoga.fetch)', () => {
  let t: TestGateway;
  let auth: string;
  beforeAll(async () => {
    t = await startTestGateway({ backend: BACKENDS[0]! });
    auth = `Bearer ${await t.token('o_body', { scopes: ['phone:exchange'] })}`;
  });
  afterAll(() => t?.close());

  // 70 KB of JSON, over the 64 KB cap, with a query that needs nothing else.
  const oversized = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(70 * 1024) } });

  async function post(body: BodyInit, headers: Record<string, string>, serverContext: { bodyCapped?: boolean } = {}) {
    const res = await t.gateway.yoga.fetch(
      'http://gateway/graphql',
      { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: auth, ...headers }, body, duplex: 'half' } as RequestInit,
      serverContext,
    );
    return { status: res.status, body: (await res.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] } };
  }

  it('a declared Content-Length over the cap is 413 REQUEST_TOO_LARGE before the body is read', async () => {
    const r = await post(oversized, { 'content-length': String(Buffer.byteLength(oversized)) });
    expect(r.status).toBe(413);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('REQUEST_TOO_LARGE');
  });

  it('an undeclared body is read up to the cap and refused past it', async () => {
    const bytes = new TextEncoder().encode(oversized);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 8192) c.enqueue(bytes.subarray(i, i + 8192));
        c.close();
      },
    });
    const r = await post(stream, {});
    expect(r.status).toBe(413);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('REQUEST_TOO_LARGE');
  });

  it('a body under the cap is parsed as usual', async () => {
    const small = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(1024) } });
    const r = await post(small, {});
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ __typename: 'Query' });
  });

  it('a request the HTTP server has already capped (bodyCapped) is not read twice', async () => {
    const r = await post(oversized, {}, { bodyCapped: true });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ __typename: 'Query' });
  });
});
