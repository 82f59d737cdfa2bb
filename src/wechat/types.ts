// Public shapes of the WeChat adapter. Runtime validation lives in answers.ts;
// these are the normalised values callers see (strings for ids and calling
// codes, bigint for 64-bit counters).

/** The WeChat endpoints the adapter calls; used in errors and metrics (never a URL). */
export type WechatEndpoint =
  | 'stable_token'
  | 'token'
  | 'getuserphonenumber'
  | 'jscode2session'
  | 'usage_get'
  | 'usage_get_recent_average';

export const WECHAT_ENDPOINT_PATHS: Readonly<Record<WechatEndpoint, string>> = {
  stable_token: '/cgi-bin/stable_token',
  token: '/cgi-bin/token',
  getuserphonenumber: '/wxa/business/getuserphonenumber',
  jscode2session: '/sns/jscode2session',
  usage_get: '/wxa/charge/usage/get',
  usage_get_recent_average: '/wxa/charge/usage/get_recent_average',
};

export interface AccessTokenResult {
  accessToken: string;
  /** Seconds of life left as WeChat reported it (stable_token: the remaining lifetime). */
  expiresIn: number;
}

export interface PhoneInfo {
  /** With the calling code for numbers outside mainland China. */
  phoneNumber: string;
  /** Never carries the calling code. */
  purePhoneNumber: string;
  /** Always a string here, although WeChat sends the number 86 as often as "86". */
  countryCode: string;
  watermark: { appid: string; timestamp: number };
}

export interface Code2SessionResult {
  openid: string;
  /** A secret: never log it, never keep it past the decrypt call. */
  sessionKey: string;
  unionid?: string;
}

/**
 * One row of getUsageDetail: a resource pack, or the 1,000-call trial (pkgId "", source 1).
 * Numbers WeChat documents as enums (status, source) are passed through as numbers, unknown
 * values included: what they mean is billing's business (src/billing/rules.ts).
 */
export interface UsageDetail {
  /** "ZY…" for a pack; "" for the trial. */
  pkgId: string;
  orderId?: string;
  /** PackageStatus: 1 in effect, 2 not yet in effect, 3 expired. */
  status: number;
  /** Seconds since the epoch; the trial ends at 4294967295. */
  startTime: number;
  endTime: number;
  all: bigint;
  used: bigint;
  spuId?: string;
  skuId?: string;
  /** PackageSource: 1 trial, 2 bought, 3 assigned by a service provider (4, 5 other). */
  source?: number;
}

export interface UsagePage {
  /** Units of the packs in effect (64-bit; before charging starts, packs not yet in effect too). */
  all: bigint;
  /** Units used so far, cumulative (64-bit). */
  effectiveUse: bigint;
  /** Deprecated by WeChat (seen as "0"); present only when sent. */
  effectiveAll?: bigint;
  /** Subscription goods only; passed through when sent. */
  startServiceTime?: number;
  endServiceTime?: number;
  /** Number of detail rows across all pages. */
  total: number;
  detailList: UsageDetail[];
}

export interface UsageSummary {
  all: bigint;
  effectiveUse: bigint;
  effectiveAll?: bigint;
  /** Every row, each once (in the order first read). */
  details: UsageDetail[];
  /** WeChat's `total` as last read. */
  total: number;
  /** False when paging stopped before `total` rows were read (empty page, or a total that kept moving). */
  detailsComplete: boolean;
}

/** getRecentAverageUsage. */
export interface RecentAverage {
  /**
   * `averageData`: the average MONTHLY use over the last three months, fuzzed upward by
   * WeChat ("50" means at most 50 a month). An upper bound, not a daily rate.
   */
  monthlyAverage: bigint;
}
