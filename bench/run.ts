/**
 * Benchmarks, in one run on one machine (npm run bench):
 *   (a) exchangePhoneCode through the gateway vs. the same getuserphonenumber call sent straight
 *       to the simulator;
 *   (b) the quota query through the gateway vs. the simulator's usage API;
 *   (c) a bare graphql-yoga hello-world, the ceiling, and in the same process three floors: yoga plus
 *       the WeChat call; yoga plus the claim / WeChat call / commit once-per-code needs; and yoga
 *       plus all the work the invariants require of an exchange, hand-written on the gateway's
 *       schema (bench/yoga-hello.ts, bench/floor-required.ts), so the ratios show what any gateway
 *       pays, what these invariants cost, and what this gateway adds;
 * each at low and high concurrency, as throughput and p50/p99, with ratios (each path's requests in
 * BENCH_ROUNDS slices, the paths taking turns; a ratio is the median of its per-round values); then the gateway's
 * RSS after a soak of exchanges; then where an exchange's time goes, phase by phase, from the
 * spans of a second gateway process with tracing on (bench/phases.ts); and (BENCH_PROFILE=1)
 * where the gateway's CPU time goes.
 * One file on purpose: the scenario, the turns and the ratios must be read together to trust a figure.
 * The gateway, the WeChat simulator and the ceiling each run in a process of their own (WeChat is
 * not in the gateway's process in production either); this process only generates load.
 *
 *   npm run bench                                   # SQLite + in-memory cache
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench
 *   BENCH_REQUESTS=2000 BENCH_ROUNDS=5 BENCH_WARM_REQUESTS=1000 BENCH_SOAK_SECONDS=60 BENCH_PHASE_REQUESTS=1000 BENCH_PROFILE=1 npm run bench
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import pg from 'pg';
import { SANDBOX_APP, SimulatorControl } from '../src/simulator/index.js';
import { signSessionToken } from '../src/auth/index.js';
import { median, phaseBreakdown, SpanCollector, type PhaseRow } from './phases.js';

const N = Number(process.env.BENCH_REQUESTS ?? 2000);
/** Requests sent down each path, at the concurrency about to be measured, before it is measured. */
const WARM = Number(process.env.BENCH_WARM_REQUESTS ?? 1000);
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const PROFILE = process.env.BENCH_PROFILE === '1';
/** Exchanges, one at a time, through the traced gateway for the phase breakdown (0: none). */
const PHASE_N = Number(process.env.BENCH_PHASE_REQUESTS ?? 1000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,32').split(',').map(Number);
/** Each path's BENCH_REQUESTS are sent in this many slices, the paths taking turns (see scenario). */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
const ROOT = resolve(import.meta.dirname, '..');
const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef0123456789';
const APP = SANDBOX_APP.appid;

interface Started {
  child: ChildProcess;
  lines: string[];
}

function start(args: string[], env: Record<string, string>, expectLines: number): Promise<Started> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no start-up output: ${err}`)), 30_000);
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d: Buffer) => {
      for (const l of String(d).split('\n')) if (l && !l.startsWith('{')) lines.push(l);
      if (lines.length >= expectLines) {
        clearTimeout(timer);
        resolvePromise({ child, lines });
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
}

const urlAfter = (lines: string[], label: string) => new RegExp(`${label}:\\s+(\\S+)`).exec(lines.join('\n'))?.[1] ?? '';

type Call = (pool: Pool, i: number) => Promise<void>;

async function post(pool: Pool, path: string, body: string, headers: Record<string, string>, expect: string) {
  const { statusCode, body: res } = await pool.request({ method: 'POST', path, body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  if (statusCode !== 200 || !text.includes(expect)) throw new Error(`unexpected answer (${statusCode}): ${text.slice(0, 200)}`);
}

async function get(pool: Pool, path: string, expect: string) {
  const { statusCode, body } = await pool.request({ method: 'GET', path });
  const text = await body.text();
  if (statusCode !== 200 || !text.includes(expect)) throw new Error(`unexpected answer (${statusCode}): ${text.slice(0, 200)}`);
}

/** CPU time (user + system) a process has used so far, in ms: steadier than throughput on a shared machine. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

interface Measured {
  name: string;
  concurrency: number;
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  serverCpuUsPerRequest: number | null;
}

interface Sample extends Measured {
  seconds: number;
  latencies: number[];
  serverCpuMs: number | null;
}

const percentile = (sorted: readonly number[], p: number) => +sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(3);

/** `requests` calls at `concurrency`, the calls numbered from `first` (each number one code). */
async function measure(name: string, origin: string, call: Call, concurrency: number, requests = N, serverPid?: number, first = 0): Promise<Sample> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const cpuBefore = serverPid ? cpuMs(serverPid) : 0;
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const t0 = performance.now();
        await call(pool, first + i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const serverCpuMs = serverPid ? cpuMs(serverPid) - cpuBefore : null;
  return {
    name,
    concurrency,
    requests,
    rps: Math.round(requests / seconds),
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    serverCpuUsPerRequest: serverCpuMs === null ? null : Math.round((serverCpuMs * 1000) / requests),
    seconds,
    latencies,
    serverCpuMs,
  };
}

/** One path's rounds as one row: throughput over all its time, percentiles over all its calls. */
function pooled(samples: readonly Sample[]): Measured {
  const requests = samples.reduce((n, s) => n + s.requests, 0);
  const seconds = samples.reduce((n, s) => n + s.seconds, 0);
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const cpu = samples.every((s) => s.serverCpuMs !== null) ? samples.reduce((n, s) => n + s.serverCpuMs!, 0) : null;
  return {
    name: samples[0]!.name,
    concurrency: samples[0]!.concurrency,
    requests,
    rps: Math.round(requests / seconds),
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    serverCpuUsPerRequest: cpu === null ? null : Math.round((cpu * 1000) / requests),
  };
}

async function rssMb(pid: number): Promise<number> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

/** The heaviest functions of a .cpuprofile by self time. */
function topOfProfile(dir: string, count = 15) {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return [];
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: { id: number; hitCount: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  };
  const total = profile.nodes.reduce((n, x) => n + x.hitCount, 0);
  const byFn = new Map<string, number>();
  for (const n of profile.nodes) {
    const where = n.callFrame.url.replace(/^.*node_modules\//, '').replace(`file://${ROOT}/`, '');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + n.hitCount);
  }
  return [...byFn.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([fn, hits]) => ({ fn, selfPercent: +((100 * hits) / total).toFixed(1) }));
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-bench-'));
  const usePg = process.env.DATABASE_URL?.startsWith('postgres');
  let databaseUrl = `file:${join(dir, 'bench.db')}`;
  const pgSchema = `wxt_bench_${randomBytes(4).toString('hex')}`;
  // The hand-written floor has the gateway's tables, in a schema (or file) of its own.
  const pgFloorSchema = `${pgSchema}_floor`;
  const inSchema = (schema: string) => `${process.env.DATABASE_URL}${process.env.DATABASE_URL!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  let floorRequiredUrl = `file:${join(dir, 'floor-required.db')}`;
  if (usePg) {
    const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await c.connect();
    await c.query(`create schema ${pgSchema}`);
    await c.query(`create schema ${pgFloorSchema}`);
    await c.end();
    databaseUrl = inSchema(pgSchema);
    floorRequiredUrl = inSchema(pgFloorSchema);
  }
  const profileDir = join(ROOT, 'bench/results/profile');
  const simulator = await start(['bin/wxphone.mjs', 'simulator', '--port', '0'], { WXPHONE_CONFIG: '' }, 1);
  const simUrl = new URL(/listening on (\S+)/.exec(simulator.lines.join('\n'))?.[1] ?? '');
  const configFile = join(dir, 'wxphone.config.json');
  writeFileSync(configFile, JSON.stringify({ apps: [{ appid: APP, secret: SANDBOX_APP.secret, purposes: ['login'] }] }));
  const gatewayEnv: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    JWT_SECRET,
    JWT_ISSUER: 'wxphone-sandbox',
    WXPHONE_DATA_KEY: randomBytes(32).toString('base64'),
    // Production mode, as deployed: no GraphiQL or introspection, and graphql-js's production paths.
    NODE_ENV: 'production',
    WECHAT_API_BASE: simUrl.origin,
    WXPHONE_CONFIG: configFile,
    REDIS_KEY_PREFIX: `wxbench-${process.pid}`,
    // Every plugin on, the rate limiter too: limits it counts against but never reaches.
    RATE_LIMIT_SESSION: '1000000/1',
    RATE_LIMIT_IP: '1000000/1',
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
  };
  const nodeFlags = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const gateway = await start([...nodeFlags, 'bin/wxphone.mjs', 'serve', '--port', '0'], gatewayEnv, 4);
  // The ceiling's process also serves the floors: the same WeChat call, and that call between the
  // two commits once-per-code needs, on the same kind of database as the gateway's.
  const ceiling = await start(['--import', 'tsx', 'bench/yoga-hello.ts'], {
    NODE_ENV: 'production',
    FLOOR_WECHAT_ORIGIN: simUrl.origin,
    FLOOR_DATABASE_URL: usePg ? databaseUrl : `file:${join(dir, 'floor.db')}`,
    FLOOR_REQUIRED_DATABASE_URL: floorRequiredUrl,
    FLOOR_APPID: APP,
    ...(process.env.REDIS_URL ? { FLOOR_REDIS_URL: process.env.REDIS_URL } : {}),
  }, 1);
  const gatewayUrl = new URL(urlAfter(gateway.lines, 'GraphQL'));
  const helloUrl = new URL(urlAfter(ceiling.lines, 'GraphQL'));
  const sim = new SimulatorControl(simUrl.origin);
  const nowS = Math.floor(Date.now() / 1000);
  await sim.addPack(APP, { all: 10_000_000, startTime: nowS - 60, endTime: nowS + 86_400 });

  const key = { secret: JWT_SECRET, issuer: 'wxphone-sandbox', audience: 'wxphone' };
  const user = await signSessionToken(key, { subject: 'o_bench', appid: APP, scopes: ['phone:exchange'], ttl: '2h' });
  const reader = await signSessionToken(key, { subject: 'svc_bench', scopes: ['quota:read'], ttl: '2h' });
  const tokenRes = await fetch(`${simUrl.origin}/cgi-bin/stable_token`, {
    method: 'POST',
    body: JSON.stringify({ grant_type: 'client_credential', appid: APP, secret: SANDBOX_APP.secret }),
  });
  const accessToken = ((await tokenRes.json()) as { access_token: string }).access_token;

  const mint = async (n: number) => {
    const codes: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await sim.phoneCode({ appid: APP, phoneNumber: '13800138000' });
      if (!('code' in r)) throw new Error('no quota');
      codes.push(r.code);
    }
    return codes;
  };
  const exchangeBody = (code: string) =>
    JSON.stringify({ query: 'mutation($i: ExchangePhoneCodeInput!){ exchangePhoneCode(input:$i){ __typename } }', variables: { i: { code, purpose: 'login' } } });
  const quotaBody = JSON.stringify({ query: 'query($a: String!){ quota(appid: $a){ remaining estimatedRemaining lowQuota } }', variables: { a: APP } });
  const helloBody = JSON.stringify({ query: '{ hello }' });
  const floorBody = (field: 'relay' | 'relayOnce' | 'relayRequired', code: string) =>
    JSON.stringify({ query: `mutation($c: String!, $t: String!){ ${field}(code: $c, accessToken: $t) }`, variables: { c: code, t: accessToken } });

  const scenario = async (concurrency: number) => {
    const viaGateway = await mint(N);
    const direct = await mint(N);
    const relayed = await mint(N);
    const relayedOnce = await mint(N);
    const relayedRequired = await mint(N);
    // Every path warm (JIT, pools, caches) at the concurrency it is measured at, not only the
    // gateway's: a ceiling measured cold came out at a third of its warm throughput.
    const warm = await mint(5 * WARM);
    const warmed = (i: number) => warm[i]!;
    await measure('warm', helloUrl.origin, (p) => post(p, helloUrl.pathname, helloBody, {}, 'world'), concurrency, WARM);
    await measure('warm', simUrl.origin, (p, i) => post(p, `/wxa/business/getuserphonenumber?access_token=${accessToken}`, JSON.stringify({ code: warmed(i) }), {}, 'phone_info'), concurrency, WARM);
    await measure('warm', helloUrl.origin, (p, i) => post(p, helloUrl.pathname, floorBody('relay', warmed(WARM + i)), {}, 'true'), concurrency, WARM);
    await measure('warm', helloUrl.origin, (p, i) => post(p, helloUrl.pathname, floorBody('relayOnce', warmed(2 * WARM + i)), {}, 'true'), concurrency, WARM);
    await measure('warm', helloUrl.origin, (p, i) => post(p, helloUrl.pathname, floorBody('relayRequired', warmed(3 * WARM + i)), {}, 'true'), concurrency, WARM);
    await measure('warm', gatewayUrl.origin, (p, i) => post(p, gatewayUrl.pathname, exchangeBody(warmed(4 * WARM + i)), { authorization: `Bearer ${user}` }, 'PhoneNumberVerified'), concurrency, WARM);
    await measure('warm', gatewayUrl.origin, (p) => post(p, gatewayUrl.pathname, quotaBody, { authorization: `Bearer ${reader}` }, 'estimatedRemaining'), concurrency, WARM);
    const [gw, sm, yoga] = [gateway.child.pid!, simulator.child.pid!, ceiling.child.pid!];
    const paths: { name: string; origin: string; call: Call; pid: number }[] = [
      { name: 'yoga hello-world (ceiling)', origin: helloUrl.origin, call: (p) => post(p, helloUrl.pathname, helloBody, {}, 'world'), pid: yoga },
      { name: 'exchange: direct to simulator', origin: simUrl.origin, call: (p, i) => post(p, `/wxa/business/getuserphonenumber?access_token=${accessToken}`, JSON.stringify({ code: direct[i] }), {}, 'phone_info'), pid: sm },
      { name: 'floor: yoga + WeChat call', origin: helloUrl.origin, call: (p, i) => post(p, helloUrl.pathname, floorBody('relay', relayed[i]!), {}, 'true'), pid: yoga },
      { name: 'floor: yoga + claim, WeChat call, commit', origin: helloUrl.origin, call: (p, i) => post(p, helloUrl.pathname, floorBody('relayOnce', relayedOnce[i]!), {}, 'true'), pid: yoga },
      { name: 'floor: yoga + all required work, hand-written', origin: helloUrl.origin, call: (p, i) => post(p, helloUrl.pathname, floorBody('relayRequired', relayedRequired[i]!), {}, 'true'), pid: yoga },
      { name: 'exchange: through gateway', origin: gatewayUrl.origin, call: (p, i) => post(p, gatewayUrl.pathname, exchangeBody(viaGateway[i]!), { authorization: `Bearer ${user}` }, 'PhoneNumberVerified'), pid: gw },
      { name: 'quota: simulator usage API', origin: simUrl.origin, call: (p) => get(p, `/wxa/charge/usage/get?access_token=${accessToken}&spuId=10000077&offset=0&limit=20`, 'effectiveUse'), pid: sm },
      { name: 'quota: through gateway', origin: gatewayUrl.origin, call: (p) => post(p, gatewayUrl.pathname, quotaBody, { authorization: `Bearer ${reader}` }, 'estimatedRemaining'), pid: gw },
    ];
    // Every path a slice at a time, round after round, each round starting at another path: the
    // machine's speed drifts within minutes (the ceiling alone has moved 1.6x within an hour), and
    // paths measured minutes apart would put that drift into their ratios.
    const per = Math.ceil(N / ROUNDS);
    const rounds: Sample[][] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round: Sample[] = [];
      for (let k = 0; k < paths.length; k++) {
        const path = paths[(r + k) % paths.length]!;
        round.push(await measure(path.name, path.origin, path.call, concurrency, Math.min(per, N - r * per), path.pid, r * per));
      }
      rounds.push(round);
    }
    return rounds;
  };

  /** The ratios within one round (or over pooled rows), each path found by its name's start. */
  const ratiosOf = (rows: readonly Measured[], c: number) => {
    const find = (name: string) => rows.find((r) => r.name.startsWith(name) && r.concurrency === c)!;
    return {
      exchangeVsCeiling: find('exchange: through').rps / find('yoga').rps,
      exchangeVsDirect: find('exchange: through').rps / find('exchange: direct').rps,
      exchangeAddedP50ms: find('exchange: through').p50ms - find('exchange: direct').p50ms,
      // The floors: what any gateway that calls WeChat (and keeps once-per-code) pays, as the same ratios.
      floorCallVsCeiling: find('floor: yoga + WeChat').rps / find('yoga').rps,
      floorOnceVsCeiling: find('floor: yoga + claim').rps / find('yoga').rps,
      floorOnceAddedP50ms: find('floor: yoga + claim').p50ms - find('exchange: direct').p50ms,
      exchangeVsFloorOnce: find('exchange: through').rps / find('floor: yoga + claim').rps,
      // What the invariants cost with nothing else, and how far this gateway is from that.
      floorRequiredVsCeiling: find('floor: yoga + all required').rps / find('yoga').rps,
      floorRequiredAddedP50ms: find('floor: yoga + all required').p50ms - find('exchange: direct').p50ms,
      exchangeVsFloorRequired: find('exchange: through').rps / find('floor: yoga + all required').rps,
      quotaVsCeiling: find('quota: through').rps / find('yoga').rps,
      // The same comparison in CPU: a hello-world request's server CPU over an exchange's (1 = as cheap as hello-world).
      exchangeCpuVsCeiling: find('yoga').serverCpuUsPerRequest! / find('exchange: through').serverCpuUsPerRequest!,
    };
  };

  const rows: Measured[] = [];
  const summary: ({ concurrency: number; rounds: number } & Record<string, number>)[] = [];
  for (const c of CONCURRENCY) {
    const rounds = await scenario(c);
    // Round 0 ran the paths in their listed order.
    rows.push(...rounds[0]!.map((first) => pooled(rounds.map((round) => round.find((s) => s.name === first.name)!))));
    // Each ratio is taken within a round, whose paths ran minutes closer together than the whole
    // run's, and the median of the rounds is reported.
    const perRound = rounds.map((round) => ratiosOf(round, c));
    const keys = Object.keys(perRound[0]!) as (keyof (typeof perRound)[number])[];
    summary.push({ concurrency: c, rounds: rounds.length, ...Object.fromEntries(keys.map((k) => [k, +median(perRound.map((x) => x[k])).toFixed(3)])) });
  }

  // Soak: exchanges for SOAK_SECONDS at moderate concurrency, then the gateway's RSS.
  const rssBefore = await rssMb(gateway.child.pid!);
  // Enough codes for the whole soak at the best rate measured, so it lasts SOAK_SECONDS, not less.
  const bestRate = Math.max(...rows.filter((r) => r.name === 'exchange: through gateway').map((r) => r.rps));
  const soakCodes = await mint(Math.max(1000, Math.ceil(bestRate * SOAK_SECONDS * 1.5)));
  const soakStart = Date.now();
  const soakEnd = soakStart + SOAK_SECONDS * 1000;
  let soaked = 0;
  const pool = new Pool(gatewayUrl.origin, { connections: 8 });
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (Date.now() < soakEnd && soaked < soakCodes.length) {
        await post(pool, gatewayUrl.pathname, exchangeBody(soakCodes[soaked++]!), { authorization: `Bearer ${user}` }, 'PhoneNumberVerified');
      }
    }),
  );
  await pool.close();
  const soakSeconds = +((Date.now() - soakStart) / 1000).toFixed(1);
  const rssAfter = await rssMb(gateway.child.pid!);

  // Where the time goes: the same exchange, one at a time, through a gateway that traces its
  // phases (its own process and, on SQLite, its own file), spans collected here.
  let phases: PhaseRow[] = [];
  if (PHASE_N > 0) {
    const collector = new SpanCollector();
    const endpoint = await collector.start();
    const traced = await start(['bin/wxphone.mjs', 'serve', '--port', '0'], {
      ...gatewayEnv,
      ...(usePg ? {} : { DATABASE_URL: `file:${join(dir, 'traced.db')}` }),
      REDIS_KEY_PREFIX: `wxbench-traced-${process.pid}`,
      OTEL_TRACING: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      // Every span of the pass kept (the default queue of 2,048 would drop some) and sent in a few batches.
      OTEL_BSP_MAX_QUEUE_SIZE: '200000',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10000',
      OTEL_BSP_SCHEDULE_DELAY: '1000',
    }, 4);
    const tracedUrl = new URL(urlAfter(traced.lines, 'GraphQL'));
    const warmCodes = await mint(Math.min(WARM, PHASE_N));
    const phaseCodes = await mint(PHASE_N);
    const send = (codes: string[]) => (p: Pool, i: number) => post(p, tracedUrl.pathname, exchangeBody(codes[i]!), { authorization: `Bearer ${user}` }, 'PhoneNumberVerified');
    await measure('warm', tracedUrl.origin, send(warmCodes), 1, warmCodes.length);
    const roundTrip = await measure('traced exchange', tracedUrl.origin, send(phaseCodes), 1, PHASE_N);
    // SIGTERM: the CLI sends the batched spans before it exits.
    traced.child.kill('SIGTERM');
    await new Promise((r) => traced.child.once('exit', r));
    await collector.close();
    phases = [{ segment: 'client round trip (HTTP, all of it)', p50ms: roundTrip.p50ms, meanMs: +(1000 / roundTrip.rps).toFixed(3), ofOperation: '' }, ...phaseBreakdown(collector.spans, PHASE_N)];
  }

  gateway.child.kill('SIGTERM');
  ceiling.child.kill('SIGTERM');
  simulator.child.kill('SIGTERM');
  await new Promise((r) => gateway.child.once('exit', r));
  if (usePg) {
    // The bench's schema goes with it: a run leaves only its results file behind.
    const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await c.connect();
    await c.query(`drop schema if exists ${pgSchema} cascade`);
    await c.query(`drop schema if exists ${pgFloorSchema} cascade`);
    await c.end();
  }
  const profile = PROFILE ? topOfProfile(profileDir) : [];

  const storage = `${usePg ? 'postgres' : 'sqlite'}+${process.env.REDIS_URL ? 'redis' : 'memory'}`;
  console.table(rows);
  console.table(summary);
  console.log(`gateway RSS: ${rssBefore} MB before the soak, ${rssAfter} MB after ${soakSeconds} s (${soaked} exchanges)`);
  if (phases.length) {
    console.log(`where an exchange's time goes (one at a time, ${PHASE_N} exchanges, traced gateway):`);
    console.table(phases);
  }
  if (profile.length) console.table(profile);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  // One file per backend, overwritten: the latest run is the one to read, earlier ones are in git's history.
  const file = join(ROOT, `bench/results/bench-${storage}.json`);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cores: availableParallelism(), storage, rows, summary, soak: { seconds: soakSeconds, exchanges: soaked, rssBeforeMb: rssBefore, rssAfterMb: rssAfter }, phases, profile }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

await main();
