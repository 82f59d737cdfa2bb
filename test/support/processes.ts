import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createClient } from 'redis';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from '../../src/config.js';
import { SANDBOX_APP, SimulatorControl, startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import { signSessionToken } from '../../src/auth/index.js';
import { createGatewayClient, type GatewayClient } from '../../sdk/client.js';
import { testSchemaName } from './schemas.js';
import { withSearchPath } from './stores.js';

/**
 * Real gateway processes (`node bin/wxphone.mjs serve --port 0`: the compiled build when it matches
 * the sources, and `npm run test:processes` builds first), as an operator runs them behind
 * a load balancer: N of them sharing one PostgreSQL schema, one Redis key prefix and one WeChat
 * simulator. The simulator runs in the test process, so tests read its stats directly; each
 * process's stdout and stderr are kept (every incarnation's) for leak checks.
 */

const BIN = resolve(import.meta.dirname, '../../bin/wxphone.mjs');
export const APP: string = SANDBOX_APP.appid;
export const EXCHANGE_PATH = '/wxa/business/getuserphonenumber';
export const STABLE_TOKEN_PATH = '/cgi-bin/stable_token';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** Every child this test process started: killed if the test process exits with them still running. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** The environment of the machine, minus whatever configures a gateway (CI and developers set some). */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(DATABASE_URL|REDIS_|WECHAT_API_BASE|WXPHONE_|JWT_|NODE_ENV|PORT|HOST|SIMULATOR_PORT|LOG_LEVEL)/.test(k)) env[k] = v;
  }
  return env;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One gateway process; `restart()` starts a new incarnation with the same environment (new port). */
export class GatewayProcess {
  child!: ChildProcess;
  /** http://127.0.0.1:PORT/graphql of the current incarnation. */
  url = '';
  /** stdout + stderr of every incarnation, in arrival order per stream. */
  readonly output: string[] = [];
  private exit!: Promise<ProcessExit>;
  private exited: ProcessExit | undefined;

  constructor(
    readonly name: string,
    private readonly env: Record<string, string>,
  ) {}

  get origin(): string {
    return this.url.replace(/\/graphql$/, '');
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Text of the current and earlier incarnations' stdout and stderr. */
  get logs(): string {
    return this.output.join('');
  }

  /** Resolves when the process has printed its GraphQL URL; rejects (with its output) if it exits or takes too long. */
  async start(timeoutMs = START_TIMEOUT_MS): Promise<this> {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1'], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = undefined;
    this.url = '';
    live.add(child);
    this.exit = new Promise<ProcessExit>((r) =>
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.exited = { code, signal };
        r(this.exited);
      }),
    );
    let out = '';
    const mine: string[] = [];
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      this.output.push(d);
      mine.push(d);
    });
    await new Promise<void>((resolvePromise, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(new Error(`${this.name}: ${why}\n${mine.join('').slice(-4000)}`));
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        fail(`did not print its GraphQL URL within ${timeoutMs} ms`);
      }, timeoutMs);
      child.stdout!.on('data', (d: string) => {
        this.output.push(d);
        mine.push(d);
        if (this.url) return;
        out += d;
        const m = /^GraphQL:\s+(http:\/\/\S+\/graphql)/m.exec(out);
        if (m) {
          this.url = m[1]!;
          clearTimeout(timer);
          resolvePromise();
        }
      });
      void this.exit.then((e) => {
        if (!this.url) fail(`exited during start-up (code ${e.code}, signal ${e.signal})`);
      });
    });
    return this;
  }

  /**
   * Sends `signal` and waits for the exit; a process that outlives `timeoutMs` is SIGKILLed.
   * Resolves with how it ended.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS): Promise<ProcessExit> {
    if (this.exited) return this.exited;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), timeoutMs)));
    const first = await Promise.race([this.exit, late]);
    clearTimeout(timer);
    if (first !== 'late') return first;
    this.child.kill('SIGKILL');
    return this.exit;
  }

  kill(): Promise<ProcessExit> {
    return this.stop('SIGKILL');
  }

  async restart(): Promise<this> {
    await this.stop('SIGTERM');
    return this.start();
  }

  /** Resolves with the exit as soon as the process ends (for "it must not crash" checks: race it). */
  whenExited(): Promise<ProcessExit> {
    return this.exit;
  }

  async ready(timeoutMs = 5000): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.origin}/ready`, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
}

export interface ClusterOptions {
  /** Default 3. */
  instances?: number;
  /** postgres://… (a schema of its own is created, wxt_…, dropped by the global teardown); default: one SQLite file shared by all. */
  databaseUrl?: string | undefined;
  /** A connection URL the processes use instead of databaseUrl (e.g. a proxy in front of it); the schema is the same. */
  processDatabaseUrl?: string | undefined;
  redisUrl?: string | undefined;
  /** The config file's `wechat` section. */
  wechat?: { timeoutMs?: number; maxRetries?: number };
  /** Units of a paid pack added to the sandbox app on the simulator, beyond its 1,000-call trial. */
  packUnits?: number;
  logLevel?: string;
  env?: Record<string, string>;
}

export interface Cluster {
  processes: GatewayProcess[];
  simulator: RunningSimulator;
  sim: SimulatorControl;
  /** The database URL the processes were given (with the schema's search_path). */
  databaseUrl: string;
  /** The direct URL of the same schema (not through any proxy): for the test's own queries. */
  directDatabaseUrl: string;
  schema: string | undefined;
  redisKeyPrefix: string;
  configPath: string;
  /** Signs a session token the processes accept; remembered as a secret for leak checks. */
  token(sub: string, scopes?: string[], ttl?: string): Promise<string>;
  client(instance: number, jwt: string, opts?: { timeoutMs?: number }): GatewayClient;
  /** A one-time phone code minted on the simulator (the button's callback); code and number are remembered as secrets. */
  mint(phoneNumber: string): string;
  /** Rows of a query on the cluster's database (PostgreSQL schema or SQLite file), straight to the database. */
  query<T = Record<string, unknown>>(text: string): Promise<T[]>;
  count(table: string, where?: string): Promise<number>;
  /** Log lines at warn level or above, of every process (for failure messages). */
  problems(max?: number): string[];
  /** Secrets found in any process's output (codes, numbers, tokens, app secret, keys). */
  leaks(): string[];
  /** Remembers more secrets for leak checks. */
  remember(...values: (string | null | undefined)[]): void;
  /** Stops every process (SIGTERM, then SIGKILL), the simulator, the database client; deletes its Redis keys. */
  close(): Promise<void>;
}


/** The shared keys of a cluster: every process must hash, seal and verify alike. */
const JWT_SECRET = `proc-test-jwt-${randomBytes(18).toString('hex')}`;

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-procs-'));
  const secrets = new Set<string>();
  const remember = (...values: (string | null | undefined)[]) => {
    for (const v of values) if (v && v.length >= 6) secrets.add(v);
  };
  const dataKey = randomBytes(32).toString('base64');
  remember(JWT_SECRET, dataKey, SANDBOX_APP.secret);

  const schema = opts.databaseUrl ? testSchemaName() : undefined;
  let directDatabaseUrl: string;
  let databaseUrl: string;
  if (schema) {
    const admin = new pg.Client({ connectionString: opts.databaseUrl });
    await admin.connect();
    try {
      await admin.query(`create schema ${schema}`);
    } finally {
      await admin.end();
    }
    directDatabaseUrl = withSearchPath(opts.databaseUrl!, schema);
    databaseUrl = withSearchPath(opts.processDatabaseUrl ?? opts.databaseUrl!, schema);
  } else {
    directDatabaseUrl = databaseUrl = `file:${join(dir, 'gateway.db')}`;
  }

  const simulator = await startSimulator({ apps: [SANDBOX_APP] });
  if (opts.packUnits) {
    const nowS = Math.floor(simulator.state.now() / 1000);
    simulator.state.addPack(APP, { all: opts.packUnits, startTime: nowS - 3600, endTime: nowS + 30 * 86_400 });
  }
  const configPath = join(dir, 'wxphone.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      apps: [{ appid: APP, secret: SANDBOX_APP.secret, purposes: ['login', 'order-contact'] }],
      wechat: { timeoutMs: 1500, maxRetries: 2, ...opts.wechat },
      // No scheduled usage sync or retention purge: tests count WeChat calls and audit records.
      billing: { syncIntervalSeconds: 0 },
      audit: { purgeIntervalSeconds: 0 },
    }),
  );
  const redisKeyPrefix = `wxproc-${randomBytes(6).toString('hex')}`;
  const env: Record<string, string> = {
    ...baseEnv(),
    WECHAT_API_BASE: simulator.url,
    WXPHONE_CONFIG: configPath,
    DATABASE_URL: databaseUrl,
    REDIS_KEY_PREFIX: redisKeyPrefix,
    JWT_SECRET,
    WXPHONE_DATA_KEY: dataKey,
    LOG_LEVEL: opts.logLevel ?? 'info',
    // The per-session and per-IP exchange limits are tested elsewhere; here one test process is
    // every client, from one address.
    RATE_LIMIT_SESSION: '0',
    RATE_LIMIT_IP: '0',
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...opts.env,
  };

  const processes = Array.from({ length: opts.instances ?? 3 }, (_, i) => new GatewayProcess(`gateway-${i}`, env));
  let pgClient: pg.Client | undefined;
  let sqlite: import('better-sqlite3').Database | undefined;

  const cluster: Cluster = {
    processes,
    simulator,
    sim: new SimulatorControl(simulator.url),
    databaseUrl,
    directDatabaseUrl,
    schema,
    redisKeyPrefix,
    configPath,
    async token(sub, scopes = ['phone:exchange'], ttl = '30m') {
      const jwt = await signSessionToken({ secret: JWT_SECRET, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE }, { subject: sub, appid: APP, scopes, ttl });
      remember(jwt);
      return jwt;
    },
    client(instance, jwt, o = {}) {
      const p = processes[instance]!;
      const timeoutMs = o.timeoutMs ?? 60_000;
      // The URL is read per request: a restarted process listens on a new port.
      return createGatewayClient({
        url: p.url,
        token: jwt,
        fetch: (input, init) => fetch(typeof input === 'string' ? p.url : input, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
      });
    },
    mint(phoneNumber) {
      const r = simulator.state.mintPhoneCode(APP, phoneNumber);
      if (!('code' in r)) throw new Error(`the simulator refused to mint a code: ${JSON.stringify(r)}`);
      remember(r.code, phoneNumber);
      return r.code;
    },
    async query<T>(text: string): Promise<T[]> {
      if (schema) {
        if (!pgClient) {
          pgClient = new pg.Client({ connectionString: directDatabaseUrl });
          // A test may stop the database under it: a lost connection is an error of the next query, not of the test process.
          pgClient.on('error', () => {
            pgClient = undefined;
          });
          await pgClient.connect();
        }
        return (await pgClient.query(text)).rows as T[];
      }
      if (!sqlite) {
        const { default: SQLite } = await import('better-sqlite3');
        sqlite = new SQLite(databaseUrl.slice('file:'.length), { readonly: true });
        sqlite.pragma('busy_timeout = 5000');
      }
      return sqlite.prepare(text).all() as T[];
    },
    async count(table, where) {
      const rows = await cluster.query<{ n: string | number }>(`select count(*) as n from ${table}${where ? ` where ${where}` : ''}`);
      return Number(rows[0]!.n);
    },
    problems(max = 20) {
      const lines = processes.flatMap((p) => p.logs.split('\n').filter((l) => /"level":(4|5|6)0/.test(l) || (l && !l.startsWith('{'))).map((l) => `${p.name}: ${l.slice(0, 400)}`));
      return lines.slice(0, max);
    },
    leaks() {
      // The WeChat access token the processes shared: stable_token in normal mode hands the same one back.
      const t = simulator.state.stableToken({ grant_type: 'client_credential', appid: APP, secret: SANDBOX_APP.secret }) as { access_token?: string };
      remember(t.access_token);
      const found: string[] = [];
      for (const p of processes) {
        const text = p.logs;
        for (const s of secrets) if (text.includes(s)) found.push(`${p.name}: ${s.slice(0, 4)}… in its output`);
      }
      return found;
    },
    remember,
    async close() {
      await Promise.all(processes.map((p) => (p.child ? p.stop('SIGTERM').catch(() => {}) : undefined)));
      await simulator.close().catch(() => {});
      await pgClient?.end().catch(() => {});
      sqlite?.close();
      if (opts.redisUrl) await deleteRedisKeys(opts.redisUrl, redisKeyPrefix).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all(processes.map((p) => p.start()));
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}

async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  try {
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) keys.push(...batch);
    if (keys.length) await client.del(keys);
  } finally {
    await client.quit().catch(() => {});
  }
}

/** Waits until `check` holds, polling; throws with `what` after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** True when a client call failed below HTTP (refused, reset, closed mid-answer, aborted): the instance is gone, not answering. */
export function isTransportError(e: unknown): boolean {
  return e instanceof TypeError || (e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError'));
}
