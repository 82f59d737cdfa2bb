import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';

/** Small HTTP helpers for the simulator: no framework, nothing but node:http. */

export interface SimResponse {
  status: number;
  contentType: string;
  body: string;
  /** More headers (API security mode's Wechatmp-*). */
  headers?: Readonly<Record<string, string>>;
}

export const MAX_BODY_BYTES = 1024 * 1024;

export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError(`body larger than ${MAX_BODY_BYTES} bytes`));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function jsonResponse(status: number, value: unknown, contentType = 'application/json'): SimResponse {
  return { status, contentType, body: JSON.stringify(value) };
}

/** What a proxy in front of WeChat answers when things go wrong: HTML, not JSON. */
export function htmlResponse(status: number): SimResponse {
  const title = `${status} ${STATUS_CODES[status] ?? 'Error'}`;
  return {
    status,
    contentType: 'text/html',
    body: `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
  };
}

export function send(res: ServerResponse, response: SimResponse): void {
  // The client may have given up (timeout, reset fault) while we waited.
  if (res.destroyed || res.writableEnded || res.socket?.destroyed) return;
  res.writeHead(response.status, {
    ...response.headers,
    'Content-Type': response.contentType,
    'Content-Length': Buffer.byteLength(response.body),
  });
  res.end(response.body);
}

/** Parses a JSON body; an empty body is an empty object. Undefined when it is not a JSON object. */
export function parseJsonObject(body: string): Record<string, unknown> | undefined {
  if (body.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(body);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
