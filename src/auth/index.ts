/** Session tokens: who calls the gateway (verified with jose), and signing them as an identity provider would. */
export { createSessionVerifier, SessionError } from './session.js';
export type { Session, SessionVerifier, SessionVerifierOptions, SessionFailure } from './session.js';
export { signSessionToken } from './sign.js';
export type { SessionTokenClaims } from './sign.js';
