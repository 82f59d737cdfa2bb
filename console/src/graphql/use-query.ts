import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { request, GatewayError, type Answered } from './client';
import type { TypedDocumentString } from './generated';
import { useConsole } from '../context';

export interface QueryState<R> {
  data: Answered<R> | undefined;
  error: GatewayError | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs a query when the page shows and whenever its variables change (by value); an answer
 * that arrives after a newer request started is dropped. A refused token signs the operator out.
 */
export function useQuery<R, V>(document: TypedDocumentString<R, V>, variables: V, options: { skip?: boolean } = {}): QueryState<R> {
  const { session, expire } = useConsole();
  const key = JSON.stringify(variables);
  const [state, setState] = useState<{ data: Answered<R> | undefined; error: GatewayError | undefined; loading: boolean }>({ data: undefined, error: undefined, loading: !options.skip });
  const [round, setRound] = useState(0);
  const latest = useRef(0);

  useEffect(() => {
    if (options.skip) return;
    const id = ++latest.current;
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true, error: undefined }));
    request(document, variables, session.token, abort.signal).then(
      (data) => id === latest.current && setState({ data, error: undefined, loading: false }),
      (e: unknown) => {
        if (id !== latest.current || (e as Error).name === 'AbortError') return;
        const error = e instanceof GatewayError ? e : new GatewayError(String(e), 0, undefined);
        if (error.code === 'UNAUTHENTICATED') return expire();
        setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
    return () => abort.abort();
    // `key` stands for the variables' value: a new object with the same values is no new query.
  }, [document, key, round, options.skip, session.token]);

  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { ...state, reload };
}

/** A mutation (or a query run on demand): the caller decides when, and reads the answer. */
export function useRequest() {
  const { session, expire } = useConsole();
  return useCallback(
    async <R, V>(document: TypedDocumentString<R, V>, variables: V): Promise<Answered<R>> => {
      try {
        return await request(document, variables, session.token);
      } catch (e) {
        if (e instanceof GatewayError && e.code === 'UNAUTHENTICATED') expire();
        throw e;
      }
    },
    [session.token, expire],
  );
}
