import type { TypedDocumentString } from './generated';

/** A request the gateway refused or could not answer; `code` is the GraphQL error's extensions.code. */
export class GatewayError extends Error {
  override name = 'GatewayError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

const ENDPOINT = '/graphql';

/**
 * An answer without errors. The schema makes root fields nullable so that one failing field leaves
 * the others' data in place; `request` throws on any error, so in what it returns each root field
 * is present (`node` and `nodes` excepted: they are null for an id that names nothing).
 */
export type Answered<R> = { [K in keyof R]: K extends 'node' | 'nodes' ? R[K] : NonNullable<R[K]> };

/**
 * One typed operation against the gateway's GraphQL API, same origin, POST (variables never in
 * a URL), with the operator's bearer token.
 */
export async function request<R, V>(document: TypedDocumentString<R, V>, variables: V, token: string, signal?: AbortSignal): Promise<Answered<R>> {
  let res: Response;
  try {
    res = await fetch(ENDPOINT, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query: document.toString(), variables }),
      ...(signal ? { signal } : {}),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new GatewayError('network', 0, 'NETWORK');
  }
  let body: { data?: R | null; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = (await res.json()) as typeof body;
  } catch {
    throw new GatewayError(`HTTP ${res.status}`, res.status, res.status >= 500 ? 'SERVICE_UNAVAILABLE' : undefined);
  }
  const first = body.errors?.[0];
  if (first) throw new GatewayError(first.message, res.status, first.extensions?.code ?? (res.status === 401 ? 'UNAUTHENTICATED' : undefined));
  if (!res.ok || body.data == null) throw new GatewayError(`HTTP ${res.status}`, res.status, undefined);
  return body.data as Answered<R>;
}
