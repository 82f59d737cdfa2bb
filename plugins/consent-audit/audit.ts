import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AppConfig } from '../../src/config.js';
import type { AuditRecordsTable, Database } from '../../src/store/schema.js';
import { maskPhone, type DataKeys } from '../../src/crypto/keys.js';
import type { ExchangeAudit, ExchangeAuditEvent } from '../../src/phone/ports.js';
import { ConsentWithdrawnError } from '../../src/phone/errors.js';
import { appendRecord, consentWithdrawn, lockHead, purgeBefore, verifyChain, type ChainVerification, type ConsentGuard } from './chain.js';

export interface AuditFilter {
  appid: string;
  subjectHash?: string | null;
  purpose?: string | null;
  from?: number | null;
  to?: number | null;
}

export interface AuditPage {
  records: AuditRecordsTable[];
  hasNextPage: boolean;
}

const DAY_MS = 86_400_000;

/**
 * The consent audit (PIPL): for every exchange and legacy decrypt, who asked (a keyed hash
 * of the openid), for what purpose, under which notice, in which request, when, and what
 * came of it — with a masked number and a keyed hash of it, never the number. Records are
 * appended to a per-app hash chain in the same transaction as the code's claim and charge.
 */
export class ConsentAudit implements ExchangeAudit {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly keys: DataKeys,
    private readonly apps: ReadonlyMap<string, AppConfig>,
    private readonly opts: { retentionDays: number; now?: () => number; dialect?: 'sqlite' | 'postgres' },
  ) {}

  private now() {
    return (this.opts.now ?? Date.now)();
  }

  async record(e: ExchangeAuditEvent, trx?: Kysely<Database>): Promise<void> {
    const phone = e.phone?.purePhoneNumber ?? null;
    const entry = {
      appid: e.appid,
      kind: 'exchange' as const,
      flow: e.flow,
      purpose: e.purpose,
      noticeVersion: e.noticeVersion ?? null,
      requestId: e.requestId ?? null,
      outcome: e.outcome,
      errorCode: e.errorCode ?? null,
      subjectHash: e.subjectHash,
      maskedPhone: phone ? maskPhone(phone) : null,
      phoneHash: phone ? this.keys.phoneHash(phone, 'audit') : null,
      at: e.at,
    };
    // A disclosure is recorded only if consent still stands under the chain's lock: a withdrawal
    // that committed while the exchange was at WeChat wins, and the number is withheld.
    const purpose = e.purpose;
    const guard: ConsentGuard | undefined =
      (e.outcome === 'disclosed' || e.outcome === 'replayed') && purpose
        ? {
            subjectHash: e.subjectHash,
            purpose,
            withdrawn: () => new ConsentWithdrawnError(`consent for "${purpose}" was withdrawn; it must be given again before the number can be requested`),
          }
        : undefined;
    if (trx) await appendRecord(trx, this.keys, entry, guard);
    else await this.db.transaction().execute((t) => appendRecord(t, this.keys, entry, guard));
  }

  consentWithdrawn(appid: string, subjectHash: string, purpose: string): Promise<boolean> {
    return consentWithdrawn(this.db, { appid, subjectHash, purpose });
  }

  /**
   * The subject withdraws consent for the app's purposes (all of them by default): stored
   * replay answers go at once, later exchanges for those purposes are refused until consent
   * is given again, and the withdrawal is itself a record in the chain.
   */
  async withdraw(appid: string, subjectHash: string, purposes: readonly string[], meta: { requestId?: string | null } = {}) {
    const now = this.now();
    return this.db.transaction().execute(async (trx) => {
      for (const purpose of purposes) await this.setConsent(trx, appid, subjectHash, purpose, 'withdrawn', now);
      const cleared = await trx
        .updateTable('code_claims')
        .set({ answer_sealed: null, answer_expires_at: now, updated_at: now })
        .where('appid', '=', appid)
        .where('subject_hash', '=', subjectHash)
        .where('answer_sealed', 'is not', null)
        .executeTakeFirst();
      await appendRecord(trx, this.keys, {
        appid,
        kind: 'withdrawal',
        subjectHash,
        requestId: meta.requestId ?? null,
        detail: { purposes: [...purposes] },
        at: now,
      });
      return { purposes: [...purposes], answersDeleted: Number(cleared.numUpdatedRows) };
    });
  }

  async giveConsent(appid: string, subjectHash: string, purpose: string, meta: { noticeVersion?: string | null; requestId?: string | null } = {}) {
    const now = this.now();
    await this.db.transaction().execute(async (trx) => {
      await this.setConsent(trx, appid, subjectHash, purpose, 'given', now);
      await appendRecord(trx, this.keys, { appid, kind: 'consent', purpose, subjectHash, noticeVersion: meta.noticeVersion ?? null, requestId: meta.requestId ?? null, at: now });
    });
  }

  /**
   * Erases a subject's personal data from the app's records (hashes, masked numbers and request
   * ids set to NULL, digest salts dropped), from stored answers and client reports; the chain
   * still verifies (it carries digests), and the erasure itself is recorded, naming the records
   * it emptied but not whom. A withdrawal survives erasure: exchanges stay refused.
   * Locks are taken in the exchange's order (claim rows, then the chain's head), so an exchange
   * settling meanwhile either commits first and is erased too, or comes after.
   */
  async erase(appid: string, subjectHash: string): Promise<{ records: number }> {
    const now = this.now();
    return this.db.transaction().execute(async (trx) => {
      // Claims keep their row (a used code stays used) but lose the link to the person.
      const tombstone = `erased:${randomUUID()}`;
      await trx
        .updateTable('code_claims')
        .set({ subject_hash: tombstone, answer_sealed: null, updated_at: now })
        .where('appid', '=', appid)
        .where('subject_hash', '=', subjectHash)
        .execute();
      await trx.updateTable('client_reports').set({ subject_hash: tombstone }).where('appid', '=', appid).where('subject_hash', '=', subjectHash).execute();
      await trx.deleteFrom('consents').where('appid', '=', appid).where('subject_hash', '=', subjectHash).where('state', '=', 'given').execute();
      const kept = await trx.selectFrom('consents').select('purpose').where('appid', '=', appid).where('subject_hash', '=', subjectHash).execute();
      await lockHead(trx, this.keys, appid);
      const targets = await subjectRecordSeqs(trx, appid, subjectHash).execute();
      const seqs = targets.map((t) => Number(t.seq));
      if (seqs.length) {
        await trx
          .updateTable('audit_records')
          .set({ subject_hash: null, masked_phone: null, phone_hash: null, request_id: null, digest_salt: null, erased_at: now })
          .where('appid', '=', appid)
          .where('seq', 'in', seqs)
          .execute();
      }
      await appendRecord(trx, this.keys, { appid, kind: 'erasure', detail: { records: seqs.length, seqs, withdrawalsKept: kept.length }, at: now });
      return { records: seqs.length };
    });
  }

  /** Retention: purges records older than the configured days from every app's chain, leaving checkpoints. */
  async purgeExpired(): Promise<number> {
    const now = this.now();
    const before = now - this.opts.retentionDays * DAY_MS;
    let total = 0;
    const heads = await this.db.selectFrom('audit_heads').select('appid').execute();
    for (const { appid } of heads) {
      total += await this.db.transaction().execute((trx) => purgeBefore(trx, this.keys, appid, before, now));
    }
    return total;
  }

  async verify(appid?: string | null): Promise<ChainVerification> {
    // Every app that has a head or a record, so deleting a head cannot hide a chain.
    const appids = appid
      ? [appid]
      : [
          ...new Set([
            ...(await this.db.selectFrom('audit_heads').select('appid').execute()).map((h) => h.appid),
            ...(await this.db.selectFrom('audit_records').select('appid').distinct().execute()).map((r) => r.appid),
          ]),
        ].sort();
    let checked = 0;
    for (const a of appids) {
      // One snapshot per chain: appends and purges running meanwhile cannot look like breaks.
      const tx = this.db.transaction();
      const r = await (this.opts.dialect === 'postgres' ? tx.setIsolationLevel('repeatable read') : tx).execute((trx) => verifyChain(trx, this.keys, a));
      checked += r.checked;
      if (!r.ok) return { ok: false, checked, firstBrokenId: r.firstBrokenId };
    }
    return { ok: true, checked, firstBrokenId: null };
  }

  /** A page of records in chain order, after the record with sequence `afterSeq`. */
  async page(filter: AuditFilter, first: number, afterSeq: number | null): Promise<AuditPage> {
    const rows = await auditPageQuery(this.db, filter, first + 1, afterSeq).execute();
    return { records: rows.slice(0, first).map((r) => ({ ...r, seq: Number(r.seq) })), hasNextPage: rows.length > first };
  }

  /** Every matching record as NDJSON lines, read page by page (constant memory). */
  async *exportNdjson(filter: AuditFilter): AsyncGenerator<string> {
    let after: number | null = null;
    for (;;) {
      const { records, hasNextPage } = await this.page(filter, 500, after);
      for (const r of records) yield `${JSON.stringify(toExport(r))}\n`;
      if (!hasNextPage || records.length === 0) return;
      after = records[records.length - 1]!.seq;
    }
  }

  subjectHashOf(issuer: string, openid: string): string {
    return this.keys.subjectHash(issuer, openid);
  }

  knownApp(appid: string): boolean {
    return this.apps.has(appid);
  }

  private async setConsent(trx: Kysely<Database>, appid: string, subjectHash: string, purpose: string, state: 'withdrawn' | 'given', now: number) {
    await trx
      .insertInto('consents')
      .values({ appid, subject_hash: subjectHash, purpose, state, updated_at: now })
      .onConflict((oc) => oc.columns(['appid', 'subject_hash', 'purpose']).doUpdateSet({ state, updated_at: now }))
      .execute();
  }
}

/** The export's shape: the record as stored, names in camelCase, times in ISO 8601. */
export function toExport(r: AuditRecordsTable) {
  return {
    id: r.id,
    appid: r.appid,
    seq: Number(r.seq),
    kind: r.kind,
    flow: r.flow,
    purpose: r.purpose,
    noticeVersion: r.notice_version,
    requestId: r.request_id,
    outcome: r.outcome,
    errorCode: r.error_code,
    subjectHash: r.subject_hash,
    maskedPhone: r.masked_phone,
    phoneHash: r.phone_hash,
    detail: r.detail ? JSON.parse(r.detail) : null,
    at: new Date(r.at).toISOString(),
    erasedAt: r.erased_at === null ? null : new Date(r.erased_at).toISOString(),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** A page of an app's records in chain order; by subject through audit_records_subject_seq (no sort, no walk of the chain). */
export function auditPageQuery(db: Kysely<Database>, filter: AuditFilter, limit: number, afterSeq: number | null) {
  let q = db.selectFrom('audit_records').selectAll().where('appid', '=', filter.appid);
  if (filter.subjectHash) q = q.where('subject_hash', '=', filter.subjectHash);
  if (filter.purpose) q = q.where('purpose', '=', filter.purpose);
  if (filter.from != null) q = q.where('at', '>=', filter.from);
  if (filter.to != null) q = q.where('at', '<', filter.to);
  if (afterSeq !== null) q = q.where('seq', '>', afterSeq);
  return q.orderBy('seq').limit(limit);
}

/** The seqs of a subject's records in an app's chain, in order (erasure empties them). */
export function subjectRecordSeqs(db: Kysely<Database>, appid: string, subjectHash: string) {
  return db.selectFrom('audit_records').select('seq').where('appid', '=', appid).where('subject_hash', '=', subjectHash).orderBy('seq');
}
