import type { Plugin } from 'graphql-yoga';
import type { ConsentAudit, RequestConsentLog } from '../../src/consent/index.js';
import type { SessionContext } from '../jwt-session/index.js';
import { requestIdOf } from '../request-id/index.js';

export interface ConsentAuditContext {
  consentLog: RequestConsentLog;
}

export interface ConsentAuditOptions {
  /** The consent log itself (src/consent): hash-chained records, withdrawal, erasure, retention. */
  audit: Pick<ConsentAudit, 'forRequest'>;
}

/**
 * The request side of the consent log: the context carries the log bound to the request's id and
 * to the session's subject (hashed once, when a record first needs it), so every record the
 * request makes names both the same way. After useJwtSession, whose session it reads.
 */
export function useConsentAudit(options: ConsentAuditOptions): Plugin<ConsentAuditContext & Partial<SessionContext>> {
  // One per request, however many operations it carries.
  const logs = new WeakMap<Request, RequestConsentLog>();
  return {
    onContextBuilding({ context, extendContext }) {
      const session = context.session;
      // useJwtSession ends a request without a session before this runs; none here is a wiring error.
      if (!session) throw new Error('useConsentAudit needs the session: put it after useJwtSession');
      let consentLog = logs.get(context.request);
      if (!consentLog) {
        consentLog = options.audit.forRequest({ requestId: requestIdOf(context.request), issuer: session.issuer, subject: session.subject });
        logs.set(context.request, consentLog);
      }
      extendContext({ consentLog });
    },
  };
}
