import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { isPostgres } from './dialect.js';

/**
 * One set of migrations for SQLite and PostgreSQL: only portable column types
 * (text, integer, bigint) so the same code reads both. One file, whatever its
 * length: the migrations are the schema's history, read in order.
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
  '0002_billing': {
    async up(db: Kysely<any>) {
      // Packs bought by an app, or by a procurement group (owner_kind 'group') and allocated to apps.
      await db.schema
        .createTable('packs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_kind', 'text', (c) => c.notNull())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('units_all', 'integer', (c) => c.notNull())
        .addColumn('units_used', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('paid_at', 'bigint', (c) => c.notNull())
        .addColumn('effective_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('validity_days', 'integer', (c) => c.notNull())
        .addColumn('price_paid_milli', 'bigint', (c) => c.notNull())
        .addColumn('wechat_pkg_id', 'text')
        .addColumn('refund_state', 'text')
        .addColumn('refund_requested_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('packs_owner').on('packs').columns(['owner_kind', 'owner_id', 'expires_at']).execute();

      await db.schema
        .createTable('procurement_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('procurement_members')
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('procurement_members_pk', ['group_id', 'appid'])
        .execute();
      // Units of a group's pack given to one member app; drawn like the app's own packs.
      await db.schema
        .createTable('allocations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('pack_id', 'text', (c) => c.notNull())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('units_all', 'integer', (c) => c.notNull())
        .addColumn('units_used', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('allocations_pack_app', ['pack_id', 'appid'])
        .execute();
      await db.schema.createIndex('allocations_app').on('allocations').column('appid').execute();

      await db.schema
        .createTable('app_trials')
        .addColumn('appid', 'text', (c) => c.primaryKey())
        .addColumn('trial_used', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      // One row per code the gateway saw: the primary key makes a second charge of one code impossible.
      await db.schema
        .createTable('charges')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('source', 'text')
        .addColumn('pack_id', 'text')
        .addColumn('allocation_id', 'text')
        .addColumn('price_milli', 'integer', (c) => c.notNull())
        .addColumn('tapped_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('charges_app_time').on('charges').columns(['appid', 'created_at']).execute();

      await db.schema
        .createTable('client_reports')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('errno', 'integer')
        .addColumn('client_event_id', 'text')
        .addColumn('code_hash', 'text')
        .addColumn('subject_hash', 'text', (c) => c.notNull())
        .addColumn('occurred_at', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('client_reports_event', ['appid', 'client_event_id'])
        // A code is reported once (NULLs are distinct in both databases: reports without a code are not limited).
        .addUniqueConstraint('client_reports_code', ['appid', 'code_hash'])
        .execute();
      await db.schema.createIndex('client_reports_app_time').on('client_reports').columns(['appid', 'occurred_at']).execute();

      // WeChat's usage API, as synced: the history reconciliation measures growth against.
      await db.schema
        .createTable('usage_snapshots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('synced_at', 'bigint', (c) => c.notNull())
        .addColumn('all_units', 'text', (c) => c.notNull())
        .addColumn('effective_use', 'text', (c) => c.notNull())
        .addColumn('trial_all', 'integer', (c) => c.notNull())
        .addColumn('trial_used', 'integer', (c) => c.notNull())
        .addColumn('recent_average', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('usage_snapshots_app_time').on('usage_snapshots').columns(['appid', 'synced_at']).execute();

      await db.schema
        .createTable('quota_alerts')
        .addColumn('appid', 'text', (c) => c.primaryKey())
        .addColumn('low', 'integer', (c) => c.notNull())
        .addColumn('changed_at', 'bigint', (c) => c.notNull())
        .addColumn('notified_at', 'bigint')
        .execute();
    },
    async down(db: Kysely<any>) {
      for (const t of ['quota_alerts', 'usage_snapshots', 'client_reports', 'charges', 'app_trials', 'allocations', 'procurement_members', 'procurement_groups', 'packs']) {
        await db.schema.dropTable(t).execute();
      }
    },
  },
  '0003_privacy': {
    async up(db: Kysely<any>) {
      // The consent audit: one append-only, hash-chained log per app.
      await db.schema
        .createTable('audit_records')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('flow', 'text')
        .addColumn('purpose', 'text')
        .addColumn('notice_version', 'text')
        .addColumn('request_id', 'text')
        .addColumn('outcome', 'text')
        .addColumn('error_code', 'text')
        .addColumn('subject_hash', 'text')
        .addColumn('masked_phone', 'text')
        .addColumn('phone_hash', 'text')
        .addColumn('personal_digest', 'text')
        .addColumn('digest_salt', 'text')
        .addColumn('detail', 'text')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('erased_at', 'bigint')
        .addUniqueConstraint('audit_records_chain', ['appid', 'seq'])
        .execute();
      await db.schema.createIndex('audit_records_app_at').on('audit_records').columns(['appid', 'at']).execute();
      await db.schema.createIndex('audit_records_subject').on('audit_records').columns(['appid', 'subject_hash']).execute();
      await db.schema
        .createTable('audit_heads')
        .addColumn('appid', 'text', (c) => c.primaryKey())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .addColumn('last_hash', 'text', (c) => c.notNull())
        .addColumn('head_mac', 'text', (c) => c.notNull())
        .execute();
      // Withdrawal and erasure find a subject's rows by these.
      await db.schema.createIndex('code_claims_app_subject').on('code_claims').columns(['appid', 'subject_hash']).execute();
      await db.schema.createIndex('client_reports_app_subject').on('client_reports').columns(['appid', 'subject_hash']).execute();
      // Consent withdrawn by a subject for an app's purpose (absent = not withdrawn).
      await db.schema
        .createTable('consents')
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('subject_hash', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('consents_pk', ['appid', 'subject_hash', 'purpose'])
        .execute();
      // The gateway's own signing keys for verification tokens (private halves sealed with the data key).
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('private_sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('retire_at', 'bigint', (c) => c.notNull())
        .addColumn('drop_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      for (const t of ['signing_keys', 'consents', 'audit_heads', 'audit_records']) await db.schema.dropTable(t).execute();
    },
  },
  '0004_claim_purge_indexes': {
    // The purges each minute read claims by age (older than a day) and answers still held by their
    // expiry. (appid, created_at) served neither, and answer_expires_at indexed every claim, its
    // answer long purged or never stored too: both walked the whole table (a day of claims) every
    // minute — on SQLite with the event loop blocked. A held answer lives about ten minutes, so its
    // partial index stays small, and a claim no longer writes an entry into it when inserted.
    async up(db: Kysely<any>) {
      await withoutStatementTimeout(db);
      await db.schema.dropIndex('code_claims_app_created').execute();
      await db.schema.dropIndex('code_claims_answer_expiry').execute();
      await db.schema.createIndex('code_claims_created').on('code_claims').column('created_at').execute();
      await db.schema.createIndex('code_claims_held_answers').on('code_claims').column('answer_expires_at').where(sql.ref('answer_sealed'), 'is not', null).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropIndex('code_claims_held_answers').execute();
      await db.schema.dropIndex('code_claims_created').execute();
      await db.schema.createIndex('code_claims_answer_expiry').on('code_claims').column('answer_expires_at').execute();
      await db.schema.createIndex('code_claims_app_created').on('code_claims').columns(['appid', 'created_at']).execute();
    },
  },
  '0005_audit_subject_in_chain_order': {
    // A subject's records in chain order (erasure, audit pages and the export by subject) straight
    // from the index: with (appid, subject_hash) alone, SQLite walked the whole chain in seq order
    // to avoid a sort (for an erasure, with the head locked).
    // The same entries per record as before. `if not exists`: on a large chain, build it beforehand
    // with CREATE INDEX CONCURRENTLY, and this finds it.
    async up(db: Kysely<any>) {
      await withoutStatementTimeout(db);
      await db.schema.createIndex('audit_records_subject_seq').ifNotExists().on('audit_records').columns(['appid', 'subject_hash', 'seq']).execute();
      await db.schema.dropIndex('audit_records_subject').execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.createIndex('audit_records_subject').on('audit_records').columns(['appid', 'subject_hash']).execute();
      await db.schema.dropIndex('audit_records_subject_seq').execute();
    },
  },
  '0006_claim_earlier_attempt_lost': {
    // Set when an attempt takes over a claim whose owner ended without an outcome (its lease ran
    // out while pending): that owner may have used the code at WeChat, so a later 40029 says nothing
    // about the code the user gave. Kept through later takeovers. A constant default: no table
    // rewrite on PostgreSQL, none on SQLite.
    async up(db: Kysely<any>) {
      await db.schema.alterTable('code_claims').addColumn('earlier_attempt_lost', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.alterTable('code_claims').dropColumn('earlier_attempt_lost').execute();
    },
  },
  '0007_usage_rows': {
    // What each sync read from WeChat's usage rows, and the observed-rate state the forecast runs
    // on. Nullable: snapshots taken before this migration have none of it, and quota reads fall
    // back for them (remaining = all − effectiveUse, as it was computed then). One column per
    // statement: SQLite adds one at a time.
    async up(db: Kysely<any>) {
      const columns: [string, 'text' | 'integer' | 'bigint'][] = [
        ['remaining_units', 'text'], // Σ (all − used) over rows in effect, 64-bit as a decimal string
        ['units_in_effect', 'text'], // Σ all over rows in effect
        ['trial_remaining', 'integer'],
        ['monthly_average', 'text'], // get_recent_average's averageData: a fuzzed monthly upper bound
        ['unseen_units', 'bigint'], // effectiveUse growth since the previous snapshot beyond the confirmed charges
        ['rate_weighted_units', 'text'], // the observed-rate state as of synced_at (floats as text)
        ['rate_weighted_ms', 'text'],
      ];
      for (const [name, type] of columns) await db.schema.alterTable('usage_snapshots').addColumn(name, type).execute();
    },
    async down(db: Kysely<any>) {
      for (const name of ['rate_weighted_ms', 'rate_weighted_units', 'unseen_units', 'monthly_average', 'trial_remaining', 'units_in_effect', 'remaining_units']) {
        await db.schema.alterTable('usage_snapshots').dropColumn(name).execute();
      }
    },
  },
  '0008_wechat_events': {
    // Events WeChat pushes (message push): the dedupe of its retries, across instances and
    // restarts, and the charge alerts the quota query shows.
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('wechat_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('event_at', 'bigint')
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addColumn('fields', 'text')
        .execute();
      // An app's latest alert (the quota query), and the purge of other events by age.
      await db.schema.createIndex('wechat_events_app_kind').on('wechat_events').columns(['appid', 'kind', 'event_at']).execute();
      await db.schema.createIndex('wechat_events_kind_received').on('wechat_events').columns(['kind', 'received_at']).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable('wechat_events').execute();
    },
  },
  '0009_procurement_orders': {
    // Bulk procurement (集采) as WeChat runs it: a service provider's orders, and assignments of
    // whole packs of an order's SKU to apps (asynchronous, keyed by WeChat's orderId + requestId).
    // An assigned pack is a row of `packs` owned by its app, so it is drawn like any other.
    //
    // The old model (groups, members, unit allocations and moves between apps) has no WeChat
    // counterpart: no orderId, no SKU, no requestId, and units split at will, which WeChat never
    // does; nothing in it can become an order or an assignment. Its rows go: group-owned packs,
    // allocations, members, groups. Charges drawn from an allocation stay (the codes were seen and
    // WeChat charged them), as 'unfunded': charged at WeChat from no pack the mirror knows, which
    // is what they were; reconciliation counts them as before.
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('procurement_orders')
        .addColumn('order_id', 'text', (c) => c.primaryKey())
        .addColumn('product', 'text', (c) => c.notNull())
        .addColumn('sp_spu_id', 'text')
        .addColumn('sp_sku_id', 'text')
        .addColumn('sku_cnt', 'integer')
        .addColumn('units_all', 'integer', (c) => c.notNull())
        .addColumn('price_paid_milli', 'text', (c) => c.notNull())
        .addColumn('paid_at', 'bigint', (c) => c.notNull())
        .addColumn('wechat_created_at', 'bigint')
        .addColumn('validity_begin_at', 'bigint')
        .addColumn('validity_end_at', 'bigint')
        .addColumn('recorded_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('procurement_order_skus')
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('sku_id', 'text', (c) => c.notNull())
        .addColumn('spu_id', 'text')
        .addColumn('sku_name', 'text')
        .addColumn('units', 'integer', (c) => c.notNull())
        .addColumn('duration_seconds', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('procurement_order_skus_pk', ['order_id', 'sku_id'])
        .execute();
      await db.schema
        .createTable('procurement_assignments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('sku_id', 'text', (c) => c.notNull())
        .addColumn('receiver_appid', 'text', (c) => c.notNull())
        .addColumn('begin_time', 'bigint')
        .addColumn('units', 'integer', (c) => c.notNull())
        .addColumn('duration_seconds', 'bigint', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('errcode', 'integer')
        .addColumn('receive_pkg_id', 'text')
        .addColumn('pack_id', 'text')
        .addColumn('requested_at', 'bigint', (c) => c.notNull())
        .addColumn('settled_at', 'bigint')
        .addColumn('assigned_at', 'bigint')
        .addColumn('cancelled_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        // WeChat: "the same orderId with the same requestId is one request".
        .addUniqueConstraint('procurement_assignments_request', ['order_id', 'request_id'])
        .execute();
      await db.schema.createIndex('procurement_assignments_app').on('procurement_assignments').column('receiver_appid').execute();
      await db.schema.alterTable('packs').addColumn('assignment_id', 'text').execute();

      await db.updateTable('charges').set({ source: 'unfunded', pack_id: null }).where('source', '=', 'allocation').execute();
      await db.schema.alterTable('charges').dropColumn('allocation_id').execute();
      await db.deleteFrom('packs').where('owner_kind', '=', 'group').execute();
      for (const t of ['allocations', 'procurement_members', 'procurement_groups']) await db.schema.dropTable(t).execute();
    },
    async down(db: Kysely<any>) {
      // The old tables come back empty: what 0009 dropped cannot be restored.
      await db.schema
        .createTable('procurement_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('procurement_members')
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('procurement_members_pk', ['group_id', 'appid'])
        .execute();
      await db.schema
        .createTable('allocations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('pack_id', 'text', (c) => c.notNull())
        .addColumn('appid', 'text', (c) => c.notNull())
        .addColumn('units_all', 'integer', (c) => c.notNull())
        .addColumn('units_used', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('allocations_pack_app', ['pack_id', 'appid'])
        .execute();
      await db.schema.createIndex('allocations_app').on('allocations').column('appid').execute();
      await db.schema.alterTable('charges').addColumn('allocation_id', 'text').execute();
      // Assigned packs have no place in the old model: they go with their assignments, and what
      // was drawn from them becomes unfunded, as allocations' charges did on the way up.
      await db
        .updateTable('charges')
        .set({ source: 'unfunded', pack_id: null })
        .where('pack_id', 'in', db.selectFrom('packs').select('id').where('assignment_id', 'is not', null))
        .execute();
      await db.deleteFrom('packs').where('assignment_id', 'is not', null).execute();
      await db.schema.alterTable('packs').dropColumn('assignment_id').execute();
      for (const t of ['procurement_assignments', 'procurement_order_skus', 'procurement_orders']) await db.schema.dropTable(t).execute();
    },
  },
};

/**
 * For a migration that builds an index over a big table: the build may outlast the 15 s a statement
 * gets on PostgreSQL (src/store/db.ts). Lifted for the migration's own transaction only; SQLite has
 * no such limit.
 */
async function withoutStatementTimeout(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) await sql`set local statement_timeout = 0`.execute(db);
}

class StaticMigrations implements MigrationProvider {
  async getMigrations() {
    return migrations;
  }
}

export async function migrateToLatest(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  return migrateTo(db, dialect);
}

/** Brings the schema to the named migration (up or down), or to the latest. */
export async function migrateTo(db: Kysely<any>, dialect: 'sqlite' | 'postgres', target?: string): Promise<void> {
  // Without a schema, Kysely accepts its bookkeeping tables from any schema on the search
  // path; pin it to the current one so a deployment scoped by search_path migrates itself.
  const schema =
    dialect === 'postgres' ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s : undefined;
  const migrator = new Migrator({ db, provider: new StaticMigrations(), ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = target === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(target);
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration failed${failed ? ` at ${failed.migrationName}` : ''}: ${(error as Error)?.message ?? ''}`);
  }
}

/** Cheap round trip for readiness probes. */
export async function ping(db: Kysely<any>): Promise<void> {
  await sql`select 1`.execute(db);
}
