import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';

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
});
