import { createGraphQLError, type Plugin } from 'graphql-yoga';

/** Set by the gateway's HTTP server on the requests whose body it has already capped. */
export interface BodyCappedContext {
  bodyCapped?: boolean;
}

function tooLarge(limit: number) {
  return createGraphQLError(`request body larger than ${limit} bytes`, {
    extensions: { code: 'REQUEST_TOO_LARGE', http: { status: 413, spec: false } },
  });
}

/**
 * The body cap for requests that did not come through the gateway's HTTP server (in-process
 * `yoga.fetch`). That server caps every body before yoga sees it (a declared Content-Length over
 * the limit is refused, a chunked body is read up to it) and says so in the server context.
 * yoga's own cap is off: it re-wraps every body in a TransformStream piped into a new Request,
 * which cost about 5 % of an exchange's CPU for a check already made.
 */
export function useBodyLimit(limit: number): Plugin<Record<string, unknown>, BodyCappedContext> {
  return {
    onRequestParse({ request, requestParser, setRequestParser, serverContext }) {
      if (serverContext.bodyCapped || !requestParser || !request.body) return;
      if (Number(request.headers.get('content-length') ?? 0) > limit) throw tooLarge(limit);
      setRequestParser(async (req) => {
        const body = await readCapped(req.body!, limit);
        return requestParser(new Request(req.url, { method: req.method, headers: req.headers, body }));
      });
    },
  };
}

// GraphQL bodies here are JSON or form text (no uploads), so a string is exact.
async function readCapped(body: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
