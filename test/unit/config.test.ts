import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, SANDBOX_JWT_SECRET } from '../../src/config.js';

function withFile(content: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-config-'));
  const path = join(dir, 'wxphone.config.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return { dir, path };
}

const APP = { appid: 'wx4f4bc4dec97d474b', secret: 's3cret', product: 'quick' };
const PROD_KEYS = { NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(40), WXPHONE_DATA_KEY: Buffer.alloc(32, 7).toString('base64') };

describe('loadConfig', () => {
  it('sandbox by default: simulator, SQLite under ./data, the sandbox app with its two purposes', () => {
    const { dir } = withFile({ apps: [] });
    const c = loadConfig({}, dir);
    expect(c.sandbox).toBe(true);
    expect(c.production).toBe(false);
    expect(c.wechatApiBase).toBeUndefined();
    expect(c.databaseUrl).toBe(`file:${join(dir, 'data/wxphone.db')}`);
    expect(c.port).toBe(4000);
    expect(c.simulatorPort).toBe(4100);
    expect(c.apps.get('wxa1b2c3d4e5f60001')?.purposes).toEqual(['login', 'order-contact']);
    expect(c.jwt).toMatchObject({ issuer: 'wxphone-sandbox', audience: 'wxphone', secret: SANDBOX_JWT_SECRET });
  });

  it('an unknown key in the config file is an error that names it', () => {
    const { dir, path } = withFile({ apps: [{ ...APP, colour: 'red' }], extra: 1 });
    expect(() => loadConfig({ WXPHONE_CONFIG: path }, dir)).toThrow(ConfigError);
    try {
      loadConfig({ WXPHONE_CONFIG: path }, dir);
    } catch (e) {
      expect((e as Error).message).toMatch(/colour/);
      expect((e as Error).message).toMatch(/extra/);
    }
  });

  it('reads secrets from the env var a config names, and names the ones missing', () => {
    const { dir, path } = withFile({ apps: [{ appid: APP.appid, secretEnv: 'MY_APP_SECRET' }] });
    expect(loadConfig({ WXPHONE_CONFIG: path, MY_APP_SECRET: 'from-env' }, dir).apps.get(APP.appid)?.secret).toBe('from-env');
    expect(() => loadConfig({ WXPHONE_CONFIG: path }, dir)).toThrow(/MY_APP_SECRET/);
  });

  it('never puts a secret in a config error message', () => {
    const { dir, path } = withFile({ apps: [{ ...APP, secret: 'super-secret-value', purposes: ['Bad Purpose'] }] });
    try {
      loadConfig({ WXPHONE_CONFIG: path }, dir);
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as Error).message).not.toContain('super-secret-value');
    }
  });

  it('production refuses to start without real secrets, naming each one', () => {
    const empty = mkdtempSync(join(tmpdir(), 'wxphone-config-'));
    let message = '';
    try {
      loadConfig({ NODE_ENV: 'production' }, empty);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/JWT_SECRET or JWT_JWKS_URL/);
    expect(message).toMatch(/WXPHONE_DATA_KEY/);
    expect(message).toMatch(/WXPHONE_CONFIG/);
    const { dir, path } = withFile({ apps: [APP] });
    expect(() => loadConfig({ ...PROD_KEYS, JWT_SECRET: SANDBOX_JWT_SECRET, WXPHONE_CONFIG: path }, dir)).toThrow(/sandbox secret/);
    const ok = loadConfig({ ...PROD_KEYS, WXPHONE_CONFIG: path }, dir);
    expect(ok).toMatchObject({ production: true, sandbox: false, wechatApiBase: 'https://api.weixin.qq.com' });
    expect(ok.apps.has('wxa1b2c3d4e5f60001')).toBe(false);
  });

  it('WECHAT_API_BASE turns the simulator off; bad ports and short keys are refused', () => {
    const { dir } = withFile({ apps: [] });
    expect(() => loadConfig({ WECHAT_API_BASE: 'http://127.0.0.1:9' }, dir)).toThrow(/JWT_SECRET or JWT_JWKS_URL.*WXPHONE_DATA_KEY/);
    expect(loadConfig({ WECHAT_API_BASE: 'http://127.0.0.1:9', ...PROD_KEYS, NODE_ENV: '' }, dir).sandbox).toBe(false);
    expect(() => loadConfig({ PORT: 'eighty' }, dir)).toThrow(/PORT/);
    expect(() => loadConfig({ JWT_SECRET: 'short' }, dir)).toThrow(/32/);
    expect(() => loadConfig({ WXPHONE_DATA_KEY: 'c2hvcnQ=' }, dir)).toThrow(/32 bytes/);
  });

  it('OpenTelemetry tracing: OTEL_TRACING, else on exactly when an OTLP endpoint is set; a bad value is named', () => {
    const { dir } = withFile({ apps: [] });
    expect(loadConfig({}, dir).tracing).toEqual({ enabled: false });
    expect(loadConfig({ OTEL_TRACING: 'true' }, dir).tracing).toEqual({ enabled: true });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, dir).tracing).toEqual({ enabled: true });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, dir).tracing).toEqual({ enabled: true });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACING: 'false' }, dir).tracing).toEqual({ enabled: false });
    expect(() => loadConfig({ OTEL_TRACING: 'yes' }, dir)).toThrow(/OTEL_TRACING must be true or false, got "yes"/);
  });

  it('PostgreSQL named statements: on unless DATABASE_PREPARED_STATEMENTS=false; a bad value is named', () => {
    const { dir } = withFile({ apps: [] });
    expect(loadConfig({}, dir).databasePreparedStatements).toBe(true);
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }, dir).databasePreparedStatements).toBe(false);
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'true' }, dir).databasePreparedStatements).toBe(true);
    expect(() => loadConfig({ DATABASE_PREPARED_STATEMENTS: 'off' }, dir)).toThrow(/DATABASE_PREPARED_STATEMENTS must be true or false, got "off"/);
  });

  it('exchange admission: defaults, the file, env over the file; bad values are named', () => {
    expect(loadConfig({}, withFile({ apps: [] }).dir).hardening.admission).toEqual({ maxInFlight: 128, maxQueued: 1024, maxWaitMs: 5000 });
    const { dir } = withFile({ apps: [], hardening: { admission: { maxInFlight: 8, maxQueued: 0, maxWaitMs: 500 } } });
    expect(loadConfig({}, dir).hardening.admission).toEqual({ maxInFlight: 8, maxQueued: 0, maxWaitMs: 500 });
    expect(loadConfig({ EXCHANGE_MAX_IN_FLIGHT: '32', EXCHANGE_MAX_QUEUED: '64' }, dir).hardening.admission).toEqual({ maxInFlight: 32, maxQueued: 64, maxWaitMs: 500 });
    expect(() => loadConfig({ EXCHANGE_MAX_IN_FLIGHT: '0' }, dir)).toThrow(/EXCHANGE_MAX_IN_FLIGHT must be a whole number from 1 to 100000/);
    expect(() => loadConfig({ EXCHANGE_MAX_QUEUED: 'lots' }, dir)).toThrow(/EXCHANGE_MAX_QUEUED/);
    expect(() => loadConfig({ EXCHANGE_MAX_IN_FLIGHT: '200000' }, dir)).toThrow(/EXCHANGE_MAX_IN_FLIGHT/);
    expect(() => loadConfig({}, withFile({ apps: [], hardening: { admission: { maxInFlight: 0 } } }).dir)).toThrow(/maxInFlight/);
  });

  it('connection deadlines: 10 s for the headers, 30 s for the whole request, 65 s idle between requests; the file may change them, within bounds', () => {
    expect(loadConfig({}, withFile({ apps: [] }).dir).hardening.http).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000 });
    const custom = withFile({ hardening: { http: { headersTimeoutSeconds: 5, requestTimeoutSeconds: 20, keepAliveTimeoutSeconds: 75 } } });
    expect(loadConfig({ WXPHONE_CONFIG: custom.path }, custom.dir).hardening.http).toEqual({ headersTimeoutMs: 5000, requestTimeoutMs: 20_000, keepAliveTimeoutMs: 75_000 });
    const inverted = withFile({ hardening: { http: { headersTimeoutSeconds: 40, requestTimeoutSeconds: 20 } } });
    expect(() => loadConfig({ WXPHONE_CONFIG: inverted.path }, inverted.dir)).toThrow(/headersTimeoutSeconds must not exceed requestTimeoutSeconds/);
    const minutes = withFile({ hardening: { http: { requestTimeoutSeconds: 3600 } } });
    expect(() => loadConfig({ WXPHONE_CONFIG: minutes.path }, minutes.dir)).toThrow(ConfigError);
  });

  it('CORS origins: any in sandbox mode, none elsewhere unless listed (file or CORS_ORIGINS, env over the file); malformed origins are named', () => {
    const { dir } = withFile({ apps: [] });
    expect(loadConfig({}, dir).hardening.corsOrigins).toBe('*');
    expect(loadConfig({ ...PROD_KEYS, NODE_ENV: 'development', WECHAT_API_BASE: 'http://127.0.0.1:9' }, dir).hardening.corsOrigins).toEqual([]);
    const listed = withFile({ apps: [APP], hardening: { cors: { origins: ['https://Console.example.com', 'http://localhost:5173'] } } });
    const prod = { ...PROD_KEYS, WXPHONE_CONFIG: listed.path };
    expect(loadConfig(prod, listed.dir).hardening.corsOrigins).toEqual(['https://console.example.com', 'http://localhost:5173']);
    expect(loadConfig({ ...prod, CORS_ORIGINS: 'https://a.example, https://b.example:8443' }, listed.dir).hardening.corsOrigins).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(loadConfig({ ...prod, CORS_ORIGINS: '*' }, listed.dir).hardening.corsOrigins).toBe('*');
    for (const bad of ['https://console.example.com/', 'console.example.com', 'https://x.example/path', 'ftp://x.example']) {
      expect(() => loadConfig({ ...prod, CORS_ORIGINS: bad }, listed.dir), bad).toThrow(/must be a scheme and a host/);
    }
  });

  it('persisted documents: any document and APQ by default; TRUSTED_DOCUMENTS and PERSISTED_QUERIES over the file; bad values named', () => {
    const { dir } = withFile({ apps: [] });
    expect(loadConfig({}, dir).hardening).toMatchObject({ trustedDocuments: 'allow', persistedQueries: true });
    const file = withFile({ hardening: { trustedDocuments: 'only', persistedQueries: false } });
    expect(loadConfig({ WXPHONE_CONFIG: file.path }, file.dir).hardening).toMatchObject({ trustedDocuments: 'only', persistedQueries: false });
    expect(loadConfig({ WXPHONE_CONFIG: file.path, TRUSTED_DOCUMENTS: 'allow', PERSISTED_QUERIES: 'true' }, file.dir).hardening).toMatchObject({ trustedDocuments: 'allow', persistedQueries: true });
    expect(() => loadConfig({ TRUSTED_DOCUMENTS: 'yes' }, dir)).toThrow(/TRUSTED_DOCUMENTS must be allow or only/);
  });

  it('a config file that is not JSON is reported by position, never by quoting its text', () => {
    const { dir, path } = withFile('{"apps":[{"appid":"wx4f4bc4dec97d474b","secret":SUPERSECRET}]}');
    try {
      loadConfig({ WXPHONE_CONFIG: path }, dir);
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect((e as Error).message).toMatch(/not valid JSON/);
      expect((e as Error).message).not.toContain('SUPERSECRET');
    }
  });

  it('a missing or malformed explicit config file is a clear error', () => {
    const { dir } = withFile('{ not json');
    expect(() => loadConfig({ WXPHONE_CONFIG: 'nope.json' }, dir)).toThrow(/does not exist/);
    expect(() => loadConfig({ WXPHONE_CONFIG: 'wxphone.config.json' }, dir)).toThrow(/cannot read/);
    const clean = mkdtempSync(join(tmpdir(), 'wxphone-config-'));
    expect(() => loadConfig({ WXPHONE_DATA_KEY: `${'A'.repeat(43)}!` }, clean)).toThrow(/WXPHONE_DATA_KEY/);
  });
});
