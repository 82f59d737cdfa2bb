import { withSearchPath } from './stores.js';
import { sharedTestSchema } from './schemas.js';

/**
 * The storage combinations every storage-dependent test runs on: SQLite with the
 * in-memory cache always; PostgreSQL with Redis when DATABASE_URL / REDIS_URL are
 * set (CI sets both, see .ci/run).
 */
export interface Backend {
  name: string;
  /** undefined = a fresh SQLite file per gateway */
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
}

// Not the database's public schema: this run's own (created by the global setup, dropped after the
// run), so what another checkout's migrations left there cannot get in the way, nor ours in theirs.
const pg = process.env.DATABASE_URL?.startsWith('postgres') ? withSearchPath(process.env.DATABASE_URL, sharedTestSchema()) : undefined;
const redis = process.env.REDIS_URL || undefined;

export const BACKENDS: Backend[] = [
  { name: 'sqlite+memory', databaseUrl: undefined, redisUrl: undefined },
  ...(pg && redis ? [{ name: 'postgres+redis', databaseUrl: pg, redisUrl: redis }] : []),
];

/** For tests that only make sense with a shared cache (cross-instance locks). */
export const SHARED_BACKENDS: Backend[] = [
  ...(redis ? [{ name: pg ? 'postgres+redis' : 'sqlite+redis', databaseUrl: pg, redisUrl: redis }] : []),
];

if (!pg || !redis) {
  // Said once per test file that imports this, so a local run explains what it left out.
  console.warn(
    `[backends] ${!pg ? 'DATABASE_URL (postgres://…)' : ''}${!pg && !redis ? ' and ' : ''}${!redis ? 'REDIS_URL' : ''} not set: ` +
      'PostgreSQL/Redis variants of the storage tests are not run here (CI runs them via .ci/run).',
  );
}
