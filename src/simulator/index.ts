import type { AddressInfo } from 'node:net';
import { createSimulatorServer } from './server.js';
import { SimulatorState, type SimAppInput } from './state.js';

/**
 * The WeChat simulator: the WeChat of every test and of the sandbox.
 * `startSimulator()` serves the WeChat paths and the /__sim__ control API on
 * one port; `state` gives tests the same model without HTTP.
 */

export { SimulatorState } from './state.js';
export type {
  PackInput,
  PhoneCodeResult,
  SimAppDetails,
  SimAppInput,
  SimAppSummary,
  SimulatorStateOptions,
  SimulatorStats,
  SubjectType,
} from './state.js';
export { SimInputError } from './errors.js';
export { consoleKeysOf } from './api-security.js';
export type { SimApiSecurityInput, SimApiSecuritySummary } from './api-security.js';
export { WECHAT_PATHS } from './wechat-routes.js';
export { SimulatorControl } from './control-client.js';

export interface SimulatorOptions {
  /** 0 = any free port (the default). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Apps to register; default: the sandbox app alone. Pass [] for none. */
  apps?: SimAppInput[];
  /** 'YYYY-MM-DD' (Asia/Shanghai), default '2023-08-28'. */
  chargingStartDate?: string;
  /** Initial simulated epoch time in ms; default Date.now(). */
  startTime?: number;
}

export interface RunningSimulator {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  state: SimulatorState;
  close(): Promise<void>;
}

export { SANDBOX_APP } from '../sandbox-app.js';
import { SANDBOX_APP } from '../sandbox-app.js';

// 1,000+ simultaneous connects must not overflow the accept queue (the kernel caps it at somaxconn).
const LISTEN_BACKLOG = 4096;

export async function startSimulator(opts: SimulatorOptions = {}): Promise<RunningSimulator> {
  const state = new SimulatorState({
    apps: opts.apps ?? [SANDBOX_APP],
    ...(opts.chargingStartDate !== undefined && { chargingStartDate: opts.chargingStartDate }),
    ...(opts.startTime !== undefined && { startTime: opts.startTime }),
  });
  const host = opts.host ?? '127.0.0.1';
  const { server, shutdown } = createSimulatorServer(state);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port ?? 0, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(host)}:${port}`,
    port,
    state,
    close: () => (closing ??= (state.messagePush.close(), shutdown())),
  };
}

/** A host clients can dial: wildcard binds are reached through loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
export type { PushDelivery, PushFormat, PushMode, PushTargetInput } from './message-push.js';
