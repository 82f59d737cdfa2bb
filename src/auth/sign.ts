import { SignJWT } from 'jose';

export interface SessionTokenClaims {
  subject: string;
  appid?: string | undefined;
  scopes: readonly string[];
  /** e.g. "1h", "15m", "30s" (jose time span). */
  ttl?: string;
}

/** Signs an HS256 session token, as an identity provider would; used by the CLI and tests. */
export async function signSessionToken(
  key: { secret: string; issuer: string; audience: string },
  claims: SessionTokenClaims,
): Promise<string> {
  const jwt = new SignJWT({ scope: claims.scopes.join(' '), ...(claims.appid ? { appid: claims.appid } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.subject)
    .setIssuer(key.issuer)
    .setAudience(key.audience)
    .setIssuedAt()
    .setExpirationTime(claims.ttl ?? '1h');
  return jwt.sign(new TextEncoder().encode(key.secret));
}
