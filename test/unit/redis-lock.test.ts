import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { openCache, type Cache } from '../../src/store/cache.js';

const url = process.env.REDIS_URL;

// Needs a real Redis: CI sets REDIS_URL (see .ci/run); without it there is nothing to test here.
describe.skipIf(!url)('Redis lock and cache (real Redis)', () => {
  let cache: Cache;
  beforeAll(async () => {
    cache = await openCache(url, `wxtest-${randomBytes(4).toString('hex')}`);
  });
  afterAll(() => cache?.close());

  it('one holder at a time; release only by the holder; expiry frees it', async () => {
    const lock = cache.lock!;
    const t1 = await lock.tryAcquire('k', 200);
    expect(t1).toBeTruthy();
    expect(await lock.tryAcquire('k', 200)).toBeNull();
    await lock.release('k', 'not-the-token');
    expect(await lock.tryAcquire('k', 200)).toBeNull();
    await new Promise((r) => setTimeout(r, 250));
    const t2 = await lock.tryAcquire('k', 200);
    expect(t2).toBeTruthy();
    // The first holder, late, must not release the second holder's lock.
    await lock.release('k', t1!);
    expect(await lock.tryAcquire('k', 200)).toBeNull();
    await lock.release('k', t2!);
    expect(await lock.tryAcquire('k', 200)).toBeTruthy();
  });

  it('keyv round-trips objects with a TTL', async () => {
    await cache.keyv.set('token:x', { token: 't', expiresAt: 1 }, 100);
    expect(await cache.keyv.get('token:x')).toEqual({ token: 't', expiresAt: 1 });
    await new Promise((r) => setTimeout(r, 150));
    expect(await cache.keyv.get('token:x')).toBeUndefined();
  });
});
