import type { AppConfig } from '../config.js';
import type { Session } from '../auth/index.js';
import { AppMismatchError, InvalidInputError } from './errors.js';
import { PURPOSE_PATTERN } from '../config.js';
import { APPID_PATTERN } from '../wechat/appid.js';
import type { CheckedInput, ExchangeInput } from './request.js';

// Printable ASCII only: control, zero-width and other look-alike characters are refused
// here, before anything leaves the process, rather than surfacing as a WeChat 40029.
const CODE_PATTERN = /^[\x21-\x7e]{1,128}$/;

export function checkCode(value: unknown, field = 'code'): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidInputError(`${field} is required`, field);
  if (value.length > 128) throw new InvalidInputError(`${field} is longer than 128 characters`, field);
  if (!CODE_PATTERN.test(value)) {
    throw new InvalidInputError(`${field} contains characters a WeChat code never has (spaces, control or non-ASCII characters)`, field);
  }
  return value;
}

/** The app the request is for: the input's, else the session's; they must agree. */
export function resolveApp(session: Session, inputAppid: string | null | undefined, apps: ReadonlyMap<string, AppConfig>): AppConfig {
  const appid = inputAppid ?? session.appid;
  if (!appid) throw new InvalidInputError('appid is required when the session token names no app', 'appid');
  if (!APPID_PATTERN.test(appid)) throw new InvalidInputError('appid must be "wx" followed by 16 hex characters', 'appid');
  if (session.appid && session.appid !== appid) {
    throw new AppMismatchError(`the session belongs to another app than ${appid}`);
  }
  const app = apps.get(appid);
  if (!app) throw new AppMismatchError(`app ${appid} is not served by this gateway`);
  return app;
}

export function checkPurpose(value: unknown, app: AppConfig): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidInputError('purpose is required', 'purpose');
  if (!PURPOSE_PATTERN.test(value) || !app.purposes.includes(value)) {
    throw new InvalidInputError(`purpose is not one this app declared (allowed: ${app.purposes.join(', ')})`, 'purpose');
  }
  return value;
}

/** The notice the user was shown (e.g. "privacy-2026-03"): short plain text, recorded as given. */
export function checkNoticeVersion(v: string | null | undefined): string | null {
  if (v == null) return null;
  if (!/^[\x21-\x7e]{1,64}$/.test(v)) throw new InvalidInputError('noticeVersion must be 1 to 64 printable ASCII characters', 'noticeVersion');
  return v;
}

export function checkExchangeInput(input: ExchangeInput, app: AppConfig): Extract<CheckedInput, { flow: 'exchange' }> {
  const code = checkCode(input.code);
  return { flow: 'exchange', purpose: checkPurpose(input.purpose, app), code };
}
