import type { AppConfig } from '../config.js';
import type { Session } from '../auth/index.js';
import type { PhoneInfo } from '../wechat/index.js';
import type { ExchangeFailure } from './errors.js';

/**
 * What one request carries through the exchange's steps: its input, then what the steps establish,
 * up to the attempt that the claim, WeChat and the settlement work on.
 */

/** The two ways to a phone number: a phone-number code, or a login code with the data it decrypts. */
export type Flow = 'exchange' | 'legacy';

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

/** Who asked, where: carried into the consent record. */
export interface RequestMeta {
  requestId?: string | null;
  noticeVersion?: string | null;
  /** The client's address (the socket peer, or X-Forwarded-For from trusted proxies): for rate limits only, never recorded. */
  clientIp?: string | null;
}

export interface VerifiedPhone extends PhoneInfo {
  /** True when this answer was stored by an earlier request of the same session: WeChat was not called again. */
  replayed: boolean;
}

export type ExchangeOutcome = 'disclosed' | 'replayed' | ExchangeFailure['code'];

interface RequestSteps {
  readonly session: Session;
  readonly meta: RequestMeta;
  /** The session's subject as claims and records know it (a keyed hash). */
  readonly subjectHash: string;
  /** Set once the app is resolved: a request for an app this gateway does not serve has no consent chain to be recorded in. */
  app: AppConfig | undefined;
  /** Set once the rate limit let the request through and its input is valid: the purpose its record names. */
  purpose: string | null;
}

/** One request as it goes through the exchange's steps, which fill in what they establish. */
export type ExchangeRequest =
  | (RequestSteps & { readonly flow: 'exchange'; readonly input: ExchangeInput })
  | (RequestSteps & { readonly flow: 'legacy'; readonly input: LegacyDecryptInput });

/** What a valid input asks WeChat: a phone-number code, or a login code with the data it decrypts. */
export type CheckedInput =
  | { readonly flow: 'exchange'; readonly purpose: string; readonly code: string }
  | { readonly flow: 'legacy'; readonly purpose: string; readonly loginCode: string; readonly encryptedData: string; readonly iv: string };

/** A request past its input, consent and rate-limit checks: what the claim, WeChat and settlement steps work on. */
export type ExchangeAttempt = CheckedInput & {
  readonly app: AppConfig;
  readonly session: Session;
  readonly subjectHash: string;
  readonly meta: RequestMeta;
  /** The claim's key: a keyed hash of what is asked, never the code itself. */
  readonly codeHash: string;
};
