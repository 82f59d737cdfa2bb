// Periods are whole Asia/Shanghai days, as WeChat's billing counts them.
const DAY_MS = 86_400_000;
const CST_OFFSET_MS = 8 * 3_600_000;

/** 'YYYY-MM-DD' of an instant in Asia/Shanghai. */
export function cstDate(ms: number): string {
  return new Date(ms + CST_OFFSET_MS).toISOString().slice(0, 10);
}

/** 00:00 Asia/Shanghai of a 'YYYY-MM-DD' date; NaN for anything else. */
export function cstMidnight(date: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return Number.NaN;
  return Date.parse(`${date}T00:00:00+08:00`);
}

/** The last `days` days up to now: from 00:00 of the first, to now. */
export function lastDays(days: number, now = Date.now()): { from: number; to: number } {
  return { from: cstMidnight(cstDate(now - (days - 1) * DAY_MS)), to: now };
}

/** An inclusive range of dates as instants: from 00:00 of the first to 24:00 of the last (not beyond now). */
export function dateRange(fromDate: string, toDate: string, now = Date.now()): { from: number; to: number } | null {
  const from = cstMidnight(fromDate);
  const to = Math.min(cstMidnight(toDate) + DAY_MS, now);
  return Number.isFinite(from) && Number.isFinite(to) && to > from ? { from, to } : null;
}

export const iso = (ms: number) => new Date(ms).toISOString();
export { DAY_MS };
