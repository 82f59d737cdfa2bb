const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2}))$/;

/**
 * Parses an ISO 8601 instant strictly, to epoch milliseconds: no silent roll-over (2023-02-30 is
 * refused, not March 2). Throws a plain Error whose message is safe to show a client.
 */
export function parseInstant(value: unknown): number {
  const m = typeof value === 'string' ? ISO.exec(value) : null;
  if (!m) throw new Error('DateTime must be an ISO 8601 date and time with a zone, e.g. 2026-11-22T08:00:00Z');
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const offsetOk = m[7] === 'Z' || (Number(m[8]) <= 23 && Number(m[9]) <= 59);
  if (year < 1970 || year > 9999 || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59 || !offsetOk) {
    throw new Error('DateTime is not a real date and time');
  }
  return Date.parse(value as string);
}
