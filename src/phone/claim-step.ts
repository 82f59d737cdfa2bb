import type { DataKeys } from '../crypto/keys.js';
import type { PhoneInfo } from '../wechat/index.js';
import { withTimeout } from '../util/timeout.js';
import type { ClaimStore } from './claims.js';
import { classify } from './classify.js';
import {
  CodeAlreadyUsedError,
  ExchangeFailure,
  InProgressError,
  OutcomeUnknownError,
  STORED_FAILURE_MESSAGES,
  WatermarkMismatchError,
  sameFailure,
  storedFailure,
} from './errors.js';
import type { Traced } from './ports.js';
import type { ExchangeAttempt, VerifiedPhone } from './request.js';
import { SettledRefusal, type Settlement } from './settle.js';
import type { WechatStep } from './wechat-step.js';

/**
 * At most one WeChat exchange per code across all instances. The claim row (see ClaimStore)
 * decides who sends the code; the same session's retries get the stored answer; other sessions
 * learn only that the code is used. The owner sends the attempt to WeChat and settles it.
 *
 * What `run` gives: the number, or a refusal this attempt settled (SettledRefusal). What it throws
 * was not settled by this attempt: a refusal at the claim, an outcome shared with another
 * request, a claim taken over.
 */
export class ClaimStep<Ahead> {
  private readonly inflight = new Map<string, Promise<VerifiedPhone | SettledRefusal>>();

  constructor(private readonly opts: ClaimStepOptions<Ahead>) {}

  /**
   * In-process duplicates share one promise; cross-process ones meet at the claim row. Either
   * kind of duplicate only waits, so it gives its admission slot back (`release`) first.
   */
  run(attempt: ExchangeAttempt, release: () => void): Promise<VerifiedPhone | SettledRefusal> {
    const key = `${attempt.codeHash}|${attempt.subjectHash}`;
    const running = this.inflight.get(key);
    if (running) {
      release();
      return running.then(asDuplicate, failedAsDuplicate);
    }
    const p = this.claimAndRun(attempt, release).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async claimAndRun(attempt: ExchangeAttempt, release: () => void): Promise<VerifiedPhone | SettledRefusal> {
    const { claims, settlement } = this.opts;
    const { codeHash, app, subjectHash, purpose } = attempt;
    const claim = await this.opts.traced('wxphone.claim', () => claims.claim({ codeHash, appid: app.appid, subjectHash, purpose, now: this.opts.now(), leaseMs: this.opts.leaseMs }));
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

    const prepared = settlement.readAhead(attempt);
    let info: PhoneInfo;
    try {
      // Ends inside the lease, so no retry can take the claim over while this call may still reach WeChat.
      info = await withTimeout(
        this.opts.traced('wxphone.wechat', () => this.opts.wechat.ask(attempt)),
        this.opts.attemptDeadlineMs,
        'exchange attempt',
      );
    } catch (e) {
      const known = classify(e, { earlierAttemptLost: claim.earlierAttemptLost, sendOpenid: this.opts.sendOpenid });
      const failure = known?.failure ?? new OutcomeUnknownError(STORED_FAILURE_MESSAGES.OUTCOME_UNKNOWN);
      const recorded = await settlement.refused(attempt, claim.attempt, failure, known?.codeUnspent ?? false);
      // Unexpected errors (bugs) surface masked; the claim is final all the same.
      return new SettledRefusal(known ? known.failure : e, recorded);
    }
    if (info.watermark.appid !== app.appid) {
      const failure = new WatermarkMismatchError(STORED_FAILURE_MESSAGES.WATERMARK_MISMATCH);
      return new SettledRefusal(failure, await settlement.refused(attempt, claim.attempt, failure, false));
    }
    // Awaited before the transaction opens: nothing waits on a read while the claim's row is locked.
    return settlement.disclosed(attempt, claim.attempt, info, await prepared);
  }

  private replay(codeHash: string, sealed: string | null): VerifiedPhone {
    if (!sealed) throw new CodeAlreadyUsedError('this code was already exchanged and its stored answer has expired');
    const info = JSON.parse(this.opts.keys.open(sealed, codeHash)) as PhoneInfo;
    return { ...info, replayed: true };
  }

  /** Another request (maybe another instance) is exchanging this code for the same session: wait for it. */
  private async waitForOther(codeHash: string): Promise<VerifiedPhone> {
    const now = this.opts.now;
    const deadline = now() + this.opts.duplicateWaitMs;
    let delay = 20;
    while (now() < deadline) {
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
      const row = await this.opts.claims.peek(codeHash);
      if (!row) break;
      if (row.state === 'succeeded') {
        return this.replay(codeHash, row.answer_expires_at && row.answer_expires_at > now() ? row.answer_sealed : null);
      }
      if (row.state === 'failed') throw storedFailure(row.error_code ?? 'UPSTREAM_UNAVAILABLE', 'the concurrent attempt with this code failed; retry');
      if (row.lease_until <= now()) break;
    }
    throw new InProgressError('another request with this code is still being exchanged; retry shortly');
  }
}

export interface ClaimStepOptions<Ahead> {
  claims: ClaimStore;
  keys: DataKeys;
  wechat: WechatStep;
  settlement: Settlement<Ahead>;
  /** How long one attempt owns a claim; must exceed attemptDeadlineMs plus the time to record the outcome. */
  leaseMs: number;
  /** An attempt still running after this is abandoned and recorded as OUTCOME_UNKNOWN, inside its lease. */
  attemptDeadlineMs: number;
  /** How long a duplicate waits for a running attempt before answering IN_PROGRESS. */
  duplicateWaitMs: number;
  /** Whether the adapter sends the session's openid to getuserphonenumber (config `wechat.sendOpenid`): named when WeChat refuses the request's format. */
  sendOpenid: boolean;
  traced: Traced;
  now: () => number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A duplicate is a request of its own: the outcome it shares is answered (and recorded) as its own.
function asDuplicate(r: VerifiedPhone | SettledRefusal): VerifiedPhone {
  if (r instanceof SettledRefusal) return failedAsDuplicate(r.error);
  return { ...r, replayed: true };
}

function failedAsDuplicate(e: unknown): never {
  throw e instanceof ExchangeFailure ? sameFailure(e) : e;
}
