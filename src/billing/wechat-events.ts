import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Database } from '../store/schema.js';
import type { Logger } from '../log.js';
import { MessagePushError, textField, type OpenedPush, type PushFields, type PushRejection, type PushValue } from '../wechat/message-push.js';
import { CST_OFFSET_MS, DAY_MS } from './rules.js';
import type { WechatAlertWebhookEvent } from './alerts.js';

/**
 * What WeChat pushes to an app's message-push URL, once it has been authenticated
 * (src/wechat/message-push.ts): charge alerts are recorded, trigger a usage sync and go to the
 * alert webhook; every other event is acknowledged and counted. Each event counts once however
 * often WeChat retries it: the row's key decides, in the database every instance shares.
 *
 * Charge events, both with `event_type`, `appid`, `spu_id`, `spu_name`:
 * - quota alert (event_type 3): `total_quota` (units of the SPU in effect) and `total_used_quota`;
 *   documented as charge_mp_service_quota_notify, received in production as
 *   charge_service_quota_notify; numbers as JSON numbers or strings;
 * - expiry alert (event_type 4): `validity_end_time` (a string; its format is not documented).
 */

export type WechatAlertKind = 'quota' | 'expiry';

export interface WechatChargeAlert {
  appid: string;
  kind: WechatAlertKind;
  /** The event's name as WeChat sent it. */
  event: string;
  /** The event's CreateTime (ms), when it had one. */
  eventAt: number | null;
  receivedAt: number;
  eventType: number | null;
  spuId: string | null;
  spuName: string | null;
  totalQuota: number | null;
  totalUsedQuota: number | null;
  /** totalQuota − totalUsedQuota, never below 0. */
  remainingQuota: number | null;
  /** validity_end_time as sent, and the instant it was read as (null when it could not be read). */
  validityEndTime: string | null;
  validityEndsAt: number | null;
}

const QUOTA_EVENTS = new Set(['charge_mp_service_quota_notify', 'charge_service_quota_notify']);
// charge_service_validity_notify is the quota name's pattern applied to expiry: never seen, accepted alike.
const EXPIRY_EVENTS = new Set(['charge_mp_service_validity_notify', 'charge_service_validity_notify']);

/** Event names counted under their own label; any other is "other", so the label set stays bounded. */
const LABELLED_EVENTS = new Set([
  ...QUOTA_EVENTS,
  ...EXPIRY_EVENTS,
  'debug_demo',
  'user_info_modified',
  'user_authorization_revoke',
  'user_authorization_cancellation',
  'wxa_punish_event',
  'wxa_media_check',
  'subscribe_msg_popup_event',
  'subscribe_msg_change_event',
  'subscribe_msg_sent_event',
]);

/** How long another event's row is kept: long enough to recognise WeChat's retries. */
const OTHER_EVENT_RETENTION_MS = DAY_MS;
const MAX_NAME = 64;

type AlertFields = Omit<WechatChargeAlert, 'appid' | 'receivedAt'>;

/** The alert a message is, or null when it is another event (or not an event). */
export function readChargeAlert(fields: PushFields): AlertFields | null {
  if (textField(fields, 'MsgType')?.toLowerCase() !== 'event') return null;
  const event = textField(fields, 'Event') ?? '';
  const name = event.toLowerCase();
  const kind: WechatAlertKind | null = QUOTA_EVENTS.has(name) ? 'quota' : EXPIRY_EVENTS.has(name) ? 'expiry' : null;
  if (!kind) return null;
  const totalQuota = kind === 'quota' ? count(fields.total_quota) : null;
  const totalUsedQuota = kind === 'quota' ? count(fields.total_used_quota) : null;
  const validityEndTime = kind === 'expiry' ? (short(textField(fields, 'validity_end_time')) ?? null) : null;
  return {
    kind,
    event: event.slice(0, MAX_NAME),
    eventAt: seconds(fields.CreateTime),
    eventType: count(fields.event_type),
    spuId: short(textField(fields, 'spu_id')) ?? null,
    spuName: short(textField(fields, 'spu_name'), 128) ?? null,
    totalQuota,
    totalUsedQuota,
    remainingQuota: totalQuota !== null && totalUsedQuota !== null ? Math.max(0, totalQuota - totalUsedQuota) : null,
    validityEndTime,
    validityEndsAt: validityEndTime === null ? null : instant(validityEndTime),
  };
}

/** The metric label of a message: a known event's name, "message" for user messages, else "other". */
export function eventLabel(fields: PushFields): string {
  if (textField(fields, 'MsgType')?.toLowerCase() !== 'event') return 'message';
  const name = (textField(fields, 'Event') ?? '').toLowerCase();
  return LABELLED_EVENTS.has(name) ? name : 'other';
}

function count(v: PushValue | undefined): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (typeof v === 'string' && /^\s*\d{1,15}\s*$/.test(v)) return Number(v);
  return null;
}

function seconds(v: PushValue | undefined): number | null {
  const n = count(v);
  return n === null ? null : n * 1000;
}

function short(v: string | undefined, max = MAX_NAME): string | undefined {
  if (v === undefined) return undefined;
  // Control characters have no business in these fields (and none in logs or labels).
  return v.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, max);
}

/**
 * validity_end_time as an instant: Unix seconds or milliseconds, an ISO 8601 time with a zone, or
 * a "YYYY-MM-DD[ HH:mm[:ss]]" as WeChat's console shows times (China Standard Time). Else null.
 */
export function instant(text: string): number | null {
  const t = text.trim();
  if (/^\d{9,10}$/.test(t)) return Number(t) * 1000;
  if (/^\d{12,13}$/.test(t)) return Number(t);
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(t);
  if (local) {
    const [, y, mo, d, h = '0', mi = '0', s = '0'] = local;
    const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - CST_OFFSET_MS;
    return Number.isFinite(ms) ? ms : null;
  }
  if (/^\d{4}-\d{2}-\d{2}T.+(Z|[+-]\d{2}:?\d{2})$/.test(t)) {
    const ms = Date.parse(t);
    return Number.isFinite(ms) ? ms : null;
  }
  return null;
}

export interface WechatEventsOptions {
  db: Kysely<Database>;
  /** Keyed hashing, so a row's key never holds the sender's openid. */
  hash: (...parts: string[]) => string;
  /** Pulls WeChat's usage for the app now (UsageSync.sync). */
  sync: (appid: string, requestId?: string) => Promise<unknown>;
  /** Posts the alert to the alert webhook (QuotaAlerts.sendWechatAlert). */
  notify: (event: WechatAlertWebhookEvent) => void;
  registry: Registry;
  log: Logger;
  now?: () => number;
}

export interface AcceptedPush {
  outcome: 'recorded' | 'duplicate';
  kind: StoredKind;
  /** The slow part (usage sync, webhook): to run once WeChat has its answer. */
  afterAnswer: () => void;
}

type StoredKind = Database['wechat_events']['kind'];

const EVENTS_METRIC = 'wxphone_wechat_events_total';
const REJECTED_METRIC = 'wxphone_wechat_push_rejected_total';

export class WechatEvents {
  private readonly events: Counter<'appid' | 'event' | 'outcome'>;
  private readonly rejections: Counter<'reason'>;
  private readonly now: () => number;
  private readonly inflight = new Set<Promise<unknown>>();
  private lastReceivedAt = 0;

  constructor(private readonly opts: WechatEventsOptions) {
    this.now = opts.now ?? Date.now;
    this.events = counter(opts.registry, EVENTS_METRIC, 'Messages and events WeChat pushed, by app, event name (bounded: unknown names count as "other") and outcome (recorded, or duplicate: a retry counted once).', ['appid', 'event', 'outcome']);
    this.rejections = counter(opts.registry, REJECTED_METRIC, 'Pushes refused (4xx, nothing recorded), by reason: missing_signature, bad_signature, stale_timestamp, bad_body, not_encrypted, undecryptable, wrong_appid, too_large.', ['reason']);
  }

  rejected(reason: PushRejection | 'too_large'): void {
    this.rejections.inc({ reason });
  }

  /**
   * Records a pushed message once. Rejects only if the database does (WeChat then retries) or if
   * a charge alert names another app than the URL's (a 4xx: nothing recorded).
   */
  async accept(appid: string, push: OpenedPush, requestId?: string): Promise<AcceptedPush> {
    const fields = push.fields;
    const alert = readChargeAlert(fields);
    const bodyAppid = textField(fields, 'appid');
    if (alert && bodyAppid !== undefined && bodyAppid !== appid) throw new MessagePushError('wrong_appid', 'the alert names another app than the URL');
    // Strictly increasing within an instance, so alerts received in one millisecond keep their order.
    const receivedAt = (this.lastReceivedAt = Math.max(this.now(), this.lastReceivedAt + 1));
    const kind: StoredKind = alert ? (alert.kind === 'quota' ? 'quota_alert' : 'expiry_alert') : 'other';
    const isEvent = textField(fields, 'MsgType')?.toLowerCase() === 'event';
    const name = short(isEvent ? textField(fields, 'Event') : textField(fields, 'MsgType')) || 'unknown';
    const inserted = await this.opts.db
      .insertInto('wechat_events')
      .values({
        id: this.key(appid, push, alert),
        appid,
        kind,
        event: name,
        event_at: alert?.eventAt ?? seconds(fields.CreateTime),
        received_at: receivedAt,
        fields: alert ? JSON.stringify(storedFields(alert)) : null,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    const outcome = Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1 ? 'recorded' : 'duplicate';
    this.events.inc({ appid, event: eventLabel(fields), outcome });
    if (outcome === 'duplicate' || !alert) return { outcome, kind, afterAnswer: () => {} };
    const full: WechatChargeAlert = { ...alert, appid, receivedAt };
    this.opts.log.info(
      { appid, requestId, event: full.event, totalQuota: full.totalQuota, totalUsedQuota: full.totalUsedQuota, validityEndTime: full.validityEndTime },
      `WeChat ${kind === 'quota_alert' ? 'quota' : 'expiry'} alert recorded; syncing usage`,
    );
    return {
      outcome,
      kind,
      afterAnswer: () => {
        this.opts.notify(webhookEvent(full));
        this.track(
          this.opts.sync(appid, requestId).catch((e: unknown) => {
            // UsageSync records and logs its own failure; this line ties it to the alert.
            this.opts.log.warn({ appid, requestId, err: e instanceof Error ? e.message : 'failed' }, 'usage sync after a WeChat alert failed');
          }),
        );
      },
    };
  }

  /** Each app's latest charge alert (either kind), in one query. */
  async latest(appids: readonly string[]): Promise<Map<string, WechatChargeAlert>> {
    const out = new Map<string, WechatChargeAlert>();
    if (!appids.length) return out;
    const { rows } = await sql<{ appid: string; kind: string; event: string; event_at: number | string | null; received_at: number | string; fields: string | null }>`
      select w.appid, w.kind, w.event, w.event_at, w.received_at, w.fields from wechat_events w
      where w.appid in (${sql.join([...appids])}) and w.id = (
        select w2.id from wechat_events w2
        where w2.appid = w.appid and w2.kind in ('quota_alert', 'expiry_alert')
        order by coalesce(w2.event_at, w2.received_at) desc, w2.received_at desc, w2.id desc limit 1)
    `.execute(this.opts.db);
    for (const r of rows) {
      const f = JSON.parse(r.fields ?? '{}') as Partial<StoredFields>;
      out.set(r.appid, {
        appid: r.appid,
        kind: r.kind === 'quota_alert' ? 'quota' : 'expiry',
        event: r.event,
        eventAt: r.event_at === null ? null : Number(r.event_at),
        receivedAt: Number(r.received_at),
        eventType: f.eventType ?? null,
        spuId: f.spuId ?? null,
        spuName: f.spuName ?? null,
        totalQuota: f.totalQuota ?? null,
        totalUsedQuota: f.totalUsedQuota ?? null,
        remainingQuota: f.totalQuota != null && f.totalUsedQuota != null ? Math.max(0, f.totalQuota - f.totalUsedQuota) : null,
        validityEndTime: f.validityEndTime ?? null,
        validityEndsAt: f.validityEndsAt ?? null,
      });
    }
    return out;
  }

  /** Forgets other events once no retry of theirs can arrive; alerts stay. */
  async purge(): Promise<number> {
    const r = await this.opts.db
      .deleteFrom('wechat_events')
      .where('kind', '=', 'other')
      .where('received_at', '<', this.now() - OTHER_EVENT_RETENTION_MS)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Resolves when the usage syncs started after answers have finished. */
  async flush(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /**
   * What makes an event itself: its MsgId where it has one; else who sent it when, its name and,
   * for alerts, their figures (two alerts in one second differ there, a retry does not). Without
   * even a CreateTime, the message's own bytes. Hashed with a key: the sender's openid is not kept.
   */
  private key(appid: string, push: OpenedPush, alert: AlertFields | null): string {
    const f = push.fields;
    const msgId = textField(f, 'MsgId') ?? textField(f, 'MsgID');
    if (msgId) return this.opts.hash('wechat-event', appid, 'msg', msgId);
    const createTime = textField(f, 'CreateTime');
    if (createTime === undefined) return this.opts.hash('wechat-event', appid, 'raw', createHash('sha256').update(push.raw).digest('base64url'));
    const figures = alert
      ? [String(alert.eventType ?? ''), alert.spuId ?? '', String(alert.totalQuota ?? ''), String(alert.totalUsedQuota ?? ''), alert.validityEndTime ?? '']
      : [];
    return this.opts.hash('wechat-event', appid, 'event', textField(f, 'FromUserName') ?? '', createTime, (textField(f, 'Event') ?? textField(f, 'MsgType') ?? '').toLowerCase(), ...figures);
  }
}

type StoredFields = Pick<WechatChargeAlert, 'eventType' | 'spuId' | 'spuName' | 'totalQuota' | 'totalUsedQuota' | 'validityEndTime' | 'validityEndsAt'>;

/** The alert's own figures only: nothing about who sent it. */
function storedFields(a: AlertFields): StoredFields {
  return {
    eventType: a.eventType,
    spuId: a.spuId,
    spuName: a.spuName,
    totalQuota: a.totalQuota,
    totalUsedQuota: a.totalUsedQuota,
    validityEndTime: a.validityEndTime,
    validityEndsAt: a.validityEndsAt,
  };
}

export function webhookEvent(a: WechatChargeAlert): WechatAlertWebhookEvent {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    event: a.kind === 'quota' ? 'wechat.quota_alert' : 'wechat.expiry_alert',
    appid: a.appid,
    wechatEvent: a.event,
    spuId: a.spuId,
    spuName: a.spuName,
    totalQuota: a.totalQuota,
    totalUsedQuota: a.totalUsedQuota,
    remainingQuota: a.remainingQuota,
    validityEndTime: a.validityEndTime,
    validityEndsAt: iso(a.validityEndsAt),
    eventAt: iso(a.eventAt),
    at: new Date(a.receivedAt).toISOString(),
  };
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  return existing instanceof Counter ? (existing as Counter<L>) : new Counter({ name, help, labelNames, registers: [registry] });
}
