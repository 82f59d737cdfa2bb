import type { Plugin } from 'graphql-yoga';
import type { AccessTokenProvider, RequestAccessTokens } from '../../src/wechat/index.js';
import { requestIdOf } from '../request-id/index.js';

export interface AccessTokensContext {
  accessTokens: RequestAccessTokens;
}

export interface AccessTokensOptions {
  /** The shared cache (src/wechat/access-tokens.ts): one token per app for every request and instance. */
  tokens: Pick<AccessTokenProvider, 'forRequest'>;
}

/**
 * The request side of the shared access-token cache: the context carries the cache bound to the
 * request, so a token fetched, refused or found unavailable on its behalf is logged with its id.
 * Nothing is fetched here; a request that calls no WeChat API costs the cache nothing.
 */
export function useAccessTokens(options: AccessTokensOptions): Plugin<AccessTokensContext> {
  // One per request, however many operations it carries.
  const bound = new WeakMap<Request, RequestAccessTokens>();
  return {
    onContextBuilding({ context, extendContext }) {
      let accessTokens = bound.get(context.request);
      if (!accessTokens) bound.set(context.request, (accessTokens = options.tokens.forRequest(requestIdOf(context.request))));
      extendContext({ accessTokens });
    },
  };
}
