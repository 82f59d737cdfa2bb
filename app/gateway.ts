import type { Server } from 'node:http';
import type { GatewayConfig } from '../src/config.js';
import { createLogger, type Logger } from '../src/log.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { openStore, type Store } from '../src/store/db.js';
import { openCache, type Cache } from '../src/store/cache.js';
import { consentChainStore } from '../src/store/consent-chain/index.js';
import { ledgerStatements } from '../src/store/ledger/index.js';
import { createDataKeys } from '../src/crypto/keys.js';
import { AccessTokenProvider, createWechatClient, isTokenError, logApiSecurityNotices, worstCaseCallMs, type WechatClient } from '../src/wechat/index.js';
import { createPushEndpoint } from '../src/wechat/push-endpoint.js';
import type { RunningSimulator } from '../src/simulator/index.js';
import { ClaimStore } from '../src/phone/claims.js';
import { PhoneService } from '../src/phone/exchange.js';
import { AdmissionGate } from '../src/phone/admission.js';
import { ExchangeRateLimiter } from '../src/phone/rate-limit.js';
import { consentWithdrawnError } from '../src/phone/errors.js';
import { OutcomeHistoryService } from '../src/phone/outcome-history.js';
import { BillingLedger } from '../src/billing/ledger.js';
import { Procurement } from '../src/billing/procurement.js';
import { chargeHooks } from '../src/billing/charge-hooks.js';
import { UsageSync } from '../src/billing/usage-sync.js';
import { QuotaService } from '../src/billing/quota.js';
import { QuotaAlerts } from '../src/billing/alerts.js';
import { WechatEvents } from '../src/billing/wechat-events.js';
import { ClientReports } from '../src/billing/client-reports.js';
import { Reconciliation } from '../src/billing/reconciliation.js';
import { UsageHistoryService } from '../src/billing/usage-history.js';
import { ConsentAudit } from '../src/consent/index.js';
import { AuditRecordLookup } from '../src/consent/records-by-id.js';
import { VerificationTokens } from '../src/binding/index.js';
import { createSessionVerifier, signSessionToken } from '../src/auth/index.js';
import { loadTracing } from '../plugins/tracing/load.js';
import type { Services } from '../schema/index.js';
import { createConsoleRoute } from '../console/serve.js';
import { createGatewayYoga, type GatewayYoga } from './yoga.js';
import { createAuditExport } from './audit-export.js';
import { createRouter } from './routes.js';
import { createHttpServer } from './http-server.js';
import { startJobs } from './jobs.js';
import { apiSecurityKeysOf, pointSimulatorPushesHere, startSandboxSimulator } from './sandbox.js';

export type { GatewayServerContext } from './context.js';

export interface Gateway {
  config: GatewayConfig;
  yoga: GatewayYoga;
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

/**
 * Wires config → storage, cache, WeChat adapter, token cache, domain services → GraphQL, HTTP routes
 * and background jobs. Wiring only: what each part does lives in its own module.
 */
export async function createGateway(config: GatewayConfig, overrides: GatewayOverrides = {}): Promise<Gateway> {
  const log = overrides.log ?? createLogger();
  const metrics = createMetrics();
  const now = overrides.now ?? Date.now;

  const simulator = config.wechatApiBase ? undefined : await startSandboxSimulator(config);
  const wechatApiBase = config.wechatApiBase ?? simulator!.url;
  const apiSecurityKeys = apiSecurityKeysOf(config, simulator);

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
    const jobs = startJobs({
      claims,
      wechatEvents,
      audit,
      usage,
      watchQuota: () => watchQuota([...config.apps.keys()]),
      syncIntervalMs: config.billing.syncIntervalSeconds * 1000,
      auditPurgeIntervalMs: config.audit.purgeIntervalSeconds * 1000,
      now,
      log,
    });

    const sandboxToken =
      config.sandbox && config.jwt.secret
        ? await signSessionToken(
            { secret: config.jwt.secret, issuer: config.jwt.issuer, audience: config.jwt.audience },
            { subject: 'o_sandbox_user', appid: [...config.apps.keys()][0], scopes: ['phone:exchange', 'quota:read'], ttl: '12h' },
          )
        : undefined;
    const yoga = createGatewayYoga({ config, services, tokens, audit, cache, log, tracing, sandboxToken });
    const exportAudit = createAuditExport({
      config,
      audit,
      log,
      verify: createSessionVerifier({
        secret: config.jwt.secret,
        jwksUrl: config.jwt.jwksUrl,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
        clockToleranceSeconds: config.jwt.clockToleranceSeconds,
      }),
    });
    // The operations console (console/): static files; it talks to /graphql like any client.
    const serveConsole = createConsoleRoute();
    const http = createHttpServer({
      http: config.hardening.http,
      handler: createRouter({ config, store, cache, metrics, verificationTokens, yoga, exportAudit, servePush, serveConsole }),
      metrics,
      log,
    });

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
        const { address, server } = await http.listen(port, host);
        if (simulator) pointSimulatorPushesHere(simulator, config.apps, host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, address.port);
        return { url: `http://${host}:${address.port}/graphql`, server };
      },
      async close() {
        jobs.stop();
        await http.close();
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
