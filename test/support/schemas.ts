import { randomBytes } from 'node:crypto';

/**
 * A PostgreSQL schema name for one test's gateway or store: `wxt_<run>_<label>_<random>`. The run
 * id comes from the global setup (test/support/global-setup.ts), whose teardown drops this run's
 * schemas only, so test runs sharing one database (two checkouts, a developer beside CI) never
 * drop each other's schemas mid-run.
 */
export function testSchemaName(label = ''): string {
  const run = process.env.WXT_RUN ?? 'norun';
  return `wxt_${run}_${label ? `${label}_` : ''}${randomBytes(4).toString('hex')}`;
}

/** The schema every storage test of this run shares when it does not make its own (see backends.ts). */
export function sharedTestSchema(): string {
  return `wxt_${process.env.WXT_RUN ?? 'norun'}_shared`;
}
