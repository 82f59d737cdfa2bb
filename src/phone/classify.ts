import { AccessTokenUnavailableError } from '../wechat/index.js';
import { WechatApiError, WechatDecryptError, WechatUpstreamError } from '../wechat/index.js';
import { TimeoutError } from '../util/timeout.js';
import {
  AppMismatchError,
  Base64MangledError,
  ExchangeFailure,
  GatewayMisconfiguredError,
  InvalidCodeError,
  OutcomeUnknownError,
  RateLimitedError,
  STORED_FAILURE_MESSAGES,
  SessionKeyMismatchError,
  UpstreamUnavailableError,
  WatermarkMismatchError,
} from './errors.js';

/**
 * What the WeChat adapter and the token layer throw, as the outcomes clients see, and whether the
 * code may still be unspent.
 */

// Transport failures that happen before a request is sent: the code cannot have reached WeChat.
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
// Access-token fetches: the code is not part of them, so however they fail, the code is unspent.
const TOKEN_ENDPOINTS: ReadonlySet<string> = new Set(['stable_token', 'token']);

export interface Classified {
  failure: ExchangeFailure;
  /** WeChat certainly did not spend the code, so the same session may send it again. */
  codeUnspent: boolean;
}

/**
 * After an earlier attempt was lost, WeChat's "invalid code" may be that attempt's doing: WeChat
 * answers 40029 for a code already used as for a bad one. Saying the user's code was bad would be
 * false; what is known is only that the code is gone.
 */
function afterLostAttempt(): Classified {
  return {
    failure: new OutcomeUnknownError(
      'an earlier attempt at this code ended without an answer (its gateway instance stopped, or could not record the outcome) and may have used it; WeChat now rejects the code: ask the user to tap again',
    ),
    codeUnspent: false,
  };
}

/**
 * WeChat refused the form of the gateway's request (47001, 41001) before reading the code: the
 * code is unspent, and only operators can fix the request.
 */
function malformedRequest(e: WechatApiError, sendOpenid: boolean): GatewayMisconfiguredError {
  if (e.errcode === 41001) {
    return new GatewayMisconfiguredError(
      `WeChat says the gateway's request carried no access token (errcode 41001): operators must check the gateway's WeChat settings; the code was not used`,
    );
  }
  // Users report 47001 when openid is in the body, so the setting that puts it there is the first suspect.
  const openid = sendOpenid
    ? '; `wechat.sendOpenid` is on, and apps report this error when the openid is sent: try turning it off'
    : '';
  return new GatewayMisconfiguredError(
    `WeChat could not read the gateway's request (errcode ${e.errcode}, data format error): the request is malformed, so operators must fix the gateway${openid}. The code was not used: the same session may send it again once fixed`,
  );
}

/**
 * Maps what the adapter and token layer throw to the outcomes clients see; null for the
 * unexpected. `earlierAttemptLost`: the claim was taken over from an attempt that ended without an
 * outcome; `sendOpenid`: the adapter sends the session's openid (config `wechat.sendOpenid`).
 */
export function classify(e: unknown, context: { earlierAttemptLost: boolean; sendOpenid: boolean }): Classified | null {
  if (context.earlierAttemptLost && e instanceof WechatApiError && e.kind === 'invalid_code') return afterLostAttempt();
  const unspent = (failure: ExchangeFailure) => ({ failure, codeUnspent: true });
  const spent = (failure: ExchangeFailure) => ({ failure, codeUnspent: false });
  if (e instanceof ExchangeFailure) return spent(e);
  if (e instanceof WechatApiError) {
    switch (e.kind) {
      case 'invalid_code':
        return spent(
          new InvalidCodeError(
            `WeChat rejected the code (errcode ${e.errcode}): it is expired, already used, malformed or not a phone-number code (a wx.login code is a common mistake)`,
          ),
        );
      case 'app_mismatch':
        return spent(new AppMismatchError(`WeChat says the code belongs to another mini program (errcode ${e.errcode})`));
      case 'rate_limited':
        return unspent(new RateLimitedError(`WeChat is limiting calls (errcode ${e.errcode}); back off and retry`));
      case 'busy':
      case 'token':
        return unspent(new UpstreamUnavailableError(`WeChat is unavailable (errcode ${e.errcode}); retry shortly`));
      case 'credentials':
      case 'ip_blocked':
      case 'account_frozen':
        return unspent(
          new GatewayMisconfiguredError(`WeChat refused the gateway's credentials for this app (errcode ${e.errcode}); operators must fix the configuration`),
        );
      case 'malformed_request':
        return unspent(malformedRequest(e, context.sendOpenid));
      case 'risk_blocked':
        return spent(new InvalidCodeError(`WeChat blocked this login as high-risk (errcode ${e.errcode})`));
      default:
        // A token fetch that failed oddly never carried the code.
        if (TOKEN_ENDPOINTS.has(e.endpoint)) return unspent(new UpstreamUnavailableError(`WeChat is unavailable (errcode ${e.errcode}); retry shortly`));
        return spent(new OutcomeUnknownError(`WeChat answered an unexpected error (errcode ${e.errcode}); ask the user to tap again`));
    }
  }
  if (e instanceof WechatUpstreamError) {
    // A 5xx means no answer from WeChat's application (the adapter already retried it, as the spec asks).
    // A broken or timed-out token fetch happened before the code was sent (or after WeChat refused
    // the token, which leaves the code unspent): whatever the failure, the code never reached WeChat.
    if (e.kind === 'http_status' || (e.detail !== undefined && NEVER_SENT.has(e.detail)) || TOKEN_ENDPOINTS.has(e.endpoint)) {
      return unspent(new UpstreamUnavailableError(`WeChat could not be reached (${e.kind}); retry shortly`));
    }
    return spent(
      new OutcomeUnknownError(`WeChat did not answer properly (${e.kind}): the code may have been spent, so it is not sent again; ask the user to tap again`),
    );
  }
  if (e instanceof AccessTokenUnavailableError) return unspent(new UpstreamUnavailableError('no WeChat access token is available right now; retry shortly'));
  if (e instanceof TimeoutError) {
    return spent(new OutcomeUnknownError('the exchange took too long: the code may have been spent, so it is not sent again; ask the user to tap again'));
  }
  if (e instanceof WechatDecryptError) {
    switch (e.reason) {
      case 'BASE64_MANGLED':
        return spent(new Base64MangledError(e.message));
      case 'WATERMARK_MISMATCH':
        return spent(new WatermarkMismatchError(STORED_FAILURE_MESSAGES.WATERMARK_MISMATCH));
      case 'SESSION_KEY_MISMATCH':
        return spent(
          new SessionKeyMismatchError(
            'the encrypted data does not decrypt with this login: the session key rotated (wx.login was called again after the button), so get new encryptedData and iv',
          ),
        );
      default:
        return spent(new SessionKeyMismatchError('the encrypted data decrypted to something that is not a phone number'));
    }
  }
  return null;
}
