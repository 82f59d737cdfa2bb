import type { AppConfig } from '../config.js';
import type { DataKeys } from '../crypto/keys.js';
import type { PhoneInfo, WechatClient } from '../wechat/index.js';
import { decryptPhoneData, unwrapBase64 } from '../wechat/index.js';
import { Base64MangledError, InvalidCodeError, InvalidInputError } from './errors.js';
import { checkCode, checkPurpose } from './input.js';
import type { CheckedInput, ExchangeAttempt, LegacyDecryptInput } from './request.js';

/**
 * The legacy flow: a wx.login code, and the encryptedData and iv the button gave, decrypted with
 * the session key WeChat returns for that login.
 */

type LegacyInput = Extract<CheckedInput, { flow: 'legacy' }>;

export function checkLegacyInput(input: LegacyDecryptInput, app: AppConfig): LegacyInput {
  const loginCode = checkCode(input.loginCode, 'loginCode');
  const purpose = checkPurpose(input.purpose, app);
  // Line-wrapped base64 is the same data: unwrapped once, so checks, key and decryption agree.
  return { flow: 'legacy', purpose, loginCode, encryptedData: unwrapped(input.encryptedData), iv: unwrapped(input.iv) };
}

/** Checks whose errors rank below a withdrawn consent; made before the login code is spent: mangled base64 can never decrypt. */
export function checkLegacyData(input: LegacyInput): void {
  checkBase64(input.encryptedData, 'encryptedData', wholeBlocks);
  checkBase64(input.iv, 'iv', oneBlock);
}

/** The data is part of the claim's key: the same login code with other data is another question, not a replay. */
export function legacyCodeHash(keys: DataKeys, input: LegacyInput): string {
  return keys.codeHash('legacy', input.loginCode, input.encryptedData, input.iv);
}

export async function legacyDecrypt(wechat: WechatClient, attempt: ExchangeAttempt & LegacyInput): Promise<PhoneInfo> {
  const { app, session } = attempt;
  const login = await wechat.code2Session({ appid: app.appid, secret: app.secret, jsCode: attempt.loginCode });
  if (session.appid === app.appid && login.openid !== session.subject) {
    throw new InvalidCodeError('the login code belongs to another user than this session');
  }
  return decryptPhoneData({ sessionKey: login.sessionKey, encryptedData: attempt.encryptedData, iv: attempt.iv, appid: app.appid });
}

/** The input's types are only what GraphQL promises: anything that is not a string is left for checkBase64 to refuse. */
function unwrapped<T>(value: T): T {
  return typeof value === 'string' ? (unwrapBase64(value) as T) : value;
}

const wholeBlocks = (bytes: number) => bytes > 0 && bytes % 16 === 0;
const oneBlock = (bytes: number) => bytes === 16;

function checkBase64(value: unknown, field: string, lengthOk: (bytes: number) => boolean): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidInputError(`${field} is required`, field);
  if (value.length > 16_384) throw new InvalidInputError(`${field} is too long`, field);
  const clean = /^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length % 4 === 0;
  if (!clean || !lengthOk(Buffer.from(value, 'base64').length)) {
    const hint = / /.test(value) ? ' (it contains spaces: "+" characters were probably URL-decoded)' : '';
    throw new Base64MangledError(`${field} is not intact base64${hint}; send it exactly as the button gave it, URL-encoded if in a query string`);
  }
}
