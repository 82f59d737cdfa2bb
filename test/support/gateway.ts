import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig, type GatewayConfig } from '../../src/config.js';
import { createGateway, type Gateway } from '../../app/gateway.js';
import { createLogger } from '../../src/log.js';
import { SimulatorControl, startSimulator, type RunningSimulator, SANDBOX_APP } from '../../src/simulator/index.js';
import { signSessionToken } from '../../src/auth/index.js';
import { createGatewayClient, type GatewayClient } from '../../sdk/client.js';
import type { Backend } from './backends.js';
import { withSearchPath } from './stores.js';
import { testSchemaName } from './schemas.js';

export const APP: string = SANDBOX_APP.appid;
/** A second app, for "code of another app" tests. */
export const OTHER_APP = { appid: 'wx00000000000000b2', secret: 'other-app-secret-0123456789abcdef' };

export interface TestGateway {
  gateway: Gateway;
  url: string;
  sim: SimulatorControl;
  simulator: RunningSimulator;
  config: GatewayConfig;
  /** Every log line the gateway wrote (for leak checks). */
  logs: string[];
  /** The SQL of every query the gateway ran, in order (tests count them). */
  queries: string[];
  token(sub: string, opts?: { appid?: string | undefined; scopes?: string[]; ttl?: string }): Promise<string>;
  client(sub: string, opts?: { appid?: string; scopes?: string[] }): Promise<GatewayClient>;
  close(): Promise<void>;
}

export interface ExtraApp {
  appid: string;
  secret: string;
  subjectType?: 'enterprise' | 'individual' | 'government' | 'non-profit' | 'public-institution' | 'other';
  category?: string;
  product?: 'quick' | 'realtime';
  purposes?: string[];
  lowQuota?: { unitsBelow?: number; daysBelow?: number };
  /** The config's apiSecurity for the app (keys are registered with the simulator by the test). */
  apiSecurity?: object;
  /** The app's message-push settings (config file key `messagePush`). */
  messagePush?: { token?: string; tokenEnv?: string; encodingAesKey?: string; encodingAesKeyEnv?: string; format?: 'json' | 'xml' };
}

export interface TestGatewayOptions {
  backend: Backend;
  /** More apps, configured in the gateway and registered with the simulator. */
  extraApps?: ExtraApp[];
  /** The config file's `billing` section (scheduled sync stays off unless given). */
  billing?: Record<string, unknown>;
  /** Share another test gateway's simulator, database file and Redis prefix (a second instance). */
  peerOf?: TestGateway;
  env?: Record<string, string>;
  configFile?: object;
  /** The config file's `hardening` section (ignored with configFile). */
  hardening?: object;
}

/**
 * A real gateway on a real port, talking real HTTP to its own simulator (or a
 * peer's), with its own SQLite file or the shared PostgreSQL, and a Redis key
 * prefix of its own so parallel test files never share tokens.
 */
export async function startTestGateway(opts: TestGatewayOptions): Promise<TestGateway> {
  const peer = opts.peerOf;
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-test-'));
  // Each PostgreSQL test gateway (with its peers) gets a schema of its own, so gateways that
  // share the sandbox appid never see each other's charges; all are dropped after the run.
  const pgSchema = !peer && opts.backend.databaseUrl ? testSchemaName() : undefined;
  if (pgSchema) await pgExec(opts.backend.databaseUrl!, `create schema ${pgSchema}`);
  const simulator =
    peer?.simulator ??
    (await startSimulator({ apps: [SANDBOX_APP, { ...OTHER_APP, product: 'quick', subjectType: 'enterprise' }] }));
  const apps: object[] = [
    { appid: APP, secret: SANDBOX_APP.secret, purposes: ['login', 'order-contact'] },
    { appid: OTHER_APP.appid, secret: OTHER_APP.secret, purposes: ['login'] },
    ...(opts.extraApps ?? []),
  ];
  for (const extra of opts.extraApps ?? []) {
    if (!peer) simulator.state.registerApp({ appid: extra.appid, secret: extra.secret, ...(extra.subjectType ? { subjectType: extra.subjectType } : {}), ...(extra.category ? { category: extra.category } : {}), ...(extra.product ? { product: extra.product } : {}) });
  }
  const configPath = join(dir, 'wxphone.config.json');
  const { writeFileSync } = await import('node:fs');
  // No scheduled usage sync: tests count WeChat calls and sync when they mean to.
  writeFileSync(
    configPath,
    JSON.stringify(
      opts.configFile ?? { apps, wechat: { timeoutMs: 1500, maxRetries: 2 }, billing: { syncIntervalSeconds: 0, ...opts.billing }, ...(opts.hardening ? { hardening: opts.hardening } : {}) },
    ),
  );
  const env: Record<string, string> = {
    WECHAT_API_BASE: simulator.url,
    WXPHONE_CONFIG: configPath,
    DATABASE_URL: peer?.config.databaseUrl ?? (pgSchema ? withSearchPath(opts.backend.databaseUrl!, pgSchema) : `file:${join(dir, 'test.db')}`),
    REDIS_KEY_PREFIX: peer?.config.redisKeyPrefix ?? `wxtest-${randomBytes(6).toString('hex')}`,
    LOG_LEVEL: 'debug',
    // Outside sandbox mode the keys must be given; these are the test run's own.
    JWT_SECRET: 'test-jwt-secret-0123456789abcdef0123456789',
    WXPHONE_DATA_KEY: Buffer.alloc(32, 42).toString('base64'),
    // The exchange rate limits stay on (every request is counted, in Redis where configured) but
    // far above what these tests send: many drive dozens of requests through one session on
    // purpose. test/e2e/bad-input.test.ts sets real limits.
    RATE_LIMIT_SESSION: '100000/60',
    RATE_LIMIT_IP: '100000/60',
    ...(opts.backend.redisUrl ? { REDIS_URL: opts.backend.redisUrl } : {}),
    ...opts.env,
  };
  const config = loadConfig(env, dir);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const queries: string[] = [];
  const gateway = await createGateway(config, { log: createLogger({ level: 'debug', destination: sink }), onQuery: (q) => queries.push(q) });
  const { url } = await gateway.listen(0, '127.0.0.1');
  rememberSecret(config.jwt.secret, config.dataKey.toString('base64'), ...[...config.apps.values()].map((a) => a.secret));
  const responses: string[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const text = await res.text();
    responses.push(withoutDisclosures(text));
    return new Response(text, { status: res.status, headers: res.headers });
  };
  const token: TestGateway['token'] = async (sub, o = {}) => {
    const jwt = await signSessionToken(
      { secret: config.jwt.secret!, issuer: config.jwt.issuer, audience: config.jwt.audience },
      { subject: sub, appid: 'appid' in o ? o.appid : APP, scopes: o.scopes ?? ['phone:exchange'], ttl: o.ttl ?? '10m' },
    );
    rememberSecret(jwt);
    return jwt;
  };
  return {
    gateway,
    url,
    sim: new RecordingSimulatorControl(simulator.url),
    simulator,
    config,
    logs,
    queries,
    token,
    client: async (sub, o = {}) => createGatewayClient({ url, token: await token(sub, o), fetch: recordingFetch }),
    async close() {
      // The access tokens the gateway held: stable_token in normal mode hands the same ones back.
      for (const app of config.apps.values()) {
        const r = simulator.state.stableToken({ grant_type: 'client_credential', appid: app.appid, secret: app.secret }) as { access_token?: string };
        rememberSecret(r.access_token);
      }
      // (A test may have closed the gateway itself already.)
      const metricsText = await fetch(url.replace(/\/graphql$/, '/metrics')).then((r) => r.text(), () => '');
      await gateway.close();
      const leaks = findLeaks([...logs, ...responses, metricsText]);
      if (!peer) await simulator.close();
      // Its PostgreSQL schema is dropped by the global teardown (test/support/global-setup.ts).
      rmSync(dir, { recursive: true, force: true });
      if (leaks.length) throw new Error(`secrets leaked into logs or responses:\n${leaks.join('\n')}`);
    },
  };
}

async function pgExec(url: string, statement: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * Everything secret this test process has used: codes, phone numbers, session tokens, app
 * secrets, keys, WeChat access tokens. Every test gateway checks on close that none of it
 * appears in its logs or in the responses its clients got (the number only in its one place).
 */
export const SECRETS = new Set<string>();
export function rememberSecret(...values: (string | null | undefined)[]) {
  for (const v of values) if (v && v.length >= 6) SECRETS.add(v);
}

/** A response as a leak check sees it: the verified number's own fields taken out. */
function withoutDisclosures(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), (key, value) => (key === 'phoneNumber' || key === 'purePhoneNumber' ? undefined : value));
  } catch {
    return text;
  }
}

function findLeaks(haystacks: readonly string[]): string[] {
  const leaks: string[] = [];
  for (const secret of SECRETS) {
    const hit = haystacks.find((h) => h.includes(secret));
    if (hit) leaks.push(`${secret.slice(0, 4)}… in: ${hit.slice(0, 200)}`);
  }
  return leaks;
}

/** The control API, remembering every code, number and encrypted payload it hands out. */
class RecordingSimulatorControl extends SimulatorControl {
  override async phoneCode(input: Parameters<SimulatorControl['phoneCode']>[0]) {
    const r = await super.phoneCode(input);
    rememberSecret(input.phoneNumber, 'code' in r ? r.code : null);
    return r;
  }

  override async loginCode(input: Parameters<SimulatorControl['loginCode']>[0]) {
    const r = await super.loginCode(input);
    rememberSecret(r.code, r.encryptedData, input.phoneNumber);
    return r;
  }

  override async encryptedPhone(input: Parameters<SimulatorControl['encryptedPhone']>[0]) {
    const r = await super.encryptedPhone(input);
    rememberSecret(r.encryptedData, input.phoneNumber);
    return r;
  }
}

let phoneSeq = 0;
/** A distinct mainland number per call (13800000000 + n), so leak checks can look for each one. */
export function nextPhone(): string {
  phoneSeq += 1;
  return String(13_800_000_000 + process.pid * 1000 + phoneSeq).slice(0, 11);
}

/** Mints a code the way the button's success callback would (one unit charged). */
export async function mintCode(sim: SimulatorControl, phoneNumber = nextPhone(), appid = APP, openid?: string): Promise<string> {
  const r = await sim.phoneCode({ appid, phoneNumber, ...(openid ? { openid } : {}) });
  if (!('code' in r)) throw new Error(`simulator refused to mint a code: ${JSON.stringify(r)}`);
  rememberSecret(r.code, phoneNumber);
  return r.code;
}
