import {
  PACKAGE_SOURCE,
  PACKAGE_STATUS,
  TRIAL_END_TIME_S,
  TRIAL_SKU_ID,
  TRIAL_UNITS,
  chargeSource,
  cstDayNumber,
  packStatus,
  type BillingPack,
  type PackStatus,
} from '../billing/rules.js';

/**
 * One app's account with WeChat: its trial, its packs and how much was drawn each day.
 * Where each charge goes is decided by src/billing/rules.ts, never here.
 */

export interface SimPack extends BillingPack {
  /** WeChat's pack id: "ZY" and 19 digits. */
  id: string;
  orderId: string;
  skuId: string;
  /** PackageSource: 2 bought in the console, 3 assigned by a service provider. */
  source: 2 | 3;
}

export type ChargeSource = 'trial' | 'purchase';

export interface ChargeEntry {
  at: number;
  source: ChargeSource;
  pkgId: string | null;
}

/** A getUsageDetail row, as WeChat sends it: ids and 64-bit counts as strings, enums as numbers. */
export interface UsageRow {
  pkgId: string;
  orderId: string;
  status: 1 | 2 | 3;
  startTime: number;
  endTime: number;
  all: string;
  used: string;
  spuId: string;
  skuId: string;
  source: number;
}

export interface UsageTotals {
  /** Units of the rows in effect; before the charging start date, of the rows not yet in effect too. */
  all: bigint;
  /** Units used so far, all time, expired packs included: grows by one per charge and never shrinks. */
  effectiveUse: bigint;
  /** Σ (all − used) over the rows in effect: what can still be drawn. */
  remaining: bigint;
}

/** The skuId the simulator gives packs added without one (WeChat's real pack SKUs vary with the size bought). */
export const SIM_PACK_SKU_ID = '20000094';
/** getRecentAverageUsage looks at three months. */
const AVERAGE_WINDOW_DAYS = 90;
const AVERAGE_MONTHS = 3;
/** WeChat's smallest answer: "50" means at most 50 a month. */
const AVERAGE_FLOOR = 50n;

const USAGE_STATUS: Readonly<Record<PackStatus, 1 | 2 | 3>> = {
  IN_EFFECT: PACKAGE_STATUS.IN_EFFECT,
  USED_UP: PACKAGE_STATUS.IN_EFFECT,
  NOT_YET_EFFECTIVE: PACKAGE_STATUS.NOT_YET_IN_EFFECT,
  EXPIRED: PACKAGE_STATUS.EXPIRED,
  REFUNDED: PACKAGE_STATUS.EXPIRED,
};

export class AppLedger {
  trialUsed = 0;
  readonly packs: SimPack[] = [];
  /** Charges per Asia/Shanghai day (day number → count): the recent average needs nothing finer. */
  private readonly daily = new Map<number, number>();
  private total = 0;

  constructor(readonly openedAt: number) {}

  /** Draws one unit (trial first, then the pack that expires soonest); null when nothing is left. */
  charge(now: number): ChargeEntry | null {
    const from = chargeSource(this.trialUsed, this.packs, now);
    if (!from) return null;
    let entry: ChargeEntry;
    if (from.source === 'trial') {
      this.trialUsed++;
      entry = { at: now, source: 'trial', pkgId: null };
    } else {
      from.pack.used++;
      entry = { at: now, source: 'purchase', pkgId: from.pack.id };
    }
    const day = cstDayNumber(now);
    this.daily.set(day, (this.daily.get(day) ?? 0) + 1);
    this.total++;
    if (this.daily.size > AVERAGE_WINDOW_DAYS * 2) this.prune(day);
    return entry;
  }

  addPack(pack: SimPack): void {
    this.packs.push(pack);
  }

  /** Trial row first (pkgId "", source 1, the trial's skuId, no end), then packs in the order they were added. */
  rows(spuId: string, now: number): UsageRow[] {
    const trial: UsageRow = {
      pkgId: '',
      orderId: '',
      status: PACKAGE_STATUS.IN_EFFECT,
      startTime: Math.floor(this.openedAt / 1000),
      endTime: TRIAL_END_TIME_S,
      all: String(TRIAL_UNITS),
      used: String(this.trialUsed),
      spuId,
      skuId: TRIAL_SKU_ID,
      source: PACKAGE_SOURCE.TRIAL,
    };
    const packs = this.packs.map(
      (p): UsageRow => ({
        pkgId: p.id,
        orderId: p.orderId,
        status: USAGE_STATUS[packStatus(p, now)],
        startTime: Math.floor(p.effectiveAt / 1000),
        endTime: Math.floor(p.expiresAt / 1000),
        all: String(p.all),
        used: String(p.used),
        spuId,
        skuId: p.skuId,
        source: p.source,
      }),
    );
    return [trial, ...packs];
  }

  /**
   * WeChat's top-level figures. `all` counts the packs in effect once charging has started,
   * and before it also those not yet in effect; `effectiveUse` is cumulative.
   */
  totals(now: number, chargingStarted = true): UsageTotals {
    let all = 0n;
    let effectiveUse = 0n;
    let remaining = 0n;
    for (const row of this.rows('', now)) {
      const [rowAll, rowUsed] = [BigInt(row.all), BigInt(row.used)];
      effectiveUse += rowUsed;
      if (row.status === PACKAGE_STATUS.IN_EFFECT) {
        all += rowAll;
        if (rowAll > rowUsed) remaining += rowAll - rowUsed;
      } else if (row.status === PACKAGE_STATUS.NOT_YET_IN_EFFECT && !chargingStarted) {
        all += rowAll;
      }
    }
    return { all, effectiveUse, remaining };
  }

  /**
   * getRecentAverageUsage's `averageData`: the average monthly use over the last three months
   * (90 days to today), fuzzed upward the way WeChat describes it: at most 50 reads as 50,
   * anything more is rounded up to two significant digits (261,234 → 270,000). Null when
   * nothing was used in those months (WeChat answers 10122000 then).
   */
  recentMonthlyAverage(now: number): bigint | null {
    const today = cstDayNumber(now);
    let used = 0;
    for (const [day, n] of this.daily) if (day > today - AVERAGE_WINDOW_DAYS && day <= today) used += n;
    if (used === 0) return null;
    return fuzzUp(BigInt(Math.ceil(used / AVERAGE_MONTHS)));
  }

  /** Charges drawn since the account was opened (exempt apps draw none). */
  chargeCount(): number {
    return this.total;
  }

  private prune(today: number): void {
    for (const day of this.daily.keys()) if (day <= today - AVERAGE_WINDOW_DAYS) this.daily.delete(day);
  }
}

/** Rounds up to two significant digits, with WeChat's floor of 50. */
export function fuzzUp(n: bigint): bigint {
  if (n <= AVERAGE_FLOOR) return AVERAGE_FLOOR;
  let scale = 1n;
  while (n / scale >= 100n) scale *= 10n;
  return ((n + scale - 1n) / scale) * scale;
}
