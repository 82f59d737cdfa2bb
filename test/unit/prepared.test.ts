import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
import { preparedQuery } from '../../src/store/prepared.js';

describe('preparedQuery', () => {
  let a: Store;
  let b: Store;
  beforeAll(async () => {
    a = await openStore('file::memory:');
    b = await openStore('file::memory:');
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  const row = (appid: string, state: 'withdrawn' | 'given', now: number) => ({ appid, subject_hash: `s_${appid}`, purpose: 'login', state, updated_at: now });

  it('runs the SQL built once with each call\'s values, constants kept, in and out of transactions', async () => {
    const build = vi.fn((db: Store['db'], v: { appid: string; subjectHash: string; purpose: string }) =>
      db.selectFrom('consents').select(['state', 'updated_at']).where('appid', '=', v.appid).where('subject_hash', '=', v.subjectHash).where('purpose', '=', v.purpose).where('state', '=', 'withdrawn'),
    );
    const withdrawn = preparedQuery(build);
    await a.db.insertInto('consents').values([row('wx1', 'withdrawn', 1), row('wx2', 'withdrawn', 2), row('wx3', 'given', 3)]).execute();

    expect((await withdrawn(a.db, { appid: 'wx1', subjectHash: 's_wx1', purpose: 'login' })).rows).toEqual([{ state: 'withdrawn', updated_at: 1 }]);
    expect((await withdrawn(a.db, { appid: 'wx2', subjectHash: 's_wx2', purpose: 'login' })).rows).toEqual([{ state: 'withdrawn', updated_at: 2 }]);
    // The constant 'withdrawn' is still in the SQL: a given consent is not returned.
    expect((await withdrawn(a.db, { appid: 'wx3', subjectHash: 's_wx3', purpose: 'login' })).rows).toEqual([]);
    const inTrx = await a.db.transaction().execute((trx) => withdrawn(trx, { appid: 'wx2', subjectHash: 's_wx2', purpose: 'login' }));
    expect(inTrx.rows).toHaveLength(1);
    expect(build).toHaveBeenCalledTimes(1);

    // Another database compiles its own (it may be another dialect).
    expect((await withdrawn(b.db, { appid: 'wx1', subjectHash: 's_wx1', purpose: 'login' })).rows).toEqual([]);
    expect(build).toHaveBeenCalledTimes(2);
  });

  it('reports affected rows like the builder does', async () => {
    const give = preparedQuery((db, v: { appid: string; now: number }) =>
      db.updateTable('consents').set({ state: 'given', updated_at: v.now }).where('appid', '=', v.appid).where('state', '=', 'withdrawn'),
    );
    await a.db.insertInto('consents').values(row('wx9', 'withdrawn', 1)).execute();
    expect(Number((await give(a.db, { appid: 'wx9', now: 5 })).numAffectedRows)).toBe(1);
    expect(Number((await give(a.db, { appid: 'wx9', now: 6 })).numAffectedRows)).toBe(0);
    const stored = await a.db.selectFrom('consents').select(['state', 'updated_at']).where('appid', '=', 'wx9').executeTakeFirstOrThrow();
    expect(stored).toEqual({ state: 'given', updated_at: 5 });
  });

  it('refuses a builder that computes with a value or reads a field of one', async () => {
    const computes = preparedQuery((db, v: { now: number }) => db.selectFrom('consents').selectAll().where('updated_at', '>', v.now - 1000));
    await expect(computes(a.db, { now: 5000 })).rejects.toThrow(/value "now" was used in an expression/);
    const nested = preparedQuery((db, v: { row: { appid: string } }) => db.selectFrom('consents').selectAll().where('appid', '=', v.row.appid));
    await expect(nested(a.db, { row: { appid: 'wx1' } })).rejects.toThrow(/value "row" is not a parameter/);
  });
});
