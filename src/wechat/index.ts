// The WeChat adapter's public surface; import from here, not from the files.

export { createWechatClient, checkWatermark, worstCaseCallMs, USAGE_PAGE_LIMIT } from './client.js';
export type { WechatClient, WechatClientOptions, WechatCallEvent, WechatCallOutcome } from './client.js';
export { decryptPhoneData, unwrapBase64 } from './decrypt.js';
export type { DecryptPhoneDataInput } from './decrypt.js';
export {
  WechatApiError,
  WechatUpstreamError,
  WechatDecryptError,
  WECHAT_ERRCODES,
  classifyErrcode,
  isTokenError,
  redactSecrets,
} from './errors.js';
export type { WechatErrorKind, ErrcodeInfo, UpstreamFailureKind, DecryptFailureReason } from './errors.js';
export { WECHAT_ENDPOINT_PATHS } from './types.js';
export type {
  WechatEndpoint,
  AccessTokenResult,
  PhoneInfo,
  Code2SessionResult,
  UsageDetail,
  UsagePage,
  UsageSummary,
  RecentAverage,
} from './types.js';
