import { describe, expect, it } from 'vitest';
import { createSchema, createYoga } from 'graphql-yoga';
import { useJwtSession, type SessionContext } from '../../plugins/jwt-session/index.js';
import { signSessionToken } from '../../src/auth/index.js';

const KEY = { secret: 'a-test-secret-that-is-long-enough-for-hs256!', issuer: 'test-issuer', audience: 'wxphone' };

// The plugin alone on a bare yoga: what a request gets without a token, with a bad one, with a good one.
function yoga() {
  return createYoga<object, SessionContext>({
    schema: createSchema<SessionContext>({
      typeDefs: /* GraphQL */ `
        type Query {
          whoami: String!
        }
      `,
      resolvers: {
        Query: { whoami: (_root, _args, { session }) => `${session.subject} ${session.appid} ${[...session.scopes].sort().join(',')}` },
      },
    }),
    plugins: [useJwtSession(KEY)],
    logging: false,
  });
}

async function ask(authorization?: string) {
  const res = await yoga().fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ query: '{ whoami }' }),
  });
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body: (await res.json()) as { data?: { whoami: string } | null; errors?: { message: string; extensions?: { code?: string } }[] } };
}

describe('useJwtSession', () => {
  it('puts the verified session on the context', async () => {
    const token = await signSessionToken(KEY, { subject: 'o_user', appid: 'wx0123456789abcdef', scopes: ['quota:read', 'phone:exchange'] });
    const r = await ask(`Bearer ${token}`);
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ whoami: 'o_user wx0123456789abcdef phone:exchange,quota:read' });
  });

  it.each([
    ['no Authorization header', undefined, 'missing bearer session token'],
    ['another scheme', 'Basic dXNlcjpwYXNz', 'missing bearer session token'],
    ['a token that is not a JWT', 'Bearer not-a-jwt', 'session token is malformed'],
  ])('%s: HTTP 401, UNAUTHENTICATED, a Bearer challenge, nothing executed', async (_name, authorization, message) => {
    const r = await ask(authorization);
    expect(r.status).toBe(401);
    expect(r.challenge).toBe('Bearer realm="wxphone"');
    expect(r.body.data ?? null).toBeNull();
    expect(r.body.errors).toEqual([expect.objectContaining({ message, extensions: expect.objectContaining({ code: 'UNAUTHENTICATED' }) })]);
  });

  it('a token signed with another key is refused the same way', async () => {
    const forged = await signSessionToken({ ...KEY, secret: 'another-secret-that-is-long-enough-for-hs256' }, { subject: 'o_user', appid: 'wx0123456789abcdef', scopes: ['phone:exchange'] });
    const r = await ask(`Bearer ${forged}`);
    expect(r.status).toBe(401);
    expect(r.body.errors?.[0]).toMatchObject({ message: 'session token signature is invalid', extensions: { code: 'UNAUTHENTICATED' } });
  });
});
