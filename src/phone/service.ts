import type { Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database } from '../store/schema.js';
import type { Session } from '../../plugins/jwt-session/verify.js';
import type { AccessTokenProvider } from '../../plugins/access-token/provider.js';
import type { DataKeys } from '../crypto/keys.js';
import type { PhoneInfo, WechatClient } from '../wechat/index.js';
import { decryptPhoneData, unwrapBase64 } from '../wechat/index.js';
import { withTimeout } from '../util/timeout.js';
import type { ClaimStore } from './claims.js';
import { classify } from './classify.js';
import {
  Base64MangledError,
  CodeAlreadyUsedError,
  ConsentWithdrawnError,
  ExchangeFailure,
  InProgressError,
  InvalidCodeError,
  InvalidInputError,
  OutcomeUnknownError,
  STORED_FAILURE_MESSAGES,
  ServiceUnavailableError,
  WatermarkMismatchError,
  sameFailure,
  storedFailure,
} from './errors.js';
import { AdmissionRefusedError } from './admission.js';
import { checkCode, checkPurpose, resolveApp } from './input.js';
import { atCapacity, overRateLimit } from './load-refusals.js';
import type { Admission, ExchangeCounters, ExchangeRateLimit } from './ports.js';
import { afterAnswer, beforeSending, ignoreStorageOutage, replayKept } from './storage-outage.js';

export interface VerifiedPhone extends PhoneInfo {
  /** True when this answer was stored by an earlier request of the same session: WeChat was not called again. */
  replayed: boolean;
}

export interface ExchangeInput {
  code: string;
  purpose: string;
  appid?: string | null | undefined;
}

export interface LegacyDecryptInput {
  loginCode: string;
  encryptedData: string;
  iv: string;
  purpose: string;
  appid?: string | null | undefined;
}

export type ExchangeOutcome = 'disclosed' | 'replayed' | ExchangeFailure['code'];

/** Who asked, where: carried into the consent record. */
export interface RequestMeta {
  requestId?: string | null;
  noticeVersion?: string | null;
  /** The client's address (the socket peer, or X-Forwarded-For from trusted proxies): for rate limits only, never recorded. */
  clientIp?: string | null;
}

/** What an exchange's input checks give (see PhoneService.report). */
interface PreparedExchange {
  purpose: string;
  /** Input checks whose errors rank below a withdrawn consent. */
  afterConsent?: () => void;
  /** The exchange itself; `release` gives its admission slot back (see PhoneServiceOptions.admission). */
  run: (release: () => void) => Promise<VerifiedPhone>;
}

/** Runs one phase of an exchange as a traced span (plugins/tracing); its errors pass through. */
export type Traced = <T>(name: string, work: () => Promise<T>) => Promise<T>;

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

/**
 * The consent audit, as the exchange needs it. `record` runs inside the settlement
 * transaction when given one; throwing means nothing is disclosed.
 */
export interface ExchangeAudit {
  record(e: ExchangeAuditEvent, trx?: Kysely<Database>): Promise<void>;
  consentWithdrawn(appid: string, subjectHash: string, purpose: string): Promise<boolean>;
}

export interface SettlementContext {
  flow: 'exchange' | 'legacy';
  codeHash: string;
  app: AppConfig;
  subjectHash: string;
  purpose: string;
  meta: RequestMeta;
  now: number;
}

/**
 * Work that must commit with a claim's settlement, in its transaction: the charge
 * (billing ledger), the consent record. A hook that throws rolls the settlement back,
 * so nothing is disclosed that was not recorded.
 */
export interface SettlementHooks {
  /**
   * Called as the WeChat call starts, for reads the settlement will need that do not depend on
   * WeChat's answer: they run while the call is in flight instead of inside the settlement (on
   * PostgreSQL, a round trip fewer there). What it resolves to comes back to `disclosed` as
   * `prepared`; a failure is ignored (the hook then reads for itself). Not in any transaction.
   */
  prepare?(c: { flow: SettlementContext['flow']; app: AppConfig }): Promise<unknown> | undefined;
  disclosed?(trx: Kysely<Database>, c: SettlementContext & { info: PhoneInfo; prepared: unknown }): Promise<unknown>;
  refused?(trx: Kysely<Database>, c: SettlementContext & { failure: ExchangeFailure }): Promise<unknown>;
}

export interface PhoneServiceOptions {
  apps: ReadonlyMap<string, AppConfig>;
  claims: ClaimStore;
  keys: DataKeys;
  tokens: AccessTokenProvider;
  wechat: WechatClient;
  /** How long a stored answer may be replayed to the same session. */
  replayTtlMs: number;
  /** How long one attempt owns a claim; must exceed attemptDeadlineMs plus the time to record the outcome. */
  leaseMs: number;
  /** An attempt still running after this is abandoned and recorded as OUTCOME_UNKNOWN, inside its lease. */
  attemptDeadlineMs: number;
  /** How long a duplicate waits for a running attempt before answering IN_PROGRESS. */
  duplicateWaitMs?: number;
  now?: () => number;
  counters?: ExchangeCounters;
  hooks?: readonly SettlementHooks[];
  audit?: ExchangeAudit;
  /**
   * Counted once the app is known: a request over its limit is refused as RATE_LIMITED and
   * recorded like any other refusal; nothing reaches WeChat and nothing is charged.
   */
  rateLimit?: ExchangeRateLimit;
  /** Room for the exchange in this process, after the rate limit and the input and consent checks, before the code is claimed. */
  admission?: Admission;
  /** Tracing of the exchange's phases (rate limit, consent check, claim, WeChat call, settlement); none when absent. */
  span?: Traced;
  /** Whether the adapter sends the session's openid to getuserphonenumber (config `wechat.sendOpenid`): named when WeChat refuses the request's format. */
  sendOpenid?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Turns a one-time code into a verified phone number, at most one WeChat
 * exchange per code across all instances. The claim row (see ClaimStore) decides
 * who sends the code; the same session's retries get the stored answer; other
 * sessions learn only that the code is used.
 */
export class PhoneService {
  private readonly inflight = new Map<string, Promise<VerifiedPhone>>();
  /** Failures whose consent record was written in their settlement transaction. */
  private readonly recordedInSettlement = new WeakSet<object>();
  private readonly now: () => number;

  constructor(private readonly opts: PhoneServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  async exchange(session: Session, input: ExchangeInput, meta: RequestMeta = {}): Promise<VerifiedPhone> {
    return this.report('exchange', session, input.appid, meta, (app, subjectHash) => {
      const code = checkCode(input.code);
      const purpose = checkPurpose(input.purpose, app);
      return {
        purpose,
        run: (release) => this.once('exchange', subjectHash, app, purpose, meta, this.opts.keys.codeHash('phone', code), release, () => this.callWechat(app, code, session, meta)),
      };
    });
  }

  async decryptLegacy(session: Session, input: LegacyDecryptInput, meta: RequestMeta = {}): Promise<VerifiedPhone> {
    return this.report('legacy', session, input.appid, meta, (app, subjectHash) => {
      const loginCode = checkCode(input.loginCode, 'loginCode');
      const purpose = checkPurpose(input.purpose, app);
      // Line-wrapped base64 is the same data: unwrapped once, so checks, key and decryption agree.
      const data = { ...input, encryptedData: unwrapped(input.encryptedData), iv: unwrapped(input.iv) };
      return {
        purpose,
        afterConsent: () => {
          // Checked before the login code is spent: mangled base64 can never decrypt.
          checkBase64(data.encryptedData, 'encryptedData', (n) => n > 0 && n % 16 === 0);
          checkBase64(data.iv, 'iv', (n) => n === 16);
        },
        run: (release) => {
          // The data is part of the key: the same login code with other data is another question, not a replay.
          const codeHash = this.opts.keys.codeHash('legacy', loginCode, data.encryptedData, data.iv);
          return this.once('legacy', subjectHash, app, purpose, meta, codeHash, release, () => this.legacyDecrypt(app, loginCode, data, session));
        },
      };
    });
  }

  private traced<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.opts.span ? this.opts.span(name, work) : work();
  }

  private async consentWithdrawn(app: AppConfig, subjectHash: string, purpose: string): Promise<boolean> {
    const audit = this.opts.audit;
    return audit ? this.traced('wxphone.consent_check', () => audit.consentWithdrawn(app.appid, subjectHash, purpose)) : false;
  }

  /**
   * Runs one request and writes its consent record: the owner of a claim records inside the
   * settlement transaction (see claimAndRun); every other outcome — a replay, a refusal before
   * or at the claim — is recorded here. Requests for an app this gateway does not serve have
   * no chain to go to and are counted in metrics only.
   *
   * `prepare` checks the input and returns the purpose and the exchange itself; consent is checked
   * here, and the exchange runs only once admitted (see PhoneServiceOptions.admission): bad input is
   * answered as such whatever the load. The input checks and the consent read go on while the
   * rate limit counts the request (on PostgreSQL and Redis, two round trips at once instead of
   * one after the other); their answers are given only after its verdict, which ranks first.
   * A refusal at capacity is counted, not recorded: nothing of the person was processed, and a
   * chain record per refusal would load the database exactly when the gateway has no room.
   */
  private async report(
    flow: 'exchange' | 'legacy',
    session: Session,
    inputAppid: string | null | undefined,
    meta: RequestMeta,
    prepare: (app: AppConfig, subjectHash: string) => PreparedExchange,
  ): Promise<VerifiedPhone> {
    const audited = { subjectHash: this.opts.keys.subjectHash(session.issuer, session.subject), purpose: null as string | null };
    let app: AppConfig | undefined;
    const event = (outcome: ExchangeAuditEvent['outcome'], extra: Partial<ExchangeAuditEvent> = {}): ExchangeAuditEvent => ({
      flow,
      appid: app!.appid,
      subjectHash: audited.subjectHash,
      purpose: audited.purpose,
      noticeVersion: meta.noticeVersion ?? null,
      requestId: meta.requestId ?? null,
      outcome,
      at: this.now(),
      ...extra,
    });
    let refund: (() => Promise<void>) | undefined;
    try {
      app = resolveApp(session, inputAppid, this.opts.apps);
      const rateLimit = this.opts.rateLimit;
      const subjectKey = `${app.appid}:${audited.subjectHash}`;
      const counted = rateLimit ? this.traced('wxphone.rate_limit', () => countRequest(rateLimit, subjectKey, meta.clientIp ?? null)) : undefined;
      let checked: PreparedExchange | undefined;
      let invalid: unknown;
      try {
        checked = prepare(app, audited.subjectHash);
      } catch (e) {
        invalid = e;
      }
      const withdrawn = checked ? this.consentWithdrawn(app, audited.subjectHash, checked.purpose) : undefined;
      // Answered below, after the rate limit's verdict; never an unhandled rejection meanwhile.
      withdrawn?.catch(() => {});
      if (counted) refund = await counted;
      if (!checked) throw invalid;
      audited.purpose = checked.purpose;
      if (await withdrawn) {
        throw new ConsentWithdrawnError(`consent for "${checked.purpose}" was withdrawn; it must be given again before the number can be requested`);
      }
      checked.afterConsent?.();
      const result = await (this.opts.admission ? this.opts.admission.run(checked.run) : checked.run(() => {}));
      // A replay discloses the number again: no record, no disclosure.
      if (result.replayed) {
        await this.opts.audit?.record(event('replayed', { phone: result })).catch((e: unknown) => {
          throw replayKept(e);
        });
      }
      this.opts.counters?.exchanges.inc({ flow, outcome: result.replayed ? 'replayed' : 'disclosed' });
      return result;
    } catch (thrown) {
      const refusedAtCapacity = thrown instanceof AdmissionRefusedError;
      if (refusedAtCapacity) this.opts.counters?.admissionRefused.inc({ reason: thrown.reason });
      // Storage errors that reach here came before anything was sent: those after WeChat's answer
      // were turned into their own outcome where the settlement failed (claimAndRun).
      const e = refusedAtCapacity ? atCapacity() : beforeSending(thrown);
      if (e instanceof ExchangeFailure) {
        this.opts.counters?.exchanges.inc({ flow, outcome: e.code });
        // Turned away for the gateway's own want of room: the client's allowance is not spent either.
        if (refusedAtCapacity) void refund?.();
        // With storage down there is nowhere to record, and trying would only make the answer wait.
        const record = app && !refusedAtCapacity && !(e instanceof ServiceUnavailableError) && !this.recordedInSettlement.has(e);
        if (record) await this.recordRefusal(event('refused', { errorCode: e.code }));
      }
      throw e;
    }
  }

  /**
   * A refusal's consent record, outside any settlement. If storage fails here the refusal is still
   * the answer: it disclosed nothing, and it tells the client what became of its request, which a
   * storage error would not (the refusal is counted in metrics all the same).
   */
  private async recordRefusal(e: ExchangeAuditEvent): Promise<void> {
    await this.opts.audit?.record(e).catch(ignoreStorageOutage);
  }

  /**
   * In-process duplicates share one promise; cross-process ones meet at the claim row. Either
   * kind of duplicate only waits, so it gives its admission slot back (`release`) first.
   */
  private once(
    flow: SettlementContext['flow'],
    subjectHash: string,
    app: AppConfig,
    purpose: string,
    meta: RequestMeta,
    codeHash: string,
    release: () => void,
    attempt: () => Promise<PhoneInfo>,
  ) {
    const key = `${codeHash}|${subjectHash}`;
    const running = this.inflight.get(key);
    if (running) {
      release();
      // A duplicate is a request of its own: its outcome gets its own consent record.
      return running.then(
        (r) => ({ ...r, replayed: true }),
        (e: unknown) => {
          throw e instanceof ExchangeFailure ? sameFailure(e) : e;
        },
      );
    }
    const p = this.claimAndRun(flow, app, purpose, meta, codeHash, subjectHash, release, attempt).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async claimAndRun(
    flow: SettlementContext['flow'],
    app: AppConfig,
    purpose: string,
    meta: RequestMeta,
    codeHash: string,
    subjectHash: string,
    release: () => void,
    attempt: () => Promise<PhoneInfo>,
  ): Promise<VerifiedPhone> {
    const claims = this.opts.claims;
    const claim = await this.traced('wxphone.claim', () => claims.claim({ codeHash, appid: app.appid, subjectHash, purpose, now: this.now(), leaseMs: this.opts.leaseMs }));
    switch (claim.kind) {
      case 'other_session':
        throw new CodeAlreadyUsedError('this code has already been used');
      case 'succeeded':
        return this.replay(codeHash, claim.answerSealed);
      case 'failed':
        throw storedFailure(claim.errorCode, 'an earlier attempt with this code failed');
      case 'in_progress':
        release();
        return this.waitForOther(codeHash);
      case 'owner':
        break;
    }

    const hooks = this.opts.hooks ?? [];
    // Never rejects, not even for a hook that throws: a failed read only means the hook reads again
    // in the settlement, and the claim just taken must go on to its outcome.
    const prepared = hooks.map((h) => Promise.resolve({ flow, app }).then((c) => h.prepare?.(c)).catch(() => undefined));
    let info: PhoneInfo;
    try {
      // Ends inside the lease, so no retry can take the claim over while this call may still reach WeChat.
      info = await withTimeout(this.traced('wxphone.wechat', attempt), this.opts.attemptDeadlineMs, 'exchange attempt');
    } catch (e) {
      const known = classify(e, { earlierAttemptLost: claim.earlierAttemptLost, sendOpenid: this.opts.sendOpenid === true });
      const failure = known?.failure ?? new OutcomeUnknownError(STORED_FAILURE_MESSAGES.OUTCOME_UNKNOWN);
      await this.settleOutcome({ flow, codeHash, app, subjectHash, purpose, meta, now: this.now() }, claim.attempt, failure, known?.codeUnspent ?? false);
      // Unexpected errors (bugs) surface masked; the claim is final all the same.
      throw known ? known.failure : e;
    }
    if (info.watermark.appid !== app.appid) {
      const failure = new WatermarkMismatchError(STORED_FAILURE_MESSAGES.WATERMARK_MISMATCH);
      await this.settleOutcome({ flow, codeHash, app, subjectHash, purpose, meta, now: this.now() }, claim.attempt, failure, false);
      throw failure;
    }
    // Awaited before the transaction opens: nothing waits on a read while the claim's row is locked.
    const ready = await Promise.all(prepared);
    const now = this.now();
    const context: SettlementContext = { flow, codeHash, app, subjectHash, purpose, meta, now };
    let stored: boolean;
    try {
      stored = await this.traced('wxphone.settle', () => claims.transaction(async (trx) => {
        const owned = await claims.succeed(
          { codeHash, attempt: claim.attempt, now, answerSealed: this.opts.keys.seal(JSON.stringify(info), codeHash), answerExpiresAt: now + this.opts.replayTtlMs },
          trx,
        );
        if (owned) {
          for (const [i, h] of hooks.entries()) await h.disclosed?.(trx, { ...context, info, prepared: ready[i] });
          await this.opts.audit?.record(this.settledEvent(context, 'disclosed', { phone: info }), trx);
        }
        return owned;
      }));
    } catch (e) {
      // Nothing is disclosed that was not recorded. WeChat has spent the code, so the claim is
      // settled as final (best effort: storage may be what failed) rather than left to a resend.
      // A withdrawal that won the race is an answer of its own; anything else is unknown.
      const failure = e instanceof ConsentWithdrawnError ? e : new OutcomeUnknownError(STORED_FAILURE_MESSAGES.OUTCOME_UNKNOWN);
      await this.settleFailure(context, claim.attempt, failure, false).catch(() => {});
      throw afterAnswer(e);
    }
    // Our lease ran out and another attempt took the claim: its outcome is the record, not ours.
    if (!stored) throw new InProgressError('the exchange took too long and was taken over by a retry; retry to get its answer');
    return { ...info, replayed: false };
  }

  /**
   * Settles a refusal WeChat (or the watermark check) decided. If storage fails meanwhile, that
   * refusal is still the answer (it says what became of the code); the claim is left to its lease.
   */
  private async settleOutcome(context: SettlementContext, attempt: number, failure: ExchangeFailure, codeUnspent: boolean): Promise<void> {
    await this.settleFailure(context, attempt, failure, codeUnspent).catch(ignoreStorageOutage);
  }

  private async settleFailure(context: SettlementContext, attempt: number, failure: ExchangeFailure, codeUnspent: boolean): Promise<void> {
    const owned = await this.traced('wxphone.settle', () => this.opts.claims.transaction(async (trx) => {
      const owns = await this.opts.claims.fail(
        { codeHash: context.codeHash, attempt, now: context.now, errorCode: failure.code, codeMayBeRetried: codeUnspent },
        trx,
      );
      if (owns) {
        for (const h of this.opts.hooks ?? []) await h.refused?.(trx, { ...context, failure });
        await this.opts.audit?.record(this.settledEvent(context, 'refused', { errorCode: failure.code }), trx);
      }
      return owns;
    }));
    if (owned) this.recordedInSettlement.add(failure);
  }

  private settledEvent(c: SettlementContext, outcome: ExchangeAuditEvent['outcome'], extra: Partial<ExchangeAuditEvent>): ExchangeAuditEvent {
    return {
      flow: c.flow,
      appid: c.app.appid,
      subjectHash: c.subjectHash,
      purpose: c.purpose,
      noticeVersion: c.meta.noticeVersion ?? null,
      requestId: c.meta.requestId ?? null,
      outcome,
      at: c.now,
      ...extra,
    };
  }

  private replay(codeHash: string, sealed: string | null): VerifiedPhone {
    if (!sealed) throw new CodeAlreadyUsedError('this code was already exchanged and its stored answer has expired');
    const info = JSON.parse(this.opts.keys.open(sealed, codeHash)) as PhoneInfo;
    return { ...info, replayed: true };
  }

  /** Another request (maybe another instance) is exchanging this code for the same session: wait for it. */
  private async waitForOther(codeHash: string): Promise<VerifiedPhone> {
    const deadline = this.now() + (this.opts.duplicateWaitMs ?? 10_000);
    let delay = 20;
    while (this.now() < deadline) {
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
      const row = await this.opts.claims.peek(codeHash);
      if (!row) break;
      if (row.state === 'succeeded') {
        return this.replay(codeHash, row.answer_expires_at && row.answer_expires_at > this.now() ? row.answer_sealed : null);
      }
      if (row.state === 'failed') {
        throw storedFailure(row.error_code ?? 'UPSTREAM_UNAVAILABLE', 'the concurrent attempt with this code failed; retry');
      }
      if (row.lease_until <= this.now()) break;
    }
    throw new InProgressError('another request with this code is still being exchanged; retry shortly');
  }

  private async callWechat(app: AppConfig, code: string, session: Session, meta: RequestMeta): Promise<PhoneInfo> {
    // Sent to WeChat only if the adapter is configured to (sendOpenid); the session's subject is the openid.
    const openid = session.appid === app.appid ? session.subject : undefined;
    return this.opts.tokens.withToken(app.appid, (token) => this.opts.wechat.getUserPhoneNumber(token, { code, openid, appid: app.appid }), meta.requestId ?? undefined);
  }

  private async legacyDecrypt(app: AppConfig, loginCode: string, input: LegacyDecryptInput, session: Session): Promise<PhoneInfo> {
    const login = await this.opts.wechat.code2Session({ appid: app.appid, secret: app.secret, jsCode: loginCode });
    if (session.appid === app.appid && login.openid !== session.subject) {
      throw new InvalidCodeError('the login code belongs to another user than this session');
    }
    return decryptPhoneData({ sessionKey: login.sessionKey, encryptedData: input.encryptedData, iv: input.iv, appid: app.appid });
  }
}

/** The rate limit's verdict; what it gives back takes the request out of its windows again. */
async function countRequest(rateLimit: ExchangeRateLimit, subjectKey: string, clientIp: string | null): Promise<() => Promise<void>> {
  const { verdict, refund } = await rateLimit.count(subjectKey, clientIp);
  if (verdict) throw overRateLimit(verdict);
  return refund;
}

/** The input's types are only what GraphQL promises: anything that is not a string is left for checkBase64 to refuse. */
function unwrapped<T>(value: T): T {
  return typeof value === 'string' ? (unwrapBase64(value) as T) : value;
}

function checkBase64(value: unknown, field: string, lengthOk: (bytes: number) => boolean): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidInputError(`${field} is required`, field);
  if (value.length > 16_384) throw new InvalidInputError(`${field} is too long`, field);
  const clean = /^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length % 4 === 0;
  if (!clean || !lengthOk(Buffer.from(value, 'base64').length)) {
    const hint = / /.test(value) ? ' (it contains spaces: "+" characters were probably URL-decoded)' : '';
    throw new Base64MangledError(`${field} is not intact base64${hint}; send it exactly as the button gave it, URL-encoded if in a query string`);
  }
}
