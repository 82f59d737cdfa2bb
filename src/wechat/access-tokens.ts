import type Keyv from 'keyv';
import type { DistributedLock } from '../store/cache.js';
import { withTimeout } from '../util/timeout.js';

export interface AccessTokenGrant {
  accessToken: string;
  expiresIn: number;
}

export interface AppCredentials {
  appid: string;
  secret: string;
}

export interface AccessTokenProviderOptions {
  apps: ReadonlyMap<string, AppCredentials>;
  /** Normal-mode fetch (stable_token without force_refresh, or the legacy endpoint). Never a forced refresh. */
  fetchToken(app: AppCredentials): Promise<AccessTokenGrant>;
  cache: Keyv;
  /** Cross-process lock (Redis); null means single-flight within this process only. */
  lock: DistributedLock | null;
  /** Fetch a new token once less than this much lifetime is left; stable_token rotates in its last 300 s. */
  refreshAheadSeconds?: number;
  /** How long a process may hold the fetch lock; longer than one fetch with its retries. */
  lockTtlMs?: number;
  isTokenError(error: unknown): boolean;
  /**
   * A shared-cache or lock call slower than this counts as failed: a hung Redis must not hang
   * exchanges. Generous on purpose: the wait includes event-loop delay, and a saturated process
   * must not mistake a healthy Redis for a hung one (it would then fetch a token of its own).
   * Only cold and refresh paths wait on it; the hot path reads this process's copy.
   */
  cacheTimeoutMs?: number;
  now?: () => number;
  events?: AccessTokenEvents;
}

/** `requestId`: the request the event happened for (for a fetch, the one that started it), if any. */
export interface AccessTokenEvents {
  fetched?(appid: string, requestId: string | undefined): void;
  cacheHit?(appid: string, level: 'process' | 'shared'): void;
  invalidated?(appid: string, requestId: string | undefined): void;
  degraded?(appid: string, error: unknown, requestId: string | undefined): void;
}

/** The token cache as one request uses it: what it does on the request's behalf names the request in its events. */
export interface RequestAccessTokens {
  get(appid: string): Promise<string>;
  withToken<T>(appid: string, call: (token: string) => Promise<T>): Promise<T>;
}

export class AccessTokenUnavailableError extends Error {
  override name = 'AccessTokenUnavailableError';
  readonly retryable = true;
}

export class UnknownAppError extends Error {
  override name = 'UnknownAppError';
}

interface CachedToken {
  token: string;
  /** Epoch ms at which WeChat stops accepting the token. */
  expiresAt: number;
  /** Epoch ms after which a new token should be fetched (while this one still works). */
  refreshAt: number;
}

// Don't hand out a token in its last seconds: a call would start valid and arrive expired.
const EXPIRY_SAFETY_MS = 10_000;
const LOCK_POLL_MS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One WeChat access token per app, shared by every request and every process.
 * Reads hit a process-local copy first (no I/O on the hot path), then the shared
 * keyv cache; a fetch happens once per app at a time in this process (single-flight)
 * and, with Redis, across processes (a short lock, the cache re-read after it).
 * A token that failed with 40001/40014/42001 is dropped only if it is still the
 * cached one (compare-and-invalidate), and the call is retried exactly once.
 */
export class AccessTokenProvider {
  private readonly local = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly refreshAheadMs: number;
  private readonly lockTtlMs: number;
  private readonly cacheTimeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: AccessTokenProviderOptions) {
    this.refreshAheadMs = (opts.refreshAheadSeconds ?? 300) * 1000;
    this.lockTtlMs = opts.lockTtlMs ?? 20_000;
    this.cacheTimeoutMs = opts.cacheTimeoutMs ?? 2000;
    this.now = opts.now ?? Date.now;
  }

  /** A usable token for the app, fetching one only when none is cached. `requestId`: who asks, for events. */
  async get(appid: string, requestId?: string): Promise<string> {
    const hit = this.local.get(appid);
    const now = this.now();
    if (hit && now < hit.expiresAt - EXPIRY_SAFETY_MS) {
      if (now >= hit.refreshAt) void this.refresh(appid, undefined, requestId).catch(() => {});
      this.opts.events?.cacheHit?.(appid, 'process');
      return hit.token;
    }
    return this.refresh(appid, undefined, requestId);
  }

  /** The cache bound to one request. */
  forRequest(requestId: string): RequestAccessTokens {
    return { get: (appid) => this.get(appid, requestId), withToken: (appid, call) => this.withToken(appid, call, requestId) };
  }

  /**
   * Runs `call` with the app's token; on a token error, invalidates that token
   * (only if still current), gets a fresh one and retries once. Never loops.
   */
  async withToken<T>(appid: string, call: (token: string) => Promise<T>, requestId?: string): Promise<T> {
    const token = await this.get(appid, requestId);
    try {
      return await call(token);
    } catch (error) {
      if (!this.opts.isTokenError(error)) throw error;
      this.opts.events?.invalidated?.(appid, requestId);
      const fresh = await this.refresh(appid, token, requestId);
      return call(fresh);
    }
  }

  /** Fetches (or adopts another caller's) newer token; `failedToken` is dropped if still cached. */
  refresh(appid: string, failedToken?: string, requestId?: string): Promise<string> {
    const running = this.inflight.get(appid);
    if (running) {
      // A refresh started without knowing about this failure may hand back the failed token.
      return failedToken ? running.then((t) => (t === failedToken ? this.refresh(appid, failedToken, requestId) : t)) : running;
    }
    const p = this.refreshOnce(appid, failedToken, requestId).finally(() => this.inflight.delete(appid));
    this.inflight.set(appid, p);
    return p;
  }

  private credentials(appid: string): AppCredentials {
    const app = this.opts.apps.get(appid);
    if (!app) throw new UnknownAppError(`app ${appid} is not configured`);
    return app;
  }

  private usable(entry: CachedToken | undefined, failedToken: string | undefined, now: number): entry is CachedToken {
    return !!entry && entry.token !== failedToken && now < entry.refreshAt && now < entry.expiresAt - EXPIRY_SAFETY_MS;
  }

  private async refreshOnce(appid: string, failedToken: string | undefined, requestId: string | undefined): Promise<string> {
    const app = this.credentials(appid);
    if (failedToken && this.local.get(appid)?.token === failedToken) this.local.delete(appid);

    let shared: CachedToken | undefined;
    let sharedOk = true;
    try {
      shared = await this.readShared(appid);
    } catch (error) {
      sharedOk = false;
      this.opts.events?.degraded?.(appid, error, requestId);
    }
    if (this.usable(shared, failedToken, this.now())) return this.adopt(appid, shared, 'shared');

    const lock = sharedOk ? this.opts.lock : null;
    if (!lock) return this.fetchAndStore(app, sharedOk, requestId);

    const deadline = this.now() + this.lockTtlMs + 2000;
    const lockKey = `token:${appid}`;
    for (;;) {
      let held: string | null;
      try {
        held = await withTimeout(lock.tryAcquire(lockKey, this.lockTtlMs), this.cacheTimeoutMs, 'token lock');
      } catch (error) {
        // The lock store went away mid-flight: fall back to this process's single-flight.
        this.opts.events?.degraded?.(appid, error, requestId);
        return this.fetchAndStore(app, false, requestId);
      }
      if (held) {
        try {
          // Another process may have stored a token between our read and the lock.
          const again = await this.readShared(appid);
          if (this.usable(again, failedToken, this.now())) return this.adopt(appid, again, 'shared');
          return await this.fetchAndStore(app, true, requestId);
        } finally {
          await withTimeout(lock.release(lockKey, held), this.cacheTimeoutMs, 'token lock release').catch(() => {});
        }
      }
      await sleep(LOCK_POLL_MS + Math.floor(Math.random() * LOCK_POLL_MS));
      const seen = await this.readShared(appid).catch(() => undefined);
      if (this.usable(seen, failedToken, this.now())) return this.adopt(appid, seen, 'shared');
      if (this.now() > deadline) {
        throw new AccessTokenUnavailableError(`timed out waiting for another instance to fetch the access token of ${appid}`);
      }
    }
  }

  private async fetchAndStore(app: AppCredentials, writeShared: boolean, requestId: string | undefined): Promise<string> {
    const grant = await this.opts.fetchToken(app);
    this.opts.events?.fetched?.(app.appid, requestId);
    const now = this.now();
    const lifetimeMs = grant.expiresIn * 1000;
    // If WeChat hands back a token that is already inside the refresh window (normal mode
    // before its rotation point), wait a little before asking again rather than spinning.
    const refreshIn = Math.max(lifetimeMs - this.refreshAheadMs, Math.min(60_000, lifetimeMs / 2));
    const entry: CachedToken = { token: grant.accessToken, expiresAt: now + lifetimeMs, refreshAt: now + refreshIn };
    this.local.set(app.appid, entry);
    if (writeShared) {
      try {
        await withTimeout(this.opts.cache.set(this.key(app.appid), entry, Math.max(1000, lifetimeMs - EXPIRY_SAFETY_MS)), this.cacheTimeoutMs, 'token cache write');
      } catch (error) {
        this.opts.events?.degraded?.(app.appid, error, requestId);
      }
    }
    return entry.token;
  }

  private adopt(appid: string, entry: CachedToken, level: 'shared'): string {
    this.local.set(appid, entry);
    this.opts.events?.cacheHit?.(appid, level);
    return entry.token;
  }

  private async readShared(appid: string): Promise<CachedToken | undefined> {
    const v = (await withTimeout(this.opts.cache.get(this.key(appid)), this.cacheTimeoutMs, 'token cache read')) as CachedToken | undefined;
    return v && typeof v.token === 'string' ? v : undefined;
  }

  private key(appid: string): string {
    return `token:${appid}`;
  }
}
