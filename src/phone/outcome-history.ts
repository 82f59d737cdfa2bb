import { sql, type Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database } from '../store/schema.js';

export type OutcomeBucketSize = 'HOUR' | 'DAY';

/** How many exchanges ended one way in a bucket: `errorCode` is null unless refused. */
export interface OutcomeCount {
  outcome: string;
  errorCode: string | null;
  count: number;
}

export interface OutcomeBucket {
  /** The bucket's first instant (an hour, or 00:00 Asia/Shanghai for a day). */
  start: number;
  counts: OutcomeCount[];
}

export interface OutcomeHistory {
  from: number;
  to: number;
  bucket: OutcomeBucketSize;
  /** Every bucket the period touches, oldest first, empty ones included. */
  buckets: OutcomeBucket[];
  /** The whole period, most frequent first. */
  totals: OutcomeCount[];
}

export class OutcomeHistoryInputError extends Error {
  override name = 'OutcomeHistoryInputError';
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
// Days start at 00:00 Asia/Shanghai (UTC+8, no daylight saving), as billing days do.
const CST_OFFSET_MS = 8 * HOUR_MS;
const SIZE: Record<OutcomeBucketSize, { ms: number; offset: number; maxBuckets: number }> = {
  HOUR: { ms: HOUR_MS, offset: 0, maxBuckets: 24 * 31 },
  DAY: { ms: DAY_MS, offset: CST_OFFSET_MS, maxBuckets: 366 },
};

/**
 * Exchange outcomes over time, by outcome and error code, for a chart. The consent log is the
 * durable record of every exchange and legacy decrypt (disclosed, replayed or refused, with its
 * error code), so it is what this counts; its personal fields are never read. Requests refused
 * before anything about them was processed (an app not served here, a process at capacity) are
 * in the metrics only, and so not here.
 */
export class OutcomeHistoryService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly apps: ReadonlyMap<string, AppConfig>,
  ) {}

  /** `appid` null: every configured app. */
  async history(appid: string | null, from: number, to: number, bucket: OutcomeBucketSize): Promise<OutcomeHistory> {
    if (appid !== null && !this.apps.has(appid)) throw new OutcomeHistoryInputError(`app ${appid} is not configured`);
    if (!(to > from)) throw new OutcomeHistoryInputError('"to" must be after "from"');
    const size = SIZE[bucket];
    const first = bucketOf(from, size);
    const last = bucketOf(to - 1, size);
    if (last - first + 1 > size.maxBuckets) throw new OutcomeHistoryInputError(`at most ${size.maxBuckets} buckets of a ${bucket.toLowerCase()}: shorten the period or use longer buckets`);
    const appids = appid !== null ? [appid] : [...this.apps.keys()];
    const rows = appids.length ? await countsByBucket(this.db, appids, from, to, size) : [];

    const buckets = new Map<number, OutcomeBucket>();
    for (let b = first; b <= last; b++) buckets.set(b, { start: b * size.ms - size.offset, counts: [] });
    const totals = new Map<string, OutcomeCount>();
    for (const r of rows) {
      const count = Number(r.n);
      const outcome = r.outcome ?? 'unknown';
      buckets.get(Number(r.bucket))?.counts.push({ outcome, errorCode: r.error_code, count });
      const key = `${outcome}\u0000${r.error_code ?? ''}`;
      const total = totals.get(key) ?? { outcome, errorCode: r.error_code, count: 0 };
      total.count += count;
      totals.set(key, total);
    }
    for (const b of buckets.values()) b.counts.sort(byCountThenName);
    return { from, to, bucket, buckets: [...buckets.values()], totals: [...totals.values()].sort(byCountThenName) };
  }
}

function bucketOf(ms: number, size: { ms: number; offset: number }): number {
  return Math.floor((ms + size.offset) / size.ms);
}

function byCountThenName(a: OutcomeCount, b: OutcomeCount): number {
  return b.count - a.count || a.outcome.localeCompare(b.outcome) || (a.errorCode ?? '').localeCompare(b.errorCode ?? '');
}

/**
 * Bucket numbers are integer arithmetic on the stored milliseconds, the same on SQLite and
 * PostgreSQL; `appid in (…) and at` keeps the scan on the (appid, at) index.
 */
function countsByBucket(db: Kysely<Database>, appids: readonly string[], from: number, to: number, size: { ms: number; offset: number }) {
  const bucket = sql`(at + ${sql.lit(size.offset)}) / ${sql.lit(size.ms)}`;
  return sql<{ bucket: number | string; outcome: string | null; error_code: string | null; n: number | string }>`
    select ${bucket} as bucket, outcome, error_code, count(*) as n
    from audit_records
    where appid in (${sql.join(appids)}) and at >= ${from} and at < ${to} and kind = 'exchange'
    group by ${bucket}, outcome, error_code
  `
    .execute(db)
    .then((r) => r.rows);
}
