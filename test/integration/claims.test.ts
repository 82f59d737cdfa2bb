import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { ClaimStore } from '../../src/phone/claims.js';
import { createDataKeys } from '../../src/crypto/keys.js';

const keys = createDataKeys(randomBytes(32));
const uniq = () => randomBytes(12).toString('base64url');

describe.each(BACKENDS)('ClaimStore on $name', (backend) => {
  let store: Store;
  let claims: ClaimStore;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-claims-'));
    store = await openStore(backend.databaseUrl ?? `file:${join(dir, 'c.db')}`);
    claims = new ClaimStore(store.db);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const req = (codeHash: string, subjectHash: string, now = 1_000, leaseMs = 10_000) => ({
    codeHash,
    appid: 'wxa1b2c3d4e5f60001',
    subjectHash,
    purpose: 'login',
    now,
    leaseMs,
  });

  it('one owner among 40 concurrent claims of one code; the rest see in_progress or other_session', async () => {
    const code = uniq();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => claims.claim(req(code, i % 2 ? 'alice' : 'bob'))));
    const owners = results.filter((r) => r.kind === 'owner');
    expect(owners).toHaveLength(1);
    for (const r of results) expect(['owner', 'in_progress', 'other_session']).toContain(r.kind);
  });

  it('stores only a keyed hash of the code and a sealed answer: the number is not in the row', async () => {
    const code = 'a'.repeat(64);
    const codeHash = keys.codeHash('wxa1b2c3d4e5f60001', code);
    const owner = await claims.claim(req(codeHash, 'alice'));
    expect(owner.kind).toBe('owner');
    const answer = JSON.stringify({ phoneNumber: '13912345678' });
    await claims.succeed({ codeHash, attempt: 1, now: 2_000, answerSealed: keys.seal(answer, codeHash), answerExpiresAt: 600_000 });
    const row = await store.db.selectFrom('code_claims').selectAll().where('code_hash', '=', codeHash).executeTakeFirstOrThrow();
    const text = JSON.stringify(row);
    expect(text).not.toContain('13912345678');
    expect(text).not.toContain(code);
    const replay = await claims.claim(req(codeHash, 'alice', 3_000));
    expect(replay.kind).toBe('succeeded');
    expect(keys.open((replay as { answerSealed: string }).answerSealed, codeHash)).toBe(answer);
    // A sealed answer moved to another row does not open.
    expect(() => keys.open((replay as { answerSealed: string }).answerSealed, 'another-row')).toThrow();
  });

  it('replay answers expire and are purged; the claim itself stays', async () => {
    const codeHash = uniq();
    await claims.claim(req(codeHash, 'alice'));
    await claims.succeed({ codeHash, attempt: 1, now: 2_000, answerSealed: 'sealed', answerExpiresAt: 5_000 });
    expect(await claims.claim(req(codeHash, 'alice', 4_000))).toEqual({ kind: 'succeeded', answerSealed: 'sealed' });
    expect(await claims.claim(req(codeHash, 'alice', 6_000))).toEqual({ kind: 'succeeded', answerSealed: null });
    expect(await claims.purgeExpiredAnswers(6_000)).toBeGreaterThanOrEqual(1);
    const row = await claims.peek(codeHash);
    expect(row?.answer_sealed).toBeNull();
    expect(row?.state).toBe('succeeded');
    expect((await claims.claim(req(codeHash, 'bob', 6_000))).kind).toBe('other_session');
  });

  it("a crashed owner's lease expires and the same session takes over; the stale owner cannot settle", async () => {
    const codeHash = uniq();
    expect(await claims.claim(req(codeHash, 'alice', 1_000, 1_000))).toEqual({ kind: 'owner', attempt: 1, earlierAttemptLost: false });
    expect((await claims.claim(req(codeHash, 'alice', 1_500, 1_000))).kind).toBe('in_progress');
    // The first attempt may have reached WeChat: the new owner is told so.
    expect(await claims.claim(req(codeHash, 'alice', 2_500, 1_000))).toEqual({ kind: 'owner', attempt: 2, earlierAttemptLost: true });
    // The first owner wakes up late: its write is refused.
    expect(await claims.succeed({ codeHash, attempt: 1, now: 2_600, answerSealed: 'late', answerExpiresAt: 99_000 })).toBe(false);
    expect(await claims.succeed({ codeHash, attempt: 2, now: 2_600, answerSealed: 'ok', answerExpiresAt: 99_000 })).toBe(true);
    expect(await claims.claim(req(codeHash, 'alice', 2_700))).toEqual({ kind: 'succeeded', answerSealed: 'ok' });
  });

  it('a takeover loses to an owner that settles between the read and the update (no second send)', async () => {
    const codeHash = uniq();
    expect((await claims.claim(req(codeHash, 'alice', 0, 100))).kind).toBe('owner');
    // A second connection whose first read with rows lets the slow owner settle before the takeover runs.
    let hook: (() => Promise<void>) | null = async () => {
      expect(await claims.succeed({ codeHash, attempt: 1, now: 150, answerSealed: 'sealed', answerExpiresAt: 100_000 })).toBe(true);
    };
    const second = await openStore(backend.databaseUrl ?? `file:${join(dir, 'c.db')}`);
    try {
      const racing = new ClaimStore(
        second.db.withPlugin({
          transformQuery: (a) => a.node,
          async transformResult(a) {
            if (hook && a.result.rows.length) {
              const h = hook;
              hook = null;
              await h();
            }
            return a.result;
          },
        }),
      );
      const r = await racing.claim(req(codeHash, 'alice', 200, 100));
      expect(r).toEqual({ kind: 'succeeded', answerSealed: 'sealed' });
      expect((await claims.peek(codeHash))?.state).toBe('succeeded');
    } finally {
      await second.close();
    }
  });

  it('a final failure is answered from the row; a retryable one lets the same session try again', async () => {
    const final = uniq();
    await claims.claim(req(final, 'alice'));
    await claims.fail({ codeHash: final, attempt: 1, now: 1_100, errorCode: 'INVALID_CODE', codeMayBeRetried: false });
    expect(await claims.claim(req(final, 'alice', 1_200))).toEqual({ kind: 'failed', errorCode: 'INVALID_CODE' });

    const transient = uniq();
    await claims.claim(req(transient, 'alice'));
    await claims.fail({ codeHash: transient, attempt: 1, now: 1_100, errorCode: 'RATE_LIMITED', codeMayBeRetried: true });
    // That failure proved the code unspent: nothing was lost.
    expect(await claims.claim(req(transient, 'alice', 1_200))).toEqual({ kind: 'owner', attempt: 2, earlierAttemptLost: false });
    expect((await claims.claim(req(transient, 'bob', 1_300))).kind).toBe('other_session');
  });

  it('a lost attempt is remembered through later takeovers: lost, then a failure that proves nothing of the first, then another owner', async () => {
    const codeHash = uniq();
    await claims.claim(req(codeHash, 'alice', 1_000, 1_000));
    // Its owner died; the next takes over after the lease and gets a retryable answer (45011, say).
    expect(await claims.claim(req(codeHash, 'alice', 2_500, 1_000))).toEqual({ kind: 'owner', attempt: 2, earlierAttemptLost: true });
    await claims.fail({ codeHash, attempt: 2, now: 2_600, errorCode: 'RATE_LIMITED', codeMayBeRetried: true });
    // The third owner's 40029 could still be the first attempt's doing.
    expect(await claims.claim(req(codeHash, 'alice', 2_700))).toEqual({ kind: 'owner', attempt: 3, earlierAttemptLost: true });
  });

  it('old claims are purged; recent ones stay', async () => {
    const old = uniq();
    const recent = uniq();
    await claims.claim(req(old, 'alice', 10));
    await claims.claim(req(recent, 'alice', 10_000_000));
    expect(await claims.purgeOldClaims(5_000_000)).toBeGreaterThanOrEqual(1);
    expect(await claims.peek(old)).toBeUndefined();
    expect(await claims.peek(recent)).toBeDefined();
  });
});
