import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { preparedQuery } from '../store/prepared.js';
import type { SubjectErasure } from '../consent/index.js';

/**
 * The claim on a phone code: the row whose insertion decides, across every
 * gateway instance, who may send the code to WeChat. The primary key is a keyed
 * hash of (appid, code); neither the code nor the session's openid is stored.
 */
export type ClaimResult =
  /**
   * This caller holds the lease and must send the code to WeChat, then settle the claim.
   * `earlierAttemptLost`: an earlier attempt ended without an outcome (its instance died, or could
   * not record what WeChat said) and may have used the code at WeChat.
   */
  | { kind: 'owner'; attempt: number; earlierAttemptLost: boolean }
  /** Same session, already exchanged: the sealed answer (null once it has expired). */
  | { kind: 'succeeded'; answerSealed: string | null }
  /** Same session, an earlier attempt failed in a way that retrying cannot change. */
  | { kind: 'failed'; errorCode: string }
  /** Another session holds the code. */
  | { kind: 'other_session' }
  /** Same session, an attempt is running right now (in another request or instance). */
  | { kind: 'in_progress'; leaseUntil: number };

export interface ClaimRequest {
  codeHash: string;
  appid: string;
  subjectHash: string;
  purpose: string;
  now: number;
  leaseMs: number;
}

export interface ClaimSettlement {
  codeHash: string;
  attempt: number;
  now: number;
}

export class ClaimStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Runs `work` in one transaction: a claim's settlement and whatever must commit with it. */
  transaction<T>(work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(work);
  }

  async claim(req: ClaimRequest): Promise<ClaimResult> {
    const inserted = await insertClaim(this.db, {
      codeHash: req.codeHash,
      appid: req.appid,
      subjectHash: req.subjectHash,
      purpose: req.purpose,
      leaseUntil: req.now + req.leaseMs,
      now: req.now,
    });
    if (Number(inserted.numAffectedRows ?? 0) === 1) return { kind: 'owner', attempt: 1, earlierAttemptLost: false };

    // Someone had it first. A lost race on the takeover below re-reads, at most a few times.
    for (let round = 0; round < 5; round++) {
      const row = await this.db
        .selectFrom('code_claims')
        .select(['subject_hash', 'state', 'attempt', 'lease_until', 'error_code', 'error_retryable', 'answer_sealed', 'answer_expires_at', 'earlier_attempt_lost'])
        .where('code_hash', '=', req.codeHash)
        .executeTakeFirst();
      // Rows are deleted only long after their code expired (purgeOldClaims): a missing row here is a bug.
      if (!row) throw new Error('claim row vanished during a claim');
      if (row.subject_hash !== req.subjectHash) return { kind: 'other_session' };
      if (row.state === 'succeeded') {
        const live = row.answer_expires_at !== null && row.answer_expires_at > req.now;
        return { kind: 'succeeded', answerSealed: live ? row.answer_sealed : null };
      }
      if (row.state === 'failed' && !row.error_retryable) return { kind: 'failed', errorCode: row.error_code ?? 'UPSTREAM_UNAVAILABLE' };
      if (row.state === 'pending' && row.lease_until > req.now) return { kind: 'in_progress', leaseUntil: row.lease_until };

      // A retryable failure, or a pending attempt whose owner died (lease expired): take it over,
      // but only from exactly the state we read: a slow owner may have settled it since.
      const next = row.attempt + 1;
      const earlierAttemptLost = row.state === 'pending' || row.earlier_attempt_lost === 1;
      const taken = await this.db
        .updateTable('code_claims')
        .set({ state: 'pending', attempt: next, lease_until: req.now + req.leaseMs, error_code: null, error_retryable: 0, earlier_attempt_lost: earlierAttemptLost ? 1 : 0, updated_at: req.now })
        .where('code_hash', '=', req.codeHash)
        .where('attempt', '=', row.attempt)
        .where('state', '=', row.state)
        .where('lease_until', '=', row.lease_until)
        .executeTakeFirst();
      if (Number(taken.numUpdatedRows) === 1) return { kind: 'owner', attempt: next, earlierAttemptLost };
    }
    return { kind: 'in_progress', leaseUntil: req.now };
  }

  /** Records the answer; false when this attempt no longer owns the claim. */
  async succeed(s: ClaimSettlement & { answerSealed: string; answerExpiresAt: number }, db: Kysely<Database> = this.db): Promise<boolean> {
    const r = await succeedClaim(db, { codeHash: s.codeHash, attempt: s.attempt, answerSealed: s.answerSealed, answerExpiresAt: s.answerExpiresAt, now: s.now });
    return Number(r.numAffectedRows) === 1;
  }

  /**
   * Records a failed attempt. `codeMayBeRetried` says whether the same session may send
   * the code again (WeChat did not consume it, or we cannot know); final failures are
   * answered from the row from then on.
   */
  async fail(s: ClaimSettlement & { errorCode: string; codeMayBeRetried: boolean }, db: Kysely<Database> = this.db): Promise<boolean> {
    const r = await db
      .updateTable('code_claims')
      .set({ state: 'failed', error_code: s.errorCode, error_retryable: s.codeMayBeRetried ? 1 : 0, lease_until: s.now, updated_at: s.now })
      .where('code_hash', '=', s.codeHash)
      .where('attempt', '=', s.attempt)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Consent withdrawn: the subject's stored answers in the app go at once; how many there were. */
  async deleteAnswers(appid: string, subjectHash: string, now: number, db: Kysely<Database> = this.db): Promise<number> {
    const r = await db
      .updateTable('code_claims')
      .set({ answer_sealed: null, answer_expires_at: now, updated_at: now })
      .where('appid', '=', appid)
      .where('subject_hash', '=', subjectHash)
      .where('answer_sealed', 'is not', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** Subject erased: the claims keep their rows (a used code stays used) but lose the link to the person. */
  async eraseSubject(s: SubjectErasure, db: Kysely<Database> = this.db): Promise<void> {
    await db
      .updateTable('code_claims')
      .set({ subject_hash: s.tombstone, answer_sealed: null, updated_at: s.now })
      .where('appid', '=', s.appid)
      .where('subject_hash', '=', s.subjectHash)
      .execute();
  }

  /** The claim as a waiting duplicate sees it. */
  async peek(codeHash: string) {
    return this.db
      .selectFrom('code_claims')
      .select(['state', 'attempt', 'lease_until', 'error_code', 'error_retryable', 'answer_sealed', 'answer_expires_at'])
      .where('code_hash', '=', codeHash)
      .executeTakeFirst();
  }

  /**
   * Deletes claims created before `before`. A code is worthless after its 5 minutes,
   * so a claim older than a day protects nothing; keeping it would only grow the table.
   * In batches, each its own statement with the event loop free in between: a backlog (an
   * instance back after a day down, or a day of heavy traffic) would otherwise be one delete
   * holding SQLite's only connection, and every exchange with it, for seconds.
   */
  async purgeOldClaims(before: number, batch = PURGE_BATCH): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await oldClaimsBatch(this.db, before, batch).executeTakeFirst();
      const n = Number(r.numDeletedRows);
      total += n;
      if (n < batch) return total;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Drops stored answers past their replay window; the claim rows themselves stay. */
  async purgeExpiredAnswers(now: number): Promise<number> {
    const r = await expiredAnswers(this.db, now).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }
}

const PURGE_BATCH = 100;

/**
 * The oldest `limit` or so of the claims created before `before` (all created at the limit's
 * instant go too): a range of code_claims_created bounded by the creation time `limit` rows in,
 * so the delete walks that index only, whatever plan a join would get.
 */
export function oldClaimsBatch(db: Kysely<Database>, before: number, limit: number) {
  const cutoff = db.selectFrom('code_claims').select('created_at').where('created_at', '<', before).orderBy('created_at').limit(1).offset(limit - 1);
  return db
    .deleteFrom('code_claims')
    .where('created_at', '<', before)
    .where('created_at', '<=', (eb) => eb.fn.coalesce(cutoff, eb.val(before)));
}

/** Answers still held past their expiry, through the partial index of held answers (code_claims_held_answers). */
export function expiredAnswers(db: Kysely<Database>, now: number) {
  return db.updateTable('code_claims').set({ answer_sealed: null, updated_at: now }).where('answer_expires_at', '<=', now).where('answer_sealed', 'is not', null);
}

// The two statements every exchange makes here, prepared once (see preparedQuery).
const insertClaim = preparedQuery((db, v: { codeHash: string; appid: string; subjectHash: string; purpose: string; leaseUntil: number; now: number }) =>
  db
    .insertInto('code_claims')
    .values({
      code_hash: v.codeHash,
      appid: v.appid,
      subject_hash: v.subjectHash,
      purpose: v.purpose,
      state: 'pending',
      attempt: 1,
      lease_until: v.leaseUntil,
      error_code: null,
      error_retryable: 0,
      earlier_attempt_lost: 0,
      answer_sealed: null,
      answer_expires_at: null,
      created_at: v.now,
      updated_at: v.now,
    })
    .onConflict((oc) => oc.column('code_hash').doNothing()),
);

const succeedClaim = preparedQuery((db, v: { codeHash: string; attempt: number; answerSealed: string; answerExpiresAt: number; now: number }) =>
  db
    .updateTable('code_claims')
    .set({ state: 'succeeded', answer_sealed: v.answerSealed, answer_expires_at: v.answerExpiresAt, updated_at: v.now })
    .where('code_hash', '=', v.codeHash)
    .where('attempt', '=', v.attempt)
    .where('state', '=', 'pending'),
);
