import type { AppConfig } from '../config.js';
import type { DataKeys } from '../crypto/keys.js';
import type { PhoneInfo } from '../wechat/index.js';
import type { ClaimStore } from './claims.js';
import { ConsentWithdrawnError, InProgressError, OutcomeUnknownError, STORED_FAILURE_MESSAGES, type ExchangeFailure } from './errors.js';
import type { ExchangeAudit, ExchangeAuditEvent, SettlementContext, SettlementHooks, Traced } from './ports.js';
import type { ExchangeAttempt, Flow, RequestMeta, VerifiedPhone } from './request.js';
import { afterAnswer, ignoreStorageOutage } from './storage-outage.js';

/**
 * The settlement: the end of an attempt that owns its claim, in one transaction with the claim's
 * outcome (and the sealed answer to replay), the charge (SettlementHooks) and the consent record.
 * A disclosure commits all of them or none; a refusal says whether its record went with it.
 */

/**
 * A refusal the claim's owner settled. `recorded`: its consent record was written in the
 * settlement's transaction, so the exchange writes none of its own.
 */
export class SettledRefusal {
  constructor(
    readonly error: unknown,
    readonly recorded: boolean,
  ) {}
}

/** An outcome's consent record. */
export function auditEvent(
  of: { flow: Flow; subjectHash: string; purpose: string | null; meta: RequestMeta },
  app: AppConfig,
  outcome: ExchangeAuditEvent['outcome'],
  at: number,
  extra: { errorCode: string } | { phone: PhoneInfo },
): ExchangeAuditEvent {
  return {
    flow: of.flow,
    appid: app.appid,
    subjectHash: of.subjectHash,
    purpose: of.purpose,
    noticeVersion: of.meta.noticeVersion ?? null,
    requestId: of.meta.requestId ?? null,
    outcome,
    at,
    ...extra,
  };
}

export interface SettlementOptions<Ahead> {
  claims: ClaimStore;
  keys: DataKeys;
  /** How long a stored answer may be replayed to the same session. */
  replayTtlMs: number;
  hooks: SettlementHooks<Ahead> | undefined;
  audit: ExchangeAudit | undefined;
  traced: Traced;
  now: () => number;
}

const noRead = () => undefined;
const notRecorded = () => false;

export class Settlement<Ahead> {
  constructor(private readonly opts: SettlementOptions<Ahead>) {}

  /**
   * The hooks' reads ahead, started as the WeChat call starts. Never rejects, not even for a hook
   * that throws: a failed read only means the hook reads again in the settlement, and the claim
   * just taken must go on to its outcome.
   */
  readAhead(attempt: ExchangeAttempt): Promise<Ahead | undefined> | undefined {
    const hooks = this.opts.hooks;
    if (!hooks?.prepare) return undefined;
    return Promise.resolve({ flow: attempt.flow, app: attempt.app })
      .then((c) => hooks.prepare!(c))
      .catch(noRead);
  }

  /** Settles WeChat's answer, disclosed only once its claim, charge and record commit; `prepared` is what readAhead read. */
  async disclosed(attempt: ExchangeAttempt, claimAttempt: number, info: PhoneInfo, prepared: Ahead | undefined): Promise<VerifiedPhone | SettledRefusal> {
    const { claims, keys, hooks, audit } = this.opts;
    const context = this.context(attempt, this.opts.now());
    const { codeHash, now } = context;
    let owned: boolean;
    try {
      owned = await this.opts.traced('wxphone.settle', () =>
        claims.transaction(async (trx) => {
          const answerSealed = keys.seal(JSON.stringify(info), codeHash);
          const owns = await claims.succeed({ codeHash, attempt: claimAttempt, now, answerSealed, answerExpiresAt: now + this.opts.replayTtlMs }, trx);
          if (owns) {
            await hooks?.disclosed?.(trx, { ...context, info, prepared });
            await audit?.record(auditEvent(context, context.app, 'disclosed', now, { phone: info }), trx);
          }
          return owns;
        }),
      );
    } catch (e) {
      // Nothing is disclosed that was not recorded. WeChat has spent the code, so the claim is
      // settled as final (best effort: storage may be what failed) rather than left to a resend.
      // A withdrawal that won the race is an answer of its own; anything else is unknown.
      const failure = e instanceof ConsentWithdrawnError ? e : new OutcomeUnknownError(STORED_FAILURE_MESSAGES.OUTCOME_UNKNOWN);
      const recorded = await this.settleRefusal(context, claimAttempt, failure, false).catch(notRecorded);
      return new SettledRefusal(afterAnswer(e), recorded);
    }
    // Our lease ran out and another attempt took the claim: its outcome is the record, not ours.
    if (!owned) throw new InProgressError('the exchange took too long and was taken over by a retry; retry to get its answer');
    return { ...info, replayed: false };
  }

  /**
   * Settles a refusal WeChat (or the watermark check) decided; true when its record was written
   * with it. If storage fails meanwhile, that refusal is still the answer (it says what became of
   * the code); the claim is left to its lease.
   */
  refused(attempt: ExchangeAttempt, claimAttempt: number, failure: ExchangeFailure, codeUnspent: boolean): Promise<boolean> {
    return this.settleRefusal(this.context(attempt, this.opts.now()), claimAttempt, failure, codeUnspent).catch(ignoreStorageOutage);
  }

  private async settleRefusal(context: SettlementContext, claimAttempt: number, failure: ExchangeFailure, codeUnspent: boolean): Promise<boolean> {
    const { claims, hooks, audit } = this.opts;
    return this.opts.traced('wxphone.settle', () =>
      claims.transaction(async (trx) => {
        const owns = await claims.fail(
          { codeHash: context.codeHash, attempt: claimAttempt, now: context.now, errorCode: failure.code, codeMayBeRetried: codeUnspent },
          trx,
        );
        if (owns) {
          await hooks?.refused?.(trx, { ...context, failure });
          await audit?.record(auditEvent(context, context.app, 'refused', context.now, { errorCode: failure.code }), trx);
        }
        return owns;
      }),
    );
  }

  /** What the hooks are told of the settlement: never the code itself, only its keyed hash. */
  private context(attempt: ExchangeAttempt, now: number): SettlementContext {
    const { flow, codeHash, app, subjectHash, purpose, meta } = attempt;
    return { flow, codeHash, app, subjectHash, purpose, meta, now };
  }
}
