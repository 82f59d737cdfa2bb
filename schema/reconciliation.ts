import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { appNamed, toClientError } from './errors.js';
import type { ReconciliationReport } from '../src/billing/reconciliation.js';

const Reported = builder.objectRef<ReconciliationReport['reported']>('ReportedOutcomes').implement({
  description: 'Button outcomes the mini program reported (reportButtonOutcome) in the period, by outcome.',
  fields: (t) => ({
    success: t.exposeInt('success', { description: 'A code was issued (charged).' }),
    userDeny: t.exposeInt('userDeny', { description: 'The user declined (not charged).' }),
    noQuota: t.exposeInt('noQuota', { description: 'errno 1400001: no quota (not charged).' }),
    privacy: t.exposeInt('privacy', { description: 'errno 104 or 112: privacy settings (not charged).' }),
    other: t.exposeInt('other', { description: 'Any other failure.' }),
  }),
});

const ReconciliationRef = builder.objectRef<ReconciliationReport>('Reconciliation').implement({
  description: "计费误差排查: the gateway's records, client reports and WeChat's usage growth side by side.",
  fields: (t) => ({
    appid: t.exposeString('appid', { description: 'The mini program.' }),
    exempt: t.exposeBoolean('exempt', { description: 'An exempt app is not charged: every count is informational.' }),
    windowFrom: t.field({ type: DateTime, nullable: true, description: 'Start of the compared window (the usage snapshot at or before `from`).', resolve: (r) => r.windowFrom }),
    windowTo: t.field({ type: DateTime, nullable: true, description: 'End of the compared window (the usage snapshot at or after `to`).', resolve: (r) => r.windowTo }),
    wechatCharged: t.exposeInt('wechatCharged', { nullable: true, description: "Growth of WeChat's effectiveUse over the window." }),
    confirmed: t.exposeInt('confirmed', { description: 'Codes exchanged through the gateway.' }),
    unconfirmed: t.exposeInt('unconfirmed', { description: 'Codes WeChat rejected with 40029 (expired and charged, or bogus).' }),
    reported: t.field({ type: Reported, description: 'What the client reported of its button taps.', resolve: (r) => r.reported }),
    reportedSuccessUnseen: t.exposeInt('reportedSuccessUnseen', { description: 'Reported successful taps whose codes never reached the gateway.' }),
    unconfirmedCharged: t.exposeInt('unconfirmedCharged', { nullable: true, description: '40029 codes that WeChat\'s growth shows were charged (expired).' }),
    explained: t.exposeInt('explained', { nullable: true, description: 'Charges accounted for: confirmed, charged 40029s and reported unseen successes; null without bracketing snapshots.' }),
    unexplained: t.exposeInt('unexplained', { nullable: true, description: 'Charges nothing here accounts for; null when no usage snapshots bracket the period.' }),
    overCounted: t.exposeInt('overCounted', { nullable: true, description: "Confirmed charges beyond WeChat's growth (sync lag)." }),
    note: t.exposeString('note', { nullable: true, description: 'What limits the comparison (e.g. no snapshots), when something does.' }),
  }),
});

builder.queryField('reconciliation', (t) =>
  t.field({
    type: ReconciliationRef,
    nullable: true,
    description: "计费误差排查 for one app and period: WeChat's charges beside what the gateway saw and clients reported, and what is unexplained.",
    authScopes: { scope: 'quota:read' },
    args: {
      appid: t.arg.string({ description: 'The mini program.' }),
      from: t.arg({ type: DateTime, description: 'Start of the period.' }),
      to: t.arg({ type: DateTime, description: 'End of the period.' }),
    },
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
