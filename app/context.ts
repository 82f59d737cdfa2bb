import type { BodyCappedContext } from '../plugins/hardening/index.js';
import type { RequestIdServerContext } from '../plugins/request-id/index.js';

/** What the HTTP layer hands yoga with each request. */
export interface GatewayServerContext extends BodyCappedContext, RequestIdServerContext {
  /** The client's address (see src/phone/rate-limit.ts clientAddress); absent for in-process requests. */
  clientIp?: string | undefined;
}
