import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, OTHER_APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { GatewayClient } from '../../sdk/client.js';

const REALTIME_APP = { appid: 'wx00000000000000d4', secret: 'realtime-secret-0123456789abcdef', product: 'realtime' as const };
const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(BACKENDS)('billing guards ($name)', (backend) => {
  let t: TestGateway;
  let admin: GatewayClient;
  let user: GatewayClient;
  beforeAll(async () => {
    t = await startTestGateway({ backend, extraApps: [REALTIME_APP] });
    admin = await t.client('svc_guard', { scopes: ['quota:read', 'billing:admin'] });
    user = await t.client('o_guard');
  });
  afterAll(() => t?.close());

  it('codes tapped before a sync and exchanged after it are not subtracted twice', async () => {
    const codes = [await mintCode(t.sim), await mintCode(t.sim), await mintCode(t.sim)];
    await sleep(1100); // watermarks are whole seconds: let the sync fall in a later one
    const synced = await admin.SyncUsage({ appid: APP });
    expect(synced.syncUsage).toMatchObject({ quota: { remaining: 997 } });
    for (const code of codes) await user.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    const q = (await admin.Quota({ appid: APP })).quota;
    expect(q).toMatchObject({ remaining: 997, chargesSinceSync: 0, estimatedRemaining: 997 });
    const later = await mintCode(t.sim);
    await user.ExchangePhoneCode({ input: { code: later, purpose: 'login' } });
    expect((await admin.Quota({ appid: APP })).quota).toMatchObject({ chargesSinceSync: 1, estimatedRemaining: 996 });
  });

  it("reconciliation is bracketed by the syncs around the period, and says null (not 0) when there are none", async () => {
    const from = Date.now();
    const codes = [await mintCode(t.sim), await mintCode(t.sim)];
    for (const code of codes) await user.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    const to = Date.now() + 5;
    await sleep(1100);
    await admin.SyncUsage({ appid: APP }); // a sync after the period ends
    const r = (await admin.Reconciliation({ appid: APP, from: iso(from), to: iso(to) })).reconciliation;
    expect(r).toMatchObject({ wechatCharged: 3, confirmed: 3, unexplained: 0 }); // the 3 codes tapped after the earlier sync
    const none = (await admin.Reconciliation({ appid: OTHER_APP.appid, from: iso(from), to: iso(to) })).reconciliation;
    expect(none).toMatchObject({ wechatCharged: null, explained: null, unexplained: null, overCounted: null });
    expect(none.note).toMatch(/syncUsage/);
    await expect(admin.Reconciliation({ appid: APP, from: iso(to), to: iso(from) })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('dates must be real, and pack sizes, validity and payment dates sane', async () => {
    const input = { appid: APP, units: 10, validityDays: 30, pricePaidMilli: '300' };
    await expect(admin.RecordPackPurchase({ input: { ...input, paidAt: '2026-02-30T00:00:00Z' } })).rejects.toMatchObject({ message: expect.stringMatching(/DateTime/) });
    await expect(admin.RecordPackPurchase({ input: { ...input, paidAt: '2026-06-01' } })).rejects.toMatchObject({ message: expect.stringMatching(/DateTime/) });
    const long = await admin.RecordPackPurchase({ input: { ...input, paidAt: iso(Date.now()), validityDays: 2_000_000_000 } });
    expect(long.recordPackPurchase).toMatchObject({ __typename: 'BillingInputError', message: expect.stringMatching(/validityDays/) });
    const ancient = await admin.RecordPackPurchase({ input: { ...input, paidAt: '2001-01-01T00:00:00Z' } });
    expect(ancient.recordPackPurchase).toMatchObject({ __typename: 'BillingInputError', message: expect.stringMatching(/paidAt/) });
    const zero = await admin.RecordPackPurchase({ input: { ...input, paidAt: iso(Date.now()), units: 0 } });
    expect(zero.recordPackPurchase.__typename).toBe('BillingInputError');
    expect((await admin.Packs({ appid: APP })).packs).toHaveLength(0);
  });

  it('quota stays a valid Int however large the packs', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await admin.RecordPackPurchase({ input: { appid: OTHER_APP.appid, units: 1_000_000_000, paidAt: iso(Date.now() - 60_000), validityDays: 365, pricePaidMilli: '1' } });
      expect(r.recordPackPurchase.__typename).toBe('Pack');
    }
    const q = (await admin.Quota({ appid: OTHER_APP.appid })).quota;
    expect(q.remaining).toBe(2_147_483_647);
    expect((await admin.Apps()).apps).toHaveLength(3);
  });

  it('button reports: a success needs its code or an event id, repeats count once, another app is a typed error', async () => {
    const bare = await user.ReportButtonOutcome({ input: { outcome: 'SUCCESS' } });
    expect(bare.reportButtonOutcome).toMatchObject({ __typename: 'InvalidInputError', field: 'clientEventId' });
    const code = await mintCode(t.sim);
    const first = await user.ReportButtonOutcome({ input: { outcome: 'SUCCESS', code, clientEventId: 'tap-1' } });
    const again = await user.ReportButtonOutcome({ input: { outcome: 'SUCCESS', code, clientEventId: 'tap-2' } });
    expect(first.reportButtonOutcome).toMatchObject({ duplicate: false });
    expect(again.reportButtonOutcome).toMatchObject({ duplicate: true });
    const foreign = await user.ReportButtonOutcome({ input: { outcome: 'USER_DENY', appid: OTHER_APP.appid } });
    expect(foreign.reportButtonOutcome).toMatchObject({ __typename: 'AppMismatchError', code: 'APP_MISMATCH' });
    const wrongKind = await user.ReportButtonOutcome({ input: { outcome: 'USER_DENY', code } });
    expect(wrongKind.reportButtonOutcome).toMatchObject({ __typename: 'InvalidInputError', field: 'code' });
  });

  it("after a sync the mirror takes WeChat's used counts, so a pack used by unseen charges cannot be refunded", async () => {
    const nowS = Math.floor(t.simulator.state.now() / 1000);
    const rt = await t.client('o_rt', { appid: REALTIME_APP.appid });
    void rt;
    // Spend the realtime app's trial at WeChat without the gateway seeing a code, then two units of a pack.
    const ledger = t.simulator.state.ledger(REALTIME_APP.appid);
    for (let i = 0; i < 1000; i++) ledger.charge(t.simulator.state.now());
    const { pkgId } = await t.sim.addPack(REALTIME_APP.appid, { all: 10, startTime: nowS - 60, endTime: nowS + 86_400 });
    const bought = await admin.RecordPackPurchase({ input: { appid: REALTIME_APP.appid, units: 10, paidAt: iso(Date.now() - 60_000), validityDays: 30, pricePaidMilli: '400', wechatPkgId: String(pkgId) } });
    if (bought.recordPackPurchase.__typename !== 'Pack') throw new Error('purchase refused');
    await mintCode(t.sim, undefined, REALTIME_APP.appid);
    await mintCode(t.sim, undefined, REALTIME_APP.appid);
    expect((await admin.Packs({ appid: REALTIME_APP.appid })).packs[0]).toMatchObject({ unitsUsed: 0 });
    await admin.SyncUsage({ appid: REALTIME_APP.appid });
    expect((await admin.Packs({ appid: REALTIME_APP.appid })).packs[0]).toMatchObject({ unitsUsed: 2, unitsLeft: 8 });
    expect((await admin.Quota({ appid: REALTIME_APP.appid })).quota).toMatchObject({ trialUsed: 1000, remaining: 8 });
    const refund = await admin.RequestPackRefund({ packId: bought.recordPackPurchase.packId });
    expect(refund.requestPackRefund).toMatchObject({ __typename: 'RefundRefused', rule: 'PACK_USED' });
  });

  it("an order is for one product: a realtime app cannot be assigned a pack of a quick order", async () => {
    const order = { orderId: `DD${Date.now()}${backend.name.length}`, product: 'QUICK' as const, unitsAll: 100, pricePaidMilli: '2500', paidAt: iso(Date.now() - 60_000) };
    const recorded = await admin.RecordProcurementOrder({ input: { ...order, skus: [{ skuId: '20000252', units: 10, durationSeconds: 30 * 86_400 }] } });
    expect(recorded.recordProcurementOrder.__typename).toBe('ProcurementOrderRecorded');
    const wrong = await admin.RequestPackAssignment({ input: { orderId: order.orderId, skuId: '20000252', receiverAppId: REALTIME_APP.appid, requestId: 'guard-req-0001' } });
    expect(wrong.requestPackAssignment).toMatchObject({ __typename: 'BillingInputError', message: expect.stringMatching(/product/) });
    const right = await admin.RequestPackAssignment({ input: { orderId: order.orderId, skuId: '20000252', receiverAppId: APP, requestId: 'guard-req-0002' } });
    expect(right.requestPackAssignment).toMatchObject({ __typename: 'PackAssignmentRequested', assignment: { state: 'REQUESTED', units: 10 } });
  });
});
