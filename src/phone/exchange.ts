import type { AppConfig } from '../config.js';
import type { DataKeys } from '../crypto/keys.js';
import type { Session } from '../auth/index.js';
import type { AccessTokenProvider } from '../wechat/index.js';
import type { WechatClient } from '../wechat/index.js';
import { AdmissionRefusedError } from './admission.js';
import { ClaimStep, type ClaimStepOptions } from './claim-step.js';
import type { ClaimStore } from './claims.js';
import { ConsentWithdrawnError, ExchangeFailure, ServiceUnavailableError } from './errors.js';
import { checkExchangeInput, resolveApp } from './input.js';
import { checkLegacyData, checkLegacyInput, legacyCodeHash } from './legacy.js';
import { atCapacity, overRateLimit } from './load-refusals.js';
import { untraced, type Admission, type ExchangeAudit, type ExchangeCounters, type ExchangeRateLimit, type SettlementHooks, type Traced } from './ports.js';
import type { CheckedInput, ExchangeAttempt, ExchangeInput, ExchangeRequest, LegacyDecryptInput, RequestMeta, VerifiedPhone } from './request.js';
import { SettledRefusal, Settlement, auditEvent, type SettlementOptions } from './settle.js';
import { beforeSending, ignoreStorageOutage, replayKept } from './storage-outage.js';
import { WechatStep } from './wechat-step.js';

/**
 * The exchange, step by step: the input (input.ts, legacy.ts), the rate limit, the consent check
 * and admission here; then, once per code, the claim, WeChat and the settlement (claim-step.ts,
 * wechat-step.ts, settle.ts). Each step takes the request as far as the steps before it brought it
 * (ExchangeRequest, then ExchangeAttempt) and gives a typed result; what it needs from other parts
 * of the gateway comes in through ports.ts.
 */

/** The timings of claims and replays and the adapter's openid setting: see ClaimStepOptions and SettlementOptions. */
export interface PhoneServiceOptions<Ahead = unknown>
  extends Pick<ClaimStepOptions<Ahead>, 'leaseMs' | 'attemptDeadlineMs'>,
    Partial<Pick<ClaimStepOptions<Ahead>, 'duplicateWaitMs' | 'sendOpenid'>>,
    Pick<SettlementOptions<Ahead>, 'replayTtlMs'> {
  apps: ReadonlyMap<string, AppConfig>;
  claims: ClaimStore;
  keys: DataKeys;
  tokens: AccessTokenProvider;
  wechat: WechatClient;
  now?: () => number;
  /** The charge recorded in each settlement's transaction (the billing ledger's). */
  hooks?: SettlementHooks<Ahead>;
  /** The consent log: checked before the claim, written with every outcome. */
  audit?: ExchangeAudit;
  /**
   * Counted once the app is known: a request over its limit is refused as RATE_LIMITED and
   * recorded like any other refusal; nothing reaches WeChat and nothing is charged.
   */
  rateLimit?: ExchangeRateLimit;
  /** Room for the exchange in this process, after the rate limit and the input and consent checks, before the code is claimed. */
  admission?: Admission;
  counters?: ExchangeCounters;
  /** Tracing of the exchange's phases (rate limit, consent check, claim, WeChat call, settlement); none when absent. */
  span?: Traced;
}

const ignore = () => {};
const nothingToRelease = () => {};

/**
 * Turns a one-time code into a verified phone number, or a typed refusal. `Ahead` is what the
 * settlement's charge reads while WeChat answers (in the gateway, the ledger's drawable packs).
 */
export class PhoneService<Ahead = unknown> {
  private readonly apps: ReadonlyMap<string, AppConfig>;
  private readonly keys: DataKeys;
  private readonly audit: ExchangeAudit | undefined;
  private readonly rateLimit: ExchangeRateLimit | undefined;
  private readonly admission: Admission | undefined;
  private readonly counters: ExchangeCounters | undefined;
  private readonly traced: Traced;
  private readonly now: () => number;
  private readonly claimStep: ClaimStep<Ahead>;

  constructor(opts: PhoneServiceOptions<Ahead>) {
    this.apps = opts.apps;
    this.keys = opts.keys;
    this.audit = opts.audit;
    this.rateLimit = opts.rateLimit;
    this.admission = opts.admission;
    this.counters = opts.counters;
    this.traced = opts.span ?? untraced;
    this.now = opts.now ?? Date.now;
    const { keys, audit, traced, now } = this;
    const claims = opts.claims;
    this.claimStep = new ClaimStep({
      claims,
      keys,
      wechat: new WechatStep(opts.wechat, opts.tokens),
      settlement: new Settlement({ claims, keys, replayTtlMs: opts.replayTtlMs, hooks: opts.hooks, audit, traced, now }),
      leaseMs: opts.leaseMs,
      attemptDeadlineMs: opts.attemptDeadlineMs,
      duplicateWaitMs: opts.duplicateWaitMs ?? 10_000,
      sendOpenid: opts.sendOpenid === true,
      traced,
      now,
    });
  }

  async exchange(session: Session, input: ExchangeInput, meta: RequestMeta = {}): Promise<VerifiedPhone> {
    return this.run({ flow: 'exchange', input, session, meta, subjectHash: this.keys.subjectHash(session.issuer, session.subject), app: undefined, purpose: null });
  }

  async decryptLegacy(session: Session, input: LegacyDecryptInput, meta: RequestMeta = {}): Promise<VerifiedPhone> {
    return this.run({ flow: 'legacy', input, session, meta, subjectHash: this.keys.subjectHash(session.issuer, session.subject), app: undefined, purpose: null });
  }

  /**
   * Runs one request and writes its consent record: the owner of a claim records inside the
   * settlement transaction (see Settlement); every other outcome — a replay, a refusal before
   * or at the claim — is recorded here. Requests for an app this gateway does not serve have
   * no chain to go to and are counted only.
   *
   * The input and consent are checked before admission, so bad input is answered as such
   * whatever the load. The input checks and the consent read go on while the rate limit counts
   * the request (on PostgreSQL and Redis, two round trips at once instead of one after the
   * other); their answers are given only after its verdict, which ranks first. A refusal at
   * capacity is counted, not recorded: nothing of the person was processed, and a chain record
   * per refusal would load the database exactly when the gateway has no room.
   */
  private async run(request: ExchangeRequest): Promise<VerifiedPhone> {
    let refund: (() => Promise<void>) | undefined;
    let attempt: ExchangeAttempt;
    let result: VerifiedPhone | SettledRefusal;
    try {
      const app = (request.app = resolveApp(request.session, request.input.appid, this.apps));
      const rateLimit = this.rateLimit;
      const counted = rateLimit ? this.traced('wxphone.rate_limit', () => countRequest(rateLimit, request, app)) : undefined;
      let checked: CheckedInput | undefined;
      let invalid: unknown;
      try {
        checked = request.flow === 'exchange' ? checkExchangeInput(request.input, app) : checkLegacyInput(request.input, app);
      } catch (e) {
        invalid = e;
      }
      const withdrawn = checked ? this.consentWithdrawn(app, request.subjectHash, checked.purpose) : undefined;
      // Answered below, after the rate limit's verdict; never an unhandled rejection meanwhile.
      withdrawn?.catch(ignore);
      if (counted) refund = await counted;
      if (!checked) throw invalid;
      request.purpose = checked.purpose;
      if (await withdrawn) {
        throw new ConsentWithdrawnError(`consent for "${checked.purpose}" was withdrawn; it must be given again before the number can be requested`);
      }
      if (checked.flow === 'legacy') checkLegacyData(checked);
      attempt = {
        ...checked,
        app,
        session: request.session,
        subjectHash: request.subjectHash,
        meta: request.meta,
        codeHash: checked.flow === 'exchange' ? this.keys.codeHash('phone', checked.code) : legacyCodeHash(this.keys, checked),
      };
      const claimStep = this.claimStep;
      result = await (this.admission ? this.admission.run((release) => claimStep.run(attempt, release)) : claimStep.run(attempt, nothingToRelease));
    } catch (e) {
      if (!(e instanceof AdmissionRefusedError)) return this.refused(request, e, true);
      // Turned away for the gateway's own want of room: the client's allowance is not spent either.
      this.counters?.admissionRefused.inc({ reason: e.reason });
      void refund?.();
      return this.refused(request, atCapacity(), false);
    }
    if (result instanceof SettledRefusal) return this.refused(request, result.error, !result.recorded);
    // A replay discloses the number again: no record, no disclosure.
    if (result.replayed && this.audit) {
      try {
        await this.audit.record(auditEvent(attempt, attempt.app, 'replayed', this.now(), { phone: result }));
      } catch (e) {
        return this.refused(request, replayKept(e), true);
      }
    }
    this.counters?.exchanges.inc({ flow: request.flow, outcome: result.replayed ? 'replayed' : 'disclosed' });
    return result;
  }

  private consentWithdrawn(app: AppConfig, subjectHash: string, purpose: string): Promise<boolean> | undefined {
    const audit = this.audit;
    return audit ? this.traced('wxphone.consent_check', () => audit.consentWithdrawn(app.appid, subjectHash, purpose)) : undefined;
  }

  /**
   * Answers a refusal, counted, and with its consent record written here when `record` says so
   * (not when the settlement wrote it, nor for a refusal at capacity). If storage fails on that
   * record the refusal is still the answer: it disclosed nothing, and it tells the client what
   * became of its request, which a storage error would not.
   */
  private async refused(request: ExchangeRequest, thrown: unknown, record: boolean): Promise<never> {
    const e = beforeSending(thrown);
    if (e instanceof ExchangeFailure) {
      this.counters?.exchanges.inc({ flow: request.flow, outcome: e.code });
      // With storage down there is nowhere to record, and trying would only make the answer wait.
      if (record && request.app && this.audit && !(e instanceof ServiceUnavailableError)) {
        await this.audit.record(auditEvent(request, request.app, 'refused', this.now(), { errorCode: e.code })).catch(ignoreStorageOutage);
      }
    }
    throw e;
  }
}

/** The rate limit's verdict; what it gives back takes the request out of its windows again. */
async function countRequest(rateLimit: ExchangeRateLimit, request: ExchangeRequest, app: AppConfig): Promise<() => Promise<void>> {
  const { verdict, refund } = await rateLimit.count(`${app.appid}:${request.subjectHash}`, request.meta.clientIp ?? null);
  if (verdict) throw overRateLimit(verdict);
  return refund;
}
