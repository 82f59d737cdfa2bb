import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config.js';
import { createGateway } from './gateway.js';
import { createLogger } from '../src/log.js';
import { shutdownTracing } from '../plugins/tracing/load.js';
import { SANDBOX_APP, SimulatorControl, startSimulator } from '../src/simulator/index.js';
import { signSessionToken } from '../src/auth/index.js';
import { createGatewayClient } from '../sdk/client.js';
import { ensureConsoleBuilt } from '../console/build.js';
import { CONSOLE_SCOPES, consoleLink } from '../console/link.js';

const USAGE = `usage: wxphone <command> [options]

commands:
  serve [--port N] [--host H] [--simulator-port N]   start the gateway (what npm start runs)
  simulator [--port N] [--host H]                     start the WeChat simulator alone
  token --sub OPENID [--appid APPID] [--scope "s1 s2"] [--ttl 1h]
                                                      print a session JWT signed with the configured key
  console-link --sub NAME [--scope "s1 s2"] [--ttl 8h] [--url URL]
                                                      print a link that signs the operations console in
  demo                                                run the whole flow once against a throwaway sandbox
`;

function fail(message: string): never {
  process.stderr.write(`wxphone: ${message}\n`);
  process.exit(2);
}

function portOption(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) fail(`--${name} must be a port number`);
  return value;
}

function onShutdown(close: () => Promise<void>) {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`\n${signal}: shutting down\n`);
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function serve(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, host: { type: 'string' }, 'simulator-port': { type: 'string' } },
  });
  const env = { ...process.env };
  const port = portOption(values.port, 'port');
  const simPort = portOption(values['simulator-port'], 'simulator-port');
  if (port) env.PORT = port;
  if (values.host) env.HOST = values.host;
  if (simPort) env.SIMULATOR_PORT = simPort;
  const config = loadConfig(env);
  await buildConsoleIfStale();
  const gateway = await createGateway(config);
  const { url } = await gateway.listen();
  // Then the spans still batched for the collector (if this process exports them).
  onShutdown(() => gateway.close().finally(shutdownTracing));
  const mode = config.production ? 'production' : config.sandbox ? 'sandbox' : 'development';
  const lines = [`wxphone-gateway (${mode}) ready`, `GraphQL:    ${url}${config.production ? '' : '   (GraphiQL in a browser)'}`];
  if (gateway.simulator) {
    lines.push(`Simulator:  ${gateway.simulator.url}   (the WeChat stand-in; control API under /__sim__)`);
    const firstApp = [...config.apps.keys()][0] ?? SANDBOX_APP.appid;
    lines.push(`Dev token:  npx wxphone token --sub o_demo_user --appid ${firstApp} --scope "phone:exchange"`);
    if (config.jwt.secret) {
      const jwt = await signSessionToken(
        { secret: config.jwt.secret, issuer: config.jwt.issuer, audience: config.jwt.audience },
        { subject: 'sandbox-operator', scopes: [...CONSOLE_SCOPES], ttl: '12h' },
      );
      lines.push(`Console:    ${consoleLink(url.replace(/\/graphql$/, ''), jwt)}   (signed in as an operator, all scopes, 12 h)`);
    }
  } else {
    lines.push(`WeChat:     ${gateway.wechatApiBase}`);
  }
  lines.push(`Health:     ${url.replace(/\/graphql$/, '')}/health, /ready, /metrics`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function simulator(argv: string[]) {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, host: { type: 'string' } } });
  const port = Number(portOption(values.port, 'port') ?? process.env.SIMULATOR_PORT ?? 4100);
  // The simulator needs only the apps: read them as sandbox mode would (the sandbox app plus the config file's).
  const config = loadConfig({ ...process.env, WECHAT_API_BASE: '', NODE_ENV: '' });
  const apps = [...config.apps.values()].map((a) => ({
    appid: a.appid,
    secret: a.secret,
    product: a.product,
    subjectType: a.subjectType,
    ...(a.category ? { category: a.category } : {}),
  }));
  const sim = await startSimulator({ port, host: values.host ?? '127.0.0.1', apps });
  onShutdown(() => sim.close());
  process.stdout.write(`WeChat simulator listening on ${sim.url} (control API under /__sim__; apps: ${apps.map((a) => a.appid).join(', ')})\n`);
}

async function token(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { sub: { type: 'string' }, appid: { type: 'string' }, scope: { type: 'string' }, ttl: { type: 'string' } },
  });
  if (!values.sub) fail('token needs --sub OPENID');
  const config = loadConfig();
  if (!config.sandbox && !process.env.JWT_SECRET) {
    fail('outside sandbox mode, tokens can be signed only with a configured JWT_SECRET');
  }
  if (!config.jwt.secret) fail('no signing key is configured (JWT_JWKS_URL verifies only)');
  if (values.ttl && !/^\d+\s*(s|m|h|d)$/.test(values.ttl)) fail('--ttl looks like 30s, 15m, 1h or 7d');
  const scopes = (values.scope ?? 'phone:exchange').split(/\s+/).filter(Boolean);
  const appid = values.appid ?? (config.sandbox ? SANDBOX_APP.appid : undefined);
  // The gateway refuses a user's session that names no app (see src/auth/session.ts).
  if (!appid && scopes.includes('phone:exchange')) fail('a phone:exchange token needs --appid APPID');
  const jwt = await signSessionToken(
    { secret: config.jwt.secret, issuer: config.jwt.issuer, audience: config.jwt.audience },
    { subject: values.sub, appid, scopes, ttl: values.ttl ?? '1h' },
  );
  process.stdout.write(`${jwt}\n`);
}

/**
 * The console's files come from `npm install` (its prepare script); a checkout installed without
 * scripts, or whose console sources changed since, gets them here. The API does not need them,
 * so a build that fails is reported and the gateway starts anyway.
 */
async function buildConsoleIfStale() {
  try {
    const started = Date.now();
    const { built } = await ensureConsoleBuilt();
    if (built) process.stderr.write(`built the operations console (console/dist) in ${Date.now() - started} ms\n`);
  } catch (e) {
    process.stderr.write(`wxphone: the operations console could not be built (${(e as Error).message.split('\n')[0]}); /console answers 503 until \`npm run console:build\` succeeds\n`);
  }
}

/** A console link for an operator: a token with operator scopes only, in the link's fragment. */
async function consoleLinkCommand(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { sub: { type: 'string' }, scope: { type: 'string' }, ttl: { type: 'string' }, url: { type: 'string' } },
  });
  if (!values.sub) fail('console-link needs --sub NAME (who the operator is, as the token\'s subject)');
  const config = loadConfig();
  if (!config.sandbox && !process.env.JWT_SECRET) fail('outside sandbox mode, links can be signed only with a configured JWT_SECRET');
  if (!config.jwt.secret) fail('no signing key is configured (JWT_JWKS_URL verifies only): get an operator token from your identity provider and paste it into the console');
  const ttl = values.ttl ?? '8h';
  if (!/^\d+\s*(s|m|h|d)$/.test(ttl)) fail('--ttl looks like 30m, 8h or 1d');
  const scopes = (values.scope ?? 'quota:read').split(/\s+/).filter(Boolean);
  const foreign = scopes.filter((s) => !(CONSOLE_SCOPES as readonly string[]).includes(s));
  if (foreign.length || !scopes.length) fail(`a console link carries operator scopes only (${CONSOLE_SCOPES.join(', ')}), not: ${foreign.join(', ') || '(none)'}`);
  let base = values.url ?? `http://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host}:${config.port}`;
  try {
    const u = new URL(base);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    base = u.origin;
  } catch {
    fail('--url is the gateway\'s address as operators reach it, e.g. https://gw.example.com');
  }
  const jwt = await signSessionToken({ secret: config.jwt.secret, issuer: config.jwt.issuer, audience: config.jwt.audience }, { subject: values.sub, scopes, ttl });
  process.stdout.write(`${consoleLink(base, jwt)}\n`);
}

/** The whole flow once, against a throwaway sandbox: what a newcomer's first exchange looks like. */
async function demo() {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-demo-'));
  const config = loadConfig({ DATABASE_URL: `file:${join(dir, 'demo.db')}`, SIMULATOR_PORT: '0', LOG_LEVEL: 'warn' }, dir);
  const gateway = await createGateway(config, { log: createLogger({ level: 'warn' }) });
  try {
    const { url } = await gateway.listen(0);
    const sim = new SimulatorControl(gateway.simulator!.url);
    const step = (n: number, text: string) => process.stdout.write(`${n}. ${text}\n`);
    step(1, `sandbox gateway at ${url}, WeChat simulator at ${sim.baseUrl}`);
    const minted = await sim.phoneCode({ appid: SANDBOX_APP.appid, phoneNumber: '13800138000', openid: 'o_demo_user' });
    if (!('code' in minted)) throw new Error(`the simulator refused to mint a code: ${JSON.stringify(minted)}`);
    step(2, `the user tapped the button: the simulator issued a one-time code (valid 5 minutes; one unit charged)`);
    const jwt = await signSessionToken(
      { secret: config.jwt.secret!, issuer: config.jwt.issuer, audience: config.jwt.audience },
      { subject: 'o_demo_user', appid: SANDBOX_APP.appid, scopes: ['phone:exchange'] },
    );
    step(3, 'the mini program backend signed a session token (sub = openid, appid, scope phone:exchange)');
    const client = createGatewayClient({ url, token: jwt });
    const first = await client.ExchangePhoneCode({ input: { code: minted.code, purpose: 'login' } });
    step(4, `exchangePhoneCode → ${JSON.stringify(first.exchangePhoneCode)}`);
    const again = await client.ExchangePhoneCode({ input: { code: minted.code, purpose: 'login' } });
    step(5, `same code again, same session → ${again.exchangePhoneCode.__typename}, replayed: ${'replayed' in again.exchangePhoneCode ? again.exchangePhoneCode.replayed : '-'}`);
    const other = createGatewayClient({
      url,
      token: await signSessionToken(
        { secret: config.jwt.secret!, issuer: config.jwt.issuer, audience: config.jwt.audience },
        { subject: 'o_someone_else', appid: SANDBOX_APP.appid, scopes: ['phone:exchange'] },
      ),
    });
    const stolen = await other.ExchangePhoneCode({ input: { code: minted.code, purpose: 'login' } });
    step(6, `same code, another session → ${'code' in stolen.exchangePhoneCode ? stolen.exchangePhoneCode.code : stolen.exchangePhoneCode.__typename}`);
    const stats = await sim.stats();
    step(7, `WeChat saw ${stats.calls['/wxa/business/getuserphonenumber'] ?? 0} exchange call(s) and ${stats.tokensIssued.stable} token fetch(es)`);
  } finally {
    await gateway.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = { serve, simulator, token, demo, 'console-link': consoleLinkCommand };
const run = command ? commands[command] : undefined;
if (!run) {
  process.stderr.write(USAGE);
  process.exit(command ? 2 : 0);
}
run(rest).catch((e) => {
  if (e instanceof ConfigError) fail(`configuration: ${e.message}`);
  process.stderr.write(`wxphone ${command}: ${(e as Error).message}\n`);
  process.exit(1);
});
