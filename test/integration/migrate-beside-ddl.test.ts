import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PostgresIntrospector, sql, type Kysely } from 'kysely';
import { openStore } from '../../src/store/db.js';
import { testSchemaName } from '../support/schemas.js';
import { openIsolatedStore, withSearchPath } from '../support/stores.js';

const pgUrl = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined;
if (!pgUrl) console.warn('[migrate-beside-ddl] DATABASE_URL (postgres://…) not set: not run here (CI runs it).');

/** Kysely's own introspector, asked again while it fails for the reason below (other files' DDL). */
async function kyselysOwn(db: Kysely<any>, withInternalKyselyTables: boolean) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await new PostgresIntrospector(db).getTables({ withInternalKyselyTables });
    } catch (e) {
      if (attempt === 20 || !/does not exist/.test((e as Error).message)) throw e;
    }
  }
}

/**
 * A gateway migrates at every start, on a database other applications (and other deployments, in
 * their own schemas) share. CI once failed a start with `relation "wxt_….app_trials" does not
 * exist`: a table of another schema, dropped while the migrator looked for its own bookkeeping
 * tables. What others do in their schemas must not fail ours.
 */
describe.skipIf(!pgUrl)('migrating while others create and drop tables and schemas beside us', () => {
  const neighbour = testSchemaName('neighbour');
  let churn: pg.Client;
  let stop = false;
  let churned = 0;
  let churning: Promise<void>;

  beforeAll(async () => {
    churn = new pg.Client({ connectionString: pgUrl });
    await churn.connect();
    await churn.query(`create schema ${neighbour}`);
    // Tables with a serial column and schemas of their own, made and dropped as fast as one
    // connection can: each table and each schema lives for a moment between two catalog reads.
    churning = (async () => {
      for (let i = 0; !stop; i++) {
        const s = `${neighbour}_${i % 4}`;
        await churn.query(`create schema if not exists ${s}; create table ${s}.t (id serial primary key, v text)`);
        await churn.query(`create table ${neighbour}.t${i % 8} (id serial primary key)`);
        await churn.query(`drop table ${neighbour}.t${i % 8}; drop schema ${s} cascade`);
        churned++;
      }
    })();
  });
  afterAll(async () => {
    stop = true;
    await churning;
    await churn?.end();
  });

  it('every start migrates (a fresh schema, then one already at the latest migration)', async () => {
    const failures: string[] = [];
    const schemas = Array.from({ length: 6 }, () => testSchemaName('beside'));
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    for (const s of schemas) await admin.query(`create schema ${s}`);
    await admin.end();
    const before = churned;
    // Six fresh schemas, then each opened again and again: every open reads the catalog.
    for (let round = 0; round < 8; round++) {
      await Promise.all(
        schemas.map(async (s) => {
          try {
            const store = await openStore(withSearchPath(pgUrl!, s), { poolSize: 2 });
            await store.close();
          } catch (e) {
            failures.push((e as Error).message);
          }
        }),
      );
    }
    // The churn ran the whole time (else the test proves nothing).
    expect(churned - before).toBeGreaterThan(20);
    expect(failures).toEqual([]);
  });

  it('the tables it reports for our schema are the ones Kysely\'s own introspector reports for it', async () => {
    const store = await openIsolatedStore({ name: 'postgres', databaseUrl: pgUrl, redisUrl: undefined }, '', 'beside');
    try {
      const s = (await sql<{ s: string }>`select current_schema() as s`.execute(store.db)).rows[0]!.s;
      for (const withInternalKyselyTables of [false, true]) {
        const ours = await store.db.introspection.getTables({ withInternalKyselyTables });
        const kysely = (await kyselysOwn(store.db, withInternalKyselyTables)).filter((t) => t.schema === s);
        expect(ours.length).toBeGreaterThan(10);
        expect(ours).toEqual(kysely);
      }
    } finally {
      await store.close();
    }
  });
});
