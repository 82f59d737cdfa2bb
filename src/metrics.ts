import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics. Labels are bounded and never personal: endpoint names,
 * outcome codes and appids (a public identifier), never codes, numbers or tokens.
 */
export function createMetrics() {
  const registry = new Registry();
  // Read at scrape time, so the exchange path does not pay for the gauge.
  let admission: { inFlight: number; waiting: number } | undefined;
  collectDefaultMetrics({ register: registry, prefix: 'wxphone_process_' });
  return {
    registry,
    exchanges: new Counter({
      name: 'wxphone_exchanges_total',
      help: 'Phone-number exchanges by flow and outcome (disclosed, replayed, or an ExchangeErrorCode).',
      labelNames: ['flow', 'outcome'] as const,
      registers: [registry],
    }),
    wechatCalls: new Histogram({
      name: 'wxphone_wechat_call_seconds',
      help: 'WeChat API call latency by endpoint and outcome.',
      labelNames: ['endpoint', 'outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    tokenFetches: new Counter({
      name: 'wxphone_access_token_fetches_total',
      help: 'Access tokens fetched from WeChat, per app.',
      labelNames: ['appid'] as const,
      registers: [registry],
    }),
    tokenCacheHits: new Counter({
      name: 'wxphone_access_token_cache_hits_total',
      help: 'Access tokens served from cache, by level (process or shared).',
      labelNames: ['appid', 'level'] as const,
      registers: [registry],
    }),
    admissionRefused: new Counter({
      name: 'wxphone_exchange_admission_refused_total',
      help: 'Exchanges refused (RATE_LIMITED, code unspent) because this process was at capacity: queue_full or wait_timeout.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    exchangesInFlight: new Gauge({
      name: 'wxphone_exchanges_in_flight',
      help: 'Exchanges this process is running (state=running) or holding at its admission gate (state=waiting).',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        if (!admission) return;
        this.set({ state: 'running' }, admission.inFlight);
        this.set({ state: 'waiting' }, admission.waiting);
      },
    }),
    watchAdmission(gate: { inFlight: number; waiting: number }) {
      admission = gate;
    },
    requestTimeouts: new Counter({
      name: 'wxphone_http_request_timeouts_total',
      help: 'Connections closed because the client did not send its request in time (408 where it could still be sent), by what was missing: headers or body.',
      labelNames: ['phase'] as const,
      registers: [registry],
    }),
    clientAborts: new Counter({
      name: 'wxphone_http_client_aborts_total',
      help: 'Requests whose client went away before the whole request was received.',
      registers: [registry],
    }),
    tokenDegraded: new Counter({
      name: 'wxphone_access_token_cache_errors_total',
      help: 'Shared token cache or lock failures (tokens fell back to per-process single-flight).',
      labelNames: ['appid'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
