import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { appNamed, toClientError } from './errors.js';
import type { ReconciliationReport } from '../src/billing/reconciliation.js';

const Reported = builder.objectRef<ReconciliationReport['reported']>('ReportedOutcomes').implement({
  fields: (t) => ({
    success: t.exposeInt('success'),
    userDeny: t.exposeInt('userDeny'),
    noQuota: t.exposeInt('noQuota'),
    privacy: t.exposeInt('privacy'),
    other: t.exposeInt('other'),
  }),
});

const ReconciliationRef = builder.objectRef<ReconciliationReport>('Reconciliation').implement({
  description: "计费误差排查: the gateway's records, client reports and WeChat's usage growth side by side.",
  fields: (t) => ({
    appid: t.exposeString('appid'),
    exempt: t.exposeBoolean('exempt'),
    windowFrom: t.field({ type: DateTime, nullable: true, description: 'Start of the compared window (the usage snapshot at or before `from`).', resolve: (r) => r.windowFrom }),
    windowTo: t.field({ type: DateTime, nullable: true, resolve: (r) => r.windowTo }),
    wechatCharged: t.exposeInt('wechatCharged', { nullable: true, description: "Growth of WeChat's effectiveUse over the window." }),
    confirmed: t.exposeInt('confirmed', { description: 'Codes exchanged through the gateway.' }),
    unconfirmed: t.exposeInt('unconfirmed', { description: 'Codes WeChat rejected with 40029 (expired and charged, or bogus).' }),
    reported: t.field({ type: Reported, resolve: (r) => r.reported }),
    reportedSuccessUnseen: t.exposeInt('reportedSuccessUnseen', { description: 'Reported successful taps whose codes never reached the gateway.' }),
    unconfirmedCharged: t.exposeInt('unconfirmedCharged', { nullable: true, description: '40029 codes that WeChat\'s growth shows were charged (expired).' }),
    explained: t.exposeInt('explained', { nullable: true }),
    unexplained: t.exposeInt('unexplained', { nullable: true, description: 'Charges nothing here accounts for; null when no usage snapshots bracket the period.' }),
    overCounted: t.exposeInt('overCounted', { nullable: true, description: "Confirmed charges beyond WeChat's growth (sync lag)." }),
    note: t.exposeString('note', { nullable: true }),
  }),
});

builder.queryField('reconciliation', (t) =>
  t.field({
    type: ReconciliationRef,
    authScopes: { scope: 'quota:read' },
    args: { appid: t.arg.string(), from: t.arg({ type: DateTime }), to: t.arg({ type: DateTime }) },
    resolve: async (_r, { appid, from, to }, ctx) => {
      appNamed(ctx.services.apps, appid);
      try {
        return await ctx.services.billing.reconciliation.report(appid, from, to);
      } catch (e) {
        throw toClientError(e);
      }
    },
  }),
);
