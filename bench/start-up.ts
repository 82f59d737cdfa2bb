/**
 * How long a production gateway takes from its process being started to a healthy `/health`,
 * and its RSS at that moment, over several starts (min / median / max):
 *
 *   npm run bench:start-up                    # 7 starts of `node bin/wxphone.mjs serve`
 *   npm run bench:start-up -- --runs 11 --npm # `npm start` instead (RSS: the gateway's process)
 *   npm run bench:start-up -- --root DIR      # another checkout's bin/ (e.g. an older commit's)
 *
 * Each start is a restart of the same deployment: NODE_ENV=production, one app, SQLite in a
 * temporary directory (migrated by an uncounted first start), WeChat at a closed port and no
 * usage sync, so nothing but the start itself is timed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SANDBOX_APP } from '../src/simulator/index.js';
import { freePort } from '../test/support/ports.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '7' }, root: { type: 'string' }, npm: { type: 'boolean', default: false } },
});
const RUNS = Number(values.runs);
const ROOT = resolve(values.root ?? resolve(import.meta.dirname, '..'));
const HEALTH_TIMEOUT_MS = 30_000;

const dir = mkdtempSync(join(tmpdir(), 'wxphone-start-up-'));
const configFile = join(dir, 'wxphone.config.json');
writeFileSync(configFile, JSON.stringify({ apps: [{ appid: SANDBOX_APP.appid, secret: SANDBOX_APP.secret }], billing: { syncIntervalSeconds: 0 } }));
const env = {
  ...process.env,
  NODE_ENV: 'production',
  WXPHONE_CONFIG: configFile,
  DATABASE_URL: `file:${join(dir, 'wxphone.db')}`,
  JWT_SECRET: randomBytes(32).toString('hex'),
  WXPHONE_DATA_KEY: randomBytes(32).toString('base64'),
  WECHAT_API_BASE: 'http://127.0.0.1:9',
  LOG_LEVEL: 'warn',
};

/** The process that serves: `npm start` runs it as a descendant. */
function gatewayPid(pid: number): number {
  const [program, ...args] = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (program!.endsWith('node') && args.some((a) => a.endsWith('wxphone.mjs'))) return pid;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) {
      try {
        return gatewayPid(Number(child));
      } catch {
        // not the gateway's branch
      }
    }
  }
  throw new Error(`no gateway process under ${pid}`);
}

/** CPU time the process has used (user + system), in ms: steadier than wall time on a busy machine. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Math.round(Number(kb) / 1024);
}

async function healthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`)).status === 200;
  } catch {
    return false;
  }
}

async function startOnce(): Promise<{ ms: number; cpuMs: number; rssMb: number }> {
  const port = await freePort();
  const [command, args] = values.npm
    ? ['npm', ['start', '--silent', '--', '--port', String(port)]]
    : [process.execPath, [join(ROOT, 'bin/wxphone.mjs'), 'serve', '--port', String(port)]];
  const started = performance.now();
  // A process group of its own, stopped as a whole: npm does not pass SIGTERM on to the script it runs.
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.once('exit', r));
  try {
    while (!(await healthy(port))) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${err}`);
      if (performance.now() - started > HEALTH_TIMEOUT_MS) throw new Error(`not healthy in time: ${err}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - started;
    const pid = gatewayPid(child.pid!);
    return { ms, cpuMs: cpuMs(pid), rssMb: rssMb(pid) };
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
    // The next start waits until this one's process group is gone.
    while (groupAlive(child.pid!)) await new Promise((r) => setTimeout(r, 20));
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
};

try {
  await startOnce(); // migrates the database, warms the file cache
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await startOnce());
  const ms = stats(runs.map((r) => r.ms));
  const cpu = stats(runs.map((r) => r.cpuMs));
  const rss = stats(runs.map((r) => r.rssMb));
  console.log(`${values.npm ? 'npm start' : 'node bin/wxphone.mjs serve'} (${ROOT}), ${RUNS} starts`);
  console.log(`to a healthy /health: min ${(ms.min / 1000).toFixed(2)} s, median ${(ms.median / 1000).toFixed(2)} s, max ${(ms.max / 1000).toFixed(2)} s`);
  console.log(`CPU time by then:     min ${(cpu.min / 1000).toFixed(2)} s, median ${(cpu.median / 1000).toFixed(2)} s, max ${(cpu.max / 1000).toFixed(2)} s`);
  console.log(`RSS then:             min ${rss.min} MB, median ${rss.median} MB, max ${rss.max} MB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
