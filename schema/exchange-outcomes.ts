import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { appNamed, badUserInput } from './errors.js';
import { OutcomeHistoryInputError, type OutcomeBucket, type OutcomeCount, type OutcomeHistory } from '../src/phone/outcome-history.js';

const OutcomeBucketSizeEnum = builder.enumType('OutcomeBucketSize', {
  values: {
    HOUR: { description: 'Hours (at most 744 in a period).' },
    DAY: { description: 'Days from 00:00 Asia/Shanghai (at most 366 in a period).' },
  },
});

const OutcomeCountRef = builder.objectRef<OutcomeCount>('ExchangeOutcomeCount').implement({
  fields: (t) => ({
    outcome: t.exposeString('outcome', { description: 'disclosed, replayed or refused' }),
    errorCode: t.exposeString('errorCode', { nullable: true, description: 'The ExchangeErrorCode of a refusal; null otherwise.' }),
    count: t.exposeInt('count'),
  }),
});

const OutcomeBucketRef = builder.objectRef<OutcomeBucket>('ExchangeOutcomeBucket').implement({
  fields: (t) => ({
    start: t.field({ type: DateTime, resolve: (b) => b.start }),
    counts: t.field({ type: [OutcomeCountRef], description: 'Most frequent first; empty when nothing happened.', resolve: (b) => b.counts }),
  }),
});

const OutcomeHistoryRef = builder.objectRef<OutcomeHistory>('ExchangeOutcomeHistory').implement({
  description: 'Exchanges (and legacy decrypts) over time by outcome and error code, counted from the consent log.',
  fields: (t) => ({
    from: t.field({ type: DateTime, resolve: (h) => h.from }),
    to: t.field({ type: DateTime, resolve: (h) => h.to }),
    bucket: t.field({ type: OutcomeBucketSizeEnum, resolve: (h) => h.bucket }),
    buckets: t.field({ type: [OutcomeBucketRef], description: 'Every bucket of the period, oldest first, empty ones included.', resolve: (h) => h.buckets }),
    totals: t.field({ type: [OutcomeCountRef], description: 'The whole period, most frequent first.', resolve: (h) => h.totals }),
  }),
});

builder.queryField('exchangeOutcomes', (t) =>
  t.field({
    type: OutcomeHistoryRef,
    description:
      'Exchange outcomes over time by error code (one app, or every app without appid). Counts only: nothing personal. Requests refused before anything about them was processed (an app not served here, a process at capacity) are in /metrics only.',
    authScopes: { scope: 'quota:read' },
    args: {
      appid: t.arg.string({ required: false }),
      from: t.arg({ type: DateTime }),
      to: t.arg({ type: DateTime }),
      bucket: t.arg({ type: OutcomeBucketSizeEnum, required: false, defaultValue: 'DAY' }),
    },
    resolve: async (_r, { appid, from, to, bucket }, ctx) => {
      if (appid) appNamed(ctx.services.apps, appid);
      try {
        return await ctx.services.exchangeOutcomes.history(appid ?? null, from, to, bucket ?? 'DAY');
      } catch (e) {
        if (e instanceof OutcomeHistoryInputError) throw badUserInput(e.message);
        throw e;
      }
    },
  }),
);
