import type { IncomingMessage, ServerResponse } from 'node:http';
import type { YogaServerInstance } from 'graphql-yoga';
import type { GraphQLContext } from '../schema/index.js';
import type { GatewayServerContext } from './context.js';
import { sendJson } from './responses.js';

// Large enough for any legitimate document here (the legacy flow's encryptedData is a few KB).
export const MAX_BODY_BYTES = 64 * 1024;

type Yoga = YogaServerInstance<GatewayServerContext, GraphQLContext>;

/**
 * A body with a declared length (Node stops reading at it) goes straight to yoga's Node adapter,
 * without a copy of body and headers here. A chunked body declares nothing: it is read here with
 * a cap, so an endless one is cut off at the limit, then handed to yoga's fetch API. Either way
 * the response is written here, so an error thrown before yoga's own handling (a Host header
 * that makes no URL, say) reaches this server's masked 500 and log, not the adapter's stack dump.
 */
export async function serveGraphQL(yoga: Yoga, req: IncomingMessage, res: ServerResponse, context: GatewayServerContext & { requestId: string }) {
  const declared = req.headers['content-length'];
  if (Number(declared ?? 0) > MAX_BODY_BYTES) return tooLarge(req, res, context.requestId);
  // Any Transfer-Encoding is read here with the cap: a lenient parser (--insecure-http-parser) reads
  // a chunked body even beside a Content-Length, and yoga's own cap is off (bodyCapped below).
  const chunked = req.headers['transfer-encoding'] !== undefined || (declared === undefined && req.method !== 'GET' && req.method !== 'HEAD');
  if (!chunked) {
    const response = await yoga.handleNodeRequestAndResponse(req, res, context);
    // yoga answers a body cut short with a 400 of its own; its client is not there to read it.
    if (clientGone(req)) throw new Error('aborted');
    return sendResponse(res, response);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return tooLarge(req, res, context.requestId);
    chunks.push(chunk);
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'transfer-encoding' || name === 'content-length') continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  // GraphQL bodies here are JSON or form text (no uploads), so a string is exact.
  const init: RequestInit = { method: req.method ?? 'POST', headers, body: Buffer.concat(chunks).toString('utf8') };
  sendResponse(res, await yoga.fetch(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, init, context));
}

/** The client went away (or was cut off as too slow) before its whole request arrived. */
export function clientGone(req: IncomingMessage): boolean {
  return !req.complete && (req.destroyed || !req.socket.writable);
}

async function sendResponse(res: ServerResponse, response: Response) {
  const out: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    out[name] = value;
  });
  const cookies = response.headers.getSetCookie?.();
  if (cookies?.length) out['set-cookie'] = cookies;
  res.writeHead(response.status, out);
  res.end(Buffer.from(await response.arrayBuffer()));
}

function tooLarge(req: IncomingMessage, res: ServerResponse, requestId: string) {
  res.setHeader('connection', 'close');
  res.setHeader('x-request-id', requestId);
  sendJson(res, 413, { errors: [{ message: `request body larger than ${MAX_BODY_BYTES} bytes`, extensions: { code: 'REQUEST_TOO_LARGE' } }] });
  req.resume();
}
