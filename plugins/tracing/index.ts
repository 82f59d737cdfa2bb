import { context as otelContext, propagation, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { requestIdOf } from '../request-id/index.js';
import { ERROR_CODE } from './spans.js';

export interface TracingOptions {
  /** Where spans go; by default a tracer from the global provider (see ./sdk.ts). */
  tracer?: Tracer;
}

const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

/**
 * One span per GraphQL operation, from parsing to the result: the operation's type and name
 * (as the executed document declares them), the request id, and ERROR status with the
 * errors' codes when the result has errors. Never the document, variables, results or
 * error messages: they can hold codes, phone numbers and tokens.
 *
 * The caller's W3C `traceparent` (and `tracestate`) make the operation a child of the caller's
 * span, so a mini program backend's trace goes on into the gateway — unless an HTTP
 * instrumentation already made a server span for the request: then that span is the parent.
 */
export function useTracing(options: TracingOptions = {}): Plugin {
  const tracer = options.tracer ?? trace.getTracer('wxphone-gateway');
  const spans = new WeakMap<object, Span>();
  return {
    instrumentation: {
      async operation({ context, request }, handle) {
        const active = otelContext.active();
        const parent = trace.getSpan(active) ? active : propagation.extract(active, request.headers, headerGetter);
        const requestId = requestIdOf(request);
        const span = tracer.startSpan(
          'GraphQL Operation',
          {
            // With no HTTP span around it (no HTTP instrumentation), this is where the request enters the service.
            kind: trace.getSpan(active) ? SpanKind.INTERNAL : SpanKind.SERVER,
            attributes: { 'wxphone.request_id': requestId },
          },
          parent,
        );
        spans.set(context, span);
        try {
          // Active for the operation, so spans of instrumented libraries (pg, undici) nest under it.
          await otelContext.with(trace.setSpan(parent, span), handle);
        } catch (e) {
          span.setStatus({ code: SpanStatusCode.ERROR });
          throw e;
        } finally {
          span.end();
        }
      },
    },
    onExecute({ args }) {
      const span = spans.get(args.contextValue);
      const operation = span && getOperationAST(args.document, args.operationName);
      if (!operation) return;
      span.setAttribute('graphql.operation.type', operation.operation);
      if (operation.name) span.setAttribute('graphql.operation.name', operation.name.value);
      span.updateName(operation.name ? `${operation.operation} ${operation.name.value}` : operation.operation);
    },
    onExecutionResult({ result, context }) {
      const span = spans.get(context);
      if (!span || !result || Symbol.asyncIterator in result) return;
      const errors = (Array.isArray(result) ? result : [result]).flatMap((r) => r.errors ?? []);
      if (!errors.length) return;
      const codes = [...new Set(errors.map((e) => e.extensions?.code))].filter((c): c is string => typeof c === 'string' && ERROR_CODE.test(c));
      span.setAttribute('graphql.error.count', errors.length);
      if (codes.length) span.setAttribute('graphql.error.codes', codes);
      span.setStatus({ code: SpanStatusCode.ERROR, message: codes.join(' ') || 'GraphQL error' });
    },
  };
}
