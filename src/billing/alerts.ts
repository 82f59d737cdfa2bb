/**
 * Low-quota alerts: a flag for the quota query, a gauge of units left per app,
 * and an optional webhook sent once per crossing (ok→low, low→ok).
 *
 * Several gateway instances share one database, so "once" is decided there: the
 * state lives in `quota_alerts` and only the caller whose compare-and-set flips it
 * sends. The webhook carries counts and thresholds only, never personal data.
 */
import type { Kysely } from 'kysely';
import { Gauge, type Registry } from 'prom-client';
import type { Database } from '../store/schema.js';
import type { Logger } from '../log.js';
import { DEFAULT_LOW_QUOTA_PERCENT, defaultLowQuota } from './rules.js';

/** Configured thresholds: they apply on top of the default rule, never instead of it. */
export interface AlertThresholds {
  /** Low when `remaining < unitsBelow`. */
  unitsBelow?: number;
  /** Low when `daysLeft !== null && daysLeft < daysBelow`. */
  daysBelow?: number;
}

export interface QuotaObservation {
  appid: string;
  remaining: number;
  /** Units of the packs (and trial) in effect: the base of the default 20 % mark. */
  unitsInEffect: number;
  /** Forecast days until exhaustion; null when there is no usage to forecast from. */
  daysLeft: number | null;
  exempt: boolean;
}

/**
 * The one definition of low quota, for the quota query and the alerts alike: nothing left
 * (exhausted), or at or below 20 % of the units in effect (WeChat's first alert point), or
 * below a configured threshold. Exempt apps are never charged, so never low.
 */
export function quotaFlags(o: QuotaObservation, t: AlertThresholds | undefined): { low: boolean; exhausted: boolean } {
  if (o.exempt) return { low: false, exhausted: false };
  const remaining = Math.max(0, Math.floor(o.remaining));
  const unitsInEffect = Math.max(remaining, Math.floor(o.unitsInEffect));
  const d = defaultLowQuota({ remaining, unitsInEffect });
  const byUnits = t?.unitsBelow !== undefined && o.remaining < t.unitsBelow;
  const byDays = t?.daysBelow !== undefined && o.daysLeft !== null && o.daysLeft < t.daysBelow;
  return { low: d.low || byUnits || byDays, exhausted: d.exhausted };
}

export function isLow(o: QuotaObservation, t: AlertThresholds | undefined): boolean {
  return quotaFlags(o, t).low;
}

export interface QuotaAlertsOptions {
  db: Kysely<Database>;
  thresholds: (appid: string) => AlertThresholds | undefined;
  /** Optional: without it, crossings set the flag and gauge and are logged, nothing is sent. */
  webhookUrl?: string;
  /** The gauge is registered here (or reused if this registry already has it). */
  registry: Registry;
  log: Logger;
  now?: () => number;
  fetch?: typeof fetch;
  /** Per attempt, including reading the response. Default 3000. */
  webhookTimeoutMs?: number;
}

/** The webhook body: exactly these keys. */
export interface QuotaAlertEvent {
  event: 'quota.low' | 'quota.recovered';
  appid: string;
  remaining: number;
  unitsInEffect: number;
  /** Nothing left: the next tap gets 1400001. */
  exhausted: boolean;
  daysLeft: number | null;
  /**
   * Every key always present so receivers see one shape: the configured ones (null = not
   * configured) and the default mark, a percentage of unitsInEffect.
   */
  thresholds: { unitsBelow: number | null; daysBelow: number | null; percentOfUnitsInEffect: number };
  /** When the crossing was recorded (ISO 8601, UTC). */
  at: string;
}

/**
 * The webhook body for a charge alert WeChat pushed (src/billing/wechat-events.ts): exactly these
 * keys, the same for both kinds (null where a figure belongs to the other kind). Nothing about
 * who WeChat sent it as, nothing personal.
 */
export interface WechatAlertWebhookEvent {
  event: 'wechat.quota_alert' | 'wechat.expiry_alert';
  appid: string;
  /** The event's name as WeChat sent it (charge_service_quota_notify, charge_mp_service_validity_notify, …). */
  wechatEvent: string;
  spuId: string | null;
  spuName: string | null;
  totalQuota: number | null;
  totalUsedQuota: number | null;
  remainingQuota: number | null;
  /** validity_end_time as WeChat sent it, and as an instant when it could be read (ISO 8601, UTC). */
  validityEndTime: string | null;
  validityEndsAt: string | null;
  /** The event's CreateTime, and when the gateway received it (ISO 8601, UTC). */
  eventAt: string | null;
  at: string;
}

const GAUGE_NAME = 'wxphone_quota_units_left';
const RETRY_DELAY_MS = 100;

export class QuotaAlerts {
  readonly gauge: Gauge<'appid'>;
  private readonly db: Kysely<Database>;
  private readonly thresholds: (appid: string) => AlertThresholds | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly webhook: { url: string; host: string } | undefined;
  private readonly inflight = new Set<Promise<void>>();
  /** Per-app send queue, so one instance delivers an app's low/recovered events in order. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(opts: QuotaAlertsOptions) {
    this.db = opts.db;
    this.thresholds = opts.thresholds;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.timeoutMs = opts.webhookTimeoutMs ?? 3000;
    this.webhook = opts.webhookUrl === undefined ? undefined : parseWebhookUrl(opts.webhookUrl);
    // A second instance on the same registry (tests, a restarted component) shares the gauge
    // instead of failing with "already registered".
    const existing = opts.registry.getSingleMetric(GAUGE_NAME);
    this.gauge =
      existing instanceof Gauge
        ? (existing as Gauge<'appid'>)
        : new Gauge({
            name: GAUGE_NAME,
            help: 'Verification units left per app (trial plus packs in effect), as the billing mirror last saw them. Exempt apps have no series.',
            labelNames: ['appid'] as const,
            registers: [opts.registry],
          });
  }

  isLow(o: QuotaObservation): boolean {
    return isLow(o, this.thresholds(o.appid));
  }

  /**
   * Updates the gauge, records the low/ok state, and when the state crosses sends the
   * webhook once (in the background: see flush). Rejects only if the database write fails.
   */
  async observe(o: QuotaObservation): Promise<{ low: boolean; crossed: boolean }> {
    const t = this.thresholds(o.appid);
    const { low, exhausted } = quotaFlags(o, t);
    // An exempt app has no quota to run out of: a stale number would only mislead dashboards.
    if (o.exempt) this.gauge.remove({ appid: o.appid });
    else this.gauge.set({ appid: o.appid }, o.remaining);

    const at = this.now();
    const crossed = await this.flip(o.appid, low, at);
    if (crossed) {
      const event: QuotaAlertEvent = {
        event: low ? 'quota.low' : 'quota.recovered',
        appid: o.appid,
        remaining: o.remaining,
        unitsInEffect: o.unitsInEffect,
        exhausted,
        daysLeft: o.daysLeft,
        thresholds: { unitsBelow: t?.unitsBelow ?? null, daysBelow: t?.daysBelow ?? null, percentOfUnitsInEffect: DEFAULT_LOW_QUOTA_PERCENT },
        at: new Date(at).toISOString(),
      };
      this.log.info({ appid: o.appid, event: event.event, remaining: o.remaining, exhausted, daysLeft: o.daysLeft }, 'quota alert state crossed');
      if (this.webhook) this.enqueue(o.appid, () => this.deliver(o.appid, event.event, JSON.stringify(event), () => this.markNotified(event, at)));
    }
    return { low, crossed };
  }

  /** Posts a charge alert WeChat pushed, in the background (see flush); its caller decided it is new. */
  sendWechatAlert(event: WechatAlertWebhookEvent): void {
    if (this.webhook) this.enqueue(event.appid, () => this.deliver(event.appid, event.event, JSON.stringify(event)));
  }

  /** Resolves when webhooks in flight (including ones queued meanwhile) have finished. */
  async flush(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Compare-and-set on the stored state; true for the one caller that changed it.
   * Ok is the implicit initial state: a first observation that is low is a crossing,
   * a first one that is ok is recorded silently.
   */
  private async flip(appid: string, low: boolean, at: number): Promise<boolean> {
    const want = low ? 1 : 0;
    // Steady state (the common case) costs one read and no write.
    const row = await this.db.selectFrom('quota_alerts').select('low').where('appid', '=', appid).executeTakeFirst();
    if (row && Number(row.low) === want) return false;
    if (!row) {
      const ins = await this.db
        .insertInto('quota_alerts')
        .values({ appid, low: want, changed_at: at, notified_at: null })
        .onConflict((oc) => oc.column('appid').doNothing())
        .executeTakeFirst();
      if (Number(ins.numInsertedOrUpdatedRows ?? 0) === 1) return low;
      // Another observer inserted first; its state may be the opposite one, so fall through.
    }
    const upd = await this.db
      .updateTable('quota_alerts')
      // notified_at describes the current state: a new crossing is not yet notified.
      .set({ low: want, changed_at: at, notified_at: null })
      .where('appid', '=', appid)
      .where('low', '=', 1 - want)
      .executeTakeFirst();
    return Number(upd.numUpdatedRows) === 1;
  }

  private enqueue(appid: string, job: () => Promise<void>): void {
    const next = (this.chains.get(appid) ?? Promise.resolve()).then(job).catch((err: unknown) => {
      // deliver() handles its own failures; this is a last guard so nothing reaches the caller.
      this.log.error({ appid, err: errorKind(err) }, 'quota alert webhook job failed');
    });
    this.chains.set(appid, next);
    this.inflight.add(next);
    void next.finally(() => {
      this.inflight.delete(next);
      if (this.chains.get(appid) === next) this.chains.delete(appid);
    });
  }

  private async deliver(appid: string, name: string, body: string, delivered?: () => Promise<void>): Promise<void> {
    const hook = this.webhook!;
    let status: number | string = 'none';
    for (let attempt = 1; attempt <= 2; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
      const result = await this.post(hook.url, body);
      status = result.status;
      if (result.ok) {
        this.log.info({ appid, event: name, status, attempts: attempt }, 'quota alert webhook delivered');
        await delivered?.();
        return;
      }
      if (!result.retry) break;
    }
    // Logged with the host only: the path or query may carry the receiver's secret token.
    this.log.warn({ appid, event: name, status, webhookHost: hook.host }, 'quota alert webhook failed');
  }

  /** One attempt. Never throws; `status` is the HTTP status or a short error kind. */
  private async post(url: string, body: string): Promise<{ ok: boolean; retry: boolean; status: number | string }> {
    const ac = new AbortController();
    // The timer covers the response body too, so a receiver that stalls mid-body cannot hold us.
    const timer = setTimeout(() => ac.abort(new TimeoutMarker()), this.timeoutMs);
    try {
      const res = await this.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'wxphone-gateway' },
        body,
        signal: ac.signal,
        // A redirect would forward the event somewhere not configured; treat it as a failure.
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return { ok: true, retry: false, status: res.status };
      return { ok: false, retry: res.status >= 500, status: res.status };
    } catch (err) {
      // Timeouts count as network errors: retried once, each attempt with its own timeout.
      return { ok: false, retry: true, status: ac.signal.aborted ? 'timeout' : errorKind(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  private async markNotified(event: QuotaAlertEvent, changedAt: number): Promise<void> {
    try {
      // Only if the state is still the one we announced: a later crossing has its own notification.
      await this.db
        .updateTable('quota_alerts')
        .set({ notified_at: this.now() })
        .where('appid', '=', event.appid)
        .where('low', '=', event.event === 'quota.low' ? 1 : 0)
        .where('changed_at', '=', changedAt)
        .execute();
    } catch (err) {
      this.log.warn({ appid: event.appid, err: errorKind(err) }, 'quota alert notified_at not recorded');
    }
  }
}

class TimeoutMarker extends Error {
  override name = 'TimeoutError';
}

/** A URL error would echo the input (and its token): refuse without quoting it. */
function parseWebhookUrl(raw: string): { url: string; host: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error('quota alert webhook URL is not a valid URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('quota alert webhook URL must be http(s)');
  return { url: u.href, host: u.host };
}

/**
 * A short, safe description of a failure: an errno-style code or the error's class name.
 * Never the message, which for fetch errors may quote the URL.
 */
function errorKind(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  const code = cause?.code ?? (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) return code;
  const name = (err as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^[A-Za-z]{1,40}$/.test(name) ? name : 'error';
}
