import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { createClient, type RedisClientType } from 'redis';
import { createHash, randomBytes } from 'node:crypto';

/**
 * Short-lived shared state: a keyv cache (access tokens, usage snapshots) and,
 * when Redis is configured, the short locks that make "one token fetch per app"
 * hold across processes. Without Redis both are process-local.
 */
export interface Cache {
  kind: 'memory' | 'redis';
  keyv: Keyv;
  /** null without Redis: callers fall back to in-process single-flight. */
  lock: DistributedLock | null;
  /** null without Redis: rate limits then count in this process (src/phone/rate-limit.ts). */
  counter: WindowCounter | null;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DistributedLock {
  /** Returns a release token when acquired, null when someone else holds the lock. */
  tryAcquire(key: string, ttlMs: number): Promise<string | null>;
  release(key: string, token: string): Promise<void>;
}

/** Fixed-window counters shared by every instance (the exchange rate limits). */
export interface WindowCounter {
  /**
   * Adds one to each key, in one round trip. A key's window starts at its first hit and lasts
   * `windowMs`; returns each key's count in its window and the milliseconds until it resets.
   */
  hit(entries: readonly { key: string; windowMs: number }[]): Promise<{ count: number; resetInMs: number }[]>;
  /** Takes one back from each key that still has a count above zero (its TTL unchanged), in one round trip. */
  unhit(keys: readonly string[]): Promise<void>;
}

/**
 * A Lua script sent by its SHA1 (EVALSHA): the exchange's rate limit runs one per request, and
 * Redis then neither receives nor hashes the source each time. Sent whole (EVAL, which caches it)
 * only when Redis answers NOSCRIPT: its first use, or after a restart emptied the script cache.
 */
export class RedisScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClientType, args: { keys: string[]; arguments: string[] }): Promise<unknown> {
    try {
      return await client.evalSha(this.sha, args);
    } catch (e) {
      if (!(e instanceof Error && e.message.startsWith('NOSCRIPT'))) throw e;
      return client.eval(this.source, args);
    }
  }
}

// INCR, and PEXPIRE when the key is new (or somehow lost its TTL): atomic, one round trip for all keys.
const HIT_SCRIPT = new RedisScript(`local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('incr', key)
  local ttl = redis.call('pttl', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[i])
    redis.call('pexpire', key, ttl)
  end
  out[2 * i - 1] = n
  out[2 * i] = ttl
end
return out`);

// DECR keeps the key's TTL; a key gone (its window over) is not brought back.
const UNHIT_SCRIPT = new RedisScript(`for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('get', key))
  if n and n > 0 then redis.call('decr', key) end
end
return 0`);

class RedisWindowCounter implements WindowCounter {
  constructor(
    private readonly client: RedisClientType,
    private readonly prefix: string,
  ) {}

  async hit(entries: readonly { key: string; windowMs: number }[]) {
    const reply = (await HIT_SCRIPT.run(this.client, {
      keys: entries.map((e) => this.prefix + e.key),
      arguments: entries.map((e) => String(Math.max(1, Math.round(e.windowMs)))),
    })) as number[];
    return entries.map((_, i) => ({ count: Number(reply[2 * i]), resetInMs: Number(reply[2 * i + 1]) }));
  }

  async unhit(keys: readonly string[]) {
    await UNHIT_SCRIPT.run(this.client, { keys: keys.map((k) => this.prefix + k), arguments: [] });
  }
}

// Deletes the lock only if it still carries our token: an expired lock re-taken by
// another process must not be released by the slow first owner.
const RELEASE_SCRIPT = new RedisScript(`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`);

class RedisLock implements DistributedLock {
  constructor(
    private readonly client: RedisClientType,
    private readonly prefix: string,
  ) {}

  async tryAcquire(key: string, ttlMs: number): Promise<string | null> {
    const token = randomBytes(16).toString('hex');
    const ok = await this.client.set(this.prefix + key, token, { condition: 'NX', expiration: { type: 'PX', value: ttlMs } });
    return ok === 'OK' ? token : null;
  }

  async release(key: string, token: string): Promise<void> {
    await RELEASE_SCRIPT.run(this.client, { keys: [this.prefix + key], arguments: [token] });
  }
}

export async function openCache(redisUrl: string | undefined, namespace = 'wxphone'): Promise<Cache> {
  if (!redisUrl) {
    const keyv = new Keyv({ namespace });
    return { kind: 'memory', keyv, lock: null, counter: null, ping: async () => {}, close: async () => {} };
  }
  const client = createClient({
    url: redisUrl,
    socket: {
      connectTimeout: 2000,
      // Keep reconnecting in the background: a Redis restart must not need a gateway restart.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
    },
    // Fail commands at once while disconnected instead of queueing them behind a dead socket.
    disableOfflineQueue: true,
  }) as RedisClientType;
  // Errors surface on the commands that fail; the client's own event must not crash the process.
  client.on('error', () => {});
  await client.connect();
  const store = new KeyvRedis(client, { namespace, keyPrefixSeparator: ':', throwOnErrors: true });
  const keyv = new Keyv({ store, namespace, useKeyPrefix: false, throwOnErrors: true });
  keyv.on('error', () => {});
  return {
    kind: 'redis',
    keyv,
    lock: new RedisLock(client, `${namespace}:lock:`),
    counter: new RedisWindowCounter(client, `${namespace}:rl:`),
    ping: async () => {
      await client.ping();
    },
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
