import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompiledQuery, sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import { chargeRow, explainPlan, seqScans } from '../support/stores.js';
import { openStore, type Store } from '../../src/store/db.js';
import { quotaRowsQuery } from '../../src/billing/quota.js';
import type { ChargesTable } from '../../src/store/schema.js';

const NOW = Date.parse('2026-06-01T04:00:00Z');
const HOUR = 3_600_000;
const SYNCED_AT = NOW - HOUR;
const OLD_CHARGES = 5000;

describe.each(BACKENDS)('the quota query on $name', (backend) => {
  let store: Store;
  let dir: string;
  const appid = `wx${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-quota-'));
    store = await openStore(backend.databaseUrl ?? `file:${join(dir, 'q.db')}`);
    await store.db.insertInto('app_trials').values({ appid, trial_used: 1000, updated_at: NOW }).execute();
    await store.db
      .insertInto('usage_snapshots')
      .values({ id: `us_${appid}`, appid, synced_at: SYNCED_AT, all_units: '100000', effective_use: '90000', trial_all: 1000, trial_used: 1000, recent_average: null, details: '[]' })
      .execute();
    const charge = (createdAt: number, tappedAt: number | null, extra: Partial<ChargesTable> = {}) => chargeRow(appid, createdAt, tappedAt, extra);
    // A history before the last sync, as an app has after months of traffic.
    const old = Array.from({ length: OLD_CHARGES }, (_, i) => charge(SYNCED_AT - (i + 1) * 60_000, SYNCED_AT - (i + 1) * 60_000 - 500));
    for (let i = 0; i < old.length; i += 500) await store.db.insertInto('charges').values(old.slice(i, i + 500)).execute();
    await store.db
      .insertInto('charges')
      .values([
        charge(SYNCED_AT + 1000, SYNCED_AT - 200), // tapped before the sync, recorded after: in WeChat's count already
        charge(SYNCED_AT + 2000, SYNCED_AT + 1500),
        charge(SYNCED_AT + 3000, null),
        charge(SYNCED_AT + 4000, SYNCED_AT + 3500, { source: 'exempt' }),
        charge(SYNCED_AT + 5000, null, { status: 'unconfirmed', source: null }),
      ])
      .execute();
    if (store.dialect === 'postgres') {
      // The table holds every app's charges, as a deployment's does: other apps' histories make the
      // app's own rows the selective part that the planner weighs (alone in a fresh schema, this app's
      // rows are the whole table, and a walk of it is cheaper than the index).
      for (let a = 0; a < 20; a++) {
        const other = `wx${randomBytes(8).toString('hex')}`;
        const rows = Array.from({ length: 1000 }, (_, i) => chargeRow(other, SYNCED_AT - i * 60_000, SYNCED_AT - i * 60_000 - 500));
        for (let i = 0; i < rows.length; i += 500) await store.db.insertInto('charges').values(rows.slice(i, i + 500)).execute();
      }
      await sql`analyze charges`.execute(store.db);
    }
  });
  afterAll(async () => {
    await store?.db.deleteFrom('charges').where('appid', '=', appid).execute();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts the confirmed, non-exempt charges tapped after the last sync', async () => {
    const { rows } = await quotaRowsQuery([appid], NOW).execute(store.db);
    expect(Number(rows[0]!.charged_since_sync)).toBe(2);
    // The history spans 5,000 minutes, all inside the week; the week counts exempt charges too.
    expect(Number(rows[0]!.charged_last_week)).toBe(OLD_CHARGES + 4);
  });

  it('reads only the charges since the sync through the (appid, created_at) index, not every charge the app ever had', async () => {
    const plan = await explainPlan(store, quotaRowsQuery([appid], NOW));
    if (store.dialect === 'sqlite') {
      // Both counts (since the sync, last week) are index ranges on time, none a walk of the app's charges.
      expect(plan.text.split(' | ').filter((d) => /charges_app_time \(appid=\? AND created_at>\?\)/.test(d))).toHaveLength(2);
    } else {
      const sinceSync = plan.nodes.filter((n) => n['Relation Name'] === 'charges' || n['Index Name'] === 'charges_app_time').filter((n) => JSON.stringify(n['Index Cond'] ?? '').includes('synced_at'));
      expect(sinceSync.length).toBeGreaterThan(0);
      expect(seqScans(plan, 'charges')).toBe(false);
    }
  });

  it("does not count the week's charges when the last sync carries the observed-rate state", async () => {
    await store.db.updateTable('usage_snapshots').set({ rate_weighted_units: '40', rate_weighted_ms: '604800000' }).where('id', '=', `us_${appid}`).execute();
    try {
      const { rows } = await quotaRowsQuery([appid], NOW).execute(store.db);
      expect(rows[0]!.rate_weighted_ms).toBe('604800000');
      expect(Number(rows[0]!.charged_last_week)).toBe(0);
      expect(Number(rows[0]!.charged_since_sync)).toBe(2);
      if (store.dialect === 'postgres') {
        // The count's subplan is there but never runs (PostgreSQL evaluates a CASE branch only when taken).
        const compiled = quotaRowsQuery([appid], NOW).compile(store.db);
        const { rows: plan } = await store.db.executeQuery<{ 'QUERY PLAN': unknown }>(CompiledQuery.raw(`explain (analyze, format json) ${compiled.sql}`, [...compiled.parameters]));
        const weekCounts: Record<string, unknown>[] = [];
        const walk = (n: Record<string, unknown>) => {
          if (n['Relation Name'] === 'charges' && JSON.stringify(n).includes(String(NOW - 7 * 86_400_000))) weekCounts.push(n);
          for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
        };
        walk((plan[0]!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
        expect(weekCounts.length).toBeGreaterThan(0);
        for (const n of weekCounts) expect(n['Actual Loops']).toBe(0);
      }
    } finally {
      await store.db.updateTable('usage_snapshots').set({ rate_weighted_units: null, rate_weighted_ms: null }).where('id', '=', `us_${appid}`).execute();
    }
  });
});
