// The typed WeChat client: one method per WeChat endpoint the gateway calls.
//
// What it does not do, on purpose:
// - refresh tokens: token errors go up as WechatApiError kind 'token'; the
//   access-token layer owns compare-and-expire and its single retry;
// - check the watermark: the caller knows the expected appid (checkWatermark);
// - retry anything but errcode -1 and HTTP 5xx: a timed-out code exchange may
//   have reached WeChat and spent the code, and 45011 wants a longer back-off
//   than a request can wait.

import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import {
  accessTokenAnswer,
  assertNoErrcode,
  code2SessionAnswer,
  parseAnswer,
  phoneNumberAnswer,
  recentAverageAnswer,
  usagePageAnswer,
} from './answers.js';
import { securePost, type ApiSecurityNotice } from './api-security/transport.js';
import type { ApiSecurityKeys } from './api-security/keys.js';
import { WechatApiError, WechatUpstreamError } from './errors.js';
import { createWechatHttp } from './http.js';
import type { JsonObject, JsonRequest } from './http.js';
import { WECHAT_ENDPOINT_PATHS } from './types.js';
import type {
  AccessTokenResult,
  Code2SessionResult,
  PhoneInfo,
  RecentAverage,
  UsageDetail,
  UsagePage,
  UsageSummary,
  WechatEndpoint,
} from './types.js';

export { checkWatermark } from './answers.js';

export type WechatCallOutcome = 'ok' | 'error' | 'upstream';

/** One HTTP attempt (a retried call reports each attempt). */
export interface WechatCallEvent {
  endpoint: WechatEndpoint;
  ms: number;
  /** 'error': WeChat answered with an errcode; 'upstream': no usable answer. */
  outcome: WechatCallOutcome;
  errcode?: number;
}

export interface WechatClientOptions {
  /** https://api.weixin.qq.com in production; may carry a path prefix. */
  baseUrl: string;
  /** Per attempt, connect to last body byte. Default 5000. */
  timeoutMs?: number;
  /** Extra attempts after errcode -1 or HTTP 5xx. Default 2. */
  maxRetries?: number;
  /** Backoff base: attempt n waits a random time in [0, base·2^n). Default 100. */
  retryBaseDelayMs?: number;
  /** Metrics hook; exceptions it throws are ignored. */
  onCall?: (e: WechatCallEvent) => void;
  /** Send `openid` to getuserphonenumber (off by default: some apps get a format error with it). */
  sendOpenid?: boolean;
  /** Sockets to the WeChat origin. Default 64. */
  connections?: number;
  /** Apps with WeChat's API security mode on: their getuserphonenumber is encrypted and signed. */
  apiSecurity?: WechatApiSecurityOptions;
}

export interface WechatApiSecurityOptions {
  /** The app's keys, or undefined when the app does not use the mode. */
  keysFor(appid: string): ApiSecurityKeys | undefined;
  /** Epoch ms, for the request's timestamp and the answer's freshness. Default Date.now. */
  now?: () => number;
  /** Certificate rotation and refused answers, for logs (never carries a key or a value of the call). */
  onNotice?: (n: ApiSecurityNotice) => void;
}

export interface WechatClient {
  getStableToken(p: { appid: string; secret: string; forceRefresh?: boolean }): Promise<AccessTokenResult>;
  getToken(p: { appid: string; secret: string }): Promise<AccessTokenResult>;
  /** `appid` selects API security mode for an app that has it on; without it the call is plain. */
  getUserPhoneNumber(accessToken: string, p: { code: string; openid?: string; appid?: string }): Promise<PhoneInfo>;
  code2Session(p: { appid: string; secret: string; jsCode: string }): Promise<Code2SessionResult>;
  /** `spuId`, `offset` and `limit` (1..20) are all required by WeChat (10120002 otherwise). */
  getUsagePage(accessToken: string, p: { spuId: string; offset: number; limit: number }): Promise<UsagePage>;
  /** Every row of the product, paged 20 at a time until `total` rows are read. */
  getUsage(accessToken: string, p: { spuId: string }): Promise<UsageSummary>;
  getRecentAverage(accessToken: string, p: { spuId: string }): Promise<RecentAverage>;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_RETRIES = 2;
const DEFAULT_RETRY_BASE_MS = 100;
const MAX_RETRY_DELAY_MS = 5000;

/**
 * The longest one client call can take: every attempt timing out plus the
 * longest backoffs between them. Leases and locks that cover a call derive from this.
 */
export function worstCaseCallMs(opts: Pick<WechatClientOptions, 'timeoutMs' | 'maxRetries' | 'retryBaseDelayMs'>): number {
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const retries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
  const base = opts.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_MS;
  let backoff = 0;
  for (let n = 0; n < retries; n++) backoff += Math.min(MAX_RETRY_DELAY_MS, base * 2 ** n);
  return timeout * (retries + 1) + backoff;
}
export const USAGE_PAGE_LIMIT = 20;
/** 20,000 detail rows: far beyond any real account, small enough to stop a runaway `total`. */
const MAX_USAGE_PAGES = 1000;

interface CallSpec<T> {
  endpoint: WechatEndpoint;
  method: JsonRequest['method'];
  query?: JsonRequest['query'];
  body?: unknown;
  schema: z.ZodType<T>;
  /** Values of this call that must not leak into an error (WeChat may echo them). */
  secrets: ReadonlyArray<string | undefined>;
  /** API security mode: the body is encrypted and signed for this app, the answer verified. */
  secure?: { appid: string; keys: ApiSecurityKeys };
}

export function createWechatClient(opts: WechatClientOptions): WechatClient {
  const http = createWechatHttp({
    baseUrl: opts.baseUrl,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    connections: opts.connections,
  });
  const maxRetries = Math.max(0, opts.maxRetries ?? DEFAULT_MAX_RETRIES);
  // What API security mode signs: the API's URL with its protocol, without the query.
  const base = new URL(opts.baseUrl);
  const signedBase = base.origin + base.pathname.replace(/\/+$/, '');
  const retryBaseMs = Math.max(0, opts.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_MS);

  function report(e: WechatCallEvent): void {
    try {
      opts.onCall?.(e);
    } catch {
      // A broken metrics hook must not turn a WeChat answer into a failure.
    }
  }

  async function attempt<T>(spec: CallSpec<T>): Promise<T> {
    const started = performance.now();
    const ms = () => performance.now() - started;
    try {
      const path = WECHAT_ENDPOINT_PATHS[spec.endpoint];
      const answer: JsonObject = spec.secure
        ? await securePost(http, {
            endpoint: spec.endpoint,
            urlpath: signedBase + path,
            path,
            query: spec.query,
            fields: spec.body as Record<string, unknown>,
            appid: spec.secure.appid,
            keys: spec.secure.keys,
            now: (opts.apiSecurity?.now ?? Date.now)(),
            onNotice: opts.apiSecurity?.onNotice,
          })
        : await http.requestJson(spec.endpoint, { method: spec.method, path, query: spec.query, body: spec.body });
      assertNoErrcode(spec.endpoint, answer, spec.secrets);
      const value = parseAnswer(spec.endpoint, spec.schema, answer);
      report({ endpoint: spec.endpoint, ms: ms(), outcome: 'ok' });
      return value;
    } catch (err) {
      if (err instanceof WechatApiError) {
        report({ endpoint: spec.endpoint, ms: ms(), outcome: 'error', errcode: err.errcode });
      } else {
        report({ endpoint: spec.endpoint, ms: ms(), outcome: 'upstream' });
      }
      throw err;
    }
  }

  async function call<T>(spec: CallSpec<T>): Promise<T> {
    for (let retry = 0; ; retry++) {
      try {
        return await attempt(spec);
      } catch (err) {
        if (retry >= maxRetries || !isRetriedHere(err)) throw err;
        // Full jitter: spreads the retries of many instances hitting the same busy WeChat.
        await sleep(Math.random() * Math.min(MAX_RETRY_DELAY_MS, retryBaseMs * 2 ** retry));
      }
    }
  }

  function getUsagePage(accessToken: string, p: { spuId: string; offset: number; limit: number }): Promise<UsagePage> {
    if (!isSpuId(p.spuId)) return Promise.reject(new RangeError('usage spuId must be a product id (digits)'));
    if (!Number.isInteger(p.offset) || p.offset < 0) {
      return Promise.reject(new RangeError('usage offset must be a non-negative integer'));
    }
    if (!Number.isInteger(p.limit) || p.limit < 1 || p.limit > USAGE_PAGE_LIMIT) {
      return Promise.reject(new RangeError(`usage limit must be an integer from 1 to ${USAGE_PAGE_LIMIT}`));
    }
    return call({
      endpoint: 'usage_get',
      method: 'GET',
      query: { access_token: accessToken, spuId: p.spuId, offset: p.offset, limit: p.limit },
      schema: usagePageAnswer,
      secrets: [accessToken],
    });
  }

  return {
    getStableToken({ appid, secret, forceRefresh = false }) {
      return call({
        endpoint: 'stable_token',
        method: 'POST',
        body: { grant_type: 'client_credential', appid, secret, force_refresh: forceRefresh },
        schema: accessTokenAnswer,
        secrets: [secret],
      });
    },

    getToken({ appid, secret }) {
      return call({
        endpoint: 'token',
        method: 'GET',
        query: { grant_type: 'client_credential', appid, secret },
        schema: accessTokenAnswer,
        secrets: [secret],
      });
    },

    getUserPhoneNumber(accessToken, { code, openid, appid }) {
      const sendOpenid = opts.sendOpenid === true && openid !== undefined;
      const keys = appid === undefined ? undefined : opts.apiSecurity?.keysFor(appid);
      return call({
        endpoint: 'getuserphonenumber',
        method: 'POST',
        query: { access_token: accessToken },
        body: sendOpenid ? { code, openid } : { code },
        schema: phoneNumberAnswer,
        secrets: [accessToken, code],
        ...(keys && appid !== undefined ? { secure: { appid, keys } } : {}),
      });
    },

    code2Session({ appid, secret, jsCode }) {
      return call({
        endpoint: 'jscode2session',
        method: 'GET',
        query: { appid, secret, js_code: jsCode, grant_type: 'authorization_code' },
        schema: code2SessionAnswer,
        secrets: [secret, jsCode],
      });
    },

    getUsagePage,

    async getUsage(accessToken, { spuId }) {
      const first = await getUsagePage(accessToken, { spuId, offset: 0, limit: USAGE_PAGE_LIMIT });
      // Offset paging over a list that changes between pages can repeat a row, and a
      // repeated pack must not be counted twice.
      const details = new Map<string, UsageDetail>(first.detailList.map((d) => [usageRowKey(d), d]));
      let offset = first.detailList.length;
      let total = first.total;
      // Bounded by the first page's total and page size (WeChat may serve fewer than
      // asked), plus one page for a pack added while we page: a total that grows
      // on every page must not keep us paging for ever.
      const pageSize = Math.max(1, first.detailList.length);
      const maxPages = Math.min(MAX_USAGE_PAGES, Math.ceil(first.total / pageSize) + 1);
      for (let pages = 1; details.size < total && pages < maxPages; pages++) {
        const page = await getUsagePage(accessToken, { spuId, offset, limit: USAGE_PAGE_LIMIT });
        const before = details.size;
        for (const d of page.detailList) {
          const key = usageRowKey(d);
          if (!details.has(key)) details.set(key, d);
        }
        if (details.size === before) break; // an empty or repeated page: paging does not advance
        offset += page.detailList.length;
        total = page.total;
      }
      return {
        all: first.all,
        effectiveUse: first.effectiveUse,
        ...(first.effectiveAll !== undefined ? { effectiveAll: first.effectiveAll } : {}),
        details: [...details.values()],
        total,
        detailsComplete: details.size >= total,
      };
    },

    getRecentAverage(accessToken, { spuId }) {
      if (!isSpuId(spuId)) return Promise.reject(new RangeError('usage spuId must be a product id (digits)'));
      return call({
        endpoint: 'usage_get_recent_average',
        method: 'GET',
        query: { access_token: accessToken, spuId },
        schema: recentAverageAnswer,
        secrets: [accessToken],
      });
    },

    close: () => http.close(),
  };
}

function isSpuId(v: unknown): v is string {
  return typeof v === 'string' && /^\d{1,20}$/.test(v);
}

/**
 * What makes a usage row the same row on another page: its pkgId, or (the trial's pkgId
 * is "") what else identifies it.
 */
function usageRowKey(d: UsageDetail): string {
  return d.pkgId !== '' ? `pkg:${d.pkgId}` : `row:${d.source ?? ''}|${d.skuId ?? ''}|${d.orderId ?? ''}|${d.startTime}|${d.endTime}`;
}

/** The only failures worth a second try inside one request (see the header comment). */
function isRetriedHere(err: unknown): boolean {
  if (err instanceof WechatApiError) return err.errcode === -1;
  if (err instanceof WechatUpstreamError) return err.kind === 'http_status' && (err.status ?? 0) >= 500;
  return false;
}
