import { randomUUID } from 'node:crypto';
import type Keyv from 'keyv';
import type { Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/schema.js';
import type { DistributedLock } from '../store/cache.js';
import type { AccessTokenProvider } from '../../plugins/access-token/provider.js';
import type { UsageDetail, WechatClient } from '../wechat/index.js';
import { SPU_ID_BY_PRODUCT, TRIAL_UNITS } from './rules.js';

/** WeChat's view of an app's units at one moment (usage API, wechat-api.md §4). */
export interface UsageSnapshot {
  appid: string;
  syncedAt: number;
  all: bigint;
  effectiveUse: bigint;
  trialAll: number;
  trialUsed: number;
  recentAverage: bigint | null;
  details: { pkgId: string; status: number; startTime: number; endTime: number; all: string; used: string; source: string | null }[];
}

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
 * Pulls WeChat's usage API (every page, 64-bit counters kept exact) and the recent
 * daily average for an app, on demand and on a schedule. A success appends a snapshot
 * (the history reconciliation measures growth against); a failure leaves the last good
 * snapshot in place and records when and why, so quota queries can say how stale they are.
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
            // Optional: the forecast falls back to the ledger's own last-7-days average.
            this.opts.log.warn({ appid, requestId, err: e instanceof Error ? e.message : 'failed' }, 'recent average unavailable');
            return null;
          }),
      ]);
      const snapshot = toSnapshot(appid, this.now(), usage.all, usage.effectiveUse, usage.details, average?.average ?? null);
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
          recent_average: snapshot.recentAverage?.toString() ?? null,
          details: JSON.stringify(snapshot.details),
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

function toSnapshot(appid: string, syncedAt: number, all: bigint, effectiveUse: bigint, details: UsageDetail[], recentAverage: bigint | null): UsageSnapshot {
  const trial = details.find((d) => d.source === 'trial');
  // Consumption is trial-first, so without a trial row the trial's use is the first units used.
  const trialAll = trial ? Number(trial.all) : TRIAL_UNITS;
  const trialUsed = trial ? Number(trial.used) : Number(effectiveUse < BigInt(trialAll) ? effectiveUse : BigInt(trialAll));
  return {
    appid,
    syncedAt,
    all,
    effectiveUse,
    trialAll,
    trialUsed,
    recentAverage,
    details: details.map((d) => ({
      pkgId: d.pkgId,
      status: d.status,
      startTime: d.startTime,
      endTime: d.endTime,
      all: d.all.toString(),
      used: d.used.toString(),
      source: d.source ?? null,
    })),
  };
}
