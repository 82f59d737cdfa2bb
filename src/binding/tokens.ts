import { randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { sql, type Kysely } from 'kysely';
import type { DataKeys } from '../crypto/keys.js';
import { DAY_MS } from '../util/time.js';
import type { Database, SigningKeysTable } from '../store/schema.js';

/**
 * Verification tokens ("session binding"): after a successful exchange the
 * gateway can hand out a short-lived ES256 JWT that says "this subject of this app had a phone
 * number verified at T, and its keyed hash is H" — so a downstream service can trust the
 * verification without ever seeing the number. Downstream services verify with the JWKS the
 * gateway publishes (`/.well-known/jwks.json`, see {@link jwksResponse}).
 *
 * Keys live in `signing_keys`, shared by every gateway instance:
 *
 * - A key signs from its creation until `retire_at` (= created_at + rotationDays) and stays in
 *   the JWKS until `drop_at` (= retire_at + ttl), so every token it signed verifies until it
 *   expires.
 * - The current key is the newest key with `retire_at > now`. When there is none, one is
 *   created with a kid derived from the rotation period alone: `auto-<rotation>-<period>` where
 *   period = floor(now / rotationMs) and rotation is its length (`30d`, `3600s`, …). Instances
 *   racing to create it insert the SAME kid with ON CONFLICT DO NOTHING: one insert wins, the
 *   others re-read and adopt the winner's key — exactly one key per period, whatever the race.
 *   If that kid is already taken by a key that is no longer current (only when keys were
 *   retired by hand, or clocks disagree), the next deterministic candidate is tried
 *   (`auto-<rotation>-<period>.1`, `.2`, …), so racing instances still converge on one kid.
 * - {@link VerificationTokens.rotate} (admin, tests) creates `rot-<created_at base36>-<random>`:
 *   a different prefix, so it can never collide with a period-derived kid.
 *
 * Keys are cached in process: `issue` does no database read while the cache is younger than
 * {@link KEY_REFRESH_MS} and its current key is not retired; otherwise it re-reads (one read
 * shared by concurrent callers).
 */

/** Defaults for the configuration layer. */
export const DEFAULT_TTL_SECONDS = 900;
export const DEFAULT_ROTATION_DAYS = 30;

/** How long `issue` trusts its cached keys before re-reading the table. */
export const KEY_REFRESH_MS = 30_000;
/** `jwks()` serves a public endpoint that downstream caches: re-read more eagerly than `issue`. */
export const JWKS_REFRESH_MS = 5_000;
/**
 * When {@link VerificationTokens.rotate} retires a key early, other instances may sign with it
 * until their cache is refreshed (≤ KEY_REFRESH_MS plus a read): the retired key stays in the
 * JWKS this much longer than the token lifetime so those tokens verify until they expire.
 */
export const ROTATE_DROP_SLACK_MS = 2 * KEY_REFRESH_MS;

const ALG = 'ES256';
const MAX_KID_CANDIDATES = 16;

export interface VerificationTokenOptions {
  db: Kysely<Database>;
  seal: Pick<DataKeys, 'seal' | 'open'>;
  /** e.g. 'wxphone-gateway' */
  issuer: string;
  /** e.g. 'wxphone-downstream' */
  audience: string;
  /** Token lifetime; short: {@link DEFAULT_TTL_SECONDS} (900) by default. */
  ttlSeconds: number;
  /** A key signs for this long: {@link DEFAULT_ROTATION_DAYS} (30) by default. */
  rotationDays: number;
  /** Epoch milliseconds (tests move it). */
  now?: () => number;
}

export interface VerificationClaims {
  /** The session subject the verification belongs to. */
  subject: string;
  appid: string;
  /** When the number was verified, epoch milliseconds (the token carries seconds). */
  phoneVerifiedAt: number;
  /** A keyed hash of the number — never the number. */
  phoneHash: string;
}

/** What a verified token's payload holds (beyond the registered claims). */
export interface VerificationTokenPayload {
  sub: string;
  appid: string;
  /** Seconds since the epoch. */
  phone_verified_at: number;
  phone_hash: string;
  iss: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
}

interface CachedKey {
  kid: string;
  publicJwk: JWK;
  privateSealed: string;
  createdAt: number;
  retireAt: number;
  dropAt: number;
}

interface KeyCache {
  loadedAt: number;
  /** Keys with drop_at > loadedAt, newest first. */
  keys: CachedKey[];
}

/** Only the public members of an EC JWK, whatever the stored JSON holds. */
function publicOnly(jwk: JWK, kid: string): JWK {
  const { kty, crv, x, y } = jwk;
  return { kty, crv, x, y, kid, alg: ALG, use: 'sig' };
}

function rotationLabel(ms: number): string {
  if (ms % DAY_MS === 0) return `${ms / DAY_MS}d`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Phone numbers are digits (with an optional +country prefix and separators): a hash is not. */
const LOOKS_LIKE_PHONE = /^\+?[\d\s()-]{5,}$/;

export class VerificationTokens {
  readonly #db: Kysely<Database>;
  readonly #seal: Pick<DataKeys, 'seal' | 'open'>;
  readonly #issuer: string;
  readonly #audience: string;
  readonly #ttlSeconds: number;
  readonly #rotationMs: number;
  readonly #now: () => number;

  #cache: KeyCache | undefined;
  /** Loads are numbered; an older load finishing late never replaces a newer one's result. */
  #loadSeq = 0;
  #appliedSeq = 0;
  #inflight: Promise<void> | undefined;
  /** Unsealed, imported private keys by kid (non-extractable CryptoKeys). */
  readonly #signers = new Map<string, Promise<CryptoKey>>();

  constructor(opts: VerificationTokenOptions) {
    if (!opts.issuer || !opts.audience) throw new TypeError('VerificationTokens: issuer and audience are required');
    if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds <= 0) {
      throw new TypeError('VerificationTokens: ttlSeconds must be a positive integer');
    }
    if (!Number.isFinite(opts.rotationDays) || opts.rotationDays <= 0) {
      throw new TypeError('VerificationTokens: rotationDays must be a positive number');
    }
    const rotationMs = Math.round(opts.rotationDays * DAY_MS);
    if (rotationMs < 1000) throw new TypeError('VerificationTokens: rotationDays is too short');
    this.#db = opts.db;
    this.#seal = opts.seal;
    this.#issuer = opts.issuer;
    this.#audience = opts.audience;
    this.#ttlSeconds = opts.ttlSeconds;
    this.#rotationMs = rotationMs;
    this.#now = opts.now ?? Date.now;
  }

  /** ES256 JWT: sub, appid, phone_verified_at (seconds), phone_hash, iss, aud, iat, exp, jti; header kid. Never the number. */
  async issue(c: VerificationClaims): Promise<{ token: string; expiresAt: number; kid: string }> {
    if (typeof c.subject !== 'string' || !c.subject) throw new TypeError('issue: subject is required');
    if (typeof c.appid !== 'string' || !c.appid) throw new TypeError('issue: appid is required');
    if (!Number.isFinite(c.phoneVerifiedAt) || c.phoneVerifiedAt < 0) {
      throw new TypeError('issue: phoneVerifiedAt must be epoch milliseconds');
    }
    if (typeof c.phoneHash !== 'string' || !c.phoneHash) throw new TypeError('issue: phoneHash is required');
    // A guard, not a proof: refuse what is evidently a raw number (without quoting it).
    if (LOOKS_LIKE_PHONE.test(c.phoneHash)) throw new TypeError('issue: phoneHash must be a keyed hash, not a phone number');

    const now = this.#now();
    const key = await this.#current(now, KEY_REFRESH_MS);
    const signer = await this.#signer(key);
    const iat = Math.floor(now / 1000);
    const exp = iat + this.#ttlSeconds;
    const token = await new SignJWT({
      appid: c.appid,
      phone_verified_at: Math.floor(c.phoneVerifiedAt / 1000),
      phone_hash: c.phoneHash,
    })
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'JWT' })
      .setSubject(c.subject)
      .setIssuer(this.#issuer)
      .setAudience(this.#audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(signer);
    return { token, expiresAt: exp * 1000, kid: key.kid };
  }

  /**
   * The public keys downstream services verify with: every key not yet past drop_at, newest
   * first. Makes sure a current key exists, so the key that will sign is published before it
   * signs. Only kty, crv, x, y, kid, alg and use: never private members.
   */
  async jwks(): Promise<{ keys: JWK[] }> {
    const now = this.#now();
    await this.#current(now, JWKS_REFRESH_MS);
    const keys = (this.#cache?.keys ?? []).filter((k) => k.dropAt > now);
    return { keys: keys.map((k) => publicOnly(k.publicJwk, k.kid)) };
  }

  /**
   * Retires the current signing key now and creates a new one (admin/tests); old tokens stay
   * valid until they expire. The retired key leaves the JWKS at
   * min(its drop_at, now + ttl + {@link ROTATE_DROP_SLACK_MS}).
   * The new kid is `rot-<now base36>-<random>`: never a period-derived `auto-…` kid.
   */
  async rotate(): Promise<string> {
    const now = this.#now();
    const kid = `rot-${now.toString(36)}-${randomBytes(6).toString('base64url')}`;
    const row = await this.#generate(kid, now);
    const dropBy = now + this.#ttlSeconds * 1000 + ROTATE_DROP_SLACK_MS;
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .updateTable('signing_keys')
        .set({
          retire_at: now,
          drop_at: sql<number>`case when drop_at > ${dropBy} then ${dropBy} else drop_at end`,
        })
        .where('retire_at', '>', now)
        .execute();
      await trx.insertInto('signing_keys').values(row).execute();
    });
    await this.#load(now);
    return kid;
  }

  /** The current key at `now`, from the cache when it is fresh enough; else re-read (and create). */
  async #current(now: number, maxAgeMs: number): Promise<CachedKey> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const cache = this.#cache;
      if (cache && now - cache.loadedAt < maxAgeMs) {
        const key = pickCurrent(cache.keys, now);
        if (key) return key;
      }
      // One read at a time per instance; callers that wanted a later `now` check again after it.
      if (!this.#inflight) {
        this.#inflight = this.#load(now).finally(() => {
          this.#inflight = undefined;
        });
      }
      await this.#inflight;
      const fresh = this.#cache;
      if (fresh && fresh.loadedAt >= now - maxAgeMs) {
        const key = pickCurrent(fresh.keys, now);
        if (key) return key;
      }
    }
    throw new Error('no current signing key could be established');
  }

  /** Reads the keys not yet dropped; creates the period's key if none is current. */
  async #load(now: number): Promise<void> {
    const seq = ++this.#loadSeq;
    let keys = await this.#read(now);
    if (!pickCurrent(keys, now)) keys = await this.#create(now);
    if (seq > this.#appliedSeq) {
      this.#appliedSeq = seq;
      this.#cache = { loadedAt: now, keys };
      // Forget unsealed keys that are no longer listed.
      for (const kid of this.#signers.keys()) if (!keys.some((k) => k.kid === kid)) this.#signers.delete(kid);
    }
  }

  async #read(now: number): Promise<CachedKey[]> {
    const rows = await this.#db
      .selectFrom('signing_keys')
      .select(['kid', 'alg', 'public_jwk', 'private_sealed', 'created_at', 'retire_at', 'drop_at'])
      .where('drop_at', '>', now)
      .orderBy('created_at', 'desc')
      .orderBy('kid', 'desc')
      .execute();
    const keys: CachedKey[] = [];
    for (const r of rows) {
      if (r.alg !== ALG) continue;
      let publicJwk: JWK;
      try {
        publicJwk = JSON.parse(r.public_jwk) as JWK;
      } catch {
        // The parser's message would quote the column: say which key, nothing more.
        throw new Error(`signing key ${r.kid}: stored public key is not valid JSON`);
      }
      keys.push({
        kid: r.kid,
        publicJwk,
        privateSealed: r.private_sealed,
        createdAt: Number(r.created_at),
        retireAt: Number(r.retire_at),
        dropAt: Number(r.drop_at),
      });
    }
    return keys;
  }

  /**
   * Creates the current key under the period-derived kid. A concurrent creator inserting the
   * same kid makes this insert do nothing; the re-read then finds the winner's key.
   */
  async #create(now: number): Promise<CachedKey[]> {
    const base = `auto-${rotationLabel(this.#rotationMs)}-${Math.floor(now / this.#rotationMs)}`;
    for (let i = 0; i < MAX_KID_CANDIDATES; i++) {
      const kid = i === 0 ? base : `${base}.${i}`;
      const row = await this.#generate(kid, now);
      await this.#db
        .insertInto('signing_keys')
        .values(row)
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
      const keys = await this.#read(now);
      if (pickCurrent(keys, now)) return keys;
      // The kid was taken by a key that is not current (retired by hand, or clocks disagree):
      // the next candidate, the same one every racing instance moves on to.
    }
    throw new Error('could not create a signing key: every candidate kid is taken by a retired key');
  }

  async #generate(kid: string, now: number): Promise<SigningKeysTable> {
    const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
    const publicJwk = publicOnly(await exportJWK(publicKey), kid);
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ALG };
    const retireAt = now + this.#rotationMs;
    return {
      kid,
      alg: ALG,
      public_jwk: JSON.stringify(publicJwk),
      private_sealed: this.#seal.seal(JSON.stringify(privateJwk), kid),
      created_at: now,
      retire_at: retireAt,
      drop_at: retireAt + this.#ttlSeconds * 1000,
    };
  }

  /** The key's private half, unsealed once and imported as a non-extractable CryptoKey. */
  #signer(key: CachedKey): Promise<CryptoKey> {
    let p = this.#signers.get(key.kid);
    if (!p) {
      p = (async () => {
        let jwk: JWK;
        try {
          jwk = JSON.parse(this.#seal.open(key.privateSealed, key.kid)) as JWK;
        } catch {
          // No cause attached: neither the sealed text nor anything unsealed goes into an error.
          throw new Error(`signing key ${key.kid} could not be unsealed (wrong data key, or a moved row)`);
        }
        try {
          const imported = await importJWK(jwk, ALG, { extractable: false });
          if (imported instanceof Uint8Array || imported.type !== 'private') throw new Error('not a private key');
          return imported;
        } catch {
          throw new Error(`signing key ${key.kid} could not be imported`);
        }
      })();
      this.#signers.set(key.kid, p);
      p.catch(() => this.#signers.delete(key.kid));
    }
    return p;
  }
}

function pickCurrent(keys: CachedKey[], now: number): CachedKey | undefined {
  let best: CachedKey | undefined;
  for (const k of keys) {
    if (k.retireAt <= now) continue;
    if (!best || k.createdAt > best.createdAt || (k.createdAt === best.createdAt && k.kid > best.kid)) best = k;
  }
  return best;
}

/** The JWKS as an HTTP answer, for `/.well-known/jwks.json`. */
export async function jwksResponse(
  tokens: Pick<VerificationTokens, 'jwks'>,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  try {
    const set = await tokens.jwks();
    return {
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=300' },
      body: JSON.stringify(set),
    };
  } catch {
    // The cause (database, unsealing) stays out of a public answer.
    return {
      status: 503,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
      body: JSON.stringify({ error: 'jwks_unavailable' }),
    };
  }
}
