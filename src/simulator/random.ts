import { randomBytes, randomInt } from 'node:crypto';

/**
 * Unguessable identifiers in WeChat's shapes. Everything comes from the
 * CSPRNG: tests of "another app's token" or "a guessed code" rely on it.
 */

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const URL_SAFE = `${ALNUM}-_`;

function randomFrom(alphabet: string, length: number): string {
  // Rejection sampling keeps every character equally likely.
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte >= limit) continue;
      out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/** An access token: 100–150 URL-safe characters, length varying like WeChat's. */
export function newAccessToken(): string {
  return randomFrom(URL_SAFE, 100 + randomInt(51));
}

/** A phone code from the button: 64 lowercase hex characters. */
export function newPhoneCode(): string {
  return randomBytes(32).toString('hex');
}

/** A wx.login code: 32 characters of [A-Za-z0-9]. */
export function newLoginCode(): string {
  return randomFrom(ALNUM, 32);
}

/** An openid in WeChat's usual shape: 28 characters starting with "o". */
export function newOpenid(): string {
  return `o${randomFrom(URL_SAFE, 27)}`;
}

/** A session key: 16 random bytes (AES-128 key). */
export function newSessionKey(): Buffer {
  return randomBytes(16);
}
