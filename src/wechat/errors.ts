// Typed errors of the WeChat adapter.
//
// Invariant: no access token, secret, code, session key or phone number ever
// reaches a message or a property of these errors. Messages name the endpoint,
// the errcode and WeChat's errmsg (redacted by the caller, see redactSecrets).

import type { WechatEndpoint } from './types.js';

export type WechatErrorKind =
  | 'busy'
  | 'token'
  | 'rate_limited'
  | 'invalid_code'
  | 'app_mismatch'
  | 'credentials'
  | 'ip_blocked'
  | 'risk_blocked'
  | 'account_frozen'
  | 'bad_request'
  | 'malformed_request'
  | 'unknown';

export interface ErrcodeInfo {
  kind: WechatErrorKind;
  /** Whether the same call may succeed later (for 'token': after the token is refreshed). */
  retryable: boolean;
  description: string;
}

/** Every errcode the gateway knows. 40013 is endpoint-dependent: see classifyErrcode. */
function apiSecurity(description: string): ErrcodeInfo {
  return { kind: 'credentials', retryable: false, description: `API security: ${description}` };
}

export const WECHAT_ERRCODES: Readonly<Record<number, ErrcodeInfo>> = {
  [-1]: { kind: 'busy', retryable: true, description: 'WeChat system busy, try again later' },
  40001: { kind: 'token', retryable: true, description: 'access token invalid or not the latest' },
  40002: { kind: 'credentials', retryable: false, description: 'invalid grant_type' },
  40013: { kind: 'credentials', retryable: false, description: 'invalid appid' },
  40014: { kind: 'token', retryable: true, description: 'invalid access token' },
  40029: { kind: 'invalid_code', retryable: false, description: 'invalid code (expired, already used, malformed or another app\'s; on getuserphonenumber often a wx.login code sent by mistake)' },
  40097: { kind: 'bad_request', retryable: false, description: 'invalid request arguments' },
  40125: { kind: 'credentials', retryable: false, description: 'invalid app secret' },
  40163: { kind: 'invalid_code', retryable: false, description: 'code already used' },
  40164: { kind: 'ip_blocked', retryable: false, description: 'caller IP not in the app\'s whitelist' },
  40226: { kind: 'risk_blocked', retryable: false, description: 'high-risk user, login blocked' },
  40243: { kind: 'credentials', retryable: false, description: 'app secret frozen' },
  // The caller's own request was refused before WeChat read any of it: nothing (no code) was used.
  41001: { kind: 'malformed_request', retryable: false, description: 'access_token missing from the request' },
  41002: { kind: 'credentials', retryable: false, description: 'appid missing' },
  41004: { kind: 'credentials', retryable: false, description: 'app secret missing' },
  42001: { kind: 'token', retryable: true, description: 'access token expired' },
  43002: { kind: 'bad_request', retryable: false, description: 'HTTP method not allowed (must be POST)' },
  45009: { kind: 'rate_limited', retryable: false, description: 'daily call limit reached' },
  45011: { kind: 'rate_limited', retryable: true, description: 'calling too often, back off' },
  47001: {
    kind: 'malformed_request',
    retryable: false,
    description: 'data format error: the request body is not what WeChat reads (not JSON, no code, or a field it refuses)',
  },
  50004: { kind: 'account_frozen', retryable: false, description: 'account frozen' },
  50007: { kind: 'account_frozen', retryable: false, description: 'account frozen' },
  89503: { kind: 'ip_blocked', retryable: false, description: 'call from this IP needs an admin\'s confirmation' },
  89506: { kind: 'ip_blocked', retryable: false, description: 'an admin refused this IP (retry after 24 h)' },
  89507: { kind: 'ip_blocked', retryable: false, description: 'an admin refused this IP (retry after 1 h)' },
  // API security mode: WeChat turned the request away at its security layer before reading it, so
  // the code was not spent; the fix is the gateway's keys, key numbers or clock.
  40230: apiSecurity('Wechatmp-Serial header missing'),
  40231: apiSecurity('Wechatmp-TimeStamp header missing'),
  40232: apiSecurity('Wechatmp-Signature header missing'),
  40233: apiSecurity('Wechatmp-Appid header missing (the app has API security on: configure apiSecurity for it)'),
  40234: apiSecurity('invalid signature (check privateKey and privateKeySn against the public key uploaded in the console)'),
  40235: apiSecurity('invalid encryption (check symmetricKey and symmetricKeySn)'),
  40236: apiSecurity('invalid Wechatmp-Appid'),
  40237: apiSecurity("Wechatmp-Appid does not match the access token's app"),
  40238: apiSecurity('no symmetric key set in the console'),
  40239: apiSecurity('no public key uploaded in the console'),
  40240: apiSecurity("request timestamp expired (check this host's clock)"),
  // The charge (usage) APIs' own codes.
  10120002: { kind: 'bad_request', retryable: false, description: 'invalid parameters (spuId, offset and limit 1..20 are required)' },
  10120700: { kind: 'bad_request', retryable: false, description: 'invalid spuId' },
  10122000: { kind: 'bad_request', retryable: false, description: 'no recent usage data for this product' },
};

const UNKNOWN_ERRCODE: ErrcodeInfo = { kind: 'unknown', retryable: false, description: 'unknown WeChat error code' };

/** On the phone-number endpoint 40013 means the code was issued to another app, not that our appid is bad. */
const APP_MISMATCH_40013: ErrcodeInfo = {
  kind: 'app_mismatch',
  retryable: false,
  description: 'the code belongs to another app (invalid appid)',
};

export function classifyErrcode(errcode: number, endpoint: WechatEndpoint): ErrcodeInfo {
  if (errcode === 40013 && endpoint === 'getuserphonenumber') return APP_MISMATCH_40013;
  return WECHAT_ERRCODES[errcode] ?? UNKNOWN_ERRCODE;
}

/** WeChat answered with a non-zero errcode. */
export class WechatApiError extends Error {
  override readonly name = 'WechatApiError';
  readonly errcode: number;
  readonly errmsg: string;
  readonly endpoint: WechatEndpoint;
  readonly kind: WechatErrorKind;
  readonly retryable: boolean;
  readonly description: string;

  /** `errmsg` must already be redacted (redactSecrets) by whoever knows the call's secrets. */
  constructor(endpoint: WechatEndpoint, errcode: number, errmsg: string) {
    const info = classifyErrcode(errcode, endpoint);
    super(`WeChat ${endpoint} failed with errcode ${errcode} (${info.description})${errmsg ? `: ${errmsg}` : ''}`);
    this.errcode = errcode;
    this.errmsg = errmsg;
    this.endpoint = endpoint;
    this.kind = info.kind;
    this.retryable = info.retryable;
    this.description = info.description;
  }
}

export function isTokenError(e: unknown): e is WechatApiError {
  return e instanceof WechatApiError && e.kind === 'token';
}

/** 'unverified': an answer in API security mode whose platform signature, serial or timestamp did not check out. */
export type UpstreamFailureKind = 'http_status' | 'timeout' | 'network' | 'bad_json' | 'unverified';

/**
 * WeChat could not be reached or did not answer anything usable. Always
 * retryable from the caller's point of view; the client itself retries only
 * HTTP 5xx (see client.ts for why never timeouts).
 */
export class WechatUpstreamError extends Error {
  override readonly name = 'WechatUpstreamError';
  readonly endpoint: WechatEndpoint;
  readonly kind: UpstreamFailureKind;
  /** Same as `kind`: the standard Error `cause` slot, so generic handlers see why too. */
  override readonly cause: UpstreamFailureKind;
  readonly status?: number;
  /** The transport's error code (e.g. ECONNREFUSED), when there is one: tells "never sent" from "maybe sent". */
  readonly detail?: string;
  readonly retryable = true as const;

  /** `detail` is adapter-made text (an error code, a field path), never a raw upstream message or URL. */
  constructor(endpoint: WechatEndpoint, kind: UpstreamFailureKind, opts: { status?: number; detail?: string } = {}) {
    const status = opts.status === undefined ? '' : ` HTTP ${opts.status}`;
    const detail = opts.detail ? `: ${opts.detail}` : '';
    super(`WeChat ${endpoint} upstream failure (${kind})${status}${detail}`);
    this.endpoint = endpoint;
    this.kind = kind;
    this.cause = kind;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.detail !== undefined) this.detail = opts.detail;
  }
}

export type DecryptFailureReason = 'SESSION_KEY_MISMATCH' | 'BASE64_MANGLED' | 'MALFORMED' | 'WATERMARK_MISMATCH';

/** The legacy encryptedData flow failed; `reason` says which way. */
export class WechatDecryptError extends Error {
  override readonly name = 'WechatDecryptError';
  readonly reason: DecryptFailureReason;

  constructor(reason: DecryptFailureReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

const MAX_ERRMSG_LENGTH = 300;
// Shorter values would redact ordinary words; real tokens, codes and secrets are far longer.
const MIN_SECRET_LENGTH = 4;

/**
 * Make WeChat's errmsg safe to show: remove every secret of the call (WeChat,
 * or a proxy in front of it, may echo its input), strip query strings from
 * URLs, and bound the length.
 */
export function redactSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= MIN_SECRET_LENGTH) out = out.split(s).join('[redacted]');
  }
  out = out.replace(/(https?:\/\/[^\s?#]*)\?[^\s#]*/gi, '$1?[redacted]');
  return out.length > MAX_ERRMSG_LENGTH ? `${out.slice(0, MAX_ERRMSG_LENGTH)}…` : out;
}
