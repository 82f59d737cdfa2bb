import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { requireApp } from './quota.js';
import { LedgerInputError, type PackView } from '../src/billing/ledger.js';
import type { PacksTable } from '../src/store/schema.js';
import { formatYuan } from '../src/billing/rules.js';

builder.objectType(LedgerInputError, {
  name: 'BillingInputError',
  description: 'The billing change was refused: the message says which rule or input.',
  fields: (t) => ({ message: t.exposeString('message') }),
});

export const PackStatusEnum = builder.enumType('PackStatus', {
  values: ['NOT_YET_EFFECTIVE', 'IN_EFFECT', 'USED_UP', 'EXPIRED', 'REFUNDED'] as const,
});

const PackKindEnum = builder.enumType('PackKind', {
  values: {
    OWN: { description: "Bought in the app's own console." },
    ASSIGNED: { description: "Assigned to the app from a service provider's bulk-procurement (集采) order." },
  },
});

export const PackRef = builder.objectRef<PackView>('Pack').implement({
  description: 'A resource pack (资源包) of one app, bought or assigned: both are drawn in the same order.',
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.field({ type: PackKindEnum, resolve: (p) => (p.kind === 'own' ? 'OWN' : 'ASSIGNED') }),
    packId: t.exposeID('packId', { description: 'The same as id.' }),
    orderId: t.exposeString('orderId', { nullable: true, description: 'For an assigned pack: the procurement order it came from.' }),
    requestId: t.exposeString('requestId', { nullable: true, description: 'For an assigned pack: the requestId of its assignment.' }),
    product: t.exposeString('product'),
    unitsAll: t.exposeInt('unitsAll'),
    unitsUsed: t.exposeInt('unitsUsed'),
    unitsLeft: t.int({ resolve: (p) => p.unitsAll - p.unitsUsed }),
    status: t.field({ type: PackStatusEnum, resolve: (p) => p.status }),
    paidAt: t.field({ type: DateTime, resolve: (p) => p.paidAt }),
    effectiveAt: t.field({ type: DateTime, resolve: (p) => p.effectiveAt }),
    expiresAt: t.field({ type: DateTime, resolve: (p) => p.expiresAt }),
    validityDays: t.exposeInt('validityDays'),
    pricePaidMilli: t.exposeInt('pricePaidMilli', { description: 'Price paid in milli-yuan (厘); 0 for an assigned pack (its order was paid).' }),
    pricePaidYuan: t.string({ resolve: (p) => formatYuan(p.pricePaidMilli) }),
    wechatPkgId: t.exposeString('wechatPkgId', { nullable: true }),
    refundRequestedAt: t.field({ type: DateTime, nullable: true, resolve: (p) => p.refundRequestedAt }),
  }),
});

/** A pack row, whoever owns it (admin answers). */
export const PackRecordRef = builder.objectRef<PacksTable>('PackRecord').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    ownerKind: t.string({ description: 'Always app: every pack is an app\'s.', resolve: (p) => p.owner_kind }),
    ownerId: t.string({ resolve: (p) => p.owner_id }),
    product: t.string({ resolve: (p) => p.product }),
    unitsAll: t.int({ resolve: (p) => p.units_all }),
    paidAt: t.field({ type: DateTime, resolve: (p) => p.paid_at }),
    effectiveAt: t.field({ type: DateTime, resolve: (p) => p.effective_at }),
    expiresAt: t.field({ type: DateTime, resolve: (p) => p.expires_at }),
    pricePaidMilli: t.int({ resolve: (p) => p.price_paid_milli }),
    refundRequestedAt: t.field({ type: DateTime, nullable: true, resolve: (p) => p.refund_requested_at }),
  }),
});

builder.queryField('packs', (t) =>
  t.field({
    type: [PackRef],
    description: "The app's packs (bought and assigned), soonest expiry first: the order they are drawn in.",
    authScopes: { scope: 'quota:read' },
    args: { appid: t.arg.string(), status: t.arg({ type: PackStatusEnum, required: false }) },
    resolve: async (_r, { appid, status }, ctx) => {
      requireApp(ctx.services.apps, appid);
      const packs = await ctx.services.billing.ledger.packsFor(appid, ctx.services.now());
      return status ? packs.filter((p) => p.status === status) : packs;
    },
  }),
);

export const ProductEnum = builder.enumType('Product', {
  values: { QUICK: { description: '手机号快速验证, 0.03 yuan a call.' }, REALTIME: { description: '手机号实时验证, 0.04 yuan a call.' } },
});

const RecordPackPurchaseInput = builder.inputType('RecordPackPurchaseInput', {
  description: "A pack bought in an app's WeChat console (for its own product).",
  fields: (t) => ({
    appid: t.string(),
    units: t.int(),
    paidAt: t.field({ type: DateTime }),
    validityDays: t.int(),
    pricePaidMilli: t.int({ description: 'What was paid, in milli-yuan (厘): 1 yuan = 1000.' }),
    wechatPkgId: t.string({ required: false, description: "The pack's id in WeChat's usage API, if known." }),
  }),
});

builder.mutationField('recordPackPurchase', (t) =>
  t.field({
    type: PackRecordRef,
    authScopes: { scope: 'billing:admin' },
    args: { input: t.arg({ type: RecordPackPurchaseInput }) },
    errors: { types: [LedgerInputError], union: { name: 'RecordPackPurchaseResult' } },
    resolve: (_r, { input }, ctx) =>
      ctx.services.billing.ledger.recordPackPurchase(
        {
          owner: { kind: 'app', appid: input.appid },
          units: input.units,
          paidAt: input.paidAt,
          validityDays: input.validityDays,
          pricePaidMilli: input.pricePaidMilli,
          wechatPkgId: input.wechatPkgId ?? null,
        },
        ctx.services.now(),
      ),
  }),
);

export const RefundRefusalRuleEnum = builder.enumType('RefundRefusalRule', {
  values: {
    PACK_USED: { description: 'At least one unit was used: no refund.' },
    REFUND_WINDOW_PASSED: { description: 'More than 7 days after payment: no refund.' },
    ALREADY_REQUESTED: { description: 'A refund was already requested.' },
  },
});

class RefundRefused extends Error {
  constructor(readonly rule: 'PACK_USED' | 'REFUND_WINDOW_PASSED' | 'ALREADY_REQUESTED') {
    super(
      rule === 'PACK_USED'
        ? 'the pack has been used (one unit or more): WeChat refunds only unused packs'
        : rule === 'REFUND_WINDOW_PASSED'
          ? 'refunds are possible only within 7 days after payment'
          : 'a refund was already requested for this pack',
    );
  }
}

builder.objectType(RefundRefused, {
  name: 'RefundRefused',
  fields: (t) => ({
    rule: t.field({ type: RefundRefusalRuleEnum, resolve: (e) => e.rule }),
    message: t.exposeString('message'),
  }),
});

const RefundRequested = builder.objectRef<{ pack: PacksTable }>('RefundRequested').implement({
  description: 'Recorded; the money returns through WeChat in 3–5 working days (the gateway only tracks it).',
  fields: (t) => ({ pack: t.field({ type: PackRecordRef, resolve: (r) => r.pack }) }),
});

builder.mutationField('requestPackRefund', (t) =>
  t.field({
    type: RefundRequested,
    authScopes: { scope: 'billing:admin' },
    args: { packId: t.arg.id() },
    errors: { types: [RefundRefused, LedgerInputError], union: { name: 'RequestPackRefundResult' } },
    resolve: async (_r, { packId }, ctx) => {
      const r = await ctx.services.billing.ledger.requestRefund(String(packId), ctx.services.now());
      if (!r.ok) throw new RefundRefused(r.rule);
      return { pack: r.pack };
    },
  }),
);
