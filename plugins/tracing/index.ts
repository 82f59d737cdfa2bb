import { context as otelContext, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { currentRequestId } from '../../src/log.js';

export interface TracingOptions {
  /** Where spans go; by default a tracer from the global provider (see ./sdk.ts). */
  tracer?: Tracer;
}

// Error codes are enum-like (FORBIDDEN, RATE_LIMITED); anything else could carry a value.
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * One span per GraphQL operation, from parsing to the result: the operation's type and name
 * (as the executed document declares them), the request id, and ERROR status with the
 * errors' codes when the result has errors. Never the document, variables, results or
 * error messages: they can hold codes, phone numbers and tokens.
 */
export function useTracing(options: TracingOptions = {}): Plugin {
  const tracer = options.tracer ?? trace.getTracer('wxphone-gateway');
  const spans = new WeakMap<object, Span>();
  return {
    instrumentation: {
      async operation({ context }, handle) {
        const parent = otelContext.active();
        const requestId = currentRequestId();
        const span = tracer.startSpan(
          'GraphQL Operation',
          {
            // With no HTTP span around it (no HTTP instrumentation), this is where the request enters the service.
            kind: trace.getSpan(parent) ? SpanKind.INTERNAL : SpanKind.SERVER,
            ...(requestId ? { attributes: { 'wxphone.request_id': requestId } } : {}),
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
