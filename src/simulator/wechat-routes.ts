import type { IncomingHttpHeaders } from 'node:http';
import { withApiSecurity } from './api-security.js';
import { wechatError } from './errors.js';
import { jsonResponse, parseJsonObject, type SimResponse } from './http-util.js';
import type { SimulatorState } from './state.js';

/**
 * The WeChat paths of wechat-api.md §1–4, each a function from the parsed
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
// ...and with text/plain on this one.
const PHONE_NUMBER_TYPE = 'text/plain';

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

  '/sns/jscode2session': (state, req) => ok(state.jscode2session(queryParams(req.query))),

  '/wxa/charge/usage/get': (state, req) => ok(state.usage(req.query.get('access_token'), queryParams(req.query))),

  '/wxa/charge/usage/get_recent_average': (state, req) =>
    ok(state.recentAverage(req.query.get('access_token'), queryParams(req.query))),
};

export const WECHAT_PATHS: readonly string[] = Object.keys(handlers);

// API security mode is a layer around the routes that support it (api-security.ts).
const secured: Record<string, Handler> = Object.fromEntries(Object.entries(handlers).map(([path, h]) => [path, withApiSecurity(path, h)]));

export function wechatHandler(path: string): Handler | undefined {
  return Object.hasOwn(secured, path) ? secured[path] : undefined;
}
