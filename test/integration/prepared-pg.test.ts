import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/db.js';
import { preparedQuery, preparedStatementName } from '../../src/store/prepared.js';
import { testSchemaName } from '../support/schemas.js';

const pgUrl = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined;
if (!pgUrl) console.warn('[prepared-pg] DATABASE_URL (postgres://…) not set: the named-statement tests are not run here (CI runs them).');

const consentState = preparedQuery((db, v: { appid: string; subjectHash: string }) =>
  db.selectFrom('consents').select('state').where('appid', '=', v.appid).where('subject_hash', '=', v.subjectHash),
);

describe.skipIf(!pgUrl)('prepared queries as PostgreSQL named statements', () => {
  const schema = testSchemaName('prep');
  const url = `${pgUrl}${pgUrl?.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  let named: Store;
  let unnamed: Store;
  beforeAll(async () => {
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`create schema ${schema}`);
    await c.end();
    // One connection each, so the session that ran the query is the one asked about it.
    named = await openStore(url, { poolSize: 1 });
    unnamed = await openStore(url, { poolSize: 1, preparedStatements: false });
  });
  // The schema is left to the global teardown (test/support/global-setup.ts), like every schema of the run.
  afterAll(async () => {
    await named?.close();
    await unnamed?.close();
  });

  const statements = async (s: Store) =>
    (await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(s.db)).rows;

  it('a prepared query is parsed once per connection under its name, and answers with each call\'s values', async () => {
    await named.db.insertInto('consents').values({ appid: 'wx_a', subject_hash: 's1', purpose: 'login', state: 'withdrawn', updated_at: 1 }).execute();
    expect((await consentState(named.db, { appid: 'wx_a', subjectHash: 's1' })).rows).toEqual([{ state: 'withdrawn' }]);
    expect((await consentState(named.db, { appid: 'wx_a', subjectHash: 's2' })).rows).toEqual([]);
    const inTrx = await named.db.transaction().execute((trx) => consentState(trx, { appid: 'wx_a', subjectHash: 's1' }));
    expect(inTrx.rows).toHaveLength(1);

    const mine = (await statements(named)).filter((p) => p.statement.includes('"consents"'));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.name).toMatch(/^wxphone_\d+$/);
    expect(preparedStatementName(mine[0]!.statement)).toBe(mine[0]!.name);
  });

  it('with preparedStatements: false the same query runs unnamed (for poolers that cannot keep them)', async () => {
    expect((await consentState(unnamed.db, { appid: 'wx_a', subjectHash: 's1' })).rows).toEqual([{ state: 'withdrawn' }]);
    expect(await statements(unnamed)).toEqual([]);
  });
});
