import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';

/**
 * One set of migrations for SQLite and PostgreSQL: only portable column types
 * (text, integer, bigint) so the same code reads both.
 */
const migrations: Record<string, Migration> = {
  '0001_code_claims': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('code_claims')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('subject_hash', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('lease_until', 'bigint', (c) => c.notNull())
        .addColumn('error_code', 'text')
        .addColumn('error_retryable', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('answer_sealed', 'text')
        .addColumn('answer_expires_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('code_claims_answer_expiry').on('code_claims').column('answer_expires_at').execute();
      await db.schema.createIndex('code_claims_app_created').on('code_claims').columns(['appid', 'created_at']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('code_claims').execute();
    },
  },
};

class StaticMigrations implements MigrationProvider {
  async getMigrations() {
    return migrations;
  }
}

export async function migrateToLatest(db: Kysely<any>): Promise<void> {
  const migrator = new Migrator({ db, provider: new StaticMigrations() });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration failed${failed ? ` at ${failed.migrationName}` : ''}: ${(error as Error)?.message ?? ''}`);
  }
}

/** Cheap round trip for readiness probes. */
export async function ping(db: Kysely<any>): Promise<void> {
  await sql`select 1`.execute(db);
}
