/**
 * Exchange throughput and latency through the gateway vs. the same WeChat call
 * sent straight to the simulator, on this machine, in one run. Prints a table
 * and writes bench/results/exchange-<timestamp>.json.
 *
 *   npm run bench                 # SQLite + in-memory cache
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench
 */
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config.js';
import { createGateway } from '../src/server.js';
import { createLogger } from '../src/log.js';
import { SANDBOX_APP } from '../src/simulator/index.js';
import { signSessionToken } from '../plugins/jwt-session/index.js';

const N = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = [1, 32];

const dir = mkdtempSync(join(tmpdir(), 'wxphone-bench-'));
const config = loadConfig({
  ...process.env,
  WXPHONE_CONFIG: '',
  WECHAT_API_BASE: '',
  SIMULATOR_PORT: '0',
  DATABASE_URL: process.env.DATABASE_URL ?? `file:${join(dir, 'bench.db')}`,
  REDIS_KEY_PREFIX: `wxbench-${process.pid}`,
}, dir);
const gateway = await createGateway(config, { log: createLogger({ level: 'warn' }) });
const { url } = await gateway.listen(0);
const state = gateway.simulator!.state;
const sim = gateway.simulator!.url;
const now = Math.floor(state.now() / 1000);
state.addPack(SANDBOX_APP.appid, { all: 1_000_000, startTime: now - 60, endTime: now + 86_400 });

const jwt = await signSessionToken(
  { secret: config.jwt.secret!, issuer: config.jwt.issuer, audience: config.jwt.audience },
  { subject: 'o_bench', appid: SANDBOX_APP.appid, scopes: ['phone:exchange'] },
);
const accessToken = await gateway.tokens.get(SANDBOX_APP.appid);
const mutation = 'mutation($input: ExchangePhoneCodeInput!){ exchangePhoneCode(input:$input){ __typename } }';

function mint(): string {
  const r = state.mintPhoneCode(SANDBOX_APP.appid, '13800138000');
  if (!('code' in r)) throw new Error('no quota');
  return r.code;
}

async function viaGateway(code: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
    body: JSON.stringify({ query: mutation, variables: { input: { code, purpose: 'login' } } }),
  });
  const body = await res.text();
  if (!body.includes('PhoneNumberVerified')) throw new Error(`unexpected: ${body}`);
}

async function direct(code: string) {
  const res = await fetch(`${sim}/wxa/business/getuserphonenumber?access_token=${accessToken}`, { method: 'POST', body: JSON.stringify({ code }) });
  const body = await res.text();
  if (!body.includes('phone_info')) throw new Error(`unexpected: ${body}`);
}

async function run(name: string, call: (code: string) => Promise<void>, concurrency: number) {
  const codes = Array.from({ length: N }, mint);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < codes.length) {
        const code = codes[next++]!;
        const t0 = performance.now();
        await call(code);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return { name, concurrency, requests: N, rps: Math.round(N / seconds), p50ms: +pct(50).toFixed(3), p99ms: +pct(99).toFixed(3) };
}

// Warm both paths (JIT, connections, prepared statements) before measuring.
for (let i = 0; i < 200; i++) {
  await viaGateway(mint());
  await direct(mint());
}
const rows: Awaited<ReturnType<typeof run>>[] = [];
for (const c of CONCURRENCY) {
  rows.push(await run('direct to simulator', direct, c));
  rows.push(await run('through gateway', viaGateway, c));
}
const storage = `${gateway.store.dialect}+${gateway.cache.kind}`;
const summary = CONCURRENCY.map((c) => {
  const d = rows.find((r) => r.concurrency === c && r.name.startsWith('direct'))!;
  const g = rows.find((r) => r.concurrency === c && r.name.startsWith('through'))!;
  return { concurrency: c, throughputRatio: +(g.rps / d.rps).toFixed(3), addedP50ms: +(g.p50ms - d.p50ms).toFixed(3) };
});
console.table(rows);
console.table(summary);
const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
console.log(`storage ${storage}, node ${process.version}, rss ${rssMb} MB (gateway + simulator + load generator in one process)`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/exchange-${storage}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url);
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, storage, rows, summary, rssMb }, null, 2)}\n`);
console.log(`wrote ${file.pathname}`);
await gateway.close();
