import type { ServerResponse } from 'node:http';

/** What a client is told to wait when the database does not answer: about a restart or a failover. */
export const RETRY_AFTER_SECONDS = 5;

export function sendText(res: ServerResponse, status: number, body: string) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

/** The storage could not be used: what the GraphQL fields answer too (plugins/storage-unavailable). */
export function sendStorageUnavailable(res: ServerResponse) {
  res.setHeader('retry-after', String(RETRY_AFTER_SECONDS));
  sendJson(res, 503, { errors: [{ message: "the gateway's storage is unavailable right now; retry in a moment", extensions: { code: 'SERVICE_UNAVAILABLE' } }] });
}
