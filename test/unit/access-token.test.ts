import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { AccessTokenProvider, type AccessTokenGrant } from '../../src/wechat/index.js';
import type { DistributedLock } from '../../src/store/cache.js';

const APP = { appid: 'wx0000000000000001', secret: 's' };

class TokenError extends Error {}

function setup(opts: { lifetime?: number; lock?: DistributedLock | null; cache?: Keyv; fetchDelayMs?: number; prefix?: string } = {}) {
  let clock = 1_000_000;
  let issued = 0;
  const fetches: number[] = [];
  const provider = new AccessTokenProvider({
    apps: new Map([[APP.appid, APP]]),
    fetchToken: async (): Promise<AccessTokenGrant> => {
      fetches.push(clock);
      if (opts.fetchDelayMs) await new Promise((r) => setTimeout(r, opts.fetchDelayMs));
      issued += 1;
      return { accessToken: `${opts.prefix ?? 'token'}-${issued}`, expiresIn: opts.lifetime ?? 7200 };
    },
    cache: opts.cache ?? new Keyv(),
    lock: opts.lock ?? null,
    isTokenError: (e) => e instanceof TokenError,
    now: () => clock,
  });
  return {
    provider,
    fetches,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe('AccessTokenProvider', () => {
  it('single-flights a cold fetch: 200 concurrent callers, one fetch', async () => {
    const { provider, fetches } = setup({ fetchDelayMs: 20 });
    const tokens = await Promise.all(Array.from({ length: 200 }, () => provider.get(APP.appid)));
    expect(fetches).toHaveLength(1);
    expect(new Set(tokens)).toEqual(new Set(['token-1']));
  });

  it('serves from cache until the refresh point, then refreshes ahead of expiry without blocking', async () => {
    const { provider, fetches, advance } = setup();
    expect(await provider.get(APP.appid)).toBe('token-1');
    advance(6_800_000); // 400 s left: still before the 300 s refresh point
    expect(await provider.get(APP.appid)).toBe('token-1');
    expect(fetches).toHaveLength(1);
    advance(200_000); // 200 s left: inside the window
    expect(await provider.get(APP.appid)).toBe('token-1'); // still valid: served, refresh in background
    await new Promise((r) => setTimeout(r, 5));
    expect(fetches).toHaveLength(2);
    expect(await provider.get(APP.appid)).toBe('token-2');
  });

  it('never hands out a token in its last seconds: fetches synchronously instead', async () => {
    const { provider, fetches, advance } = setup();
    await provider.get(APP.appid);
    advance(7_195_000);
    expect(await provider.get(APP.appid)).toBe('token-2');
    expect(fetches).toHaveLength(2);
  });

  it('retries exactly once on a token error, with a fresh token', async () => {
    const { provider, fetches } = setup();
    const seen: string[] = [];
    const r = await provider.withToken(APP.appid, async (t) => {
      seen.push(t);
      if (seen.length === 1) throw new TokenError('40001');
      return 'ok';
    });
    expect(r).toBe('ok');
    expect(seen).toEqual(['token-1', 'token-2']);
    expect(fetches).toHaveLength(2);
  });

  it('does not loop: a second token error is thrown to the caller', async () => {
    const { provider, fetches } = setup();
    let calls = 0;
    await expect(
      provider.withToken(APP.appid, async () => {
        calls += 1;
        throw new TokenError('40001');
      }),
    ).rejects.toBeInstanceOf(TokenError);
    expect(calls).toBe(2);
    expect(fetches).toHaveLength(2);
  });

  it('does not retry other errors', async () => {
    const { provider } = setup();
    let calls = 0;
    await expect(
      provider.withToken(APP.appid, async () => {
        calls += 1;
        throw new Error('40029');
      }),
    ).rejects.toThrow('40029');
    expect(calls).toBe(1);
  });

  it('compare-and-invalidate: a failure reported with an already replaced token adopts the new one without fetching', async () => {
    const cache = new Keyv();
    const a = setup({ cache, prefix: 'a' });
    const b = setup({ cache, prefix: 'b' });
    expect(await a.provider.get(APP.appid)).toBe('a-1');
    expect(await b.provider.get(APP.appid)).toBe('a-1'); // adopted from the shared cache
    expect(b.fetches).toHaveLength(0);
    // b sees a-1 fail: it is still the cached token, so b drops it and fetches.
    expect(await b.provider.refresh(APP.appid, 'a-1')).toBe('b-1');
    // a sees a-1 fail too, later: the cache no longer holds a-1, so a adopts b-1 without fetching.
    expect(await a.provider.refresh(APP.appid, 'a-1')).toBe('b-1');
    expect(a.fetches).toHaveLength(1);
    expect(b.fetches).toHaveLength(1);
  });

  it('concurrent token errors for one app cause one refresh, not one per caller', async () => {
    const { provider, fetches } = setup({ fetchDelayMs: 10 });
    await provider.get(APP.appid);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        provider.withToken(APP.appid, async (t) => {
          if (t === 'token-1') throw new TokenError('42001');
          return t;
        }),
      ),
    );
    expect(new Set(results)).toEqual(new Set(['token-2']));
    expect(fetches).toHaveLength(2);
  });

  it('waits for another holder of the lock and adopts the token it stores', async () => {
    const cache = new Keyv();
    let held = true;
    const lock: DistributedLock = {
      tryAcquire: async () => (held ? null : 'mine'),
      release: async () => {},
    };
    const { provider, fetches } = setup({ cache, lock });
    const pending = provider.get(APP.appid);
    await new Promise((r) => setTimeout(r, 60));
    await cache.set(`token:${APP.appid}`, { token: 'from-other-instance', expiresAt: 1_000_000 + 7_200_000, refreshAt: 1_000_000 + 6_900_000 });
    expect(await pending).toBe('from-other-instance');
    expect(fetches).toHaveLength(0);
    held = false;
  });

  it('an unknown app is an error, not a fetch', async () => {
    const { provider, fetches } = setup();
    await expect(provider.get('wx9999999999999999')).rejects.toThrow(/not configured/);
    expect(fetches).toHaveLength(0);
  });
});

describe('AccessTokenProvider with a hung shared cache', () => {
  it('a Redis that stops answering degrades to this process within the cache timeout, instead of hanging', async () => {
    const never = new Promise<never>(() => {});
    const hung = { get: () => never, set: () => never } as unknown as Keyv;
    const lock: DistributedLock = { tryAcquire: () => never, release: () => never };
    const degraded: string[] = [];
    const provider = new AccessTokenProvider({
      apps: new Map([[APP.appid, APP]]),
      fetchToken: async () => ({ accessToken: 'local', expiresIn: 7200 }),
      cache: hung,
      lock,
      cacheTimeoutMs: 100,
      isTokenError: () => false,
      events: { degraded: (appid) => degraded.push(appid) },
    });
    const started = Date.now();
    expect(await provider.get(APP.appid)).toBe('local');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(degraded.length).toBeGreaterThan(0);
  });
});
