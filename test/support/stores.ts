import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CompiledQuery, type Kysely } from 'kysely';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/db.js';
import type { ChargesTable } from '../../src/store/schema.js';
import type { Backend } from './backends.js';
import { testSchemaName } from './schemas.js';

/** A PostgreSQL URL whose sessions work in `schema` (in place of any search_path the URL set). */
export function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

/**
 * A store no other test file writes to: a SQLite file in `dir`, or on PostgreSQL a schema of its own
 * (`wxt_<prefix>_…`, dropped by the global teardown), for tests that need known row counts (plans,
 * purges that delete every app's rows).
 */
export async function openIsolatedStore(backend: Backend, dir: string, prefix: string): Promise<Store> {
  if (!backend.databaseUrl) return openStore(`file:${join(dir, `${prefix}.db`)}`);
  const schema = testSchemaName(prefix);
  const c = new pg.Client({ connectionString: backend.databaseUrl });
  await c.connect();
  await c.query(`create schema ${schema}`);
  await c.end();
  return openStore(withSearchPath(backend.databaseUrl, schema));
}

export interface Plan {
  /** SQLite: the plan's lines joined with " | "; PostgreSQL: the plan as JSON. */
  text: string;
  /** PostgreSQL: every node of the plan; SQLite: none. */
  nodes: Record<string, unknown>[];
}

/** A query builder, or a raw `sql` query (which compiles against a database). */
export interface Explainable {
  compile(db: Kysely<any>): CompiledQuery;
}

/** The plan the store's database chooses for a query, with its parameters bound. */
export async function explainPlan(store: Store, query: Explainable): Promise<Plan> {
  const compiled = query.compile(store.db);
  if (store.dialect === 'sqlite') {
    const { rows } = await store.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]));
    return { text: rows.map((r) => r.detail).join(' | '), nodes: [] };
  }
  const { rows } = await store.db.executeQuery<{ 'QUERY PLAN': unknown }>(CompiledQuery.raw(`explain (format json) ${compiled.sql}`, [...compiled.parameters]));
  const nodes: Record<string, unknown>[] = [];
  const walk = (n: Record<string, unknown>) => {
    nodes.push(n);
    for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
  };
  walk((rows[0]!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
  return { text: JSON.stringify(rows[0]!['QUERY PLAN']), nodes };
}

/** Whether a PostgreSQL plan reads `table` with a sequential scan. */
export const seqScans = (plan: Plan, table: string) => plan.nodes.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === table);

/** A confirmed pack charge of `appid`, recorded at `createdAt`, tapped at `tappedAt`. */
export function chargeRow(appid: string, createdAt: number, tappedAt: number | null, extra: Partial<ChargesTable> = {}): ChargesTable {
  return {
    code_hash: randomBytes(12).toString('base64url'),
    appid,
    product: 'quick',
    status: 'confirmed',
    source: 'pack',
    pack_id: null,
    price_milli: 30,
    tapped_at: tappedAt,
    created_at: createdAt,
    ...extra,
  };
}
