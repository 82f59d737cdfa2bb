import { builder } from './builder.js';
import { PackRef } from './packs.js';
import { RefundRefused } from './errors.js';
import { refundDecision } from '../src/billing/rules.js';
import type { Pack } from '../src/billing/packs.js';
import type { GraphQLContext } from './context.js';

// What requestPackRefund would answer now, so a page can say so before anyone asks.
function decision(p: Pack, ctx: GraphQLContext) {
  if (p.kind !== 'own') return undefined;
  return refundDecision({ paidAt: p.paidAt, used: p.unitsUsed, refundState: p.refundRequestedAt === null ? null : 'requested' }, ctx.services.now());
}

builder.objectFields(PackRef, (t) => ({
  refundable: t.boolean({
    description: 'Whether requestPackRefund would be accepted now: an own pack, paid less than 7 days ago, not a unit used, no refund requested. An assigned pack never is: its service provider cancels the assignment.',
    resolve: (p, _a, ctx) => decision(p, ctx)?.refundable ?? false,
  }),
  refundRefusal: t.field({
    type: RefundRefused.ruleEnum,
    nullable: true,
    description: 'The rule that refuses a refund of this own pack now; null when refundable, and for an assigned pack.',
    resolve: (p, _a, ctx) => {
      const d = decision(p, ctx);
      return d && !d.refundable ? d.rule : null;
    },
  }),
}));
