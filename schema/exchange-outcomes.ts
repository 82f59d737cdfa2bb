import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import { ExchangeErrorCodeEnum, appNamed, badUserInput } from './errors.js';
import { ExchangeOutcomeEnum, errorCodeName, outcomeName } from './enums.js';
import { OutcomeHistoryInputError, type OutcomeBucket, type OutcomeCount, type OutcomeHistory } from '../src/phone/outcome-history.js';

const OutcomeBucketSizeEnum = builder.enumType('OutcomeBucketSize', {
  description: 'How long each bucket of a history is.',
  values: {
    HOUR: { description: 'Hours (at most 744 in a period).' },
    DAY: { description: 'Days from 00:00 Asia/Shanghai (at most 366 in a period).' },
  },
});

const OutcomeCountRef = builder.objectRef<OutcomeCount>('ExchangeOutcomeCount').implement({
  description: 'How many exchanges ended one way.',
  fields: (t) => ({
    outcome: t.field({ type: ExchangeOutcomeEnum, nullable: true, description: 'How they ended; null for records of a form this release does not know.', resolve: (c) => outcomeName(c.outcome) }),
    errorCode: t.field({ type: ExchangeErrorCodeEnum, nullable: true, description: 'The error code of a refusal; null otherwise.', resolve: (c) => errorCodeName(c.errorCode) }),
    count: t.exposeInt('count', { description: 'How many.' }),
  }),
});

const OutcomeBucketRef = builder.objectRef<OutcomeBucket>('ExchangeOutcomeBucket').implement({
  description: 'One bucket of an outcome history.',
  fields: (t) => ({
    start: t.field({ type: DateTime, description: 'Start of the bucket.', resolve: (b) => b.start }),
    counts: t.field({ type: [OutcomeCountRef], description: 'Most frequent first; empty when nothing happened.', resolve: (b) => b.counts }),
  }),
});

const OutcomeHistoryRef = builder.objectRef<OutcomeHistory>('ExchangeOutcomeHistory').implement({
  description: 'Exchanges (and legacy decrypts) over time by outcome and error code, counted from the consent log.',
  fields: (t) => ({
    from: t.field({ type: DateTime, description: 'Start of the period.', resolve: (h) => h.from }),
    to: t.field({ type: DateTime, description: 'End of the period.', resolve: (h) => h.to }),
    bucket: t.field({ type: OutcomeBucketSizeEnum, description: 'The bucket size.', resolve: (h) => h.bucket }),
    buckets: t.field({ type: [OutcomeBucketRef], description: 'Every bucket of the period, oldest first, empty ones included.', resolve: (h) => h.buckets }),
    totals: t.field({ type: [OutcomeCountRef], description: 'The whole period, most frequent first.', resolve: (h) => h.totals }),
  }),
});

builder.queryField('exchangeOutcomes', (t) =>
  t.field({
    type: OutcomeHistoryRef,
    nullable: true,
    description:
      'Exchange outcomes over time by error code (one app, or every app without appid). Counts only: nothing personal. Requests refused before anything about them was processed (an app not served here, a process at capacity) are in /metrics only.',
    authScopes: { scope: 'quota:read' },
    args: {
      appid: t.arg.string({ required: false, description: 'One app; every app when absent.' }),
      from: t.arg({ type: DateTime, description: 'Start of the period.' }),
      to: t.arg({ type: DateTime, description: 'End of the period.' }),
      bucket: t.arg({ type: OutcomeBucketSizeEnum, required: false, defaultValue: 'DAY', description: 'Bucket size.' }),
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
