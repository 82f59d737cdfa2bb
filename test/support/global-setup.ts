import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sharedTestSchema } from './schemas.js';

/**
 * Gives the run an id (every test file names its PostgreSQL schemas with it, see schemas.ts),
 * creates the schema the storage tests share, and drops this run's schemas once every file has
 * run. Other runs' schemas are left alone. (Dropping them from each file once raced with Kysely's
 * migrator, which read the catalog of every schema; src/store/current-schema-introspector.ts ended
 * that, and test/integration/migrate-beside-ddl.test.ts keeps it ended.)
 */
export default async function setup() {
  // Set before the workers start, so they inherit it.
  const run = randomBytes(4).toString('hex');
  process.env.WXT_RUN = run;
  const url = process.env.DATABASE_URL;
  if (!url?.startsWith('postgres')) return;
  await withClient(url, (c) => c.query(`create schema if not exists ${sharedTestSchema()}`));
  return async function teardown() {
    await withClient(url, async (c) => {
      const { rows } = await c.query<{ name: string }>(`select schema_name as name from information_schema.schemata where schema_name like $1`, [`wxt\\_${run}\\_%`]);
      for (const { name } of rows) await c.query(`drop schema if exists "${name}" cascade`);
    });
  };
}

async function withClient(url: string, work: (c: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
