import generated from './possible-types.js';

/**
 * What Apollo Client's InMemoryCache must know of this API: `new InMemoryCache(apolloCacheConfig)`.
 *
 * - `possibleTypes`: which types implement `ExchangeError` and make up each result union. Without
 *   it Apollo cannot match `... on ExchangeError { code message retryable }` against
 *   `InvalidCodeError` and the like, and hands the application `__typename` alone.
 * - `typePolicies`: entities are normalised by their global `id` (Apollo's default), so a
 *   mutation's answer (`syncUsage`'s quota, say) updates what queries cached. Quota and App are
 *   also named by their appid, and documents often select that and not `id`: both give the same
 *   key, so such documents share the cache entry with the ones that select `id`.
 */
export const possibleTypes: Record<string, string[]> = generated.possibleTypes;

/** The appid an App or Quota id names: this package knows the form of the gateway's ids (type, then URI-encoded key). */
function appidOfId(typename: string, id: string): string | undefined {
  try {
    const text = atob(id.replace(/-/g, '+').replace(/_/g, '/'));
    return text.startsWith(`${typename}:`) ? decodeURIComponent(text.slice(typename.length + 1)) : undefined;
  } catch {
    return undefined;
  }
}

const byAppid = (object: Readonly<Record<string, unknown>>): string | false => {
  const typename = String(object.__typename);
  const appid = typeof object.appid === 'string' ? object.appid : typeof object.id === 'string' ? appidOfId(typename, object.id) : undefined;
  return appid === undefined ? false : `${typename}:${appid}`;
};

export const typePolicies = {
  Quota: { keyFields: byAppid },
  App: { keyFields: byAppid },
};

export const apolloCacheConfig = { possibleTypes, typePolicies };
