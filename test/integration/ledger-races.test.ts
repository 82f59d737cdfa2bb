import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/db.js';
import { BillingLedger } from '../../src/billing/ledger.js';
import { ledgerStatements } from '../../src/store/ledger/index.js';
import { Procurement } from '../../src/billing/procurement.js';
import type { Database } from '../../src/store/schema.js';
import type { AppConfig } from '../../src/config.js';
import { DAY_MS } from '../../src/billing/rules.js';
import { testSchemaName } from '../support/schemas.js';
import { assignedPack } from '../support/procurement.js';

const base = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined;
const NOW = Date.parse('2026-06-01T04:00:00Z');
const app = (appid: string): AppConfig => ({ appid, secret: 's', product: 'quick', subjectType: 'enterprise', category: undefined, purposes: ['login'], lowQuota: undefined });

/**
 * A Kysely whose connections stop right after the first statement containing `marker`
 * until released: how a draw is caught between its read and its write, deterministically.
 */
function pausable(url: string) {
  let marker = '';
  let reached: () => void = () => {};
  let release: () => void = () => {};
  let gate = Promise.resolve();
  const pool = new pg.Pool({ connectionString: url, types: { getTypeParser: ((oid: number, f: never) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, f))) as never } });
  const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  (pool as unknown as { connect: () => Promise<pg.PoolClient> }).connect = async () => {
    const client = await connect();
    const query = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
    (client as unknown as { query: unknown }).query = async (...args: unknown[]) => {
      const r = await query(...args);
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text;
      if (marker && text?.includes(marker)) {
        marker = '';
        reached();
        await gate;
      }
      return r;
    };
    return client;
  };
  return {
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
    /** Arms the pause; resolves when a statement with `m` has run. */
    pauseAfter(m: string) {
      marker = m;
      gate = new Promise<void>((r) => (release = r));
      return new Promise<void>((r) => (reached = r));
    },
    resume: () => release(),
    close: () => pool.end(),
  };
}

// The read of an app's drawable packs inside a charge's transaction: a draw paused after it has chosen.
const DRAWABLE_READ = 'from "packs" where "owner_kind" = $1';

// Needs PostgreSQL (row locks, READ COMMITTED): CI sets DATABASE_URL, see .ci/run.
describe.skipIf(!base)('ledger races on PostgreSQL', () => {
  const schema = testSchemaName('race');
  const url = `${base}${base?.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  let store: Store;
  let racer: ReturnType<typeof pausable>;
  const A = app('wx00000000000000e1');
  const B = app('wx00000000000000e2');
  const apps = new Map([[A.appid, A], [B.appid, B]]);

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    store = await openStore(url);
    racer = pausable(url);
    const ledger = new BillingLedger(store.db, ledgerStatements(store.dialect), apps);
    await ledger.registerApps(NOW);
    await store.db.updateTable('app_trials').set({ trial_used: 1000 }).execute();
  });
  afterAll(async () => {
    await racer?.close();
    await store?.close(); // the schema is dropped by the global teardown
  });

  it("a refund committed between a draw's read and its write wins: the draw does not take the pack", async () => {
    const ledger = new BillingLedger(store.db, ledgerStatements(store.dialect), apps);
    const drawing = new BillingLedger(racer.db, ledgerStatements('postgres'), apps);
    const pack = await ledger.recordPackPurchase({ owner: { kind: 'app', appid: A.appid }, units: 5, paidAt: NOW - DAY_MS, validityDays: 30, pricePaidMilli: 150 }, NOW);
    const paused = racer.pauseAfter(DRAWABLE_READ);
    const draw = racer.db.transaction().execute((trx) => drawing.recordCharge(trx, { codeHash: `c-${randomBytes(6).toString('hex')}`, appid: A.appid, status: 'confirmed', now: NOW }));
    await paused;
    const refund = await ledger.requestRefund(pack.id, NOW);
    racer.resume();
    const charge = await draw;
    expect(refund.ok).toBe(true);
    expect(charge.packId).not.toBe(pack.id);
    const row = await store.db.selectFrom('packs').select('units_used').where('id', '=', pack.id).executeTakeFirstOrThrow();
    expect(row.units_used).toBe(0);
  });

  it('a cancel of an assignment waits for a draw from its pack in flight, then refuses (PACK_USED)', async () => {
    const ledger = new BillingLedger(store.db, ledgerStatements(store.dialect), apps);
    const drawing = new BillingLedger(racer.db, ledgerStatements('postgres'), apps);
    const procurement = new Procurement(store.db, apps);
    const assigned = await assignedPack(procurement, { appid: B.appid, now: NOW, units: 5, days: 30 });
    const paused = racer.pauseAfter('update "packs"'); // the unit is drawn, not yet committed
    const draw = racer.db.transaction().execute((trx) => drawing.recordCharge(trx, { codeHash: `c-${randomBytes(6).toString('hex')}`, appid: B.appid, status: 'confirmed', now: NOW }));
    await paused;
    const cancel = procurement.cancelAssignment({ orderId: assigned.orderId, requestId: assigned.requestId }, NOW);
    const early = await Promise.race([cancel.then(() => 'finished'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
    expect(early).toBe('waiting'); // held back by the draw's lock on the pack
    racer.resume();
    expect(await draw).toMatchObject({ source: 'pack', packId: assigned.packId });
    expect(await cancel).toEqual({ ok: false, rule: 'PACK_USED' });
    expect((await ledger.packsFor(B.appid, NOW)).find((p) => p.id === assigned.packId)).toMatchObject({ kind: 'assigned', unitsUsed: 1 });
  });

  it("a cancel committed between a draw's read and its write wins: the draw takes the next pack, the cancelled one stays untouched", async () => {
    const C = app('wx00000000000000e3');
    const both = new Map([...apps, [C.appid, C]]);
    await store.db.insertInto('app_trials').values({ appid: C.appid, trial_used: 1000, updated_at: NOW }).execute();
    const drawing = new BillingLedger(racer.db, ledgerStatements('postgres'), both);
    const procurement = new Procurement(store.db, both);
    const assigned = await assignedPack(procurement, { appid: C.appid, now: NOW, units: 5, days: 10 }); // drawn first
    const later = await new BillingLedger(store.db, ledgerStatements(store.dialect), both).recordPackPurchase({ owner: { kind: 'app', appid: C.appid }, units: 5, paidAt: NOW - DAY_MS, validityDays: 30, pricePaidMilli: 150 }, NOW);
    const paused = racer.pauseAfter(DRAWABLE_READ);
    const draw = racer.db.transaction().execute((trx) => drawing.recordCharge(trx, { codeHash: `c-${randomBytes(6).toString('hex')}`, appid: C.appid, status: 'confirmed', now: NOW }));
    await paused;
    const cancel = await procurement.cancelAssignment({ orderId: assigned.orderId, requestId: assigned.requestId }, NOW);
    racer.resume();
    expect(cancel).toMatchObject({ ok: true, assignment: { state: 'cancelled', pack: null } });
    expect(await draw).toMatchObject({ source: 'pack', packId: later.id });
    expect(await store.db.selectFrom('packs').select('id').where('id', '=', assigned.packId).executeTakeFirst()).toBeUndefined();
    expect(await store.db.selectFrom('charges').select('code_hash').where('pack_id', '=', assigned.packId).execute()).toEqual([]);
  });
});
