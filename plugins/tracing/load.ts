import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../../src/log.js';
import type { Traced } from '../../src/phone/ports.js';
import type { WechatCallEvent } from '../../src/wechat/index.js';

// The process's own exporter, if this module started it (one per process, however many gateways).
let exporter: { shutdown(): Promise<void>; forceFlush(): Promise<void> } | undefined;

export interface Tracing {
  plugins: Plugin[];
  /** The exchange's phases as child spans of the operation (PhoneServiceOptions.span). */
  phases: Traced;
  /** WeChat calls as client spans (WechatClientOptions.onCall). */
  wechatCall: (e: WechatCallEvent) => void;
  /** Sends the spans batched so far (a gateway closing; the exporter stays for the process). */
  flush(): Promise<void>;
}

/**
 * Tracing when it is on, else undefined. OpenTelemetry is imported only when it is on, so a
 * gateway without tracing loads none of it and pays nothing per request.
 */
export async function loadTracing(tracing: { enabled: boolean }, log: Logger): Promise<Tracing | undefined> {
  if (!tracing.enabled) return undefined;
  const [{ trace }, { useTracing }, { startOtlpExport }, { phaseSpans, wechatCallSpans }] = await Promise.all([
    import('@opentelemetry/api'),
    import('./index.js'),
    import('./sdk.js'),
    import('./spans.js'),
  ]);
  exporter ??= startOtlpExport(log);
  const tracer = trace.getTracer('wxphone-gateway');
  return {
    plugins: [useTracing({ tracer })],
    phases: phaseSpans(tracer),
    wechatCall: wechatCallSpans(tracer),
    flush: async () => {
      await exporter?.forceFlush().catch((e: unknown) => log.warn({ err: (e as Error).message }, 'sending spans failed'));
    },
  };
}

/** Sends the spans still batched and stops exporting (at process shutdown). */
export async function shutdownTracing(): Promise<void> {
  const e = exporter;
  exporter = undefined;
  await e?.shutdown();
}
