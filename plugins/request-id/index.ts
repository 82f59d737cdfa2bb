import { randomUUID } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import { withRequestId } from '../../src/log.js';

// Accept the caller's id only if it is short and plain: it lands in logs and audit records.
const ACCEPTED = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Gives every request an id: the caller's `x-request-id` when it is sane, else a new one.
 * It is on the context (for consent records), on every log line written while the request
 * is handled (src/log.ts), and echoed in the response header, so a backend can match its
 * call to the gateway's record.
 */
export function useRequestId(): Plugin<{ requestId: string }> {
  const ids = new WeakMap<Request, string>();
  const idOf = (request: Request) => {
    let id = ids.get(request);
    if (!id) {
      const given = request.headers.get('x-request-id');
      id = given && ACCEPTED.test(given) ? given : randomUUID();
      ids.set(request, id);
    }
    return id;
  };
  return {
    instrumentation: {
      // Wraps the whole request (onRequest to onResponse, execution, yoga's own error logging),
      // unlike any hook, so nothing logged on its behalf misses the id.
      request: ({ request }, handle) => withRequestId(idOf(request), handle),
    },
    onContextBuilding({ context, extendContext }) {
      extendContext({ requestId: idOf(context.request) });
    },
    onResponse({ request, response }) {
      response.headers.set('x-request-id', idOf(request));
    },
  };
}
