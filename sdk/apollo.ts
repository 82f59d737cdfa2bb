import generated from './possible-types.js';

/**
 * What Apollo Client's InMemoryCache must know of this API: `new InMemoryCache(apolloCacheConfig)`.
 *
 * - `possibleTypes`: which types implement `ExchangeError` and make up each result union. Without
 *   it Apollo cannot match `... on ExchangeError { code message retryable }` against
 *   `InvalidCodeError` and the like, and hands the application `__typename` alone.
 * - `typePolicies`: how entities are identified, so a mutation's answer (`syncUsage`'s quota, say)
 *   updates what queries cached.
 */
export const possibleTypes: Record<string, string[]> = generated.possibleTypes;

export const typePolicies = {
  Quota: { keyFields: ['appid'] },
  App: { keyFields: ['appid'] },
} as const;

export const apolloCacheConfig = { possibleTypes, typePolicies };
