import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { APPID_PATTERN } from './appid.js';
import { MessagePushError, openPush, verifyPushUrl, type MessagePushSettings, type OpenedPush, type PushRejection } from './message-push.js';

/**
 * `GET|POST /wechat/events/{appid}`: an app's message-push URL. The GET is the console's URL
 * check; a POST is a message. A message is checked and recorded before WeChat gets its
 * `success` (so a crash or a database outage makes WeChat retry, and a bad signature changes
 * nothing), and whatever is slow runs after the answer: WeChat waits 5 s at most.
 */

export const PUSH_PATH_PREFIX = '/wechat/events/';

// WeChat's pushes are a few hundred bytes; a charge alert well under 1 KB.
const MAX_PUSH_BODY_BYTES = 64 * 1024;

export interface PushEndpointOptions {
  /** The app's message-push settings, or undefined when it has none (404). */
  settings: (appid: string) => MessagePushSettings | undefined;
  /** Records the message; resolves with the work to do after answering. Throws to refuse or to fail. */
  accept: (appid: string, push: OpenedPush, requestId: string) => Promise<{ afterAnswer: () => void }>;
  rejected: (reason: PushRejection | 'too_large') => void;
  now: () => number;
  log: Logger;
}

export function createPushEndpoint(opts: PushEndpointOptions) {
  return async function servePush(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const appid = url.pathname.slice(PUSH_PATH_PREFIX.length);
    const settings = APPID_PATTERN.test(appid) ? opts.settings(appid) : undefined;
    if (!settings) {
      req.resume();
      return answer(res, 404, 'no message push is configured for this app\n', requestId);
    }
    if (req.method !== 'GET' && req.method !== 'POST') {
      req.resume();
      res.setHeader('allow', 'GET, POST');
      return answer(res, 405, 'GET or POST\n', requestId);
    }
    const nowSeconds = Math.floor(opts.now() / 1000);
    try {
      if (req.method === 'GET') {
        req.resume();
        return answer(res, 200, verifyPushUrl(settings, url.searchParams, nowSeconds), requestId);
      }
      const body = await readCapped(req);
      if (body === undefined) {
        opts.rejected('too_large');
        res.setHeader('connection', 'close');
        return answer(res, 413, `body larger than ${MAX_PUSH_BODY_BYTES} bytes\n`, requestId);
      }
      const push = openPush(settings, appid, url.searchParams, body, nowSeconds);
      const { afterAnswer } = await opts.accept(appid, push, requestId);
      answer(res, 200, 'success', requestId);
      afterAnswer();
    } catch (e) {
      if (!(e instanceof MessagePushError)) throw e;
      opts.rejected(e.reason);
      // The reason, never the body, the signatures or the settings.
      opts.log.warn({ appid, requestId, reason: e.reason, err: e.message }, 'WeChat message push refused');
      return answer(res, e.status, `${e.message}\n`, requestId);
    }
  };
}

/** The body, or undefined past the cap (declared or streamed). */
async function readCapped(req: IncomingMessage): Promise<string | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_PUSH_BODY_BYTES) {
    req.resume();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_PUSH_BODY_BYTES) {
      req.resume();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function answer(res: ServerResponse, status: number, text: string, requestId: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'x-request-id': requestId });
  res.end(text);
}
