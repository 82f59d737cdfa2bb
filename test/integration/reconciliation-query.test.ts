import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompiledQuery, sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { chargesInWindow } from '../../src/billing/reconciliation.js';
import { TAP_PLAUSIBLE_MS } from '../../src/billing/charge-hooks.js';
import type { ChargesTable } from '../../src/store/schema.js';

const NOW = Date.parse('2026-06-01T04:00:00Z');
const MINUTE = 60_000;
const DAY = 1440 * MINUTE;
// A window five months back, and five months of charges after it, one every ten minutes.
const FROM = NOW - 150 * DAY;
const TO = FROM + DAY;
const LATER = (150 * DAY) / (10 * MINUTE);

describe.each(BACKENDS)('the reconciliation charge count on $name', (backend) => {
  let store: Store;
  let dir: string;
  const appid = `wx${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-recon-'));
    store = await openStore(backend.databaseUrl ?? `file:${join(dir, 'r.db')}`);
    const charge = (createdAt: number, tappedAt: number | null, extra: Partial<ChargesTable> = {}): ChargesTable => ({
      code_hash: randomBytes(12).toString('base64url'),
      appid,
      product: 'quick',
      status: 'confirmed',
      source: 'pack',
      pack_id: null,
      allocation_id: null,
      price_milli: 30,
      tapped_at: tappedAt,
      created_at: createdAt,
      ...extra,
    });
    const rows = [
      charge(FROM + 61 * MINUTE, FROM + 61 * MINUTE - 500),
      // Tapped in the window's last second, recorded just under an hour later: WeChat charged it in the window.
      charge(TO + TAP_PLAUSIBLE_MS - 1000, TO - 100),
      charge(TO - MINUTE, null, { status: 'unconfirmed', source: null }),
      charge(TO - 2 * MINUTE, TO - 2 * MINUTE - 500, { source: 'exempt' }),
      // Tapped a second after the window: the next one's.
      charge(TO + 1000, TO + 1),
      ...Array.from({ length: LATER }, (_, i) => charge(TO + (i + 1) * 10 * MINUTE, TO + (i + 1) * 10 * MINUTE - 500)),
    ];
    for (let i = 0; i < rows.length; i += 500) await store.db.insertInto('charges').values(rows.slice(i, i + 500)).execute();
    if (store.dialect === 'postgres') await sql`analyze charges`.execute(store.db);
  });
  afterAll(async () => {
    await store?.db.deleteFrom('charges').where('appid', '=', appid).execute();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts the charges tapped in the window, one recorded up to an hour after it too', async () => {
    const rows = await chargesInWindow(store.db, appid, FROM, TO).execute();
    const by = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    expect(by).toEqual({ confirmed: 2, unconfirmed: 1 });
  });

  it('reads the charges of the window through the (appid, created_at) index bounded on both sides, not every charge since', async () => {
    const compiled = chargesInWindow(store.db, appid, FROM, TO).compile();
    if (store.dialect === 'sqlite') {
      const { rows } = await store.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]));
      expect(rows.map((r) => r.detail).join(' | ')).toMatch(/charges_app_time \(appid=\? AND created_at>\? AND created_at<\?\)/);
    } else {
      const { rows } = await store.db.executeQuery<{ 'QUERY PLAN': unknown }>(CompiledQuery.raw(`explain (format json) ${compiled.sql}`, [...compiled.parameters]));
      const nodes: Record<string, unknown>[] = [];
      const walk = (n: Record<string, unknown>) => {
        nodes.push(n);
        for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
      };
      walk((rows[0]!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
      expect(nodes.some((n) => n['Relation Name'] === 'charges' && /Seq Scan/.test(String(n['Node Type'])))).toBe(false);
      const range = nodes.find((n) => n['Index Name'] === 'charges_app_time');
      expect(String(range?.['Index Cond'])).toMatch(/created_at > .*created_at < /);
    }
  });
});
