import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { openCache, RedisScript, type Cache } from '../../src/store/cache.js';

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

  it('scripts still run after Redis forgot them (SCRIPT FLUSH, as after a restart)', async () => {
    const admin = createClient({ url });
    await admin.connect();
    try {
      expect(await cache.counter!.hit([{ key: 'flush', windowMs: 5000 }])).toMatchObject([{ count: 1 }]);
      await admin.scriptFlush();
      expect(await cache.counter!.hit([{ key: 'flush', windowMs: 5000 }])).toMatchObject([{ count: 2 }]);
      const token = await cache.lock!.tryAcquire('flushed', 5000);
      await admin.scriptFlush();
      await cache.lock!.release('flushed', token!);
      expect(await cache.lock!.tryAcquire('flushed', 5000)).toBeTruthy();
    } finally {
      await admin.quit();
    }
  });

  it('a counter refund takes one back, keeps the window\'s TTL, never goes below zero nor revives an ended window', async () => {
    const counter = cache.counter!;
    await counter.hit([{ key: 'refund', windowMs: 5000 }]);
    await counter.hit([{ key: 'refund', windowMs: 5000 }]);
    await counter.unhit(['refund', 'never-hit']);
    const [after] = await counter.hit([{ key: 'refund', windowMs: 5000 }]);
    expect(after!.count).toBe(2);
    // The window kept the TTL of its first hit (the refund did not reset it).
    expect(after!.resetInMs).toBeLessThanOrEqual(5000);
    expect(after!.resetInMs).toBeGreaterThan(4000);
    for (let i = 0; i < 4; i++) await counter.unhit(['refund']);
    expect((await counter.hit([{ key: 'refund', windowMs: 5000 }]))[0]!.count).toBe(1);
    // A key with no window (never hit, or expired) is not created by a refund.
    expect((await counter.hit([{ key: 'never-hit', windowMs: 5000 }]))[0]).toMatchObject({ count: 1 });
    const [short] = await counter.hit([{ key: 'short', windowMs: 50 }]);
    expect(short!.count).toBe(1);
    await new Promise((r) => setTimeout(r, 80));
    await counter.unhit(['short']);
    expect((await counter.hit([{ key: 'short', windowMs: 50 }]))[0]).toMatchObject({ count: 1 });
  });

  it('keyv round-trips objects with a TTL', async () => {
    await cache.keyv.set('token:x', { token: 't', expiresAt: 1 }, 100);
    expect(await cache.keyv.get('token:x')).toEqual({ token: 't', expiresAt: 1 });
    await new Promise((r) => setTimeout(r, 150));
    expect(await cache.keyv.get('token:x')).toBeUndefined();
  });
});

// One module, against a stand-in client: which command goes out when.
describe('RedisScript', () => {
  const source = "return 'hi'";
  const sha = createHash('sha1').update(source).digest('hex');

  it('runs by SHA1, sends the source only when Redis answers NOSCRIPT, and passes other errors on', async () => {
    const sent: string[] = [];
    let known = false;
    const client = {
      async evalSha(s: string) {
        sent.push(`evalsha ${s}`);
        if (!known) throw new Error('NOSCRIPT No matching script. Please use EVAL.');
        return 'hi';
      },
      async eval(src: string) {
        sent.push(`eval ${src}`);
        known = true;
        return 'hi';
      },
    };
    const script = new RedisScript(source);
    const args = { keys: ['k'], arguments: ['1'] };
    expect(await script.run(client as never, args)).toBe('hi');
    expect(await script.run(client as never, args)).toBe('hi');
    expect(sent).toEqual([`evalsha ${sha}`, `eval ${source}`, `evalsha ${sha}`]);

    const broken = { evalSha: async () => Promise.reject(new Error('ERR connection lost')), eval: async () => 'never' };
    await expect(script.run(broken as never, args)).rejects.toThrow('ERR connection lost');
  });
});
