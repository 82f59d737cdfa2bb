import { PostgresAdapter, type Kysely } from 'kysely';

/** Whether `db` (a database or a transaction on it) talks to PostgreSQL rather than SQLite. */
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
