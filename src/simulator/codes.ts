import { newLoginCode, newPhoneCode, newSessionKey } from './random.js';

/**
 * Phone codes (from the button) and login codes (from wx.login): both valid
 * 5 minutes from issue and good for one use.
 */

export const CODE_TTL_MS = 300_000;
const PHONE_CODE_RE = /^[0-9a-f]{64}$/;
// Expired codes answer the same error as unknown ones, so they can be dropped.
const SWEEP_EVERY = 2_000;

export interface PhoneCodeRecord {
  appid: string;
  purePhoneNumber: string;
  countryCode: string;
  openid: string | undefined;
  mintedAt: number;
  expiresAt: number;
  used: boolean;
}

export interface PhoneInfo {
  phoneNumber: string;
  purePhoneNumber: string;
  /** A string, as production answers carry it ("86"); only the documentation's example shows a number. */
  countryCode: string;
  watermark: { timestamp: number; appid: string };
}

export type PhoneExchange = { ok: true; phoneInfo: PhoneInfo } | { ok: false; errcode: 40013 | 40029 };

/** "+85261234567" outside mainland China (no space), the bare number inside it. */
export function displayPhoneNumber(purePhoneNumber: string, countryCode: string): string {
  return countryCode === '86' ? purePhoneNumber : `+${countryCode}${purePhoneNumber}`;
}

export class PhoneCodeBook {
  private readonly codes = new Map<string, PhoneCodeRecord>();
  private mintsSinceSweep = 0;

  mint(record: Omit<PhoneCodeRecord, 'expiresAt' | 'used'>): { code: string; expiresAt: number } {
    if (++this.mintsSinceSweep >= SWEEP_EVERY) this.sweep(record.mintedAt);
    let code = newPhoneCode();
    while (this.codes.has(code)) code = newPhoneCode();
    const expiresAt = record.mintedAt + CODE_TTL_MS;
    this.codes.set(code, { ...record, expiresAt, used: false });
    return { code, expiresAt };
  }

  /**
   * A failed attempt leaves the code as it was: only a successful exchange
   * uses it up. Another app's code is 40013 only while it could still be
   * exchanged; once expired or used it is just an invalid code.
   */
  exchange(appid: string, code: unknown, openid: string | undefined, now: number): PhoneExchange {
    if (typeof code !== 'string' || !PHONE_CODE_RE.test(code)) return { ok: false, errcode: 40029 };
    const record = this.codes.get(code);
    if (!record || record.used || now >= record.expiresAt) return { ok: false, errcode: 40029 };
    if (record.appid !== appid) return { ok: false, errcode: 40013 };
    // A code minted without an openid has no known user: nothing to compare with.
    if (openid !== undefined && record.openid !== undefined && openid !== record.openid) {
      return { ok: false, errcode: 40029 };
    }
    record.used = true;
    return {
      ok: true,
      phoneInfo: {
        phoneNumber: displayPhoneNumber(record.purePhoneNumber, record.countryCode),
        purePhoneNumber: record.purePhoneNumber,
        countryCode: record.countryCode,
        watermark: { timestamp: Math.floor(record.mintedAt / 1000), appid: record.appid },
      },
    };
  }

  clear(): void {
    this.codes.clear();
    this.mintsSinceSweep = 0;
  }

  private sweep(now: number): void {
    this.mintsSinceSweep = 0;
    for (const [code, record] of this.codes) if (record.used || now >= record.expiresAt) this.codes.delete(code);
  }
}

interface LoginCodeRecord {
  appid: string;
  openid: string;
  expiresAt: number;
  used: boolean;
}

export type LoginExchange =
  | { ok: true; openid: string; sessionKey: Buffer }
  | { ok: false; errcode: 40029 | 40163 };

/** wx.login codes and the session key each (app, user) currently has. */
export class LoginBook {
  private readonly codes = new Map<string, LoginCodeRecord>();
  private readonly sessionKeys = new Map<string, Buffer>();
  private mintsSinceSweep = 0;

  /** Models wx.login: a new code, and the user's session key rotates. */
  login(appid: string, openid: string, now: number): { code: string; sessionKey: Buffer } {
    if (++this.mintsSinceSweep >= SWEEP_EVERY) this.sweep(now);
    const sessionKey = newSessionKey();
    this.sessionKeys.set(sessionId(appid, openid), sessionKey);
    let code = newLoginCode();
    while (this.codes.has(code)) code = newLoginCode();
    this.codes.set(code, { appid, openid, expiresAt: now + CODE_TTL_MS, used: false });
    return { code, sessionKey };
  }

  /**
   * jscode2session. The answer carries the user's current session key: a later
   * wx.login has rotated it, exactly as on WeChat. Another app's code is just
   * an invalid code here.
   */
  exchange(appid: string, code: string, now: number): LoginExchange {
    const record = this.codes.get(code);
    if (!record || record.appid !== appid || now >= record.expiresAt) return { ok: false, errcode: 40029 };
    if (record.used) return { ok: false, errcode: 40163 };
    record.used = true;
    const sessionKey = this.sessionKeys.get(sessionId(appid, record.openid));
    if (!sessionKey) return { ok: false, errcode: 40029 };
    return { ok: true, openid: record.openid, sessionKey };
  }

  sessionKey(appid: string, openid: string): Buffer | undefined {
    return this.sessionKeys.get(sessionId(appid, openid));
  }

  clear(): void {
    this.codes.clear();
    this.sessionKeys.clear();
    this.mintsSinceSweep = 0;
  }

  private sweep(now: number): void {
    this.mintsSinceSweep = 0;
    // Used codes are kept until they expire so that a reuse still says 40163.
    for (const [code, record] of this.codes) if (now >= record.expiresAt) this.codes.delete(code);
  }
}

function sessionId(appid: string, openid: string): string {
  return `${appid}\u0000${openid}`;
}
