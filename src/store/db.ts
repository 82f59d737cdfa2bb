import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, type LogEvent } from 'kysely';
import type { Database } from './schema.js';
import { migrateToLatest } from './migrations.js';
import { LruMap } from '../util/lru.js';
import { preparedStatementName } from './prepared.js';
import { withCurrentSchemaIntrospection } from './current-schema-introspector.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  close(): Promise<void>;
}

/**
 * Opens the database named by a URL (`postgres://…` or `file:PATH`, `file::memory:`)
 * and brings its schema to the latest migration. Several gateway processes may
 * migrate the same PostgreSQL database at once: Kysely's migrator takes a lock.
 */
export interface StoreOptions {
  poolSize?: number;
  /** Called with the SQL of every query (diagnostics, and tests that count queries). */
  onQuery?: (sql: string) => void;
  /**
   * PostgreSQL: run the statements of preparedQuery as named statements, parsed and planned once
   * per connection (default true). Off for a pooler that cannot keep them, such as PgBouncer in
   * transaction mode before 1.21 or without max_prepared_statements.
   */
  preparedStatements?: boolean;
}

/**
 * The longest any wait on PostgreSQL may last: for a pooled connection (under a burst, an
 * exchange's settlement queues for one after WeChat has answered, so a short wait here spends
 * codes for nothing) and for a query's answer.
 */
const DB_WAIT_MS = 15_000;
// No transaction here waits on anything but its own statements, which each end within DB_WAIT_MS.
const IDLE_IN_TRANSACTION_MS = 2 * DB_WAIT_MS;

export async function openStore(url: string, opts: StoreOptions = {}): Promise<Store> {
  const onQuery = opts.onQuery;
  const log = onQuery
    ? {
        log: (e: LogEvent) => {
          if (e.level === 'query') onQuery(e.query.sql);
        },
      }
    : {};
  let db: Kysely<Database>;
  let dialect: Dialect;
  if (/^postgres(ql)?:\/\//.test(url)) {
    const pg = await import('pg');
    const Pool = pg.default.Pool;
    // bigint (int8) columns hold epoch milliseconds: well inside 2^53, so numbers are exact.
    const int8 = 20;
    const pool = new Pool({
      ...(opts.preparedStatements === false ? {} : { Client: namedStatementClient(pg.default.Client) }),
      connectionString: url,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: DB_WAIT_MS,
      // A database that stops answering on an open connection (a partition: no RST, no reply)
      // must not hold a request for ever: a query without an answer fails after this long.
      query_timeout: DB_WAIT_MS,
      // The server's side of the same: it stops a statement nobody waits for any more, and ends a
      // session left idle in a transaction (a process frozen or cut off while holding a chain's or a
      // claim's row lock) so the locks go back to the other instances.
      statement_timeout: DB_WAIT_MS,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
      // Probes idle connections, so a silently dropped one is found before a request picks it.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === int8 ? (v: string) => Number(v) : pg.default.types.getTypeParser(oid, format as 'text')) as never,
      },
    });
    // An idle client losing its connection must not crash the process.
    pool.on('error', () => {});
    pool.on('connect', (client) => {
      // Nor may a client that loses it while checked out (a transaction between two statements,
      // when the server shuts down): the pool listens on idle clients only, and an 'error' event
      // without a listener ends the process. The client is then not queryable, so its holder's
      // next statement fails (a storage error, see isStorageUnavailable) and the pool drops it.
      client.on('error', () => {});
      // Every statement here is short. PostgreSQL's JIT compiles any plan whose estimated cost passes
      // jit_above_cost, and the quota query's does (it cannot know the sync time that bounds its count):
      // compiling costs many times what the query does, most of all on a new connection. Queued
      // before the connection's first statement; a pooler that refuses SET only leaves JIT on.
      void client.query('set jit = off').catch(() => {});
    });
    db = new Kysely<Database>({ dialect: withCurrentSchemaIntrospection(new PostgresDialect({ pool })), ...log });
    dialect = 'postgres';
  } else if (url.startsWith('file:')) {
    const path = url.slice('file:'.length);
    const { default: SQLite } = await import('better-sqlite3');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const sqlite = new SQLite(path);
    sqlite.pragma('journal_mode = WAL');
    // Several processes may share the file (tests, a CLI next to a server): wait rather than fail.
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('synchronous = NORMAL');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }), ...log });
    dialect = 'sqlite';
  } else {
    throw new Error('DATABASE_URL must start with postgres://, postgresql:// or file:');
  }
  await migrateToLatest(db, dialect);
  return { db, dialect, close: () => db.destroy() };
}

// Kysely's SQLite driver prepares every query anew; preparing was the largest single cost in the
// exchange's CPU profile. Statements are reusable in better-sqlite3 (execution is synchronous),
// and the SQL texts Kysely builds here are few (parameters are bound, not inlined).
const STATEMENT_CACHE_SIZE = 500;

function withStatementCache(sqlite: import('better-sqlite3').Database) {
  const cache = new LruMap<string, import('better-sqlite3').Statement>(STATEMENT_CACHE_SIZE);
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      let stmt = cache.get(sql);
      if (!stmt) {
        stmt = sqlite.prepare(sql);
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

/**
 * A pg client that sends the SQL of preparedQuery as a named statement: PostgreSQL parses and plans
 * it on a connection's first use only, not for every exchange's statements. Anything else goes as before.
 */
function namedStatementClient(Client: typeof import('pg').Client): typeof import('pg').Client {
  return class NamedStatementClient extends Client {
    // Kysely calls query(sql, parameters); every other form (a config object, a callback) passes through.
    override query(...args: unknown[]): never {
      const [text, values, callback] = args;
      const name = typeof text === 'string' && Array.isArray(values) && callback === undefined ? preparedStatementName(text) : undefined;
      const query = super.query as (...a: unknown[]) => never;
      return name ? query.call(this, { name, text, values }) : query.apply(this, args);
    }
  } as typeof Client;
}
