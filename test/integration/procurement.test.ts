import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { BillingLedger, LedgerInputError } from '../../src/billing/ledger.js';
import { ledgerStatements } from '../../src/store/ledger/index.js';
import { Procurement, type OrderInput } from '../../src/billing/procurement.js';
import type { AppConfig } from '../../src/config.js';
import { DAY_MS } from '../../src/billing/rules.js';
import { quotaRowsQuery } from '../../src/billing/quota.js';
import { assignedPack, orderId, requestId } from '../support/procurement.js';

const NOW = Date.parse('2026-06-01T04:00:00Z');
const SKU = '20000252';

function appConfig(overrides: Partial<AppConfig> = {}): AppConfig {
  return { appid: `wx${randomBytes(8).toString('hex')}`, secret: 's', product: 'quick', subjectType: 'enterprise', category: undefined, purposes: ['login'], lowQuota: undefined, ...overrides };
}

/** An order as WeChat's order/get example shows one, with a SKU of `units` a pack. */
function order(overrides: Partial<OrderInput> = {}, units = 100): OrderInput {
  return {
    orderId: orderId(),
    product: 'quick',
    spSpuId: '10000117',
    spSkuId: '20000176',
    skuCnt: 1,
    unitsAll: 1000,
    pricePaidMilli: '25000',
    paidAt: NOW - DAY_MS,
    wechatCreatedAt: NOW - DAY_MS - 60_000,
    validityBeginAt: NOW - DAY_MS,
    validityEndAt: NOW + 365 * DAY_MS,
    skus: [{ skuId: SKU, spuId: '10000077', skuName: '手机号快速验证组件 100次', units, durationSeconds: 365 * 86_400 }],
    ...overrides,
  };
}

describe.each(BACKENDS)('bulk procurement (集采) on $name', (backend) => {
  let store: Store;
  let dir: string;
  const A = appConfig();
  const B = appConfig();
  const RT = appConfig({ product: 'realtime' });
  const GOV = appConfig({ subjectType: 'government' });
  const apps = new Map([A, B, RT, GOV].map((a) => [a.appid, a]));
  let procurement: Procurement;
  let ledger: BillingLedger;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-procurement-'));
    store = await openStore(backend.databaseUrl ?? `file:${join(dir, 'p.db')}`, { poolSize: 20 });
    procurement = new Procurement(store.db, apps);
    ledger = new BillingLedger(store.db, ledgerStatements(store.dialect), apps);
    await ledger.registerApps(NOW);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const charge = (appid: string, now = NOW) =>
    store.db.transaction().execute((trx) => ledger.recordCharge(trx, { codeHash: randomBytes(12).toString('base64url'), appid, status: 'confirmed', now }));
  const spendTrial = (appid: string) => store.db.updateTable('app_trials').set({ trial_used: 1000 }).where('appid', '=', appid).execute();
  const request = (o: OrderInput, appid: string, rid = requestId(), extra: { beginTime?: number | null; skuId?: string } = {}) =>
    procurement.requestAssignment({ orderId: o.orderId, skuId: extra.skuId ?? SKU, receiverAppId: appid, requestId: rid, beginTime: extra.beginTime ?? null }, NOW);
  const countRows = async () => ({
    orders: (await store.db.selectFrom('procurement_orders').select('order_id').execute()).length,
    assignments: (await store.db.selectFrom('procurement_assignments').select('id').execute()).length,
    packs: (await store.db.selectFrom('packs').select('id').execute()).length,
  });

  it("records an order as WeChat describes it, once: the same again is a duplicate, other figures are refused, a 64-bit price stays exact", async () => {
    const o = order({ pricePaidMilli: '9223372036854775807' });
    const first = await procurement.recordOrder(o, NOW);
    expect(first).toMatchObject({ duplicate: false, order: { orderId: o.orderId, product: 'quick', unitsAll: 1000, unitsHeld: 0, unitsLeft: 1000, pricePaidMilli: '9223372036854775807', skuCnt: 1 } });
    expect(first.order.skus).toEqual([{ skuId: SKU, spuId: '10000077', skuName: '手机号快速验证组件 100次', units: 100, durationSeconds: 31_536_000 }]);
    expect(await procurement.recordOrder(o, NOW + 5000)).toEqual({ duplicate: true, order: first.order });
    await expect(procurement.recordOrder({ ...o, unitsAll: 2000 }, NOW)).rejects.toThrow(/other figures/);
    expect((await procurement.orders([o.orderId]))[0]).toEqual(first.order);
  });

  it('bad order figures are typed errors that change nothing', async () => {
    const before = await countRows();
    const bad: [Partial<OrderInput>, RegExp][] = [
      [{ orderId: '' }, /orderId/],
      [{ orderId: 'DD 1' }, /orderId/],
      [{ pricePaidMilli: '9223372036854775808' }, /pricePaidMilli/],
      [{ pricePaidMilli: '-1' }, /pricePaidMilli/],
      [{ pricePaidMilli: '1.5' }, /pricePaidMilli/],
      [{ unitsAll: 0 }, /unitsAll/],
      [{ paidAt: Date.UTC(2001, 0, 1) }, /paidAt/],
      [{ paidAt: NOW + 3 * DAY_MS }, /paidAt/],
      [{ validityEndAt: NOW - 2 * DAY_MS }, /validityEndAt/],
      [{ spSpuId: 'abc' }, /spSpuId/],
      [{ skus: [] }, /SKU/],
      [{ skus: [{ skuId: SKU, spuId: null, skuName: null, units: 2000, durationSeconds: 86_400 }] }, /units/],
      [{ skus: [{ skuId: SKU, spuId: null, skuName: null, units: 10, durationSeconds: 0 }] }, /durationSeconds/],
      [{ skus: [{ skuId: SKU, spuId: null, skuName: null, units: 10, durationSeconds: 60 }, { skuId: SKU, spuId: null, skuName: null, units: 10, durationSeconds: 60 }] }, /twice/],
    ];
    for (const [overrides, message] of bad) {
      await expect(procurement.recordOrder(order(overrides), NOW)).rejects.toThrow(message);
      await expect(procurement.recordOrder(order(overrides), NOW)).rejects.toBeInstanceOf(LedgerInputError);
    }
    expect(await countRows()).toEqual(before);
  });

  it('a requestId names one request: the same payload again is the same assignment, another payload is refused (REQUEST_ID_REUSED)', async () => {
    const o = order();
    await procurement.recordOrder(o, NOW);
    const rid = requestId();
    const first = await request(o, A.appid, rid);
    expect(first).toMatchObject({ ok: true, duplicate: false, assignment: { orderId: o.orderId, requestId: rid, receiverAppId: A.appid, skuId: SKU, state: 'requested', units: 100, pack: null } });
    const again = await request(o, A.appid, rid);
    expect(again).toMatchObject({ ok: true, duplicate: true });
    if (!first.ok || !again.ok) throw new Error('refused');
    expect(again.assignment.id).toBe(first.assignment.id);
    expect(await request(o, B.appid, rid)).toEqual({ ok: false, rule: 'REQUEST_ID_REUSED' });
    expect(await request(o, A.appid, rid, { beginTime: NOW + DAY_MS })).toEqual({ ok: false, rule: 'REQUEST_ID_REUSED' });
    // The key is the order and the requestId: the same requestId on another order is another request.
    const other = order();
    await procurement.recordOrder(other, NOW);
    expect(await request(other, A.appid, rid)).toMatchObject({ ok: true, duplicate: false });
    expect((await procurement.orders([o.orderId]))[0]).toMatchObject({ unitsHeld: 100, unitsLeft: 900 });
  });

  it('a request names a recorded order, one of its SKUs, a configured app of its product, and a 10–64 character requestId', async () => {
    const o = order();
    await procurement.recordOrder(o, NOW);
    const before = await countRows();
    await expect(request(o, A.appid, 'short')).rejects.toThrow(/requestId/);
    await expect(request(o, A.appid, 'x'.repeat(65))).rejects.toThrow(/requestId/);
    await expect(request({ ...o, orderId: 'DD0000000000000000000' }, A.appid)).rejects.toThrow(/no such order/);
    await expect(request(o, A.appid, requestId(), { skuId: '20000999' })).rejects.toThrow(/SKU/);
    await expect(request(o, 'wx0000000000000000')).rejects.toThrow(/not configured/);
    await expect(request(o, RT.appid)).rejects.toThrow(/product/);
    await expect(request(o, A.appid, requestId(), { beginTime: Date.UTC(2001, 0, 1) })).rejects.toThrow(/beginTime/);
    expect(await countRows()).toEqual(before);
  });

  it("an order holds what its packs take: beyond its units is refused; failed and cancelled assignments give theirs back; an expired order assigns nothing", async () => {
    const o = order({ unitsAll: 250 });
    await procurement.recordOrder(o, NOW);
    const r1 = await request(o, A.appid);
    const r2 = await request(o, B.appid);
    expect(await request(o, A.appid)).toEqual({ ok: false, rule: 'ORDER_UNITS_EXHAUSTED' });
    if (!r1.ok || !r2.ok) throw new Error('refused');
    await procurement.recordAssignmentResult({ orderId: o.orderId, requestId: r1.assignment.requestId, result: 10045 }, NOW);
    expect((await procurement.orders([o.orderId]))[0]).toMatchObject({ unitsHeld: 100, unitsLeft: 150 });
    await procurement.recordAssignmentResult({ orderId: o.orderId, requestId: r2.assignment.requestId, result: 0 }, NOW);
    const r3 = await request(o, A.appid);
    expect(r3.ok).toBe(true);
    expect(await request(o, A.appid)).toEqual({ ok: false, rule: 'ORDER_UNITS_EXHAUSTED' });
    expect(await procurement.cancelAssignment({ orderId: o.orderId, requestId: r2.assignment.requestId }, NOW)).toMatchObject({ ok: true });
    expect((await request(o, A.appid)).ok).toBe(true);

    const expired = order({ validityBeginAt: NOW - 400 * DAY_MS, validityEndAt: NOW - 35 * DAY_MS, paidAt: NOW - 400 * DAY_MS });
    await procurement.recordOrder(expired, NOW);
    expect(await request(expired, A.appid)).toEqual({ ok: false, rule: 'ORDER_EXPIRED' });
  });

  it('concurrent requests never hold more than the order has, and one requestId sent many times at once is one assignment', async () => {
    const o = order({ unitsAll: 500 });
    await procurement.recordOrder(o, NOW);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => request(o, i % 2 ? A.appid : B.appid)));
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    expect(results.filter((r) => !r.ok && r.rule === 'ORDER_UNITS_EXHAUSTED')).toHaveLength(7);
    expect((await procurement.orders([o.orderId]))[0]).toMatchObject({ unitsHeld: 500, unitsLeft: 0 });

    const wide = order({ unitsAll: 1000 });
    await procurement.recordOrder(wide, NOW);
    const rid = requestId();
    const same = await Promise.all(Array.from({ length: 10 }, () => request(wide, A.appid, rid)));
    expect(same.every((r) => r.ok)).toBe(true);
    expect(same.filter((r) => r.ok && !r.duplicate)).toHaveLength(1);
    expect(await procurement.assignments({ orderId: wide.orderId }, NOW)).toHaveLength(1);
  });

  it("WeChat's result: assigned makes the pack the app's (drawn in the usual order), failed keeps the errcode; repeats change nothing, contradictions are refused", async () => {
    await spendTrial(A.appid);
    const o = order({}, 3);
    await procurement.recordOrder(o, NOW);
    const ok = await request(o, A.appid);
    const bad = await request(o, A.appid);
    if (!ok.ok || !bad.ok) throw new Error('refused');
    const key = (r: typeof ok) => ({ orderId: o.orderId, requestId: r.assignment.requestId });

    // A result naming another app or SKU than the request is not this assignment's.
    expect(await procurement.recordAssignmentResult({ ...key(ok), result: 0, receiverAppId: B.appid }, NOW)).toEqual({ ok: false, rule: 'ASSIGNMENT_MISMATCH' });
    expect(await procurement.recordAssignmentResult({ ...key(ok), result: 0, skuId: '20000999' }, NOW)).toEqual({ ok: false, rule: 'ASSIGNMENT_MISMATCH' });

    const assigned = await procurement.recordAssignmentResult({ ...key(ok), result: 0, receiverAppId: A.appid, skuId: SKU, at: NOW - 60_000 }, NOW);
    expect(assigned).toMatchObject({ ok: true, duplicate: false, assignment: { state: 'assigned', assignedAt: NOW - 60_000, settledAt: NOW, errcode: null, receivePkgId: null } });
    if (!assigned.ok) throw new Error('refused');
    const pack = assigned.assignment.pack!;
    expect(pack).toMatchObject({ kind: 'assigned', appid: A.appid, unitsAll: 3, unitsUsed: 0, status: 'IN_EFFECT', effectiveAt: NOW - 60_000, expiresAt: NOW - 60_000 + 365 * DAY_MS, pricePaidMilli: 0, orderId: o.orderId });
    expect(assigned.assignment.cancellableUntil).toBe(NOW - 60_000 + 7 * DAY_MS - 1);

    // The event pushed again, now with the pack's WeChat id: nothing changes but the id is learnt.
    const repeat = await procurement.recordAssignmentResult({ ...key(ok), result: 0, receivePkgId: 'ZY2823973277692477440' }, NOW);
    expect(repeat).toMatchObject({ ok: true, duplicate: true, assignment: { state: 'assigned', receivePkgId: 'ZY2823973277692477440', pack: { id: pack.id, wechatPkgId: 'ZY2823973277692477440' } } });
    expect(await procurement.recordAssignmentResult({ ...key(ok), result: 0, receivePkgId: 'ZY0000000000000000001' }, NOW)).toEqual({ ok: false, rule: 'RESULT_CONFLICT' });
    expect(await procurement.recordAssignmentResult({ ...key(ok), result: 10045 }, NOW)).toEqual({ ok: false, rule: 'RESULT_CONFLICT' });

    const failed = await procurement.recordAssignmentResult({ ...key(bad), result: 10045 }, NOW);
    expect(failed).toMatchObject({ ok: true, duplicate: false, assignment: { state: 'failed', errcode: 10045, pack: null, assignedAt: null } });
    expect(await procurement.recordAssignmentResult({ ...key(bad), result: 10045 }, NOW)).toMatchObject({ ok: true, duplicate: true });
    expect(await procurement.recordAssignmentResult({ ...key(bad), result: 0 }, NOW)).toEqual({ ok: false, rule: 'RESULT_CONFLICT' });
    await expect(procurement.recordAssignmentResult({ orderId: o.orderId, requestId: requestId(), result: 0 }, NOW)).rejects.toThrow(/no assignment/);

    // Three units drawn from the assigned pack, then nothing left: unfunded.
    const drawn = [await charge(A.appid), await charge(A.appid), await charge(A.appid), await charge(A.appid)];
    expect(drawn.map((d) => [d.source, d.packId])).toEqual([['pack', pack.id], ['pack', pack.id], ['pack', pack.id], ['unfunded', null]]);
    expect((await procurement.assignments({ orderId: o.orderId, state: 'assigned' }, NOW))[0]!.pack).toMatchObject({ unitsUsed: 3, status: 'USED_UP' });
    expect(await procurement.assignments({ appid: A.appid, orderId: o.orderId }, NOW)).toHaveLength(2);
  });

  it('an exempt app draws nothing from its assigned pack; a pack with a beginTime ahead is not drawn before it', async () => {
    const gov = await assignedPack(procurement, { appid: GOV.appid, now: NOW, units: 5, days: 30 });
    expect(await charge(GOV.appid)).toMatchObject({ source: 'exempt', packId: null });
    expect((await ledger.packsFor(GOV.appid, NOW))[0]).toMatchObject({ id: gov.packId, unitsUsed: 0 });

    await spendTrial(B.appid);
    const ahead = await assignedPack(procurement, { appid: B.appid, now: NOW, units: 5, days: 30, beginTime: NOW + DAY_MS });
    expect((await ledger.packsFor(B.appid, NOW)).find((p) => p.id === ahead.packId)).toMatchObject({ status: 'NOT_YET_EFFECTIVE', effectiveAt: NOW + DAY_MS });
    expect(await charge(B.appid)).toMatchObject({ source: 'unfunded' });
    expect(await charge(B.appid, NOW + DAY_MS)).toMatchObject({ source: 'pack', packId: ahead.packId });
  });

  it('cancelling: only within 7 days of the assignment and only if unused, naming the rule; the pack leaves the app, its units go back to the order', async () => {
    await spendTrial(A.appid);
    const o = order({ unitsAll: 300 }, 100);
    await procurement.recordOrder(o, NOW);
    const assignTo = async (at: number) => {
      const r = await request(o, A.appid);
      if (!r.ok) throw new Error(r.rule);
      const s = await procurement.recordAssignmentResult({ orderId: o.orderId, requestId: r.assignment.requestId, result: 0, at }, NOW);
      if (!s.ok) throw new Error(s.rule);
      return { orderId: o.orderId, requestId: r.assignment.requestId, packId: s.assignment.pack!.id };
    };
    const fresh = await assignTo(NOW - 6 * DAY_MS);
    const old = await assignTo(NOW - 8 * DAY_MS);
    const used = await assignTo(NOW - 6 * DAY_MS);
    expect((await procurement.orders([o.orderId]))[0]).toMatchObject({ unitsLeft: 0 });

    // Draw one unit from `used` (the others are out of the way: used up).
    await store.db.updateTable('packs').set({ units_used: 100 }).where('id', 'in', [fresh.packId, old.packId]).execute();
    expect(await charge(A.appid)).toMatchObject({ source: 'pack', packId: used.packId });
    await store.db.updateTable('packs').set({ units_used: 0 }).where('id', 'in', [fresh.packId, old.packId]).execute();

    expect(await procurement.cancelAssignment(used, NOW)).toEqual({ ok: false, rule: 'PACK_USED' });
    expect(await procurement.cancelAssignment(old, NOW)).toEqual({ ok: false, rule: 'CANCEL_WINDOW_PASSED' });
    const packsLeft = async () => Number((await quotaRowsQuery([A.appid], NOW).execute(store.db)).rows[0]!.own_left);
    const leftBefore = await packsLeft();
    const cancelled = await procurement.cancelAssignment(fresh, NOW);
    expect(cancelled).toMatchObject({ ok: true, assignment: { state: 'cancelled', cancelledAt: NOW, pack: null, cancellableUntil: null } });
    expect(await procurement.cancelAssignment(fresh, NOW)).toEqual({ ok: false, rule: 'ALREADY_CANCELLED' });
    expect((await ledger.packsFor(A.appid, NOW)).map((p) => p.id)).not.toContain(fresh.packId);
    expect(await packsLeft()).toBe(leftBefore - 100); // the mirror's own quota (before any sync) loses the pack too
    expect((await procurement.orders([o.orderId]))[0]).toMatchObject({ unitsHeld: 200, unitsLeft: 100 });
    // A late repeat of the success changes nothing; a failure for it is refused.
    expect(await procurement.recordAssignmentResult({ ...fresh, result: 0 }, NOW)).toMatchObject({ ok: true, duplicate: true, assignment: { state: 'cancelled' } });
    expect(await procurement.recordAssignmentResult({ ...fresh, result: 10045 }, NOW)).toEqual({ ok: false, rule: 'ALREADY_CANCELLED' });

    const pending = await request(o, A.appid);
    if (!pending.ok) throw new Error(pending.rule);
    expect(await procurement.cancelAssignment({ orderId: o.orderId, requestId: pending.assignment.requestId }, NOW)).toEqual({ ok: false, rule: 'NOT_ASSIGNED' });
    await expect(procurement.cancelAssignment({ orderId: o.orderId, requestId: requestId() }, NOW)).rejects.toThrow(/no assignment/);
  });

  it('a cancel and draws racing for an assigned pack: either the cancel wins and nothing is drawn from it, or a draw wins and the cancel is refused', async () => {
    for (let round = 0; round < 6; round++) {
      const app = appConfig();
      const both = new Map([[app.appid, app]]);
      const l = new BillingLedger(store.db, ledgerStatements(store.dialect), both);
      const p = new Procurement(store.db, both);
      await l.registerApps(NOW);
      await spendTrial(app.appid);
      const a = await assignedPack(p, { appid: app.appid, now: NOW, units: 5, days: 30 });
      const draws = Array.from({ length: 4 }, () => store.db.transaction().execute((trx) => l.recordCharge(trx, { codeHash: randomBytes(12).toString('base64url'), appid: app.appid, status: 'confirmed', now: NOW })));
      const [cancel, ...charged] = await Promise.all([p.cancelAssignment({ orderId: a.orderId, requestId: a.requestId }, NOW), ...draws]);
      const fromPack = charged.filter((c) => c.packId === a.packId).length;
      const row = await store.db.selectFrom('packs').select('units_used').where('id', '=', a.packId).executeTakeFirst();
      if (cancel.ok) {
        expect(fromPack).toBe(0);
        expect(row).toBeUndefined();
      } else {
        expect(cancel.rule).toBe('PACK_USED');
        expect(fromPack).toBeGreaterThan(0);
        expect(row?.units_used).toBe(fromPack);
      }
      expect(fromPack + charged.filter((c) => c.source === 'unfunded').length).toBe(4);
    }
  });
});
