import { sql, type Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database } from '../store/schema.js';
import { CST_OFFSET_MS, DAY_MS, cstDate } from './rules.js';
import { TAP_PLAUSIBLE_MS } from './charge-hooks.js';

/** What WeChat's usage API said at the last sync of one Asia/Shanghai day. */
export interface UsageHistoryPoint {
  syncedAt: number;
  remaining: number;
  unitsInEffect: number;
  effectiveUse: number;
}

/** One Asia/Shanghai day's use: what the gateway recorded, and what that day's syncs revealed it never saw. */
export interface UsageHistoryDay {
  date: string;
  confirmed: number;
  unconfirmed: number;
  unseen: number;
}

export interface UsageHistory {
  appid: string;
  from: number;
  to: number;
  /** The last snapshot of each day in the period, oldest first, led by the last one before it (where the line starts). */
  snapshots: UsageHistoryPoint[];
  /** Every day of the period, oldest first, days without use included. */
  days: UsageHistoryDay[];
}

export class UsageHistoryInputError extends Error {
  override name = 'UsageHistoryInputError';
}

/** A chart's worth: long enough for a year of days, short enough to read in one go. */
export const MAX_HISTORY_DAYS = 366;

const INT_MAX = 2_147_483_647;

/**
 * An app's usage over a period, for a chart: WeChat's counts as each day's last usage sync left
 * them, and per day the charges the gateway recorded (by tap time, as WeChat charges) and the
 * unseen ones syncs revealed. Exempt charges are left out, as in reconciliation: WeChat charges
 * an exempt app nothing.
 */
export class UsageHistoryService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly apps: ReadonlyMap<string, AppConfig>,
  ) {}

  async history(appid: string, from: number, to: number): Promise<UsageHistory> {
    if (!this.apps.has(appid)) throw new UsageHistoryInputError(`app ${appid} is not configured`);
    if (!(to > from)) throw new UsageHistoryInputError('"to" must be after "from"');
    if (to - from > MAX_HISTORY_DAYS * DAY_MS) throw new UsageHistoryInputError(`a period of at most ${MAX_HISTORY_DAYS} days`);
    const [snapshots, before, charges] = await Promise.all([
      this.db
        .selectFrom('usage_snapshots')
        .select(['synced_at', 'all_units', 'effective_use', 'remaining_units', 'units_in_effect', 'unseen_units'])
        .where('appid', '=', appid)
        .where('synced_at', '>', from)
        .where('synced_at', '<=', to)
        .orderBy('synced_at')
        .orderBy('id')
        .execute(),
      this.db
        .selectFrom('usage_snapshots')
        .select(['synced_at', 'all_units', 'effective_use', 'remaining_units', 'units_in_effect', 'unseen_units'])
        .where('appid', '=', appid)
        .where('synced_at', '<=', from)
        .orderBy('synced_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst(),
      dailyCharges(this.db, appid, from, to),
    ]);

    const days = new Map<string, UsageHistoryDay>();
    for (let t = from; t < to; t += DAY_MS) days.set(cstDate(t), { date: cstDate(t), confirmed: 0, unconfirmed: 0, unseen: 0 });
    days.set(cstDate(to - 1), { date: cstDate(to - 1), confirmed: 0, unconfirmed: 0, unseen: 0 });
    for (const c of charges) {
      const day = days.get(cstDate(Number(c.day) * DAY_MS));
      if (!day) continue;
      if (c.status === 'confirmed') day.confirmed += Number(c.n);
      else if (c.status === 'unconfirmed') day.unconfirmed += Number(c.n);
    }

    const lastOfDay = new Map<string, UsageHistoryPoint>();
    for (const s of snapshots) {
      const date = cstDate(Number(s.synced_at));
      const day = days.get(date);
      if (day) day.unseen += Number(s.unseen_units ?? 0);
      lastOfDay.set(date, toPoint(s));
    }
    return {
      appid,
      from,
      to,
      snapshots: [...(before ? [toPoint(before)] : []), ...lastOfDay.values()],
      days: [...days.values()].sort((a, b) => a.date.localeCompare(b.date)),
    };
  }
}

function toPoint(s: { synced_at: number | string; all_units: string; effective_use: string; remaining_units: string | null; units_in_effect: string | null }): UsageHistoryPoint {
  // Snapshots from before the usage rows were read keep the difference they were taken with (as quota does).
  const remaining = s.remaining_units !== null ? BigInt(s.remaining_units) : BigInt(s.all_units) - BigInt(s.effective_use);
  return {
    syncedAt: Number(s.synced_at),
    remaining: clamp(remaining),
    unitsInEffect: clamp(BigInt(s.units_in_effect ?? s.all_units)),
    effectiveUse: clamp(BigInt(s.effective_use)),
  };
}

function clamp(v: bigint): number {
  if (v < 0n) return 0;
  return v > BigInt(INT_MAX) ? INT_MAX : Number(v);
}

/**
 * The app's charges by Asia/Shanghai day number and status. The day is integer arithmetic on the
 * stored milliseconds, the same on SQLite and PostgreSQL; the created_at bounds hold the scan to
 * the (appid, created_at) index, as in chargesInWindow.
 */
function dailyCharges(db: Kysely<Database>, appid: string, from: number, to: number) {
  const tap = sql`coalesce(tapped_at, created_at)`;
  return sql<{ day: number | string; status: string; n: number | string }>`
    select (${tap} + ${sql.lit(CST_OFFSET_MS)}) / ${sql.lit(DAY_MS)} as day, status, count(*) as n
    from charges
    where appid = ${appid}
      and created_at > ${from} and created_at < ${to + TAP_PLAUSIBLE_MS}
      and ${tap} > ${from} and ${tap} <= ${to}
      and (source is null or source <> 'exempt')
    group by (${tap} + ${sql.lit(CST_OFFSET_MS)}) / ${sql.lit(DAY_MS)}, status
  `
    .execute(db)
    .then((r) => r.rows);
}
