/**
 * Whether an error means the database could not be used right now — it is down, restarting,
 * unreachable, out of connections or resources, or a statement waited too long — as opposed to a
 * bug. The first kind is answered as SERVICE_UNAVAILABLE ("retry in a moment"), the second stays
 * a masked internal error.
 */
export function isStorageUnavailable(error: unknown): boolean {
  // A few links of `cause` at most: wrappers (Kysely, our own) keep the driver's error there.
  for (let e = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (typeof e !== 'object') return false;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || SYSTEM_CODES.has(code) || SQLITE_UNAVAILABLE.test(code))) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && PG_CLIENT_MESSAGES.test(message)) return true;
  }
  return false;
}

/**
 * PostgreSQL's SQLSTATEs for "not now": connection exceptions (08), insufficient resources (53:
 * too many connections, disk full, out of memory), operator intervention (57P01 admin shutdown,
 * 57P02 crash shutdown, 57P03 cannot connect now, 57014 a statement ended by statement_timeout),
 * 25P03 a session ended idle in a transaction, serialization failures and deadlocks (40001,
 * 40P01: the transaction was rolled back and may simply be run again), 55P03 a lock not
 * available, and system errors (58: I/O).
 */
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|53[0-9A-Z]{3}|57P0[123]|57014|25P03|40001|40P01|55P03|58[0-9A-Z]{3})$/;

// Node's socket errors on the way to the database.
const SYSTEM_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

// SQLite: another process holds the file past busy_timeout, or the disk or file failed.
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|NOMEM|PROTOCOL)/;

// node-postgres reports a lost or unobtainable connection with plain Errors, without a code.
const PG_CLIENT_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|Connection ended unexpectedly)/;
