import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { LruMap } from '../util/lru.js';

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
  /**
   * Verified tokens remembered, so a token sent again is not verified again (default 10,000;
   * 0: none). Only tokens that verified are kept; each is re-checked for expiry on every use.
   */
  cacheSize?: number;
  /** How long a verification is trusted before the token is verified again (default 60 s): the most a token outlives its key's removal from the JWKS, beyond jose's own JWKS cache. */
  cacheMaxAgeMs?: number;
  now?: () => number;
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

/** The scope of a user's own session (the exchange, the legacy decrypt, consent, button reports). */
const USER_SCOPE = 'phone:exchange';

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

  const now = opts.now ?? Date.now;
  const toleranceSeconds = verifyOptions.clockTolerance;
  const maxAgeMs = opts.cacheMaxAgeMs ?? 60_000;
  // Verifying costs a WebCrypto call (a thread-pool round trip for HMAC, far more for RSA): with
  // every plugin on it was the largest cost of a request that does nothing else. Clients send the
  // same token many times (a service token, a user's session token for its few calls).
  const verified = new LruMap<string, { session: Session; at: number }>(opts.cacheSize ?? 10_000);

  async function verifyToken(token: string, at: number): Promise<Session> {
    let payload;
    try {
      const options = { ...verifyOptions, currentDate: new Date(at) };
      // Two calls because jose's overloads take either a key or a key-resolver, not the union.
      payload = typeof key === 'function' ? (await jwtVerify(token, key, options)).payload : (await jwtVerify(token, await key, options)).payload;
    } catch (e) {
      throw toSessionError(e);
    }
    const scope = payload.scope;
    if (scope !== undefined && typeof scope !== 'string') throw new SessionError('bad_claims', 'the "scope" claim must be a space-separated string');
    const appid = payload.appid;
    if (appid !== undefined && typeof appid !== 'string') throw new SessionError('bad_claims', 'the "appid" claim must be a string');
    // jose checks iat only against a maximum age; a token "issued" in the future is forged or
    // minted by a clock that is wrong, and trusting it would let it outlive what its issuer meant.
    if (payload.iat !== undefined && payload.iat > Math.floor(at / 1000) + verifyOptions.clockTolerance) {
      throw new SessionError('bad_claims', 'session token claim "iat" is in the future');
    }
    const scopes = new Set((scope ?? '').split(' ').filter(Boolean));
    // A user's session acts for one mini program's user: without the app it names, its subject (an
    // openid, meaningful only within that app) could be used for any app this gateway serves.
    if (scopes.has(USER_SCOPE) && !appid) {
      throw new SessionError('bad_claims', `a session token with the ${USER_SCOPE} scope must name its app (the "appid" claim)`);
    }
    return Object.freeze({ subject: payload.sub!, issuer: payload.iss!, appid, scopes, expiresAt: payload.exp! * 1000 });
  }

  return async (token) => {
    const at = now();
    const hit = verified.get(token);
    if (hit && at - hit.at < maxAgeMs) {
      // jose's own rule, so a remembered token expires exactly when a fresh verification would refuse it.
      if (hit.session.expiresAt / 1000 <= Math.floor(at / 1000) - toleranceSeconds) {
        verified.delete(token);
        throw new SessionError('expired', 'session token has expired');
      }
      return hit.session;
    }
    const session = await verifyToken(token, at);
    verified.set(token, { session, at });
    return session;
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
