import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { RefundRefused, appNamed } from './errors.js';
import { LedgerInputError } from '../src/billing/ledger.js';
import type { Pack } from '../src/billing/packs.js';
import { formatYuan } from '../src/billing/rules.js';
import { NodeInterface, registerNode } from './node.js';
import { ProductEnum, productName } from './enums.js';

export const PackStatusEnum = builder.enumType('PackStatus', {
  description: "Where a pack stands at the gateway's clock.",
  values: {
    NOT_YET_EFFECTIVE: { description: 'Paid, but its validity has not begun.' },
    IN_EFFECT: { description: 'Being drawn from (or next in line): units left and within its validity.' },
    USED_UP: { description: 'Every unit used.' },
    EXPIRED: { description: 'Its validity ended; units left over are lost.' },
    REFUNDED: { description: 'A refund was requested: it is no longer drawn from.' },
  },
});

const PackKindEnum = builder.enumType('PackKind', {
  description: 'How the app came by a pack.',
  values: {
    OWN: { description: "Bought in the app's own console." },
    ASSIGNED: { description: "Assigned to the app from a service provider's bulk-procurement (集采) order." },
  },
});

export const PackRef = builder.objectRef<Pack>('Pack').implement({
  description: 'A resource pack (资源包) of one app, bought or assigned: both are drawn in the same order.',
  interfaces: [NodeInterface],
  fields: (t) => ({
    appid: t.exposeString('appid', { description: 'The app whose pack it is.' }),
    kind: t.field({ type: PackKindEnum, description: 'Bought by the app, or assigned from a procurement order.', resolve: (p) => (p.kind === 'own' ? 'OWN' : 'ASSIGNED') }),
    packId: t.exposeID('packId', { description: "The pack's key in the gateway's ledger: what requestPackRefund takes." }),
    orderId: t.exposeString('orderId', { nullable: true, description: 'For an assigned pack: the procurement order it came from.' }),
    requestId: t.exposeString('requestId', { nullable: true, description: 'For an assigned pack: the requestId of its assignment.' }),
    product: t.field({ type: ProductEnum, description: 'The component the pack pays for.', resolve: (p) => productName(p.product) }),
    unitsAll: t.exposeInt('unitsAll', { description: 'Units the pack holds.' }),
    unitsUsed: t.exposeInt('unitsUsed', { description: 'Units drawn from it so far (the gateway charges in draw order, corrected by usage syncs).' }),
    unitsLeft: t.int({ description: 'unitsAll minus unitsUsed.', resolve: (p) => p.unitsAll - p.unitsUsed }),
    status: t.field({ type: PackStatusEnum, description: "Where the pack stands at the gateway's clock.", resolve: (p) => p.status }),
    paidAt: t.field({ type: DateTime, description: 'When it was paid (or assigned).', resolve: (p) => p.paidAt }),
    effectiveAt: t.field({ type: DateTime, description: 'When its validity begins.', resolve: (p) => p.effectiveAt }),
    expiresAt: t.field({ type: DateTime, description: 'When its validity ends.', resolve: (p) => p.expiresAt }),
    validityDays: t.exposeInt('validityDays', { description: 'Its validity in days.' }),
    pricePaidMilli: t.string({
      description: 'Price paid in milli-yuan (厘), as digits: exact for any amount. "0" for an assigned pack (its order was paid).',
      resolve: (p) => String(p.pricePaidMilli),
    }),
    pricePaidYuan: t.string({ description: 'The same price in yuan, e.g. "30.000".', resolve: (p) => formatYuan(p.pricePaidMilli) }),
    wechatPkgId: t.exposeString('wechatPkgId', { nullable: true, description: "The pack's id in WeChat's usage API, once known." }),
    refundRequestedAt: t.field({ type: DateTime, nullable: true, description: 'When a refund was requested; null when none was.', resolve: (p) => p.refundRequestedAt }),
  }),
});

registerNode<Pack>('Pack', {
  keyParts: 2,
  key: (p) => [p.appid, p.id],
  scope: 'quota:read',
  load: async ([appid, id], ctx) => {
    if (!ctx.services.apps.has(appid!)) return null;
    const packs = await ctx.services.billing.ledger.packsFor(appid!, ctx.services.now());
    return packs.find((p) => p.id === id) ?? null;
  },
});

/** Money arrives as digits, so amounts past 32 bits (about ¥2.1M in 厘) are exact; the ledger keeps a safe integer. */
function milliFromDigits(digits: string): number {
  if (!/^\d{1,16}$/.test(digits) || !Number.isSafeInteger(Number(digits))) throw new LedgerInputError('pricePaidMilli must be digits of a non-negative integer (milli-yuan)');
  return Number(digits);
}

builder.queryField('packs', (t) =>
  t.field({
    type: [PackRef],
    nullable: true,
    description: "The app's packs (bought and assigned), soonest expiry first: the order they are drawn in.",
    authScopes: { scope: 'quota:read' },
    args: {
      appid: t.arg.string({ description: 'The mini program.' }),
      status: t.arg({ type: PackStatusEnum, required: false, description: 'Only packs in this status.' }),
    },
    resolve: async (_r, { appid, status }, ctx) => {
      appNamed(ctx.services.apps, appid);
      const packs = await ctx.services.billing.ledger.packsFor(appid, ctx.services.now());
      return status ? packs.filter((p) => p.status === status) : packs;
    },
  }),
);

const RecordPackPurchaseInput = builder.inputType('RecordPackPurchaseInput', {
  description: "A pack bought in an app's WeChat console (for its own product).",
  fields: (t) => ({
    appid: t.string({ description: 'The app that bought it.' }),
    units: t.int({ description: 'Units the pack holds.' }),
    paidAt: t.field({ type: DateTime, description: 'When it was paid.' }),
    validityDays: t.int({ description: 'Its validity in days (from payment).' }),
    pricePaidMilli: t.string({ description: 'What was paid, in milli-yuan (厘) as digits: 1 yuan = "1000".' }),
    wechatPkgId: t.string({ required: false, description: "The pack's id in WeChat's usage API, if known." }),
  }),
});

builder.mutationField('recordPackPurchase', (t) =>
  t.field({
    type: PackRef,
    nullable: true,
    description: "Records a pack bought in an app's own WeChat console; answers the pack as it will be drawn.",
    authScopes: { scope: 'billing:admin' },
    args: { input: t.arg({ type: RecordPackPurchaseInput, description: 'The purchase.' }) },
    errors: { types: [LedgerInputError], union: { name: 'RecordPackPurchaseResult', description: 'The pack recorded, or why the input was refused.' } },
    resolve: async (_r, { input }, ctx) =>
      await ctx.services.billing.ledger.recordPackPurchase(
        {
          owner: { kind: 'app', appid: input.appid },
          units: input.units,
          paidAt: input.paidAt,
          validityDays: input.validityDays,
          pricePaidMilli: milliFromDigits(input.pricePaidMilli),
          wechatPkgId: input.wechatPkgId ?? null,
        },
        ctx.services.now(),
      ),
  }),
);

const RefundRequested = builder.objectRef<{ pack: Pack }>('RefundRequested').implement({
  description: 'Recorded; the money returns through WeChat in 3–5 working days (the gateway only tracks it).',
  fields: (t) => ({ pack: t.field({ type: PackRef, description: 'The pack, with refundRequestedAt set.', resolve: (r) => r.pack }) }),
});

builder.mutationField('requestPackRefund', (t) =>
  t.field({
    type: RefundRequested,
    nullable: true,
    description: "Records a refund request for an app's own pack: only within 7 days of payment and only if not a unit was used (the refund itself happens in WeChat's console).",
    authScopes: { scope: 'billing:admin' },
    args: { packId: t.arg.id({ description: "The pack's packId." }) },
    errors: { types: [RefundRefused, LedgerInputError], union: { name: 'RequestPackRefundResult', description: 'The request recorded, the rule that refuses it, or why the input was refused.' } },
    resolve: async (_r, { packId }, ctx) => {
      const r = await ctx.services.billing.ledger.requestRefund(String(packId), ctx.services.now());
      if (!r.ok) throw new RefundRefused(r.rule);
      return { pack: r.pack };
    },
  }),
);
