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

export interface UsageDetail {
  pkgId: string;
  /** 1 active, 2 not yet active, 3 expired (other values are passed through). */
  status: number;
  /** Seconds since the epoch. */
  startTime: number;
  endTime: number;
  all: bigint;
  used: bigint;
  spuId?: string;
  skuId?: string;
  source?: string;
}

export interface UsagePage {
  /** Total units available (64-bit). */
  all: bigint;
  /** Units used so far (64-bit). */
  effectiveUse: bigint;
  /** Deprecated by WeChat; present only when sent. */
  effectiveAll?: bigint;
  /** Number of detail rows across all pages. */
  total: number;
  detailList: UsageDetail[];
}

export interface UsageSummary {
  all: bigint;
  effectiveUse: bigint;
  effectiveAll?: bigint;
  /** all − effectiveUse, never below 0. */
  remaining: bigint;
  details: UsageDetail[];
  /** False when paging stopped before `total` rows were read (empty page, or a total that kept moving). */
  detailsComplete: boolean;
}

export interface RecentAverage {
  average: bigint;
}
