import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createSessionVerifier, SessionError, signSessionToken } from '../../src/auth/index.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!';
const ISS = 'test-issuer';
const AUD = 'wxphone';
const key = new TextEncoder().encode(SECRET);

async function failure(p: Promise<unknown>): Promise<SessionError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SessionError);
    return e as SessionError;
  }
  throw new Error('expected the token to be refused');
}

function b64url(o: object) {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

describe('session tokens with an HS256 secret', () => {
  const verify = createSessionVerifier({ secret: SECRET, issuer: ISS, audience: AUD, clockToleranceSeconds: 5 });

  it('accepts a well-formed token and reads subject, appid and scopes', async () => {
    const token = await signSessionToken({ secret: SECRET, issuer: ISS, audience: AUD }, { subject: 'o_user', appid: 'wx0123456789abcdef', scopes: ['phone:exchange', 'quota:read'] });
    const s = await verify(token);
    expect(s.subject).toBe('o_user');
    expect(s.appid).toBe('wx0123456789abcdef');
    expect([...s.scopes].sort()).toEqual(['phone:exchange', 'quota:read']);
    expect(s.expiresAt).toBeGreaterThan(Date.now());
  });

  it('refuses an expired token, but tolerates a few seconds of clock skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('o').setIssuer(ISS).setAudience(AUD).setExpirationTime(now - 60).sign(key);
    expect((await failure(verify(expired))).reason).toBe('expired');
    const skewed = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('o').setIssuer(ISS).setAudience(AUD).setExpirationTime(now - 2).sign(key);
    await expect(verify(skewed)).resolves.toMatchObject({ subject: 'o' });
  });

  it('refuses a wrong audience, a wrong issuer, and missing exp/iss/aud/sub', async () => {
    const base = () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' });
    const cases = [
      base().setSubject('o').setIssuer(ISS).setAudience('someone-else').setExpirationTime('5m'),
      base().setSubject('o').setIssuer('evil').setAudience(AUD).setExpirationTime('5m'),
      base().setSubject('o').setIssuer(ISS).setAudience(AUD),
      base().setSubject('o').setAudience(AUD).setExpirationTime('5m'),
      base().setSubject('o').setIssuer(ISS).setExpirationTime('5m'),
      base().setIssuer(ISS).setAudience(AUD).setExpirationTime('5m'),
    ];
    for (const c of cases) expect((await failure(verify(await c.sign(key)))).reason).toBe('bad_claims');
  });

  it('refuses a user session (phone:exchange) that names no app; operator scopes may span apps', async () => {
    const signed = (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('o_user').setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(key);
    for (const claims of [{ scope: 'phone:exchange' }, { scope: 'quota:read phone:exchange' }, { scope: 'phone:exchange', appid: '' }]) {
      const e = await failure(verify(await signed(claims)));
      expect(e.reason).toBe('bad_claims');
      expect(e.message).toMatch(/must name its app/);
    }
    await expect(verify(await signed({ scope: 'quota:read billing:admin audit:read audit:admin' }))).resolves.toMatchObject({ appid: undefined });
    await expect(verify(await signed({ scope: 'phone:exchange', appid: 'wx0123456789abcdef' }))).resolves.toMatchObject({ appid: 'wx0123456789abcdef' });
  });

  it('refuses a token issued in the future (iat) or not yet valid (nbf), beyond the clock tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const at = (claims: { iat?: number; nbf?: number }) => {
      const b = new SignJWT({ scope: 'quota:read' }).setProtectedHeader({ alg: 'HS256' }).setSubject('svc').setIssuer(ISS).setAudience(AUD).setExpirationTime(now + 20 * 365 * 86_400);
      if (claims.iat !== undefined) b.setIssuedAt(claims.iat);
      if (claims.nbf !== undefined) b.setNotBefore(claims.nbf);
      return b.sign(key);
    };
    const tenYears = 10 * 365 * 86_400;
    for (const claims of [{ iat: now + tenYears }, { iat: now + 60 }, { nbf: now + tenYears }, { nbf: now + 60 }]) {
      expect((await failure(verify(await at(claims)))).reason, JSON.stringify(claims)).toBe('bad_claims');
    }
    // Within the 5 s tolerance, both are accepted, as are the past and the present.
    for (const claims of [{ iat: now + 3 }, { nbf: now + 3 }, { iat: now - 60, nbf: now - 60 }, { iat: now }]) {
      await expect(verify(await at(claims)), JSON.stringify(claims)).resolves.toMatchObject({ subject: 'svc' });
    }
  });

  it('refuses alg "none", a wrong key, and algorithms outside the allow-list', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: 'o', iss: ISS, aud: AUD, exp: now + 300 };
    const none = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
    expect(['algorithm', 'malformed']).toContain((await failure(verify(none))).reason);
    const wrongKey = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-another-secret-another!!'));
    expect((await failure(verify(wrongKey))).reason).toBe('bad_signature');
    const hs512 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS512' }).sign(key);
    expect((await failure(verify(hs512))).reason).toBe('algorithm');
    expect((await failure(verify('not.a.jwt'))).reason).toBe('malformed');
  });

  it('refuses non-string scope or appid claims', async () => {
    const t = await new SignJWT({ scope: ['phone:exchange'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('o').setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(key);
    expect((await failure(verify(t))).reason).toBe('bad_claims');
  });

  it('never echoes the token in its error message', async () => {
    const t = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('o').setIssuer('evil').setAudience(AUD).setExpirationTime('5m').sign(key);
    const e = await failure(verify(t));
    expect(e.message).not.toContain(t.split('.')[1]!);
  });
});

describe('remembered verifications', () => {
  // jose verifies an HS256 signature with WebCrypto: each call here is one full verification.
  const signatureChecks = () => vi.spyOn(globalThis.crypto.subtle, 'verify');
  afterEach(() => vi.restoreAllMocks());
  const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
  const tokenExpiringIn = (seconds: number, sub = 'o') =>
    new SignJWT({ scope: 'phone:exchange', appid: 'wx0123456789abcdef' }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuer(ISS).setAudience(AUD).setExpirationTime(T0 / 1000 + seconds).sign(key);

  it('a token sent again is not verified again until its verification is a minute old', async () => {
    let now = T0;
    const verify = createSessionVerifier({ secret: SECRET, issuer: ISS, audience: AUD, now: () => now });
    const checks = signatureChecks();
    const token = await tokenExpiringIn(3600);
    for (let i = 0; i < 3; i++) await expect(verify(token)).resolves.toMatchObject({ subject: 'o', expiresAt: T0 + 3_600_000 });
    expect(checks).toHaveBeenCalledTimes(1);
    await verify(await tokenExpiringIn(3600, 'someone-else'));
    expect(checks).toHaveBeenCalledTimes(2);
    now = T0 + 59_000;
    await verify(token);
    expect(checks).toHaveBeenCalledTimes(2);
    now = T0 + 60_000;
    await verify(token);
    expect(checks).toHaveBeenCalledTimes(3);
  });

  it('a remembered token still expires when a fresh verification would refuse it (same clock tolerance)', async () => {
    let now = T0;
    const verify = createSessionVerifier({ secret: SECRET, issuer: ISS, audience: AUD, clockToleranceSeconds: 5, now: () => now });
    const checks = signatureChecks();
    const token = await tokenExpiringIn(30);
    await verify(token);
    now = T0 + 34_999;
    await expect(verify(token)).resolves.toMatchObject({ subject: 'o' });
    now = T0 + 35_000;
    expect((await failure(verify(token))).reason).toBe('expired');
    expect(checks).toHaveBeenCalledTimes(1);
    // Forgotten once expired: verified afresh, and jose refuses it too.
    expect((await failure(verify(token))).reason).toBe('expired');
  });

  it('refused tokens are not remembered, and a token altered in one character is verified on its own', async () => {
    const verify = createSessionVerifier({ secret: SECRET, issuer: ISS, audience: AUD, now: () => T0 });
    const checks = signatureChecks();
    const token = await tokenExpiringIn(3600);
    await verify(token);
    const sig = token.slice(token.lastIndexOf('.') + 1);
    const altered = `${token.slice(0, token.lastIndexOf('.') + 1)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    for (let i = 0; i < 2; i++) expect((await failure(verify(altered))).reason).toBe('bad_signature');
    expect(checks).toHaveBeenCalledTimes(3);
  });

  it('cacheSize 0 verifies every time', async () => {
    const verify = createSessionVerifier({ secret: SECRET, issuer: ISS, audience: AUD, cacheSize: 0, now: () => T0 });
    const checks = signatureChecks();
    const token = await tokenExpiringIn(3600);
    await verify(token);
    await verify(token);
    expect(checks).toHaveBeenCalledTimes(2);
  });
});

describe('session tokens verified with a remote JWKS', () => {
  let server: Server;
  let jwksUrl: string;
  let privateKey: CryptoKey;
  let publicJwk: JWK;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    privateKey = pair.privateKey as CryptoKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('accepts an RS256 token signed by a key in the set', async () => {
    const verify = createSessionVerifier({ jwksUrl, issuer: ISS, audience: AUD });
    const t = await new SignJWT({ scope: 'quota:read' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('svc').setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(privateKey);
    await expect(verify(t)).resolves.toMatchObject({ subject: 'svc' });
  });

  it('refuses HS256 tokens (no alg confusion with the public key) and unknown key ids', async () => {
    const verify = createSessionVerifier({ jwksUrl, issuer: ISS, audience: AUD });
    const confused = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setSubject('o').setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    expect((await failure(verify(confused))).reason).toBe('algorithm');
    const other = await generateKeyPair('RS256');
    const stranger = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k2' }).setSubject('o').setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(other.privateKey);
    expect((await failure(verify(stranger))).reason).toBe('bad_signature');
  });
});
