import DataLoader from 'dataloader';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './node.js';
import './enums.js';
import './errors.js';
import './phone.js';
import './session.js';
import './quota.js';
import './packs.js';
import './procurement.js';
import './reports.js';
import './reconciliation.js';
import './audit.js';
import './wechat-events.js';
import './usage-history.js';
import './exchange-outcomes.js';
import './pack-refund-eligibility.js';
import './audit-records-by-id.js';
import type { Loaders, Services } from './context.js';

export type { GraphQLContext, Loaders, Services } from './context.js';

/** Fresh per request: batching within a request, no caching across requests or sessions. */
export function createLoaders(services: Services): Loaders {
  return {
    quota: new DataLoader((appids: readonly string[]) => services.billing.quota.load(appids)),
    wechatAlert: new DataLoader(async (appids: readonly string[]) => {
      const latest = await services.billing.wechatEvents.latest(appids);
      return appids.map((a) => latest.get(a) ?? null);
    }),
  };
}

let built: GraphQLSchema | undefined;

export function buildSchema(): GraphQLSchema {
  built ??= builder.toSchema();
  return built;
}

/** The committed SDL: sorted so that diffs show real changes only. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
