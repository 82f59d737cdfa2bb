import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { freePort } from './ports.js';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * A throwaway PostgreSQL cluster of the test's own (Debian's postgresql-common: pg_createcluster,
 * pg_ctlcluster, pg_dropcluster), on a free port with trust auth, which a test may stop and start
 * at will: the machine's shared cluster is never touched.
 *
 * Measured on the 2-core CI machine: pg_createcluster 1.3 s; a start accepts connections after
 * 0.1–0.25 s (crash recovery after an immediate stop included) although pg_ctlcluster only returns
 * after 2.2 s, so start() resolves on the first connection that answers; stop -m fast or immediate
 * 0.1–0.2 s; pg_dropcluster 0.2–0.5 s.
 *
 * fsync and full_page_writes are off: they guard against the machine crashing, and here only the
 * server stops (an immediate stop is recovered from the WAL, written to the OS at every commit).
 * synchronous_commit stays on: off, an immediate stop could lose commits a client was told of,
 * which no gateway could be blamed for.
 */

export type StopMode = 'smart' | 'fast' | 'immediate';

const NAME_PREFIX = 'wxt_p';
const COMMAND_TIMEOUT_MS = 60_000;

function run(cmd: string, args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    // Asynchronous on purpose: a start takes seconds, and the test process also runs the load and
    // the WeChat simulator, which must keep answering meanwhile.
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}${stdout}`.trim()));
      else resolve(stdout);
    });
  });
}

/** The newest PostgreSQL installed for pg_createcluster, or why none can be used here. */
export function privatePostgresSupport(): { version: string } | { unavailable: string } {
  if (!existsSync('/usr/bin/pg_createcluster')) return { unavailable: 'pg_createcluster is not installed (Debian postgresql-common)' };
  if (process.getuid?.() !== 0) return { unavailable: 'pg_createcluster needs root here (it runs initdb as the postgres user)' };
  const versions = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql').filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
    : [];
  const version = versions.sort((a, b) => Number(b) - Number(a))[0];
  return version ? { version } : { unavailable: 'no PostgreSQL server with initdb under /usr/lib/postgresql' };
}


function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Live instances, dropped synchronously if the test process exits without destroy(). */
const undestroyed = new Set<PrivatePostgres>();
process.once('exit', () => {
  for (const p of undestroyed) p.destroySync();
});

export class PrivatePostgres {
  private destroyed = false;
  /** The last pg_ctlcluster start, which outlives start() by about two seconds. */
  private starting: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly version: string,
    /** wxt_p<pid of the test process>_<random>: a cluster whose process is gone is an orphan. */
    readonly name: string,
    readonly port: number,
  ) {}

  /** Creates, starts and opens the cluster, with an empty database `test`. */
  static async create(version: string): Promise<PrivatePostgres> {
    await PrivatePostgres.dropOrphans(version);
    const p = new PrivatePostgres(version, `${NAME_PREFIX}${process.pid}_${randomBytes(4).toString('hex')}`, await freePort());
    undestroyed.add(p);
    try {
      await run('pg_createcluster', [
        version,
        p.name,
        '-p',
        String(p.port),
        // Not started by the machine's init scripts, should one run before it is dropped.
        '--start-conf=manual',
        ...['fsync=off', 'full_page_writes=off', 'shared_buffers=16MB', 'max_connections=100', 'ssl=off'].flatMap((o) => ['-o', o]),
        '--',
        '--auth=trust',
        '--no-sync',
      ]);
      await p.start();
      await p.sql('create database test');
      return p;
    } catch (e) {
      await p.destroy();
      throw e;
    }
  }

  /** Clusters an earlier test process created and could not drop (it was killed): dropped now. */
  private static async dropOrphans(version: string): Promise<void> {
    const dir = `/etc/postgresql/${version}`;
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const m = new RegExp(`^${NAME_PREFIX}(\\d+)_[0-9a-f]+$`).exec(name);
      if (m && !pidAlive(Number(m[1]))) await run('pg_dropcluster', ['--stop', version, name]).catch(() => {});
    }
  }

  /** postgres://… of the database `test`. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/test`;
  }

  /** Resolves once the server answers a query. */
  async start(timeoutMs = COMMAND_TIMEOUT_MS): Promise<void> {
    await this.starting;
    let failed: Error | undefined;
    const command = run('pg_ctlcluster', ['--skip-systemctl-redirect', this.version, this.name, 'start']).catch((e: Error) => (failed = e));
    this.starting = command;
    const deadline = Date.now() + timeoutMs;
    while (!(await this.isUp())) {
      if (failed) throw failed;
      if (Date.now() > deadline) throw new Error(`${this.name} did not accept connections within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** fast: open sessions are terminated (57P01); immediate: the server quits at once, no shutdown checkpoint; smart: waits for every client to leave. */
  async stop(mode: StopMode): Promise<void> {
    await this.starting;
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', this.version, this.name, 'stop', '-m', mode]);
  }

  /** True when a new connection answers a query within a second. */
  async isUp(): Promise<boolean> {
    try {
      await this.sql('select 1', 'postgres', 1000);
      return true;
    } catch {
      return false;
    }
  }

  /** Runs one statement on its own connection (closed after). */
  async sql(text: string, database = 'postgres', timeoutMs = 10_000): Promise<pg.QueryResult> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', database, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
    // A server stopped under the connection makes the client emit 'error': answered by the query's rejection.
    client.on('error', () => {});
    try {
      await client.connect();
      return await client.query(text);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Stops and drops the cluster (data, configuration, log). Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    undestroyed.delete(this);
    await this.starting;
    await run('pg_dropcluster', ['--stop', this.version, this.name]).catch((e: Error) => {
      // Already gone (a failed create) is fine; anything else is a leftover worth seeing.
      if (existsSync(`/etc/postgresql/${this.version}/${this.name}`)) throw e;
    });
  }

  /** destroy() for an 'exit' handler, where nothing asynchronous runs. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    undestroyed.delete(this);
    spawnSync('pg_dropcluster', ['--stop', this.version, this.name], { timeout: COMMAND_TIMEOUT_MS, stdio: 'ignore' });
  }
}
