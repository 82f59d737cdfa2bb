// The legacy flow (clients before base library 2.21.2): the button's
// encryptedData + iv, decrypted with the session key from jscode2session.
// Each way it can fail has its own reason, because each has a different fix.

import { createDecipheriv } from 'node:crypto';
import { checkWatermark, phoneInfoSchema } from './answers.js';
import { WechatDecryptError } from './errors.js';
import type { PhoneInfo } from './types.js';

export interface DecryptPhoneDataInput {
  /** A secret: the caller should drop it once this returns. */
  sessionKey: string;
  encryptedData: string;
  iv: string;
  /** The app the data must have been encrypted for (watermark.appid). */
  appid: string;
}

const AES_BLOCK = 16;
// Standard and URL-safe alphabets (Buffer decodes both); anything else was damaged on the way.
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function decryptPhoneData(input: DecryptPhoneDataInput): PhoneInfo {
  // Damaged base64 first: it would otherwise surface as a decrypt failure and send
  // people chasing session keys when the fault is in how the data was transported.
  const key = decodeBase64Field('sessionKey', input.sessionKey, (n) => n === AES_BLOCK, 'does not decode to 16 bytes');
  const iv = decodeBase64Field('iv', input.iv, (n) => n === AES_BLOCK, 'does not decode to 16 bytes');
  const data = decodeBase64Field(
    'encryptedData',
    input.encryptedData,
    (n) => n > 0 && n % AES_BLOCK === 0,
    'does not decode to a whole number of 16-byte AES blocks',
  );

  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-128-cbc', key, iv);
    plain = Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    throw sessionKeyMismatch();
  } finally {
    key.fill(0);
  }

  const info = parsePlaintext(plain);
  if (!checkWatermark(info, input.appid)) {
    throw new WechatDecryptError(
      'WATERMARK_MISMATCH',
      `decrypted phone data is for app ${info.watermark.appid}, not ${input.appid}`,
    );
  }
  return info;
}

/**
 * Base64 as some clients send it, wrapped into lines (MIME wraps at 76 characters): the line
 * breaks carry no data. Spaces are not removed: a space is a '+' lost to URL-decoding.
 */
export function unwrapBase64(value: string): string {
  return value.replace(/[\r\n]/g, '');
}

function decodeBase64Field(
  field: string,
  wrapped: string,
  lengthOk: (bytes: number) => boolean,
  lengthProblem: string,
): Buffer {
  const value = unwrapBase64(wrapped);
  if (value.includes(' ')) {
    throw mangled(
      `${field} contains spaces: its '+' characters were most likely turned into spaces by URL-decoding ` +
        `(send it in a JSON body, or encodeURIComponent it in a query string)`,
    );
  }
  const unpadded = value.replace(/=+$/, '');
  if (!BASE64.test(value) || unpadded.length % 4 === 1) {
    throw mangled(`${field} is not valid base64`);
  }
  const bytes = Buffer.from(value, 'base64');
  if (!lengthOk(bytes.length)) {
    throw mangled(
      `${field} ${lengthProblem} (${bytes.length} bytes): characters were probably lost in transport, ` +
        `typically '+' dropped by URL-decoding`,
    );
  }
  return bytes;
}

/**
 * A wrong key still yields a valid-looking padding about once in 256 tries;
 * its plaintext is noise, which is told apart from a wrong but readable
 * plaintext (MALFORMED) by not being UTF-8.
 */
function parsePlaintext(plain: Buffer): PhoneInfo {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw sessionKeyMismatch();
  }

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new WechatDecryptError('MALFORMED', 'decrypted data is not JSON');
  }
  const result = phoneInfoSchema.safeParse(json);
  if (!result.success) {
    const fields = [...new Set(result.error.issues.map((i) => i.path.join('.') || '(root)'))].slice(0, 5);
    throw new WechatDecryptError('MALFORMED', `decrypted data is not phone data (bad fields: ${fields.join(', ')})`);
  }
  return result.data;
}

function mangled(message: string): WechatDecryptError {
  return new WechatDecryptError('BASE64_MANGLED', message);
}

function sessionKeyMismatch(): WechatDecryptError {
  return new WechatDecryptError(
    'SESSION_KEY_MISMATCH',
    'encryptedData does not decrypt with this session key (or iv): the session key has most likely rotated ' +
      'because wx.login was called again after the button; call wx.login before showing the button and send its code',
  );
}
