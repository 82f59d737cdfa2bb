import { createPublicKey } from 'node:crypto';
import type { GatewayConfig } from '../src/config.js';
import type { ApiSecurityKeys } from '../src/wechat/index.js';
import { consoleKeysOf, startSimulator, type RunningSimulator } from '../src/simulator/index.js';

/** Sandbox mode: the WeChat simulator in this process, with every configured app registered. */
export async function startSandboxSimulator(config: GatewayConfig): Promise<RunningSimulator> {
  return startSimulator({
    port: config.simulatorPort,
    apps: [...config.apps.values()].map((a) => ({
      appid: a.appid,
      secret: a.secret,
      product: a.product,
      subjectType: a.subjectType,
      ...(a.category ? { category: a.category } : {}),
      ...(a.apiSecurity ? { apiSecurity: consoleKeysOf(a.apiSecurity) } : {}),
    })),
  });
}

/** Each app's API security keys; in a sandbox the simulator signs answers with its own platform key, not WeChat's. */
export function apiSecurityKeysOf(config: GatewayConfig, simulator: RunningSimulator | undefined): Map<string, ApiSecurityKeys> {
  const keys = new Map<string, ApiSecurityKeys>();
  for (const a of config.apps.values()) {
    if (!a.apiSecurity) continue;
    const simulated = simulator?.state.apiSecurity.summary(a.appid);
    keys.set(a.appid, simulated ? { ...a.apiSecurity, platformKey: createPublicKey(simulated.platformPublicKey) } : a.apiSecurity);
  }
  return keys;
}

/**
 * Sandbox: the in-process simulator stands for WeChat's console too, so the apps configured with
 * messagePush get their alerts pushed here, in safe mode when a key is configured.
 */
export function pointSimulatorPushesHere(simulator: RunningSimulator, apps: GatewayConfig['apps'], host: string, port: number) {
  for (const app of apps.values()) {
    const push = app.messagePush;
    if (!push) continue;
    simulator.state.setMessagePush(app.appid, {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/wechat/events/${app.appid}`,
      token: push.token,
      ...(push.aesKey ? { encodingAesKey: push.aesKey.toString('base64').replace(/=+$/, ''), mode: 'safe' as const } : { mode: 'plaintext' as const }),
      format: push.format,
    });
  }
}
