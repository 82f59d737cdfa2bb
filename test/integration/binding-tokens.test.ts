import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWK } from 'jose';
import pg from 'pg';
import { BACKENDS, type Backend } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createDataKeys } from '../../src/crypto/keys.js';
import {
  VerificationTokens,
  jwksResponse,
  KEY_REFRESH_MS,
  ROTATE_DROP_SLACK_MS,
  type VerificationClaims,
  type VerificationTokenOptions,
} from '../../src/binding/index.js';
import { testSchemaName } from '../support/schemas.js';

const ISS = 'wxphone-gateway';
const AUD = 'wxphone-downstream';
const TTL = 900;
const ROTATION_DAYS = 30;
const DAY_MS = 86_400_000;
const T0 = Date.parse('2026-06-01T04:00:00.123Z');
const PHONE = '13812345678';
const dataKeys = createDataKeys(randomBytes(32));
const hashKey = randomBytes(32);
const phoneHash = createHmac('sha256', hashKey).update(PHONE).digest('base64url');
const claims: VerificationClaims = { subject: 'o_subject_1', appid: 'wx00000000000000b1', phoneVerifiedAt: T0 - 1_234, phoneHash };

/** A database of its own: a SQLite file, or a PostgreSQL schema dropped afterwards. */
async function freshDatabase(backend: Backend): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!backend.databaseUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'wxphone-binding-'));
    return { url: `file:${join(dir, 'b.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const base = backend.databaseUrl;
  const schema = testSchemaName();
  const admin = async (q: string) => {
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await admin(`create schema ${schema}`);
  const url = `${base}${base.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  // Dropped by the global teardown, not here: a drop mid-run races with other files' migrations.
  return { url, drop: async () => {} };
}

async function verify(token: string, jwks: { keys: JWK[] }, at: number) {
  return jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISS, audience: AUD, algorithms: ['ES256'], currentDate: new Date(at) });
}

async function refusal(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected verification to fail');
}

describe.each(BACKENDS)('VerificationTokens on $name', (backend) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A fresh database, `n` stores (gateway instances) on it, one shared clock. */
  async function setup(n = 1, onQuery?: (sql: string) => void) {
    const database = await freshDatabase(backend);
    cleanups.push(database.drop);
    const stores: Store[] = [];
    for (let i = 0; i < n; i++) {
      const store = await openStore(database.url, onQuery ? { onQuery } : {});
      cleanups.push(() => store.close());
      stores.push(store);
    }
    const clock = { t: T0 };
    const make = (store: Store, extra: Partial<VerificationTokenOptions> = {}) =>
      new VerificationTokens({ db: store.db, seal: dataKeys, issuer: ISS, audience: AUD, ttlSeconds: TTL, rotationDays: ROTATION_DAYS, now: () => clock.t, ...extra });
    return { stores, clock, make, store: stores[0]!, db: stores[0]!.db };
  }

  it('issues an ES256 token that verifies against jwks(), with the claims and no phone number', async () => {
    const { make, store, db } = await setup();
    const t = make(store);
    const issued = await t.issue(claims);
    const jwks = await t.jwks();
    const { payload, protectedHeader } = await verify(issued.token, jwks, T0);

    expect(protectedHeader.alg).toBe('ES256');
    expect(protectedHeader.kid).toBe(issued.kid);
    expect(payload.sub).toBe(claims.subject);
    expect(payload.appid).toBe(claims.appid);
    expect(payload.phone_verified_at).toBe(Math.floor(claims.phoneVerifiedAt / 1000));
    expect(payload.phone_hash).toBe(phoneHash);
    expect(payload.iss).toBe(ISS);
    expect(payload.aud).toBe(AUD);
    expect(payload.iat).toBe(Math.floor(T0 / 1000));
    expect(payload.exp! - payload.iat!).toBe(TTL);
    expect(issued.expiresAt).toBe(payload.exp! * 1000);
    expect(typeof payload.jti).toBe('string');
    expect(payload.jti!.length).toBeGreaterThanOrEqual(16);

    // The header's kid is the current key: the only key, not retired, in the table.
    const rows = await db.selectFrom('signing_keys').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.kid).toBe(issued.kid);
    expect(issued.kid).toBe(`auto-${ROTATION_DAYS}d-${Math.floor(T0 / (ROTATION_DAYS * DAY_MS))}`);
    expect(Number(rows[0]!.retire_at)).toBe(T0 + ROTATION_DAYS * DAY_MS);
    expect(Number(rows[0]!.drop_at)).toBe(T0 + ROTATION_DAYS * DAY_MS + TTL * 1000);
    expect(JSON.parse(rows[0]!.public_jwk)).toMatchObject({ kid: issued.kid, alg: 'ES256', use: 'sig', kty: 'EC', crv: 'P-256' });

    // No phone number anywhere: token (all three parts decoded), JWKS, stored rows.
    const [h, p] = issued.token.split('.');
    const decoded = Buffer.from(h!, 'base64url').toString() + Buffer.from(p!, 'base64url').toString();
    for (const text of [issued.token, decoded, JSON.stringify(jwks), JSON.stringify(rows)]) expect(text).not.toContain(PHONE);

    // The JWKS holds public members only.
    expect(jwks.keys).toHaveLength(1);
    for (const k of jwks.keys) {
      expect(k.d).toBeUndefined();
      expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    }
  });

  it('refuses claims that carry what is evidently a phone number as the hash', async () => {
    const { make, store } = await setup();
    const t = make(store);
    const e = await refusal(t.issue({ ...claims, phoneHash: PHONE }));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).not.toContain(PHONE);
    await expect(t.issue({ ...claims, phoneHash: `+86 ${PHONE}` })).rejects.toThrow(TypeError);
    await expect(t.issue({ ...claims, subject: '' })).rejects.toThrow(TypeError);
  });

  it('rotate(): old and new tokens verify; once the old key is dropped, its tokens no longer do', async () => {
    const { make, store, db, clock } = await setup();
    const t = make(store);
    const a = await t.issue(claims);
    clock.t += 60_000;
    const newKid = await t.rotate();
    expect(newKid).not.toBe(a.kid);
    expect(newKid).toMatch(/^rot-/);
    const b = await t.issue(claims);
    expect(b.kid).toBe(newKid);

    const jwks = await t.jwks();
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([a.kid, b.kid].sort());
    for (const k of jwks.keys) expect(k.d).toBeUndefined();
    await verify(a.token, jwks, clock.t);
    await verify(b.token, jwks, clock.t);

    // The old key is retired now and dropped after every token it could have signed expired.
    const old = await db.selectFrom('signing_keys').selectAll().where('kid', '=', a.kid).executeTakeFirstOrThrow();
    expect(Number(old.retire_at)).toBe(clock.t);
    expect(Number(old.drop_at)).toBe(clock.t + TTL * 1000 + ROTATE_DROP_SLACK_MS);
    expect(Number(old.drop_at)).toBeGreaterThan(a.expiresAt);

    // Past the old key's drop_at: gone from the JWKS; A fails even at a time it had not expired;
    // B (signed by the new key) still verifies.
    const issuedB = clock.t;
    clock.t = Number(old.drop_at) + 1;
    const later = await t.jwks();
    expect(later.keys.map((k) => k.kid)).toEqual([b.kid]);
    const e = await refusal(verify(a.token, later, T0));
    expect(e).toBeInstanceOf(errors.JWKSNoMatchingKey);
    await expect(verify(a.token, later, clock.t)).rejects.toThrow();
    await verify(b.token, later, issuedB);
  });

  it('a key retired by rotate() elsewhere keeps verifying for tokens signed by an instance that has not seen it yet', async () => {
    const { make, stores, clock } = await setup(2);
    const [one, two] = [make(stores[0]!), make(stores[1]!)];
    const first = await one.issue(claims);
    expect((await two.issue(claims)).kid).toBe(first.kid); // both cached
    await one.rotate();
    clock.t += KEY_REFRESH_MS - 1; // `two` still trusts its cache
    const stale = await two.issue(claims);
    expect(stale.kid).toBe(first.kid);
    // After the refresh interval `two` signs with the new key.
    clock.t = T0 + KEY_REFRESH_MS;
    expect((await two.issue(claims)).kid).not.toBe(first.kid);
    // The stale token verifies until just before it expires, against the JWKS of that time.
    clock.t = stale.expiresAt - 1_000;
    await verify(stale.token, await one.jwks(), clock.t);
  });

  it('automatic rotation: past rotationDays, issue signs with a new period key; the old one stays published until dropped', async () => {
    const { make, store, db, clock } = await setup();
    const t = make(store);
    const a = await t.issue(claims);
    clock.t = T0 + ROTATION_DAYS * DAY_MS - 1;
    expect((await t.issue(claims)).kid).toBe(a.kid); // last millisecond of its signing life
    const lastOld = await t.issue(claims);
    clock.t = T0 + ROTATION_DAYS * DAY_MS;
    const b = await t.issue(claims);
    expect(b.kid).not.toBe(a.kid);
    expect(b.kid).toBe(`auto-${ROTATION_DAYS}d-${Math.floor(clock.t / (ROTATION_DAYS * DAY_MS))}`);
    const jwks = await t.jwks();
    expect(jwks.keys.map((k) => k.kid)).toEqual([b.kid, a.kid]);
    await verify(lastOld.token, jwks, lastOld.expiresAt - 1_000);
    await verify(b.token, jwks, clock.t);
    expect(await db.selectFrom('signing_keys').select('kid').execute()).toHaveLength(2);
    // Dropped once every token it signed has expired.
    clock.t = T0 + ROTATION_DAYS * DAY_MS + TTL * 1000;
    expect((await t.jwks()).keys.map((k) => k.kid)).toEqual([b.kid]);
  });

  it('two instances on one database, cold, issuing concurrently: exactly one key; tokens verify against either JWKS', async () => {
    const { make, stores } = await setup(2);
    const one = make(stores[0]!);
    const two = make(stores[1]!);
    const issued = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).issue({ ...claims, subject: `o_${i}` })));
    const rows = await stores[0]!.db.selectFrom('signing_keys').select('kid').execute();
    expect(rows).toHaveLength(1);
    expect(new Set(issued.map((r) => r.kid))).toEqual(new Set([rows[0]!.kid]));
    const [j1, j2] = [await one.jwks(), await two.jwks()];
    expect(j1).toEqual(j2);
    for (const { token } of issued) {
      await verify(token, j1, T0);
      await verify(token, j2, T0);
    }
  });

  it('two instances racing at a period boundary after the key retired create one new key', async () => {
    const { make, stores, clock } = await setup(2);
    const one = make(stores[0]!);
    const two = make(stores[1]!);
    const a = await one.issue(claims);
    await two.issue(claims);
    clock.t = T0 + ROTATION_DAYS * DAY_MS + 5;
    const issued = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).issue(claims)));
    const kids = new Set(issued.map((r) => r.kid));
    expect(kids.size).toBe(1);
    expect(kids.has(a.kid)).toBe(false);
    expect(await stores[0]!.db.selectFrom('signing_keys').select('kid').execute()).toHaveLength(2);
  });

  it('a period kid taken by a key retired by hand: the next deterministic candidate is used', async () => {
    const { make, store, db, clock } = await setup();
    const t = make(store);
    const a = await t.issue(claims);
    clock.t += 1_000;
    // An operator revokes every key by hand.
    await db.updateTable('signing_keys').set({ retire_at: clock.t, drop_at: clock.t }).execute();
    clock.t += KEY_REFRESH_MS; // the cache is re-read
    const b = await t.issue(claims);
    expect(b.kid).toBe(`${a.kid}.1`);
    expect((await t.jwks()).keys.map((k) => k.kid)).toEqual([b.kid]);
  });

  it('issue does no database read while its cache is fresh; re-reads after the refresh interval', async () => {
    const queries: string[] = [];
    const { make, store, clock } = await setup(1, (q) => queries.push(q));
    const t = make(store);
    await t.issue(claims);
    queries.length = 0;
    for (let i = 0; i < 10; i++) await t.issue(claims);
    clock.t += KEY_REFRESH_MS - 1;
    await Promise.all(Array.from({ length: 10 }, () => t.issue(claims)));
    expect(queries).toEqual([]);
    clock.t += 1;
    await Promise.all(Array.from({ length: 10 }, () => t.issue(claims)));
    expect(queries.filter((q) => /select/i.test(q))).toHaveLength(1); // one read shared by concurrent callers
  });

  it('stores the private key sealed under its kid', async () => {
    const { make, store, db } = await setup();
    const t = make(store);
    const { kid } = await t.issue(claims);
    const row = await db.selectFrom('signing_keys').selectAll().where('kid', '=', kid).executeTakeFirstOrThrow();
    const priv = JSON.parse(dataKeys.open(row.private_sealed, kid)) as JWK;
    expect(typeof priv.d).toBe('string');
    expect(priv.d!.length).toBeGreaterThan(20);
    expect(row.private_sealed).not.toContain(priv.d!);
    expect(Buffer.from(row.private_sealed, 'base64').toString('latin1')).not.toContain(priv.d!);
    expect(row.public_jwk).not.toContain(priv.d!);
    expect(JSON.parse(row.public_jwk).d).toBeUndefined();
    expect(() => dataKeys.open(row.private_sealed, 'another-kid')).toThrow();
    // Another data key cannot open it either; the error names the kid and nothing else.
    const wrong = make(store, { seal: createDataKeys(randomBytes(32)) });
    const e = await refusal(wrong.issue(claims));
    expect(e.message).toContain(kid);
    expect(e.message).not.toContain(priv.d!);
    expect(e.message).not.toContain(row.private_sealed.slice(0, 16));
    expect((e as { cause?: unknown }).cause).toBeUndefined();
  });

  it('an expired token and an edited token fail verification', async () => {
    const { make, store, db, clock } = await setup();
    const t = make(store);
    const issued = await t.issue(claims);
    const jwks = await t.jwks();
    await verify(issued.token, jwks, issued.expiresAt - 1_000);
    const expired = await refusal(verify(issued.token, jwks, issued.expiresAt + 1_000));
    expect(expired).toBeInstanceOf(errors.JWTExpired);

    const [h, p, s] = issued.token.split('.');
    const payload = decodeJwt(issued.token);
    const edited = Buffer.from(JSON.stringify({ ...payload, appid: 'wx00000000000000ff' })).toString('base64url');
    const forged = await refusal(verify(`${h}.${edited}.${s}`, jwks, clock.t));
    expect(forged).toBeInstanceOf(errors.JWSSignatureVerificationFailed);
    // A header naming another algorithm is refused too.
    const none = Buffer.from(JSON.stringify({ ...decodeProtectedHeader(issued.token), alg: 'none' })).toString('base64url');
    await expect(verify(`${none}.${p}.`, jwks, clock.t)).rejects.toThrow();
  });

  it('jwksResponse: JSON, cacheable for 300 s, public keys only', async () => {
    const { make, store } = await setup();
    const t = make(store);
    const { kid } = await t.issue(claims);
    const res = await jwksResponse(t);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(res.body) as { keys: JWK[] };
    expect(body.keys.map((k) => k.kid)).toEqual([kid]);
    expect(res.body).not.toMatch(/"d"/);
  });
});
