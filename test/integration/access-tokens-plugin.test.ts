import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { createSchema, createYoga } from 'graphql-yoga';
import { useAccessTokens, type AccessTokensContext } from '../../plugins/access-tokens/index.js';
import { AccessTokenProvider } from '../../src/wechat/index.js';

const APP = { appid: 'wx0000000000000001', secret: 's' };

class TokenRefused extends Error {}

// The plugin alone on a bare yoga, over a real token cache whose fetches are scripted: what the
// cache does on a request's behalf names that request.
function setup() {
  const events: string[] = [];
  let issued = 0;
  const tokens = new AccessTokenProvider({
    apps: new Map([[APP.appid, APP]]),
    fetchToken: async () => ({ accessToken: `token-${++issued}`, expiresIn: 7200 }),
    cache: new Keyv(),
    lock: null,
    isTokenError: (e) => e instanceof TokenRefused,
    events: {
      fetched: (appid, requestId) => events.push(`fetched ${appid} ${requestId}`),
      cacheHit: (appid, level) => events.push(`hit ${appid} ${level}`),
      invalidated: (appid, requestId) => events.push(`invalidated ${appid} ${requestId}`),
    },
  });
  const yoga = createYoga<object, AccessTokensContext>({
    schema: createSchema<AccessTokensContext>({
      typeDefs: /* GraphQL */ `
        type Query {
          "A WeChat call made with the app's token; the first token is refused once when asked to."
          call(appid: String!, refuseFirst: Boolean): String!
        }
      `,
      resolvers: {
        Query: {
          call: (_root: unknown, { appid, refuseFirst }: { appid: string; refuseFirst?: boolean }, { accessTokens }: AccessTokensContext) =>
            accessTokens.withToken(appid, async (token: string) => {
              if (refuseFirst && token === 'token-1') throw new TokenRefused('40001');
              return `called with ${token}`;
            }),
        },
      },
    }),
    plugins: [useAccessTokens({ tokens })],
    logging: false,
  });
  const call = async (requestId: string, refuseFirst = false) => {
    const res = await yoga.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ query: 'query ($appid: String!, $refuse: Boolean) { call(appid: $appid, refuseFirst: $refuse) }', variables: { appid: APP.appid, refuse: refuseFirst } }),
    });
    return ((await res.json()) as { data: { call: string } }).data.call;
  };
  return { call, events };
}

describe('useAccessTokens', () => {
  it("puts the shared cache on the context, bound to the request: a fetch names the request that caused it, later requests hit the cache", async () => {
    const { call, events } = setup();
    expect(await call('req-1')).toBe('called with token-1');
    expect(await call('req-2')).toBe('called with token-1');
    expect(events).toEqual([`fetched ${APP.appid} req-1`, `hit ${APP.appid} process`]);
  });

  it('a token WeChat refuses is dropped and fetched again once, both in the name of the request that saw it refused', async () => {
    const { call, events } = setup();
    expect(await call('req-refused', true)).toBe('called with token-2');
    expect(events).toEqual([`fetched ${APP.appid} req-refused`, `invalidated ${APP.appid} req-refused`, `fetched ${APP.appid} req-refused`]);
  });
});
