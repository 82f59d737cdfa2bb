import { readFileSync } from 'node:fs';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import type { GatewayConfig } from '../src/config.js';
import type { Logger } from '../src/log.js';
import type { Cache } from '../src/store/cache.js';
import type { AccessTokenProvider } from '../src/wechat/index.js';
import type { ConsentAudit } from '../src/consent/index.js';
import { LruMap } from '../src/util/lru.js';
import { buildSchema, createLoaders, type GraphQLContext, type Services } from '../schema/index.js';
import { requestIdOf, requestIdOfError, useRequestId } from '../plugins/request-id/index.js';
import { useJwtSession } from '../plugins/jwt-session/index.js';
import { useAccessTokens } from '../plugins/access-tokens/index.js';
import { useConsentAudit } from '../plugins/consent-audit/index.js';
import { useRedactedInputEchoes } from '../plugins/redact-input-echoes/index.js';
import { useStorageUnavailable } from '../plugins/storage-unavailable/index.js';
import { localGraphiQL } from '../plugins/graphiql-offline/index.js';
import { usePersistedDocuments, type DocumentStore } from '../plugins/persisted-documents/index.js';
import { CSRF_HEADER, useBodyLimit, useHardening } from '../plugins/hardening/index.js';
import type { Tracing } from '../plugins/tracing/load.js';
import type { GatewayServerContext } from './context.js';
import { RETRY_AFTER_SECONDS } from './responses.js';
import { MAX_BODY_BYTES } from './serve-graphql.js';

export type GatewayYoga = YogaServerInstance<GatewayServerContext, GraphQLContext>;

export interface GatewayYogaOptions {
  config: GatewayConfig;
  services: Services;
  tokens: AccessTokenProvider;
  audit: ConsentAudit;
  cache: Cache;
  log: Logger;
  tracing: Tracing | undefined;
  /** A session token for GraphiQL's headers, in sandbox mode. */
  sandboxToken: string | undefined;
}

/** The GraphQL server: the schema, its context, and the plugins in the order they must run. */
export function createGatewayYoga({ config, services, tokens, audit, cache, log, tracing, sandboxToken }: GatewayYogaOptions): GatewayYoga {
  // GraphiQL (never in production) with every file served from here, not from a CDN.
  const graphiql = config.production ? undefined : localGraphiQL();
  return createYoga<GatewayServerContext, GraphQLContext>({
    schema: buildSchema(),
    // `session` is added by useJwtSession before any resolver runs.
    context: ({ request, clientIp }) => ({ request, clientIp, services, loaders: createLoaders(services) }) as GraphQLContext,
    // One operation per request (a JSON array is refused with BATCHING_NOT_SUPPORTED), no uploads.
    batching: false,
    multipart: false,
    // A trusted document sent by its id (plugins/persisted-documents) has no `query`.
    extraParamNames: ['documentId'],
    cors: corsOptions(config.hardening.corsOrigins),
    // The HTTP layer caps bodies; useBodyLimit caps in-process requests (yoga.fetch).
    maxRequestBodySize: false,
    plugins: [
      // First: it notes which request an error belongs to before any plugin replaces the error.
      useRequestId(),
      ...(graphiql ? [graphiql.plugin] : []),
      useBodyLimit(MAX_BODY_BYTES),
      // CSRF (before the session check: a cross-site request is refused as such), no batching,
      // GraphQL Armor's document limits, no suggestions; see plugins/hardening.
      useHardening(config.hardening),
      useJwtSession({
        secret: config.jwt.secret,
        jwksUrl: config.jwt.jwksUrl,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
        clockToleranceSeconds: config.jwt.clockToleranceSeconds,
      }),
      // After the session: the consent log is bound to its subject.
      useAccessTokens({ tokens }),
      useConsentAudit({ audit }),
      usePersistedDocuments({
        trusted: trustedDocuments(),
        mode: config.hardening.trustedDocuments,
        ...(config.hardening.persistedQueries ? { store: persistedQueryStore(cache) } : {}),
      }),
      useRedactedInputEchoes(),
      useStorageUnavailable({
        retryAfterSeconds: RETRY_AFTER_SECONDS,
        onUnavailable: (e, context) =>
          log.warn({ requestId: requestIdOf(context.request), err: (e as Error)?.message }, 'storage unavailable: answered 503 SERVICE_UNAVAILABLE'),
      }),
      ...(config.production ? [useNoIntrospection()] : []),
      ...(tracing?.plugins ?? []),
    ],
    graphiql: config.production ? false : { title: 'wxphone-gateway', ...(sandboxToken ? { headers: JSON.stringify({ Authorization: `Bearer ${sandboxToken}` }) } : {}) },
    ...(graphiql ? { renderGraphiQL: graphiql.render } : {}),
    landingPage: false,
    // isDev would put original messages and stacks in responses whenever NODE_ENV=development.
    maskedErrors: { isDev: false },
    logging: {
      debug: (...args) => log.debug({ yoga: args.map(String) }),
      info: (...args) => log.info({ yoga: args.map(String) }),
      warn: (...args) => log.warn({ yoga: args.map(String) }),
      // Unexpected errors reach here with their stack; the message never holds request data.
      error: (...args) =>
        log.error(
          { requestId: args.map(requestIdOfError).find(Boolean), err: args.map((a) => (a instanceof Error ? { name: a.name, message: a.message } : String(a))) },
          'graphql error',
        ),
    },
  });
}

/** Introspection is refused in production (the SDK is generated from the committed SDL instead). */
function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}

/** The SDK's operations by SHA-256 (sdk/persisted-documents.json, written by `npm run schema:print`). */
function trustedDocuments(): Record<string, string> {
  return JSON.parse(readFileSync(new URL('../sdk/persisted-documents.json', import.meta.url), 'utf8')) as Record<string, string>;
}

// How long a document a client registered (APQ) is kept: clients send it again after a miss.
const PERSISTED_QUERY_TTL_MS = 24 * 3600_000;

/**
 * Documents registered by automatic persisted queries: in Redis when configured, so a client's
 * hash is known to every instance behind the load balancer; else a bounded map in this process.
 * A cache that fails is a miss: the client then sends the text again.
 */
function persistedQueryStore(cache: Cache): DocumentStore {
  if (cache.kind === 'memory') {
    const map = new LruMap<string, string>(1000);
    return { get: async (hash) => map.get(hash), set: async (hash, text) => map.set(hash, text) };
  }
  return {
    get: (hash) => cache.keyv.get<string>(`apq:${hash}`).catch(() => undefined),
    set: async (hash, text) => void (await cache.keyv.set(`apq:${hash}`, text, PERSISTED_QUERY_TTL_MS).catch(() => false)),
  };
}

/**
 * CORS for the origins the config allows: a browser page elsewhere may call the API only from
 * those (the answer names the asking origin), with the bearer token in a header, never with
 * cookies (`credentials` stays off: the gateway sets none and reads none).
 */
function corsOptions(origins: GatewayConfig['hardening']['corsOrigins']) {
  const allowed = (origin: string) => origins === '*' || origins.includes(origin.toLowerCase());
  return (request: Request) => {
    const origin = request.headers.get('origin');
    if (!origin || !allowed(origin)) return false;
    return {
      origin,
      credentials: false,
      methods: ['GET', 'POST'],
      allowedHeaders: ['authorization', 'content-type', 'accept', 'x-request-id', CSRF_HEADER, 'traceparent', 'tracestate'],
      exposedHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
    };
  };
}
