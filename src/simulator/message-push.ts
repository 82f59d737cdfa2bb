import { randomInt } from 'node:crypto';
import { DAY_MS, TRIAL_UNITS, packStatus, type BillingPack } from '../billing/rules.js';
import { SimInputError } from './errors.js';
import { encryptPush, signPush } from './push-crypto.js';

/**
 * WeChat's charge alerts, pushed the way WeChat pushes them: to the URL an
 * app set in its console, signed with its Token and, in compatible and safe mode, encrypted with
 * its EncodingAESKey; XML or JSON; answered `success` within 5 s or sent again, up to 3 times.
 *
 * - Quota alert: when the units left of the product's rows in effect (the trial's and the packs'
 *   in effect) fall to 20 %, 10 %, 5 % and 0 % of those rows' units, once per threshold until
 *   units are added (a new pack re-arms the thresholds above what is left).
 * - Expiry alert: 15, 7, 3 and 1 days before a pack expires and when it does, as the clock passes
 *   each moment (a jump over several sends each, oldest first).
 *
 * Bodies as seen in production: the quota event is named charge_service_quota_notify (the docs
 * say charge_mp_service_quota_notify) with numbers as JSON numbers; no expiry alert was ever
 * captured, so it follows the docs' name and fields. Its validity_end_time is sent as Unix
 * seconds in a string: the docs give its type (string), not its form.
 */

export type PushMode = 'plaintext' | 'compatible' | 'safe';
export type PushFormat = 'json' | 'xml';

export interface PushTargetInput {
  url: string;
  token: string;
  encodingAesKey?: string;
  mode?: PushMode;
  format?: PushFormat;
}

interface PushTarget {
  url: string;
  token: string;
  encodingAesKey: string | undefined;
  mode: PushMode;
  format: PushFormat;
}

/** What the pusher needs to know of an app's account at one moment. */
export interface PushAccount {
  appid: string;
  exempt: boolean;
  spuId: string;
  trialUsed: number;
  packs: readonly (BillingPack & { id: string })[];
}

export interface PushDelivery {
  event: string;
  /** CreateTime (Unix seconds, the simulator's clock). */
  createTime: number;
  fields: Record<string, string | number>;
  /** One per attempt: the HTTP status, or "timeout" / "error". */
  attempts: (number | string)[];
  /** What the last attempt was answered with (the first 200 characters). */
  answer: string | null;
  outcome: 'pending' | 'acknowledged' | 'failed';
}

interface AppPushState {
  target: PushTarget;
  /** The app's pushes go out one after another, in the order they became due. */
  queue: Promise<void>;
  /** How many of the quota thresholds have been announced. */
  quotaLevel: number;
  /** pack id → how many of its expiry moments have been announced. */
  expiryMarks: Map<string, number>;
  deliveries: PushDelivery[];
}

/** Units left, as a fraction of the units in effect, at which WeChat alerts. */
const QUOTA_THRESHOLDS_PERCENT = [20, 10, 5, 0] as const;
/** Days before expiry at which WeChat alerts; 0 is the expiry itself. */
const EXPIRY_DAYS = [15, 7, 3, 1, 0] as const;
const RETRIES = 3;
const MAX_DELIVERIES_KEPT = 200;
/** What WeChat's own account looks like as the sender of these events (an openid-like id). */
const SENDER = 'o_sim_wechat_charge_notify0';
const SPU_NAME: Readonly<Record<string, string>> = { '10000077': '手机号快速验证组件', '10000086': '手机号实时验证组件' };

export interface MessagePusherOptions {
  /** The simulator's clock (ms): CreateTime and the thresholds' moments. */
  now: () => number;
  /** How long an answer may take (WeChat: 5 s). */
  timeoutMs?: number;
}

export class MessagePusher {
  private readonly apps = new Map<string, AppPushState>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly attempts = new Set<AbortController>();
  private closed = false;
  private readonly timeoutMs: number;

  constructor(private readonly opts: MessagePusherOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  /**
   * Points an app's pushes at a URL (null: no pushes). The alerts already due at this moment are
   * taken as sent: setting a URL announces nothing by itself.
   */
  configure(account: PushAccount, input: PushTargetInput | null): { appid: string; url: string | null; mode: PushMode | null; format: PushFormat | null } {
    if (input === null) {
      this.apps.delete(account.appid);
      return { appid: account.appid, url: null, mode: null, format: null };
    }
    const target = parseTarget(input);
    const previous = this.apps.get(account.appid);
    const state: AppPushState = { target, queue: previous?.queue ?? Promise.resolve(), quotaLevel: 0, expiryMarks: new Map(), deliveries: previous?.deliveries ?? [] };
    const now = this.opts.now();
    state.quotaLevel = quotaLevel(account, now);
    for (const p of account.packs) state.expiryMarks.set(p.id, marksPassed(p, now));
    this.apps.set(account.appid, state);
    return { appid: account.appid, url: target.url, mode: target.mode, format: target.format };
  }

  /** The app's target (without its secrets) and what was pushed to it, newest last. */
  describe(appid: string): { url: string | null; mode: PushMode | null; format: PushFormat | null; deliveries: PushDelivery[] } {
    const s = this.apps.get(appid);
    return { url: s?.target.url ?? null, mode: s?.target.mode ?? null, format: s?.target.format ?? null, deliveries: s ? [...s.deliveries] : [] };
  }

  /** Looks at the account after a charge, a new pack or a clock move, and pushes what became due. */
  observe(account: PushAccount): void {
    const state = this.apps.get(account.appid);
    if (!state || account.exempt) return;
    const now = this.opts.now();
    for (const p of [...account.packs].sort((a, b) => a.expiresAt - b.expiresAt)) {
      const known = state.expiryMarks.get(p.id);
      // A pack first seen now has its past moments taken as sent, like a URL set just now.
      if (known === undefined) {
        state.expiryMarks.set(p.id, marksPassed(p, now));
        continue;
      }
      const passed = marksPassed(p, now);
      for (let i = known; i < passed; i++) {
        const at = p.expiresAt - EXPIRY_DAYS[i]! * DAY_MS;
        this.push(account.appid, state, Math.floor(at / 1000), {
          Event: 'charge_mp_service_validity_notify',
          event_type: 4,
          appid: account.appid,
          spu_id: Number(account.spuId),
          spu_name: SPU_NAME[account.spuId] ?? account.spuId,
          validity_end_time: String(Math.floor(p.expiresAt / 1000)),
        });
      }
      state.expiryMarks.set(p.id, passed);
    }
    const level = quotaLevel(account, now);
    if (level > state.quotaLevel) {
      const { all, used } = unitsInEffect(account, now);
      // One push for the deepest threshold reached: a pack expiring can pass several at once.
      this.push(account.appid, state, Math.floor(now / 1000), {
        Event: 'charge_service_quota_notify',
        event_type: 3,
        appid: account.appid,
        spu_id: Number(account.spuId),
        spu_name: SPU_NAME[account.spuId] ?? account.spuId,
        total_quota: all,
        total_used_quota: used,
      });
    }
    state.quotaLevel = level;
  }

  /** Resolves when every push under way (with its retries) has ended. */
  async flush(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  clear(): void {
    this.apps.clear();
  }

  /** Stops: attempts under way are cut short and nothing more is sent. */
  close(): void {
    this.closed = true;
    for (const ac of this.attempts) ac.abort();
  }

  private push(appid: string, state: AppPushState, createTime: number, event: Record<string, string | number>): void {
    const toUser = `gh_${appid.slice(2, 14)}`;
    const fields: Record<string, string | number> = { ToUserName: toUser, FromUserName: SENDER, CreateTime: createTime, MsgType: 'event', ...event };
    const delivery: PushDelivery = { event: String(event.Event), createTime, fields, attempts: [], answer: null, outcome: 'pending' };
    state.deliveries.push(delivery);
    if (state.deliveries.length > MAX_DELIVERIES_KEPT) state.deliveries.splice(0, state.deliveries.length - MAX_DELIVERIES_KEPT);
    const target = state.target;
    // Signed when it leaves (after the app's earlier pushes), so its timestamp is when it is sent.
    const job = state.queue.then(() => this.deliver(sealed(target, appid, toUser, fields), delivery));
    state.queue = job;
    this.inflight.add(job);
    void job.finally(() => this.inflight.delete(job));
  }

  /** The same signed request up to 1 + 3 times, until one is answered `success` in time. */
  private async deliver(request: { url: string; body: string; contentType: string }, delivery: PushDelivery): Promise<void> {
    for (let attempt = 0; attempt <= RETRIES && !this.closed; attempt++) {
      const ac = new AbortController();
      this.attempts.add(ac);
      const timer = setTimeout(() => ac.abort(), this.timeoutMs);
      try {
        const res = await fetch(request.url, { method: 'POST', headers: { 'content-type': request.contentType }, body: request.body, signal: ac.signal, redirect: 'manual' });
        const text = await res.text();
        delivery.attempts.push(res.status);
        delivery.answer = text.slice(0, 200);
        // WeChat takes `success` or an empty answer as "received".
        if (res.status === 200 && (text.trim() === 'success' || text === '')) {
          delivery.outcome = 'acknowledged';
          return;
        }
      } catch {
        delivery.attempts.push(ac.signal.aborted ? 'timeout' : 'error');
        delivery.answer = null;
      } finally {
        clearTimeout(timer);
        this.attempts.delete(ac);
      }
    }
    delivery.outcome = 'failed';
  }
}

function parseTarget(input: PushTargetInput): PushTarget {
  if (typeof input.url !== 'string' || !/^https?:\/\/\S+$/.test(input.url)) throw new SimInputError('url must be an http(s) URL');
  if (typeof input.token !== 'string' || !/^\S{1,128}$/.test(input.token)) throw new SimInputError('token is required (1 to 128 characters, no spaces)');
  const mode = input.mode ?? (input.encodingAesKey ? 'safe' : 'plaintext');
  if (mode !== 'plaintext' && mode !== 'compatible' && mode !== 'safe') throw new SimInputError('mode must be plaintext, compatible or safe');
  const format = input.format ?? 'xml';
  if (format !== 'json' && format !== 'xml') throw new SimInputError('format must be json or xml');
  const key = input.encodingAesKey;
  if (key !== undefined && (typeof key !== 'string' || !/^[A-Za-z0-9+/]{43}$/.test(key))) throw new SimInputError('encodingAesKey must be 43 letters and digits');
  if (mode !== 'plaintext' && !key) throw new SimInputError(`${mode} mode needs an encodingAesKey`);
  return { url: input.url, token: input.token, encodingAesKey: key, mode, format };
}

/** Units of the rows in effect (the trial's, which never ends, and the packs' in effect), and how many of them are used. */
function unitsInEffect(account: PushAccount, now: number): { all: number; used: number } {
  let all = TRIAL_UNITS;
  let used = Math.min(account.trialUsed, TRIAL_UNITS);
  for (const p of account.packs) {
    const status = packStatus(p, now);
    if (status === 'IN_EFFECT' || status === 'USED_UP') {
      all += p.all;
      used += p.used;
    }
  }
  return { all, used };
}

/** How many thresholds the units left are at or below. */
function quotaLevel(account: PushAccount, now: number): number {
  const { all, used } = unitsInEffect(account, now);
  const left = all - used;
  return QUOTA_THRESHOLDS_PERCENT.filter((t) => left * 100 <= all * t).length;
}

function marksPassed(pack: BillingPack, now: number): number {
  return EXPIRY_DAYS.filter((d) => pack.expiresAt - d * DAY_MS <= now).length;
}

/**
 * The POST as WeChat sends it: query `signature`, `timestamp`, `nonce` (and in compatible and safe
 * mode `encrypt_type=aes`, `msg_signature`). `timestamp` is real time, not the simulator's clock:
 * moving the clock stands for days of billing passing, not for WeChat's servers running ahead of
 * the receiver's, whose clock check would then refuse every push.
 */
function sealed(target: PushTarget, appid: string, toUser: string, fields: Record<string, string | number>): { url: string; body: string; contentType: string } {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(randomInt(100_000_000, 2_000_000_000));
  const plaintext = target.format === 'json' ? JSON.stringify(fields) : toXml(fields);
  const query = new URLSearchParams({ signature: signPush(target.token, timestamp, nonce), timestamp, nonce });
  let body = plaintext;
  if (target.mode !== 'plaintext') {
    const encrypt = encryptPush(target.encodingAesKey!, appid, plaintext);
    query.set('encrypt_type', 'aes');
    query.set('msg_signature', signPush(target.token, timestamp, nonce, encrypt));
    const outer: Record<string, string | number> = target.mode === 'compatible' ? { ...fields, Encrypt: encrypt } : { ToUserName: toUser, Encrypt: encrypt };
    body = target.format === 'json' ? JSON.stringify(outer) : toXml(outer);
  }
  const url = new URL(target.url);
  for (const [k, v] of query) url.searchParams.set(k, v);
  return { url: url.href, body, contentType: target.format === 'json' ? 'application/json' : 'text/xml' };
}

/** WeChat's flat XML: strings in CDATA, numbers bare. */
function toXml(fields: Record<string, string | number>): string {
  const parts = Object.entries(fields).map(([k, v]) => (typeof v === 'number' ? `<${k}>${v}</${k}>` : `<${k}><![CDATA[${v.replaceAll(']]>', ']]]]><![CDATA[>')}]]></${k}>`));
  return `<xml>${parts.join('')}</xml>`;
}
