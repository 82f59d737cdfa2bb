import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import SQLite from 'better-sqlite3';
import { BACKENDS, type Backend } from '../support/backends.js';
import { withSearchPath } from '../support/stores.js';
import { testSchemaName } from '../support/schemas.js';
import { migrateTo } from '../../src/store/migrations.js';

const BEFORE = '0006_claim_earlier_attempt_lost';
const NOW = Date.parse('2026-06-01T04:00:00Z');

/** A bare database (no migration run yet) of the backend's kind. */
async function bareDatabase(backend: Backend, dir: string): Promise<{ db: Kysely<any>; dialect: 'sqlite' | 'postgres' }> {
  if (!backend.databaseUrl) return { db: new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(join(dir, 'm.db')) }) }), dialect: 'sqlite' };
  const schema = testSchemaName('mig');
  const c = new pg.Client({ connectionString: backend.databaseUrl });
  await c.connect();
  await c.query(`create schema ${schema}`);
  await c.end();
  const pool = new pg.Pool({ connectionString: withSearchPath(backend.databaseUrl, schema), max: 2, types: { getTypeParser: ((oid: number, f: never) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, f))) as never } });
  return { db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres' };
}

async function columns(db: Kysely<any>, dialect: 'sqlite' | 'postgres', table: string): Promise<string[]> {
  if (dialect === 'sqlite') return (await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db)).rows.map((r) => r.name);
  return (await sql<{ name: string }>`select column_name as name from information_schema.columns where table_schema = current_schema() and table_name = ${table}`.execute(db)).rows.map((r) => r.name);
}

async function tables(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  if (dialect === 'sqlite') return (await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db)).rows.map((r) => r.name);
  return (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema()`.execute(db)).rows.map((r) => r.name);
}

describe.each(BACKENDS)('migration 0009_procurement_orders on $name', (backend) => {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-mig-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("drops the allocation model: group packs, allocations, members and groups go; charges drawn from allocations stay, as unfunded; an app's own packs and charges are untouched; down and up again work", async () => {
    const { db, dialect } = await bareDatabase(backend, dir);
    try {
      await migrateTo(db, dialect, BEFORE);
      const pack = (id: string, ownerKind: 'app' | 'group', ownerId: string) => ({
        id, owner_kind: ownerKind, owner_id: ownerId, product: 'quick', units_all: 100, units_used: 7, paid_at: NOW, effective_at: NOW, expires_at: NOW + 86_400_000,
        validity_days: 1, price_paid_milli: 3000, wechat_pkg_id: null, refund_state: null, refund_requested_at: null, created_at: NOW,
      });
      await db.insertInto('packs').values([pack('pk_own', 'app', 'wxa'), pack('pk_group', 'group', 'pg_1')]).execute();
      await db.insertInto('procurement_groups').values({ id: 'pg_1', name: '集采', created_at: NOW }).execute();
      await db.insertInto('procurement_members').values([{ group_id: 'pg_1', appid: 'wxa' }, { group_id: 'pg_1', appid: 'wxb' }]).execute();
      await db.insertInto('allocations').values({ id: 'al_1', pack_id: 'pk_group', appid: 'wxb', units_all: 60, units_used: 7, created_at: NOW, updated_at: NOW }).execute();
      const charge = (code: string, appid: string, source: string, packId: string | null, allocationId: string | null) => ({
        code_hash: code, appid, product: 'quick', status: 'confirmed', source, pack_id: packId, allocation_id: allocationId, price_milli: 30, tapped_at: null, created_at: NOW,
      });
      await db.insertInto('charges').values([charge('c_own', 'wxa', 'pack', 'pk_own', null), charge('c_alloc', 'wxb', 'allocation', 'pk_group', 'al_1'), charge('c_trial', 'wxb', 'trial', null, null)]).execute();

      await migrateTo(db, dialect);
      const after = await tables(db, dialect);
      for (const gone of ['allocations', 'procurement_members', 'procurement_groups']) expect(after).not.toContain(gone);
      for (const added of ['procurement_orders', 'procurement_order_skus', 'procurement_assignments']) expect(after).toContain(added);
      expect(await columns(db, dialect, 'charges')).not.toContain('allocation_id');
      expect(await columns(db, dialect, 'packs')).toContain('assignment_id');
      expect(await db.selectFrom('packs').select(['id', 'owner_kind', 'units_used', 'assignment_id']).execute()).toEqual([{ id: 'pk_own', owner_kind: 'app', units_used: 7, assignment_id: null }]);
      const charges = await db.selectFrom('charges').select(['code_hash', 'source', 'pack_id', 'price_milli']).orderBy('code_hash').execute();
      expect(charges).toEqual([
        { code_hash: 'c_alloc', source: 'unfunded', pack_id: null, price_milli: 30 },
        { code_hash: 'c_own', source: 'pack', pack_id: 'pk_own', price_milli: 30 },
        { code_hash: 'c_trial', source: 'trial', pack_id: null, price_milli: 30 },
      ]);

      // Down: the old tables come back empty, assigned packs go (their charges become unfunded); up again.
      await db.insertInto('procurement_assignments').values({
        id: 'pa_1', order_id: 'DD1', request_id: 'req-0000000001', sku_id: '20000252', receiver_appid: 'wxa', begin_time: null, units: 5, duration_seconds: 86_400,
        state: 'assigned', errcode: null, receive_pkg_id: null, pack_id: 'pk_assigned', requested_at: NOW, settled_at: NOW, assigned_at: NOW, cancelled_at: null, updated_at: NOW,
      }).execute();
      await db.insertInto('packs').values({ ...pack('pk_assigned', 'app', 'wxa'), assignment_id: 'pa_1' }).execute();
      await db.insertInto('charges').values({ code_hash: 'c_assigned', appid: 'wxa', product: 'quick', status: 'confirmed', source: 'pack', pack_id: 'pk_assigned', price_milli: 30, tapped_at: null, created_at: NOW }).execute();
      await migrateTo(db, dialect, BEFORE);
      expect(await tables(db, dialect)).toEqual(expect.arrayContaining(['allocations', 'procurement_members', 'procurement_groups']));
      expect(await tables(db, dialect)).not.toContain('procurement_assignments');
      expect(await columns(db, dialect, 'charges')).toContain('allocation_id');
      expect((await db.selectFrom('packs').select('id').execute()).map((r) => r.id)).toEqual(['pk_own']);
      expect(await db.selectFrom('charges').select(['source', 'pack_id']).where('code_hash', '=', 'c_assigned').executeTakeFirst()).toEqual({ source: 'unfunded', pack_id: null });
      await migrateTo(db, dialect);
      expect(await tables(db, dialect)).toContain('procurement_assignments');
    } finally {
      await db.destroy();
    }
  });
});
