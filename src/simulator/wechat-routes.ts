import type { IncomingHttpHeaders } from 'node:http';
import { withApiSecurity } from './api-security.js';
import { errmsgSuffix, wechatError, type ErrmsgStyle } from './errors.js';
import { jsonResponse, parseJsonObject, type SimResponse } from './http-util.js';
import { newHint, newRid } from './random.js';
import type { SimulatorState } from './state.js';

/**
 * The WeChat paths the gateway calls, each a function from the parsed
 * request to the answer WeChat would give.
 */

export interface WeChatRequest {
  method: string;
  query: URLSearchParams;
  body: string;
  headers?: IncomingHttpHeaders;
}

type Handler = (state: SimulatorState, req: WeChatRequest) => SimResponse;

// WeChat answers with this odd media type on most paths; the adapter must not care.
const WECHAT_JSON = 'application/json; encoding=utf-8';
// ...and with text/plain on these.
const PHONE_NUMBER_TYPE = 'text/plain';
const SESSION_TYPE = 'text/plain';

const PHONE_PATH = '/wxa/business/getuserphonenumber';
const SESSION_PATH = '/sns/jscode2session';

const ok = (value: unknown, contentType = WECHAT_JSON): SimResponse => jsonResponse(200, value, contentType);

const queryParams = (query: URLSearchParams): Record<string, string> => Object.fromEntries(query);

const handlers: Record<string, Handler> = {
  '/cgi-bin/stable_token': (state, req) => {
    if (req.method !== 'POST') return ok(wechatError(43002));
    const body = parseJsonObject(req.body);
    return ok(body ? state.stableToken(body) : wechatError(47001));
  },

  '/cgi-bin/token': (state, req) => ok(state.plainToken(queryParams(req.query))),

  '/wxa/business/getuserphonenumber': (state, req) => {
    const answer = (value: unknown) => ok(value, PHONE_NUMBER_TYPE);
    if (req.method !== 'POST') return answer(wechatError(43002));
    const accessToken = req.query.get('access_token');
    const body = parseJsonObject(req.body);
    if (!body) {
      // A bad token is reported before a bad body, as WeChat checks credentials first.
      const token = state.checkToken(accessToken);
      return answer(wechatError(token.ok ? 47001 : token.errcode));
    }
    return answer(state.getUserPhoneNumber(accessToken, body));
  },

  // Only the query string is read, whatever the method: a POST with its parameters in the body lacks the appid.
  [SESSION_PATH]: (state, req) => ok(state.jscode2session(queryParams(req.query)), SESSION_TYPE),

  '/wxa/charge/usage/get': (state, req) => ok(state.usage(req.query.get('access_token'), queryParams(req.query))),

  '/wxa/charge/usage/get_recent_average': (state, req) =>
    ok(state.recentAverage(req.query.get('access_token'), queryParams(req.query))),
};

export const WECHAT_PATHS: readonly string[] = Object.keys(handlers);

const CONTENT_TYPES: Readonly<Record<string, string>> = { [PHONE_PATH]: PHONE_NUMBER_TYPE, [SESSION_PATH]: SESSION_TYPE };

/** sns paths put a comma before the rid; the phone path gives a hint with its code errors. */
function errmsgStyle(path: string, errcode: number): ErrmsgStyle {
  if (path.startsWith('/sns/')) return 'sns';
  if (path === PHONE_PATH && (errcode === 40029 || errcode === 47001)) return 'hint';
  return 'rid';
}

// Business calls: without an access_token WeChat answers 41001 before looking at anything else.
const ACCESS_TOKEN_PATHS: ReadonlySet<string> = new Set([PHONE_PATH, '/wxa/charge/usage/get', '/wxa/charge/usage/get_recent_average']);

export function wechatHandler(path: string): Handler | undefined {
  if (!Object.hasOwn(handlers, path)) return undefined;
  // API security mode is a layer around the routes that support it (api-security.ts).
  const handler = withApiSecurity(path, handlers[path]!);
  const contentType = CONTENT_TYPES[path] ?? WECHAT_JSON;
  const needsToken = ACCESS_TOKEN_PATHS.has(path);
  return (state, req) => {
    const answer = needsToken && !req.query.get('access_token') ? jsonResponse(200, wechatError(41001), contentType) : handler(state, req);
    return withRequestId(path, answer, state.now());
  };
}

/** What an injected errcode fault answers on this path: WeChat's error, in the path's own media type and errmsg form. */
export function wechatFaultAnswer(path: string, errcode: number, nowMs: number): SimResponse {
  return withRequestId(path, jsonResponse(200, wechatError(errcode), CONTENT_TYPES[path] ?? WECHAT_JSON), nowMs);
}

/**
 * Appends WeChat's request-id suffix to an error answer's errmsg, as real WeChat does on every
 * error, so that nothing downstream can get away with matching on errmsg. Success bodies pass untouched.
 */
function withRequestId(path: string, response: SimResponse, nowMs: number): SimResponse {
  if (!response.body.includes('"errcode"') || response.body.includes('"errcode":0,')) return response;
  const answer = parseJsonObject(response.body);
  const errcode = answer?.errcode;
  if (!answer || typeof errcode !== 'number' || errcode === 0 || typeof answer.errmsg !== 'string') return response;
  const errmsg = answer.errmsg + errmsgSuffix(errmsgStyle(path, errcode), newRid(nowMs), newHint());
  return { ...response, body: JSON.stringify({ ...answer, errmsg }) };
}
