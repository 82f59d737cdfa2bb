import type { AppConfig } from './config.js';
import { APPID_PATTERN } from './wechat/appid.js';

/** A query named an app this gateway does not serve. */
export class AppNotServedError extends Error {
  override name = 'AppNotServedError';
}

/**
 * The app a query names (an operator's: quotas, packs, reconciliation, the consent log). The
 * appid is caller input: the message names it only when it has an appid's shape.
 */
export function servedApp(apps: ReadonlyMap<string, AppConfig>, appid: string): AppConfig {
  const app = apps.get(appid);
  if (!app) throw new AppNotServedError(`${APPID_PATTERN.test(appid) ? `app ${appid}` : 'that app'} is not served by this gateway`);
  return app;
}
