// The WeChat adapter's public surface; import from here, not from the files.

export { createWechatClient, checkWatermark, worstCaseCallMs, USAGE_PAGE_LIMIT } from './client.js';
export type { WechatClient, WechatClientOptions, WechatCallEvent, WechatCallOutcome, WechatApiSecurityOptions } from './client.js';
export { parseApiSecurityKeys, API_SECURITY_ALGORITHMS, API_SECURITY_SIGNATURE_ALGORITHMS } from './api-security/keys.js';
export type { ApiSecurityKeys, ApiSecurityMaterial, ApiSecurityField } from './api-security/keys.js';
export { WechatAnswerUnverifiedError } from './api-security/errors.js';
export type { AnswerUnverifiedReason } from './api-security/errors.js';
export { ANSWER_WINDOW_SECONDS } from './api-security/transport.js';
export type { ApiSecurityNotice } from './api-security/transport.js';
export { logApiSecurityNotices } from './api-security/notices.js';
export { AccessTokenProvider, AccessTokenUnavailableError, UnknownAppError } from './access-tokens.js';
export type { AccessTokenProviderOptions, AccessTokenGrant, AppCredentials, AccessTokenEvents, RequestAccessTokens } from './access-tokens.js';
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
