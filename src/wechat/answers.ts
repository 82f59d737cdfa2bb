// Validation of WeChat's answers. Tolerant where WeChat is inconsistent
// (missing errcode, numbers sent as strings and strings as numbers), strict
// where a wrong value would do harm (64-bit counters are exact or rejected).

import { z } from 'zod';
import { WechatApiError, WechatUpstreamError, redactSecrets } from './errors.js';
import type { JsonObject } from './http.js';
import type {
  AccessTokenResult,
  Code2SessionResult,
  PhoneInfo,
  RecentAverage,
  UsageDetail,
  UsagePage,
  WechatEndpoint,
} from './types.js';

/**
 * A 64-bit counter, exactly. Strings are parsed digit for digit; a JSON number
 * is only accepted while it is a safe integer, because beyond 2^53 JSON.parse
 * has already lost the low digits.
 */
const counter = z
  .union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]) // zod's int() is safe-integers only
  .transform((v) => BigInt(v));

const integer = z.union([z.number().int(), z.string().regex(/^-?\d+$/).transform(Number).pipe(z.number().int())]);

/** Ids WeChat sends sometimes as numbers, sometimes as strings. */
const idString = z.union([z.string(), z.number()]).transform(String);

export const phoneInfoSchema: z.ZodType<PhoneInfo> = z.object({
  phoneNumber: z.string().min(1),
  purePhoneNumber: z.string().min(1),
  countryCode: z.union([z.string().min(1), z.number().int().nonnegative()]).transform(String),
  watermark: z.object({ appid: z.string(), timestamp: integer }),
});

export const accessTokenAnswer: z.ZodType<AccessTokenResult> = z
  .object({ access_token: z.string().min(1), expires_in: integer.pipe(z.number().positive()) })
  .transform((a) => ({ accessToken: a.access_token, expiresIn: a.expires_in }));

export const phoneNumberAnswer: z.ZodType<PhoneInfo> = z
  .object({ phone_info: phoneInfoSchema })
  .transform((a) => a.phone_info);

export const code2SessionAnswer: z.ZodType<Code2SessionResult> = z
  .object({ openid: z.string().min(1), session_key: z.string().min(1), unionid: z.string().optional() })
  .transform((a) => ({
    openid: a.openid,
    sessionKey: a.session_key,
    ...(a.unionid ? { unionid: a.unionid } : {}),
  }));

/** An enum WeChat documents as a number; a digit string is accepted too (numbers as strings occur). */
const enumNumber = integer;

const usageDetail: z.ZodType<UsageDetail> = z
  .object({
    pkgId: idString,
    orderId: idString.optional(),
    status: enumNumber,
    startTime: integer,
    endTime: integer,
    all: counter,
    used: counter,
    spuId: idString.optional(),
    skuId: idString.optional(),
    source: enumNumber.optional(),
  })
  .transform(({ orderId, spuId, skuId, source, ...row }) => ({
    ...row,
    ...(orderId !== undefined ? { orderId } : {}),
    ...(spuId !== undefined ? { spuId } : {}),
    ...(skuId !== undefined ? { skuId } : {}),
    ...(source !== undefined ? { source } : {}),
  }));

export const usagePageAnswer: z.ZodType<UsagePage> = z
  .object({
    all: counter,
    effectiveUse: counter,
    effectiveAll: counter.optional(),
    startServiceTime: integer.optional(),
    endServiceTime: integer.optional(),
    total: integer.pipe(z.number().nonnegative()),
    // WeChat leaves the list out (or null) when there is nothing on this page.
    detailList: z.array(usageDetail).nullish(),
  })
  .transform(({ effectiveAll, startServiceTime, endServiceTime, detailList, ...page }) => ({
    ...page,
    ...(effectiveAll !== undefined ? { effectiveAll } : {}),
    ...(startServiceTime !== undefined ? { startServiceTime } : {}),
    ...(endServiceTime !== undefined ? { endServiceTime } : {}),
    detailList: detailList ?? [],
  }));

/** `averageData` is a JSON number (a string is accepted too); exact, or refused beyond 2^53. */
export const recentAverageAnswer: z.ZodType<RecentAverage> = z
  .object({ averageData: counter })
  .transform((a) => ({ monthlyAverage: a.averageData }));

/**
 * Throws WechatApiError for a non-zero errcode. A missing (or null) errcode
 * is success: stable_token and jscode2session leave it out.
 */
export function assertNoErrcode(endpoint: WechatEndpoint, answer: JsonObject, secrets: ReadonlyArray<string | undefined>): void {
  const raw = answer.errcode;
  if (raw === undefined || raw === null) return;
  const errcode = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof errcode !== 'number' || !Number.isInteger(errcode)) {
    throw new WechatUpstreamError(endpoint, 'bad_json', { detail: 'errcode is not an integer' });
  }
  if (errcode === 0) return;
  const errmsg = typeof answer.errmsg === 'string' ? redactSecrets(answer.errmsg, secrets) : '';
  throw new WechatApiError(endpoint, errcode, errmsg);
}

/** A success answer of the wrong shape is an upstream failure; the message names fields, never values. */
export function parseAnswer<T>(endpoint: WechatEndpoint, schema: z.ZodType<T>, answer: JsonObject): T {
  const result = schema.safeParse(answer);
  if (result.success) return result.data;
  const fields = [...new Set(result.error.issues.map((i) => i.path.join('.') || '(root)'))].slice(0, 5);
  throw new WechatUpstreamError(endpoint, 'bad_json', { detail: `unexpected answer shape at ${fields.join(', ')}` });
}

/** The watermark is not checked by the client (it does not know which app the caller expects). */
export function checkWatermark(info: Pick<PhoneInfo, 'watermark'>, expectedAppid: string): boolean {
  return info.watermark.appid === expectedAppid;
}
