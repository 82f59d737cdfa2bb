import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../../src/log.js';

// The process's own exporter, if this module started it (one per process, however many gateways).
let exporter: { shutdown(): Promise<void> } | undefined;

/**
 * The tracing plugin when tracing is on, else nothing. OpenTelemetry is imported only when
 * it is on, so a gateway without tracing loads none of it and pays nothing per request.
 */
export async function tracingPlugins(tracing: { enabled: boolean }, log: Logger): Promise<Plugin[]> {
  if (!tracing.enabled) return [];
  const [{ useTracing }, { startOtlpExport }] = await Promise.all([import('./index.js'), import('./sdk.js')]);
  exporter ??= startOtlpExport(log);
  return [useTracing()];
}

/** Sends the spans still batched and stops exporting (at process shutdown). */
export async function shutdownTracing(): Promise<void> {
  const e = exporter;
  exporter = undefined;
  await e?.shutdown();
}
