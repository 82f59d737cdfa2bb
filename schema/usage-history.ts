import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { appNamed, badUserInput } from './errors.js';
import { UsageHistoryInputError, type UsageHistory, type UsageHistoryDay, type UsageHistoryPoint } from '../src/billing/usage-history.js';

const UsageHistoryPointRef = builder.objectRef<UsageHistoryPoint>('UsageHistoryPoint').implement({
  description: "WeChat's usage API as the last usage sync of a day (Asia/Shanghai) read it.",
  fields: (t) => ({
    syncedAt: t.field({ type: DateTime, description: 'When the sync read it.', resolve: (p) => p.syncedAt }),
    remaining: t.exposeInt('remaining', { description: 'Units left in the rows in effect, trial included (as Quota.remaining).' }),
    unitsInEffect: t.exposeInt('unitsInEffect', { description: 'Units of the rows in effect, used or not (as Quota.unitsInEffect).' }),
    effectiveUse: t.exposeInt('effectiveUse', { description: "WeChat's cumulative use count." }),
  }),
});

const UsageHistoryDayRef = builder.objectRef<UsageHistoryDay>('UsageHistoryDay').implement({
  description: 'One Asia/Shanghai day of use, by tap time (WeChat charges at the tap).',
  fields: (t) => ({
    date: t.exposeString('date', { description: 'YYYY-MM-DD, Asia/Shanghai.' }),
    confirmed: t.exposeInt('confirmed', { description: 'Codes exchanged through the gateway (charged).' }),
    unconfirmed: t.exposeInt('unconfirmed', { description: 'Codes WeChat rejected with 40029 (charged if they had expired).' }),
    unseen: t.exposeInt('unseen', { description: "Charges the day's usage syncs revealed beyond the confirmed ones (codes never brought to the gateway)." }),
  }),
});

const UsageHistoryRef = builder.objectRef<UsageHistory>('UsageHistory').implement({
  description: "An app's usage over a period: WeChat's counts at each day's last sync, and each day's charges. Exempt charges are left out.",
  fields: (t) => ({
    appid: t.exposeString('appid', { description: 'The mini program.' }),
    from: t.field({ type: DateTime, description: 'Start of the period.', resolve: (h) => h.from }),
    to: t.field({ type: DateTime, description: 'End of the period.', resolve: (h) => h.to }),
    snapshots: t.field({
      type: [UsageHistoryPointRef],
      description: 'The last usage snapshot of each day of the period, oldest first, led by the last one before it.',
      resolve: (h) => h.snapshots,
    }),
    days: t.field({ type: [UsageHistoryDayRef], description: 'Every day of the period, oldest first, days without use included.', resolve: (h) => h.days }),
  }),
});

builder.queryField('usageHistory', (t) =>
  t.field({
    type: UsageHistoryRef,
    nullable: true,
    description: "An app's usage over a period of at most 366 days, for charts (the usage syncs' snapshots and the charges recorded).",
    authScopes: { scope: 'quota:read' },
    args: {
      appid: t.arg.string({ description: 'The mini program.' }),
      from: t.arg({ type: DateTime, description: 'Start of the period.' }),
      to: t.arg({ type: DateTime, description: 'End of the period (at most 366 days after from).' }),
    },
    resolve: async (_r, { appid, from, to }, ctx) => {
      appNamed(ctx.services.apps, appid);
      try {
        return await ctx.services.billing.usageHistory.history(appid, from, to);
      } catch (e) {
        if (e instanceof UsageHistoryInputError) throw badUserInput(e.message);
        throw e;
      }
    },
  }),
);
