import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema.js';

/** Stands for one named value while a prepared query is built; replaced by the value at each run. */
class Slot {
  constructor(readonly name: string) {}
  // A slot is only ever handed to Kysely as a value: computing with one is a bug in the builder.
  toString(): never {
    throw new TypeError(`prepared query: value "${this.name}" was used in an expression; compute it before the call`);
  }
  valueOf(): never {
    return this.toString();
  }
}

// Process-wide: a name always stands for one SQL text, on every connection that prepares it.
const statementNames = new Map<string, string>();

/** The name a prepared query's SQL goes by as a PostgreSQL named statement (see openStore). */
export function preparedStatementName(sql: string): string | undefined {
  return statementNames.get(sql);
}

export type PreparedQuery<V, R> = (db: Kysely<Database>, values: V) => Promise<QueryResult<R>>;

/**
 * A query Kysely builds and compiles once per database (per dialect adapter, shared by the
 * database's transactions), then runs with new values each time. Building and compiling were
 * about a third of Kysely's cost per statement on the exchange's path, and the SQL text, one
 * string for good, makes the SQLite statement cache's lookup a pointer compare.
 *
 * `build` receives `values` as stand-ins, one level deep: it may pass them to Kysely as values
 * (in `values`, `set`, `where`), never compute with them, branch on them or read fields of them;
 * a value that does not reach the SQL as a parameter fails the first run.
 */
export function preparedQuery<V extends object, R>(build: (db: Kysely<Database>, values: V) => Compilable<R>): PreparedQuery<V, R> {
  const compiled = new WeakMap<object, CompiledQuery<R>>();
  return async (db, values) => {
    const adapter = db.getExecutor().adapter;
    let query = compiled.get(adapter);
    if (!query) {
      query = compile(db, build);
      compiled.set(adapter, query);
      if (!statementNames.has(query.sql)) statementNames.set(query.sql, `wxphone_${statementNames.size + 1}`);
    }
    const parameters = query.parameters.map((p) => (p instanceof Slot ? (values as Record<string, unknown>)[p.name] : p));
    return db.executeQuery<R>({ ...query, parameters });
  };
}

function compile<V extends object, R>(db: Kysely<Database>, build: (db: Kysely<Database>, values: V) => Compilable<R>): CompiledQuery<R> {
  const used = new Set<string>();
  const slots = new Proxy({} as V, {
    get(_, name) {
      if (typeof name !== 'string') return undefined;
      used.add(name);
      return new Slot(name);
    },
  });
  const query = build(db, slots).compile();
  const bound = new Set(query.parameters.flatMap((p) => (p instanceof Slot ? [p.name] : [])));
  for (const name of used) {
    if (!bound.has(name)) throw new TypeError(`prepared query: value "${name}" is not a parameter of the SQL it built`);
  }
  return query;
}
