import { createHash } from 'node:crypto';
import { parse, print } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

/**
 * Persisted documents: a client may send a document's SHA-256 instead of its text.
 *
 * - Trusted documents: the SDK's operations (sdk/persisted-documents.json), known by hash, sent as
 *   `documentId` (the GraphQL-over-HTTP proposal, `sha256:<hex>` or bare hex) or as Apollo's
 *   `extensions.persistedQuery.sha256Hash`. With `mode: 'only'` nothing else executes, whether
 *   sent by hash or as text: a production gateway then runs the operations it was built with only.
 * - Automatic persisted queries (Apollo's protocol), when the mode allows other documents: an
 *   unknown hash answers PERSISTED_QUERY_NOT_FOUND, the client sends text and hash, and the text is
 *   kept (in Redis when configured, so every instance knows it) once it has passed validation.
 */
export interface PersistedDocumentsOptions {
  /** SHA-256 (hex) → document text: the trusted documents. */
  trusted: Readonly<Record<string, string>>;
  /** 'only': trusted documents alone execute; 'allow': any document, and APQ. */
  mode: 'allow' | 'only';
  /** Where APQ keeps the documents clients registered; none: APQ off. */
  store?: DocumentStore;
}

export interface DocumentStore {
  get(hash: string): Promise<string | undefined>;
  set(hash: string, text: string): Promise<void>;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const HASH = /^[0-9a-f]{64}$/;

/** The text a document normalises to, so the trusted set matches however a client spaced its copy. */
function normalised(text: string): string | undefined {
  try {
    return print(parse(text, { noLocation: true }));
  } catch {
    return undefined;
  }
}

function refused(code: string, message: string, status: number) {
  return createGraphQLError(message, { extensions: { code, http: { status, spec: false } } });
}

export function usePersistedDocuments(options: PersistedDocumentsOptions): Plugin {
  const trusted = new Map(Object.entries(options.trusted));
  const trustedTexts = new Set<string>();
  for (const text of trusted.values()) trustedTexts.add(normalised(text) ?? text);
  // Registered only once the operation has validated: a client cannot fill the store with junk.
  const toRegister = new WeakMap<object, { hash: string; text: string }>();
  const apq = options.mode === 'allow' ? options.store : undefined;

  return {
    async onParams({ params, setParams, request }) {
      const persisted = (params.extensions as { persistedQuery?: { version?: unknown; sha256Hash?: unknown } } | undefined)?.persistedQuery;
      const documentId = (params as { documentId?: unknown }).documentId;
      let hash: string | undefined;
      if (typeof documentId === 'string') hash = documentId.replace(/^sha256:/, '');
      else if (persisted !== undefined) {
        if (persisted.version !== 1 || typeof persisted.sha256Hash !== 'string') throw refused('PERSISTED_QUERY_NOT_SUPPORTED', 'only version 1 of persisted queries (sha256Hash) is supported', 400);
        hash = persisted.sha256Hash;
      }
      if (hash !== undefined && !HASH.test(hash)) throw refused('BAD_REQUEST', 'a persisted document id is a SHA-256 in hex', 400);

      if (typeof params.query === 'string' && params.query.length > 0) {
        if (hash !== undefined && sha256(params.query) !== hash) throw refused('PERSISTED_QUERY_HASH_MISMATCH', "the document's SHA-256 is not the hash sent with it", 400);
        if (options.mode === 'only' && !trustedTexts.has(normalised(params.query) ?? params.query)) {
          throw refused('TRUSTED_DOCUMENT_REQUIRED', "this gateway runs only the SDK's operations (trusted documents); this document is not one of them", 400);
        }
        if (hash !== undefined && apq && !trusted.has(hash)) toRegister.set(request, { hash, text: params.query });
        return;
      }
      if (hash === undefined) return;
      const text = trusted.get(hash) ?? (await apq?.get(hash));
      // Apollo's client reads this code (and message) as "send the text along with the hash".
      if (!text) throw refused('PERSISTED_QUERY_NOT_FOUND', 'PersistedQueryNotFound', options.mode === 'only' ? 400 : 200);
      setParams({ ...params, query: text });
    },
    onExecute({ args }) {
      const request = (args.contextValue as { request?: Request }).request;
      const pending = request && toRegister.get(request);
      if (pending && apq) void apq.set(pending.hash, pending.text).catch(() => {});
    },
  };
}
