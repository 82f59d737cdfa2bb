import type { Logger } from '../src/log.js';
import type { ClaimStore } from '../src/phone/claims.js';
import type { ConsentAudit } from '../src/consent/index.js';
import type { UsageSync } from '../src/billing/usage-sync.js';
import type { WechatEvents } from '../src/billing/wechat-events.js';

const PURGE_INTERVAL_MS = 60_000;
// A code lives 5 minutes; its claim is kept long after that only to answer late duplicates.
const CLAIM_RETENTION_MS = 24 * 3600_000;
// How often quota is re-evaluated for low-quota alerts (between usage syncs too, as charges accrue).
const QUOTA_WATCH_INTERVAL_MS = 60_000;

export interface Jobs {
  stop(): void;
}

/**
 * The background work every instance runs (coordinated through the database or Redis): usage syncs,
 * the low-quota watch, purges of stored answers, day-old claims and old pushed events, and the
 * consent log's retention. None keeps the process alive on its own.
 */
export function startJobs(d: {
  claims: ClaimStore;
  wechatEvents: WechatEvents;
  audit: ConsentAudit;
  usage: UsageSync;
  /** Re-evaluates every app's quota for the gauge and the low-quota alerts. */
  watchQuota: () => Promise<void>;
  syncIntervalMs: number;
  auditPurgeIntervalMs: number;
  now: () => number;
  log: Logger;
}): Jobs {
  const { claims, wechatEvents, audit, usage, log, now } = d;
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, work: () => void) => {
    const t = setInterval(work, ms);
    t.unref();
    timers.push(t);
  };

  usage.start(d.syncIntervalMs);
  const watchAll = () => d.watchQuota().catch((e) => log.warn({ err: (e as Error).message }, 'quota alert evaluation failed'));
  void watchAll(); // the gauge and alert state from the start, not a minute later
  every(QUOTA_WATCH_INTERVAL_MS, watchAll);
  every(PURGE_INTERVAL_MS, () => {
    const t = now();
    Promise.all([claims.purgeExpiredAnswers(t), claims.purgeOldClaims(t - CLAIM_RETENTION_MS), wechatEvents.purge()]).catch((e) =>
      log.warn({ err: (e as Error).message }, 'purging expired replay answers, old claims or old pushed events failed'),
    );
  });
  if (d.auditPurgeIntervalMs > 0) {
    every(d.auditPurgeIntervalMs, () => {
      audit
        .purgeExpired()
        .then((n) => n && log.info({ purged: n }, 'purged consent records past retention (checkpoints left)'))
        .catch((e) => log.warn({ err: (e as Error).message }, 'consent-audit retention purge failed'));
    });
  }
  return {
    stop() {
      for (const t of timers) clearInterval(t);
      usage.stop();
    },
  };
}
