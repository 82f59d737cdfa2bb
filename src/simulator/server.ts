import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CONTROL_PREFIX, controlHandler } from './control-routes.js';
import { SimInputError } from './errors.js';
import type { Fault } from './faults.js';
import { BodyTooLargeError, htmlResponse, jsonResponse, parseJsonObject, readBody, send } from './http-util.js';
import type { SimulatorState } from './state.js';
import { wechatFaultAnswer, wechatHandler } from './wechat-routes.js';

/**
 * The simulator's HTTP face: routing, fault injection and nothing else; every
 * decision is in SimulatorState. Logs nothing, so no token, code, secret or
 * phone number can leak through it.
 */

export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

const NOT_FOUND = jsonResponse(404, { errcode: -1, errmsg: 'not found' });

export interface SimulatorServer {
  server: Server;
  /** Ends delayed answers and open connections so close() returns at once. */
  shutdown(): Promise<void>;
}

export function createSimulatorServer(state: SimulatorState): SimulatorServer {
  const pendingDelays = new Map<NodeJS.Timeout, () => void>();

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        pendingDelays.delete(timer);
        resolve();
      }, ms);
      pendingDelays.set(timer, resolve);
    });

  async function serveWeChat(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const handler = wechatHandler(path)!;
    state.recordCall(path);
    const fault = state.faults.take(path);
    const body = await readBody(req);
    const request = { method: req.method ?? 'GET', query, body, headers: req.headers };
    if (!fault) return send(res, handler(state, request));

    if (isDelayOnly(fault)) {
      // The call takes effect on arrival, only the answer is late: a client that
      // times out has still used its code, as with a slow WeChat.
      const answer = handler(state, request);
      await sleep(fault.delayMs ?? 0);
      return send(res, answer);
    }
    if (fault.delayMs) await sleep(fault.delayMs);
    if (fault.reset) {
      req.socket.destroy();
      return;
    }
    if (fault.httpStatus !== undefined) return send(res, htmlResponse(fault.httpStatus));
    return send(res, wechatFaultAnswer(path, fault.errcode ?? -1, state.now()));
  }

  async function serveControl(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const route = controlHandler(method, path);
    const raw = await readBody(req);
    if (!route) return send(res, NOT_FOUND);
    if ('notAllowed' in route) return send(res, jsonResponse(405, { error: `${method} not allowed on ${path}` }));
    const body = parseJsonObject(raw);
    if (!body) return send(res, jsonResponse(400, { error: 'body must be a JSON object' }));
    try {
      return send(res, jsonResponse(200, route.handler(state, body, query)));
    } catch (err) {
      if (err instanceof SimInputError || err instanceof RangeError) {
        return send(res, jsonResponse(400, { error: err.message }));
      }
      throw err;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    if (wechatHandler(path)) return serveWeChat(req, res, path, query);
    if (path.startsWith(CONTROL_PREFIX)) return serveControl(req, res, path, query);
    req.resume();
    send(res, NOT_FOUND);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof BodyTooLargeError) return send(res, jsonResponse(413, { error: err.message }));
      // No details: an error message could carry request data.
      send(res, jsonResponse(500, { errcode: -1, errmsg: 'system error' }));
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Must outlast keepAliveTimeout, or Node may drop a reused socket mid-request.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;

  async function shutdown(): Promise<void> {
    for (const [timer, resolve] of pendingDelays) {
      clearTimeout(timer);
      resolve();
    }
    pendingDelays.clear();
    const closed = new Promise<void>((resolve, reject) =>
      server.close((err) => (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolve())),
    );
    server.closeAllConnections();
    await closed;
  }

  return { server, shutdown };
}

function isDelayOnly(fault: Fault): boolean {
  return fault.errcode === undefined && fault.httpStatus === undefined && !fault.reset;
}

