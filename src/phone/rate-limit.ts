import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { withTimeout } from '../util/timeout.js';

/**
 * Fixed-window limits on the phone-number exchange, per session and per client address.
 * Counters live in Redis when it is configured (every instance sees the same counts) and in
 * this process otherwise. When Redis fails, counting continues in this process — logged, never
 * silently open, never closed for everyone — and Redis is tried again shortly after.
 */

export interface WindowLimit {
  /** Requests allowed per window; 0 turns this limit off. */
  limit: number;
  windowMs: number;
}

export interface RateLimits {
  session: WindowLimit;
  ip: WindowLimit;
}

export interface CounterHit {
  count: number;
  resetInMs: number;
}

/** The shape of src/store/cache.ts's WindowCounter (Redis), so the limiter works with either. */
export interface WindowCounter {
  hit(entries: readonly { key: string; windowMs: number }[]): Promise<CounterHit[]>;
  /** Takes one back from each key that still has a count (a refund; see RateLimitCount). */
  unhit(keys: readonly string[]): Promise<void>;
}

/** What counting one request gave: the verdict, and a way to take the request back out. */
export interface RateLimitCount {
  verdict: RateLimitVerdict | null;
  /**
   * Un-counts the request, in every window it was counted in that has not ended since: for a
   * request the gateway itself turned away (at capacity), which must not use up its client's
   * allowance — a client that retries as told would otherwise be rate-limited for the gateway's
   * overload. Once per request (later calls do nothing); best effort, never throws.
   */
  refund(): Promise<void>;
}

export interface RateLimitVerdict {
  scope: 'session' | 'ip';
  limit: number;
  windowMs: number;
  /** How long until the window that refused this request resets. */
  retryInMs: number;
}

/** Process-local fixed windows; bounded, so a flood of addresses cannot grow it without end. */
export class MemoryWindowCounter implements WindowCounter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private nextSweep = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  get size(): number {
    return this.windows.size;
  }

  async hit(entries: readonly { key: string; windowMs: number }[]): Promise<CounterHit[]> {
    return this.hitSync(entries);
  }

  async unhit(keys: readonly string[]): Promise<void> {
    this.unhitSync(keys);
  }

  unhitSync(keys: readonly string[]): void {
    const now = this.now();
    for (const key of keys) {
      const w = this.windows.get(key);
      if (w && w.resetAt > now && w.count > 0) w.count -= 1;
    }
  }

  hitSync(entries: readonly { key: string; windowMs: number }[]): CounterHit[] {
    const now = this.now();
    if (now >= this.nextSweep || this.windows.size >= this.maxKeys) this.sweep(now);
    return entries.map(({ key, windowMs }) => {
      let w = this.windows.get(key);
      if (!w || w.resetAt <= now) {
        // Re-inserted, so the map stays ordered by window start (the oldest are evicted first).
        this.windows.delete(key);
        w = { count: 0, resetAt: now + windowMs };
        this.windows.set(key, w);
      }
      w.count += 1;
      return { count: w.count, resetInMs: w.resetAt - now };
    });
  }

  private sweep(now: number) {
    this.nextSweep = now + 10_000;
    for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key);
    // Still full: drop the oldest windows. Those clients get a fresh window early, which is
    // the lesser harm than unbounded memory.
    for (const key of this.windows.keys()) {
      if (this.windows.size < this.maxKeys * 0.9) break;
      this.windows.delete(key);
    }
  }
}

export interface RateLimiterOptions extends RateLimits {
  /** Shared counters (Redis); null → this process only. */
  shared: WindowCounter | null;
  log: Pick<Logger, 'warn' | 'info'>;
  /**
   * Turns a client address (already bucketed, see addressBucket) into the key stored for it,
   * e.g. a keyed hash, so counters hold no addresses.
   */
  addressKey?: (bucket: string) => string;
  /** How long a shared-counter call may take before this process counts alone. */
  sharedTimeoutMs?: number;
  /** After a shared-counter failure, how long to count locally before trying Redis again. */
  sharedRetryMs?: number;
  /** How the one-time note about loopback/private peers is logged: a warning in production, info elsewhere. */
  internalPeerNotice?: 'warn' | 'info';
  now?: () => number;
}

export class ExchangeRateLimiter {
  private readonly local: MemoryWindowCounter;
  private sharedDownUntil = 0;
  private degraded = false;
  private warnedInternalPeer = false;
  private readonly now: () => number;

  constructor(private readonly opts: RateLimiterOptions) {
    this.now = opts.now ?? Date.now;
    this.local = new MemoryWindowCounter(this.now);
  }

  /** Whether counts are currently kept in this process only although Redis is configured. */
  get degradedToLocal(): boolean {
    return this.degraded;
  }

  /**
   * Counts one exchange request of `subjectKey` (appid + session) from `clientIp` and says
   * whether it is over a limit (null: go ahead). Requests over the limit count too, so a
   * client that keeps hammering stays limited until its window ends.
   */
  async check(subjectKey: string, clientIp: string | null | undefined): Promise<RateLimitVerdict | null> {
    return (await this.count(subjectKey, clientIp)).verdict;
  }

  /** As check, and the request can be taken back out of its windows (see RateLimitCount.refund). */
  async count(subjectKey: string, clientIp: string | null | undefined): Promise<RateLimitCount> {
    const { session, ip } = this.opts;
    const entries: { key: string; windowMs: number; scope: 'session' | 'ip'; limit: number }[] = [];
    if (session.limit > 0) entries.push({ key: `s:${subjectKey}`, windowMs: session.windowMs, scope: 'session', limit: session.limit });
    if (ip.limit > 0 && clientIp) {
      const bucket = addressBucket(clientIp);
      if (bucket) entries.push({ key: `ip:${this.opts.addressKey ? this.opts.addressKey(bucket) : bucket}`, windowMs: ip.windowMs, scope: 'ip', limit: ip.limit });
      else this.noteInternalPeer();
    }
    if (entries.length === 0) return { verdict: null, refund: async () => {} };
    const countedAt = this.now();
    const { hits, counter } = await this.hit(entries);
    let verdict: RateLimitVerdict | null = null;
    entries.forEach((e, i) => {
      const h = hits[i]!;
      if (h.count > e.limit && (!verdict || h.resetInMs > verdict.retryInMs)) {
        verdict = { scope: e.scope, limit: e.limit, windowMs: e.windowMs, retryInMs: Math.max(0, h.resetInMs) };
      }
    });
    let refunded = false;
    const refund = async () => {
      if (refunded) return;
      refunded = true;
      // Only windows still open: a key of the same name now may be a later window, with other requests in it.
      const now = this.now();
      const open = entries.filter((_, i) => countedAt + hits[i]!.resetInMs > now).map((e) => e.key);
      if (open.length === 0) return;
      if (counter === 'local') return this.local.unhitSync(open);
      await withTimeout(this.opts.shared!.unhit(open), this.opts.sharedTimeoutMs ?? 250, 'rate-limit refund').catch(() => {});
    };
    return { verdict, refund };
  }

  private async hit(entries: readonly { key: string; windowMs: number }[]): Promise<{ hits: CounterHit[]; counter: 'shared' | 'local' }> {
    const shared = this.opts.shared;
    if (!shared || this.now() < this.sharedDownUntil) return { hits: this.local.hitSync(entries), counter: 'local' };
    try {
      const hits = await withTimeout(shared.hit(entries), this.opts.sharedTimeoutMs ?? 250, 'rate-limit counter');
      if (this.degraded) {
        this.degraded = false;
        this.opts.log.info('rate-limit counters are shared through Redis again');
      }
      return { hits, counter: 'shared' };
    } catch (e) {
      this.sharedDownUntil = this.now() + (this.opts.sharedRetryMs ?? 1000);
      if (!this.degraded) {
        this.degraded = true;
        this.opts.log.warn(
          { err: (e as Error).message },
          'Redis rate-limit counters unavailable: exchange limits are counted per process until Redis answers again',
        );
      }
      return { hits: this.local.hitSync(entries), counter: 'local' };
    }
  }

  private noteInternalPeer() {
    if (this.warnedInternalPeer) return;
    this.warnedInternalPeer = true;
    this.opts.log[this.opts.internalPeerNotice ?? 'warn'](
      'exchange requests arrive from a loopback or private address: the per-IP limit applies to public addresses only; behind a proxy, set hardening.trustProxy so the client address is used',
    );
  }
}

/**
 * The client's address: the socket peer, or — when `trustedHops` proxies are trusted — the
 * address those proxies recorded in X-Forwarded-For (the nth entry from the right; entries
 * further left were written by the client and prove nothing). Normalised; undefined when
 * no valid address is known.
 */
export function clientAddress(remote: string | undefined, forwardedFor: string | string[] | undefined, trustedHops: number): string | undefined {
  const peer = normaliseAddress(remote);
  if (trustedHops <= 0 || !forwardedFor) return peer;
  const chain = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (chain.length === 0) return peer;
  // [peer, last proxy's view, ..., client's claim]: each trusted hop vouches for one more step left.
  const index = Math.max(0, chain.length - trustedHops);
  return normaliseAddress(chain[index]) ?? peer;
}

function normaliseAddress(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let a = raw.trim();
  if (a.startsWith('[')) a = a.slice(1, a.indexOf(']') > 0 ? a.indexOf(']') : undefined); // [v6]:port
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':')); // v4:port
  a = a.replace(/%.*$/, ''); // zone id
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a)) a = a.slice(7);
  return isIP(a) ? a.toLowerCase() : undefined;
}

/**
 * What one client is limited as: an IPv4 address, or an IPv6 /64 (one subscriber's network:
 * per-address limits would be trivial to dodge). Loopback, private, link-local and CGNAT
 * addresses give null: such a peer is a proxy, a load balancer or an own backend, and limiting
 * it would limit everyone behind it.
 */
export function addressBucket(address: string): string | null {
  const kind = isIP(address);
  if (kind === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    const internal =
      a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
    return internal ? null : address;
  }
  if (kind === 6) {
    const groups = expandV6(address);
    if (!groups) return null;
    const first = groups[0]!;
    const internal =
      groups.every((g, i) => (i < 7 ? g === 0 : g <= 1)) || // :: and ::1
      (first & 0xfe00) === 0xfc00 || // fc00::/7 unique local
      (first & 0xffc0) === 0xfe80; // fe80::/10 link-local
    if (internal) return null;
    return `${groups
      .slice(0, 4)
      .map((g) => g.toString(16))
      .join(':')}::/64`;
  }
  return null;
}

function expandV6(address: string): number[] | null {
  let a = address;
  // An embedded IPv4 tail (::ffff:1.2.3.4 is handled before; others, e.g. 64:ff9b::1.2.3.4).
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [, p, q, r, s] = v4.map(Number) as number[] as [number, number, number, number, number];
    a = a.slice(0, v4.index) + `${((p << 8) | q).toString(16)}:${((r << 8) | s).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = a.includes('::') ? 8 - left.length - right.length : 0;
  if (fill < 0) return null;
  const groups = [...left, ...Array<string>(fill).fill('0'), ...right].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

/** "retry in 42 s" — whole seconds, at least 1. */
export function retryPhrase(ms: number): string {
  return `retry in ${Math.max(1, Math.ceil(ms / 1000))} s`;
}
