import { SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import type { Traced } from '../../src/phone/ports.js';
import type { WechatCallEvent } from '../../src/wechat/index.js';

// Error codes are enum-like (FORBIDDEN, RATE_LIMITED); anything else could carry a value.
export const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** What a failed phase says about its error: its code (RATE_LIMITED) or its class name, never its message. */
function errorLabel(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && ERROR_CODE.test(code)) return code;
  const name = (e as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name) ? name : 'Error';
}

/**
 * Runs a phase of the exchange (rate limit, consent check, claim, WeChat call, settlement) in a
 * child span of the active one, the operation's: where an exchange's time goes, per request.
 */
export function phaseSpans(tracer: Tracer): Traced {
  return (name, work) =>
    tracer.startActiveSpan(name, async (span) => {
      try {
        return await work();
      } catch (e) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorLabel(e) });
        throw e;
      } finally {
        span.end();
      }
    });
}

/**
 * One client span per HTTP attempt to WeChat, recorded when it has ended (the adapter reports
 * attempts, see WechatClientOptions.onCall): under the phase that made the call. Only the
 * endpoint's name, the outcome and WeChat's errcode: never the URL, whose query can carry an
 * access token, nor anything of the body.
 */
export function wechatCallSpans(tracer: Tracer): (e: WechatCallEvent) => void {
  return (e) => {
    const end = performance.now();
    const span = tracer.startSpan(`wechat ${e.endpoint}`, {
      kind: SpanKind.CLIENT,
      // Numbers below the time origin are performance.now() times to OpenTelemetry: sub-millisecond.
      startTime: end - e.ms,
      attributes: {
        'wxphone.wechat.endpoint': e.endpoint,
        'wxphone.wechat.outcome': e.outcome,
        ...(e.errcode !== undefined ? { 'wxphone.wechat.errcode': e.errcode } : {}),
      },
    });
    if (e.outcome !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: e.outcome === 'error' ? `errcode ${e.errcode}` : 'no usable answer' });
    span.end(end);
  };
}
