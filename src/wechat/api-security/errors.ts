import { WechatUpstreamError } from '../errors.js';
import type { WechatEndpoint } from '../types.js';

export type AnswerUnverifiedReason =
  /** An answer that is not a refusal (it carries data, or errcode 0) came without Wechatmp-Signature. */
  | 'missing_signature'
  /** Neither Wechatmp-Serial nor Wechatmp-Serial-Deprecated names the configured platform certificate. */
  | 'unknown_serial'
  /** The platform signature does not verify over the answer as received. */
  | 'bad_signature'
  /** Wechatmp-TimeStamp is missing, not a number, or outside the accepted window. */
  | 'stale_timestamp'
  /** Wechatmp-Appid, or the _appid/_timestamp inside the answer, differ from what was signed for. */
  | 'appid_mismatch'
  /** Signed, but the envelope does not decrypt (another symmetric key, or a malformed body). */
  | 'decrypt_failed';

/**
 * An answer in API security mode that cannot be trusted. WeChat did receive the request (an
 * answer came back), so the code may have been spent: like any other unusable answer to a code
 * exchange, this is never retried and the exchange's outcome is unknown.
 */
export class WechatAnswerUnverifiedError extends WechatUpstreamError {
  readonly reason: AnswerUnverifiedReason;

  constructor(endpoint: WechatEndpoint, reason: AnswerUnverifiedReason) {
    super(endpoint, 'unverified', { detail: reason });
    this.reason = reason;
  }
}
