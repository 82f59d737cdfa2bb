import {
  DAY_MS,
  TRIAL_UNITS,
  chargeSource,
  packStatus,
  type BillingPack,
  type PackStatus,
} from '../billing/rules.js';

/**
 * One app's account with WeChat: its trial, its packs and what was drawn when.
 * Where each charge goes is decided by src/billing/rules.ts, never here.
 */

export interface SimPack extends BillingPack {
  id: number;
}

export type ChargeSource = 'trial' | 'purchase';

export interface ChargeEntry {
  at: number;
  source: ChargeSource;
  pkgId: number | null;
}

export interface UsageRow {
  pkgId: number;
  /** 1 active, 2 not yet active, 3 expired (wechat-api.md §4). */
  status: 1 | 2 | 3;
  startTime: number;
  endTime: number;
  all: number;
  used: number;
  spuId: string;
  skuId: string;
  source: 'trial' | 'purchase';
}

export interface UsageTotals {
  /** Units ever usable: the trial, packs now usable, and what expired packs actually delivered. */
  all: bigint;
  /** Units used so far, all time: grows by one per charge and never shrinks. */
  effectiveUse: bigint;
}

/** The trial row has no end; this far-future instant keeps clients that filter on endTime happy. */
export const TRIAL_END_TIME_S = 4_102_444_800; // 2100-01-01T00:00:00Z
export const TRIAL_PKG_ID = 0;
const AVERAGE_WINDOW_DAYS = 7;
// Older entries cannot change the 7-day average; pruning keeps long benchmarks flat in memory.
const LOG_PRUNE_THRESHOLD = 50_000;

const USAGE_STATUS: Readonly<Record<PackStatus, 1 | 2 | 3>> = {
  IN_EFFECT: 1,
  USED_UP: 1,
  NOT_YET_EFFECTIVE: 2,
  EXPIRED: 3,
  REFUNDED: 3,
};

export class AppLedger {
  trialUsed = 0;
  readonly packs: SimPack[] = [];
  private log: ChargeEntry[] = [];

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
    this.log.push(entry);
    if (this.log.length > LOG_PRUNE_THRESHOLD) this.prune(now);
    return entry;
  }

  addPack(pack: SimPack): void {
    this.packs.push(pack);
  }

  /** Trial row first, then packs in the order they were added. */
  rows(spuId: string, now: number): UsageRow[] {
    const trial: UsageRow = {
      pkgId: TRIAL_PKG_ID,
      status: 1,
      startTime: Math.floor(this.openedAt / 1000),
      endTime: TRIAL_END_TIME_S,
      all: TRIAL_UNITS,
      used: this.trialUsed,
      spuId,
      skuId: '0',
      source: 'trial',
    };
    const packs = this.packs.map(
      (p): UsageRow => ({
        pkgId: p.id,
        status: USAGE_STATUS[packStatus(p, now)],
        startTime: Math.floor(p.effectiveAt / 1000),
        endTime: Math.floor(p.expiresAt / 1000),
        all: p.all,
        used: p.used,
        spuId,
        skuId: '1',
        source: 'purchase',
      }),
    );
    return [trial, ...packs];
  }

  /**
   * Chosen so that `all − effectiveUse` is exactly what can still be drawn now
   * (trial left plus packs in effect) while effectiveUse only ever grows, which
   * is what reconciliation by "effectiveUse growth" needs.
   */
  totals(now: number): UsageTotals {
    let all = BigInt(TRIAL_UNITS);
    let used = BigInt(this.trialUsed);
    for (const p of this.packs) {
      const status = packStatus(p, now);
      used += BigInt(p.used);
      if (status === 'IN_EFFECT' || status === 'USED_UP') all += BigInt(p.all);
      else if (status === 'EXPIRED' || status === 'REFUNDED') all += BigInt(p.used);
    }
    return { all, effectiveUse: used };
  }

  /** Units charged per day over the last 7 days, rounded half up to an integer. */
  recentAverage(now: number): bigint {
    const since = now - AVERAGE_WINDOW_DAYS * DAY_MS;
    let count = 0;
    for (let i = this.log.length - 1; i >= 0; i--) {
      const entry = this.log[i]!;
      if (entry.at <= since) break;
      if (entry.at <= now) count++;
    }
    return BigInt(Math.floor((2 * count + AVERAGE_WINDOW_DAYS) / (2 * AVERAGE_WINDOW_DAYS)));
  }

  charges(): readonly ChargeEntry[] {
    return this.log;
  }

  private prune(now: number): void {
    const keepFrom = now - (AVERAGE_WINDOW_DAYS + 1) * DAY_MS;
    const first = this.log.findIndex((e) => e.at > keepFrom);
    if (first > 0) this.log = this.log.slice(first);
  }
}
