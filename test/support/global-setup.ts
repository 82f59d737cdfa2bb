import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * This run's PostgreSQL test schemas (wxt_<run>_…, see schemas.ts) are dropped here, once, after
 * every file has run. Dropping them from each file while others are still starting up races with
 * Kysely's migrator, which reads the catalog of every schema. Other runs' schemas are left alone.
 */
export default function setup() {
  // Set before the workers start, so every test file of this run names its schemas with it.
  const run = randomBytes(4).toString('hex');
  process.env.WXT_RUN = run;
  return async function teardown() {
    const url = process.env.DATABASE_URL;
    if (!url?.startsWith('postgres')) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(`select schema_name as name from information_schema.schemata where schema_name like $1`, [`wxt\\_${run}\\_%`]);
      for (const { name } of rows) await client.query(`drop schema if exists "${name}" cascade`);
    } finally {
      await client.end();
    }
  };
}
