import { sql, type Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database } from '../store/schema.js';
import { DAY_MS, TRIAL_UNITS, advanceUsageRate, dailyUsageRate, exemption, forecastExhaustion, type ExemptionRule } from './rules.js';
import { parseRate, type UsageSync } from './usage-sync.js';
import { quotaFlags, type AlertThresholds } from './alerts.js';
import { INT32_MAX } from '../util/int32.js';

export interface Quota {
  appid: string;
  exempt: boolean;
  exemptionRule: ExemptionRule | null;
  /** WECHAT: from the last usage sync; LEDGER: never synced, so the mirror's own ledger. */
  basis: 'WECHAT' | 'LEDGER';
  trialUsed: number;
  trialRemaining: number;
  packsRemaining: number;
  remaining: number;
  /** Units of the trial and packs in effect (used or not): the base of the default low mark. */
  unitsInEffect: number;
  /** Charges the gateway recorded since the sync (units drawn; exempt ones excluded). */
  chargesSinceSync: number;
  estimatedRemaining: number;
  /** The observed daily rate (exponentially weighted; src/billing/rules.ts advanceUsageRate). */
  dailyAverage: number;
  daysLeft: number | null;
  forecastExhaustionDate: string | null;
  /** WeChat's get_recent_average: average use PER MONTH over three months, fuzzed upward; null before a sync read it. */
  wechatMonthlyAverageBound: number | null;
  lowQuota: boolean;
  /** Nothing left (estimatedRemaining 0): the next tap gets 1400001. Never for exempt apps. */
  exhausted: boolean;
  syncedAt: number | null;
  lastSyncAttemptAt: number | null;
  lastSyncError: string | null;
}

interface Row {
  appid: string;
  trial_used: number;
  synced_at: number | string | null;
  all_units: string | null;
  effective_use: string | null;
  snap_trial_all: number | null;
  snap_trial_used: number | null;
  snap_trial_remaining: number | null;
  remaining_units: string | null;
  units_in_effect: string | null;
  monthly_average: string | null;
  rate_weighted_units: string | null;
  rate_weighted_ms: string | null;
  charged_since_sync: number | string;
  charged_last_week: number | string;
  own_left: number | string;
  own_all: number | string;
}

/**
 * Quota for any number of apps in ONE database query (and one cache round trip for the
 * sync status), so `apps` costs the same for 1 or 50 apps. Numbers come from WeChat's
 * last usage sync, minus the charges the gateway recorded since; before any sync, from
 * the mirror's own ledger.
 */
export class QuotaService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly apps: ReadonlyMap<string, AppConfig>,
    private readonly usage: UsageSync,
    private readonly thresholds: (appid: string) => AlertThresholds | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async load(appids: readonly string[]): Promise<(Quota | Error)[]> {
    const now = this.now();
    const known = appids.filter((a) => this.apps.has(a));
    const [rows, statuses] = await Promise.all([known.length ? this.query(known, now) : Promise.resolve([] as Row[]), this.usage.statuses(known)]);
    const byApp = new Map(rows.map((r) => [r.appid, r]));
    return appids.map((appid) => {
      const app = this.apps.get(appid);
      if (!app) return new Error(`app ${appid} is not configured`);
      // Rows exist for every configured app (registered at start-up); a missing one reads as untouched.
      const row = byApp.get(appid) ?? emptyRow(appid);
      return this.toQuota(app, row, statuses.get(appid), now);
    });
  }

  private async query(appids: string[], now: number): Promise<Row[]> {
    const { rows } = await quotaRowsQuery(appids, now).execute(this.db);
    return rows;
  }

  private toQuota(app: AppConfig, r: Row, status: { lastAttemptAt: number; lastError: string | null } | undefined, now: number): Quota {
    const ex = exemption({ subjectType: app.subjectType, category: app.category });
    const chargesSinceSync = Number(r.charged_since_sync);
    const syncedAt = r.synced_at === null ? null : Number(r.synced_at);
    let basis: Quota['basis'];
    let trialUsed: number;
    let trialRemaining: number;
    let remaining: number;
    let unitsInEffect: number;
    let estimatedRemaining: number;
    if (syncedAt !== null && r.all_units !== null && r.effective_use !== null) {
      basis = 'WECHAT';
      trialUsed = r.snap_trial_used ?? 0;
      trialRemaining = r.snap_trial_remaining ?? Math.max(0, (r.snap_trial_all ?? TRIAL_UNITS) - trialUsed);
      // Snapshots from before the usage rows were read keep the difference they were taken with.
      remaining = clampToNumber(r.remaining_units !== null ? BigInt(r.remaining_units) : BigInt(r.all_units) - BigInt(r.effective_use));
      unitsInEffect = clampToNumber(BigInt(r.units_in_effect ?? r.all_units));
      estimatedRemaining = Math.max(0, remaining - chargesSinceSync);
    } else {
      basis = 'LEDGER';
      trialUsed = r.trial_used;
      trialRemaining = Math.max(0, TRIAL_UNITS - trialUsed);
      remaining = trialRemaining + Number(r.own_left);
      unitsInEffect = TRIAL_UNITS + Number(r.own_all);
      estimatedRemaining = remaining;
    }
    const state = syncedAt === null ? null : parseRate(syncedAt, r.rate_weighted_units, r.rate_weighted_ms);
    // The snapshot's observed rate with the charges seen since folded in; before any such
    // snapshot, the last 7 days of confirmed charges.
    const dailyAverage = state ? dailyUsageRate(advanceUsageRate(state, now, chargesSinceSync)) : Number(r.charged_last_week) / 7;
    const forecast = ex.exempt ? { daysLeft: null, exhaustionDate: null } : forecastExhaustion({ remaining: clampInt(estimatedRemaining), dailyAverage, nowMs: now });
    const flags = quotaFlags(
      { appid: app.appid, remaining: clampInt(estimatedRemaining), unitsInEffect: clampInt(unitsInEffect), daysLeft: forecast.daysLeft, exempt: ex.exempt },
      this.thresholds(app.appid),
    );
    return {
      appid: app.appid,
      exempt: ex.exempt,
      exemptionRule: ex.rule,
      basis,
      trialUsed,
      trialRemaining,
      packsRemaining: clampInt(remaining - trialRemaining),
      remaining: clampInt(remaining),
      unitsInEffect: clampInt(unitsInEffect),
      chargesSinceSync,
      estimatedRemaining: clampInt(estimatedRemaining),
      dailyAverage,
      daysLeft: forecast.daysLeft,
      forecastExhaustionDate: forecast.exhaustionDate,
      wechatMonthlyAverageBound: r.monthly_average === null ? null : clampToNumber(BigInt(r.monthly_average)),
      lowQuota: flags.low,
      exhausted: flags.exhausted,
      syncedAt,
      lastSyncAttemptAt: status?.lastAttemptAt ?? null,
      lastSyncError: status?.lastError ?? null,
    };
  }
}

function emptyRow(appid: string): Row {
  return {
    appid,
    trial_used: 0,
    synced_at: null,
    all_units: null,
    effective_use: null,
    snap_trial_all: null,
    snap_trial_used: null,
    snap_trial_remaining: null,
    remaining_units: null,
    units_in_effect: null,
    monthly_average: null,
    rate_weighted_units: null,
    rate_weighted_ms: null,
    charged_since_sync: 0,
    charged_last_week: 0,
    own_left: 0,
    own_all: 0,
  };
}

/** GraphQL Int is 32-bit; unit counts beyond it are clamped rather than wrapped or refused. */
function clampToNumber(v: bigint): number {
  if (v < 0n) return 0;
  return v > BigInt(INT32_MAX) ? INT32_MAX : Number(v);
}

function clampInt(v: number): number {
  return Math.min(INT32_MAX, Math.max(0, v));
}

/**
 * One row per app: its trial counter, latest usage snapshot, charges since that snapshot and (for
 * the rate, when the snapshot carries no observed-rate state) in the last week, and units left
 * and in effect in its packs (bought and assigned).
 *
 * A charge's tap time is never after its recording (src/billing/charge-hooks.ts records the earlier of the two), so
 * `created_at > synced_at` adds nothing to the since-sync count but lets the (appid, created_at)
 * index bound it to the charges since the sync; without it every quota read (and the low-quota
 * watch, each minute) scanned every charge the app ever had.
 */
export function quotaRowsQuery(appids: readonly string[], now: number) {
  const weekAgo = now - 7 * DAY_MS;
  return sql<Row>`
    select t.appid, t.trial_used,
      s.synced_at, s.all_units, s.effective_use, s.trial_all as snap_trial_all, s.trial_used as snap_trial_used,
      s.trial_remaining as snap_trial_remaining, s.remaining_units, s.units_in_effect, s.monthly_average,
      s.rate_weighted_units, s.rate_weighted_ms,
      (select count(*) from charges c
        where c.appid = t.appid and c.status = 'confirmed' and c.source <> 'exempt'
          and coalesce(c.tapped_at, c.created_at) > coalesce(s.synced_at, -1)
          and c.created_at > coalesce(s.synced_at, -1)) as charged_since_sync,
      -- Only without a snapshot's observed rate: the week's charges are many index entries to count.
      case when s.rate_weighted_ms is null then (select count(*) from charges c
        where c.appid = t.appid and c.status = 'confirmed' and c.created_at > ${weekAgo}) else 0 end as charged_last_week,
      (select coalesce(sum(p.units_all - p.units_used), 0) from packs p
        where p.owner_kind = 'app' and p.owner_id = t.appid and p.refund_requested_at is null
          and p.effective_at <= ${now} and p.expires_at > ${now}) as own_left,
      -- Units in effect come from the snapshot once there is one; these only before the first sync.
      case when s.id is null then (select coalesce(sum(p.units_all), 0) from packs p
        where p.owner_kind = 'app' and p.owner_id = t.appid and p.refund_requested_at is null
          and p.effective_at <= ${now} and p.expires_at > ${now}) else 0 end as own_all
    from app_trials t
    left join usage_snapshots s on s.id = (
      select s2.id from usage_snapshots s2 where s2.appid = t.appid order by s2.synced_at desc, s2.id desc limit 1)
    where t.appid in (${sql.join(appids)})
  `;
}
