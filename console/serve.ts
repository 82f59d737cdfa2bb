import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { ASSET_PREFIX, CONSOLE_DIST, contentTypeOf } from './paths.js';

export const CONSOLE_PATH = '/console';

/**
 * The console's own page may run only its own script, load only its own files and talk only
 * to this origin: no inline script or style, no other host, no framing, no form posts.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

// Asset names carry a hash of their content: a new build is new names, so browsers keep these for good.
const IMMUTABLE = 'public, max-age=31536000, immutable';
const ASSET_NAME = /^[A-Za-z0-9_-]+\.(js|css|svg)$/;

export function isConsolePath(path: string): boolean {
  return path === CONSOLE_PATH || path.startsWith(`${CONSOLE_PATH}/`);
}

/**
 * Serves the built console (console/dist) under /console: the page itself never cached (it names
 * the current assets), the hashed assets cached for a year, each precompressed (brotli or gzip
 * as the browser accepts). The page is read on every request, so a rebuild shows at the next load.
 */
export function createConsoleRoute(dist = CONSOLE_DIST) {
  const assets = new Map<string, Buffer>();
  const asset = (file: string): Buffer | undefined => {
    let body = assets.get(file);
    if (!body) {
      try {
        body = readFileSync(join(dist, 'assets', file));
      } catch {
        return undefined;
      }
      assets.set(file, body);
    }
    return body;
  };

  return (req: IncomingMessage, res: ServerResponse, path: string): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
      return void res.end('method not allowed\n');
    }
    if (path === CONSOLE_PATH || path === `${CONSOLE_PATH}/` || path === `${CONSOLE_PATH}/index.html`) {
      let html: Buffer;
      try {
        html = readFileSync(join(dist, 'index.html'));
      } catch {
        res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS });
        return void res.end(
          '<!doctype html><meta charset=utf-8><title>Console not built</title><p>The operations console is not built here: run <code>npm run console:build</code> (<code>npm install</code> and <code>npm start</code> build it). The API works meanwhile.</p>\n',
        );
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'content-length': html.length, ...SECURITY_HEADERS });
      return void res.end(req.method === 'HEAD' ? undefined : html);
    }
    const name = path.startsWith(ASSET_PREFIX) ? path.slice(ASSET_PREFIX.length) : '';
    if (!ASSET_NAME.test(name)) return notFound(res);
    const accepts = String(req.headers['accept-encoding'] ?? '');
    const encoding = /\bbr\b/.test(accepts) ? 'br' : /\bgzip\b/.test(accepts) ? 'gzip' : undefined;
    const body = (encoding && asset(`${name}.${encoding === 'br' ? 'br' : 'gz'}`)) || undefined;
    const plain = body ? undefined : asset(name);
    if (!body && !plain) return notFound(res);
    res.writeHead(200, {
      'content-type': contentTypeOf(name),
      'cache-control': IMMUTABLE,
      vary: 'accept-encoding',
      ...(body ? { 'content-encoding': encoding! } : {}),
      'content-length': (body ?? plain)!.length,
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : (body ?? plain));
  };
}

function notFound(res: ServerResponse) {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS });
  res.end('not found\n');
}
