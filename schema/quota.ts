import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import type { Quota } from '../src/billing/quota.js';
import type { AppConfig } from '../src/config.js';
import { UsageSyncFailure, appNamed, toClientError } from './errors.js';
import { exemption } from '../src/billing/rules.js';
import { NodeInterface, registerNode } from './node.js';
import { ProductEnum, SubjectTypeEnum, productName, subjectTypeName } from './enums.js';

export const ExemptionRuleEnum = builder.enumType('ExemptionRule', {
  description: "Which of WeChat's free-of-charge rules (免费规则) applies.",
  values: {
    GOVERNMENT_OR_NON_PROFIT: { description: 'Verified subject is a government body or a non-profit organisation.' },
    PUBLIC_INSTITUTION_GOV_SERVICES: { description: 'Public institution (事业单位) in the 政务民生 category.' },
    PUBLIC_MEDICAL_OR_EDUCATION: { description: 'Category 公立医疗机构 or 学历教育（学校）.' },
  },
});

const QuotaBasisEnum = builder.enumType('QuotaBasis', {
  description: 'Where the remaining units come from.',
  values: {
    WECHAT: { description: "WeChat's usage API at the last sync, minus the charges recorded since." },
    LEDGER: { description: "Never synced: the gateway's own ledger." },
  },
});

export const QuotaRef = builder.objectRef<Quota>('Quota').implement({
  description: 'What an app can still be charged for, and when it runs out. Its id is the same for the app however it is reached (quota, apps, syncUsage), so a cache updates it in one place.',
  interfaces: [NodeInterface],
  fields: (t) => ({
    appid: t.exposeString('appid', { description: 'The mini program.' }),
    exempt: t.exposeBoolean('exempt', { description: "True when one of WeChat's free-of-charge rules applies: nothing is charged, nothing runs out." }),
    exemptionRule: t.field({ type: ExemptionRuleEnum, nullable: true, description: 'The free-of-charge rule that applies; null when not exempt.', resolve: (q) => q.exemptionRule }),
    basis: t.field({ type: QuotaBasisEnum, description: 'Where remaining comes from: a usage sync, or the ledger alone before any.', resolve: (q) => q.basis }),
    trialUsed: t.exposeInt('trialUsed', { description: "Of the 1,000-call trial, from the trial's row (source 1) at the last usage sync; 0 when WeChat lists none." }),
    trialRemaining: t.exposeInt('trialRemaining', { description: "What the trial's row still holds, when it is in effect." }),
    packsRemaining: t.exposeInt('packsRemaining', { description: 'remaining minus trialRemaining: units left in packs in effect (own, bought or assigned).' }),
    remaining: t.exposeInt('remaining', {
      description: 'Sum of (all − used) over the usage rows in effect (status 1), trial included, at the last usage sync. Not all − effectiveUse: that goes wrong once a pack expires with units unused.',
    }),
    unitsInEffect: t.exposeInt('unitsInEffect', { description: 'Sum of all over the usage rows in effect (used or not): the base of the default low-quota mark.' }),
    chargesSinceSync: t.exposeInt('chargesSinceSync', { description: 'Charges the gateway recorded since the last sync.' }),
    estimatedRemaining: t.exposeInt('estimatedRemaining', { description: 'remaining minus the charges seen since the sync.' }),
    dailyAverage: t.exposeFloat('dailyAverage', {
      description:
        "Units a day at the rate the gateway observes: its confirmed charges plus the unseen ones syncs reveal (WeChat's effectiveUse growth beyond them), exponentially weighted with a 7-day half-life. Before any sync, the last 7 days' confirmed charges.",
    }),
    daysLeft: t.exposeInt('daysLeft', { nullable: true, description: 'Whole days estimatedRemaining lasts at dailyAverage; 0 when exhausted; null when nothing is used.' }),
    forecastExhaustionDate: t.exposeString('forecastExhaustionDate', { nullable: true, description: 'Asia/Shanghai calendar date (YYYY-MM-DD) the forecast runs out.' }),
    wechatMonthlyAverageBound: t.exposeInt('wechatMonthlyAverageBound', {
      nullable: true,
      description:
        "WeChat's own figure (get_recent_average averageData): average use PER MONTH over the last three months, fuzzed upward, so an upper bound (50 means at most 50 a month). Not a daily rate, and not what the forecast uses. Null until a sync read it.",
    }),
    lowQuota: t.exposeBoolean('lowQuota', {
      description:
        "Exhausted, or estimatedRemaining at or below 20 % of unitsInEffect (WeChat's first quota alert), or below a configured threshold (units or days). Never for exempt apps.",
    }),
    exhausted: t.exposeBoolean('exhausted', { description: 'Nothing left (estimatedRemaining is 0): the next tap gets errno 1400001. Never for exempt apps.' }),
    syncedAt: t.field({ type: DateTime, nullable: true, description: "When WeChat's usage was last read successfully; null before any sync.", resolve: (q) => q.syncedAt }),
    syncAgeSeconds: t.int({
      nullable: true,
      description: 'Seconds since syncedAt, by the gateway clock; null before any sync.',
      resolve: (q, _a, ctx) => (q.syncedAt === null ? null : Math.floor((ctx.services.now() - q.syncedAt) / 1000)),
    }),
    lastSyncAttemptAt: t.field({ type: DateTime, nullable: true, description: 'When a usage sync was last tried, whether or not it worked.', resolve: (q) => q.lastSyncAttemptAt }),
    lastSyncError: t.exposeString('lastSyncError', { nullable: true, description: 'Why the last sync failed; the numbers above are from the last good one.' }),
  }),
});

const ExemptionRef = builder.objectRef<{ app: AppConfig }>('Exemption').implement({
  description: "Whether WeChat's free-of-charge rules (免费规则) exempt the app, from its configured subject type and category.",
  fields: (t) => ({
    appid: t.string({ description: 'The mini program.', resolve: ({ app }) => app.appid }),
    exempt: t.boolean({ description: 'True when a rule applies.', resolve: ({ app }) => exemption({ subjectType: app.subjectType, category: app.category }).exempt }),
    rule: t.field({
      type: ExemptionRuleEnum,
      nullable: true,
      description: 'The rule that applies; null when none does.',
      resolve: ({ app }) => exemption({ subjectType: app.subjectType, category: app.category }).rule,
    }),
    subjectType: t.field({ type: SubjectTypeEnum, description: 'The subject type in the config.', resolve: ({ app }) => subjectTypeName(app.subjectType) }),
    category: t.string({ nullable: true, description: 'The service category in the config (e.g. 政务民生); null when none is set.', resolve: ({ app }) => app.category ?? null }),
  }),
});

const AppRef = builder.objectRef<AppConfig>('App').implement({
  description: 'A mini program this gateway serves.',
  interfaces: [NodeInterface],
  fields: (t) => ({
    appid: t.exposeString('appid', { description: "WeChat's appid of the mini program." }),
    product: t.field({ type: ProductEnum, description: 'The component the app uses.', resolve: (a) => productName(a.product) }),
    purposes: t.stringList({ description: 'The consent purposes configured for the app: what exchangePhoneCode accepts as purpose.', resolve: (a) => [...a.purposes] }),
    exemption: t.field({ type: ExemptionRef, description: 'Whether the app is exempt from charges, and by which rule.', resolve: (app) => ({ app }) }),
    quota: t.field({
      type: QuotaRef,
      nullable: true,
      description: "The app's quota; null (with an error) when it could not be read, leaving the other apps in place.",
      resolve: (app, _a, ctx) => ctx.loaders.quota.load(app.appid),
    }),
  }),
});

registerNode<AppConfig>('App', { keyParts: 1, key: (a) => [a.appid], scope: 'quota:read', load: async ([appid], ctx) => ctx.services.apps.get(appid!) ?? null });
registerNode<Quota>('Quota', {
  keyParts: 1,
  key: (q) => [q.appid],
  scope: 'quota:read',
  load: async ([appid], ctx) => (ctx.services.apps.has(appid!) ? ctx.loaders.quota.load(appid!) : null),
});

builder.queryFields((t) => ({
  quota: t.field({
    type: QuotaRef,
    nullable: true,
    description: "An app's quota: what it can still be charged for and the forecast. NOT_FOUND for an app not served here.",
    authScopes: { scope: 'quota:read' },
    args: { appid: t.arg.string({ description: 'The mini program.' }) },
    resolve: (_r, { appid }, ctx) => {
      appNamed(ctx.services.apps, appid);
      return ctx.loaders.quota.load(appid);
    },
  }),
  exemption: t.field({
    type: ExemptionRef,
    nullable: true,
    description: "Whether WeChat's free-of-charge rules exempt an app. NOT_FOUND for an app not served here.",
    authScopes: { scope: 'quota:read' },
    args: { appid: t.arg.string({ description: 'The mini program.' }) },
    resolve: (_r, { appid }, ctx) => ({ app: appNamed(ctx.services.apps, appid) }),
  }),
  apps: t.field({
    type: [AppRef],
    nullable: true,
    description: 'Every configured app, by appid; their quotas load in one batched query.',
    authScopes: { scope: 'quota:read' },
    resolve: (_r, _a, ctx) => [...ctx.services.apps.values()].sort((a, b) => a.appid.localeCompare(b.appid)),
  }),
}));

const UsageSynced = builder.objectRef<{ appid: string }>('UsageSynced').implement({
  description: "WeChat's usage was read and recorded.",
  fields: (t) => ({
    quota: t.field({ type: QuotaRef, description: "The app's quota as the sync left it (the same entity as quota(appid), so caches update).", resolve: ({ appid }, _a, ctx) => ctx.loaders.quota.load(appid) }),
  }),
});

builder.mutationField('syncUsage', (t) =>
  t.field({
    type: UsageSynced,
    nullable: true,
    description: "Pulls WeChat's usage API for the app now.",
    authScopes: { scope: 'billing:admin' },
    args: { appid: t.arg.string({ description: 'The mini program.' }) },
    errors: { types: [UsageSyncFailure], union: { name: 'SyncUsageResult', description: 'The quota after the sync, or why WeChat could not be read.' } },
    resolve: async (_r, { appid }, ctx) => {
      appNamed(ctx.services.apps, appid);
      try {
        await ctx.services.billing.usage.sync(appid, ctx.requestId);
      } catch (e) {
        throw toClientError(e);
      }
      ctx.loaders.quota.clear(appid);
      return { appid };
    },
  }),
);
