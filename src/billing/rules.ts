/**
 * WeChat's billing rules for phone-number verification, as pure functions.
 *
 * The simulator charges with these, and the gateway's billing mirror reuses
 * them, so both sides agree on what a charge is and where it is drawn from.
 * Times are integer milliseconds since the epoch; calendar dates are China
 * Standard Time (Asia/Shanghai, UTC+8, no daylight saving). Integer arithmetic
 * only: unit counts and instants never go through floating point.
 */

/** Free calls per mini-program account, shared by release, trial and develop versions. */
export const TRIAL_UNITS = 1000;

/** WeChat's charging start date; a setting, not a constant (one copy of WeChat's page says 2025-08-04). */
export const DEFAULT_CHARGING_START_DATE = '2023-08-28';

export const DAY_MS = 86_400_000;
/** Asia/Shanghai has been UTC+8 all year since 1991. */
export const CST_OFFSET_MS = 8 * 3_600_000;
/** A pack may be refunded within this long after payment, if unused. */
export const REFUND_WINDOW_MS = 7 * DAY_MS;

export type SubjectType = 'enterprise' | 'individual' | 'government' | 'non-profit' | 'public-institution' | 'other';
export const SUBJECT_TYPES: readonly SubjectType[] = [
  'enterprise',
  'individual',
  'government',
  'non-profit',
  'public-institution',
  'other',
];

export type Product = 'quick' | 'realtime';
/** Usage-API product ids seen in the wild (not official), see wechat-api.md §4. */
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
 * Whether an app is free of charge, and by which rule (billing.md "Free of
 * charge"). When several rules hold, the first in the page's order is named.
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

function compareIds(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a === b ? 0 : a < b ? -1 : 1;
  const [sa, sb] = [String(a), String(b)];
  // Numeric strings (ids from the usage API) compare as numbers, shorter first.
  if (/^\d+$/.test(sa) && /^\d+$/.test(sb) && sa.length !== sb.length) return sa.length < sb.length ? -1 : 1;
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
 * Refund rule: only within 7 days after payment and only if not a single unit
 * was used. "Within 7 days" is read as less than 7×24 h after payment.
 */
export function refundable(pack: { paidAt: number; used: number; refundedAt?: number | null }, nowMs: number): boolean {
  if (pack.refundedAt != null) return false;
  return pack.used === 0 && nowMs >= pack.paidAt && nowMs - pack.paidAt < REFUND_WINDOW_MS;
}
