import type { Plugin } from 'graphql-yoga';
import type { AccessTokenProvider } from './provider.js';

export { AccessTokenProvider, AccessTokenUnavailableError, UnknownAppError } from './provider.js';
export type { AccessTokenProviderOptions, AccessTokenGrant, AppCredentials, AccessTokenEvents } from './provider.js';

/**
 * Puts the process's shared access-token provider on every request's context,
 * so resolvers reach WeChat through one cache and one refresh path.
 */
export function useAccessTokens(provider: AccessTokenProvider): Plugin<{ accessTokens: AccessTokenProvider }> {
  return {
    onContextBuilding({ extendContext }) {
      extendContext({ accessTokens: provider });
    },
  };
}
