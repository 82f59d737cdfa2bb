import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayConfig } from '../src/config.js';
import type { Logger } from '../src/log.js';
import type { Metrics } from '../src/metrics.js';
import { isStorageUnavailable } from '../src/store/unavailable.js';
import { newRequestId } from '../plugins/request-id/index.js';
import { clientGone } from './serve-graphql.js';
import { sendJson, sendStorageUnavailable } from './responses.js';

// How long close() lets requests in flight finish before cutting connections.
const SHUTDOWN_GRACE_MS = 10_000;

export interface HttpServer {
  listen(port: number, host: string): Promise<{ address: AddressInfo; server: Server }>;
  /** Stops accepting, lets requests in flight finish (an exchange may have spent its code already) for a while, then cuts what is left. */
  close(): Promise<void>;
}

/**
 * The gateway's HTTP server: the deadlines a client must meet (headers, whole request, idle), an id
 * for every request before anything reads it, and what becomes of a request whose handler fails —
 * a client gone is no news, storage down is a 503, anything else a masked 500.
 */
export function createHttpServer(deps: {
  http: GatewayConfig['hardening']['http'];
  handler: (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<unknown>;
  metrics: Metrics;
  log: Logger;
}): HttpServer {
  const { http, handler, metrics, log } = deps;
  let server: Server | undefined;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  // The request a connection is still receiving, so a client too slow with its body is told which request timed out.
  const receiving = new WeakMap<Socket, { requestId: string; res: ServerResponse }>();
  // Answered 408 already (and counted): its handler's read then fails, and that is no news.
  const timedOut = new WeakSet<ServerResponse>();

  /**
   * What Node would do for a request it could not read (a 408 for a deadline, a 400 for bytes that
   * are not HTTP), plus a count and a line: slow clients are a symptom operators should see.
   */
  const answerClientError = (err: NodeJS.ErrnoException, socket: Socket) => {
    const current = receiving.get(socket);
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      const phase = current ? 'body' : 'headers';
      metrics.requestTimeouts.inc({ phase });
      if (current) timedOut.add(current.res);
      log.info({ requestId: current?.requestId, phase }, 'client too slow: request not received in time, answered 408');
    } else if (err.code === 'ECONNRESET' || !socket.writable) {
      return void socket.destroy();
    }
    if (!socket.writable || current?.res.headersSent) return void socket.destroy();
    const [status, code, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['408 Request Timeout', 'REQUEST_TIMEOUT', `request not received within ${(current ? http.requestTimeoutMs : http.headersTimeoutMs) / 1000} s`]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? ['431 Request Header Fields Too Large', 'BAD_REQUEST', 'request headers too large']
          : ['400 Bad Request', 'BAD_REQUEST', 'malformed HTTP request'];
    const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
    const id = current ? `x-request-id: ${current.requestId}\r\n` : '';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n${id}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    inFlight += 1;
    const requestId = newRequestId(req.headers['x-request-id'] as string | undefined);
    receiving.set(req.socket, { requestId, res });
    req.once('end', () => receiving.delete(req.socket));
    res.once('close', () => {
      receiving.delete(req.socket);
      inFlight -= 1;
      if (inFlight === 0) drained?.();
    });
    handler(req, res, requestId).catch((e) => {
      if (clientGone(req)) {
        // The client hung up (or was cut off as too slow) before its request was all here:
        // nothing went wrong on this side, and there is nobody to answer.
        if (!timedOut.has(res)) {
          metrics.clientAborts.inc();
          log.info({ requestId, err: (e as Error).message }, 'client went away before its request was received');
        }
        return void res.destroy();
      }
      if (isStorageUnavailable(e) && !res.headersSent) {
        log.warn({ requestId, err: (e as Error).message }, 'storage unavailable: answered 503 SERVICE_UNAVAILABLE');
        return sendStorageUnavailable(res);
      }
      log.error({ requestId, err: (e as Error).message }, 'request handler failed');
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'internal error' }] });
      else res.end();
    });
  };

  return {
    async listen(port, host) {
      // Node checks the two request deadlines every connectionsCheckingInterval (30 s by default,
      // which let a slow client hold a socket half a minute past them).
      const s = createServer({ headersTimeout: http.headersTimeoutMs, requestTimeout: http.requestTimeoutMs, connectionsCheckingInterval: 1000 }, onRequest);
      server = s;
      // Longer than the idle timeout of the load balancers usually in front (60 s), so they never
      // send a request on a connection this side is closing.
      s.keepAliveTimeout = http.keepAliveTimeoutMs;
      s.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
      s.on('error', (e) => log.error({ err: e.message }, 'HTTP server error'));
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, host, () => {
          s.off('error', reject);
          resolve();
        });
      });
      return { address: s.address() as AddressInfo, server: s };
    },
    async close() {
      const s = server;
      if (!s) return;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((r) => (drained = r)), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
      }
      s.closeAllConnections();
      await closed;
    },
  };
}
