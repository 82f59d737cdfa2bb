import type { Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database } from '../store/schema.js';
import type { PhoneInfo } from '../wechat/index.js';
import type { AdmissionRefusal } from './admission.js';
import type { ExchangeFailure } from './errors.js';
import type { ExchangeOutcome, Flow, RequestMeta } from './request.js';
import type { RateLimitCount } from './rate-limit.js';

/**
 * What the exchange needs from other parts of the gateway, as it needs it. The wiring hands in the
 * services that do the work (the consent log, the billing ledger's charge, the rate limiter, the
 * admission gate, metrics, tracing); none of them is imported here.
 */

export interface ExchangeAuditEvent {
  flow: Flow;
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

/**
 * The consent audit, as the exchange needs it. `record` runs inside the settlement
 * transaction when given one; throwing means nothing is disclosed.
 */
export interface ExchangeAudit {
  record(e: ExchangeAuditEvent, trx?: Kysely<Database>): Promise<void>;
  consentWithdrawn(appid: string, subjectHash: string, purpose: string): Promise<boolean>;
}

export interface SettlementContext {
  flow: Flow;
  codeHash: string;
  app: AppConfig;
  subjectHash: string;
  purpose: string;
  meta: RequestMeta;
  now: number;
}

/**
 * The charge that must commit with a claim's settlement, in its transaction (the billing
 * ledger's). A hook that throws rolls the settlement back, so nothing is disclosed that was not
 * recorded. `Ahead` is what `prepare` reads for `disclosed`.
 */
export interface SettlementHooks<Ahead = unknown> {
  /**
   * Called as the WeChat call starts, for reads the settlement will need that do not depend on
   * WeChat's answer: they run while the call is in flight instead of inside the settlement (on
   * PostgreSQL, a round trip fewer there). What it resolves to comes back to `disclosed` as
   * `prepared`; a failure is ignored (the hook then reads for itself). Not in any transaction.
   */
  prepare?(c: { flow: Flow; app: AppConfig }): Promise<Ahead> | undefined;
  disclosed?(trx: Kysely<Database>, c: SettlementContext & { info: PhoneInfo; prepared: Ahead | undefined }): Promise<unknown>;
  refused?(trx: Kysely<Database>, c: SettlementContext & { failure: ExchangeFailure }): Promise<unknown>;
}


/**
 * Per-session and per-address limits on exchanges. `count` counts one request of `subjectKey`
 * (appid and subject hash) from `clientIp`: its verdict (null: go ahead), and `refund`, which takes
 * the request back out of its windows when the gateway itself turns it away at capacity.
 */
export interface ExchangeRateLimit {
  count(subjectKey: string, clientIp: string | null): Promise<RateLimitCount>;
}

/**
 * Runs the exchange once the process has room for it (see AdmissionGate); rejects with
 * AdmissionRefusedError when it has none. `release` gives the room back early, for work that
 * turns out to be only waiting for another attempt at its code.
 */
export interface Admission {
  run<T>(work: (release: () => void) => Promise<T>): Promise<T>;
}

/** Counters of exchanges (Prometheus's in the gateway): labels are codes, never anything personal. */
export interface ExchangeCounters {
  exchanges: { inc(labels: { flow: Flow; outcome: ExchangeOutcome }): void };
  admissionRefused: { inc(labels: { reason: AdmissionRefusal }): void };
}

/** Runs one phase of an exchange as a traced span (plugins/tracing); its errors pass through. */
export type Traced = <T>(name: string, work: () => Promise<T>) => Promise<T>;

/** Without tracing, a phase is only its work. */
export const untraced: Traced = (_name, work) => work();
