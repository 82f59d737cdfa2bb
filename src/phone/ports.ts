import type { AdmissionRefusal } from './admission.js';
import type { ExchangeFailure } from './errors.js';

// What the exchange needs from other parts of the gateway, as it needs it. The wiring hands in
// the services that do the work (the rate limiter, the admission gate, metrics); none of them is
// imported here.

/** The limiter's verdict on one request: which limit it is over, and until when. */
export interface RateLimitVerdict {
  scope: 'session' | 'ip';
  limit: number;
  windowMs: number;
  /** How long until the window that refused this request resets. */
  retryInMs: number;
}

/**
 * Per-session and per-address limits on exchanges. `count` counts one request of `subjectKey`
 * (appid and subject hash) from `clientIp`: its verdict (null: go ahead), and `refund`, which takes
 * the request back out of its windows when the gateway itself turns it away at capacity.
 */
export interface ExchangeRateLimit {
  count(subjectKey: string, clientIp: string | null): Promise<{ verdict: RateLimitVerdict | null; refund: () => Promise<void> }>;
}

/**
 * Runs the exchange once the process has room for it (see AdmissionGate); rejects with
 * AdmissionRefusedError when it has none. `release` gives the room back early, for work that
 * turns out to be only waiting for another attempt at its code.
 */
export interface Admission {
  run<T>(work: (release: () => void) => Promise<T>): Promise<T>;
}

/** Counters of exchanges (Prometheus's in the gateway): labels are codes, never anything personal. */
export interface ExchangeCounters {
  exchanges: { inc(labels: { flow: 'exchange' | 'legacy'; outcome: 'disclosed' | 'replayed' | ExchangeFailure['code'] }): void };
  admissionRefused: { inc(labels: { reason: AdmissionRefusal }): void };
}
