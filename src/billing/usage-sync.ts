import { randomUUID } from 'node:crypto';
import type Keyv from 'keyv';
import type { Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/schema.js';
import type { DistributedLock } from '../store/cache.js';
import { WechatApiError, type AccessTokenProvider, type UsageDetail, type WechatClient } from '../wechat/index.js';
import {
  DAY_MS,
  SPU_ID_BY_PRODUCT,
  advanceUsageRate,
  isTrialRow,
  observedUse,
  startUsageRate,
  usageTotals,
  type UsageRate,
} from './rules.js';
import { chargesInWindow } from './reconciliation.js';
import { INT32_MAX } from '../util/int32.js';

/** One usage row as a snapshot keeps it: 64-bit counts as decimal strings. */
export interface SnapshotRow {
  pkgId: string;
  orderId?: string;
  status: number;
  startTime: number;
  endTime: number;
  all: string;
  used: string;
  spuId?: string;
  skuId?: string;
  source: number | null;
  /** The 1,000-call trial's row (src/billing/rules.ts isTrialRow). */
  trial: boolean;
}

/** WeChat's view of an app's units at one moment (from the usage API). */
export interface UsageSnapshot {
  appid: string;
  syncedAt: number;
  /** WeChat's top-level `all` and cumulative `effectiveUse`, exact. */
  all: bigint;
  effectiveUse: bigint;
  /** Σ (all − used) over the rows in effect: what the app can still draw. */
  remaining: bigint;
  /** Σ all over the rows in effect: the base of the default low-quota mark. */
  unitsInEffect: bigint;
  /** From the trial's row; all 0 when WeChat lists none. */
  trialAll: number;
  trialUsed: number;
  trialRemaining: number;
  /** get_recent_average's averageData (a fuzzed monthly upper bound); null when unavailable. */
  monthlyAverage: bigint | null;
  /** effectiveUse growth since the previous snapshot beyond the gateway's confirmed charges. */
  unseen: number;
  /** The observed-rate state as of syncedAt (the forecast's input). */
  rate: UsageRate;
  details: SnapshotRow[];
}

/** How much history seeds the observed rate when there is no earlier state: the gateway's own week. */
const RATE_SEED_MS = 7 * DAY_MS;
/** get_recent_average: "this product has no recent usage data" — an answer, not a failure. */
const NO_RECENT_USAGE = 10122000;

/** What the last sync attempt did: kept in the cache so every instance can say how old its numbers are. */
export interface SyncStatus {
  lastAttemptAt: number;
  lastSuccessAt: number | null;
  lastError: string | null;
}

export class UsageSyncError extends Error {
  override name = 'UsageSyncError';
  constructor(
    message: string,
    readonly lastSuccessAt: number | null,
  ) {
    super(message);
  }
}

export interface UsageSyncOptions {
  db: Kysely<Database>;
  /** Aligned with WeChat's numbers after each sync, so the mirror cannot drift silently. */
  ledger?: { alignWithWechat(appid: string, snapshot: UsageSnapshot, now: number): Promise<void> };
  cache: Keyv;
  lock: DistributedLock | null;
  tokens: AccessTokenProvider;
  wechat: WechatClient;
  apps: ReadonlyMap<string, AppConfig>;
  log: Logger;
  now?: () => number;
  /** Called after every successful sync (alerts re-evaluate). */
  onSynced?: (appid: string) => void | Promise<void>;
}

const statusKey = (appid: string) => `usage-sync:${appid}`;

/**
 * Pulls WeChat's usage API (every page, 64-bit counters kept exact) and its recent monthly
 * average for an app, on demand and on a schedule. A success appends a snapshot (the history
 * reconciliation measures growth against, and the observed rate the forecast runs on); a
 * failure leaves the last good snapshot in place and records when and why, so quota queries
 * can say how stale they are.
 */
export class UsageSync {
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: UsageSyncOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** `requestId`: the request that asked for this sync, for its log lines; none for scheduled syncs. */
  async sync(appid: string, requestId?: string): Promise<UsageSnapshot> {
    const app = this.opts.apps.get(appid);
    if (!app) throw new UsageSyncError(`app ${appid} is not configured`, null);
    const attemptAt = this.now();
    const previous = await this.status(appid);
    try {
      const spuId = SPU_ID_BY_PRODUCT[app.product];
      const [usage, average] = await Promise.all([
        this.opts.tokens.withToken(appid, (token) => this.opts.wechat.getUsage(token, { spuId }), requestId),
        this.opts.tokens
          .withToken(appid, (token) => this.opts.wechat.getRecentAverage(token, { spuId }), requestId)
          .catch((e: unknown) => {
            // Optional: only shown beside the forecast, which runs on what the gateway observes.
            if (e instanceof WechatApiError && e.errcode === NO_RECENT_USAGE) return null;
            this.opts.log.warn({ appid, requestId, err: e instanceof Error ? e.message : 'failed' }, 'recent average unavailable');
            return null;
          }),
      ]);
      if (!usage.detailsComplete) {
        // Remaining is summed over the rows: a partial list would under-report it.
        throw new Error(`usage rows incomplete: read ${usage.details.length} of ${usage.total} rows (the listing changed while paging); try again`);
      }
      const syncedAt = this.now();
      const rate = await this.observe(appid, syncedAt, usage.effectiveUse);
      const snapshot = toSnapshot(appid, syncedAt, usage.all, usage.effectiveUse, usage.details, average?.monthlyAverage ?? null, rate);
      await this.opts.db
        .insertInto('usage_snapshots')
        .values({
          id: `us_${randomUUID()}`,
          appid,
          synced_at: snapshot.syncedAt,
          all_units: snapshot.all.toString(),
          effective_use: snapshot.effectiveUse.toString(),
          trial_all: snapshot.trialAll,
          trial_used: snapshot.trialUsed,
          recent_average: null,
          details: JSON.stringify(snapshot.details),
          remaining_units: snapshot.remaining.toString(),
          units_in_effect: snapshot.unitsInEffect.toString(),
          trial_remaining: snapshot.trialRemaining,
          monthly_average: snapshot.monthlyAverage?.toString() ?? null,
          unseen_units: snapshot.unseen,
          rate_weighted_units: String(snapshot.rate.weightedUnits),
          rate_weighted_ms: String(snapshot.rate.weightedMs),
        })
        .execute();
      await this.opts.ledger?.alignWithWechat(appid, snapshot, snapshot.syncedAt);
      await this.setStatus(appid, { lastAttemptAt: attemptAt, lastSuccessAt: snapshot.syncedAt, lastError: null });
      await this.opts.onSynced?.(appid);
      return snapshot;
    } catch (e) {
      // Adapter messages carry the endpoint and errcode only, never tokens or secrets.
      const message = e instanceof Error ? e.message : 'usage sync failed';
      await this.setStatus(appid, { lastAttemptAt: attemptAt, lastSuccessAt: previous?.lastSuccessAt ?? null, lastError: message }).catch(() => {});
      this.opts.log.warn({ appid, requestId, err: message }, 'usage sync failed; keeping the last good snapshot');
      throw new UsageSyncError(message, previous?.lastSuccessAt ?? null);
    }
  }

  /**
   * What this sync adds to the observed rate: the use since the previous snapshot (WeChat's
   * effectiveUse growth, or the gateway's confirmed charges where WeChat lags), folded into
   * that snapshot's rate state. Without an earlier state, the rate is seeded with the
   * gateway's own confirmed charges of the week before.
   */
  private async observe(appid: string, syncedAt: number, effectiveUse: bigint): Promise<{ rate: UsageRate; unseen: number }> {
    const prev = await this.opts.db
      .selectFrom('usage_snapshots')
      .select(['synced_at', 'effective_use', 'rate_weighted_units', 'rate_weighted_ms'])
      .where('appid', '=', appid)
      .where('synced_at', '<=', syncedAt)
      .orderBy('synced_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const confirmedSince = async (from: number) => {
      const rows = await chargesInWindow(this.opts.db, appid, from, syncedAt).execute();
      return Number(rows.find((r) => r.status === 'confirmed')?.n ?? 0);
    };
    const state = prev && parseRate(Number(prev.synced_at), prev.rate_weighted_units, prev.rate_weighted_ms);
    if (prev && state) {
      const use = observedUse({ effectiveUseGrowth: effectiveUse - BigInt(prev.effective_use), confirmed: await confirmedSince(Number(prev.synced_at)) });
      return { rate: advanceUsageRate(state, syncedAt, use.units), unseen: use.unseen };
    }
    const unseen = prev
      ? observedUse({ effectiveUseGrowth: effectiveUse - BigInt(prev.effective_use), confirmed: await confirmedSince(Number(prev.synced_at)) }).unseen
      : 0;
    const seedFrom = syncedAt - RATE_SEED_MS;
    return { rate: advanceUsageRate(startUsageRate(seedFrom), syncedAt, await confirmedSince(seedFrom)), unseen };
  }

  async status(appid: string): Promise<SyncStatus | undefined> {
    return (await this.statuses([appid])).get(appid);
  }

  /** One cache round trip for any number of apps. */
  async statuses(appids: readonly string[]): Promise<Map<string, SyncStatus>> {
    const out = new Map<string, SyncStatus>();
    if (!appids.length) return out;
    try {
      const values = (await this.opts.cache.getMany(appids.map(statusKey))) as (SyncStatus | undefined)[];
      appids.forEach((appid, i) => {
        const v = values[i];
        if (v) out.set(appid, v);
      });
    } catch {
      // The cache is advisory here: the snapshots themselves are in the database.
    }
    return out;
  }

  /** Syncs every app every `intervalMs`; with Redis, one instance per app and interval does it. */
  start(intervalMs: number): void {
    if (intervalMs <= 0 || this.timer) return;
    const run = async () => {
      for (const appid of this.opts.apps.keys()) {
        const held = this.opts.lock ? await this.opts.lock.tryAcquire(`usage-sync:${appid}`, Math.floor(intervalMs * 0.8)).catch(() => 'local') : 'local';
        if (!held) continue;
        await this.sync(appid).catch(() => {});
      }
    };
    this.timer = setInterval(() => void run(), intervalMs);
    this.timer.unref();
    void run();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async setStatus(appid: string, status: SyncStatus): Promise<void> {
    await this.opts.cache.set(statusKey(appid), status);
  }
}

/** A stored rate state, or null when the snapshot has none (taken before 0007) or it is unreadable. */
export function parseRate(at: number, weightedUnits: string | null, weightedMs: string | null): UsageRate | null {
  if (weightedUnits === null || weightedMs === null) return null;
  const [u, ms] = [Number(weightedUnits), Number(weightedMs)];
  return Number.isFinite(u) && u >= 0 && Number.isFinite(ms) && ms >= 0 ? { at, weightedUnits: u, weightedMs: ms } : null;
}

/** The trial's counts fit an integer column; a bigger one is not WeChat's 1,000-call trial anyway. */
const toInt = (v: bigint) => (v > BigInt(INT32_MAX) ? INT32_MAX : Number(v));

function toSnapshot(
  appid: string,
  syncedAt: number,
  all: bigint,
  effectiveUse: bigint,
  details: UsageDetail[],
  monthlyAverage: bigint | null,
  observed: { rate: UsageRate; unseen: number },
): UsageSnapshot {
  const totals = usageTotals(details);
  return {
    appid,
    syncedAt,
    all,
    effectiveUse,
    remaining: totals.remaining,
    unitsInEffect: totals.unitsInEffect,
    trialAll: toInt(totals.trial?.all ?? 0n),
    trialUsed: toInt(totals.trial?.used ?? 0n),
    trialRemaining: toInt(totals.trial?.remaining ?? 0n),
    monthlyAverage,
    unseen: observed.unseen,
    rate: observed.rate,
    details: details.map((d) => ({
      pkgId: d.pkgId,
      ...(d.orderId !== undefined ? { orderId: d.orderId } : {}),
      status: d.status,
      startTime: d.startTime,
      endTime: d.endTime,
      all: d.all.toString(),
      used: d.used.toString(),
      ...(d.spuId !== undefined ? { spuId: d.spuId } : {}),
      ...(d.skuId !== undefined ? { skuId: d.skuId } : {}),
      source: d.source ?? null,
      trial: isTrialRow(d),
    })),
  };
}
