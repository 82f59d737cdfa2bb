import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { createClient, type RedisClientType } from 'redis';
import { randomBytes } from 'node:crypto';

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
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DistributedLock {
  /** Returns a release token when acquired, null when someone else holds the lock. */
  tryAcquire(key: string, ttlMs: number): Promise<string | null>;
  release(key: string, token: string): Promise<void>;
}

// Deletes the lock only if it still carries our token: an expired lock re-taken by
// another process must not be released by the slow first owner.
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

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
    await this.client.eval(RELEASE_SCRIPT, { keys: [this.prefix + key], arguments: [token] });
  }
}

export async function openCache(redisUrl: string | undefined, namespace = 'wxphone'): Promise<Cache> {
  if (!redisUrl) {
    const keyv = new Keyv({ namespace });
    return { kind: 'memory', keyv, lock: null, ping: async () => {}, close: async () => {} };
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
    ping: async () => {
      await client.ping();
    },
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
