import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import type { Store } from '../../src/store/db.js';
import { explainPlan, openIsolatedStore, type Explainable } from '../support/stores.js';
import { ClaimStore, expiredAnswers, oldClaimsBatch } from '../../src/phone/claims.js';
import type { CodeClaimsTable } from '../../src/store/schema.js';

const NOW = Date.parse('2026-06-01T04:00:00Z');
const MINUTE = 60_000;
const DAY = 1440 * MINUTE;
// Two days of claims, one a minute, most with their answer long purged, as a busy table has them.
const HISTORY = 2 * 1440;
const OLD = HISTORY - 1440; // created more than a day before NOW

describe.each(BACKENDS)('the purges of claims and stored answers on $name', (backend) => {
  let store: Store;
  let claims: ClaimStore;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-purge-'));
    // Purging old claims deletes every app's, and the plans need known counts.
    store = await openIsolatedStore(backend, dir, 'purge');
    claims = new ClaimStore(store.db);
    const row = (i: number, extra: Partial<CodeClaimsTable> = {}): CodeClaimsTable => ({
      code_hash: `c${String(i).padStart(5, '0')}_${randomBytes(6).toString('base64url')}`,
      appid: 'wxa1b2c3d4e5f60001',
      subject_hash: randomBytes(8).toString('base64url'),
      purpose: 'login',
      state: 'succeeded',
      attempt: 1,
      lease_until: NOW - i * MINUTE,
      error_code: null,
      error_retryable: 0,
      earlier_attempt_lost: 0,
      // Purged long ago: the expiry stays, the answer is gone.
      answer_sealed: null,
      answer_expires_at: NOW - i * MINUTE + 10 * MINUTE,
      created_at: NOW - i * MINUTE + 1,
      updated_at: NOW - i * MINUTE,
      ...extra,
    });
    const rows = Array.from({ length: HISTORY }, (_, i) => row(i + 1));
    // The last few minutes: answers still held, three of them past their expiry.
    for (const i of [1, 2, 3, 12, 13, 14]) rows[i - 1] = row(i, { answer_sealed: `sealed-${i}`, answer_expires_at: NOW - i * MINUTE + 10 * MINUTE });
    for (let i = 0; i < rows.length; i += 500) await store.db.insertInto('code_claims').values(rows.slice(i, i + 500)).execute();
    if (store.dialect === 'postgres') await sql`analyze code_claims`.execute(store.db);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The access paths a statement's plan takes to code_claims: 'scan' for a walk of the table. */
  async function pathsTo(query: Explainable) {
    const plan = await explainPlan(store, query);
    if (store.dialect === 'sqlite') return plan.text.split(' | ').filter((d) => /code_claims/.test(d)).map((d) => (/^SCAN code_claims$/.test(d) ? 'scan' : d));
    return plan.nodes
      .filter((n) => n['Relation Name'] === 'code_claims' && n['Node Type'] !== 'ModifyTable')
      .map((n) => (n['Node Type'] === 'Seq Scan' ? 'scan' : `${n['Node Type']} ${n['Index Name'] ?? ''}`));
  }

  it('finds expired answers through the index of held answers, not by walking every claim', async () => {
    const paths = await pathsTo(expiredAnswers(store.db, NOW));
    expect(paths.length).toBeGreaterThan(0);
    expect(paths).not.toContain('scan');
    expect(paths.join(' ')).toContain('code_claims_held_answers');
  });

  it('finds old claims through the index on their creation time, not by walking every claim', async () => {
    const paths = await pathsTo(oldClaimsBatch(store.db, NOW - DAY, 100));
    expect(paths.length).toBeGreaterThan(0);
    expect(paths).not.toContain('scan');
    expect(paths.join(' ')).toContain('code_claims_created');
  });

  it('drops exactly the answers past their expiry and keeps the claims', async () => {
    expect(await claims.purgeExpiredAnswers(NOW)).toBe(3);
    const held = await store.db.selectFrom('code_claims').select('answer_sealed').where('answer_sealed', 'is not', null).orderBy('answer_sealed').execute();
    expect(held.map((r) => r.answer_sealed)).toEqual(['sealed-1', 'sealed-2', 'sealed-3']);
    expect(Number((await store.db.selectFrom('code_claims').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)).toBe(HISTORY);
  });

  it('deletes every claim older than a day, in batches, and none newer', async () => {
    // One batch: the oldest 100, whose creation times are distinct here.
    expect(Number((await oldClaimsBatch(store.db, NOW - DAY, 100).executeTakeFirst()).numDeletedRows)).toBe(100);
    const oldest = await store.db.selectFrom('code_claims').select((eb) => eb.fn.min('created_at').as('t')).executeTakeFirstOrThrow();
    expect(Number(oldest.t)).toBe(NOW - (HISTORY - 100) * MINUTE + 1);
    expect(await claims.purgeOldClaims(NOW - DAY, 100)).toBe(OLD - 100);
    const left = await store.db.selectFrom('code_claims').select([(eb) => eb.fn.countAll().as('n'), (eb) => eb.fn.min('created_at').as('oldest')]).executeTakeFirstOrThrow();
    expect(Number(left.n)).toBe(HISTORY - OLD);
    expect(Number(left.oldest)).toBeGreaterThanOrEqual(NOW - DAY);
    expect(await claims.purgeOldClaims(NOW - DAY, 100)).toBe(0);
  });
});
