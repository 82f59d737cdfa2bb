import type { Session } from '../plugins/jwt-session/verify.js';
import type { PhoneService } from '../src/phone/service.js';

/** What resolvers may use: the verified session and the domain services (no I/O clients directly). */
export interface Services {
  phone: PhoneService;
}

export interface GraphQLContext {
  request: Request;
  session: Session;
  services: Services;
}
