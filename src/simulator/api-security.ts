import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SimInputError, wechatError } from './errors.js';
import { jsonResponse, type SimResponse } from './http-util.js';

/**
 * WeChat's API security mode (安全鉴权模式) as the platform runs it, for apps registered with
 * keys: the request must be signed with the app's RSA key (PSS, salt 32) over
 * `urlpath\nappid\ntimestamp\nbody` and encrypted with the console's symmetric key
 * (AES-256-GCM, additional data `urlpath|appid|timestamp|sn`); the answer is encrypted the
 * same way and signed with the platform's key. Written apart from the adapter's code on
 * purpose, so one cannot hide the other's mistakes.
 *
 * It wraps a WeChat route rather than living in it: the route keeps answering the API itself,
 * this layer only opens the request and seals the answer.
 */

/** The APIs the simulator serves in this mode (WeChat lists getuserphonenumber among those that support it). */
const SECURED_PATHS: ReadonlySet<string> = new Set(['/wxa/business/getuserphonenumber']);

/** How far a request's timestamp may be from WeChat's clock. WeChat does not publish its window: 300 s, as in its sample code. */
const REQUEST_WINDOW_SECONDS = 300;

/**
 * Refusals at the security layer (the guide's error table). Only 40234's errmsg has been seen
 * in a capture ("invalid signature"); the others are worded after the table's error names.
 */
const REFUSALS: Readonly<Record<number, string>> = {
  40230: 'missing Wechatmp-Serial',
  40231: 'missing Wechatmp-TimeStamp',
  40232: 'missing Wechatmp-Signature',
  40233: 'missing Wechatmp-Appid',
  40234: 'invalid signature',
  40235: 'invalid encrypt',
  40236: 'invalid Wechatmp-Appid',
  40237: 'Wechatmp-Appid and access_token not match',
  40238: 'developer symmetric key not exist',
  40239: 'developer public key not exist',
  40240: 'expired Wechatmp-TimeStamp',
};

/** What the console holds for an app: what the developer gave it, and the platform's own key. */
export interface SimApiSecurityInput {
  /** The API symmetric key, base64 (32 bytes). */
  symmetricKey: string;
  symmetricKeySn: string;
  /** The app's RSA public key in PEM, as uploaded (a private key's PEM is accepted too: its public half is taken). */
  publicKey: string;
  publicKeySn: string;
  /** The number of the platform certificate the console hands out; default: a new one. */
  platformCertificateSn?: string;
  /** The platform's RSA private key in PEM, for tests that need to know it; default: a new key pair. */
  platformPrivateKey?: string;
}

/** What the console shows and lets the developer download (nothing secret). */
export interface SimApiSecuritySummary {
  symmetricKeySn: string;
  publicKeySn: string;
  platformCertificateSn: string;
  /** The platform's public key in PEM (SPKI): what the gateway verifies answers with. */
  platformPublicKey: string;
}

interface AppSecurity {
  symmetricKey: Buffer;
  symmetricKeySn: string;
  publicKey: KeyObject;
  publicKeySn: string;
  platformKey: KeyObject;
  platformCertificateSn: string;
}

export class ApiSecurityBook {
  private readonly apps = new Map<string, AppSecurity>();

  /** Validates without storing anything: a registration with bad keys changes nothing. */
  prepare(input: unknown): AppSecurity | undefined {
    if (input === undefined || input === null) return undefined;
    if (typeof input !== 'object') throw new SimInputError('apiSecurity must be an object');
    const i = input as Partial<Record<keyof SimApiSecurityInput, unknown>>;
    const symmetricKey = typeof i.symmetricKey === 'string' && /^[A-Za-z0-9+/]{43}=?$/.test(i.symmetricKey) ? Buffer.from(i.symmetricKey, 'base64') : undefined;
    if (symmetricKey?.length !== 32) throw new SimInputError('apiSecurity.symmetricKey must be 32 bytes, base64-encoded');
    const publicKey = rsaKey(i.publicKey, 'apiSecurity.publicKey', (pem) => createPublicKey(pem));
    const platformKey =
      i.platformPrivateKey === undefined
        ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
        : rsaKey(i.platformPrivateKey, 'apiSecurity.platformPrivateKey', (pem) => createPrivateKey(pem));
    return {
      symmetricKey,
      symmetricKeySn: keyNumber(i.symmetricKeySn, 'apiSecurity.symmetricKeySn'),
      publicKey,
      publicKeySn: keyNumber(i.publicKeySn, 'apiSecurity.publicKeySn'),
      platformKey,
      platformCertificateSn: i.platformCertificateSn === undefined ? randomBytes(16).toString('hex') : keyNumber(i.platformCertificateSn, 'apiSecurity.platformCertificateSn'),
    };
  }

  /** Turns the mode on for the app with the prepared keys, or off (undefined). */
  set(appid: string, security: AppSecurity | undefined): SimApiSecuritySummary | undefined {
    if (!security) {
      this.apps.delete(appid);
      return undefined;
    }
    this.apps.set(appid, security);
    return this.summary(appid);
  }

  get(appid: string): AppSecurity | undefined {
    return this.apps.get(appid);
  }

  summary(appid: string): SimApiSecuritySummary | undefined {
    const s = this.apps.get(appid);
    if (!s) return undefined;
    return {
      symmetricKeySn: s.symmetricKeySn,
      publicKeySn: s.publicKeySn,
      platformCertificateSn: s.platformCertificateSn,
      platformPublicKey: createPublicKey(s.platformKey).export({ type: 'spki', format: 'pem' }).toString(),
    };
  }
}

function rsaKey(value: unknown, name: string, parse: (pem: string) => KeyObject): KeyObject {
  if (typeof value !== 'string') throw new SimInputError(`${name} must be a PEM string`);
  let key: KeyObject;
  try {
    key = parse(value);
  } catch {
    throw new SimInputError(`${name} is not a PEM key`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw new SimInputError(`${name} must be an RSA key`);
  return key;
}

function keyNumber(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(value)) throw new SimInputError(`${name} must be a key number (letters, digits, - or _)`);
  return value;
}

// --- the wrapper around a WeChat route ----------------------------------------------------

/** What the wrapper needs of the simulator's state. */
export interface SecuredState {
  readonly apiSecurity: ApiSecurityBook;
  now(): number;
  checkToken(accessToken: string | null | undefined): { ok: true; appid: string } | { ok: false; errcode: number };
}

export interface SecuredRequest {
  method: string;
  query: URLSearchParams;
  body: string;
  headers?: IncomingHttpHeaders;
}

type Route<S, R> = (state: S, req: R) => SimResponse;

/**
 * The route, behind the security layer for the paths WeChat serves in this mode. A call for an
 * app without keys goes straight through; an app with keys must be called in the mode.
 */
export function withApiSecurity<S extends SecuredState, R extends SecuredRequest>(path: string, route: Route<S, R>): Route<S, R> {
  if (!SECURED_PATHS.has(path)) return route;
  return (state, req) => {
    const header = (name: string) => {
      const v = req.headers?.[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const appid = header('wechatmp-appid');
    const token = state.checkToken(req.query.get('access_token'));
    const tokenAppSecured = token.ok && state.apiSecurity.get(token.appid) !== undefined;
    if (req.method !== 'POST' || (appid === undefined && !tokenAppSecured)) return route(state, req);

    // Credentials first, as on the plain route.
    if (!token.ok) return jsonResponse(200, wechatError(token.errcode), REFUSAL_TYPE);
    if (appid === undefined) return refusal(40233);
    if (appid !== token.appid) return refusal(40237);
    const keys = state.apiSecurity.get(appid);
    if (!keys) return refusal(40238);
    const rawTimestamp = header('wechatmp-timestamp');
    if (rawTimestamp === undefined) return refusal(40231);
    const signature = header('wechatmp-signature');
    if (signature === undefined) return refusal(40232);
    const timestamp = /^\d{1,12}$/.test(rawTimestamp) ? Number(rawTimestamp) : NaN;
    if (!(Math.abs(state.now() / 1000 - timestamp) <= REQUEST_WINDOW_SECONDS)) return refusal(40240);

    const urlpath = `http://${header('host') ?? '127.0.0.1'}${path}`;
    if (!verifiesRequest(keys.publicKey, `${urlpath}\n${appid}\n${timestamp}\n${req.body}`, signature)) return refusal(40234);
    const fields = openRequest(keys, req.body, `${urlpath}|${appid}|${timestamp}|${keys.symmetricKeySn}`);
    if (!fields || fields._appid !== appid || fields._timestamp !== timestamp) return refusal(40235);
    const { _n, _appid, _timestamp, ...apiFields } = fields;

    const answer = route(state, { ...req, body: JSON.stringify(apiFields) });
    return sealAnswer(keys, answer, urlpath, appid, Math.floor(state.now() / 1000));
  };
}

const REFUSAL_TYPE = 'application/json; encoding=utf-8';

function refusal(errcode: number): SimResponse {
  return jsonResponse(200, { errcode, errmsg: REFUSALS[errcode] ?? 'api security error' }, REFUSAL_TYPE);
}

/** WeChat's guide: the request's signature is PSS with a 32-byte salt, and is checked as such. */
function verifiesRequest(publicKey: KeyObject, message: string, signature: string): boolean {
  try {
    return verify('sha256', Buffer.from(message), { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

function openRequest(keys: AppSecurity, body: string, aad: string): Record<string, unknown> | undefined {
  try {
    const { iv, data, authtag } = JSON.parse(body) as Record<string, unknown>;
    if (typeof iv !== 'string' || typeof data !== 'string' || typeof authtag !== 'string') return undefined;
    const decipher = createDecipheriv('aes-256-gcm', keys.symmetricKey, Buffer.from(iv, 'base64'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(authtag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
    const value: unknown = JSON.parse(plain);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The route's answer encrypted under the symmetric key and signed with the platform's key. */
function sealAnswer(keys: AppSecurity, answer: SimResponse, urlpath: string, appid: string, timestamp: number): SimResponse {
  let fields: unknown;
  try {
    fields = JSON.parse(answer.body);
  } catch {
    return answer; // not an API answer (an error page): passed on as it is
  }
  const plaintext = JSON.stringify({ _n: randomBytes(16).toString('base64').replace(/=+$/, ''), _appid: appid, _timestamp: timestamp, ...(fields as object) });
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.symmetricKey, iv, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(`${urlpath}|${appid}|${timestamp}|${keys.symmetricKeySn}`));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const body = JSON.stringify({ iv: iv.toString('base64'), data: data.toString('base64'), authtag: cipher.getAuthTag().toString('base64') });
  const signature = sign('sha256', Buffer.from(`${urlpath}\n${appid}\n${timestamp}\n${body}`), {
    key: keys.platformKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  }).toString('base64');
  return {
    status: answer.status,
    contentType: answer.contentType,
    body,
    headers: {
      'Wechatmp-Appid': appid,
      'Wechatmp-TimeStamp': String(timestamp),
      'Wechatmp-Serial': keys.platformCertificateSn,
      'Wechatmp-Signature': signature,
    },
  };
}

/**
 * A sandbox registers the gateway's configured apps with its simulator: the console's side of
 * the gateway's keys (the symmetric key, the public half of the app's key). The platform key is
 * the simulator's own, which the sandbox gateway then verifies with instead of WeChat's.
 */
export function consoleKeysOf(keys: {
  symmetricKey: KeyObject;
  symmetricKeySn: string;
  privateKey: KeyObject;
  privateKeySn: string;
  platformCertificateSn: string;
}): SimApiSecurityInput {
  return {
    symmetricKey: keys.symmetricKey.export().toString('base64'),
    symmetricKeySn: keys.symmetricKeySn,
    publicKey: createPublicKey(keys.privateKey).export({ type: 'spki', format: 'pem' }).toString(),
    publicKeySn: keys.privateKeySn,
    platformCertificateSn: keys.platformCertificateSn,
  };
}
