// Longer than a module usually is: the one object the simulated WeChat's routes answer from (apps,
// tokens, codes, packs, faults, pushes), so every route and test sees the same state; each concern's
// workings live in its own module (tokens.ts, codes.ts, ledger.ts, message-push.ts, …).
import {
  DEFAULT_CHARGING_START_DATE,
  SPU_ID_BY_PRODUCT,
  cstMidnight,
  exemption,
  normalizeSubjectType,
  packEffectiveAt,
  packExpiresAt,
  type ExemptionRule,
  type Product,
  type SubjectType,
} from '../billing/rules.js';
import { ApiSecurityBook, type SimApiSecurityInput, type SimApiSecuritySummary } from './api-security.js';
import { SimClock } from './clock.js';
import { LoginBook, PhoneCodeBook, displayPhoneNumber, type PhoneInfo } from './codes.js';
import { SimInputError, wechatError, type WeChatError } from './errors.js';
import { FaultTable } from './faults.js';
import { encryptPhonePayload, type EncryptedPhone } from './legacy-crypto.js';
import { AppLedger, SIM_PACK_SKU_ID, type UsageRow } from './ledger.js';
import { MessagePusher, type PushAccount, type PushTargetInput } from './message-push.js';
import { TokenBook, type IssuedToken, type TokenCheck } from './tokens.js';

/**
 * Everything the simulated WeChat knows, with a clock tests can move. The
 * HTTP layer (server.ts) only parses requests and serialises these answers,
 * so tests can drive the same behaviour without HTTP.
 */

export type { SubjectType } from '../billing/rules.js';

export interface SimAppInput {
  appid: string;
  secret: string;
  subjectType?: SubjectType;
  category?: string;
  product?: 'quick' | 'realtime';
  /** API security mode (the console's API安全): calls to the APIs that support it must be signed and encrypted. */
  apiSecurity?: SimApiSecurityInput;
}

export interface SimAppSummary {
  appid: string;
  secret: string;
  exempt: boolean;
  product: Product;
}

export interface SimAppDetails extends SimAppSummary {
  subjectType: SubjectType;
  category: string | undefined;
  exemptionRule: ExemptionRule | null;
  /** Present when the app has API security mode on. */
  apiSecurity?: SimApiSecuritySummary;
}

export interface SimulatorStateOptions {
  apps?: readonly SimAppInput[];
  /** 'YYYY-MM-DD' (Asia/Shanghai); packs paid before it take effect on it. */
  chargingStartDate?: string;
  /** Initial simulated epoch time in ms; default: real time. */
  startTime?: number;
}

export type PhoneCodeResult = { code: string; expiresAt: number } | { errno: 1400001; errMsg: string };

/**
 * Pack input in seconds, either as its window or as a purchase (validity counted from when it takes effect);
 * optionally the pack's skuId and its source (2 bought, the default; 3 assigned by a service provider).
 */
export type PackInput = (
  | { all: number; startTime: number; endTime: number }
  | { all: number; paidAt: number; validityDays: number }
) & { skuId?: string; source?: 2 | 3 };

export interface SimulatorStats {
  tokensIssued: { stable: number; plain: number; forced: number };
  calls: Record<string, number>;
  codesIssued: number;
  codesExchanged: number;
}

export interface PhoneNumberAnswer {
  errcode: 0;
  errmsg: 'ok';
  phone_info: PhoneInfo;
}

export interface SessionAnswer {
  session_key: string;
  openid: string;
}

/** getUsageDetail's answer, as WeChat sends it: no errmsg, 64-bit counts as strings. */
export interface UsageAnswer {
  errcode: 0;
  all: string;
  effectiveUse: string;
  /** Deprecated upstream, seen as "0". */
  effectiveAll: string;
  total: number;
  startServiceTime: number;
  endServiceTime: number;
  detailList: UsageRow[];
}

/** getRecentAverageUsage's answer: a fuzzed monthly figure, a JSON number; no errmsg, as in WeChat's own example. */
export interface AverageAnswer {
  errcode: 0;
  averageData: number;
}

type Params = Readonly<Record<string, unknown>>;

interface SimApp {
  appid: string;
  secret: string;
  subjectType: SubjectType;
  category: string | undefined;
  product: Product;
  exempt: boolean;
  exemptionRule: ExemptionRule | null;
  ledger: AppLedger;
}

const NO_QUOTA = { errno: 1400001, errMsg: 'getPhoneNumber:fail no permission' } as const;
const MAX_USAGE_PAGE = 20;
/** Pack and order ids look like WeChat's: two letters and 19 digits. */
const PACK_ID_BASE = 2_800_000_000_000_000_000n;
const ORDER_ID_BASE = 2_900_000_000_000_000_000n;

export class SimulatorState {
  readonly chargingStartDate: string;
  readonly faults = new FaultTable();
  /** The apps with API security mode on, and their keys. */
  readonly apiSecurity = new ApiSecurityBook();
  /** Charge alerts pushed to the message-push URL an app set (see message-push.ts). */
  readonly messagePush: MessagePusher;
  private readonly clock: SimClock;
  private readonly apps = new Map<string, SimApp>();
  private readonly tokens = new TokenBook();
  private readonly phoneCodes = new PhoneCodeBook();
  private readonly logins = new LoginBook();
  private calls: Record<string, number> = {};
  private codesIssued = 0;
  private codesExchanged = 0;
  private nextPackId = 1;

  constructor(opts: SimulatorStateOptions = {}) {
    this.chargingStartDate = opts.chargingStartDate ?? DEFAULT_CHARGING_START_DATE;
    cstMidnight(this.chargingStartDate); // fail at start-up, not at the first pack
    this.clock = new SimClock(opts.startTime);
    this.messagePush = new MessagePusher({ now: () => this.now() });
    for (const app of opts.apps ?? []) this.registerApp(app);
  }

  // --- clock -----------------------------------------------------------------

  now(): number {
    return this.clock.now();
  }

  /** Moves simulated time forward; returns the new now (ms). */
  advance(seconds: number): number {
    let now: number;
    try {
      now = this.clock.advance(seconds);
    } catch (err) {
      throw new SimInputError((err as Error).message);
    }
    for (const app of this.apps.values()) this.messagePush.observe(pushAccount(app));
    return now;
  }

  /** Where the app's charge alerts go (its console's message-push settings); null: nowhere. */
  setMessagePush(appid: string, target: PushTargetInput | null) {
    return this.messagePush.configure(pushAccount(this.requireApp(appid)), target);
  }

  // --- apps ------------------------------------------------------------------

  /**
   * Registers an app, or updates one already known (new secret, subject or
   * product) keeping its tokens and its account: several test files and the
   * sandbox may register the same app.
   */
  registerApp(input: SimAppInput): SimAppDetails {
    const appid = requireString(input.appid, 'appid', 64);
    if (/\s/.test(appid)) throw new SimInputError('appid must not contain spaces');
    const secret = requireString(input.secret, 'secret', 128);
    const subjectType = input.subjectType === undefined ? 'enterprise' : normalizeSubjectType(input.subjectType);
    if (!subjectType) throw new SimInputError(`unknown subjectType ${JSON.stringify(input.subjectType)}`);
    if (input.category !== undefined && typeof input.category !== 'string') throw new SimInputError('category must be a string');
    const product = input.product ?? 'quick';
    if (product !== 'quick' && product !== 'realtime') throw new SimInputError('product must be "quick" or "realtime"');
    const { exempt, rule } = exemption({ subjectType, category: input.category });
    const security = this.apiSecurity.prepare(input.apiSecurity);
    const existing = this.apps.get(appid);
    const app: SimApp = {
      appid,
      secret,
      subjectType,
      category: input.category,
      product,
      exempt,
      exemptionRule: rule,
      ledger: existing?.ledger ?? new AppLedger(this.now()),
    };
    this.apps.set(appid, app);
    const apiSecurity = this.apiSecurity.set(appid, security);
    return { ...details(app), ...(apiSecurity ? { apiSecurity } : {}) };
  }

  listApps(): SimAppSummary[] {
    return [...this.apps.values()].map(({ appid, secret, exempt, product }) => ({ appid, secret, exempt, product }));
  }

  appDetails(appid: string): SimAppDetails | undefined {
    const app = this.apps.get(appid);
    return app && details(app);
  }

  // --- access tokens (§1) ------------------------------------------------------

  /** POST /cgi-bin/stable_token with its JSON body. */
  stableToken(body: Params): IssuedToken | WeChatError {
    const app = this.authenticate(body, 'client_credential');
    if ('errcode' in app) return app;
    const force = body.force_refresh === true || body.force_refresh === 'true';
    const result = this.tokens.stable(app.appid, force, this.now());
    return 'errcode' in result ? wechatError(result.errcode) : result;
  }

  /** GET /cgi-bin/token with its query parameters. */
  plainToken(query: Params): IssuedToken | WeChatError {
    const app = this.authenticate(query, 'client_credential');
    if ('errcode' in app) return app;
    return this.tokens.plain(app.appid, this.now());
  }

  /** The token check of every business call; `expectedAppid` makes another app's token a 40001. */
  checkToken(accessToken: string | null | undefined, expectedAppid?: string): TokenCheck {
    return this.tokens.check(accessToken, this.now(), expectedAppid);
  }

  // --- phone codes (§2, §5) ------------------------------------------------------

  /**
   * The button's success callback: charges one unit (unless the app is exempt)
   * and issues a code; with nothing left to draw from, 1400001 and no code.
   */
  mintPhoneCode(appid: string, phoneNumber: string, countryCode?: string | number, openid?: string): PhoneCodeResult {
    const app = this.requireApp(appid);
    const pure = purePhone(phoneNumber);
    const cc = callingCode(countryCode);
    const user = optionalString(openid, 'openid');
    const now = this.now();
    if (!app.exempt && app.ledger.charge(now) === null) return { ...NO_QUOTA };
    this.messagePush.observe(pushAccount(app));
    this.codesIssued++;
    return this.phoneCodes.mint({ appid, purePhoneNumber: pure, countryCode: cc, openid: user, mintedAt: now });
  }

  /** POST /wxa/business/getuserphonenumber. */
  getUserPhoneNumber(accessToken: string | null | undefined, body: Params): PhoneNumberAnswer | WeChatError {
    const token = this.checkToken(accessToken);
    if (!token.ok) return wechatError(token.errcode);
    // WeChat reads nothing of a body without a code: a format error, the code (if any) untouched.
    if (body.code === undefined || body.code === null) return wechatError(47001);
    const openid = body.openid;
    if (openid !== undefined && openid !== null && typeof openid !== 'string') return wechatError(47001);
    const result = this.phoneCodes.exchange(token.appid, body.code, openid || undefined, this.now());
    if (!result.ok) return wechatError(result.errcode);
    this.codesExchanged++;
    return { errcode: 0, errmsg: 'ok', phone_info: result.phoneInfo };
  }

  // --- legacy login flow (§3) ------------------------------------------------------

  /**
   * Models wx.login: a login code, and the user's session key rotates. With a
   * phone number, also what the button would give right after that login.
   */
  mintLoginCode(
    appid: string,
    openid: string,
    phone?: { phoneNumber: string; countryCode?: string | number },
  ): { code: string } | ({ code: string } & EncryptedPhone) {
    this.requireApp(appid);
    const user = requireString(openid, 'openid', 128);
    const payload = phone && this.legacyPayload(appid, phone.phoneNumber, phone.countryCode);
    const { code, sessionKey } = this.logins.login(appid, user, this.now());
    return payload ? { code, ...encryptPhonePayload(sessionKey, payload) } : { code };
  }

  /** What the button gives without a new login: encrypted under the user's current session key. */
  encryptedPhone(appid: string, openid: string, phoneNumber: string, countryCode?: string | number): EncryptedPhone {
    this.requireApp(appid);
    const user = requireString(openid, 'openid', 128);
    const payload = this.legacyPayload(appid, phoneNumber, countryCode);
    const sessionKey = this.logins.sessionKey(appid, user);
    if (!sessionKey) throw new SimInputError('this user has no session yet: create a login code first');
    return encryptPhonePayload(sessionKey, payload);
  }

  /** GET /sns/jscode2session with its query parameters; grant_type may be left out, as WeChat allows. */
  jscode2session(query: Params): SessionAnswer | WeChatError {
    const app = this.authenticate(query, 'authorization_code', { grantTypeOptional: true });
    if ('errcode' in app) return app;
    const jsCode = query.js_code;
    if (typeof jsCode !== 'string' || jsCode === '') return wechatError(41008);
    const result = this.logins.exchange(app.appid, jsCode, this.now());
    if (!result.ok) return wechatError(result.errcode);
    // WeChat's order: session_key first (no errcode, no unionid unless bound to an Open Platform account).
    return { session_key: result.sessionKey.toString('base64'), openid: result.openid };
  }

  // --- packs and usage -------------------------------------------

  addPack(appid: string, input: PackInput): { pkgId: string } {
    const app = this.requireApp(appid);
    const all = positiveInt(input.all, 'all');
    let effectiveAt: number;
    let expiresAt: number;
    if ('paidAt' in input) {
      effectiveAt = packEffectiveAt(seconds(input.paidAt, 'paidAt') * 1000, this.chargingStartDate);
      expiresAt = packExpiresAt(effectiveAt, positiveInt(input.validityDays, 'validityDays'));
    } else {
      effectiveAt = seconds(input.startTime, 'startTime') * 1000;
      expiresAt = seconds(input.endTime, 'endTime') * 1000;
      if (expiresAt <= effectiveAt) throw new SimInputError('endTime must be after startTime');
    }
    const skuId = input.skuId === undefined ? SIM_PACK_SKU_ID : input.skuId;
    if (typeof skuId !== 'string' || !/^\d{1,20}$/.test(skuId)) throw new SimInputError('skuId must be digits');
    const source = input.source ?? 2;
    if (source !== 2 && source !== 3) throw new SimInputError('source must be 2 (bought) or 3 (assigned by a service provider)');
    const n = BigInt(this.nextPackId++);
    const pkgId = `ZY${PACK_ID_BASE + n}`;
    app.ledger.addPack({ id: pkgId, orderId: `DD${ORDER_ID_BASE + n}`, skuId, source, all, used: 0, effectiveAt, expiresAt });
    this.messagePush.observe(pushAccount(app));
    return { pkgId };
  }

  /**
   * GET /wxa/charge/usage/get. `spuId`, `offset` and `limit` (1..20) are required (10120002
   * otherwise). Rows are the trial and each pack of the token's app, for its product; another
   * product's spuId lists nothing.
   */
  usage(accessToken: string | null | undefined, query: Params): UsageAnswer | WeChatError {
    const token = this.checkToken(accessToken);
    if (!token.ok) return wechatError(token.errcode);
    const app = this.apps.get(token.appid);
    const spuId = requiredDigits(query.spuId);
    const offset = requiredDigits(query.offset);
    const limit = requiredDigits(query.limit);
    if (spuId === null || offset === null || limit === null) return wechatError(10120002);
    const pageSize = Number(limit);
    if (pageSize < 1 || pageSize > MAX_USAGE_PAGE) return wechatError(10120002);
    const start = Number(offset);

    const now = this.now();
    const mine = app !== undefined && spuId === SPU_ID_BY_PRODUCT[app.product];
    if (!mine) {
      return { errcode: 0, all: '0', effectiveUse: '0', effectiveAll: '0', total: 0, startServiceTime: 0, endServiceTime: 0, detailList: [] };
    }
    const rows = app.ledger.rows(spuId, now);
    const totals = app.ledger.totals(now, now >= cstMidnight(this.chargingStartDate));
    return {
      errcode: 0,
      all: totals.all.toString(),
      effectiveUse: totals.effectiveUse.toString(),
      effectiveAll: '0',
      total: rows.length,
      startServiceTime: rows[0]!.startTime,
      endServiceTime: rows[0]!.endTime,
      detailList: rows.slice(start, start + pageSize),
    };
  }

  /**
   * GET /wxa/charge/usage/get_recent_average: the fuzzed average monthly use of the last
   * three months (src/simulator/ledger.ts recentMonthlyAverage); 10122000 when there is none.
   */
  recentAverage(accessToken: string | null | undefined, query: Params): AverageAnswer | WeChatError {
    const token = this.checkToken(accessToken);
    if (!token.ok) return wechatError(token.errcode);
    const spuId = requiredDigits(query.spuId);
    if (spuId === null) return wechatError(10120002);
    const app = this.apps.get(token.appid);
    const mine = app !== undefined && spuId === SPU_ID_BY_PRODUCT[app.product];
    const average = mine ? app.ledger.recentMonthlyAverage(this.now()) : null;
    if (average === null) return wechatError(10122000);
    // A JSON number, as WeChat sends it; beyond 2^53 it could not be one exactly.
    return { errcode: 0, averageData: average > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(average) };
  }

  /** An app's account as the simulator holds it, for tests and the control API. */
  ledger(appid: string): AppLedger {
    return this.requireApp(appid).ledger;
  }

  // --- stats and reset -------------------------------------------------------------

  /** Counts a call to a WeChat path (faulted calls included). */
  recordCall(path: string): void {
    this.calls[path] = (this.calls[path] ?? 0) + 1;
  }

  stats(): SimulatorStats {
    return {
      tokensIssued: { ...this.tokens.issued },
      calls: { ...this.calls },
      codesIssued: this.codesIssued,
      codesExchanged: this.codesExchanged,
    };
  }

  /**
   * Forgets everything but the registered apps: fresh trials, no packs, tokens,
   * codes, sessions or faults, zeroed stats. The clock keeps its time, since
   * clients hold expiry instants and time never runs backwards.
   */
  reset(): void {
    const now = this.now();
    for (const app of this.apps.values()) app.ledger = new AppLedger(now);
    this.tokens.clear();
    this.phoneCodes.clear();
    this.logins.clear();
    this.faults.clear();
    this.messagePush.clear();
    this.calls = {};
    this.codesIssued = 0;
    this.codesExchanged = 0;
    this.nextPackId = 1;
  }

  // --- helpers -----------------------------------------------------------------------

  /** WeChat's credential checks, in the order the brief lists them. */
  private authenticate(params: Params, grantType: string, opts: { grantTypeOptional?: boolean } = {}): SimApp | WeChatError {
    const absent = params.grant_type === undefined || params.grant_type === '';
    if (params.grant_type !== grantType && !(absent && opts.grantTypeOptional)) return wechatError(40002);
    const { appid, secret } = params;
    if (typeof appid !== 'string' || appid === '') return wechatError(41002);
    if (typeof secret !== 'string' || secret === '') return wechatError(41004);
    const app = this.apps.get(appid);
    if (!app) return wechatError(40013);
    if (app.secret !== secret) return wechatError(40125);
    return app;
  }

  private requireApp(appid: unknown): SimApp {
    const app = typeof appid === 'string' ? this.apps.get(appid) : undefined;
    if (!app) throw new SimInputError(`unknown appid ${JSON.stringify(appid)}`);
    return app;
  }

  private legacyPayload(appid: string, phoneNumber: string, countryCode: string | number | undefined) {
    const pure = purePhone(phoneNumber);
    const cc = callingCode(countryCode);
    return {
      phoneNumber: displayPhoneNumber(pure, cc),
      purePhoneNumber: pure,
      countryCode: cc,
      watermark: { appid, timestamp: Math.floor(this.now() / 1000) },
    };
  }
}

function pushAccount(app: SimApp): PushAccount {
  return { appid: app.appid, exempt: app.exempt, spuId: SPU_ID_BY_PRODUCT[app.product], trialUsed: app.ledger.trialUsed, packs: app.ledger.packs };
}

function details(app: SimApp): SimAppDetails {
  const { appid, secret, exempt, product, subjectType, category, exemptionRule } = app;
  return { appid, secret, exempt, product, subjectType, category, exemptionRule };
}

function requireString(value: unknown, name: string, maxLength: number): string {
  if (typeof value !== 'string' || value === '') throw new SimInputError(`${name} is required (a non-empty string)`);
  if (value.length > maxLength) throw new SimInputError(`${name} is longer than ${maxLength} characters`);
  return value;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new SimInputError(`${name} must be a string`);
  return value;
}

function purePhone(value: unknown): string {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !/^\d{4,20}$/.test(text)) {
    throw new SimInputError('phoneNumber must be 4 to 20 digits, without the country code');
  }
  return text;
}

function callingCode(value: unknown): string {
  if (value === undefined || value === null || value === '') return '86';
  const text = String(value).replace(/^\+/, '');
  if (!/^[1-9]\d{0,3}$/.test(text)) throw new SimInputError('countryCode must be a calling code such as 86 or "1"');
  return text;
}

function positiveInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new SimInputError(`${name} must be a positive integer`);
  }
  return value;
}

function seconds(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 1e11) {
    throw new SimInputError(`${name} must be an integer number of seconds since the epoch`);
  }
  return value;
}

/** The digits of a required parameter, or null when it is absent or not a decimal integer. */
function requiredDigits(value: unknown): string | null {
  const text = typeof value === 'number' ? String(value) : value;
  return typeof text === 'string' && /^\d{1,18}$/.test(text) ? text : null;
}
