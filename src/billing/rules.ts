/**
 * WeChat's billing rules for phone-number verification, as pure functions.
 *
 * The simulator charges with these, and the gateway's billing mirror reuses
 * them, so both sides agree on what a charge is and where it is drawn from.
 * Times are integer milliseconds since the epoch; calendar dates are China
 * Standard Time (Asia/Shanghai, UTC+8, no daylight saving). Integer arithmetic
 * only: unit counts and instants never go through floating point.
 *
 * Longer than a module usually is, on purpose: this is the one place the rules
 * are written down, a section each, and nothing in it does I/O.
 */

import { DAY_MS } from '../util/time.js';
import { SUBJECT_TYPES, type SubjectType } from '../wechat/subject-types.js';

/** Free calls per mini-program account, shared by release, trial and develop versions. */
export const TRIAL_UNITS = 1000;

/** WeChat's charging start date; a setting, not a constant (one copy of WeChat's page says 2025-08-04). */
export const DEFAULT_CHARGING_START_DATE = '2023-08-28';

export { DAY_MS };
/** Asia/Shanghai has been UTC+8 all year since 1991. */
export const CST_OFFSET_MS = 8 * 3_600_000;
/** A pack may be refunded within this long after payment, if unused. */
export const REFUND_WINDOW_MS = 7 * DAY_MS;

export { SUBJECT_TYPES, type SubjectType };

export type Product = 'quick' | 'realtime';
/** Usage-API product ids (spuId): quick verification in WeChat's own example, real-time from SDK docs. */
export const SPU_ID_BY_PRODUCT: Readonly<Record<Product, string>> = {
  quick: '10000077',
  realtime: '10000086',
};

// ---------------------------------------------------------------------------
// Exemption (免费规则)

export type ExemptionRule = 'GOVERNMENT_OR_NON_PROFIT' | 'PUBLIC_INSTITUTION_GOV_SERVICES' | 'PUBLIC_MEDICAL_OR_EDUCATION';

export interface Exemption {
  exempt: boolean;
  rule: ExemptionRule | null;
}

export interface AppSubject {
  subjectType?: SubjectType | string | null | undefined;
  category?: string | null | undefined;
}

// WeChat's console shows Chinese names; config files may use the English slugs.
const SUBJECT_TYPE_ALIASES: Readonly<Record<string, SubjectType>> = {
  政府: 'government',
  非营利组织: 'non-profit',
  事业单位: 'public-institution',
  企业: 'enterprise',
  个人: 'individual',
  其他: 'other',
};

/** The subject type a string names (English slug or WeChat's Chinese name), or undefined. */
export function normalizeSubjectType(value: string | null | undefined): SubjectType | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  const slug = v.toLowerCase();
  if ((SUBJECT_TYPES as readonly string[]).includes(slug)) return slug as SubjectType;
  return SUBJECT_TYPE_ALIASES[v];
}

type CategoryKind = 'gov-services' | 'public-medical' | 'academic-education';

const CATEGORY_ALIASES: Readonly<Record<string, CategoryKind>> = {
  政务民生: 'gov-services',
  'gov-services': 'gov-services',
  公立医疗机构: 'public-medical',
  'public-medical': 'public-medical',
  '学历教育(学校)': 'academic-education',
  学历教育: 'academic-education',
  'academic-education': 'academic-education',
};

/**
 * The exemption-relevant kinds a category names. WeChat categories are paths
 * such as "医疗 > 公立医疗机构", so every segment counts; full-width brackets
 * are folded because both forms appear in copies of the console.
 */
function categoryKinds(category: string | null | undefined): Set<CategoryKind> {
  const kinds = new Set<CategoryKind>();
  if (typeof category !== 'string') return kinds;
  const folded = category.replace(/（/g, '(').replace(/）/g, ')').replace(/＞/g, '>').toLowerCase();
  for (const segment of folded.split(/[>/]/)) {
    const kind = CATEGORY_ALIASES[segment.replace(/\s+/g, '')];
    if (kind) kinds.add(kind);
  }
  return kinds;
}

/**
 * Whether an app is free of charge, and by which of WeChat's rules (免费规则).
 * When several rules hold, the first in WeChat's order is named.
 */
export function exemption(subject: AppSubject): Exemption {
  const subjectType = normalizeSubjectType(subject.subjectType ?? undefined);
  const kinds = categoryKinds(subject.category);
  if (subjectType === 'government' || subjectType === 'non-profit') {
    return { exempt: true, rule: 'GOVERNMENT_OR_NON_PROFIT' };
  }
  if (subjectType === 'public-institution' && kinds.has('gov-services')) {
    return { exempt: true, rule: 'PUBLIC_INSTITUTION_GOV_SERVICES' };
  }
  if (kinds.has('public-medical') || kinds.has('academic-education')) {
    return { exempt: true, rule: 'PUBLIC_MEDICAL_OR_EDUCATION' };
  }
  return { exempt: false, rule: null };
}

// ---------------------------------------------------------------------------
// Pack dates

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** 00:00 CST of a 'YYYY-MM-DD' date, in ms. Throws on anything that is not a real calendar date. */
export function cstMidnight(date: string): number {
  const m = DATE_RE.exec(date);
  if (!m) throw new RangeError(`not a YYYY-MM-DD date: ${JSON.stringify(date)}`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const utcMidnight = Date.UTC(y, mo - 1, d);
  // Date.UTC rolls 2023-02-30 over to March: refuse instead of guessing.
  const check = new Date(utcMidnight);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) {
    throw new RangeError(`not a calendar date: ${date}`);
  }
  return utcMidnight - CST_OFFSET_MS;
}

/** The CST calendar date ('YYYY-MM-DD') of an instant. */
export function cstDate(ms: number): string {
  return new Date(ms + CST_OFFSET_MS).toISOString().slice(0, 10);
}

/** Day number (days since 1970-01-01 CST) of an instant; daily limits reset at CST midnight. */
export function cstDayNumber(ms: number): number {
  return Math.floor((ms + CST_OFFSET_MS) / DAY_MS);
}

/**
 * When a pack takes effect: a pack paid before the charging start date takes
 * effect at 00:00 CST on that date, one paid later takes effect at payment.
 */
export function packEffectiveAt(paidAtMs: number, chargingStartDate: string = DEFAULT_CHARGING_START_DATE): number {
  assertInstant(paidAtMs, 'paidAtMs');
  const start = cstMidnight(chargingStartDate);
  return paidAtMs < start ? start : paidAtMs;
}

/** The first instant a pack is expired: its validity counted from when it takes effect. */
export function packExpiresAt(effectiveAtMs: number, validityDays: number): number {
  assertInstant(effectiveAtMs, 'effectiveAtMs');
  if (!Number.isSafeInteger(validityDays) || validityDays <= 0) {
    throw new RangeError(`validityDays must be a positive integer, got ${validityDays}`);
  }
  return effectiveAtMs + validityDays * DAY_MS;
}

function assertInstant(ms: number, name: string): void {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`${name} must be an integer number of ms, got ${ms}`);
}

// ---------------------------------------------------------------------------
// Pack status and consumption order

export interface BillingPack {
  id: number | string;
  /** Units bought. */
  all: number;
  /** Units drawn so far. */
  used: number;
  /** First instant the pack is in effect (ms). */
  effectiveAt: number;
  /** First instant the pack is expired (ms). */
  expiresAt: number;
  /** When a refund was granted, if ever; a refunded pack is never drawn from. */
  refundedAt?: number | null | undefined;
}

export type PackStatus = 'NOT_YET_EFFECTIVE' | 'IN_EFFECT' | 'USED_UP' | 'EXPIRED' | 'REFUNDED';

/**
 * A pack's status at an instant. Refunded wins over everything; expiry wins
 * over "used up" because an expired pack can never be drawn from again,
 * whatever its count.
 */
export function packStatus(pack: BillingPack, nowMs: number): PackStatus {
  if (pack.refundedAt != null && pack.refundedAt <= nowMs) return 'REFUNDED';
  if (nowMs >= pack.expiresAt) return 'EXPIRED';
  if (nowMs < pack.effectiveAt) return 'NOT_YET_EFFECTIVE';
  if (pack.used >= pack.all) return 'USED_UP';
  return 'IN_EFFECT';
}

/** Consumption order: soonest expiry first, then earlier start, then pack id. */
export function comparePacksForCharging(a: BillingPack, b: BillingPack): number {
  if (a.expiresAt !== b.expiresAt) return a.expiresAt < b.expiresAt ? -1 : 1;
  if (a.effectiveAt !== b.effectiveAt) return a.effectiveAt < b.effectiveAt ? -1 : 1;
  return compareIds(a.id, b.id);
}

const ALL_DIGITS = /^\d+$/;

/**
 * Pack ids as a total order, so the scan in {@link choosePackToCharge} picks
 * the same pack whatever order the caller lists packs in (ids may be WeChat's
 * numeric pkgIds or the mirror's own string ids). Each id is compared by its string form: all-digit ids first, those
 * as numbers (shorter first, then digit by digit, which is numeric order for
 * the usage API's pkgIds, '9' before '10'), then every other id by plain
 * string order. Comparing numbers as numbers and the rest as strings, as an
 * earlier version did, is not transitive ('9' < '10' < '1a' < '9').
 */
function compareIds(a: number | string, b: number | string): number {
  const [sa, sb] = [String(a), String(b)];
  const [da, db] = [ALL_DIGITS.test(sa), ALL_DIGITS.test(sb)];
  if (da !== db) return da ? -1 : 1;
  if (da && sa.length !== sb.length) return sa.length < sb.length ? -1 : 1;
  return sa === sb ? 0 : sa < sb ? -1 : 1;
}

/** The pack the next paid charge is drawn from, or undefined when no pack can pay. */
export function choosePackToCharge<P extends BillingPack>(packs: readonly P[], nowMs: number): P | undefined {
  let best: P | undefined;
  for (const pack of packs) {
    if (packStatus(pack, nowMs) !== 'IN_EFFECT') continue;
    if (best === undefined || comparePacksForCharging(pack, best) < 0) best = pack;
  }
  return best;
}

/**
 * Where the next charge of an app comes from: the trial while it lasts, then
 * the pack chosen by {@link choosePackToCharge}; null means the tap is refused
 * with 1400001. Exempt apps are never charged, so callers check that first.
 */
export function chargeSource<P extends BillingPack>(
  trialUsed: number,
  packs: readonly P[],
  nowMs: number,
): { source: 'trial' } | { source: 'pack'; pack: P } | null {
  if (trialUsed < TRIAL_UNITS) return { source: 'trial' };
  const pack = choosePackToCharge(packs, nowMs);
  return pack ? { source: 'pack', pack } : null;
}

/**
 * Where one charge of an app comes from, exemption included: an exempt app is
 * never charged, so it never touches its trial; otherwise the trial, then the
 * in-effect pack that expires soonest. `packs` includes the packs a service
 * provider assigned to the app (集采): WeChat draws them like any pack of the
 * app, so one list is one order. 'none' means the tap is refused with 1400001.
 * The gateway's ledger draws by it (the simulator by chargeSource, its core).
 */
export function planCharge<P extends BillingPack>(input: {
  exempt: boolean;
  trialUsed: number;
  packs: readonly P[];
  nowMs: number;
}): { source: 'exempt' } | { source: 'trial' } | { source: 'pack'; pack: P } | { source: 'none' } {
  if (input.exempt) return { source: 'exempt' };
  // A negative or fractional count would read as "trial left" and hand out
  // free units, so a corrupt counter fails loudly instead.
  assertCount(input.trialUsed, 'trialUsed');
  assertInstant(input.nowMs, 'nowMs');
  return chargeSource(input.trialUsed, input.packs, input.nowMs) ?? { source: 'none' };
}

function assertCount(n: number, name: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${n}`);
}

// ---------------------------------------------------------------------------
// Refunds

export type RefundRule = 'ALREADY_REQUESTED' | 'PACK_USED' | 'REFUND_WINDOW_PASSED';

export type RefundDecision = { refundable: true } | { refundable: false; rule: RefundRule };

/**
 * WeChat's refund rule: only within 7 days after payment and only
 * if not a single unit was used. "Within 7 days" is read as less than 7×24 h
 * after payment. When several rules forbid a refund, the first below is named:
 * a pending or granted request first (asking again changes nothing), then use
 * (a fact about the pack the user can check), then the window. An instant
 * before payment is outside the window too: it can only be clock skew or bad
 * data, and money questions fail closed.
 */
export function refundDecision(
  pack: { paidAt: number; used: number; refundState?: 'requested' | null; refundedAt?: number | null },
  nowMs: number,
): RefundDecision {
  if (pack.refundState != null || pack.refundedAt != null) return { refundable: false, rule: 'ALREADY_REQUESTED' };
  if (pack.used !== 0) return { refundable: false, rule: 'PACK_USED' };
  const sincePayment = nowMs - pack.paidAt;
  if (!(sincePayment >= 0 && sincePayment < REFUND_WINDOW_MS)) {
    return { refundable: false, rule: 'REFUND_WINDOW_PASSED' };
  }
  return { refundable: true };
}

/** Whether a pack may be refunded now; {@link refundDecision} says why not. */
export function refundable(pack: { paidAt: number; used: number; refundedAt?: number | null }, nowMs: number): boolean {
  return refundDecision(pack, nowMs).refundable;
}

// ---------------------------------------------------------------------------
// Bulk procurement (集采): a service provider's orders and the packs it assigns

/** An assignment may be cancelled within this long after it took effect, if unused. */
export const ASSIGNMENT_CANCEL_WINDOW_MS = 7 * DAY_MS;
/** WeChat's bounds on an assignment's requestId (its idempotency key). */
export const REQUEST_ID_MIN_LENGTH = 10;
export const REQUEST_ID_MAX_LENGTH = 64;

/**
 * requested: asked of WeChat, result not known yet (the assignment is asynchronous);
 * assigned / failed: WeChat's result (failed keeps its errcode); cancelled: an
 * assigned pack taken back within the rules.
 */
export type AssignmentState = 'requested' | 'assigned' | 'failed' | 'cancelled';

/** States that hold units of their order: a failed or cancelled assignment gives them back. */
export const ORDER_HOLDING_STATES: readonly AssignmentState[] = ['requested', 'assigned'];

/**
 * Whether a string can be a requestId: 10 to 64 characters. WeChat names no
 * alphabet; printable ASCII without spaces is what every SDK sends, and the
 * id is echoed in events and logs, so nothing else is taken.
 */
export function isRequestId(value: string): boolean {
  return value.length >= REQUEST_ID_MIN_LENGTH && value.length <= REQUEST_ID_MAX_LENGTH && /^[\x21-\x7e]+$/.test(value);
}

export type AssignmentCancelRule = 'ALREADY_CANCELLED' | 'NOT_ASSIGNED' | 'PACK_USED' | 'CANCEL_WINDOW_PASSED';

export type AssignmentCancelDecision = { cancellable: true } | { cancellable: false; rule: AssignmentCancelRule };

/**
 * WeChat's cancel rule for an assignment: only within 7 days of
 * the assignment and only if not a unit of the assigned pack was used. When
 * several rules forbid it, the first below is named, as for refunds: asking
 * again changes nothing, an assignment that never took effect has nothing to
 * cancel (one still requested waits for WeChat's result), then use, then the
 * window. An instant before the assignment is outside the window: clock skew
 * or bad data, and money questions fail closed.
 */
export function assignmentCancelDecision(
  a: { state: AssignmentState; assignedAt: number | null; used: number },
  nowMs: number,
): AssignmentCancelDecision {
  if (a.state === 'cancelled') return { cancellable: false, rule: 'ALREADY_CANCELLED' };
  if (a.state !== 'assigned' || a.assignedAt === null) return { cancellable: false, rule: 'NOT_ASSIGNED' };
  if (a.used !== 0) return { cancellable: false, rule: 'PACK_USED' };
  const since = nowMs - a.assignedAt;
  if (!(since >= 0 && since < ASSIGNMENT_CANCEL_WINDOW_MS)) return { cancellable: false, rule: 'CANCEL_WINDOW_PASSED' };
  return { cancellable: true };
}

export type AssignmentResultStep =
  | { kind: 'settle'; state: 'assigned' | 'failed' }
  | { kind: 'duplicate' }
  | { kind: 'conflict'; reason: 'RESULT_CONFLICT' | 'ALREADY_CANCELLED' };

/**
 * What WeChat's result for an assignment (errcode 0: assigned; any other: failed with
 * that errcode) does to it. WeChat pushes its result events again until they are
 * acknowledged, so the same result twice is a duplicate that changes nothing; a result
 * that contradicts the one recorded is refused rather than rewriting history. A
 * cancelled assignment had been assigned, so a late "assigned" is a duplicate too.
 */
export function assignmentResultStep(a: { state: AssignmentState; errcode: number | null }, result: number): AssignmentResultStep {
  if (!Number.isSafeInteger(result)) throw new RangeError(`result must be an integer errcode, got ${result}`);
  switch (a.state) {
    case 'requested':
      return { kind: 'settle', state: result === 0 ? 'assigned' : 'failed' };
    case 'assigned':
      return result === 0 ? { kind: 'duplicate' } : { kind: 'conflict', reason: 'RESULT_CONFLICT' };
    case 'failed':
      return result !== 0 && result === a.errcode ? { kind: 'duplicate' } : { kind: 'conflict', reason: 'RESULT_CONFLICT' };
    case 'cancelled':
      return result === 0 ? { kind: 'duplicate' } : { kind: 'conflict', reason: 'ALREADY_CANCELLED' };
  }
}

/**
 * When an assigned pack is in effect: from `beginTime` when the request set one (WeChat
 * supports it for some products), else from the assignment; a start before the charging
 * start date moves to it, as for a bought pack. It lasts the SKU's validity, which WeChat
 * gives in seconds.
 */
export function assignedPackPeriod(
  input: { assignedAt: number; beginTime: number | null; durationSeconds: number },
  chargingStartDate: string = DEFAULT_CHARGING_START_DATE,
): { effectiveAt: number; expiresAt: number } {
  assertInstant(input.assignedAt, 'assignedAt');
  if (input.beginTime !== null) assertInstant(input.beginTime, 'beginTime');
  if (!Number.isSafeInteger(input.durationSeconds) || input.durationSeconds <= 0) {
    throw new RangeError(`durationSeconds must be a positive integer, got ${input.durationSeconds}`);
  }
  const effectiveAt = packEffectiveAt(input.beginTime ?? input.assignedAt, chargingStartDate);
  return { effectiveAt, expiresAt: effectiveAt + input.durationSeconds * 1000 };
}

/** Units of an order not held by its requested or assigned packs. */
export function orderUnitsLeft(order: { unitsAll: number }, held: readonly { units: number; state: AssignmentState }[]): number {
  assertCount(order.unitsAll, 'unitsAll');
  let used = 0;
  for (const a of held) if (ORDER_HOLDING_STATES.includes(a.state)) used += a.units;
  return Math.max(0, order.unitsAll - used);
}

// ---------------------------------------------------------------------------
// Prices

/**
 * List price per successful call in milli-yuan (厘): packs sell per unit in
 * fractions of a fen, so fen would already need rounding.
 */
export const LIST_PRICE_MILLI: Readonly<Record<Product, number>> = {
  quick: 30,
  realtime: 40,
};

/** Milli-yuan as a yuan amount with all three decimals ('0.030'), exact for any safe integer. */
export function formatYuan(milli: number): string {
  if (!Number.isSafeInteger(milli)) throw new RangeError(`milli must be an integer, got ${milli}`);
  // Split the magnitude, not the signed value: % keeps the sign in JS and -30 must read '-0.030'.
  const magnitude = Math.abs(milli);
  const yuan = (magnitude - (magnitude % 1000)) / 1000;
  const fraction = String(magnitude % 1000).padStart(3, '0');
  return `${milli < 0 ? '-' : ''}${yuan}.${fraction}`;
}

/** The largest amount a 64-bit signed integer holds: WeChat's prices and counts are 64-bit. */
export const INT64_MAX = 9_223_372_036_854_775_807n;

/**
 * A non-negative amount written as decimal digits (no sign, no leading zeros, no
 * exponent), up to 2^63 − 1: the form WeChat gives 64-bit figures in, read exactly.
 * Undefined for anything else.
 */
export function parseInt64Amount(value: string): bigint | undefined {
  if (!/^(0|[1-9]\d{0,18})$/.test(value)) return undefined;
  const n = BigInt(value);
  return n <= INT64_MAX ? n : undefined;
}

/** Milli-yuan as a yuan amount with three decimals, exact for any 64-bit amount. */
export function formatYuanExact(milli: bigint): string {
  const magnitude = milli < 0n ? -milli : milli;
  return `${milli < 0n ? '-' : ''}${magnitude / 1000n}.${String(magnitude % 1000n).padStart(3, '0')}`;
}

// ---------------------------------------------------------------------------
// Usage rows (getUsageDetail) and the default low-quota mark

/** PackageSource of a usage row: where its units came from (4 and 5 are "other"). */
export const PACKAGE_SOURCE = { TRIAL: 1, PURCHASED: 2, SERVICE_PROVIDER: 3 } as const;
/** PackageStatus of a usage row. */
export const PACKAGE_STATUS = { IN_EFFECT: 1, NOT_YET_IN_EFFECT: 2, EXPIRED: 3 } as const;
/** The trial's row: pkgId "", this skuId, source 1, endTime 2^32 − 1. */
export const TRIAL_SKU_ID = '20000093';
export const TRIAL_END_TIME_S = 4_294_967_295;

/** What of a usage row the totals need (the adapter's UsageDetail has these and more). */
export interface UsageRowFacts {
  pkgId: string;
  status: number;
  all: bigint;
  used: bigint;
  source?: number | undefined;
}

/**
 * Whether a row is the 1,000-call trial. By its source (1) when WeChat sends one; rows
 * without a source (WeChat's own example has none) by the trial's empty pkgId.
 */
export function isTrialRow(row: Pick<UsageRowFacts, 'pkgId' | 'source'>): boolean {
  return row.source !== undefined ? row.source === PACKAGE_SOURCE.TRIAL : row.pkgId === '';
}

export interface UsageTotals {
  /** Σ (all − used) over the rows in effect (status 1), each row's share never below 0. */
  remaining: bigint;
  /** Σ all over the rows in effect: the base of WeChat's 20 %, 10 %, 5 % and 0 % alerts. */
  unitsInEffect: bigint;
  /** The trial's row (rows, if WeChat lists several); null when none is the trial. */
  trial: { all: bigint; used: bigint; remaining: bigint } | null;
}

/**
 * What an app can still draw, from its usage rows. Not `all − effectiveUse`: effectiveUse
 * is cumulative and keeps the units used from packs since expired, while `all` drops the
 * expired packs, so the difference goes wrong as soon as a pack expires with units unused.
 * Exact: 64-bit counts stay bigint.
 */
export function usageTotals(rows: readonly UsageRowFacts[]): UsageTotals {
  let remaining = 0n;
  let unitsInEffect = 0n;
  let trialRows = 0;
  const trial = { all: 0n, used: 0n, remaining: 0n };
  for (const r of rows) {
    const inEffect = r.status === PACKAGE_STATUS.IN_EFFECT;
    const left = inEffect && r.all > r.used ? r.all - r.used : 0n;
    if (inEffect) {
      remaining += left;
      unitsInEffect += r.all;
    }
    if (isTrialRow(r)) {
      trialRows++;
      trial.all += r.all;
      trial.used += r.used;
      trial.remaining += left;
    }
  }
  return { remaining, unitsInEffect, trial: trialRows > 0 ? trial : null };
}

/** WeChat pushes its quota alert when 20 %, 10 %, 5 % and 0 % of the units are left; the first is the default low mark. */
export const DEFAULT_LOW_QUOTA_PERCENT = 20;

/**
 * The default low-quota rule, with no thresholds configured: nothing left is always low
 * (exhausted: the next tap gets 1400001); otherwise low at or below 20 % of the units in
 * effect, the point where WeChat sends its first alert ("余量为 20%"). Integers only.
 */
export function defaultLowQuota(input: { remaining: number; unitsInEffect: number }): { exhausted: boolean; low: boolean } {
  const { remaining, unitsInEffect } = input;
  assertCount(remaining, 'remaining');
  assertCount(unitsInEffect, 'unitsInEffect');
  const exhausted = remaining === 0;
  // remaining / unitsInEffect <= 20 / 100, cross-multiplied in BigInt: the products may pass 2^53.
  const belowMark = BigInt(remaining) * 100n <= BigInt(unitsInEffect) * BigInt(DEFAULT_LOW_QUOTA_PERCENT);
  return { exhausted, low: exhausted || belowMark };
}

// ---------------------------------------------------------------------------
// Forecast

/** Averages are taken to this many parts of a unit per day (0.001 unit/day). */
const AVERAGE_SCALE = 1000;
/** 10000-01-01 00:00 UTC: from here on a date no longer fits 'YYYY-MM-DD'. */
const FIRST_5_DIGIT_YEAR_MS = 253_402_300_800_000;

export interface ExhaustionForecast {
  /** Whole days the remaining units last at the average rate; null when the rate is zero. */
  daysLeft: number | null;
  /** CST calendar date nowMs + daysLeft days; null when the rate is zero, or past 9999-12-31. */
  exhaustionDate: string | null;
}

/**
 * When quota runs out at the observed daily rate. daysLeft =
 * floor(remaining / dailyAverage), computed in integers: the average is first
 * rounded half up to the nearest 0.001 unit/day. A measured average holds no
 * finer information, and the rounding absorbs binary noise (1.1 × 1000 is
 * 1100.0000000000002 in floating point, but 11 units at 1.1/day last 10 days,
 * not 9). Rounding half up can move an exact boundary one day earlier (2 units
 * at 2/3 a day: 0.667/day, 2 days, not 3); an early warning is the safe side.
 * A positive average below 0.0005 counts as 0.001 rather than 0, so only a
 * true zero reads as "never runs out". With nothing remaining the quota is
 * exhausted today, at any rate.
 */
export function forecastExhaustion(input: { remaining: number; dailyAverage: number; nowMs: number }): ExhaustionForecast {
  const { remaining, dailyAverage, nowMs } = input;
  assertCount(remaining, 'remaining');
  assertInstant(nowMs, 'nowMs');
  if (!Number.isFinite(dailyAverage) || dailyAverage < 0) {
    throw new RangeError(`dailyAverage must be a finite non-negative number, got ${dailyAverage}`);
  }
  // Nothing left is exhausted now, whatever the rate; only then does a zero rate mean "never".
  if (remaining === 0) return { daysLeft: 0, exhaustionDate: cstDate(nowMs) };
  if (dailyAverage === 0) return { daysLeft: null, exhaustionDate: null };
  const perDay = Math.max(1, Math.round(dailyAverage * AVERAGE_SCALE));
  if (!Number.isSafeInteger(perDay)) throw new RangeError(`dailyAverage too large: ${dailyAverage}`);
  // BigInt: remaining × 1000 may pass 2^53, and floating division could round up to the next day.
  // The quotient itself only leaves the safe range past 9 × 10^15 days, which no date can name anyway.
  const daysLeft = Number((BigInt(remaining) * BigInt(AVERAGE_SCALE)) / BigInt(perDay));
  return { daysLeft, exhaustionDate: dateAfterDays(nowMs, daysLeft) };
}

/** The CST date whole days after an instant; CST has no daylight saving, so a day is always DAY_MS. */
function dateAfterDays(nowMs: number, days: number): string | null {
  // Compare in days first: days × DAY_MS could leave the safe-integer range.
  if (days >= FIRST_5_DIGIT_YEAR_MS / DAY_MS) return null;
  const at = nowMs + days * DAY_MS;
  return at + CST_OFFSET_MS < FIRST_5_DIGIT_YEAR_MS ? cstDate(at) : null;
}

// ---------------------------------------------------------------------------
// Observed usage rate (what the forecast runs on)

/** A day of use weighs half as much a week later. */
export const USAGE_RATE_HALF_LIFE_MS = 7 * DAY_MS;

/**
 * An exponentially weighted usage rate, as a running state over the time observed so far:
 * `weightedUnits` = Σ units × 2^(−age / half-life), `weightedMs` = the observed time weighted
 * the same way (∫ 2^(−age / half-life) dt), both as of `at`. The rate is their ratio: a
 * weighted mean of the rates of the spans observed, recent ones counting most.
 */
export interface UsageRate {
  at: number;
  weightedUnits: number;
  weightedMs: number;
}

/** A state that has observed nothing yet, starting at `at`. */
export function startUsageRate(at: number): UsageRate {
  assertInstant(at, 'at');
  return { at, weightedUnits: 0, weightedMs: 0 };
}

/**
 * The state after observing `units` used between `state.at` and `to`, spread evenly over
 * that span (the gateway knows charges by sync interval, not by the second). A `to` before
 * `state.at` (clock skew) counts the units at `state.at`, with no time.
 */
export function advanceUsageRate(state: UsageRate, to: number, units: number, halfLifeMs: number = USAGE_RATE_HALF_LIFE_MS): UsageRate {
  assertInstant(to, 'to');
  if (!Number.isFinite(units) || units < 0) throw new RangeError(`units must be a finite non-negative number, got ${units}`);
  if (!(halfLifeMs > 0) || !Number.isFinite(halfLifeMs)) throw new RangeError(`halfLifeMs must be positive, got ${halfLifeMs}`);
  const span = Math.max(0, to - state.at);
  const k = Math.LN2 / halfLifeMs;
  const decay = Math.exp(-k * span);
  // ∫ over the span of the weight as seen from its end; expm1 keeps short spans exact.
  const spanWeight = span === 0 ? 0 : -Math.expm1(-k * span) / k;
  // Each unit, spread evenly over the span, weighs spanWeight / span; at an instant, 1.
  const unitWeight = span === 0 ? 1 : spanWeight / span;
  return {
    at: Math.max(state.at, to),
    weightedUnits: state.weightedUnits * decay + units * unitWeight,
    weightedMs: state.weightedMs * decay + spanWeight,
  };
}

/** Units a day at the state's rate; 0 before any time was observed. */
export function dailyUsageRate(state: UsageRate): number {
  return state.weightedMs > 0 ? (state.weightedUnits / state.weightedMs) * DAY_MS : 0;
}

/**
 * What a sync reveals about use between it and the previous sync: WeChat's effectiveUse
 * growth, or the gateway's own confirmed charges where WeChat lags behind them. The
 * unseen part is the growth beyond the confirmed charges (codes never brought to the
 * gateway, expired codes). A shrinking effectiveUse is WeChat's bookkeeping: no use.
 */
export function observedUse(input: { effectiveUseGrowth: bigint; confirmed: number }): { units: number; unseen: number } {
  assertCount(input.confirmed, 'confirmed');
  const growth = input.effectiveUseGrowth > 0n ? input.effectiveUseGrowth : 0n;
  const confirmed = BigInt(input.confirmed);
  const unseen = growth > confirmed ? growth - confirmed : 0n;
  return { units: Number(confirmed + unseen), unseen: Number(unseen) };
}

// ---------------------------------------------------------------------------
// Reconciliation (计费误差排查)

export interface ReconcileInput {
  /** WeChat's effectiveUse growth over the period: what WeChat actually charged. */
  wechatCharged: number;
  /** Codes the gateway exchanged with errcode 0. */
  confirmed: number;
  /** Codes the gateway saw rejected with 40029: expired (charged) or bogus (not). */
  unconfirmed: number;
  /** Client-reported successful taps whose codes never reached the gateway. */
  reportedSuccessUnseen: number;
}

export interface Reconciliation {
  explained: number;
  unexplained: number;
  unconfirmedCharged: number;
  overCounted: number;
}

/**
 * Which of WeChat's charges for a period the gateway can account for
 * (计费误差排查). The three kinds of evidence are disjoint sets of codes: a code
 * the gateway saw is never also "reported but unseen". The balance always holds:
 * explained + unexplained − overCounted = wechatCharged.
 */
export function reconcile(input: ReconcileInput): Reconciliation {
  const { wechatCharged, confirmed, unconfirmed, reportedSuccessUnseen } = input;
  assertCount(wechatCharged, 'wechatCharged');
  assertCount(confirmed, 'confirmed');
  assertCount(unconfirmed, 'unconfirmed');
  assertCount(reportedSuccessUnseen, 'reportedSuccessUnseen');

  // Every confirmed code was charged: the success callback that produced it is
  // the charge. If WeChat shows less growth than that, its usage figures lag
  // (or the app is exempt), which the report must show, not absorb.
  const overCounted = Math.max(0, confirmed - wechatCharged);

  // A 40029 code is either expired (paid for) or bogus (never issued, never
  // paid). WeChat's growth is the only evidence which: count as charged only
  // as many as the growth has room for. This gives unconfirmed codes the
  // benefit of the doubt, so when some are bogus they can cover unseen
  // charges, and `unexplained` is then a lower bound, never an overstatement
  // of the gateway's blind spot.
  const afterSeen = Math.max(0, wechatCharged - confirmed);
  const unconfirmedCharged = Math.min(unconfirmed, afterSeen);

  // Unseen charges are the growth left after everything the gateway saw. A
  // client's report of a success is a code issued, hence a charge; but a
  // report cannot explain more than WeChat actually charged.
  const stillOpen = afterSeen - unconfirmedCharged;
  const reportedExplained = Math.min(reportedSuccessUnseen, stillOpen);

  const explained = confirmed + unconfirmedCharged + reportedExplained;
  // What is left is charges no evidence accounts for: codes issued to clients
  // that neither brought them nor reported them.
  const unexplained = Math.max(0, wechatCharged - explained);
  return { explained, unexplained, unconfirmedCharged, overCounted };
}
