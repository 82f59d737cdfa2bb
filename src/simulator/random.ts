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

const HEX = '0123456789abcdef';
const HINT_CHARS = `${ALNUM}_`;

/**
 * WeChat's request id, as errmsg ends with it: three groups of 8 hex digits, the first the
 * Unix time in seconds (632d16be is 2022-09-23, the day of the answer that carried it).
 */
export function newRid(nowMs: number): string {
  const seconds = Math.max(0, Math.floor(nowMs / 1000)).toString(16).padStart(8, '0').slice(-8);
  return `${seconds}-${randomFrom(HEX, 8)}-${randomFrom(HEX, 8)}`;
}

/** The bracketed hint some errmsgs carry before the rid, e.g. "hElexSDNR-XiBFgA". */
export function newHint(): string {
  return `${randomFrom(HINT_CHARS, 9)}-${randomFrom(HINT_CHARS, 6)}`;
}
