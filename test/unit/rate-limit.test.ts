import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import {
  ExchangeRateLimiter,
  MemoryWindowCounter,
  addressBucket,
  clientAddress,
  retryPhrase,
  type WindowCounter,
} from '../../src/phone/rate-limit.js';
import { openCache } from '../../src/store/cache.js';
import { ConfigError, loadConfig } from '../../src/config.js';

function recordingLog() {
  const lines: { level: 'warn' | 'info'; msg: string }[] = [];
  const at = (level: 'warn' | 'info') => (a: unknown, b?: unknown) => lines.push({ level, msg: String(typeof a === 'string' ? a : b) });
  return { lines, log: { warn: at('warn'), info: at('info') } as never };
}

const minute = 60_000;

describe('MemoryWindowCounter', () => {
  it('counts per key in a fixed window that starts at the first hit, then starts over', async () => {
    let now = 1_000;
    const c = new MemoryWindowCounter(() => now);
    expect(await c.hit([{ key: 'a', windowMs: 1000 }])).toEqual([{ count: 1, resetInMs: 1000 }]);
    now += 400;
    expect(await c.hit([{ key: 'a', windowMs: 1000 }, { key: 'b', windowMs: 1000 }])).toEqual([
      { count: 2, resetInMs: 600 },
      { count: 1, resetInMs: 1000 },
    ]);
    now += 600; // a's window is over
    expect(await c.hit([{ key: 'a', windowMs: 1000 }])).toEqual([{ count: 1, resetInMs: 1000 }]);
  });

  it('stays bounded under a flood of keys: expired windows are swept, the oldest evicted', async () => {
    let now = 0;
    const c = new MemoryWindowCounter(() => now, 1000);
    for (let i = 0; i < 5000; i++) c.hitSync([{ key: `ip:${i}`, windowMs: minute }]);
    expect(c.size).toBeLessThanOrEqual(1000);
    now += minute + 1;
    c.hitSync([{ key: 'late', windowMs: minute }]);
    expect(c.size).toBe(1);
  });
});

describe('ExchangeRateLimiter', () => {
  const limits = { session: { limit: 3, windowMs: minute }, ip: { limit: 5, windowMs: minute } };

  it('refuses the request after `limit` in a session window, saying how long until it resets', async () => {
    let now = 0;
    const { log } = recordingLog();
    const rl = new ExchangeRateLimiter({ ...limits, shared: null, log, now: () => now });
    for (let i = 0; i < 3; i++) expect(await rl.check('wxapp:alice', null)).toBeNull();
    now += 15_000;
    expect(await rl.check('wxapp:alice', null)).toEqual({ scope: 'session', limit: 3, windowMs: minute, retryInMs: 45_000 });
    // Another session is not affected; the limited one recovers when its window ends.
    expect(await rl.check('wxapp:bob', null)).toBeNull();
    now += 45_000;
    expect(await rl.check('wxapp:alice', null)).toBeNull();
  });

  it('limits a public address across sessions, and a /64 as one IPv6 client', async () => {
    const { log } = recordingLog();
    const rl = new ExchangeRateLimiter({ ...limits, shared: null, log });
    for (let i = 0; i < 5; i++) expect(await rl.check(`wxapp:user${i}`, '203.0.113.7')).toBeNull();
    expect(await rl.check('wxapp:user5', '203.0.113.7')).toMatchObject({ scope: 'ip', limit: 5 });
    expect(await rl.check('wxapp:user6', '203.0.113.8')).toBeNull();
    for (let i = 0; i < 5; i++) expect(await rl.check(`wxapp:v6user${i}`, `2001:db8:1:2::${i + 1}`)).toBeNull();
    expect(await rl.check('wxapp:v6other', '2001:db8:1:2:ffff::9')).toMatchObject({ scope: 'ip' });
    expect(await rl.check('wxapp:v6other', '2001:db8:1:3::1')).toBeNull();
  });

  it('the longer wait wins when both limits are exceeded', async () => {
    let now = 0;
    const { log } = recordingLog();
    const rl = new ExchangeRateLimiter({ session: { limit: 1, windowMs: 10_000 }, ip: { limit: 1, windowMs: minute }, shared: null, log, now: () => now });
    expect(await rl.check('s', '198.51.100.1')).toBeNull();
    now += 1000;
    expect(await rl.check('s', '198.51.100.1')).toMatchObject({ scope: 'ip', retryInMs: 59_000 });
  });

  it('limit 0 turns a limit off; loopback and private peers are not IP-limited (logged once)', async () => {
    const { log, lines } = recordingLog();
    const off = new ExchangeRateLimiter({ session: { limit: 0, windowMs: minute }, ip: { limit: 1, windowMs: minute }, shared: null, log });
    for (let i = 0; i < 20; i++) expect(await off.check('same', i % 2 ? '127.0.0.1' : '10.1.2.3')).toBeNull();
    expect(lines.filter((l) => l.level === 'warn' && /trustProxy/.test(l.msg))).toHaveLength(1);
  });

  it('stores addresses only through addressKey (e.g. a keyed hash)', async () => {
    const seen: string[] = [];
    const shared: WindowCounter = {
      hit: async (entries) => {
        seen.push(...entries.map((e) => e.key));
        return entries.map(() => ({ count: 1, resetInMs: 1 }));
      },
      unhit: async () => {},
    };
    const { log } = recordingLog();
    const rl = new ExchangeRateLimiter({ ...limits, shared, log, addressKey: (b) => `h(${b.length})` });
    await rl.check('wxapp:alice', '203.0.113.7');
    expect(seen).toEqual(['s:wxapp:alice', 'ip:h(11)']);
  });

  it('Redis failing: counts in this process (still limiting), warns once, tries Redis again later', async () => {
    let now = 0;
    let fail = true;
    let calls = 0;
    const shared: WindowCounter = {
      hit: async (entries) => {
        calls += 1;
        if (fail) throw new Error('The client is closed');
        return entries.map(() => ({ count: 1, resetInMs: 100 }));
      },
      unhit: async () => {},
    };
    const { log, lines } = recordingLog();
    const rl = new ExchangeRateLimiter({ ...limits, shared, log, now: () => now, sharedRetryMs: 1000 });
    for (let i = 0; i < 3; i++) expect(await rl.check('wxapp:alice', null)).toBeNull();
    expect(await rl.check('wxapp:alice', null)).toMatchObject({ scope: 'session' }); // never open
    expect(await rl.check('wxapp:bob', null)).toBeNull(); // never closed for everyone
    expect(rl.degradedToLocal).toBe(true);
    expect(calls).toBe(1); // not retried on every request
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(lines[0]!.msg).toMatch(/per process/);
    now += 1000;
    fail = false;
    expect(await rl.check('wxapp:carol', null)).toBeNull();
    expect(calls).toBe(2);
    expect(rl.degradedToLocal).toBe(false);
    expect(lines.at(-1)).toMatchObject({ level: 'info' });
  });

  it('a refund takes the request back out of the windows it was counted in, but not out of a later window', async () => {
    let now = 0;
    const { log } = recordingLog();
    const rl = new ExchangeRateLimiter({ ...limits, shared: null, log, now: () => now });
    for (let i = 0; i < 2; i++) await rl.check('wxapp:alice', '203.0.113.7');
    const third = await rl.count('wxapp:alice', '203.0.113.7');
    expect(third.verdict).toBeNull();
    await third.refund();
    await third.refund(); // a second refund of the same request takes nothing more
    // Two counted: the session has one request left before the limit of three, not zero.
    expect(await rl.check('wxapp:alice', '203.0.113.7')).toBeNull();
    expect(await rl.check('wxapp:alice', '203.0.113.7')).toMatchObject({ scope: 'session' });

    // Counted in one window, refunded after it ended: the new window's count is left alone.
    const late = await rl.count('wxapp:bob', null);
    now += minute;
    for (let i = 0; i < 3; i++) await rl.check('wxapp:bob', null);
    await late.refund();
    expect(await rl.check('wxapp:bob', null)).toMatchObject({ scope: 'session' });
  });

  it('a refund goes to the counter that counted: Redis when it did, this process when it stood in', async () => {
    let fail = false;
    const unhits: string[][] = [];
    const shared: WindowCounter = {
      hit: async (entries) => {
        if (fail) throw new Error('down');
        return entries.map(() => ({ count: 1, resetInMs: minute }));
      },
      unhit: async (keys) => void unhits.push([...keys]),
    };
    let now = 0;
    const { log } = recordingLog();
    const rl = new ExchangeRateLimiter({ ...limits, shared, log, now: () => now, addressKey: (b) => `h:${b}` });
    await (await rl.count('wxapp:alice', '203.0.113.7')).refund();
    expect(unhits).toEqual([['s:wxapp:alice', 'ip:h:203.0.113.7']]);
    fail = true;
    for (let i = 0; i < 2; i++) await rl.check('wxapp:carol', null);
    const counted = await rl.count('wxapp:carol', null);
    await counted.refund();
    expect(unhits).toHaveLength(1);
    expect(await rl.check('wxapp:carol', null)).toBeNull();
    expect(await rl.check('wxapp:carol', null)).toMatchObject({ scope: 'session' });
  });

  it('a hung Redis is given up on after sharedTimeoutMs', async () => {
    const shared: WindowCounter = { hit: () => new Promise(() => {}), unhit: () => new Promise(() => {}) };
    const { log } = recordingLog();
    const rl = new ExchangeRateLimiter({ ...limits, shared, log, sharedTimeoutMs: 30 });
    const started = Date.now();
    expect(await rl.check('wxapp:alice', null)).toBeNull();
    expect(Date.now() - started).toBeLessThan(500);
    expect(rl.degradedToLocal).toBe(true);
  });
});

describe('client address', () => {
  it('is the socket peer unless proxies are trusted', () => {
    expect(clientAddress('::ffff:203.0.113.7', '198.51.100.1', 0)).toBe('203.0.113.7');
    expect(clientAddress('127.0.0.1', undefined, 1)).toBe('127.0.0.1');
    expect(clientAddress(undefined, undefined, 0)).toBeUndefined();
  });

  it('with n trusted proxies: the nth X-Forwarded-For entry from the right, whatever the client prepended', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', 1)).toBe('203.0.113.7');
    expect(clientAddress('127.0.0.1', '1.2.3.4, 6.6.6.6, 203.0.113.7', 1)).toBe('203.0.113.7');
    expect(clientAddress('10.0.0.2', '1.2.3.4, 203.0.113.7, 10.0.0.9', 2)).toBe('203.0.113.7');
    expect(clientAddress('10.0.0.2', ['1.2.3.4', '203.0.113.7'], 1)).toBe('203.0.113.7');
    // Fewer entries than hops: the left-most there is.
    expect(clientAddress('10.0.0.2', '203.0.113.7', 3)).toBe('203.0.113.7');
    expect(clientAddress('10.0.0.2', '[2001:db8::1]:443', 1)).toBe('2001:db8::1');
    expect(clientAddress('10.0.0.2', '203.0.113.7:5555', 1)).toBe('203.0.113.7');
    // Garbage from the proxy's side: fall back to the peer, never to a made-up key.
    expect(clientAddress('10.0.0.2', 'not-an-ip', 1)).toBe('10.0.0.2');
  });

  it('buckets public IPv4 per address, IPv6 per /64, and gives null for internal addresses', () => {
    expect(addressBucket('203.0.113.7')).toBe('203.0.113.7');
    expect(addressBucket('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8::1')).toBe('2001:db8:0:0::/64');
    for (const internal of ['127.0.0.1', '10.9.8.7', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.1.1', '100.64.0.1', '::1', '::', 'fd00::1', 'fe80::1']) {
      expect(addressBucket(internal), internal).toBeNull();
    }
    expect(addressBucket('172.32.0.1')).toBe('172.32.0.1');
  });

  it('says when to retry in whole seconds', () => {
    expect(retryPhrase(1)).toBe('retry in 1 s');
    expect(retryPhrase(41_001)).toBe('retry in 42 s');
  });
});

describe('hardening config', () => {
  const load = (file: object | null, env: Record<string, string> = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'wxphone-cfg-'));
    if (file) writeFileSync(join(dir, 'wxphone.config.json'), JSON.stringify(file));
    return loadConfig(env, dir);
  };

  it('has sane defaults', () => {
    expect(load(null).hardening).toEqual({
      maxDepth: 12,
      maxCost: 5000,
      maxAliases: 15,
      maxTokens: 2000,
      maxDirectives: 10,
      trustProxyHops: 0,
      rateLimit: { session: { limit: 10, windowMs: 60_000 }, ip: { limit: 60, windowMs: 60_000 } },
      admission: { maxInFlight: 128, maxQueued: 1024, maxWaitMs: 5000 },
      http: { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000 },
      // Sandbox mode (no WECHAT_API_BASE): any origin.
      corsOrigins: '*',
      trustedDocuments: 'allow',
      persistedQueries: true,
    });
  });

  it('reads the file, and RATE_LIMIT_* / TRUST_PROXY over it', () => {
    const file = { hardening: { maxDepth: 8, trustProxy: true, rateLimit: { session: { limit: 3, windowSeconds: 0.5 } } } };
    const c = load(file).hardening;
    expect(c).toMatchObject({ maxDepth: 8, trustProxyHops: 1, rateLimit: { session: { limit: 3, windowMs: 500 }, ip: { limit: 60, windowMs: 60_000 } } });
    const e = load(file, { RATE_LIMIT_SESSION: '0', RATE_LIMIT_IP: '100/30', TRUST_PROXY: '2' }).hardening;
    expect(e).toMatchObject({ trustProxyHops: 2, rateLimit: { session: { limit: 0, windowMs: 500 }, ip: { limit: 100, windowMs: 30_000 } } });
  });

  it('names unknown keys and refuses bad values', () => {
    expect(() => load({ hardening: { maxDepht: 3 } })).toThrow(/hardening: unknown key\(s\) maxDepht/);
    expect(() => load({ hardening: { rateLimit: { session: { limit: -1 } } } })).toThrow(ConfigError);
    expect(() => load(null, { RATE_LIMIT_SESSION: 'lots' })).toThrow(/RATE_LIMIT_SESSION must be COUNT or COUNT\/SECONDS/);
    expect(() => load(null, { TRUST_PROXY: 'yes' })).toThrow(/TRUST_PROXY/);
  });
});

const url = process.env.REDIS_URL;

describe.skipIf(!url)('Redis window counter (real Redis)', () => {
  it('INCR and PEXPIRE in one round trip, keys under the prefix, shared by every instance', async () => {
    const prefix = `wxtest-${randomBytes(4).toString('hex')}`;
    const a = await openCache(url, prefix);
    const b = await openCache(url, prefix);
    const raw = createClient({ url });
    await raw.connect();
    try {
      const { log } = recordingLog();
      const one = new ExchangeRateLimiter({ session: { limit: 2, windowMs: 300 }, ip: { limit: 0, windowMs: 300 }, shared: a.counter, log });
      const two = new ExchangeRateLimiter({ session: { limit: 2, windowMs: 300 }, ip: { limit: 0, windowMs: 300 }, shared: b.counter, log });
      expect(await one.check('wxapp:alice', null)).toBeNull();
      expect(await two.check('wxapp:alice', null)).toBeNull();
      const refused = await one.check('wxapp:alice', null);
      expect(refused).toMatchObject({ scope: 'session', limit: 2 });
      expect(refused!.retryInMs).toBeGreaterThan(0);
      expect(refused!.retryInMs).toBeLessThanOrEqual(300);
      expect(await raw.keys(`${prefix}:rl:*`)).toEqual([`${prefix}:rl:s:wxapp:alice`]);
      const ttl = await raw.pTTL(`${prefix}:rl:s:wxapp:alice`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      // Two keys, one call: counts and time left for each.
      const hits = await a.counter!.hit([
        { key: 'x', windowMs: 1000 },
        { key: 'y', windowMs: 5000 },
      ]);
      expect(hits.map((h) => h.count)).toEqual([1, 1]);
      expect(hits[1]!.resetInMs).toBeGreaterThan(1000);
      await new Promise((r) => setTimeout(r, 320));
      expect(await two.check('wxapp:alice', null)).toBeNull(); // the window expired in Redis
      expect(one.degradedToLocal || two.degradedToLocal).toBe(false);
    } finally {
      await raw.quit();
      await a.close();
      await b.close();
    }
  });
});
