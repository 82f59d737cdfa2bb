import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { isStorageUnavailable } from '../../src/store/unavailable.js';

const postgres = BACKENDS.filter((b) => b.databaseUrl?.startsWith('postgres'));

describe.each(postgres)('PostgreSQL sessions of the store ($name)', (backend) => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore(backend.databaseUrl!);
  });
  afterAll(async () => {
    await store?.close();
  });

  it('end a statement and an idle transaction on the server side, so a frozen instance cannot hold row locks for ever', async () => {
    const setting = async (name: string) => (await sql<Record<string, string>>`select current_setting(${name}) as v`.execute(store.db)).rows[0]!.v;
    expect(await setting('statement_timeout')).toBe('15s');
    expect(await setting('idle_in_transaction_session_timeout')).toBe('30s');
  });

  it('do not JIT-compile statements: every statement here is short, and compiling the quota query cost more than running it', async () => {
    expect((await sql<{ v: string }>`select current_setting('jit') as v`.execute(store.db)).rows[0]!.v).toBe('off');
  });

  it('lose a connection in the middle of a transaction without ending the process: the next statement fails as storage unavailable, and the pool serves again', async () => {
    // The server ends this session (as a shutdown does, 57P01) while the transaction holds the
    // connection between two statements: pg emits 'error' on a checked-out client, which would
    // end the process without a listener.
    const admin = await openStore(backend.databaseUrl!, { poolSize: 1 });
    let failure: unknown;
    try {
      await store.db.transaction().execute(async (trx) => {
        const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]!.pid;
        await sql`select pg_terminate_backend(${pid})`.execute(admin.db);
        // The termination notice reaches the idle client as an 'error' event, not as a query's answer.
        await new Promise((r) => setTimeout(r, 300));
        await sql`select 1`.execute(trx);
      });
    } catch (e) {
      failure = e;
    } finally {
      await admin.close();
    }
    expect(failure).toBeDefined();
    expect(isStorageUnavailable(failure), String(failure)).toBe(true);
    expect((await sql<{ one: number }>`select 1 as one`.execute(store.db)).rows).toEqual([{ one: 1 }]);
  });
});
