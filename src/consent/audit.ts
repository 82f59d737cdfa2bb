import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database } from '../store/schema.js';
import { maskPhone, type DataKeys } from '../crypto/keys.js';
import type { PhoneInfo } from '../wechat/index.js';
import { consentWithdrawn, type ConsentChainStore } from '../store/consent-chain/index.js';
import { appendRecord, lockHead, purgeBefore, verifyChain, type ChainVerification, type ChainWriter, type ConsentGuard } from './chain.js';
import { auditRecordOf, type AuditRecord } from './audit-record.js';
import { DAY_MS } from '../util/time.js';

export interface AuditFilter {
  appid: string;
  subjectHash?: string | null;
  purpose?: string | null;
  from?: number | null;
  to?: number | null;
}

export interface AuditPage {
  records: AuditRecord[];
  hasNextPage: boolean;
}


/** What an exchange (or a legacy decrypt) tells the audit about one request. */
export interface ExchangeAuditEvent {
  flow: 'exchange' | 'legacy';
  appid: string;
  subjectHash: string;
  purpose: string | null;
  noticeVersion?: string | null;
  requestId?: string | null;
  outcome: 'disclosed' | 'replayed' | 'refused';
  errorCode?: string | null;
  /** The disclosed answer: the audit keeps a masked number and a keyed hash of it, never the number. */
  phone?: PhoneInfo | null;
  at: number;
}

/** A subject's erasure: `tombstone` replaces the subject's hash in the app's rows. */
export interface SubjectErasure {
  appid: string;
  subjectHash: string;
  tombstone: string;
  now: number;
}

/** Rows of another domain that name a subject: that domain unlinks them from the person, in the erasure's transaction. */
export interface ErasableRows {
  eraseSubject(s: SubjectErasure, trx: Kysely<Database>): Promise<void>;
}

/** Where the exchange keeps answers to replay: a withdrawal deletes the subject's at once, in its transaction. */
export interface StoredAnswers {
  /** How many there were. */
  deleteAnswers(appid: string, subjectHash: string, now: number, trx: Kysely<Database>): Promise<number>;
}

/** The consent log as one request uses it: who asks and in which request, filled in for every record it makes. */
export interface RequestConsentLog {
  readonly requestId: string;
  /** The session's subject as the log names it (a keyed hash of the openid), computed once, when first needed. */
  readonly subjectHash: string;
  withdraw(appid: string, purposes: readonly string[]): Promise<{ purposes: string[]; answersDeleted: number }>;
  giveConsent(appid: string, purpose: string, noticeVersion?: string | null): Promise<void>;
}

export interface ConsentAuditOptions {
  retentionDays: number;
  now?: () => number;
  /** The chain's statements for this database (src/store/consent-chain). */
  chain: ConsentChainStore;
  answers: StoredAnswers;
  /**
   * Erased in this order, before the chain's head is locked: the stored answers' rows (the claims)
   * first, as an exchange locks them, so one settling meanwhile commits first or comes after.
   */
  erasable: readonly ErasableRows[];
  /**
   * What `record` throws when a disclosure's consent was withdrawn by the time it is recorded
   * (checked under the chain's lock): the caller's own refusal, so it can answer it as such.
   */
  withdrawnError: (purpose: string) => Error;
}

/**
 * The consent audit (PIPL): for every exchange and legacy decrypt, who asked (a keyed hash
 * of the openid), for what purpose, under which notice, in which request, when, and what
 * came of it — with a masked number and a keyed hash of it, never the number. Records are
 * appended to a per-app hash chain in the same transaction as the code's claim and charge.
 */
export class ConsentAudit {
  private readonly chain: ChainWriter;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly keys: DataKeys,
    private readonly apps: ReadonlyMap<string, AppConfig>,
    private readonly opts: ConsentAuditOptions,
  ) {
    this.chain = { keys, store: opts.chain };
  }

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
            withdrawn: () => this.opts.withdrawnError(purpose),
          }
        : undefined;
    if (trx) await appendRecord(trx, this.chain, entry, guard);
    else await this.db.transaction().execute((t) => appendRecord(t, this.chain, entry, guard));
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
      const answersDeleted = await this.opts.answers.deleteAnswers(appid, subjectHash, now, trx);
      await appendRecord(trx, this.chain, {
        appid,
        kind: 'withdrawal',
        subjectHash,
        requestId: meta.requestId ?? null,
        detail: { purposes: [...purposes] },
        at: now,
      });
      return { purposes: [...purposes], answersDeleted };
    });
  }

  async giveConsent(appid: string, subjectHash: string, purpose: string, meta: { noticeVersion?: string | null; requestId?: string | null } = {}) {
    const now = this.now();
    await this.db.transaction().execute(async (trx) => {
      await this.setConsent(trx, appid, subjectHash, purpose, 'given', now);
      await appendRecord(trx, this.chain, { appid, kind: 'consent', purpose, subjectHash, noticeVersion: meta.noticeVersion ?? null, requestId: meta.requestId ?? null, at: now });
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
      const erasure = { appid, subjectHash, tombstone: `erased:${randomUUID()}`, now };
      for (const rows of this.opts.erasable) await rows.eraseSubject(erasure, trx);
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
      await appendRecord(trx, this.chain, { appid, kind: 'erasure', detail: { records: seqs.length, seqs, withdrawalsKept: kept.length }, at: now });
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
      total += await this.db.transaction().execute((trx) => purgeBefore(trx, this.chain, appid, before, now));
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
      const r = await this.opts.chain.inSnapshot(this.db, (trx) => verifyChain(trx, this.keys, a));
      checked += r.checked;
      if (!r.ok) return { ok: false, checked, firstBrokenId: r.firstBrokenId };
    }
    return { ok: true, checked, firstBrokenId: null };
  }

  /** A page of records in chain order, after the record with sequence `afterSeq`. */
  async page(filter: AuditFilter, first: number, afterSeq: number | null): Promise<AuditPage> {
    const rows = await auditPageQuery(this.db, filter, first + 1, afterSeq).execute();
    return { records: rows.slice(0, first).map(auditRecordOf), hasNextPage: rows.length > first };
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

  /** The log bound to one request of one session's subject. */
  forRequest(who: { requestId: string; issuer: string; subject: string }): RequestConsentLog {
    let hash: string | undefined;
    const subjectHash = () => (hash ??= this.subjectHashOf(who.issuer, who.subject));
    const requestId = who.requestId;
    return {
      requestId,
      get subjectHash() {
        return subjectHash();
      },
      withdraw: (appid, purposes) => this.withdraw(appid, subjectHash(), purposes, { requestId }),
      giveConsent: (appid, purpose, noticeVersion = null) => this.giveConsent(appid, subjectHash(), purpose, { noticeVersion, requestId }),
    };
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

/** The export's shape: the record, its detail parsed, times in ISO 8601. */
export function toExport(r: AuditRecord) {
  return {
    id: r.id,
    appid: r.appid,
    seq: r.seq,
    kind: r.kind,
    flow: r.flow,
    purpose: r.purpose,
    noticeVersion: r.noticeVersion,
    requestId: r.requestId,
    outcome: r.outcome,
    errorCode: r.errorCode,
    subjectHash: r.subjectHash,
    maskedPhone: r.maskedPhone,
    phoneHash: r.phoneHash,
    detail: r.detail ? JSON.parse(r.detail) : null,
    at: new Date(r.at).toISOString(),
    erasedAt: r.erasedAt === null ? null : new Date(r.erasedAt).toISOString(),
    prevHash: r.prevHash,
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
