import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';

export interface Session {
  /** The user's openid for `phone:exchange` sessions; a service name for internal tools. */
  subject: string;
  issuer: string;
  /** The mini program the session belongs to, when the token names one. */
  appid: string | undefined;
  scopes: ReadonlySet<string>;
  expiresAt: number;
}

export interface SessionVerifierOptions {
  secret?: string | undefined;
  jwksUrl?: string | undefined;
  issuer: string;
  audience: string;
  clockToleranceSeconds?: number;
}

export type SessionFailure = 'missing' | 'malformed' | 'expired' | 'bad_signature' | 'bad_claims' | 'algorithm' | 'key_unavailable';

export class SessionError extends Error {
  override name = 'SessionError';
  constructor(
    readonly reason: SessionFailure,
    message: string,
  ) {
    super(message);
  }
}

// Symmetric and asymmetric keys never share an allow-list: a public key must not be
// accepted as an HMAC secret (the classic alg-confusion attack), and `none` is never allowed.
const HMAC_ALGORITHMS = ['HS256'];
const JWKS_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

export type SessionVerifier = (token: string) => Promise<Session>;

export function createSessionVerifier(opts: SessionVerifierOptions): SessionVerifier {
  if (!opts.secret && !opts.jwksUrl) throw new Error('session verification needs a secret or a JWKS URL');
  // The HMAC key is imported once: given raw bytes, jose would import them on every verification.
  const key: Promise<CryptoKey> | JWTVerifyGetKey = opts.jwksUrl
    ? createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 3000, cooldownDuration: 30_000, cacheMaxAge: 600_000 })
    : crypto.subtle.importKey('raw', new TextEncoder().encode(opts.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const algorithms = opts.jwksUrl ? JWKS_ALGORITHMS : HMAC_ALGORITHMS;
  const verifyOptions = {
    algorithms,
    issuer: opts.issuer,
    audience: opts.audience,
    requiredClaims: ['iss', 'aud', 'exp', 'sub'],
    clockTolerance: opts.clockToleranceSeconds ?? 5,
  };

  return async (token) => {
    let payload;
    try {
      // Two calls because jose's overloads take either a key or a key-resolver, not the union.
      payload = typeof key === 'function' ? (await jwtVerify(token, key, verifyOptions)).payload : (await jwtVerify(token, await key, verifyOptions)).payload;
    } catch (e) {
      throw toSessionError(e);
    }
    const scope = payload.scope;
    if (scope !== undefined && typeof scope !== 'string') throw new SessionError('bad_claims', 'the "scope" claim must be a space-separated string');
    const appid = payload.appid;
    if (appid !== undefined && typeof appid !== 'string') throw new SessionError('bad_claims', 'the "appid" claim must be a string');
    return {
      subject: payload.sub!,
      issuer: payload.iss!,
      appid,
      scopes: new Set((scope ?? '').split(' ').filter(Boolean)),
      expiresAt: payload.exp! * 1000,
    };
  };
}

function toSessionError(e: unknown): SessionError {
  if (e instanceof joseErrors.JWTExpired) return new SessionError('expired', 'session token has expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    return new SessionError('bad_claims', `session token claim "${e.claim}" is missing or not accepted`);
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return new SessionError('algorithm', 'session token algorithm is not allowed');
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return new SessionError('bad_signature', 'session token signature is invalid');
  if (e instanceof joseErrors.JWKSNoMatchingKey) return new SessionError('bad_signature', 'no key matches the session token');
  if (e instanceof joseErrors.JWKSTimeout || e instanceof joseErrors.JWKSInvalid) {
    return new SessionError('key_unavailable', 'session keys could not be loaded');
  }
  return new SessionError('malformed', 'session token is malformed');
}
