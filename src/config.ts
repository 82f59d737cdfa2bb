// Longer than a module usually is, on purpose: every setting, its validation, its env override and
// its default in one place, so there is one answer to "what does this key do".
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { SANDBOX_APP } from './sandbox-app.js';
import { SUBJECT_TYPES, type SubjectType } from './wechat/subject-types.js';
import { parseApiSecurityKeys, type ApiSecurityField, type ApiSecurityKeys } from './wechat/api-security/keys.js';
import { aesKeyFromEncodingAesKey, type MessagePushSettings } from './wechat/message-push.js';
import { APPID_PATTERN } from './wechat/appid.js';

/**
 * One typed configuration, read once from the environment and an optional JSON
 * file. Secrets come only from here (file or env), never from GraphQL.
 */

/** What a purpose an app declares looks like: a lower-case slug, recorded with every consent. */
export const PURPOSE_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;

const appSchema = z
  .object({
    appid: z.string().regex(APPID_PATTERN, 'appid must look like wx followed by 16 hex characters'),
    secret: z.string().min(1).optional(),
    secretEnv: z.string().min(1).optional(),
    product: z.enum(['quick', 'realtime']).default('quick'),
    subjectType: z.enum(SUBJECT_TYPES).default('enterprise'),
    category: z.string().optional(),
    apiSecurity: z.lazy(() => apiSecuritySchema).optional(),
    purposes: z.array(z.string().regex(PURPOSE_PATTERN)).min(1).default(['login']),
    lowQuota: z.lazy(() => thresholdsSchema).optional(),
    messagePush: z.lazy(() => messagePushSchema).optional(),
  })
  .strict();

// WeChat's console: 开发管理 → 开发设置 → 消息推送 (Token, EncodingAESKey, 数据格式).
const messagePushSchema = z
  .object({
    token: z.string().min(1).max(128).regex(/^\S+$/, 'token must not contain spaces').optional(),
    tokenEnv: z.string().min(1).optional(),
    encodingAesKey: z.string().regex(/^[A-Za-z0-9+/]{43}$/, 'encodingAesKey must be the 43 letters and digits the console shows').optional(),
    encodingAesKeyEnv: z.string().min(1).optional(),
    format: z.enum(['json', 'xml']).default('xml'),
  })
  .strict();

const thresholdsSchema = z
  .object({
    unitsBelow: z.number().int().min(0).optional(),
    daysBelow: z.number().int().min(0).optional(),
  })
  .strict();

/**
 * WeChat's API security mode (API安全) for one app: each key inline, from an env var, or from a
 * file (a path relative to the config file); the key numbers (sn) as the console shows them.
 */
const keyNumber = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be the key number the console shows');
const apiSecuritySchema = z
  .object({
    algorithm: z.string().default('AES256_GCM'),
    signatureAlgorithm: z.string().default('RSAwithSHA256'),
    symmetricKey: z.string().min(1).optional(),
    symmetricKeyEnv: z.string().min(1).optional(),
    symmetricKeyFile: z.string().min(1).optional(),
    symmetricKeySn: keyNumber,
    privateKey: z.string().min(1).optional(),
    privateKeyEnv: z.string().min(1).optional(),
    privateKeyFile: z.string().min(1).optional(),
    privateKeySn: keyNumber,
    platformCertificate: z.string().min(1).optional(),
    platformCertificateEnv: z.string().min(1).optional(),
    platformCertificateFile: z.string().min(1).optional(),
    platformCertificateSn: keyNumber,
  })
  .strict();

const windowLimitSchema = z
  .object({
    limit: z.number().int().min(0).max(1_000_000).optional(),
    windowSeconds: z.number().min(0.05).max(86_400).optional(),
  })
  .strict();

const hardeningSchema = z
  .object({
    maxDepth: z.number().int().min(2).max(100).optional(),
    maxCost: z.number().int().min(10).max(10_000_000).optional(),
    maxAliases: z.number().int().min(0).max(1000).optional(),
    maxTokens: z.number().int().min(50).max(1_000_000).optional(),
    maxDirectives: z.number().int().min(0).max(1000).optional(),
    trustProxy: z.union([z.boolean(), z.number().int().min(0).max(10)]).optional(),
    rateLimit: z
      .object({
        session: windowLimitSchema.optional(),
        ip: windowLimitSchema.optional(),
      })
      .strict()
      .optional(),
    admission: z
      .object({
        maxInFlight: z.number().int().min(1).max(100_000).optional(),
        maxQueued: z.number().int().min(0).max(1_000_000).optional(),
        maxWaitMs: z.number().int().min(1).max(60_000).optional(),
      })
      .strict()
      .optional(),
    http: z
      .object({
        headersTimeoutSeconds: z.number().min(1).max(300).optional(),
        requestTimeoutSeconds: z.number().min(1).max(600).optional(),
        keepAliveTimeoutSeconds: z.number().min(1).max(3600).optional(),
      })
      .strict()
      .optional(),
    cors: z.object({ origins: z.array(z.string()) }).strict().optional(),
    trustedDocuments: z.enum(['allow', 'only']).optional(),
    persistedQueries: z.boolean().optional(),
  })
  .strict();

const fileSchema = z
  .object({
    apps: z.array(appSchema).default([]),
    wechat: z
      .object({
        timeoutMs: z.number().int().min(100).max(60_000).optional(),
        maxRetries: z.number().int().min(0).max(5).optional(),
        sendOpenid: z.boolean().optional(),
        tokenEndpoint: z.enum(['stable', 'legacy']).optional(),
      })
      .strict()
      .optional(),
    replayTtlSeconds: z.number().int().min(10).max(3600).optional(),
    audit: z
      .object({
        retentionDays: z.number().int().min(1).max(36_500).optional(),
        purgeIntervalSeconds: z.number().int().min(0).max(86_400).optional(),
      })
      .strict()
      .optional(),
    verificationTokens: z
      .object({
        issuer: z.string().min(1).optional(),
        audience: z.string().min(1).optional(),
        ttlSeconds: z.number().int().min(30).max(86_400).optional(),
        rotationDays: z.number().int().min(1).max(365).optional(),
      })
      .strict()
      .optional(),
    billing: z
      .object({
        chargingStartDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
        syncIntervalSeconds: z.number().int().min(0).max(86_400).optional(),
        lowQuota: thresholdsSchema.optional(),
        webhookUrl: z.string().url().optional(),
        webhookUrlEnv: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    hardening: hardeningSchema.optional(),
  })
  .strict();

export type ConfigFile = z.infer<typeof fileSchema>;

export interface AppConfig {
  appid: string;
  secret: string;
  product: 'quick' | 'realtime';
  subjectType: SubjectType;
  category: string | undefined;
  purposes: readonly string[];
  /** Low-quota alert thresholds for this app (overrides billing.lowQuota). */
  lowQuota: { unitsBelow?: number; daysBelow?: number } | undefined;
  /** WeChat's API security mode: getuserphonenumber is encrypted and signed, answers verified. */
  apiSecurity?: ApiSecurityKeys;
  /** WeChat's message push to /wechat/events/{appid}; absent: that path answers 404. Holds secrets: never logged. */
  messagePush?: MessagePushSettings | undefined;
}

export interface BillingConfig {
  /** WeChat's charging start date (Asia/Shanghai); packs paid before it take effect on it. */
  chargingStartDate: string;
  /** How often every app's usage is pulled from WeChat; 0 = only on demand. */
  syncIntervalSeconds: number;
  lowQuota: { unitsBelow?: number; daysBelow?: number } | undefined;
  /** Where low-quota crossings are posted (may embed a token: never logged). */
  webhookUrl: string | undefined;
}

export interface JwtConfig {
  secret: string | undefined;
  jwksUrl: string | undefined;
  issuer: string;
  audience: string;
  clockToleranceSeconds: number;
}

export interface HardeningConfig {
  /** GraphQL Armor's limits on one document (see plugins/hardening). */
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
  maxTokens: number;
  maxDirectives: number;
  /** How many proxies in front are trusted to set X-Forwarded-For; 0 = use the socket's peer address. */
  trustProxyHops: number;
  /** Exchange requests (exchangePhoneCode, decryptPhoneNumber) per window; limit 0 = off. */
  rateLimit: { session: { limit: number; windowMs: number }; ip: { limit: number; windowMs: number } };
  /** Exchanges one process runs at once, how many more may wait, and for how long (src/phone/admission.ts). */
  admission: { maxInFlight: number; maxQueued: number; maxWaitMs: number };
  /**
   * Deadlines on a client's connection: the headers, the whole request (headers and body) and the
   * wait for the next request on a kept-alive connection. A client too slow gets 408.
   */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number };
  /** Browser origins allowed to call the API cross-origin (CORS): a list, '*' for any, empty for none. */
  corsOrigins: '*' | readonly string[];
  /** 'only': the SDK's operations (trusted documents) alone execute; 'allow': any document. */
  trustedDocuments: 'allow' | 'only';
  /** Automatic persisted queries (Apollo's protocol), when any document is allowed. */
  persistedQueries: boolean;
}

export interface GatewayConfig {
  production: boolean;
  /** Sandbox: no WECHAT_API_BASE, so a simulator runs in-process and stands in for WeChat. */
  sandbox: boolean;
  port: number;
  host: string;
  simulatorPort: number;
  wechatApiBase: string | undefined;
  databaseUrl: string;
  /** PostgreSQL named statements for the hot statements (see openStore); false behind a pooler that cannot keep them. */
  databasePreparedStatements: boolean;
  redisUrl: string | undefined;
  /** Prefix of every Redis key, so deployments (or test runs) can share one Redis. */
  redisKeyPrefix: string;
  jwt: JwtConfig;
  /** Root key for hashing codes/sessions and encrypting stored replay answers. */
  dataKey: Buffer;
  apps: ReadonlyMap<string, AppConfig>;
  wechat: { timeoutMs: number; maxRetries: number; sendOpenid: boolean; tokenEndpoint: 'stable' | 'legacy' };
  replayTtlSeconds: number;
  billing: BillingConfig;
  /** Consent-audit retention: records older than this are purged, leaving a chained checkpoint. */
  audit: { retentionDays: number; purgeIntervalSeconds: number };
  /** Tokens the gateway signs after a verification, for downstream services (JWKS at /.well-known/jwks.json). */
  verificationTokens: { issuer: string; audience: string; ttlSeconds: number; rotationDays: number };
  /** Document limits, proxy trust and exchange rate limits. */
  hardening: HardeningConfig;
  /** OpenTelemetry spans per GraphQL operation (plugins/tracing); exporter settings are OTel's own OTEL_* variables. */
  tracing: { enabled: boolean };
  configFile: string | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

// Public on purpose: these only ever protect sandbox data, and production refuses them.
export const SANDBOX_JWT_SECRET = 'wxphone-sandbox-jwt-secret-do-not-use-in-production';
const SANDBOX_DATA_KEY = Buffer.from('wxphone-sandbox-data-key-not-for-production!!').subarray(0, 32);
export const DEFAULT_ISSUER = 'wxphone-sandbox';
export const DEFAULT_AUDIENCE = 'wxphone';

type Env = Record<string, string | undefined>;

function intFromEnv(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a port number, got "${raw}"`);
  return n;
}

/** `RATE_LIMIT_SESSION=10/60` (10 per 60 s), `=10` (per 60 s) or `=0` (off) over the file's value. */
function windowLimitFrom(env: Env, name: string, file: { limit?: number | undefined; windowSeconds?: number | undefined } | undefined, defaults: { limit: number; windowSeconds: number }) {
  let limit = file?.limit ?? defaults.limit;
  let windowSeconds = file?.windowSeconds ?? defaults.windowSeconds;
  const raw = env[name];
  if (raw !== undefined && raw !== '') {
    const m = /^(\d{1,7})(?:\/(\d+(?:\.\d+)?))?$/.exec(raw.trim());
    if (!m || Number(m[1]) > 1_000_000 || (m[2] !== undefined && !(Number(m[2]) >= 0.05 && Number(m[2]) <= 86_400))) {
      throw new ConfigError(`${name} must be COUNT or COUNT/SECONDS (e.g. 10/60; 0 turns the limit off), got "${raw}"`);
    }
    limit = Number(m[1]);
    if (m[2] !== undefined) windowSeconds = Number(m[2]);
  }
  return { limit, windowMs: Math.round(windowSeconds * 1000) };
}

function trustProxyFrom(env: Env, file: boolean | number | undefined): number {
  const raw = env.TRUST_PROXY;
  if (raw === undefined || raw === '') return file === true ? 1 : file === false || file === undefined ? 0 : file;
  if (raw === 'true') return 1;
  if (raw === 'false') return 0;
  if (/^\d$|^10$/.test(raw)) return Number(raw);
  throw new ConfigError(`TRUST_PROXY must be true, false or the number of proxies in front (0-10), got "${raw}"`);
}

function booleanFromEnv(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/** `OTEL_TRACING=true|false`; unset, tracing is on exactly when an OTLP endpoint is configured. */
function tracingFrom(env: Env): { enabled: boolean } {
  return { enabled: booleanFromEnv(env, 'OTEL_TRACING', Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)) };
}

function hardeningFrom(file: ConfigFile, env: Env, sandbox: boolean): HardeningConfig {
  const h = file.hardening;
  const http = {
    headersTimeoutMs: (h?.http?.headersTimeoutSeconds ?? 10) * 1000,
    requestTimeoutMs: (h?.http?.requestTimeoutSeconds ?? 30) * 1000,
    keepAliveTimeoutMs: (h?.http?.keepAliveTimeoutSeconds ?? 65) * 1000,
  };
  // Node refuses a headers deadline past the request's, which includes the headers.
  if (http.headersTimeoutMs > http.requestTimeoutMs) throw new ConfigError('hardening.http.headersTimeoutSeconds must not exceed requestTimeoutSeconds');
  return {
    http,
    corsOrigins: corsOriginsFrom(env, h?.cors?.origins, sandbox),
    trustedDocuments: trustedDocumentsFrom(env, h?.trustedDocuments),
    persistedQueries: booleanFromEnv(env, 'PERSISTED_QUERIES', h?.persistedQueries ?? true),
    maxDepth: h?.maxDepth ?? 12,
    maxCost: h?.maxCost ?? 5000,
    maxAliases: h?.maxAliases ?? 15,
    maxTokens: h?.maxTokens ?? 2000,
    maxDirectives: h?.maxDirectives ?? 10,
    trustProxyHops: trustProxyFrom(env, h?.trustProxy),
    rateLimit: {
      session: windowLimitFrom(env, 'RATE_LIMIT_SESSION', h?.rateLimit?.session, { limit: 10, windowSeconds: 60 }),
      ip: windowLimitFrom(env, 'RATE_LIMIT_IP', h?.rateLimit?.ip, { limit: 60, windowSeconds: 60 }),
    },
    admission: {
      maxInFlight: countFrom(env, 'EXCHANGE_MAX_IN_FLIGHT', 1, 100_000, h?.admission?.maxInFlight ?? 128),
      maxQueued: countFrom(env, 'EXCHANGE_MAX_QUEUED', 0, 1_000_000, h?.admission?.maxQueued ?? 1024),
      maxWaitMs: h?.admission?.maxWaitMs ?? 5000,
    },
  };
}

/**
 * `CORS_ORIGINS` (comma- or space-separated, or `*`) over the file's `hardening.cors.origins`; by
 * default any origin in sandbox mode (GraphiQL and local tools), none elsewhere. An origin is a
 * scheme, a host and a port at most, exactly as a browser sends it in `Origin`.
 */
function corsOriginsFrom(env: Env, file: readonly string[] | undefined, sandbox: boolean): '*' | readonly string[] {
  const raw = env.CORS_ORIGINS;
  const given = raw !== undefined && raw !== '' ? raw.split(/[\s,]+/).filter(Boolean) : file;
  if (!given) return sandbox ? '*' : [];
  if (given.includes('*')) return '*';
  for (const origin of given) {
    if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(origin)) {
      throw new ConfigError(`CORS origin "${origin}" must be a scheme and a host (and port), like https://console.example.com, without a path or a trailing slash`);
    }
  }
  return given.map((o) => o.toLowerCase());
}

/** `TRUSTED_DOCUMENTS=only|allow` over the file's `hardening.trustedDocuments`; default allow. */
function trustedDocumentsFrom(env: Env, file: 'allow' | 'only' | undefined): 'allow' | 'only' {
  const raw = env.TRUSTED_DOCUMENTS;
  if (raw === undefined || raw === '') return file ?? 'allow';
  if (raw === 'allow' || raw === 'only') return raw;
  throw new ConfigError(`TRUSTED_DOCUMENTS must be allow or only, got "${raw}"`);
}

/** The same bounds as the config file's schema, so the env cannot go where the file may not. */
function countFrom(env: Env, name: string, min: number, max: number, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'read error'}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // JSON.parse quotes the text around the error, and this file holds secrets: say where, not what.
    const position = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new ConfigError(`cannot read config file ${path}: not valid JSON${position ? ` (at character ${position})` : ''}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const where = i.path.join('.') || '(root)';
      return i.code === 'unrecognized_keys' ? `${where}: unknown key(s) ${i.keys.join(', ')}` : `${where}: ${i.message}`;
    });
    throw new ConfigError(`invalid config file ${path}: ${issues.join('; ')}`);
  }
  return parsed.data;
}

function resolveApps(file: ConfigFile, env: Env, sandbox: boolean): Map<string, AppConfig> {
  const apps = new Map<string, AppConfig>();
  const missing: string[] = [];
  for (const a of file.apps) {
    if (apps.has(a.appid)) throw new ConfigError(`app ${a.appid} is configured twice`);
    if (a.secret && a.secretEnv) throw new ConfigError(`app ${a.appid}: give either secret or secretEnv, not both`);
    const secret = a.secret ?? (a.secretEnv ? env[a.secretEnv] : undefined);
    if (!secret) {
      missing.push(a.secretEnv ? `${a.secretEnv} (secret of app ${a.appid})` : `secret of app ${a.appid}`);
      continue;
    }
    const messagePush = a.messagePush ? messagePushFrom(a.appid, a.messagePush, env, missing) : undefined;
    apps.set(a.appid, {
      appid: a.appid,
      secret,
      product: a.product,
      subjectType: a.subjectType,
      category: a.category,
      purposes: a.purposes,
      lowQuota: a.lowQuota,
      ...(messagePush ? { messagePush } : {}),
    });
  }
  if (missing.length) throw new ConfigError(`missing app secrets: ${missing.join(', ')}`);
  if (sandbox && !apps.has(SANDBOX_APP.appid)) {
    apps.set(SANDBOX_APP.appid, {
      appid: SANDBOX_APP.appid,
      secret: SANDBOX_APP.secret,
      product: 'quick',
      subjectType: 'enterprise',
      category: undefined,
      purposes: ['login', 'order-contact'],
      lowQuota: undefined,
    });
  }
  return apps;
}

type ApiSecurityFile = z.infer<typeof apiSecuritySchema>;
type KeySource = 'symmetricKey' | 'privateKey' | 'platformCertificate';

/** Reads and checks every app's API security keys; one error lists every problem, naming keys, never values. */
function attachApiSecurity(apps: Map<string, AppConfig>, file: ConfigFile, env: Env, baseDir: string): void {
  const problems: string[] = [];
  for (const a of file.apps) {
    const app = apps.get(a.appid);
    if (!a.apiSecurity || !app) continue;
    const found = apiSecurityFrom(a.appid, a.apiSecurity, env, baseDir);
    if (found.keys) app.apiSecurity = found.keys;
    problems.push(...found.problems);
  }
  if (problems.length) throw new ConfigError(`API security keys: ${problems.join('; ')}`);
}

function apiSecurityFrom(appid: string, c: ApiSecurityFile, env: Env, baseDir: string): { keys?: ApiSecurityKeys; problems: string[] } {
  const problems: string[] = [];
  const described: Partial<Record<ApiSecurityField, string>> = {};
  const read = (name: KeySource): string | Buffer | undefined => {
    const given = ([name, `${name}Env`, `${name}File`] as const).filter((k) => c[k] !== undefined);
    if (given.length !== 1) {
      problems.push(`app ${appid}: apiSecurity needs exactly one of ${name}, ${name}Env and ${name}File`);
      return undefined;
    }
    const envName = c[`${name}Env`];
    const path = c[`${name}File`];
    if (envName !== undefined) {
      described[name] = `${envName} (apiSecurity.${name}Env of app ${appid})`;
      if (!env[envName]) problems.push(`missing ${described[name]}`);
      return env[envName] || undefined;
    }
    if (path !== undefined) {
      const full = resolve(baseDir, path);
      described[name] = `apiSecurity.${name}File of app ${appid} (${full})`;
      try {
        return readFileSync(full);
      } catch (e) {
        problems.push(`cannot read ${described[name]}: ${(e as NodeJS.ErrnoException).code ?? 'read error'}`);
        return undefined;
      }
    }
    described[name] = `apiSecurity.${name} of app ${appid}`;
    return c[name];
  };
  const symmetricKey = read('symmetricKey');
  const privateKey = read('privateKey');
  const platformCertificate = read('platformCertificate');
  if (problems.length || symmetricKey === undefined || privateKey === undefined || platformCertificate === undefined) return { problems };
  const parsed = parseApiSecurityKeys(
    {
      algorithm: c.algorithm,
      signatureAlgorithm: c.signatureAlgorithm,
      symmetricKey: symmetricKey.toString(),
      symmetricKeySn: c.symmetricKeySn,
      privateKey,
      privateKeySn: c.privateKeySn,
      platformCertificate,
      platformCertificateSn: c.platformCertificateSn,
    },
    (field) => described[field] ?? `apiSecurity.${field} of app ${appid}`,
  );
  return parsed.keys ? { keys: parsed.keys, problems: [] } : { problems: parsed.problems };
}

/**
 * An app's message-push settings, secrets from the file or from the env vars it names. A value
 * read from the env is checked like the file's, and neither is ever quoted in an error.
 */
function messagePushFrom(appid: string, m: z.infer<typeof messagePushSchema>, env: Env, missing: string[]): MessagePushSettings | undefined {
  if (m.token && m.tokenEnv) throw new ConfigError(`app ${appid}: messagePush: give either token or tokenEnv, not both`);
  if (m.encodingAesKey && m.encodingAesKeyEnv) throw new ConfigError(`app ${appid}: messagePush: give either encodingAesKey or encodingAesKeyEnv, not both`);
  if (!m.token && !m.tokenEnv) throw new ConfigError(`app ${appid}: messagePush needs token or tokenEnv`);
  const token = m.token ?? env[m.tokenEnv!];
  if (!token) {
    missing.push(`${m.tokenEnv} (message-push token of app ${appid})`);
    return undefined;
  }
  if (!/^\S{1,128}$/.test(token)) throw new ConfigError(`${m.tokenEnv} (message-push token of app ${appid}) must be 1 to 128 characters without spaces`);
  let encodingAesKey = m.encodingAesKey;
  if (m.encodingAesKeyEnv) {
    encodingAesKey = env[m.encodingAesKeyEnv];
    if (!encodingAesKey) {
      missing.push(`${m.encodingAesKeyEnv} (message-push EncodingAESKey of app ${appid})`);
      return undefined;
    }
  }
  let aesKey: Buffer | undefined;
  if (encodingAesKey !== undefined) {
    try {
      aesKey = aesKeyFromEncodingAesKey(encodingAesKey);
    } catch {
      throw new ConfigError(`${m.encodingAesKeyEnv ?? `app ${appid}: messagePush.encodingAesKey`} must be the 43 letters and digits the WeChat console shows`);
    }
  }
  return { token, aesKey, format: m.format };
}

function webhookUrl(file: ConfigFile, env: Env): string | undefined {
  const b = file.billing;
  if (b?.webhookUrl && b.webhookUrlEnv) throw new ConfigError('billing: give either webhookUrl or webhookUrlEnv, not both');
  if (!b?.webhookUrlEnv) return b?.webhookUrl;
  const url = env[b.webhookUrlEnv];
  if (!url) throw new ConfigError(`missing ${b.webhookUrlEnv} (billing.webhookUrlEnv)`);
  if (!/^https?:\/\//.test(url)) throw new ConfigError(`${b.webhookUrlEnv} must be an http(s) URL`);
  return url;
}

function dataKeyFrom(env: Env, sandbox: boolean): Buffer | undefined {
  const raw = env.WXPHONE_DATA_KEY;
  if (!raw) return sandbox ? SANDBOX_DATA_KEY : undefined;
  const key = Buffer.from(raw, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw) || key.length < 32) {
    throw new ConfigError('WXPHONE_DATA_KEY must be at least 32 bytes, base64-encoded');
  }
  return key;
}

/**
 * Reads the configuration. `env` defaults to process.env; tests pass their own.
 * In production every secret must be given explicitly: the error names each missing one.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): GatewayConfig {
  const production = env.NODE_ENV === 'production';
  const wechatApiBase = env.WECHAT_API_BASE || (production ? 'https://api.weixin.qq.com' : undefined);
  const sandbox = !production && !wechatApiBase;

  const explicitFile = env.WXPHONE_CONFIG;
  const defaultFile = resolve(cwd, 'wxphone.config.json');
  const configFile = explicitFile ? resolve(cwd, explicitFile) : existsSync(defaultFile) ? defaultFile : undefined;
  if (explicitFile && !existsSync(configFile!)) throw new ConfigError(`WXPHONE_CONFIG points to ${configFile}, which does not exist`);
  const file: ConfigFile = configFile ? readConfigFile(configFile) : { apps: [] };

  // The public sandbox keys protect only simulated data: once a real WeChat (or any
  // WECHAT_API_BASE) is involved, the keys must be the operator's own.
  const missing: string[] = [];
  if (!sandbox && !env.JWT_SECRET && !env.JWT_JWKS_URL) missing.push('JWT_SECRET or JWT_JWKS_URL');
  if (!sandbox && !env.WXPHONE_DATA_KEY) missing.push('WXPHONE_DATA_KEY');
  if (production && !configFile) missing.push('WXPHONE_CONFIG (the apps and their secrets)');
  if (env.JWT_SECRET && env.JWT_SECRET.length < 32) throw new ConfigError('JWT_SECRET must be at least 32 characters');
  if (!sandbox && env.JWT_SECRET === SANDBOX_JWT_SECRET) missing.push('JWT_SECRET (the sandbox secret is refused outside sandbox mode)');
  if (missing.length) {
    throw new ConfigError(`${production ? 'production' : 'WECHAT_API_BASE is set, so this'} mode needs: ${missing.join(', ')}`);
  }

  const apps = resolveApps(file, env, sandbox);
  attachApiSecurity(apps, file, env, configFile ? dirname(configFile) : cwd);
  if (production && apps.size === 0) throw new ConfigError('production mode needs at least one app in WXPHONE_CONFIG');

  return {
    production,
    sandbox,
    port: intFromEnv(env, 'PORT', 4000),
    host: env.HOST || '127.0.0.1',
    simulatorPort: intFromEnv(env, 'SIMULATOR_PORT', 4100),
    wechatApiBase,
    databaseUrl: env.DATABASE_URL || `file:${resolve(cwd, 'data/wxphone.db')}`,
    databasePreparedStatements: booleanFromEnv(env, 'DATABASE_PREPARED_STATEMENTS', true),
    redisUrl: env.REDIS_URL || undefined,
    redisKeyPrefix: env.REDIS_KEY_PREFIX || 'wxphone',
    jwt: {
      secret: env.JWT_SECRET || (env.JWT_JWKS_URL || !sandbox ? undefined : SANDBOX_JWT_SECRET),
      jwksUrl: env.JWT_JWKS_URL || undefined,
      issuer: env.JWT_ISSUER || DEFAULT_ISSUER,
      audience: env.JWT_AUDIENCE || DEFAULT_AUDIENCE,
      clockToleranceSeconds: 5,
    },
    dataKey: dataKeyFrom(env, sandbox)!,
    apps,
    wechat: {
      timeoutMs: file.wechat?.timeoutMs ?? 5000,
      maxRetries: file.wechat?.maxRetries ?? 2,
      sendOpenid: file.wechat?.sendOpenid ?? false,
      tokenEndpoint: file.wechat?.tokenEndpoint ?? 'stable',
    },
    replayTtlSeconds: file.replayTtlSeconds ?? 600,
    billing: {
      chargingStartDate: file.billing?.chargingStartDate ?? '2023-08-28',
      syncIntervalSeconds: file.billing?.syncIntervalSeconds ?? 900,
      lowQuota: file.billing?.lowQuota,
      webhookUrl: webhookUrl(file, env),
    },
    audit: {
      retentionDays: file.audit?.retentionDays ?? 1095,
      purgeIntervalSeconds: file.audit?.purgeIntervalSeconds ?? 3600,
    },
    verificationTokens: {
      issuer: file.verificationTokens?.issuer ?? 'wxphone-gateway',
      audience: file.verificationTokens?.audience ?? 'wxphone-downstream',
      ttlSeconds: file.verificationTokens?.ttlSeconds ?? 900,
      rotationDays: file.verificationTokens?.rotationDays ?? 30,
    },
    hardening: hardeningFrom(file, env, sandbox),
    tracing: tracingFrom(env),
    configFile,
  };
}
