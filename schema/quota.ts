import { createGraphQLError } from 'graphql-yoga';
import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import type { Quota } from '../src/billing/quota.js';
import type { AppConfig } from '../src/config.js';
import { UsageSyncError } from '../src/billing/usage-sync.js';
import { exemption } from '../src/billing/rules.js';

export function requireApp(apps: ReadonlyMap<string, AppConfig>, appid: string): AppConfig {
  const app = apps.get(appid);
  // The appid is caller input: named in the message only when it has an appid's shape.
  const named = /^wx[0-9a-f]{16}$/.test(appid) ? `app ${appid}` : 'that app';
  if (!app) throw createGraphQLError(`${named} is not served by this gateway`, { extensions: { code: 'NOT_FOUND' } });
  return app;
}

export const ExemptionRuleEnum = builder.enumType('ExemptionRule', {
  description: "Which of WeChat's free-of-charge rules (免费规则) applies.",
  values: {
    GOVERNMENT_OR_NON_PROFIT: { description: 'Verified subject is a government body or a non-profit organisation.' },
    PUBLIC_INSTITUTION_GOV_SERVICES: { description: 'Public institution (事业单位) in the 政务民生 category.' },
    PUBLIC_MEDICAL_OR_EDUCATION: { description: 'Category 公立医疗机构 or 学历教育（学校）.' },
  },
});

const QuotaBasisEnum = builder.enumType('QuotaBasis', {
  values: {
    WECHAT: { description: "WeChat's usage API at the last sync, minus the charges recorded since." },
    LEDGER: { description: "Never synced: the gateway's own ledger." },
  },
});

export const QuotaRef = builder.objectRef<Quota>('Quota').implement({
  description: 'What an app can still be charged for, and when it runs out.',
  fields: (t) => ({
    appid: t.exposeString('appid'),
    exempt: t.exposeBoolean('exempt'),
    exemptionRule: t.field({ type: ExemptionRuleEnum, nullable: true, resolve: (q) => q.exemptionRule }),
    basis: t.field({ type: QuotaBasisEnum, resolve: (q) => q.basis }),
    trialUsed: t.exposeInt('trialUsed', { description: 'Of the 1,000-call trial, as of the last usage sync.' }),
    trialRemaining: t.exposeInt('trialRemaining'),
    packsRemaining: t.exposeInt('packsRemaining', { description: 'Units left in packs in effect (bought and assigned), as of the last sync.' }),
    remaining: t.exposeInt('remaining', { description: 'Trial plus packs, as of the last usage sync.' }),
    chargesSinceSync: t.exposeInt('chargesSinceSync', { description: 'Charges the gateway recorded since the last sync.' }),
    estimatedRemaining: t.exposeInt('estimatedRemaining', { description: 'remaining minus the charges seen since the sync.' }),
    dailyAverage: t.exposeFloat('dailyAverage', { description: "Units a day: WeChat's recent average, else the last 7 days' confirmed charges." }),
    daysLeft: t.exposeInt('daysLeft', { nullable: true, description: 'Whole days of quota at the daily average; null when nothing is used.' }),
    forecastExhaustionDate: t.exposeString('forecastExhaustionDate', { nullable: true, description: 'Asia/Shanghai calendar date (YYYY-MM-DD).' }),
    lowQuota: t.exposeBoolean('lowQuota', { description: "Below the app's configured threshold (units or days)." }),
    syncedAt: t.field({ type: DateTime, nullable: true, resolve: (q) => q.syncedAt }),
    syncAgeSeconds: t.int({ nullable: true, resolve: (q, _a, ctx) => (q.syncedAt === null ? null : Math.floor((ctx.services.now() - q.syncedAt) / 1000)) }),
    lastSyncAttemptAt: t.field({ type: DateTime, nullable: true, resolve: (q) => q.lastSyncAttemptAt }),
    lastSyncError: t.exposeString('lastSyncError', { nullable: true, description: 'Why the last sync failed; the numbers above are from the last good one.' }),
  }),
});

const ExemptionRef = builder.objectRef<{ app: AppConfig }>('Exemption').implement({
  fields: (t) => ({
    appid: t.string({ resolve: ({ app }) => app.appid }),
    exempt: t.boolean({ resolve: ({ app }) => exemption({ subjectType: app.subjectType, category: app.category }).exempt }),
    rule: t.field({ type: ExemptionRuleEnum, nullable: true, resolve: ({ app }) => exemption({ subjectType: app.subjectType, category: app.category }).rule }),
    subjectType: t.string({ resolve: ({ app }) => app.subjectType }),
    category: t.string({ nullable: true, resolve: ({ app }) => app.category ?? null }),
  }),
});

const AppRef = builder.objectRef<AppConfig>('App').implement({
  description: 'A mini program this gateway serves.',
  fields: (t) => ({
    appid: t.exposeString('appid'),
    product: t.string({ description: 'quick or realtime', resolve: (a) => a.product }),
    purposes: t.stringList({ resolve: (a) => [...a.purposes] }),
    exemption: t.field({ type: ExemptionRef, resolve: (app) => ({ app }) }),
    quota: t.field({ type: QuotaRef, resolve: (app, _a, ctx) => ctx.loaders.quota.load(app.appid) }),
  }),
});

builder.queryFields((t) => ({
  quota: t.field({
    type: QuotaRef,
    authScopes: { scope: 'quota:read' },
    args: { appid: t.arg.string() },
    resolve: (_r, { appid }, ctx) => {
      requireApp(ctx.services.apps, appid);
      return ctx.loaders.quota.load(appid);
    },
  }),
  exemption: t.field({
    type: ExemptionRef,
    authScopes: { scope: 'quota:read' },
    args: { appid: t.arg.string() },
    resolve: (_r, { appid }, ctx) => ({ app: requireApp(ctx.services.apps, appid) }),
  }),
  apps: t.field({
    type: [AppRef],
    description: 'Every configured app; their quotas load in one batched query.',
    authScopes: { scope: 'quota:read' },
    resolve: (_r, _a, ctx) => [...ctx.services.apps.values()].sort((a, b) => a.appid.localeCompare(b.appid)),
  }),
}));

class UsageSyncFailure extends Error {
  constructor(
    message: string,
    readonly lastSyncedAt: number | null,
  ) {
    super(message);
  }
}

builder.objectType(UsageSyncFailure, {
  name: 'UsageSyncFailed',
  description: "WeChat's usage API could not be read; the last good snapshot stays in use.",
  fields: (t) => ({
    message: t.exposeString('message'),
    lastSyncedAt: t.field({ type: DateTime, nullable: true, resolve: (e) => e.lastSyncedAt }),
  }),
});

const UsageSynced = builder.objectRef<{ appid: string }>('UsageSynced').implement({
  fields: (t) => ({
    quota: t.field({ type: QuotaRef, resolve: ({ appid }, _a, ctx) => ctx.loaders.quota.load(appid) }),
  }),
});

builder.mutationField('syncUsage', (t) =>
  t.field({
    type: UsageSynced,
    description: "Pulls WeChat's usage API for the app now.",
    authScopes: { scope: 'billing:admin' },
    args: { appid: t.arg.string() },
    errors: { types: [UsageSyncFailure], union: { name: 'SyncUsageResult' } },
    resolve: async (_r, { appid }, ctx) => {
      requireApp(ctx.services.apps, appid);
      try {
        await ctx.services.billing.usage.sync(appid, ctx.requestId);
      } catch (e) {
        if (e instanceof UsageSyncError) throw new UsageSyncFailure(e.message, e.lastSuccessAt);
        throw e;
      }
      ctx.loaders.quota.clear(appid);
      return { appid };
    },
  }),
);
