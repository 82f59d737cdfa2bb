import { randomBytes } from 'node:crypto';
import type { Procurement } from '../../src/billing/procurement.js';
import { DAY_MS } from '../../src/billing/rules.js';

/** A WeChat-like order id ("DD" + 19 digits), unique per call. */
export function orderId(): string {
  return `DD${BigInt(`0x${randomBytes(8).toString('hex')}`).toString().padStart(19, '0').slice(0, 19)}`;
}

/** A requestId WeChat accepts (10–64 characters), unique per call. */
export function requestId(): string {
  return `req-${randomBytes(8).toString('hex')}`;
}

/**
 * Records an order with one SKU (`units` per pack, `days` of validity) and, unless `assign` is
 * false, assigns one pack of it to `appid` with WeChat's success: the shortest way to give an app
 * an assigned pack.
 */
export async function assignedPack(
  procurement: Procurement,
  o: { appid: string; now: number; units: number; days: number; orderUnits?: number; assignedAt?: number; beginTime?: number | null; receivePkgId?: string | null; product?: 'quick' | 'realtime' },
) {
  const order = orderId();
  const skuId = '20000252';
  await procurement.recordOrder(
    {
      orderId: order,
      product: o.product ?? 'quick',
      spSpuId: '10000117',
      spSkuId: '20000176',
      skuCnt: 1,
      unitsAll: o.orderUnits ?? o.units * 10,
      pricePaidMilli: String(o.units * 10 * 25),
      paidAt: o.now - DAY_MS,
      skus: [{ skuId, spuId: '10000077', skuName: 'pack', units: o.units, durationSeconds: o.days * 86_400 }],
    },
    o.now,
  );
  const rid = requestId();
  const requested = await procurement.requestAssignment({ orderId: order, skuId, receiverAppId: o.appid, requestId: rid, beginTime: o.beginTime ?? null }, o.now);
  if (!requested.ok) throw new Error(`assignment refused: ${requested.rule}`);
  const settled = await procurement.recordAssignmentResult({ orderId: order, requestId: rid, result: 0, receivePkgId: o.receivePkgId ?? null, at: o.assignedAt ?? o.now }, o.now);
  if (!settled.ok) throw new Error(`result refused: ${settled.rule}`);
  return { orderId: order, skuId, requestId: rid, assignment: settled.assignment, packId: settled.assignment.pack!.id };
}
