import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import type { GatewayConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { openStore, type Store } from './store/db.js';
import { ping } from './store/migrations.js';
import { isStorageUnavailable } from './store/unavailable.js';
import { openCache, type Cache } from './store/cache.js';
import { consentChainStore } from './store/consent-chain/index.js';
import { createDataKeys } from './crypto/keys.js';
import { withTimeout } from './util/timeout.js';
import { createPublicKey } from 'node:crypto';
import { AccessTokenProvider, createWechatClient, isTokenError, logApiSecurityNotices, worstCaseCallMs, type ApiSecurityKeys, type WechatClient } from './wechat/index.js';
import { consoleKeysOf, startSimulator, type RunningSimulator } from './simulator/index.js';
import { ClaimStore } from './phone/claims.js';
import { PhoneService } from './phone/exchange.js';
import { AdmissionGate } from './phone/admission.js';
import { BillingLedger } from './billing/ledger.js';
import { ledgerStatements } from './store/ledger/index.js';
import { Procurement } from './billing/procurement.js';
import { chargeHooks } from './billing/charge-hooks.js';
import { UsageSync } from './billing/usage-sync.js';
import { QuotaService } from './billing/quota.js';
import { QuotaAlerts } from './billing/alerts.js';
import { WechatEvents } from './billing/wechat-events.js';
import { PUSH_PATH_PREFIX, createPushEndpoint } from './wechat/push-endpoint.js';
import { ClientReports } from './billing/client-reports.js';
import { Reconciliation } from './billing/reconciliation.js';
import { ConsentAudit } from './consent/index.js';
import { UsageHistoryService } from './billing/usage-history.js';
import { OutcomeHistoryService } from './phone/outcome-history.js';
import { AuditRecordLookup } from './consent/records-by-id.js';
import { VerificationTokens, jwksResponse } from './binding/index.js';
import { newRequestId, requestIdOf, requestIdOfError, useRequestId, type RequestIdServerContext } from '../plugins/request-id/index.js';
import { createSessionVerifier, SessionError, signSessionToken } from './auth/index.js';
import { useJwtSession } from '../plugins/jwt-session/index.js';
import { useAccessTokens } from '../plugins/access-tokens/index.js';
import { useConsentAudit } from '../plugins/consent-audit/index.js';
import { useRedactedInputEchoes } from '../plugins/redact-input-echoes/index.js';
import { useStorageUnavailable } from '../plugins/storage-unavailable/index.js';
import { localGraphiQL } from '../plugins/graphiql-offline/index.js';
import { usePersistedDocuments, type DocumentStore } from '../plugins/persisted-documents/index.js';
import { LruMap } from './util/lru.js';
import { CSRF_HEADER, useBodyLimit, useHardening, type BodyCappedContext } from '../plugins/hardening/index.js';
import { loadTracing } from '../plugins/tracing/load.js';
import { ExchangeRateLimiter, clientAddress } from './phone/rate-limit.js';
import { consentWithdrawnError } from './phone/errors.js';
import { buildSchema, createLoaders, type GraphQLContext, type Services } from '../schema/index.js';
import { parseInstant } from './util/instant.js';
import { createConsoleRoute, isConsolePath } from '../console/serve.js';

/** What the HTTP layer hands yoga with each request. */
export interface GatewayServerContext extends BodyCappedContext, RequestIdServerContext {
  /** The client's address (see src/phone/rate-limit.ts clientAddress); absent for in-process requests. */
  clientIp?: string | undefined;
}

export interface Gateway {
  config: GatewayConfig;
  yoga: YogaServerInstance<GatewayServerContext, GraphQLContext>;
  services: Services;
  tokens: AccessTokenProvider;
  store: Store;
  cache: Cache;
  metrics: Metrics;
  log: Logger;
  /** Present in sandbox mode: the in-process WeChat simulator. */
  simulator: RunningSimulator | undefined;
  wechatApiBase: string;
  /** Starts the HTTP listener (PORT/HOST from the config unless given). */
  listen(port?: number, host?: string): Promise<{ url: string; server: Server }>;
  close(): Promise<void>;
}

export interface GatewayOverrides {
  log?: Logger;
  /** Wall clock for claims and tokens; tests move it. */
  now?: () => number;
  /** Sees the SQL of every database query (tests count them). */
  onQuery?: (sql: string) => void;
}

// Large enough for any legitimate document here (the legacy flow's encryptedData is a few KB).
const MAX_BODY_BYTES = 64 * 1024;
const PURGE_INTERVAL_MS = 60_000;
// A code lives 5 minutes; its claim is kept long after that only to answer late duplicates.
const CLAIM_RETENTION_MS = 24 * 3600_000;
// What a client is told to wait when the database does not answer: about a restart or a failover.
const RETRY_AFTER_SECONDS = 5;
// How long close() lets requests in flight finish before cutting connections.
const SHUTDOWN_GRACE_MS = 10_000;
// How often quota is re-evaluated for low-quota alerts (between usage syncs too, as charges accrue).
const QUOTA_WATCH_INTERVAL_MS = 60_000;

/** Every timing that must cover a WeChat call, derived from one worst case so they stay consistent. */
export function exchangeTimings(wechat: GatewayConfig['wechat']) {
  const callMs = worstCaseCallMs({ timeoutMs: wechat.timeoutMs, maxRetries: wechat.maxRetries });
  const attemptDeadlineMs = 2 * callMs + 2000; // a token fetch plus the exchange, or an exchange plus its one refresh-and-retry
  return {
    lockTtlMs: callMs + 2000,
    attemptDeadlineMs,
    // Longer than the deadline plus the time to record the outcome, so no takeover races a live attempt.
    leaseMs: attemptDeadlineMs + 10_000,
    duplicateWaitMs: Math.min(attemptDeadlineMs, 10_000),
  };
}

/** Introspection is refused in production (the SDK is generated from the committed SDL instead). */
function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}

/** Wires config → storage, cache, WeChat adapter, token provider, services → yoga. */
export async function createGateway(config: GatewayConfig, overrides: GatewayOverrides = {}): Promise<Gateway> {
  const log = overrides.log ?? createLogger();
  const metrics = createMetrics();
  const now = overrides.now ?? Date.now;

  let simulator: RunningSimulator | undefined;
  let wechatApiBase = config.wechatApiBase;
  if (!wechatApiBase) {
    simulator = await startSimulator({
      port: config.simulatorPort,
      apps: [...config.apps.values()].map((a) => ({
        appid: a.appid,
        secret: a.secret,
        product: a.product,
        subjectType: a.subjectType,
        ...(a.category ? { category: a.category } : {}),
        ...(a.apiSecurity ? { apiSecurity: consoleKeysOf(a.apiSecurity) } : {}),
      })),
    });
    wechatApiBase = simulator.url;
  }
  const apiSecurityKeys = new Map<string, ApiSecurityKeys>();
  for (const a of config.apps.values()) {
    if (!a.apiSecurity) continue;
    // In a sandbox the simulator signs answers with its own platform key, not WeChat's.
    const simulated = simulator?.state.apiSecurity.summary(a.appid);
    apiSecurityKeys.set(a.appid, simulated ? { ...a.apiSecurity, platformKey: createPublicKey(simulated.platformPublicKey) } : a.apiSecurity);
  }

  const opened: { close(): Promise<void> }[] = simulator ? [simulator] : [];
  const closeAll = async () => {
    for (const r of opened.reverse()) await r.close().catch(() => {});
  };
  try {
    const store = await openStore(config.databaseUrl, { preparedStatements: config.databasePreparedStatements, ...(overrides.onQuery ? { onQuery: overrides.onQuery } : {}) });
    opened.push(store);
    const cache = await openCache(config.redisUrl, config.redisKeyPrefix);
    opened.push(cache);

    const tracing = await loadTracing(config.tracing, log);
    const wechat: WechatClient = createWechatClient({
      baseUrl: wechatApiBase,
      timeoutMs: config.wechat.timeoutMs,
      maxRetries: config.wechat.maxRetries,
      sendOpenid: config.wechat.sendOpenid,
      // WeChat compares request timestamps with its own clock: the real one, whatever `now` says.
      apiSecurity: { keysFor: (appid) => apiSecurityKeys.get(appid), onNotice: logApiSecurityNotices(log) },
      onCall: (e) => {
        metrics.wechatCalls.observe({ endpoint: e.endpoint, outcome: e.outcome }, e.ms / 1000);
        tracing?.wechatCall(e);
      },
    });
    opened.push(wechat);

    const timings = exchangeTimings(config.wechat);
    const tokens = new AccessTokenProvider({
      apps: config.apps,
      fetchToken: (app) =>
        config.wechat.tokenEndpoint === 'legacy'
          ? wechat.getToken({ appid: app.appid, secret: app.secret })
          : wechat.getStableToken({ appid: app.appid, secret: app.secret }),
      cache: cache.keyv,
      lock: cache.lock,
      isTokenError,
      now,
      lockTtlMs: timings.lockTtlMs,
      events: {
        fetched: (appid, requestId) => {
          metrics.tokenFetches.inc({ appid });
          log.info({ appid, requestId }, 'fetched a WeChat access token');
        },
        cacheHit: (appid, level) => metrics.tokenCacheHits.inc({ appid, level }),
        invalidated: (appid, requestId) => log.warn({ appid, requestId }, 'WeChat rejected the access token; refreshing once'),
        degraded: (appid, error, requestId) => {
          metrics.tokenDegraded.inc({ appid });
          log.warn({ appid, requestId, err: (error as Error)?.message }, 'shared token cache unavailable; using this process only');
        },
      },
    });

    const keys = createDataKeys(config.dataKey);
    const limiter = new ExchangeRateLimiter({
      ...config.hardening.rateLimit,
      shared: cache.counter,
      log,
      // Counters hold no addresses: a keyed hash of the address (or IPv6 /64) instead.
      addressKey: (bucket) => keys.codeHash('rate-limit-ip', bucket),
      internalPeerNotice: config.production ? 'warn' : 'info',
    });
    const gate = new AdmissionGate(config.hardening.admission);
    metrics.watchAdmission(gate);
    const claims = new ClaimStore(store.db);
    const ledger = new BillingLedger(store.db, ledgerStatements(store.dialect), config.apps, { chargingStartDate: config.billing.chargingStartDate });
    await ledger.registerApps(now());
    const thresholds = (appid: string) => config.apps.get(appid)?.lowQuota ?? config.billing.lowQuota;
    const alerts = new QuotaAlerts({ db: store.db, thresholds, webhookUrl: config.billing.webhookUrl, registry: metrics.registry, log, now });
    let quota: QuotaService;
    const watchQuota = async (appids: readonly string[]) => {
      for (const q of await quota.load(appids)) {
        if (q instanceof Error) continue;
        await alerts.observe({ appid: q.appid, remaining: q.estimatedRemaining, unitsInEffect: q.unitsInEffect, daysLeft: q.daysLeft, exempt: q.exempt });
      }
    };
    const usage = new UsageSync({
      db: store.db,
      ledger,
      cache: cache.keyv,
      lock: cache.lock,
      tokens,
      wechat,
      apps: config.apps,
      log,
      now,
      onSynced: (appid) => watchQuota([appid]).catch((e) => log.warn({ appid, err: (e as Error).message }, 'quota alert evaluation failed')),
    });
    quota = new QuotaService(store.db, config.apps, usage, thresholds, now);
    const wechatEvents = new WechatEvents({
      db: store.db,
      hash: (...parts) => keys.codeHash(...parts),
      sync: (appid, requestId) => usage.sync(appid, requestId),
      notify: (event) => alerts.sendWechatAlert(event),
      registry: metrics.registry,
      log,
      now,
    });
    const servePush = createPushEndpoint({
      settings: (appid) => config.apps.get(appid)?.messagePush,
      accept: (appid, push, requestId) => wechatEvents.accept(appid, push, requestId),
      rejected: (reason) => wechatEvents.rejected(reason),
      now,
      log,
    });
    const reports = new ClientReports(store.db);
    const audit = new ConsentAudit(store.db, keys, config.apps, {
      retentionDays: config.audit.retentionDays,
      now,
      chain: consentChainStore(store.dialect),
      answers: claims,
      erasable: [claims, reports],
      withdrawnError: consentWithdrawnError,
    });
    const verificationTokens = new VerificationTokens({
      db: store.db,
      seal: keys,
      issuer: config.verificationTokens.issuer,
      audience: config.verificationTokens.audience,
      ttlSeconds: config.verificationTokens.ttlSeconds,
      rotationDays: config.verificationTokens.rotationDays,
      now,
    });
    const phone = new PhoneService({
      apps: config.apps,
      claims,
      keys,
      tokens,
      wechat,
      now,
      replayTtlMs: config.replayTtlSeconds * 1000,
      leaseMs: timings.leaseMs,
      attemptDeadlineMs: timings.attemptDeadlineMs,
      duplicateWaitMs: timings.duplicateWaitMs,
      counters: metrics,
      hooks: chargeHooks(ledger),
      audit,
      sendOpenid: config.wechat.sendOpenid,
      ...(tracing ? { span: tracing.phases } : {}),
      rateLimit: limiter,
      admission: gate,
    });
    const services: Services = {
      phone,
      keys,
      apps: config.apps,
      now,
      issuer: config.jwt.issuer,
      audit,
      auditLookup: new AuditRecordLookup(store.db),
      exchangeOutcomes: new OutcomeHistoryService(store.db, config.apps),
      tokens: verificationTokens,
      billing: {
        ledger,
        usage,
        quota,
        reports,
        reconciliation: new Reconciliation(store.db, config.apps),
        procurement: new Procurement(store.db, config.apps, { chargingStartDate: config.billing.chargingStartDate }),
        wechatEvents,
        usageHistory: new UsageHistoryService(store.db, config.apps),
      },
    };
    usage.start(config.billing.syncIntervalSeconds * 1000);
    const watchAll = () =>
      watchQuota([...config.apps.keys()]).catch((e) => log.warn({ err: (e as Error).message }, 'quota alert evaluation failed'));
    void watchAll(); // the gauge and alert state from the start, not a minute later
    const quotaWatch = setInterval(watchAll, QUOTA_WATCH_INTERVAL_MS);
    quotaWatch.unref();
    const auditPurge =
      config.audit.purgeIntervalSeconds > 0
        ? setInterval(() => {
            audit
              .purgeExpired()
              .then((n) => n && log.info({ purged: n }, 'purged consent records past retention (checkpoints left)'))
              .catch((e) => log.warn({ err: (e as Error).message }, 'consent-audit retention purge failed'));
          }, config.audit.purgeIntervalSeconds * 1000)
        : undefined;
    auditPurge?.unref();
    const exportAuth = createSessionVerifier({
      secret: config.jwt.secret,
      jwksUrl: config.jwt.jwksUrl,
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      clockToleranceSeconds: config.jwt.clockToleranceSeconds,
    });

    const sandboxToken =
      config.sandbox && config.jwt.secret
        ? await signSessionToken(
            { secret: config.jwt.secret, issuer: config.jwt.issuer, audience: config.jwt.audience },
            { subject: 'o_sandbox_user', appid: [...config.apps.keys()][0], scopes: ['phone:exchange', 'quota:read'], ttl: '12h' },
          )
        : undefined;

    // GraphiQL (never in production) with every file served from here, not from a CDN.
    const graphiql = config.production ? undefined : localGraphiQL();
    const yoga = createYoga<GatewayServerContext, GraphQLContext>({
      schema: buildSchema(),
      // `session` is added by useJwtSession before any resolver runs.
      context: ({ request, clientIp }) => ({ request, clientIp, services, loaders: createLoaders(services) }) as GraphQLContext,
      // One operation per request (a JSON array is refused with BATCHING_NOT_SUPPORTED), no uploads.
      batching: false,
      multipart: false,
      // A trusted document sent by its id (plugins/persisted-documents) has no `query`.
      extraParamNames: ['documentId'],
      cors: corsOptions(config.hardening.corsOrigins),
      // The HTTP layer caps bodies; useBodyLimit caps in-process requests (yoga.fetch).
      maxRequestBodySize: false,
      plugins: [
        // First: it notes which request an error belongs to before any plugin replaces the error.
        useRequestId(),
        ...(graphiql ? [graphiql.plugin] : []),
        useBodyLimit(MAX_BODY_BYTES),
        // CSRF (before the session check: a cross-site request is refused as such), no batching,
        // GraphQL Armor's document limits, no suggestions; see plugins/hardening.
        useHardening(config.hardening),
        useJwtSession({
          secret: config.jwt.secret,
          jwksUrl: config.jwt.jwksUrl,
          issuer: config.jwt.issuer,
          audience: config.jwt.audience,
          clockToleranceSeconds: config.jwt.clockToleranceSeconds,
        }),
        // After the session: the consent log is bound to its subject.
        useAccessTokens({ tokens }),
        useConsentAudit({ audit }),
        usePersistedDocuments({
          trusted: trustedDocuments(),
          mode: config.hardening.trustedDocuments,
          ...(config.hardening.persistedQueries ? { store: persistedQueryStore(cache) } : {}),
        }),
        useRedactedInputEchoes(),
        useStorageUnavailable({
          retryAfterSeconds: RETRY_AFTER_SECONDS,
          onUnavailable: (e, context) =>
            log.warn({ requestId: requestIdOf(context.request), err: (e as Error)?.message }, 'storage unavailable: answered 503 SERVICE_UNAVAILABLE'),
        }),
        ...(config.production ? [useNoIntrospection()] : []),
        ...(tracing?.plugins ?? []),
      ],
      graphiql: config.production ? false : { title: 'wxphone-gateway', ...(sandboxToken ? { headers: JSON.stringify({ Authorization: `Bearer ${sandboxToken}` }) } : {}) },
      ...(graphiql ? { renderGraphiQL: graphiql.render } : {}),
      landingPage: false,
      // isDev would put original messages and stacks in responses whenever NODE_ENV=development.
      maskedErrors: { isDev: false },
      logging: {
        debug: (...args) => log.debug({ yoga: args.map(String) }),
        info: (...args) => log.info({ yoga: args.map(String) }),
        warn: (...args) => log.warn({ yoga: args.map(String) }),
        // Unexpected errors reach here with their stack; the message never holds request data.
        error: (...args) =>
          log.error(
            { requestId: args.map(requestIdOfError).find(Boolean), err: args.map((a) => (a instanceof Error ? { name: a.name, message: a.message } : String(a))) },
            'graphql error',
          ),
      },
    });

    const purge = setInterval(() => {
      const t = now();
      Promise.all([claims.purgeExpiredAnswers(t), claims.purgeOldClaims(t - CLAIM_RETENTION_MS), wechatEvents.purge()]).catch((e) =>
        log.warn({ err: (e as Error).message }, 'purging expired replay answers, old claims or old pushed events failed'),
      );
    }, PURGE_INTERVAL_MS);
    purge.unref();

    let httpServer: Server | undefined;
    // The operations console (console/): static files; it talks to /graphql like any client.
    const serveConsole = createConsoleRoute();
    const handler = async (req: IncomingMessage, res: ServerResponse, requestId: string) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health') return sendText(res, 200, 'ok\n');
      if (path === '/ready') {
        const checks = await readiness(store, cache);
        return sendJson(res, checks.ok ? 200 : 503, checks);
      }
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        return res.end(await metrics.registry.metrics());
      }
      if (path === '/.well-known/jwks.json') {
        const r = await jwksResponse(verificationTokens);
        res.writeHead(r.status, r.headers);
        return res.end(r.body);
      }
      if (path === '/audit/export.ndjson') return exportAudit(req, res);
      if (path?.startsWith(PUSH_PATH_PREFIX)) return servePush(req, res, requestId);
      if (path && isConsolePath(path)) return serveConsole(req, res, path);

      return serveGraphQL(yoga, req, res, {
        clientIp: clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], config.hardening.trustProxyHops),
        requestId,
        bodyCapped: true,
      });
    };
    /** NDJSON export of consent records for internal tools: `Authorization: Bearer` with audit:read. */
    const exportAudit = async (req: IncomingMessage, res: ServerResponse) => {
      const header = req.headers.authorization ?? '';
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      let session;
      try {
        if (!m) throw new SessionError('missing', 'missing bearer session token');
        session = await exportAuth(m[1]!);
      } catch (e) {
        res.setHeader('www-authenticate', 'Bearer realm="wxphone"');
        return sendJson(res, 401, { errors: [{ message: e instanceof SessionError ? e.message : 'unauthenticated', extensions: { code: 'UNAUTHENTICATED' } }] });
      }
      if (!session.scopes.has('audit:read')) return sendJson(res, 403, { errors: [{ message: 'the export needs the audit:read scope', extensions: { code: 'FORBIDDEN' } }] });
      const q = new URL(req.url ?? '/', 'http://gateway').searchParams;
      const appid = q.get('appid') ?? '';
      if (!config.apps.has(appid)) return sendJson(res, 400, { errors: [{ message: 'appid must name an app this gateway serves' }] });
      const time = (name: string) => {
        const v = q.get(name);
        if (v === null) return null;
        try {
          return parseInstant(v);
        } catch {
          throw new Error(`${name} must be an ISO 8601 date and time with a zone`);
        }
      };
      let from: number | null;
      let to: number | null;
      try {
        from = time('from');
        to = time('to');
      } catch (e) {
        return sendJson(res, 400, { errors: [{ message: (e as Error).message }] });
      }
      const subject = q.get('subject');
      const filter = {
        appid,
        subjectHash: subject ? audit.subjectHashOf(config.jwt.issuer, subject) : q.get('subjectHash'),
        purpose: q.get('purpose'),
        from,
        to,
      };
      // The first line is read before the status is sent, so a database that does not answer is a 503, not a broken 200.
      const lines = audit.exportNdjson(filter);
      let next = await lines.next();
      res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'content-disposition': `attachment; filename="consent-${appid}.ndjson"` });
      let gone = false;
      res.once('close', () => (gone = true));
      try {
        for (; !next.done; next = await lines.next()) {
          if (gone) return void (await lines.return(undefined));
          if (!res.write(next.value)) await new Promise((r) => (res.once('drain', r), res.once('close', r)));
        }
        res.end();
      } catch (e) {
        // A cut-off export must not look complete: break the connection instead of ending it.
        log.warn({ err: (e as Error).message, appid }, 'consent export failed mid-stream');
        res.destroy(e as Error);
      }
    };

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
          ? ['408 Request Timeout', 'REQUEST_TIMEOUT', `request not received within ${(current ? config.hardening.http.requestTimeoutMs : config.hardening.http.headersTimeoutMs) / 1000} s`]
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? ['431 Request Header Fields Too Large', 'BAD_REQUEST', 'request headers too large']
            : ['400 Bad Request', 'BAD_REQUEST', 'malformed HTTP request'];
      const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
      const id = current ? `x-request-id: ${current.requestId}\r\n` : '';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n${id}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };

    return {
      config,
      yoga,
      services,
      tokens,
      store,
      cache,
      metrics,
      log,
      simulator,
      wechatApiBase,
      async listen(port = config.port, host = config.host) {
        const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = config.hardening.http;
        // Node checks the two request deadlines every connectionsCheckingInterval (30 s by default,
        // which let a slow client hold a socket half a minute past them).
        httpServer = createServer({ headersTimeout: headersTimeoutMs, requestTimeout: requestTimeoutMs, connectionsCheckingInterval: 1000 }, (req, res) => {
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
              res.setHeader('retry-after', String(RETRY_AFTER_SECONDS));
              return sendJson(res, 503, { errors: [{ message: "the gateway's storage is unavailable right now; retry in a moment", extensions: { code: 'SERVICE_UNAVAILABLE' } }] });
            }
            log.error({ requestId, err: (e as Error).message }, 'request handler failed');
            if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'internal error' }] });
            else res.end();
          });
        });
        // Longer than the idle timeout of the load balancers usually in front (60 s), so they never
        // send a request on a connection this side is closing.
        httpServer.keepAliveTimeout = keepAliveTimeoutMs;
        httpServer.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
        httpServer.on('error', (e) => log.error({ err: e.message }, 'HTTP server error'));
        await new Promise<void>((resolve, reject) => {
          httpServer!.once('error', reject);
          httpServer!.listen(port, host, () => {
            httpServer!.off('error', reject);
            resolve();
          });
        });
        const address = httpServer.address() as AddressInfo;
        if (simulator) pointSimulatorPushesHere(simulator, config.apps, host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, address.port);
        return { url: `http://${host}:${address.port}/graphql`, server: httpServer };
      },
      async close() {
        clearInterval(purge);
        clearInterval(quotaWatch);
        clearInterval(auditPurge);
        usage.stop();
        if (httpServer) {
          // Stop accepting, let requests in flight finish (an exchange may have spent its code
          // already), then cut what is left.
          const s = httpServer;
          const closed = new Promise<void>((resolve) => s.close(() => resolve()));
          s.closeIdleConnections();
          if (inFlight > 0) {
            await Promise.race([new Promise<void>((r) => (drained = r)), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
          }
          s.closeAllConnections();
          await closed;
        }
        await wechatEvents.flush().catch(() => {});
        await alerts.flush().catch(() => {});
        await tracing?.flush();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/**
 * Sandbox: the in-process simulator stands for WeChat's console too, so the apps configured with
 * messagePush get their alerts pushed here, in safe mode when a key is configured.
 */
function pointSimulatorPushesHere(simulator: RunningSimulator, apps: GatewayConfig['apps'], host: string, port: number) {
  for (const app of apps.values()) {
    const push = app.messagePush;
    if (!push) continue;
    simulator.state.setMessagePush(app.appid, {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/wechat/events/${app.appid}`,
      token: push.token,
      ...(push.aesKey ? { encodingAesKey: push.aesKey.toString('base64').replace(/=+$/, ''), mode: 'safe' as const } : { mode: 'plaintext' as const }),
      format: push.format,
    });
  }
}

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

/**
 * A body with a declared length (Node stops reading at it) goes straight to yoga's Node adapter,
 * without a copy of body and headers here. A chunked body declares nothing: it is read here with
 * a cap, so an endless one is cut off at the limit, then handed to yoga's fetch API. Either way
 * the response is written here, so an error thrown before yoga's own handling (a Host header
 * that makes no URL, say) reaches this server's masked 500 and log, not the adapter's stack dump.
 */
async function serveGraphQL(yoga: Gateway['yoga'], req: IncomingMessage, res: ServerResponse, context: GatewayServerContext & { requestId: string }) {
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
function clientGone(req: IncomingMessage): boolean {
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

/** The SDK's operations by SHA-256 (sdk/persisted-documents.json, written by `npm run schema:print`). */
function trustedDocuments(): Record<string, string> {
  return JSON.parse(readFileSync(new URL('../sdk/persisted-documents.json', import.meta.url), 'utf8')) as Record<string, string>;
}

// How long a document a client registered (APQ) is kept: clients send it again after a miss.
const PERSISTED_QUERY_TTL_MS = 24 * 3600_000;

/**
 * Documents registered by automatic persisted queries: in Redis when configured, so a client's
 * hash is known to every instance behind the load balancer; else a bounded map in this process.
 * A cache that fails is a miss: the client then sends the text again.
 */
function persistedQueryStore(cache: Cache): DocumentStore {
  if (cache.kind === 'memory') {
    const map = new LruMap<string, string>(1000);
    return { get: async (hash) => map.get(hash), set: async (hash, text) => map.set(hash, text) };
  }
  return {
    get: (hash) => cache.keyv.get<string>(`apq:${hash}`).catch(() => undefined),
    set: async (hash, text) => void (await cache.keyv.set(`apq:${hash}`, text, PERSISTED_QUERY_TTL_MS).catch(() => false)),
  };
}

/**
 * CORS for the origins the config allows: a browser page elsewhere may call the API only from
 * those (the answer names the asking origin), with the bearer token in a header, never with
 * cookies (`credentials` stays off: the gateway sets none and reads none).
 */
function corsOptions(origins: GatewayConfig['hardening']['corsOrigins']) {
  const allowed = (origin: string) => origins === '*' || origins.includes(origin.toLowerCase());
  return (request: Request) => {
    const origin = request.headers.get('origin');
    if (!origin || !allowed(origin)) return false;
    return {
      origin,
      credentials: false,
      methods: ['GET', 'POST'],
      allowedHeaders: ['authorization', 'content-type', 'accept', 'x-request-id', CSRF_HEADER, 'traceparent', 'tracestate'],
      exposedHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
    };
  };
}

function sendText(res: ServerResponse, status: number, body: string) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
