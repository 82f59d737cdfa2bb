import { randomUUID } from 'node:crypto';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';

// Accept the caller's id only if it is short and plain: it lands in logs and audit records.
const ACCEPTED = /^[A-Za-z0-9._:-]{1,64}$/;

// Keyed by the request object itself, so every plugin and log line asking about one request
// gets the same id, and nothing outlives the request.
const ids = new WeakMap<Request, string>();
// Errors an operation ended with, by request id: yoga logs the unexpected ones when it masks
// them, with the error in hand but no request.
const errorRequestIds = new WeakMap<object, string>();

/** An id for a request that sent `given` as its `x-request-id`: that one when it is sane, else a new one. */
export function newRequestId(given: string | null | undefined): string {
  return given && ACCEPTED.test(given) ? given : randomUUID();
}

/** The request's id: the one its server gave it (see RequestIdServerContext), else as newRequestId, fixed on first ask. */
export function requestIdOf(request: Request): string {
  let id = ids.get(request);
  if (!id) {
    id = newRequestId(request.headers.get('x-request-id'));
    ids.set(request, id);
  }
  return id;
}

/**
 * Set by an HTTP server that named the request before yoga saw it (to log a client that hung up
 * mid-body, say): yoga's request then carries the same id.
 */
export interface RequestIdServerContext {
  requestId?: string;
}

/** The id of the request whose operation ended with `error` (a GraphQL error, or the error it wraps). */
export function requestIdOfError(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? errorRequestIds.get(error) : undefined;
}

/**
 * Gives every request an id. It is on the context (for consent records and the log lines code
 * writes for the request), on yoga's line for an unexpected error (`requestIdOfError`), and echoed
 * in the response header, so a backend can match its call to the gateway's record.
 */
export function useRequestId(): Plugin<{ requestId: string }, RequestIdServerContext> {
  return {
    onRequest({ request, serverContext }) {
      if (serverContext?.requestId) ids.set(request, serverContext.requestId);
    },
    onContextBuilding({ context, extendContext }) {
      extendContext({ requestId: requestIdOf(context.request) });
    },
    onExecute({ args }) {
      const requestId = (args.contextValue as { requestId: string }).requestId;
      return {
        // First of the plugins (see src/app/yoga.ts), so before any replaces an error or yoga masks it.
        onExecuteDone: (payload) =>
          handleStreamOrSingleExecutionResult(payload, ({ result }) => {
            for (const error of result.errors ?? []) {
              errorRequestIds.set(error, requestId);
              if (error.originalError) errorRequestIds.set(error.originalError, requestId);
            }
          }),
      };
    },
    onResponse({ request, response }) {
      response.headers.set('x-request-id', requestIdOf(request));
    },
  };
}
