/**
 * The shared WeChat access-token cache: one token per app for every request and
 * every instance. Cross-cutting like a yoga plugin, but used by the services
 * rather than by request hooks, so it exports the provider alone.
 */
export { AccessTokenProvider, AccessTokenUnavailableError, UnknownAppError } from './provider.js';
export type { AccessTokenProviderOptions, AccessTokenGrant, AppCredentials, AccessTokenEvents } from './provider.js';
