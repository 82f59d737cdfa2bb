import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { PackRef } from './packs.js';
import { ProductEnum, productName } from './enums.js';
import { NodeInterface, registerNode } from './node.js';
import { LedgerInputError } from '../src/billing/ledger.js';
import type { OrderSku, PackAssignment, ProcurementOrder } from '../src/billing/procurement.js';
import { formatYuanExact, type AssignmentState } from '../src/billing/rules.js';
import { PackAssignmentCancelRefused, PackAssignmentRefused, PackAssignmentResultRefused } from './errors.js';

// Bulk procurement (集采): a service provider's orders and its assignments of whole packs to apps.

const STATE = { REQUESTED: 'requested', ASSIGNED: 'assigned', FAILED: 'failed', CANCELLED: 'cancelled' } as const;
const STATE_NAME = { requested: 'REQUESTED', assigned: 'ASSIGNED', failed: 'FAILED', cancelled: 'CANCELLED' } as const;

const AssignmentStateEnum = builder.enumType('PackAssignmentState', {
  description: 'Where an assignment of a procurement pack stands.',
  values: {
    REQUESTED: { description: "Asked of WeChat (package/assign); WeChat's result is not known yet. Holds its units of the order." },
    ASSIGNED: { description: "WeChat assigned the pack: it is one of the app's packs, drawn in the usual order." },
    FAILED: { description: 'WeChat refused it (errcode says why, e.g. 10045: no relationship between provider and app). Its units go back to the order.' },
    CANCELLED: { description: 'Cancelled within 7 days of the assignment, unused. The pack left the app; its units went back to the order.' },
  },
});

const ProcurementSkuRef = builder.objectRef<OrderSku>('ProcurementSku').implement({
  description: 'A retail SKU the order converts to (get_convertible_skus): one assignment gives an app one pack of it.',
  fields: (t) => ({
    skuId: t.exposeString('skuId', { description: "WeChat's sku_id: what requestPackAssignment names." }),
    spuId: t.exposeString('spuId', { nullable: true, description: "WeChat's spu_id of the retail product." }),
    skuName: t.exposeString('skuName', { nullable: true, description: "WeChat's name of the SKU." }),
    units: t.exposeInt('units', { description: 'Units in one pack (attr.proportion.quota.quota).' }),
    durationSeconds: t.exposeInt('durationSeconds', { description: "The pack's validity in seconds (attr.duration)." }),
  }),
});

const PackAssignmentRef = builder.objectRef<PackAssignment>('PackAssignment').implement({
  description: "One pack of an order's SKU assigned to an app (package/assign), keyed by the order and WeChat's requestId.",
  interfaces: [NodeInterface],
  fields: (t) => ({
    orderId: t.exposeString('orderId', { description: 'The procurement order the pack comes from.' }),
    requestId: t.exposeString('requestId', { description: "The assignment's requestId (unique within its order)." }),
    skuId: t.exposeString('skuId', { description: 'The SKU assigned: one pack of it.' }),
    receiverAppId: t.exposeString('receiverAppId', { description: 'The app that receives the pack.' }),
    beginTime: t.field({ type: DateTime, nullable: true, description: 'When the pack should take effect, if the request said.', resolve: (a) => a.beginTime }),
    units: t.exposeInt('units', { description: 'The pack size: what the assignment holds of its order.' }),
    durationSeconds: t.exposeInt('durationSeconds', { description: "The pack's validity in seconds." }),
    state: t.field({ type: AssignmentStateEnum, description: 'Where the assignment stands.', resolve: (a) => STATE_NAME[a.state] }),
    errcode: t.exposeInt('errcode', { nullable: true, description: "WeChat's errcode when FAILED." }),
    receivePkgId: t.exposeString('receivePkgId', { nullable: true, description: "The pack's id at WeChat (the result's receive_pkg_id): its row in the app's usage." }),
    requestedAt: t.field({ type: DateTime, description: 'When the assignment was requested.', resolve: (a) => a.requestedAt }),
    settledAt: t.field({ type: DateTime, nullable: true, description: "When WeChat's result was recorded.", resolve: (a) => a.settledAt }),
    assignedAt: t.field({ type: DateTime, nullable: true, description: 'When WeChat assigned the pack; null unless it did.', resolve: (a) => a.assignedAt }),
    cancelledAt: t.field({ type: DateTime, nullable: true, description: 'When the assignment was cancelled; null unless it was.', resolve: (a) => a.cancelledAt }),
    cancellableUntil: t.field({ type: DateTime, nullable: true, description: 'While ASSIGNED: the last instant a cancel is allowed (if the pack stays unused).', resolve: (a) => a.cancellableUntil }),
    pack: t.field({ type: PackRef, nullable: true, description: "The app's pack, while ASSIGNED.", resolve: (a) => a.pack }),
  }),
});

const ProcurementOrderRef = builder.objectRef<ProcurementOrder>('ProcurementOrder').implement({
  description: "A service provider's bulk-procurement (集采) order, as WeChat's order/get describes it.",
  interfaces: [NodeInterface],
  fields: (t) => ({
    orderId: t.exposeString('orderId', { description: "WeChat's orderId." }),
    product: t.field({ type: ProductEnum, description: 'The component its packs are for.', resolve: (o) => productName(o.product) }),
    spSpuId: t.exposeString('spSpuId', { nullable: true, description: 'The wholesale product bought (orderProductInfo.spSpuId).' }),
    spSkuId: t.exposeString('spSkuId', { nullable: true, description: 'The wholesale SKU bought (orderProductInfo.spSkuId).' }),
    skuCnt: t.exposeInt('skuCnt', { nullable: true, description: 'Wholesale SKUs bought (orderProductInfo.skuCnt).' }),
    unitsAll: t.exposeInt('unitsAll', { description: 'Units the order holds (usage.all).' }),
    unitsHeld: t.exposeInt('unitsHeld', { description: 'Units held by REQUESTED and ASSIGNED packs.' }),
    unitsLeft: t.exposeInt('unitsLeft', { description: 'Units still free to assign.' }),
    pricePaidMilli: t.exposeString('pricePaidMilli', { description: 'What was paid, in milli-yuan (厘), as digits: exact for any 64-bit amount.' }),
    pricePaidYuan: t.string({ description: 'The same price in yuan, exact.', resolve: (o) => formatYuanExact(BigInt(o.pricePaidMilli)) }),
    paidAt: t.field({ type: DateTime, description: 'When it was paid (payInfo.finishPayTime).', resolve: (o) => o.paidAt }),
    wechatCreatedAt: t.field({ type: DateTime, nullable: true, description: "WeChat's createTime of the order.", resolve: (o) => o.wechatCreatedAt }),
    validityBeginAt: t.field({ type: DateTime, nullable: true, description: 'When the order becomes usable (orderProductInfo.validityBeginTime).', resolve: (o) => o.validityBeginAt }),
    validityEndAt: t.field({ type: DateTime, nullable: true, description: 'After it, nothing more can be assigned from the order.', resolve: (o) => o.validityEndAt }),
    recordedAt: t.field({ type: DateTime, description: 'When the gateway recorded it.', resolve: (o) => o.recordedAt }),
    skus: t.field({ type: [ProcurementSkuRef], description: 'The retail SKUs it converts to.', resolve: (o) => o.skus }),
    assignments: t.field({
      type: [PackAssignmentRef],
      nullable: true,
      description: 'Its assignments, oldest request first; null (with an error) when they could not be read.',
      resolve: (o, _a, ctx) => ctx.services.billing.procurement.assignments({ orderId: o.orderId }, ctx.services.now()),
    }),
  }),
});

builder.queryFields((t) => ({
  procurementOrders: t.field({
    type: [ProcurementOrderRef],
    nullable: true,
    description: 'Bulk-procurement (集采) orders, earliest payment first.',
    authScopes: { scope: 'quota:read' },
    args: { orderId: t.arg.string({ required: false, description: 'Only this order.' }) },
    resolve: (_r, { orderId }, ctx) => ctx.services.billing.procurement.orders(orderId == null ? undefined : [orderId]),
  }),
  packAssignments: t.field({
    type: [PackAssignmentRef],
    nullable: true,
    description: 'Assignments of procurement packs, oldest request first.',
    authScopes: { scope: 'quota:read' },
    args: {
      orderId: t.arg.string({ required: false, description: 'Only assignments from this order.' }),
      appid: t.arg.string({ required: false, description: 'Only assignments to this app.' }),
      state: t.arg({ type: AssignmentStateEnum, required: false, description: 'Only assignments in this state.' }),
    },
    resolve: (_r, { orderId, appid, state }, ctx) =>
      ctx.services.billing.procurement.assignments({ orderId, appid, state: state == null ? null : (STATE[state] as AssignmentState) }, ctx.services.now()),
  }),
}));

const ProcurementSkuInput = builder.inputType('ProcurementSkuInput', {
  description: 'A retail SKU as get_convertible_skus lists it.',
  fields: (t) => ({
    skuId: t.string({ description: 'sku_id.' }),
    spuId: t.string({ required: false, description: 'spu_id.' }),
    skuName: t.string({ required: false, description: 'sku_name.' }),
    units: t.int({ description: 'Units in one pack (attr.proportion.quota.quota).' }),
    durationSeconds: t.int({ description: 'Validity of one pack in seconds (attr.duration; 31536000 is a year).' }),
  }),
});

const RecordProcurementOrderInput = builder.inputType('RecordProcurementOrderInput', {
  description: "An order as WeChat's order/get shows it, with the SKUs get_convertible_skus lists for it.",
  fields: (t) => ({
    orderId: t.string({ description: 'WeChat\'s orderId, e.g. "DD2970445798112968704".' }),
    product: t.field({ type: ProductEnum, description: 'Which component its packs are for (quick: wholesale spuId 10000117; realtime: 10000120).' }),
    spSpuId: t.string({ required: false, description: 'orderProductInfo.spSpuId.' }),
    spSkuId: t.string({ required: false, description: 'orderProductInfo.spSkuId.' }),
    skuCnt: t.int({ required: false, description: 'orderProductInfo.skuCnt.' }),
    unitsAll: t.int({ description: 'Units the order holds (usage.all).' }),
    pricePaidMilli: t.string({ description: "What was paid, in milli-yuan (厘), as digits (WeChat's orderPrice is in fen: × 10)." }),
    paidAt: t.field({ type: DateTime, description: 'payInfo.finishPayTime.' }),
    wechatCreatedAt: t.field({ type: DateTime, required: false, description: 'createTime.' }),
    validityBeginAt: t.field({ type: DateTime, required: false, description: 'orderProductInfo.validityBeginTime.' }),
    validityEndAt: t.field({ type: DateTime, required: false, description: 'orderProductInfo.validity (an instant, despite its name).' }),
    skus: t.field({ type: [ProcurementSkuInput], description: 'What get_convertible_skus lists for the order.' }),
  }),
});

const RequestPackAssignmentInput = builder.inputType('RequestPackAssignmentInput', {
  description: "package/assign's body.",
  fields: (t) => ({
    orderId: t.string({ description: 'The order to assign from.' }),
    skuId: t.string({ description: 'One of the SKUs the order converts to.' }),
    receiverAppId: t.string({ description: 'The app that receives the pack.' }),
    requestId: t.string({ description: '10 to 64 characters; the same orderId and requestId again is the same request.' }),
    beginTime: t.field({ type: DateTime, required: false, description: 'When the pack takes effect (some products only).' }),
  }),
});

const RecordPackAssignmentResultInput = builder.inputType('RecordPackAssignmentResultInput', {
  description: "WeChat's result of an assignment, as its assignment-result event (event_type 5) or package/assign's own errcode gives it.",
  fields: (t) => ({
    orderId: t.string({ description: 'The order of the assignment.' }),
    requestId: t.string({ description: 'The requestId of the assignment.' }),
    result: t.int({ description: '0: assigned; any other errcode: failed (e.g. 10045).' }),
    receivePkgId: t.string({ required: false, description: "receive_pkg_id: the pack's id in the app's usage." }),
    receiverAppId: t.string({ required: false, description: 'receive_appid, checked against the request.' }),
    skuId: t.string({ required: false, description: 'sku_id, checked against the request.' }),
    at: t.field({ type: DateTime, required: false, description: 'When WeChat settled it (the event\'s CreateTime); defaults to now.' }),
  }),
});

const CancelPackAssignmentInput = builder.inputType('CancelPackAssignmentInput', {
  description: 'The assignment to cancel.',
  fields: (t) => ({
    orderId: t.string({ description: 'The order of the assignment.' }),
    requestId: t.string({ description: 'The requestId of the assignment.' }),
  }),
});

registerNode<ProcurementOrder>('ProcurementOrder', {
  keyParts: 1,
  key: (o) => [o.orderId],
  scope: 'quota:read',
  load: async ([orderId], ctx) => (await ctx.services.billing.procurement.orders([orderId!]))[0] ?? null,
});
registerNode<PackAssignment>('PackAssignment', {
  keyParts: 2,
  key: (a) => [a.orderId, a.requestId],
  scope: 'quota:read',
  load: async ([orderId, requestId], ctx) =>
    (await ctx.services.billing.procurement.assignments({ orderId: orderId! }, ctx.services.now())).find((a) => a.requestId === requestId) ?? null,
});

const OrderRecorded = builder.objectRef<{ order: ProcurementOrder; duplicate: boolean }>('ProcurementOrderRecorded').implement({
  description: 'The order is recorded.',
  fields: (t) => ({
    order: t.field({ type: ProcurementOrderRef, description: 'The order as recorded.', resolve: (r) => r.order }),
    duplicate: t.exposeBoolean('duplicate', { description: 'The same order was recorded before: nothing changed.' }),
  }),
});

const AssignmentRequested = builder.objectRef<{ assignment: PackAssignment; duplicate: boolean }>('PackAssignmentRequested').implement({
  description: 'The request is recorded; its units of the order are held until WeChat answers.',
  fields: (t) => ({
    assignment: t.field({ type: PackAssignmentRef, description: 'The assignment as it stands.', resolve: (r) => r.assignment }),
    duplicate: t.exposeBoolean('duplicate', { description: 'This orderId and requestId were requested before with the same payload: the assignment as it stands.' }),
  }),
});

const AssignmentResultRecorded = builder.objectRef<{ assignment: PackAssignment; duplicate: boolean }>('PackAssignmentResultRecorded').implement({
  description: "WeChat's result is recorded.",
  fields: (t) => ({
    assignment: t.field({ type: PackAssignmentRef, description: 'The assignment with its result (and its pack, when assigned).', resolve: (r) => r.assignment }),
    duplicate: t.exposeBoolean('duplicate', { description: 'The same result was recorded before (WeChat repeats its pushes): nothing changed.' }),
  }),
});

const AssignmentCancelled = builder.objectRef<{ assignment: PackAssignment }>('PackAssignmentCancelled').implement({
  description: 'The assignment is cancelled: the pack left the app and its units went back to the order.',
  fields: (t) => ({ assignment: t.field({ type: PackAssignmentRef, description: 'The assignment, now CANCELLED.', resolve: (r) => r.assignment }) }),
});

builder.mutationFields((t) => ({
  recordProcurementOrder: t.field({
    nullable: true,
    type: OrderRecorded,
    description: "Records a service provider's bulk-procurement order (its facts do not change: the same again is a duplicate).",
    authScopes: { scope: 'billing:admin' },
    args: { input: t.arg({ type: RecordProcurementOrderInput, description: 'The order.' }) },
    errors: { types: [LedgerInputError], union: { name: 'RecordProcurementOrderResult', description: 'The order recorded, or why the input was refused.' } },
    resolve: (_r, { input }, ctx) =>
      ctx.services.billing.procurement.recordOrder(
        {
          orderId: input.orderId,
          product: input.product === 'QUICK' ? 'quick' : 'realtime',
          spSpuId: input.spSpuId ?? null,
          spSkuId: input.spSkuId ?? null,
          skuCnt: input.skuCnt ?? null,
          unitsAll: input.unitsAll,
          pricePaidMilli: input.pricePaidMilli,
          paidAt: input.paidAt,
          wechatCreatedAt: input.wechatCreatedAt ?? null,
          validityBeginAt: input.validityBeginAt ?? null,
          validityEndAt: input.validityEndAt ?? null,
          skus: input.skus.map((k) => ({ skuId: k.skuId, spuId: k.spuId ?? null, skuName: k.skuName ?? null, units: k.units, durationSeconds: k.durationSeconds })),
        },
        ctx.services.now(),
      ),
  }),
  requestPackAssignment: t.field({
    nullable: true,
    type: AssignmentRequested,
    description: 'Records a request to assign one pack of an order\'s SKU to an app (idempotent by orderId + requestId).',
    authScopes: { scope: 'billing:admin' },
    args: { input: t.arg({ type: RequestPackAssignmentInput, description: 'The request.' }) },
    errors: { types: [PackAssignmentRefused, LedgerInputError], union: { name: 'RequestPackAssignmentResult', description: 'The request recorded, the rule that refuses it, or why the input was refused.' } },
    resolve: async (_r, { input }, ctx) => {
      const r = await ctx.services.billing.procurement.requestAssignment({ ...input, beginTime: input.beginTime ?? null }, ctx.services.now());
      if (!r.ok) throw new PackAssignmentRefused(r.rule);
      return r;
    },
  }),
  recordPackAssignmentResult: t.field({
    nullable: true,
    type: AssignmentResultRecorded,
    description: "Records WeChat's result of an assignment: assigned (the pack becomes the app's) or failed with WeChat's errcode.",
    authScopes: { scope: 'billing:admin' },
    args: { input: t.arg({ type: RecordPackAssignmentResultInput, description: 'The result.' }) },
    errors: { types: [PackAssignmentResultRefused, LedgerInputError], union: { name: 'RecordPackAssignmentResultResult', description: 'The result recorded, the rule that refuses it, or why the input was refused.' } },
    resolve: async (_r, { input }, ctx) => {
      const r = await ctx.services.billing.procurement.recordAssignmentResult(
        { ...input, receivePkgId: input.receivePkgId ?? null, receiverAppId: input.receiverAppId ?? null, skuId: input.skuId ?? null, at: input.at ?? null },
        ctx.services.now(),
      );
      if (!r.ok) throw new PackAssignmentResultRefused(r.rule);
      return r;
    },
  }),
  cancelPackAssignment: t.field({
    nullable: true,
    type: AssignmentCancelled,
    description: 'Cancels an assignment: only within 7 days of it and only if not a unit of its pack was used.',
    authScopes: { scope: 'billing:admin' },
    args: { input: t.arg({ type: CancelPackAssignmentInput, description: 'The assignment.' }) },
    errors: { types: [PackAssignmentCancelRefused, LedgerInputError], union: { name: 'CancelPackAssignmentResult', description: 'The assignment cancelled, the rule that refuses it, or why the input was refused.' } },
    resolve: async (_r, { input }, ctx) => {
      const r = await ctx.services.billing.procurement.cancelAssignment(input, ctx.services.now());
      if (!r.ok) throw new PackAssignmentCancelRefused(r.rule);
      return { assignment: r.assignment };
    },
  }),
}));
