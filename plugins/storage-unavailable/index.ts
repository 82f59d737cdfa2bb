import { GraphQLError } from 'graphql';
import { createGraphQLError, handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import { isStorageUnavailable } from '../../src/store/unavailable.js';

export interface StorageUnavailableOptions {
  /** The Retry-After a client gets, in seconds (default 5: about what a database restart or failover takes). */
  retryAfterSeconds?: number;
  /** Told of each field that failed this way, with its context (for a log line with the request id). */
  onUnavailable?: (error: unknown, context: { request: Request }) => void;
}

/**
 * A field that failed because the gateway's storage is unavailable is answered as what it is:
 * `extensions.code: SERVICE_UNAVAILABLE` and `Retry-After`, instead of a masked internal error that
 * a client cannot tell from a bug; HTTP 503 when no field of the answer has data. When other fields
 * do (root fields are nullable, so one failure leaves the rest), the answer stays 200: a client
 * that sees a 5xx throws the partial data away. (The exchange and the legacy decrypt answer a
 * member of their result union instead, see src/phone.) It rewrites the errors before yoga masks
 * the unexpected ones.
 */
export function useStorageUnavailable(options: StorageUnavailableOptions = {}): Plugin {
  const retryAfter = String(options.retryAfterSeconds ?? 5);
  return {
    onExecute({ args }) {
      return {
        onExecuteDone: (payload) =>
          handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
            if (!result.errors?.some((e) => isStorageUnavailable(e.originalError))) return;
            const partial = result.data != null && Object.values(result.data).some((v) => v !== null);
            const errors = result.errors.map((e) => {
              if (!isStorageUnavailable(e.originalError)) return e;
              options.onUnavailable?.(e.originalError, args.contextValue as { request: Request });
              return unavailable(e, retryAfter, partial);
            });
            setResult({ ...result, errors });
          }),
      };
    },
  };
}

function unavailable(e: GraphQLError, retryAfter: string, partial: boolean): GraphQLError {
  const headers = { 'Retry-After': retryAfter };
  return createGraphQLError("the gateway's storage is unavailable right now; retry in a moment", {
    nodes: e.nodes,
    path: e.path,
    extensions: { code: 'SERVICE_UNAVAILABLE', http: partial ? { headers } : { status: 503, headers } },
  });
}
