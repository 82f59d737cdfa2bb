import { print, type DocumentNode } from 'graphql';
import { getSdk, type Requester, type Sdk } from './generated-sdk.js';

export * from './generated.js';
export { getSdk, type Requester, type Sdk } from './generated-sdk.js';

/** A transport or GraphQL-level failure (401, 403, masked internal error), as opposed to a typed result member. */
export class GatewayClientError extends Error {
  override name = 'GatewayClientError';
  constructor(
    message: string,
    readonly status: number,
    /** `extensions.code` of the first GraphQL error, e.g. UNAUTHENTICATED or FORBIDDEN. */
    readonly code: string | undefined,
    readonly errors: readonly { message: string; extensions?: Record<string, unknown> }[],
  ) {
    super(message);
  }
}

export interface GatewayClientOptions {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  url: string;
  /** A session JWT; a function lets callers rotate it. */
  token?: string | (() => string | Promise<string>);
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

/**
 * An answer without errors. The schema makes root fields nullable so that one failing field leaves
 * the others' data in place; this client throws on any error, so in what it returns each root field
 * is present (`node` and `nodes` excepted: they are null for an id that names nothing).
 */
export type Answered<R> = { [K in keyof R]: K extends 'node' | 'nodes' ? R[K] : NonNullable<R[K]> };
type AnsweredSdk<S> = { [M in keyof S]: S[M] extends (...args: infer A) => Promise<infer R> ? (...args: A) => Promise<Answered<R>> : S[M] };

/** The typed SDK over HTTP: one method per operation in sdk/operations. */
export function createGatewayClient(opts: GatewayClientOptions) {
  const doFetch = opts.fetch ?? fetch;
  const printed = new WeakMap<DocumentNode, string>();
  const source = (doc: DocumentNode) => {
    let text = printed.get(doc);
    if (!text) printed.set(doc, (text = print(doc)));
    return text;
  };
  const requester: Requester<{ token?: string }> = async (document, variables, options) => {
    const token = options?.token ?? (typeof opts.token === 'function' ? await opts.token() : opts.token);
    const res = await doFetch(opts.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...opts.headers,
      },
      body: JSON.stringify({ query: source(document), variables }),
    });
    const text = await res.text();
    let body: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
    try {
      body = JSON.parse(text);
    } catch {
      throw new GatewayClientError(`gateway answered HTTP ${res.status} with a non-JSON body`, res.status, undefined, []);
    }
    if (body.errors?.length) {
      const first = body.errors[0]!;
      throw new GatewayClientError(first.message, res.status, first.extensions?.code as string | undefined, body.errors);
    }
    if (!res.ok || body.data == null) throw new GatewayClientError(`gateway answered HTTP ${res.status} without data`, res.status, undefined, []);
    return body.data as never;
  };
  return getSdk(requester) as AnsweredSdk<Sdk>;
}

export type GatewayClient = ReturnType<typeof createGatewayClient>;
