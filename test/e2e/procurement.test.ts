import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { GatewayClient } from '../../sdk/client.js';

// An app of a service provider's (集采): its trial is spent, it has a pack of its own and gets packs assigned.
const MEMBER = { appid: 'wx00000000000000f1', secret: 'member-app-secret-0123456789abcdef' };
const DAY = 86_400_000;
const SKU = '20000252';
const iso = (ms: number) => new Date(ms).toISOString();

describe.each(BACKENDS)('bulk procurement (集采) over GraphQL ($name)', (backend) => {
  let t: TestGateway;
  let admin: GatewayClient;
  let reader: GatewayClient;
  let user: GatewayClient;
  const orderId = `DD29827641916424193${backend.name.length}`;

  beforeAll(async () => {
    t = await startTestGateway({ backend, extraApps: [MEMBER] });
    admin = await t.client('svc_procurement', { scopes: ['quota:read', 'billing:admin'] });
    reader = await t.client('svc_procurement_reader', { scopes: ['quota:read'] });
    user = await t.client('o_member_user', { appid: MEMBER.appid });
  });
  afterAll(() => t?.close());

  const request = (requestId: string, extra: { receiverAppId?: string; skuId?: string } = {}) =>
    admin.RequestPackAssignment({ input: { orderId, skuId: extra.skuId ?? SKU, receiverAppId: extra.receiverAppId ?? MEMBER.appid, requestId } });
  const settle = (requestId: string, result: number, extra: { receivePkgId?: string; at?: string } = {}) =>
    admin.RecordPackAssignmentResult({ input: { orderId, requestId, result, ...extra } });

  it('orders and assignments are read with quota:read and changed with billing:admin only', async () => {
    await expect(user.ProcurementOrders({})).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(user.PackAssignments({})).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect((await reader.ProcurementOrders({})).procurementOrders).toEqual([]);
    const input = { orderId, product: 'QUICK' as const, unitsAll: 15, pricePaidMilli: '375', paidAt: iso(Date.now() - DAY), skus: [{ skuId: SKU, units: 5, durationSeconds: 10 * 86_400 }] };
    await expect(reader.RecordProcurementOrder({ input })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(reader.RequestPackAssignment({ input: { orderId, skuId: SKU, receiverAppId: MEMBER.appid, requestId: 'req-forbidden-1' } })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(reader.CancelPackAssignment({ orderId, requestId: 'req-forbidden-1' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it("an assigned pack is one of the app's packs, drawn in the usual order; WeChat's use of it counts, so a used pack cannot be cancelled", async () => {
    // At WeChat (the simulator): the trial spent, a pack bought (30 days) and the assigned pack (10 days).
    const nowS = Math.floor(t.simulator.state.now() / 1000);
    const wechat = t.simulator.state.ledger(MEMBER.appid);
    for (let i = 0; i < 1000; i++) wechat.charge(t.simulator.state.now());
    const own = await t.sim.addPack(MEMBER.appid, { all: 50, startTime: nowS - 60, endTime: nowS + 30 * 86_400 });
    const assignedAtWechat = await t.sim.addPack(MEMBER.appid, { all: 5, startTime: nowS - 60, endTime: nowS + 10 * 86_400 });
    const bought = await admin.RecordPackPurchase({ input: { appid: MEMBER.appid, units: 50, paidAt: iso(Date.now() - 60_000), validityDays: 30, pricePaidMilli: '1500', wechatPkgId: String(own.pkgId) } });
    expect(bought.recordPackPurchase.__typename).toBe('Pack');

    const recorded = await admin.RecordProcurementOrder({
      input: {
        orderId,
        product: 'QUICK',
        spSpuId: '10000117',
        spSkuId: '20000176',
        skuCnt: 1,
        unitsAll: 15,
        pricePaidMilli: '375',
        paidAt: iso(Date.now() - DAY),
        wechatCreatedAt: iso(Date.now() - DAY - 60_000),
        skus: [{ skuId: SKU, spuId: '10000077', skuName: '100次', units: 5, durationSeconds: 10 * 86_400 }],
      },
    });
    expect(recorded.recordProcurementOrder).toMatchObject({ __typename: 'ProcurementOrderRecorded', duplicate: false, order: { orderId, product: 'QUICK', unitsAll: 15, unitsLeft: 15, pricePaidMilli: '375', pricePaidYuan: '0.375' } });

    const requested = await request('req-e2e-0000001');
    expect(requested.requestPackAssignment).toMatchObject({ __typename: 'PackAssignmentRequested', duplicate: false, assignment: { state: 'REQUESTED', units: 5, pack: null } });
    expect((await admin.Packs({ appid: MEMBER.appid })).packs.map((p) => p.kind)).toEqual(['OWN']); // nothing until WeChat's result
    const settled = await settle('req-e2e-0000001', 0, { receivePkgId: String(assignedAtWechat.pkgId) });
    expect(settled.recordPackAssignmentResult).toMatchObject({
      __typename: 'PackAssignmentResultRecorded',
      duplicate: false,
      assignment: { state: 'ASSIGNED', receivePkgId: String(assignedAtWechat.pkgId), pack: { kind: 'ASSIGNED', unitsAll: 5, unitsUsed: 0, status: 'IN_EFFECT' } },
    });
    const again = await settle('req-e2e-0000001', 0, { receivePkgId: String(assignedAtWechat.pkgId) });
    expect(again.recordPackAssignmentResult).toMatchObject({ __typename: 'PackAssignmentResultRecorded', duplicate: true });

    // The mirror learns the trial is spent; the next exchange draws from the pack that expires soonest: the assigned one.
    expect((await admin.SyncUsage({ appid: MEMBER.appid })).syncUsage.__typename).toBe('UsageSynced');
    const code = await mintCode(t.sim, undefined, MEMBER.appid);
    expect((await user.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const packs = (await admin.Packs({ appid: MEMBER.appid })).packs;
    expect(packs.map((p) => [p.kind, p.unitsUsed])).toEqual([['ASSIGNED', 1], ['OWN', 0]]);
    expect(packs[0]).toMatchObject({ orderId, requestId: 'req-e2e-0000001', pricePaidMilli: '0', wechatPkgId: String(assignedAtWechat.pkgId) });

    // Two taps the gateway never saw: WeChat's count reaches the assigned pack at the next sync.
    await mintCode(t.sim, undefined, MEMBER.appid);
    await mintCode(t.sim, undefined, MEMBER.appid);
    await admin.SyncUsage({ appid: MEMBER.appid });
    const assignments = (await reader.PackAssignments({ appid: MEMBER.appid, state: 'ASSIGNED' })).packAssignments;
    expect(assignments).toHaveLength(1);
    expect(assignments[0]!.pack).toMatchObject({ unitsUsed: 3 });
    const cancel = await admin.CancelPackAssignment({ orderId, requestId: 'req-e2e-0000001' });
    expect(cancel.cancelPackAssignment).toMatchObject({ __typename: 'PackAssignmentCancelRefused', rule: 'PACK_USED' });
  });

  it('requestId makes a request idempotent; failures keep WeChat\'s errcode; an unused assignment within 7 days is cancelled and gives its units back, an older one is refused', async () => {
    const dup = await request('req-e2e-0000001');
    expect(dup.requestPackAssignment).toMatchObject({ __typename: 'PackAssignmentRequested', duplicate: true, assignment: { state: 'ASSIGNED' } });
    const reused = await request('req-e2e-0000001', { receiverAppId: 'wx00000000000000b2' });
    expect(reused.requestPackAssignment).toMatchObject({ __typename: 'PackAssignmentRefused', rule: 'REQUEST_ID_REUSED' });
    const short = await request('req-1');
    expect(short.requestPackAssignment).toMatchObject({ __typename: 'BillingInputError', message: expect.stringMatching(/requestId/) });

    expect((await request('req-e2e-0000002')).requestPackAssignment.__typename).toBe('PackAssignmentRequested');
    expect((await settle('req-e2e-0000002', 10045)).recordPackAssignmentResult).toMatchObject({ assignment: { state: 'FAILED', errcode: 10045, pack: null } });
    expect((await admin.CancelPackAssignment({ orderId, requestId: 'req-e2e-0000002' })).cancelPackAssignment).toMatchObject({ rule: 'NOT_ASSIGNED' });

    expect((await request('req-e2e-0000003')).requestPackAssignment.__typename).toBe('PackAssignmentRequested');
    await settle('req-e2e-0000003', 0);
    expect((await request('req-e2e-0000004')).requestPackAssignment.__typename).toBe('PackAssignmentRequested');
    await settle('req-e2e-0000004', 0, { at: iso(Date.now() - 8 * DAY) });
    // 15 units: three packs of 5 held (the failed one gave its units back).
    expect((await admin.ProcurementOrders({ orderId })).procurementOrders[0]).toMatchObject({ unitsHeld: 15, unitsLeft: 0 });
    expect((await request('req-e2e-0000005')).requestPackAssignment).toMatchObject({ rule: 'ORDER_UNITS_EXHAUSTED' });

    expect((await admin.CancelPackAssignment({ orderId, requestId: 'req-e2e-0000004' })).cancelPackAssignment).toMatchObject({ __typename: 'PackAssignmentCancelRefused', rule: 'CANCEL_WINDOW_PASSED' });
    const cancelled = await admin.CancelPackAssignment({ orderId, requestId: 'req-e2e-0000003' });
    expect(cancelled.cancelPackAssignment).toMatchObject({ __typename: 'PackAssignmentCancelled', assignment: { state: 'CANCELLED', pack: null } });
    expect((await admin.Packs({ appid: MEMBER.appid })).packs.filter((p) => p.kind === 'ASSIGNED').map((p) => p.requestId)).toEqual(['req-e2e-0000004', 'req-e2e-0000001']); // soonest expiry first: assigned 8 days ago
    const order = (await reader.ProcurementOrders({ orderId })).procurementOrders[0]!;
    expect(order).toMatchObject({ unitsHeld: 10, unitsLeft: 5 });
    expect((await reader.PackAssignments({ orderId })).packAssignments.map((a) => [a.requestId, a.state])).toEqual([
      ['req-e2e-0000001', 'ASSIGNED'],
      ['req-e2e-0000002', 'FAILED'],
      ['req-e2e-0000003', 'CANCELLED'],
      ['req-e2e-0000004', 'ASSIGNED'],
    ]);
  });
});
