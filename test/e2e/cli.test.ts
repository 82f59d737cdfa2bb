import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimulatorControl } from '../../src/simulator/index.js';
import { createGatewayClient } from '../../sdk/client.js';

const BIN = resolve(import.meta.dirname, '../../bin/wxphone.mjs');

/** The environment of a fresh machine: none of the variables CI or a developer may have set. */
function freshEnv(extra: Record<string, string> = {}) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(DATABASE_URL|REDIS_URL|WECHAT_API_BASE|WXPHONE_|JWT_|NODE_ENV|PORT|HOST|SIMULATOR_PORT)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

function waitForLines(child: ChildProcess, count: number, timeoutMs = 20_000): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no start-up lines in time:\n${out}\n${err}`)), timeoutMs);
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      const lines = out.split('\n').filter((l) => l && !l.startsWith('{'));
      if (lines.length >= count) {
        clearTimeout(timer);
        resolvePromise(lines);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${out}\n${err}`)));
  });
}

describe('the wxphone CLI, as a newcomer uses it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-cli-'));
  let server: ChildProcess | undefined;
  afterAll(() => {
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('serve starts a sandbox, prints its endpoints, and a code minted there exchanges with a CLI token', async () => {
    server = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--simulator-port', '0'], { cwd: dir, env: freshEnv({ LOG_LEVEL: 'warn' }) });
    const lines = await waitForLines(server, 5);
    expect(lines[0]).toMatch(/sandbox/);
    const graphql = /GraphQL:\s+(\S+)/.exec(lines.join('\n'))?.[1];
    const simulator = /Simulator:\s+(\S+)/.exec(lines.join('\n'))?.[1];
    const tokenCommand = /Dev token:\s+npx wxphone (.+)$/m.exec(lines.join('\n'))?.[1];
    expect(graphql).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
    expect(simulator).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(tokenCommand).toMatch(/^token --sub \S+ --appid wxa1b2c3d4e5f60001 --scope "phone:exchange"$/);
    expect(existsSync(join(dir, 'data/wxphone.db'))).toBe(true);

    const args = tokenCommand!.match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
    const token = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, env: freshEnv(), encoding: 'utf8' });
    expect(token.status, token.stderr).toBe(0);
    const jwt = token.stdout.trim();
    expect(jwt.split('.')).toHaveLength(3);

    const sim = new SimulatorControl(simulator!);
    const minted = await sim.phoneCode({ appid: 'wxa1b2c3d4e5f60001', phoneNumber: '13800138000' });
    expect('code' in minted).toBe(true);
    const client = createGatewayClient({ url: graphql!, token: jwt });
    const r = await client.ExchangePhoneCode({ input: { code: (minted as { code: string }).code, purpose: 'login' } });
    expect(r.exchangePhoneCode).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: '13800138000', replayed: false });

    // The sandbox's console link signs an operator in: the page is there, and the token carries every operator scope.
    const link = /Console:\s+(\S+)/.exec(lines.join('\n'))?.[1];
    expect(link).toMatch(new RegExp(`^${graphql!.replace(/\/graphql$/, '')}/console/#token=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`));
    const page = await fetch(link!.split('#')[0]!);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    const operator = createGatewayClient({ url: graphql!, token: link!.split('#token=')[1]! });
    expect((await operator.Session()).session.scopes).toEqual(['audit:admin', 'audit:read', 'billing:admin', 'quota:read']);

    const exited = new Promise<number | null>((r) => server!.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('console-link prints a sign-in link for the console: the token, with the operator scopes asked for, after the #', () => {
    const r = spawnSync(process.execPath, [BIN, 'console-link', '--sub', 'ops-alice', '--scope', 'quota:read audit:read'], { cwd: dir, env: freshEnv(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const m = /^http:\/\/127\.0\.0\.1:4000\/console\/#token=([\w-]+)\.([\w-]+)\.([\w-]+)\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const claims = JSON.parse(Buffer.from(m![2]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: 'ops-alice', scope: 'quota:read audit:read' });
    expect(claims.appid).toBeUndefined();
    expect((claims.exp as number) - (claims.iat as number)).toBe(8 * 3600);

    const behindProxy = spawnSync(process.execPath, [BIN, 'console-link', '--sub', 'ops', '--url', 'https://gw.example.com/', '--ttl', '30m'], { cwd: dir, env: freshEnv(), encoding: 'utf8' });
    expect(behindProxy.status, behindProxy.stderr).toBe(0);
    expect(behindProxy.stdout).toMatch(/^https:\/\/gw\.example\.com\/console\/#token=\S+\n$/);
  }, 60_000);

  it('console-link refuses a user scope, a missing --sub, and signing outside sandbox mode without JWT_SECRET', () => {
    const user = spawnSync(process.execPath, [BIN, 'console-link', '--sub', 'ops', '--scope', 'quota:read phone:exchange'], { cwd: dir, env: freshEnv(), encoding: 'utf8' });
    expect(user.status).toBe(2);
    expect(user.stderr).toMatch(/operator scopes only .* not: phone:exchange/);
    const nobody = spawnSync(process.execPath, [BIN, 'console-link'], { cwd: dir, env: freshEnv(), encoding: 'utf8' });
    expect(nobody.status).toBe(2);
    expect(nobody.stderr).toMatch(/--sub/);
    const outside = spawnSync(process.execPath, [BIN, 'console-link', '--sub', 'ops'], { cwd: dir, env: freshEnv({ WECHAT_API_BASE: 'http://127.0.0.1:9' }), encoding: 'utf8' });
    expect(outside.status).toBe(2);
    expect(outside.stderr).toMatch(/JWT_SECRET/);
    expect(outside.stdout).toBe('');
  }, 60_000);

  it('token is refused outside sandbox mode when no signing key is configured', () => {
    const r = spawnSync(process.execPath, [BIN, 'token', '--sub', 'o_x'], {
      cwd: dir,
      env: freshEnv({ WECHAT_API_BASE: 'http://127.0.0.1:9' }),
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/JWT_SECRET/);
    expect(r.stdout).toBe('');
  });

  it('token refuses to sign a phone:exchange token that names no app outside sandbox mode (the gateway would refuse it)', () => {
    const env = freshEnv({ WECHAT_API_BASE: 'http://127.0.0.1:9', JWT_SECRET: 'cli-test-secret-0123456789abcdef0123', WXPHONE_DATA_KEY: Buffer.alloc(32, 7).toString('base64') });
    const r = spawnSync(process.execPath, [BIN, 'token', '--sub', 'o_x'], { cwd: dir, env, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/needs --appid/);
    expect(r.stdout).toBe('');
    const ops = spawnSync(process.execPath, [BIN, 'token', '--sub', 'ops', '--scope', 'quota:read'], { cwd: dir, env, encoding: 'utf8' });
    expect(ops.status, ops.stderr).toBe(0);
    expect(ops.stdout.trim().split('.')).toHaveLength(3);
  });

  it('production without secrets refuses to start and names what is missing', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve'], { cwd: dir, env: freshEnv({ NODE_ENV: 'production' }), encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/JWT_SECRET or JWT_JWKS_URL/);
    expect(r.stderr).toMatch(/WXPHONE_DATA_KEY/);
  });

  it('an unknown command prints the usage and fails', () => {
    const r = spawnSync(process.execPath, [BIN, 'frobnicate'], { cwd: dir, env: freshEnv(), encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: wxphone/);
  });
});
