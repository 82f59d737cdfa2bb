import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { GraphQLError, type ValidationContext } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

export { useBodyLimit, type BodyCappedContext } from './body-limit.js';

/**
 * Limits on what one GraphQL request may ask for, checked before anything executes:
 * GraphQL Armor (depth, cost, aliases, tokens, directives, no field suggestions), no batching,
 * and CSRF prevention. Every refusal is a 4xx with a typed `extensions.code` and a message that
 * states the limit — never the document or the values sent.
 */
export interface DocumentLimits {
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
  maxTokens: number;
  maxDirectives: number;
}

/** The `extensions.code` of each refusal. */
export const HARDENING_ERROR_CODES = {
  depth: 'DEPTH_LIMIT_EXCEEDED',
  cost: 'COST_LIMIT_EXCEEDED',
  aliases: 'ALIAS_LIMIT_EXCEEDED',
  tokens: 'TOKEN_LIMIT_EXCEEDED',
  directives: 'DIRECTIVE_LIMIT_EXCEEDED',
  batching: 'BATCHING_NOT_SUPPORTED',
  csrf: 'CSRF_HEADER_REQUIRED',
} as const;

/** The header a browser cannot send cross-site without a CORS preflight (GraphiQL sends it). */
export const CSRF_HEADER = 'x-graphql-yoga-csrf';

function limitError(code: string, message: string, limit: number) {
  // spec: false → 400 whatever the Accept header (yoga answers spec validation errors with 200 to legacy JSON clients).
  return createGraphQLError(message, { extensions: { code, limit, http: { status: 400, spec: false } } });
}

type Reject = (ctx: ValidationContext | null, error: GraphQLError) => void;

/** Reports a typed error instead of Armor's own ("Syntax Error: …") and keeps validating. */
function rejectWith(code: string, message: string, limit: number): Reject[] {
  return [
    (ctx) => {
      const error = limitError(code, message, limit);
      // The token limit runs inside the parser, with no validation context: end the parse there.
      if (!ctx) throw error;
      ctx.reportError(error);
    },
  ];
}

// graphql-js suggests names in several phrasings; Armor's mask covers the field one only.
const SUGGESTION = /\s*Did you mean [^?]*\?/g;
const suggests = (e: Error) => e.message.includes('Did you mean ');

function withoutSuggestions<E extends Error>(errors: readonly E[]): (E | GraphQLError)[] {
  return errors.map((e) => {
    if (!suggests(e)) return e;
    const message = e.message.replace(SUGGESTION, '').trim();
    return e instanceof GraphQLError ? new GraphQLError(message, { nodes: e.nodes, path: e.path, extensions: e.extensions }) : Object.assign(e, { message });
  });
}

/**
 * Names of fields, types, arguments and enum values are never suggested, in production or not:
 * clients are generated from the committed SDL, and suggestions would map the schema for
 * anyone probing it with introspection off.
 */
function useNoSuggestions(): Plugin {
  return {
    onValidate() {
      return ({ result, setResult }) => {
        if (result.some(suggests)) setResult(withoutSuggestions(result));
      };
    },
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          // Variable coercion ("… Did you mean the enum value …") fails at execution.
          if ('errors' in result && result.errors?.some(suggests)) setResult({ ...result, errors: withoutSuggestions(result.errors) });
        },
      };
    },
  };
}

/**
 * CSRF prevention on every request that could change something: a POST whose content type a
 * browser may send cross-site without a preflight (form posts, text/plain, multipart) must carry
 * the x-graphql-yoga-csrf header. JSON POSTs are preflighted by browsers and pass. GET requests
 * can only run queries (yoga answers 405 to a mutation over GET), so they pass without the header.
 */
function useCsrf(): Plugin {
  const csrf = useCSRFPrevention({ requestHeaders: [CSRF_HEADER] });
  const check = csrf.onRequestParse!;
  return {
    onRequestParse(payload) {
      const method = payload.request.method.toUpperCase();
      if (method === 'GET' || method === 'HEAD') return;
      try {
        return check(payload);
      } catch (e) {
        if (e instanceof GraphQLError && e.extensions?.http) {
          throw createGraphQLError(
            `CSRF prevention: a POST that is not JSON (content-type: application/json) must carry the ${CSRF_HEADER} header`,
            { extensions: { code: HARDENING_ERROR_CODES.csrf, http: { status: 403 } } },
          );
        }
        throw e;
      }
    },
  };
}

type ResultLike = { errors?: readonly GraphQLError[] | undefined };

const OWN_CODES = new Set<string>(Object.values(HARDENING_ERROR_CODES));

/**
 * Two fixes to what yoga answers to bad input, applied to the response:
 * - yoga puts the JSON parser's own message in `extensions.originalError` when a body is not
 *   valid JSON, and that message quotes the body — which may hold a code. The echo is dropped.
 * - yoga marks parse-time errors as "spec" errors, which it answers with 200 to clients that
 *   accept only application/json; these refusals are 400 for every client.
 */
function useCleanErrors(): Plugin {
  const fix = (e: GraphQLError): GraphQLError => {
    const ext = e.extensions as Record<string, unknown> & { http?: { status?: number; spec?: boolean } };
    const echo = ext && 'originalError' in ext;
    const own = typeof ext?.code === 'string' && OWN_CODES.has(ext.code);
    if (!echo && !own) return e;
    const { originalError: _echo, ...extensions } = ext;
    // The malformed-body answer keeps its 400 too (yoga keys that on originalError being present).
    if (ext.http) extensions.http = { ...ext.http, spec: false };
    return new GraphQLError(e.message, { nodes: e.nodes, path: e.path, extensions });
  };
  const clean = <R extends ResultLike>(r: R): R => (r.errors?.length ? { ...r, errors: r.errors.map(fix) } : r);
  return {
    onResultProcess({ result, setResult }) {
      if (Symbol.asyncIterator in result) return;
      setResult(Array.isArray(result) ? result.map(clean) : clean(result));
    },
  };
}

/**
 * yoga parses `variables` and `extensions` of GET and form requests with a bare JSON.parse: bad
 * JSON there is a 500 and the parser's message (quoting the value) reaches the error log.
 * It is a 400 here, and nothing of the value is kept.
 */
function useStrictParamParsing(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (e) {
          if (e instanceof GraphQLError) throw e;
          throw createGraphQLError('the request\'s variables or extensions are not valid JSON', {
            extensions: { code: 'BAD_REQUEST', http: { status: 400, spec: false } },
          });
        }
      });
    },
  };
}

/** One operation per request: a JSON array body is refused before anything executes. */
function useNoBatching(): Plugin {
  return {
    onRequestParse() {
      return {
        onRequestParseDone({ requestParserResult }) {
          if (Array.isArray(requestParserResult)) {
            throw createGraphQLError('batched requests are not supported: send one operation per request', {
              extensions: { code: HARDENING_ERROR_CODES.batching, http: { status: 400 } },
            });
          }
        },
      };
    },
  };
}

export function useHardening(limits: DocumentLimits): Plugin {
  const armor = EnvelopArmorPlugin({
    maxDepth: {
      n: limits.maxDepth,
      propagateOnRejection: false,
      onReject: rejectWith(HARDENING_ERROR_CODES.depth, `the operation is nested deeper than the limit of ${limits.maxDepth} levels`, limits.maxDepth),
    },
    costLimit: {
      maxCost: limits.maxCost,
      propagateOnRejection: false,
      onReject: rejectWith(HARDENING_ERROR_CODES.cost, `the operation's estimated cost is over the limit of ${limits.maxCost} (a literal first/last multiplies it)`, limits.maxCost),
    },
    maxAliases: {
      n: limits.maxAliases,
      propagateOnRejection: false,
      onReject: rejectWith(HARDENING_ERROR_CODES.aliases, `the operation uses more than the limit of ${limits.maxAliases} aliases`, limits.maxAliases),
    },
    maxTokens: {
      n: limits.maxTokens,
      propagateOnRejection: false,
      onReject: rejectWith(HARDENING_ERROR_CODES.tokens, `the document is longer than the limit of ${limits.maxTokens} tokens`, limits.maxTokens),
    },
    maxDirectives: {
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: rejectWith(HARDENING_ERROR_CODES.directives, `the operation uses more than the limit of ${limits.maxDirectives} directives`, limits.maxDirectives),
    },
    blockFieldSuggestion: { enabled: true, mask: '' },
  }) as Plugin;
  return {
    onPluginInit({ addPlugin }) {
      addPlugin(useCsrf());
      addPlugin(useNoBatching());
      addPlugin(armor);
      addPlugin(useNoSuggestions());
      addPlugin(useStrictParamParsing());
      addPlugin(useCleanErrors());
    },
  };
}
