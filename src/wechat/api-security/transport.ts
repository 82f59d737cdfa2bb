// One call in API security mode: encrypt and sign the request, then check the platform's
// signature on the answer before anything in it is believed, and decrypt it.
//
// Answers WeChat sends unsigned: its refusals at the security layer (40234 and the like) come
// as plain JSON without Wechatmp-* headers. Such a plain errcode answer is passed on as it
// is; an unsigned answer that carries anything else (errcode 0, data, an envelope) is refused.

import { randomBytesPooled } from '../../crypto/random.js';
import { parseJsonObject, type JsonObject, type JsonRequest, type TextAnswer, type WechatHttp } from '../http.js';
import type { WechatEndpoint } from '../types.js';
import { additionalData, asEnvelope, openEnvelope, sealEnvelope, signRequest, signedString, verifyAnswer } from './envelope.js';
import { WechatAnswerUnverifiedError, type AnswerUnverifiedReason } from './errors.js';
import type { ApiSecurityKeys } from './keys.js';

/**
 * How far Wechatmp-TimeStamp may be from this host's clock, either way. WeChat's own sample
 * refuses answers older than 300 s; 300 s is also how long a phone code lives, so an answer
 * older than any code it could be answering is refused. An answer dated more than 300 s ahead
 * is refused too: it cannot be told from a replay aimed at a host whose clock is wrong.
 */
export const ANSWER_WINDOW_SECONDS = 300;

const SECURITY_FIELDS = ['_n', '_appid', '_timestamp'] as const;

export type ApiSecurityNotice =
  /** The answer was verified with Wechatmp-Signature-Deprecated: WeChat is rotating its certificate. */
  | { kind: 'platform_certificate_deprecated'; appid: string; serial: string; newSerial: string | undefined }
  /** An answer was refused; `serial` is the one WeChat named (a public number, not a secret). */
  | { kind: 'answer_refused'; appid: string; reason: AnswerUnverifiedReason; serial: string | undefined };

export interface SecureCall {
  endpoint: WechatEndpoint;
  /** The API's full URL without query, as signed: the base URL's origin and path plus the endpoint's path. */
  urlpath: string;
  /** The endpoint's path as sent (the base URL's path is put in front by the HTTP layer). */
  path: string;
  /** access_token stays in the query string; it is never part of the encrypted fields. */
  query: JsonRequest['query'];
  /** The API's own body fields. */
  fields: Readonly<Record<string, unknown>>;
  appid: string;
  keys: ApiSecurityKeys;
  /** Epoch ms. */
  now: number;
  onNotice?: ((n: ApiSecurityNotice) => void) | undefined;
}

/** Sends the call and resolves with the answer's own fields (the _n/_appid/_timestamp removed). */
export async function securePost(http: WechatHttp, call: SecureCall): Promise<JsonObject> {
  const timestamp = Math.floor(call.now / 1000);
  const { body, headers } = sealRequest(call, timestamp, randomBytesPooled(12), randomBytesPooled(16).toString('base64').replace(/=+$/, ''));
  const answer = await http.requestText(call.endpoint, { method: 'POST', path: call.path, query: call.query, headers, body });
  return openAnswer(call, answer);
}

/** The request's body and Wechatmp-* headers; `iv` and `nonce` are parameters so a test can pin them. */
export function sealRequest(
  call: Pick<SecureCall, 'urlpath' | 'appid' | 'keys' | 'fields'>,
  timestamp: number,
  iv: Buffer,
  nonce: string,
): { body: string; headers: Record<string, string> } {
  const { urlpath, appid, keys } = call;
  // The security fields first, then the API's own: the order of WeChat's sample code.
  const plaintext = JSON.stringify({ _n: nonce, _appid: appid, _timestamp: timestamp, ...withoutSecurityFields(call.fields) });
  const body = sealEnvelope(keys.symmetricKey, plaintext, additionalData(urlpath, appid, timestamp, keys.symmetricKeySn), iv);
  return {
    body,
    headers: {
      'Wechatmp-Appid': appid,
      'Wechatmp-TimeStamp': String(timestamp),
      'Wechatmp-Signature': signRequest(keys.privateKey, signedString(urlpath, appid, timestamp, body)),
      // Names the key that signed; it is not part of the signed string.
      'Wechatmp-Serial': keys.privateKeySn,
    },
  };
}

/** Verifies and decrypts an answer, or passes on a plain refusal; throws WechatAnswerUnverifiedError otherwise. */
export function openAnswer(
  call: Pick<SecureCall, 'endpoint' | 'urlpath' | 'appid' | 'keys' | 'now' | 'onNotice'>,
  answer: TextAnswer,
): JsonObject {
  const { endpoint, urlpath, appid, keys } = call;
  const header = (name: string) => {
    const v = answer.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const refuse = (reason: AnswerUnverifiedReason, serial = header('wechatmp-serial')): never => {
    notify(call, { kind: 'answer_refused', appid, reason, serial });
    throw new WechatAnswerUnverifiedError(endpoint, reason);
  };
  const parsed = parseJsonObject(endpoint, answer.text);

  if (header('wechatmp-signature') === undefined && header('wechatmp-signature-deprecated') === undefined) {
    if (isPlainRefusal(parsed)) return parsed;
    return refuse('missing_signature');
  }

  const serial = header('wechatmp-serial');
  const deprecatedSerial = header('wechatmp-serial-deprecated');
  let signature: string | undefined;
  if (serial === keys.platformCertificateSn) {
    signature = header('wechatmp-signature');
  } else if (deprecatedSerial === keys.platformCertificateSn) {
    signature = header('wechatmp-signature-deprecated');
    notify(call, { kind: 'platform_certificate_deprecated', appid, serial: deprecatedSerial, newSerial: serial });
  } else {
    return refuse('unknown_serial');
  }

  const rawTimestamp = header('wechatmp-timestamp');
  if (rawTimestamp === undefined || !/^\d{1,12}$/.test(rawTimestamp)) return refuse('stale_timestamp');
  const timestamp = Number(rawTimestamp);
  // Verified over the headers' own appid: a wrong one fails here as a bad signature would, and is reported as what it is.
  const answerAppid = header('wechatmp-appid') ?? '';
  if (!signature || !verifyAnswer(keys.platformKey, signedString(urlpath, answerAppid, timestamp, answer.text), signature)) {
    return refuse('bad_signature');
  }
  if (answerAppid !== appid) return refuse('appid_mismatch');
  if (Math.abs(call.now / 1000 - timestamp) > ANSWER_WINDOW_SECONDS) return refuse('stale_timestamp');

  const envelope = asEnvelope(parsed);
  const plaintext = envelope && openEnvelope(keys.symmetricKey, envelope, additionalData(urlpath, appid, timestamp, keys.symmetricKeySn));
  if (plaintext === undefined) return refuse('decrypt_failed');
  let inner: unknown;
  try {
    inner = JSON.parse(plaintext);
  } catch {
    return refuse('decrypt_failed');
  }
  if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return refuse('decrypt_failed');
  const fields = inner as JsonObject;
  if (fields._appid !== appid || Number(fields._timestamp) !== timestamp) return refuse('appid_mismatch');
  return withoutSecurityFields(fields);
}

function notify(call: Pick<SecureCall, 'onNotice'>, notice: ApiSecurityNotice): void {
  try {
    call.onNotice?.(notice);
  } catch {
    // A broken hook must not change what the call answers.
  }
}

/** WeChat's refusals carry an errcode and a message, and nothing an attacker could use to pass off data. */
function isPlainRefusal(answer: JsonObject): boolean {
  const errcode = typeof answer.errcode === 'string' ? Number(answer.errcode) : answer.errcode;
  if (typeof errcode !== 'number' || !Number.isInteger(errcode) || errcode === 0) return false;
  return Object.keys(answer).every((k) => k === 'errcode' || k === 'errmsg');
}

function withoutSecurityFields(fields: Readonly<Record<string, unknown>>): JsonObject {
  const rest: JsonObject = { ...fields };
  for (const f of SECURITY_FIELDS) delete rest[f];
  return rest;
}
