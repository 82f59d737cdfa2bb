import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { createSessionVerifier, SessionError, type Session, type SessionVerifierOptions } from '../../src/auth/index.js';

export interface SessionContext {
  session: Session;
}

function unauthenticated(message: string) {
  return createGraphQLError(message, {
    extensions: {
      code: 'UNAUTHENTICATED',
      http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="wxphone"' } },
    },
  });
}

/**
 * Verifies the `Authorization: Bearer` session token of every GraphQL request
 * before it is parsed, and puts the session on the context. A missing or bad
 * token ends the request with HTTP 401 and `extensions.code: UNAUTHENTICATED`.
 */
export function useJwtSession(options: SessionVerifierOptions): Plugin<SessionContext> {
  const verify = createSessionVerifier(options);
  const sessions = new WeakMap<Request, Session>();
  return {
    async onRequestParse({ request }) {
      const header = request.headers.get('authorization');
      const match = header ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
      if (!match) throw unauthenticated('missing bearer session token');
      try {
        sessions.set(request, await verify(match[1]!));
      } catch (e) {
        if (e instanceof SessionError) throw unauthenticated(e.message);
        throw e;
      }
    },
    onContextBuilding({ context, extendContext }) {
      const session = sessions.get(context.request);
      // onRequestParse always runs first for HTTP requests; a context without one is a wiring error.
      if (!session) throw unauthenticated('missing bearer session token');
      extendContext({ session });
    },
  };
}
