import { diag, DiagLogLevel, ProxyTracerProvider, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Logger } from '../../src/log.js';

/** An SDK someone else registered first: one preloaded with `node --import`, or a test's. */
function providerRegistered(): boolean {
  const current = trace.getTracerProvider();
  // Until a provider is registered, the API's proxy delegates to its shared no-op provider.
  return !(current instanceof ProxyTracerProvider) || current.getDelegate() !== new ProxyTracerProvider().getDelegate();
}

/**
 * Batches spans to an OTLP/HTTP collector, configured by OpenTelemetry's own variables
 * (OTEL_EXPORTER_OTLP_ENDPOINT or …_TRACES_ENDPOINT, …_HEADERS, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES). Registers nothing, and returns undefined, when an SDK is
 * already in charge: spans then go to it.
 */
export function startOtlpExport(log: Logger): { shutdown(): Promise<void>; forceFlush(): Promise<void> } | undefined {
  if (providerRegistered()) return undefined;
  // Export failures are otherwise silent. Messages only: the arguments can be whole responses.
  const warn = (message: string) => log.warn({ otel: String(message).slice(0, 300) }, 'OpenTelemetry problem');
  diag.setLogger({ error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
  const provider = new NodeTracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ 'service.name': 'wxphone-gateway' }))
      .merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return provider;
}
