// Longer than a module usually is: 集采's orders and assignments are one aggregate (an order's units
// held by its assignments, each assignment's pack drawn like the app's own), kept in one file so its
// locks and invariants read together; the rules it decides by are pure, in rules.ts.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database, PacksTable, ProcurementAssignmentsTable, ProcurementOrdersTable, ProcurementOrderSkusTable } from '../store/schema.js';
import { EARLIEST_PAYMENT, LedgerInputError, MAX_PACK_UNITS } from './ledger.js';
import { packOf, type Pack } from './packs.js';
import {
  ASSIGNMENT_CANCEL_WINDOW_MS,
  DAY_MS,
  ORDER_HOLDING_STATES,
  assignedPackPeriod,
  assignmentCancelDecision,
  assignmentResultStep,
  isRequestId,
  parseInt64Amount,
  type AssignmentCancelRule,
  type AssignmentState,
  type Product,
} from './rules.js';

/**
 * Bulk procurement (集采) as WeChat runs it: a service provider buys orders of wholesale packs
 * and assigns whole packs of an order's retail SKU to apps it has a relationship with
 * (`package/assign`, asynchronous, idempotent by orderId + requestId), and may cancel an
 * assignment within 7 days if not a unit of it was used. The gateway records what operators (and
 * later WeChat's pushed result events) tell it; an assigned pack becomes one of its app's packs,
 * drawn by the ledger like any other.
 */

export interface OrderSku {
  skuId: string;
  spuId: string | null;
  skuName: string | null;
  /** Units in one pack of this SKU. */
  units: number;
  /** The pack's validity, in seconds. */
  durationSeconds: number;
}

export interface ProcurementOrder {
  orderId: string;
  product: Product;
  spSpuId: string | null;
  spSkuId: string | null;
  skuCnt: number | null;
  unitsAll: number;
  /** Units held by requested and assigned packs. */
  unitsHeld: number;
  unitsLeft: number;
  /** 厘, as decimal digits (64-bit). */
  pricePaidMilli: string;
  paidAt: number;
  wechatCreatedAt: number | null;
  validityBeginAt: number | null;
  validityEndAt: number | null;
  recordedAt: number;
  skus: OrderSku[];
}

export interface PackAssignment {
  id: string;
  orderId: string;
  requestId: string;
  skuId: string;
  receiverAppId: string;
  beginTime: number | null;
  units: number;
  durationSeconds: number;
  state: AssignmentState;
  errcode: number | null;
  receivePkgId: string | null;
  requestedAt: number;
  settledAt: number | null;
  assignedAt: number | null;
  cancelledAt: number | null;
  /** The last instant a cancel is allowed, while assigned. */
  cancellableUntil: number | null;
  /** The app's pack, while assigned. */
  pack: Pack | null;
}

/** An order as WeChat's order/get and get_convertible_skus describe it. */
export interface OrderInput {
  orderId: string;
  product: Product;
  spSpuId?: string | null;
  spSkuId?: string | null;
  skuCnt?: number | null;
  unitsAll: number;
  pricePaidMilli: string;
  paidAt: number;
  wechatCreatedAt?: number | null;
  validityBeginAt?: number | null;
  validityEndAt?: number | null;
  skus: readonly OrderSku[];
}

/** package/assign's body. */
export interface AssignmentRequest {
  orderId: string;
  skuId: string;
  receiverAppId: string;
  requestId: string;
  beginTime?: number | null;
}

/**
 * WeChat's result of an assignment, as its pushed "assignment result" event gives it (event_type 5:
 * result, order_id, request_id, receive_appid, sku_id, receive_pkg_id) or as an operator reads it.
 * `result` 0 is assigned; any other errcode (such as 10045, no relationship with the app, which
 * package/assign may also answer at once) is a failure.
 */
export interface AssignmentResult {
  orderId: string;
  requestId: string;
  result: number;
  receivePkgId?: string | null;
  receiverAppId?: string | null;
  skuId?: string | null;
  /** When WeChat settled it (the event's CreateTime); now when not given. */
  at?: number | null;
}

export type AssignmentRequestRule = 'REQUEST_ID_REUSED' | 'ORDER_EXPIRED' | 'ORDER_UNITS_EXHAUSTED';
export type AssignmentResultRule = 'RESULT_CONFLICT' | 'ALREADY_CANCELLED' | 'ASSIGNMENT_MISMATCH';

export type RequestOutcome = { ok: true; assignment: PackAssignment; duplicate: boolean } | { ok: false; rule: AssignmentRequestRule };
export type ResultOutcome = { ok: true; assignment: PackAssignment; duplicate: boolean } | { ok: false; rule: AssignmentResultRule };
export type CancelOutcome = { ok: true; assignment: PackAssignment } | { ok: false; rule: AssignmentCancelRule };

const WECHAT_ID = /^[\x21-\x7e]{1,64}$/;
const DIGITS_ID = /^\d{1,20}$/;
const MAX_SKUS = 100;
const MAX_SKU_NAME = 200;
const MAX_DURATION_SECONDS = 3650 * 86_400;
const MAX_SKU_CNT = 1_000_000_000;

export class Procurement {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly apps: ReadonlyMap<string, AppConfig>,
    private readonly opts: { chargingStartDate?: string } = {},
  ) {}

  /**
   * Records an order. An order's facts do not change: recording the same order again is a
   * duplicate, recording other figures under its orderId is refused.
   */
  async recordOrder(input: OrderInput, now: number): Promise<{ order: ProcurementOrder; duplicate: boolean }> {
    const { row, skus } = orderRows(input, now);
    return this.db.transaction().execute(async (trx) => {
      const inserted = await trx.insertInto('procurement_orders').values(row).onConflict((oc) => oc.column('order_id').doNothing()).executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) {
        await trx.insertInto('procurement_order_skus').values(skus).execute();
        return { order: (await this.ordersIn(trx, [row.order_id]))[0]!, duplicate: false };
      }
      const existing = (await this.ordersIn(trx, [row.order_id]))[0]!;
      if (!sameOrder(existing, row, skus)) throw new LedgerInputError(`order ${row.order_id} was recorded with other figures: an order's facts do not change`);
      return { order: existing, duplicate: true };
    });
  }

  /**
   * Records a request to assign one pack of an order's SKU to an app (package/assign), holding
   * the pack's units of the order until WeChat's result. The same orderId and requestId again
   * is the same request: with the same payload it answers the assignment as it stands, with
   * another it is refused (REQUEST_ID_REUSED).
   */
  async requestAssignment(input: AssignmentRequest, now: number): Promise<RequestOutcome> {
    if (!isRequestId(input.requestId)) throw new LedgerInputError('requestId must be 10 to 64 printable characters without spaces');
    const app = this.app(input.receiverAppId);
    const beginTime = input.beginTime ?? null;
    if (beginTime !== null && !(Number.isSafeInteger(beginTime) && beginTime >= EARLIEST_PAYMENT && beginTime <= now + MAX_DURATION_SECONDS * 1000)) {
      throw new LedgerInputError('beginTime must be an instant from 2020-01-01 on, at most ten years ahead');
    }
    return this.db.transaction().execute(async (trx) => {
      // The order's row lock makes requests for one order take turns: none can see units another is taking.
      const locked = await trx.updateTable('procurement_orders').set({ recorded_at: sql`recorded_at` }).where('order_id', '=', input.orderId).executeTakeFirst();
      if (Number(locked.numUpdatedRows) !== 1) throw new LedgerInputError(`no such order: ${input.orderId}`);
      const existing = await trx.selectFrom('procurement_assignments').select('id').where('order_id', '=', input.orderId).where('request_id', '=', input.requestId).executeTakeFirst();
      if (existing) {
        const a = await this.assignmentById(trx, existing.id, now);
        const same = a.skuId === input.skuId && a.receiverAppId === input.receiverAppId && a.beginTime === beginTime;
        return same ? { ok: true, assignment: a, duplicate: true } : { ok: false, rule: 'REQUEST_ID_REUSED' };
      }
      const order = await trx.selectFrom('procurement_orders').selectAll().where('order_id', '=', input.orderId).executeTakeFirstOrThrow();
      const sku = await trx.selectFrom('procurement_order_skus').selectAll().where('order_id', '=', input.orderId).where('sku_id', '=', input.skuId).executeTakeFirst();
      if (!sku) throw new LedgerInputError(`order ${input.orderId} converts to no SKU ${input.skuId}`);
      if (order.product !== app.product) throw new LedgerInputError(`order ${input.orderId} is for the ${order.product} product; app ${app.appid} uses ${app.product}`);
      if (order.validity_end_at !== null && now >= order.validity_end_at) return { ok: false, rule: 'ORDER_EXPIRED' };
      const held = await trx
        .selectFrom('procurement_assignments')
        .select((eb) => eb.fn.sum<number | string>('units').as('n'))
        .where('order_id', '=', input.orderId)
        .where('state', 'in', ORDER_HOLDING_STATES)
        .executeTakeFirst();
      if (Number(held?.n ?? 0) + sku.units > order.units_all) return { ok: false, rule: 'ORDER_UNITS_EXHAUSTED' };
      const id = `pa_${randomUUID()}`;
      await trx
        .insertInto('procurement_assignments')
        .values({
          id,
          order_id: input.orderId,
          request_id: input.requestId,
          sku_id: input.skuId,
          receiver_appid: app.appid,
          begin_time: beginTime,
          units: sku.units,
          duration_seconds: sku.duration_seconds,
          state: 'requested',
          errcode: null,
          receive_pkg_id: null,
          pack_id: null,
          requested_at: now,
          settled_at: null,
          assigned_at: null,
          cancelled_at: null,
          updated_at: now,
        })
        .execute();
      return { ok: true, assignment: await this.assignmentById(trx, id, now), duplicate: false };
    });
  }

  /**
   * Records WeChat's result of an assignment: assigned (its pack becomes one of the app's packs,
   * drawn in the usual order) or failed with WeChat's errcode. The pushed result event calls this
   * too, and WeChat repeats its pushes, so the same result again changes nothing (`duplicate`);
   * a result that contradicts the recorded one is refused.
   */
  async recordAssignmentResult(input: AssignmentResult, now: number): Promise<ResultOutcome> {
    if (!Number.isSafeInteger(input.result)) throw new LedgerInputError('result must be an integer errcode (0: assigned)');
    const pkgId = input.receivePkgId ?? null;
    if (pkgId !== null && !WECHAT_ID.test(pkgId)) throw new LedgerInputError('receivePkgId must be 1 to 64 printable characters without spaces');
    const at = input.at ?? now;
    if (!(Number.isSafeInteger(at) && at >= EARLIEST_PAYMENT && at <= now + DAY_MS)) throw new LedgerInputError('at must be between 2020-01-01 and tomorrow');
    return this.db.transaction().execute(async (trx) => {
      const a = await this.lockAssignment(trx, input.orderId, input.requestId);
      if ((input.receiverAppId != null && input.receiverAppId !== a.receiver_appid) || (input.skuId != null && input.skuId !== a.sku_id)) {
        return { ok: false, rule: 'ASSIGNMENT_MISMATCH' };
      }
      const step = assignmentResultStep({ state: a.state, errcode: a.errcode }, input.result);
      if (step.kind === 'conflict') return { ok: false, rule: step.reason };
      if (step.kind === 'duplicate') {
        if (pkgId !== null && a.state !== 'failed') {
          if (a.receive_pkg_id !== null && a.receive_pkg_id !== pkgId) return { ok: false, rule: 'RESULT_CONFLICT' };
          if (a.receive_pkg_id === null) await this.learnPkgId(trx, a, pkgId, now);
        }
        return { ok: true, assignment: await this.assignmentById(trx, a.id, now), duplicate: true };
      }
      if (step.state === 'failed') {
        await trx.updateTable('procurement_assignments').set({ state: 'failed', errcode: input.result, settled_at: now, updated_at: now }).where('id', '=', a.id).execute();
      } else {
        const app = this.app(a.receiver_appid);
        const period = assignedPackPeriod({ assignedAt: at, beginTime: a.begin_time, durationSeconds: a.duration_seconds }, this.opts.chargingStartDate);
        const pack: PacksTable = {
          id: `pk_${randomUUID()}`,
          owner_kind: 'app',
          owner_id: app.appid,
          product: app.product,
          units_all: a.units,
          units_used: 0,
          paid_at: at,
          effective_at: period.effectiveAt,
          expires_at: period.expiresAt,
          validity_days: Math.ceil(a.duration_seconds / 86_400),
          price_paid_milli: 0,
          wechat_pkg_id: pkgId,
          refund_state: null,
          refund_requested_at: null,
          assignment_id: a.id,
          created_at: now,
        };
        await trx.insertInto('packs').values(pack).execute();
        await trx
          .updateTable('procurement_assignments')
          .set({ state: 'assigned', receive_pkg_id: pkgId, pack_id: pack.id, settled_at: now, assigned_at: at, updated_at: now })
          .where('id', '=', a.id)
          .execute();
      }
      return { ok: true, assignment: await this.assignmentById(trx, a.id, now), duplicate: false };
    });
  }

  /**
   * Cancels an assignment when WeChat's rule allows it: within 7 days of the assignment and not a
   * unit of its pack used (the mirror's draws, and WeChat's used count once a usage sync saw the
   * pack). The pack leaves the app at once; its units go back to the order.
   */
  async cancelAssignment(input: { orderId: string; requestId: string }, now: number): Promise<CancelOutcome> {
    return this.db.transaction().execute(async (trx) => {
      const a = await this.lockAssignment(trx, input.orderId, input.requestId);
      let used = 0;
      if (a.pack_id !== null) {
        // The pack's row lock first: a draw in flight holds it until it commits, so its unit is counted.
        await trx.updateTable('packs').set({ units_used: sql`units_used` }).where('id', '=', a.pack_id).execute();
        const pack = await trx.selectFrom('packs').select('units_used').where('id', '=', a.pack_id).executeTakeFirst();
        used = pack?.units_used ?? 0;
      }
      const decision = assignmentCancelDecision({ state: a.state, assignedAt: a.assigned_at, used }, now);
      if (!decision.cancellable) return { ok: false, rule: decision.rule };
      if (a.pack_id !== null) {
        // An unused pack is referenced by no charge, so it can go; conditional, so a draw and a cancel never both win.
        const gone = await trx.deleteFrom('packs').where('id', '=', a.pack_id).where('units_used', '=', 0).executeTakeFirst();
        if (Number(gone.numDeletedRows) !== 1) return { ok: false, rule: 'PACK_USED' };
      }
      await trx.updateTable('procurement_assignments').set({ state: 'cancelled', pack_id: null, cancelled_at: now, updated_at: now }).where('id', '=', a.id).execute();
      return { ok: true, assignment: await this.assignmentById(trx, a.id, now) };
    });
  }

  async orders(orderIds?: readonly string[]): Promise<ProcurementOrder[]> {
    return this.ordersIn(this.db, orderIds);
  }

  /** Assignments, oldest request first, with their app's pack while assigned. */
  async assignments(filter: { orderId?: string | null; appid?: string | null; state?: AssignmentState | null }, now: number): Promise<PackAssignment[]> {
    let q = this.assignmentQuery(this.db);
    if (filter.orderId != null) q = q.where('a.order_id', '=', filter.orderId);
    if (filter.appid != null) q = q.where('a.receiver_appid', '=', filter.appid);
    if (filter.state != null) q = q.where('a.state', '=', filter.state);
    const rows = await q.orderBy('a.requested_at').orderBy('a.id').execute();
    return rows.map((r) => toAssignment(r, now));
  }

  private async learnPkgId(trx: Kysely<Database>, a: ProcurementAssignmentsTable, pkgId: string, now: number): Promise<void> {
    await trx.updateTable('procurement_assignments').set({ receive_pkg_id: pkgId, updated_at: now }).where('id', '=', a.id).execute();
    if (a.pack_id !== null) await trx.updateTable('packs').set({ wechat_pkg_id: pkgId }).where('id', '=', a.pack_id).where('wechat_pkg_id', 'is', null).execute();
  }

  /** Takes the assignment's row lock until the transaction ends, and reads it. */
  private async lockAssignment(trx: Kysely<Database>, orderId: string, requestId: string): Promise<ProcurementAssignmentsTable> {
    const locked = await trx
      .updateTable('procurement_assignments')
      .set({ updated_at: sql`updated_at` })
      .where('order_id', '=', orderId)
      .where('request_id', '=', requestId)
      .executeTakeFirst();
    if (Number(locked.numUpdatedRows) !== 1) throw new LedgerInputError(`no assignment of order ${orderId} with requestId ${requestId}`);
    return trx.selectFrom('procurement_assignments').selectAll().where('order_id', '=', orderId).where('request_id', '=', requestId).executeTakeFirstOrThrow();
  }

  private assignmentQuery(db: Kysely<Database>) {
    return db
      .selectFrom('procurement_assignments as a')
      .leftJoin('packs as p', 'p.id', 'a.pack_id')
      .selectAll('a')
      .select([
        'p.id as p_id',
        'p.owner_kind as p_owner_kind',
        'p.owner_id as p_owner_id',
        'p.product as p_product',
        'p.units_all as p_units_all',
        'p.units_used as p_units_used',
        'p.paid_at as p_paid_at',
        'p.effective_at as p_effective_at',
        'p.expires_at as p_expires_at',
        'p.validity_days as p_validity_days',
        'p.price_paid_milli as p_price_paid_milli',
        'p.wechat_pkg_id as p_wechat_pkg_id',
        'p.refund_state as p_refund_state',
        'p.refund_requested_at as p_refund_requested_at',
        'p.assignment_id as p_assignment_id',
        'p.created_at as p_created_at',
      ]);
  }

  private async assignmentById(db: Kysely<Database>, id: string, now: number): Promise<PackAssignment> {
    const row = await this.assignmentQuery(db).where('a.id', '=', id).executeTakeFirstOrThrow();
    return toAssignment(row, now);
  }

  private async ordersIn(db: Kysely<Database>, orderIds?: readonly string[]): Promise<ProcurementOrder[]> {
    if (orderIds !== undefined && orderIds.length === 0) return [];
    let orders = db.selectFrom('procurement_orders').selectAll();
    let skus = db.selectFrom('procurement_order_skus').selectAll();
    let held = db
      .selectFrom('procurement_assignments')
      .select(['order_id', (eb) => eb.fn.sum<number | string>('units').as('n')])
      .where('state', 'in', ORDER_HOLDING_STATES)
      .groupBy('order_id');
    if (orderIds !== undefined) {
      orders = orders.where('order_id', 'in', orderIds);
      skus = skus.where('order_id', 'in', orderIds);
      held = held.where('order_id', 'in', orderIds);
    }
    const [o, s, h] = await Promise.all([orders.orderBy('paid_at').orderBy('order_id').execute(), skus.orderBy('sku_id').execute(), held.execute()]);
    const heldBy = new Map(h.map((r) => [r.order_id, Number(r.n ?? 0)]));
    return o.map((r) => toOrder(r, s.filter((k) => k.order_id === r.order_id), heldBy.get(r.order_id) ?? 0));
  }

  private app(appid: string): AppConfig {
    const app = this.apps.get(appid);
    if (!app) throw new LedgerInputError(`app ${appid} is not configured`);
    return app;
  }
}

/** event_type of WeChat's pushed assignment-result event (分配结果事件). */
export const ASSIGNMENT_RESULT_EVENT_TYPE = 5;

/**
 * The input {@link Procurement.recordAssignmentResult} takes, from a pushed message's fields (XML
 * or JSON, already parsed and decrypted): event_type 5, result, order_id, request_id,
 * receive_appid, sku_id, receive_pkg_id, and the envelope's CreateTime (seconds). Numbers may
 * come as strings, as in WeChat's other charge events. Undefined when the message is not such an
 * event or lacks what identifies the assignment.
 */
export function assignmentResultFromEvent(fields: Readonly<Record<string, unknown>>): AssignmentResult | undefined {
  if (integer(fields.event_type) !== ASSIGNMENT_RESULT_EVENT_TYPE) return undefined;
  const result = integer(fields.result);
  const orderId = text(fields.order_id);
  const requestId = text(fields.request_id);
  if (result === undefined || orderId === undefined || requestId === undefined) return undefined;
  const createTime = integer(fields.CreateTime);
  return {
    orderId,
    requestId,
    result,
    receivePkgId: text(fields.receive_pkg_id) ?? null,
    receiverAppId: text(fields.receive_appid) ?? null,
    skuId: text(fields.sku_id) ?? null,
    at: createTime === undefined ? null : createTime * 1000,
  };
}

function integer(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d{1,15}$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The order's rows, from input checked the way WeChat states its figures: ids as WeChat writes
 * them, 64-bit price as digits, units and validity within sane bounds.
 */
function orderRows(input: OrderInput, now: number): { row: ProcurementOrdersTable; skus: ProcurementOrderSkusTable[] } {
  if (!WECHAT_ID.test(input.orderId)) throw new LedgerInputError('orderId must be 1 to 64 printable characters without spaces');
  if (input.product !== 'quick' && input.product !== 'realtime') throw new LedgerInputError('product must be quick or realtime');
  for (const [name, v] of [['spSpuId', input.spSpuId], ['spSkuId', input.spSkuId]] as const) {
    if (v != null && !DIGITS_ID.test(v)) throw new LedgerInputError(`${name} must be WeChat's numeric id, as digits`);
  }
  const skuCnt = input.skuCnt ?? null;
  if (skuCnt !== null && !(Number.isSafeInteger(skuCnt) && skuCnt > 0 && skuCnt <= MAX_SKU_CNT)) throw new LedgerInputError(`skuCnt must be a whole number from 1 to ${MAX_SKU_CNT}`);
  if (!(Number.isSafeInteger(input.unitsAll) && input.unitsAll > 0 && input.unitsAll <= MAX_PACK_UNITS)) throw new LedgerInputError(`unitsAll must be a whole number from 1 to ${MAX_PACK_UNITS}`);
  const price = parseInt64Amount(input.pricePaidMilli);
  if (price === undefined) throw new LedgerInputError('pricePaidMilli must be a whole number of 厘 written in digits, at most 9223372036854775807');
  const instant = (v: number | null | undefined, name: string, latest: number): number | null => {
    if (v == null) return null;
    if (!(Number.isSafeInteger(v) && v >= EARLIEST_PAYMENT && v <= latest)) throw new LedgerInputError(`${name} must be between 2020-01-01 and ${latest === now + DAY_MS ? 'tomorrow' : 'ten years ahead'}`);
    return v;
  };
  const paidAt = instant(input.paidAt, 'paidAt', now + DAY_MS)!;
  const wechatCreatedAt = instant(input.wechatCreatedAt, 'wechatCreatedAt', now + DAY_MS);
  const far = now + MAX_DURATION_SECONDS * 1000;
  const validityBeginAt = instant(input.validityBeginAt, 'validityBeginAt', far);
  const validityEndAt = instant(input.validityEndAt, 'validityEndAt', far);
  if (validityBeginAt !== null && validityEndAt !== null && validityEndAt <= validityBeginAt) throw new LedgerInputError('validityEndAt must come after validityBeginAt');
  if (input.skus.length === 0 || input.skus.length > MAX_SKUS) throw new LedgerInputError(`an order converts to 1 to ${MAX_SKUS} SKUs (get_convertible_skus)`);
  const seen = new Set<string>();
  const skus = input.skus.map((k): ProcurementOrderSkusTable => {
    if (!DIGITS_ID.test(k.skuId)) throw new LedgerInputError("skuId must be WeChat's numeric id, as digits");
    if (seen.has(k.skuId)) throw new LedgerInputError(`SKU ${k.skuId} is listed twice`);
    seen.add(k.skuId);
    if (k.spuId != null && !DIGITS_ID.test(k.spuId)) throw new LedgerInputError("spuId must be WeChat's numeric id, as digits");
    if (k.skuName != null && (k.skuName.length === 0 || k.skuName.length > MAX_SKU_NAME)) throw new LedgerInputError(`skuName must be 1 to ${MAX_SKU_NAME} characters`);
    if (!(Number.isSafeInteger(k.units) && k.units > 0 && k.units <= input.unitsAll)) throw new LedgerInputError(`SKU ${k.skuId}: units (one pack) must be a whole number from 1 to the order's ${input.unitsAll}`);
    if (!(Number.isSafeInteger(k.durationSeconds) && k.durationSeconds > 0 && k.durationSeconds <= MAX_DURATION_SECONDS)) {
      throw new LedgerInputError(`SKU ${k.skuId}: durationSeconds must be a whole number from 1 to ${MAX_DURATION_SECONDS} (ten years)`);
    }
    return { order_id: input.orderId, sku_id: k.skuId, spu_id: k.spuId ?? null, sku_name: k.skuName ?? null, units: k.units, duration_seconds: k.durationSeconds };
  });
  return {
    row: {
      order_id: input.orderId,
      product: input.product,
      sp_spu_id: input.spSpuId ?? null,
      sp_sku_id: input.spSkuId ?? null,
      sku_cnt: skuCnt,
      units_all: input.unitsAll,
      price_paid_milli: price.toString(),
      paid_at: paidAt,
      wechat_created_at: wechatCreatedAt,
      validity_begin_at: validityBeginAt,
      validity_end_at: validityEndAt,
      recorded_at: now,
    },
    skus,
  };
}

function sameOrder(o: ProcurementOrder, row: ProcurementOrdersTable, skus: readonly ProcurementOrderSkusTable[]): boolean {
  const facts = (x: object) => JSON.stringify(x);
  const given = {
    product: row.product,
    spSpuId: row.sp_spu_id,
    spSkuId: row.sp_sku_id,
    skuCnt: row.sku_cnt,
    unitsAll: row.units_all,
    pricePaidMilli: row.price_paid_milli,
    paidAt: row.paid_at,
    wechatCreatedAt: row.wechat_created_at,
    validityBeginAt: row.validity_begin_at,
    validityEndAt: row.validity_end_at,
    skus: [...skus].sort((a, b) => (a.sku_id < b.sku_id ? -1 : 1)).map((k) => ({ skuId: k.sku_id, spuId: k.spu_id, skuName: k.sku_name, units: k.units, durationSeconds: k.duration_seconds })),
  };
  const stored = {
    product: o.product,
    spSpuId: o.spSpuId,
    spSkuId: o.spSkuId,
    skuCnt: o.skuCnt,
    unitsAll: o.unitsAll,
    pricePaidMilli: o.pricePaidMilli,
    paidAt: o.paidAt,
    wechatCreatedAt: o.wechatCreatedAt,
    validityBeginAt: o.validityBeginAt,
    validityEndAt: o.validityEndAt,
    skus: o.skus.map((k) => ({ skuId: k.skuId, spuId: k.spuId, skuName: k.skuName, units: k.units, durationSeconds: k.durationSeconds })),
  };
  return facts(given) === facts(stored);
}

function toOrder(r: ProcurementOrdersTable, skus: ProcurementOrderSkusTable[], held: number): ProcurementOrder {
  const unitsAll = Number(r.units_all);
  return {
    orderId: r.order_id,
    product: r.product,
    spSpuId: r.sp_spu_id,
    spSkuId: r.sp_sku_id,
    skuCnt: r.sku_cnt === null ? null : Number(r.sku_cnt),
    unitsAll,
    unitsHeld: held,
    unitsLeft: Math.max(0, unitsAll - held),
    pricePaidMilli: r.price_paid_milli,
    paidAt: Number(r.paid_at),
    wechatCreatedAt: nullableNumber(r.wechat_created_at),
    validityBeginAt: nullableNumber(r.validity_begin_at),
    validityEndAt: nullableNumber(r.validity_end_at),
    recordedAt: Number(r.recorded_at),
    skus: skus.map((k) => ({ skuId: k.sku_id, spuId: k.spu_id, skuName: k.sku_name, units: Number(k.units), durationSeconds: Number(k.duration_seconds) })),
  };
}

type AssignmentRow = ProcurementAssignmentsTable & { [K in keyof PacksTable as `p_${K}`]: PacksTable[K] | null };

function toAssignment(r: AssignmentRow, now: number): PackAssignment {
  const pack: Pack | null =
    r.p_id === null
      ? null
      : packOf(
          {
            id: r.p_id,
            owner_kind: 'app',
            owner_id: r.p_owner_id!,
            product: r.p_product!,
            units_all: Number(r.p_units_all),
            units_used: Number(r.p_units_used),
            paid_at: Number(r.p_paid_at),
            effective_at: Number(r.p_effective_at),
            expires_at: Number(r.p_expires_at),
            validity_days: Number(r.p_validity_days),
            price_paid_milli: Number(r.p_price_paid_milli),
            wechat_pkg_id: r.p_wechat_pkg_id,
            refund_state: r.p_refund_state,
            refund_requested_at: nullableNumber(r.p_refund_requested_at),
            assignment_id: r.p_assignment_id,
            created_at: Number(r.p_created_at),
          },
          { orderId: r.order_id, requestId: r.request_id },
          now,
        );
  const assignedAt = nullableNumber(r.assigned_at);
  return {
    id: r.id,
    orderId: r.order_id,
    requestId: r.request_id,
    skuId: r.sku_id,
    receiverAppId: r.receiver_appid,
    beginTime: nullableNumber(r.begin_time),
    units: Number(r.units),
    durationSeconds: Number(r.duration_seconds),
    state: r.state,
    errcode: r.errcode === null ? null : Number(r.errcode),
    receivePkgId: r.receive_pkg_id,
    requestedAt: Number(r.requested_at),
    settledAt: nullableNumber(r.settled_at),
    assignedAt,
    cancelledAt: nullableNumber(r.cancelled_at),
    cancellableUntil: r.state === 'assigned' && assignedAt !== null ? assignedAt + ASSIGNMENT_CANCEL_WINDOW_MS - 1 : null,
    pack,
  };
}

function nullableNumber(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}
