import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import { chargeRow, explainPlan, seqScans } from '../support/stores.js';
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
    const charge = (createdAt: number, tappedAt: number | null, extra: Partial<ChargesTable> = {}) => chargeRow(appid, createdAt, tappedAt, extra);
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
    const plan = await explainPlan(store, chargesInWindow(store.db, appid, FROM, TO));
    if (store.dialect === 'sqlite') {
      expect(plan.text).toMatch(/charges_app_time \(appid=\? AND created_at>\? AND created_at<\?\)/);
    } else {
      expect(seqScans(plan, 'charges')).toBe(false);
      const range = plan.nodes.find((n) => n['Index Name'] === 'charges_app_time');
      expect(String(range?.['Index Cond'])).toMatch(/created_at > .*created_at < /);
    }
  });
});
