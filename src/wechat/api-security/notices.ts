import type { Logger } from '../../log.js';
import type { ApiSecurityNotice } from './transport.js';

const DEPRECATION_NOTICE_EVERY_MS = 3_600_000;

/**
 * Log lines for API security mode: a refused answer each time (each one cost a user an
 * exchange), a certificate rotation once an hour per app (WeChat signs every answer with both
 * certificates for the whole overlap).
 */
export function logApiSecurityNotices(log: Logger, now: () => number = Date.now): (n: ApiSecurityNotice) => void {
  const lastDeprecationNotice = new Map<string, number>();
  return (n) => {
    if (n.kind === 'answer_refused') {
      log.warn(
        { appid: n.appid, reason: n.reason, serial: n.serial },
        "refused WeChat's answer in API security mode (platform signature, certificate number or timestamp did not check out); the exchange's outcome is unknown",
      );
      return;
    }
    const last = lastDeprecationNotice.get(n.appid);
    if (last !== undefined && now() - last < DEPRECATION_NOTICE_EVERY_MS) return;
    lastDeprecationNotice.set(n.appid, now());
    log.warn(
      { appid: n.appid, serial: n.serial, newSerial: n.newSerial },
      "WeChat's platform certificate configured for this app is about to expire: download the new one (API安全) and set apiSecurity.platformCertificate and platformCertificateSn",
    );
  };
}
