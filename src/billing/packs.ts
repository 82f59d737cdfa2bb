import type { PacksTable } from '../store/schema.js';
import { packStatus, type BillingPack, type PackStatus, type Product } from './rules.js';

/** A pack of one app: bought by it, or assigned to it from a service provider's order (集采). */
export interface Pack {
  id: string;
  kind: 'own' | 'assigned';
  appid: string;
  /** The same as id (kept for clients that read it). */
  packId: string;
  /** For an assigned pack: the order and the requestId of its assignment. */
  orderId: string | null;
  requestId: string | null;
  product: Product;
  unitsAll: number;
  unitsUsed: number;
  paidAt: number;
  effectiveAt: number;
  expiresAt: number;
  validityDays: number;
  pricePaidMilli: number;
  wechatPkgId: string | null;
  refundRequestedAt: number | null;
  status: PackStatus;
}

/** The assignment of a pack the app bought itself: none. */
export const NOT_ASSIGNED = { orderId: null, requestId: null } as const;

/** A pack row as the entity, with its status at `now`. */
export function packOf(p: PacksTable, assignment: { orderId: string | null; requestId: string | null }, now: number): Pack {
  return {
    id: p.id,
    kind: p.assignment_id === null ? 'own' : 'assigned',
    appid: p.owner_id,
    packId: p.id,
    orderId: assignment.orderId,
    requestId: assignment.requestId,
    product: p.product,
    unitsAll: p.units_all,
    unitsUsed: p.units_used,
    paidAt: p.paid_at,
    effectiveAt: p.effective_at,
    expiresAt: p.expires_at,
    validityDays: p.validity_days,
    pricePaidMilli: p.price_paid_milli,
    wechatPkgId: p.wechat_pkg_id,
    refundRequestedAt: p.refund_requested_at,
    status: packStatus(billingPack(p.id, p), now),
  };
}

// A pack with a refund requested is out of use at once (its money is on the way back).
export function billingPack(
  id: string,
  r: { units_all: number; units_used: number; effective_at: number; expires_at: number; refund_requested_at: number | null },
): BillingPack {
  return {
    id,
    all: r.units_all,
    used: r.units_used,
    effectiveAt: r.effective_at,
    expiresAt: r.expires_at,
    ...(r.refund_requested_at !== null ? { refundedAt: r.refund_requested_at } : {}),
  };
}
