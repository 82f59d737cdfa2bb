import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../src/config.js';
import type { Metrics } from '../src/metrics.js';
import type { Store } from '../src/store/db.js';
import type { Cache } from '../src/store/cache.js';
import { ping } from '../src/store/migrations.js';
import { withTimeout } from '../src/util/timeout.js';
import { jwksResponse, type VerificationTokens } from '../src/binding/index.js';
import { PUSH_PATH_PREFIX } from '../src/wechat/push-endpoint.js';
import { clientAddress } from '../src/phone/rate-limit.js';
import { isConsolePath } from '../console/serve.js';
import type { GatewayYoga } from './yoga.js';
import { serveGraphQL } from './serve-graphql.js';
import { sendJson, sendText } from './responses.js';

type Route = (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<unknown> | unknown;

export interface RouterDeps {
  config: GatewayConfig;
  store: Store;
  cache: Cache;
  metrics: Metrics;
  verificationTokens: VerificationTokens;
  yoga: GatewayYoga;
  exportAudit: (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;
  servePush: Route;
  serveConsole: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<unknown> | unknown;
}

/** Every HTTP endpoint by path; anything else is GraphQL (and GraphiQL outside production). */
export function createRouter(d: RouterDeps): (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<unknown> {
  return async (req, res, requestId) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/health') return sendText(res, 200, 'ok\n');
    if (path === '/ready') {
      const checks = await readiness(d.store, d.cache);
      return sendJson(res, checks.ok ? 200 : 503, checks);
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': d.metrics.registry.contentType });
      return res.end(await d.metrics.registry.metrics());
    }
    if (path === '/.well-known/jwks.json') {
      const r = await jwksResponse(d.verificationTokens);
      res.writeHead(r.status, r.headers);
      return res.end(r.body);
    }
    if (path === '/audit/export.ndjson') return d.exportAudit(req, res);
    if (path.startsWith(PUSH_PATH_PREFIX)) return d.servePush(req, res, requestId);
    if (isConsolePath(path)) return d.serveConsole(req, res, path);
    return serveGraphQL(d.yoga, req, res, {
      clientIp: clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], d.config.hardening.trustProxyHops),
      requestId,
      bodyCapped: true,
    });
  };
}

/** `/ready`: 200 only when the database and the cache both answer within a second. */
async function readiness(store: Store, cache: Cache) {
  const check = async (f: () => Promise<void>) => {
    try {
      await withTimeout(f(), 1000);
      return 'ok';
    } catch {
      return 'unavailable';
    }
  };
  const [database, cacheState] = await Promise.all([check(() => ping(store.db)), check(() => cache.ping())]);
  return { ok: database === 'ok' && cacheState === 'ok', database, cache: cacheState, cacheKind: cache.kind };
}
