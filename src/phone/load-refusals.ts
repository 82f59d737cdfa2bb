import { RateLimitedError } from './errors.js';
import { retryPhrase, type RateLimitVerdict } from './rate-limit.js';

/**
 * Requests turned away for load are RATE_LIMITED, before their code is claimed: the code is
 * unspent and the client may send it again.
 */

/** Over a per-session or per-address limit: which one, and when to retry (whole seconds, at least 1). */
export function overRateLimit(verdict: RateLimitVerdict): RateLimitedError {
  const who = verdict.scope === 'session' ? 'this session' : 'this client address';
  return new RateLimitedError(`too many exchange requests from ${who} (limit ${verdict.limit} per ${verdict.windowMs / 1000} s); ${retryPhrase(verdict.retryInMs)}`);
}

/** The process has no room for the exchange (see AdmissionGate). */
export function atCapacity(): RateLimitedError {
  return new RateLimitedError('the gateway is at capacity right now; the code was not used: retry in a moment');
}
