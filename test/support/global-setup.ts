import pg from 'pg';

/**
 * PostgreSQL test schemas (wxt_…) are dropped here, once, after every file has run. Dropping
 * them from each file while others are still starting up races with Kysely's migrator, which
 * reads the catalog of every schema.
 */
export default function setup() {
  return async function teardown() {
    const url = process.env.DATABASE_URL;
    if (!url?.startsWith('postgres')) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(`select schema_name as name from information_schema.schemata where schema_name like 'wxt\\_%'`);
      for (const { name } of rows) await client.query(`drop schema if exists "${name}" cascade`);
    } finally {
      await client.end();
    }
  };
}
