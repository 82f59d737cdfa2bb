import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { BillingLedger, type DrawableAhead } from '../../src/billing/ledger.js';
import { ledgerStatements } from '../../src/store/ledger/index.js';
import { Procurement } from '../../src/billing/procurement.js';
import type { AppConfig } from '../../src/config.js';
import { DAY_MS } from '../../src/billing/rules.js';
import { assignedPack } from '../support/procurement.js';

const NOW = Date.parse('2026-06-01T04:00:00Z');
const hex = () => randomBytes(8).toString('hex');
const uniq = () => randomBytes(12).toString('base64url');

function appConfig(overrides: Partial<AppConfig> = {}): AppConfig {
  return { appid: `wx${hex()}`, secret: 's', product: 'quick', subjectType: 'enterprise', category: undefined, purposes: ['login'], lowQuota: undefined, ...overrides };
}

describe.each(BACKENDS)('BillingLedger on $name', (backend) => {
  let store: Store;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-ledger-'));
    store = await openStore(backend.databaseUrl ?? `file:${join(dir, 'l.db')}`, { poolSize: 20 });
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function ledgerFor(...apps: AppConfig[]) {
    return new BillingLedger(store.db, ledgerStatements(store.dialect), new Map(apps.map((a) => [a.appid, a])));
  }
  const charge = (ledger: BillingLedger, appid: string, status: 'confirmed' | 'unconfirmed' = 'confirmed', codeHash = uniq()) =>
    store.db.transaction().execute((trx) => ledger.recordCharge(trx, { codeHash, appid, status, now: NOW }));
  const setTrialUsed = (appid: string, used: number) =>
    store.db.insertInto('app_trials').values({ appid, trial_used: used, updated_at: NOW }).onConflict((oc) => oc.column('appid').doUpdateSet({ trial_used: used })).execute();
  const buy = (ledger: BillingLedger, appid: string, units: number, paidDaysAgo: number, validityDays: number) =>
    ledger.recordPackPurchase({ owner: { kind: 'app', appid }, units, paidAt: NOW - paidDaysAgo * DAY_MS, validityDays, pricePaidMilli: units * 30 }, NOW);

  it('draws the trial first, then the pack that expires soonest, then records the charge as unfunded', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    await ledger.registerApps(NOW);
    await setTrialUsed(app.appid, 999);
    const b = await buy(ledger, app.appid, 2, 1, 10); // expires in 9 days
    const c = await buy(ledger, app.appid, 1, 1, 5); // expires in 4 days: drawn first
    const sources = [];
    for (let i = 0; i < 5; i++) sources.push(await charge(ledger, app.appid));
    expect(sources.map((s) => [s.source, s.packId])).toEqual([
      ['trial', null],
      ['pack', c.id],
      ['pack', b.id],
      ['pack', b.id],
      ['unfunded', null],
    ]);
    expect(sources.map((s) => s.priceMilli)).toEqual([0, 30, 30, 30, 30]);
  });

  it('stores each charge as drawn, whichever statement inserted it: trial, pack and unfunded rows, column by column', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    await setTrialUsed(app.appid, 999);
    const pack = await buy(ledger, app.appid, 1, 1, 10);
    const codes = [uniq(), uniq(), uniq()];
    const tappedAt = [NOW - 1500, null, NOW - 700];
    for (const [i, codeHash] of codes.entries()) {
      await store.db.transaction().execute((trx) => ledger.recordCharge(trx, { codeHash, appid: app.appid, status: 'confirmed', now: NOW + i, tappedAt: tappedAt[i] }));
    }
    const rows = await store.db.selectFrom('charges').selectAll().where('code_hash', 'in', codes).orderBy('created_at').execute();
    expect(rows.map((r) => ({ ...r, price_milli: Number(r.price_milli), tapped_at: r.tapped_at === null ? null : Number(r.tapped_at), created_at: Number(r.created_at) }))).toEqual([
      { code_hash: codes[0], appid: app.appid, product: 'quick', status: 'confirmed', source: 'trial', pack_id: null, price_milli: 0, tapped_at: NOW - 1500, created_at: NOW },
      { code_hash: codes[1], appid: app.appid, product: 'quick', status: 'confirmed', source: 'pack', pack_id: pack.id, price_milli: 30, tapped_at: null, created_at: NOW + 1 },
      { code_hash: codes[2], appid: app.appid, product: 'quick', status: 'confirmed', source: 'unfunded', pack_id: null, price_milli: 30, tapped_at: NOW - 700, created_at: NOW + 2 },
    ]);
  });

  it('a charge may choose from units read ahead of its transaction; a unit gone since, or a read that found none, is read again', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    const chargeWith = (drawable: DrawableAhead | undefined) =>
      store.db.transaction().execute((trx) => ledger.recordCharge(trx, { codeHash: uniq(), appid: app.appid, status: 'confirmed', now: NOW, drawable }));
    await setTrialUsed(app.appid, 999);
    expect(await ledger.drawableAhead(app.appid)).toBeUndefined(); // the trial's draw reads nothing
    expect((await chargeWith(undefined)).source).toBe('trial');

    const late = await buy(ledger, app.appid, 5, 1, 10);
    const soon = await buy(ledger, app.appid, 1, 1, 3);
    expect((await chargeWith(undefined)).packId).toBe(soon.id); // learns the trial is spent
    const none = await ledger.drawableAhead(app.appid);
    expect(none?.candidates.map((c) => c.id)).toEqual([late.id]);

    // Read ahead while `sooner` had a unit; another charge takes it first: this one draws `late`.
    const sooner = await buy(ledger, app.appid, 1, 1, 2);
    const ahead = await ledger.drawableAhead(app.appid);
    expect(ahead?.candidates.map((c) => c.id).sort()).toEqual([late.id, sooner.id].sort());
    expect((await chargeWith(undefined)).packId).toBe(sooner.id);
    expect(await chargeWith(ahead)).toMatchObject({ source: 'pack', packId: late.id, recorded: true });
    const used = async (id: string) => (await ledger.packsFor(app.appid, NOW)).find((v) => v.id === id)?.unitsUsed;
    expect([await used(sooner.id), await used(late.id)]).toEqual([1, 1]);

    // A read ahead that found nothing does not make the charge unfunded when a unit exists now.
    const empty: DrawableAhead = { candidates: [] };
    expect(await chargeWith(empty)).toMatchObject({ source: 'pack', packId: late.id });
    expect(await ledgerFor(appConfig({ subjectType: 'government' })).drawableAhead(app.appid)).toBeUndefined();
  });

  it('exempt apps draw nothing and cost nothing (a government app, 50 charges)', async () => {
    const app = appConfig({ subjectType: 'government' });
    const ledger = ledgerFor(app);
    await ledger.registerApps(NOW);
    for (let i = 0; i < 50; i++) expect(await charge(ledger, app.appid)).toMatchObject({ source: 'exempt', priceMilli: 0 });
    const trial = await store.db.selectFrom('app_trials').select('trial_used').where('appid', '=', app.appid).executeTakeFirstOrThrow();
    expect(trial.trial_used).toBe(0);
  });

  it('a code is charged once: a second record of it draws nothing; unconfirmed codes are recorded but not drawn', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    const code = uniq();
    expect((await charge(ledger, app.appid, 'confirmed', code)).recorded).toBe(true);
    expect(await charge(ledger, app.appid, 'confirmed', code)).toMatchObject({ recorded: false, source: 'trial' });
    expect(await charge(ledger, app.appid, 'unconfirmed')).toMatchObject({ status: 'unconfirmed', source: null, recorded: true });
    const trial = await store.db.selectFrom('app_trials').select('trial_used').where('appid', '=', app.appid).executeTakeFirstOrThrow();
    expect(trial.trial_used).toBe(1);
  });

  it('a code recorded again gives back the unit its second record drew: bought and assigned pack counts are unchanged', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    await setTrialUsed(app.appid, 1000);
    const pack = await buy(ledger, app.appid, 5, 1, 30);
    const code = uniq();
    expect(await charge(ledger, app.appid, 'confirmed', code)).toMatchObject({ recorded: true, source: 'pack', packId: pack.id });
    expect(await charge(ledger, app.appid, 'confirmed', code)).toMatchObject({ recorded: false, source: 'pack', packId: pack.id });
    expect((await ledger.packsFor(app.appid, NOW)).find((v) => v.id === pack.id)?.unitsUsed).toBe(1);

    const member = appConfig();
    const memberLedger = ledgerFor(member);
    await setTrialUsed(member.appid, 1000);
    const assigned = await assignedPack(new Procurement(store.db, new Map([[member.appid, member]])), { appid: member.appid, now: NOW, units: 4, days: 30 });
    const other = uniq();
    expect(await charge(memberLedger, member.appid, 'confirmed', other)).toMatchObject({ recorded: true, source: 'pack', packId: assigned.packId });
    expect(await charge(memberLedger, member.appid, 'confirmed', other)).toMatchObject({ recorded: false, source: 'pack', packId: assigned.packId });
    const row = await store.db.selectFrom('packs').select('units_used').where('id', '=', assigned.packId).executeTakeFirstOrThrow();
    expect(row.units_used).toBe(1);
    const charges = await store.db.selectFrom('charges').select('code_hash').where('code_hash', 'in', [code, other]).execute();
    expect(charges).toHaveLength(2);
  });

  it('once an app\'s trial is seen spent, its charges skip the trial statement and still draw packs in order', async () => {
    const app = appConfig();
    const statements: string[] = [];
    const counted = await openStore(backend.databaseUrl ?? `file:${join(dir, 'l.db')}`, { onQuery: (q) => statements.push(q) });
    try {
      const ledger = new BillingLedger(counted.db, ledgerStatements(counted.dialect), new Map([[app.appid, app]]));
      await setTrialUsed(app.appid, 999);
      const pack = await buy(ledger, app.appid, 5, 1, 30);
      const chargeHere = () => counted.db.transaction().execute((trx) => ledger.recordCharge(trx, { codeHash: uniq(), appid: app.appid, status: 'confirmed', now: NOW }));
      const trialStatements = () => statements.filter((q) => /app_trials/.test(q)).length;
      expect((await chargeHere()).source).toBe('trial');
      expect(trialStatements()).toBe(1);
      expect(await chargeHere()).toMatchObject({ source: 'pack', packId: pack.id });
      expect(trialStatements()).toBe(2); // this one saw the trial spent
      for (let i = 0; i < 3; i++) expect(await chargeHere()).toMatchObject({ source: 'pack', packId: pack.id });
      expect(trialStatements()).toBe(2);
      const trial = await store.db.selectFrom('app_trials').select('trial_used').where('appid', '=', app.appid).executeTakeFirstOrThrow();
      expect(trial.trial_used).toBe(1000);
      expect((await ledger.packsFor(app.appid, NOW)).find((v) => v.id === pack.id)?.unitsUsed).toBe(4);
    } finally {
      await counted.close();
    }
  });

  it('refunds: within 7 days and unused only, saying which rule forbids; a refunded pack is never drawn', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    await setTrialUsed(app.appid, 1000);
    const fresh = await buy(ledger, app.appid, 5, 6, 30);
    const old = await buy(ledger, app.appid, 5, 8, 30);
    expect(await ledger.requestRefund(old.id, NOW)).toEqual({ ok: false, rule: 'REFUND_WINDOW_PASSED' });
    const used = await buy(ledger, app.appid, 5, 6, 20); // expires soonest: drawn next
    expect((await charge(ledger, app.appid)).packId).toBe(used.id);
    expect(await ledger.requestRefund(used.id, NOW)).toEqual({ ok: false, rule: 'PACK_USED' });
    expect(await ledger.requestRefund(fresh.id, NOW)).toMatchObject({ ok: true });
    expect(await ledger.requestRefund(fresh.id, NOW)).toEqual({ ok: false, rule: 'ALREADY_REQUESTED' });
    for (let i = 0; i < 10; i++) expect((await charge(ledger, app.appid)).packId).not.toBe(fresh.id);
    const views = await ledger.packsFor(app.appid, NOW);
    expect(views.find((v) => v.id === fresh.id)?.status).toBe('REFUNDED');
  });

  it('a pack paid before the charging start date takes effect on it (Asia/Shanghai)', async () => {
    const app = appConfig();
    const ledger = new BillingLedger(store.db, ledgerStatements(store.dialect), new Map([[app.appid, app]]), { chargingStartDate: '2023-08-28' });
    const pack = await ledger.recordPackPurchase({ owner: { kind: 'app', appid: app.appid }, units: 10, paidAt: Date.parse('2023-08-01T02:00:00Z'), validityDays: 365, pricePaidMilli: 300 }, NOW);
    expect(new Date(pack.effectiveAt).toISOString()).toBe('2023-08-27T16:00:00.000Z'); // 2023-08-28 00:00 CST
    expect(new Date(pack.expiresAt).toISOString()).toBe('2024-08-26T16:00:00.000Z'); // 2024-08-27 00:00 CST
  });

  it('an assigned pack is one of the app\'s packs: drawn after the trial, in expiry order with bought packs, never refunded', async () => {
    const a = appConfig();
    const b = appConfig();
    const ledger = ledgerFor(a, b);
    const procurement = new Procurement(store.db, new Map([[a.appid, a], [b.appid, b]]));
    await setTrialUsed(a.appid, 999);
    const later = await buy(ledger, a.appid, 5, 1, 30); // expires in 29 days
    const soon = await assignedPack(procurement, { appid: a.appid, now: NOW, units: 3, days: 10 }); // expires in 10 days
    const sooner = await buy(ledger, a.appid, 1, 1, 5); // expires in 4 days
    const drawn = [];
    for (let i = 0; i < 7; i++) drawn.push(await charge(ledger, a.appid));
    expect(drawn.map((d) => [d.source, d.packId])).toEqual([
      ['trial', null],
      ['pack', sooner.id],
      ['pack', soon.packId],
      ['pack', soon.packId],
      ['pack', soon.packId],
      ['pack', later.id],
      ['pack', later.id],
    ]);
    const views = await ledger.packsFor(a.appid, NOW);
    expect(views.map((v) => [v.id, v.kind, v.orderId])).toEqual([
      [sooner.id, 'own', null],
      [soon.packId, 'assigned', soon.orderId],
      [later.id, 'own', null],
    ]);
    expect(views[1]).toMatchObject({ unitsAll: 3, unitsUsed: 3, status: 'USED_UP', pricePaidMilli: 0, requestId: soon.requestId });
    // The other app sees none of it; an assigned pack goes back by cancelling, not by a refund.
    expect(await ledger.packsFor(b.appid, NOW)).toEqual([]);
    const fresh = await assignedPack(procurement, { appid: b.appid, now: NOW, units: 3, days: 10 });
    await expect(ledger.requestRefund(fresh.packId, NOW)).rejects.toThrow(/cancel/);
  });

  it('concurrent records of one code drawing from a pack: one charge, one unit, whoever wins', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    await setTrialUsed(app.appid, 1000);
    const pack = await buy(ledger, app.appid, 50, 1, 30);
    const code = uniq();
    const same = await Promise.all(Array.from({ length: 20 }, () => charge(ledger, app.appid, 'confirmed', code)));
    expect(same.filter((r) => r.recorded)).toHaveLength(1);
    expect(same.every((r) => r.source === 'pack' && r.packId === pack.id)).toBe(true);
    expect((await ledger.packsFor(app.appid, NOW)).find((v) => v.id === pack.id)?.unitsUsed).toBe(1);
  });

  it('concurrent charges never overdraw the trial or a pack, and never charge one code twice', async () => {
    const app = appConfig();
    const ledger = ledgerFor(app);
    await setTrialUsed(app.appid, 990);
    const pack = await buy(ledger, app.appid, 50, 1, 30);
    const results = await Promise.all(Array.from({ length: 100 }, () => charge(ledger, app.appid)));
    const count = (s: string) => results.filter((r) => r.source === s).length;
    expect(count('trial')).toBe(10);
    expect(count('pack')).toBe(50);
    expect(count('unfunded')).toBe(40);
    const row = await store.db.selectFrom('packs').select('units_used').where('id', '=', pack.id).executeTakeFirstOrThrow();
    expect(row.units_used).toBe(50);
    const trial = await store.db.selectFrom('app_trials').select('trial_used').where('appid', '=', app.appid).executeTakeFirstOrThrow();
    expect(trial.trial_used).toBe(1000);

    const code = uniq();
    const same = await Promise.all(Array.from({ length: 30 }, () => charge(ledger, app.appid, 'confirmed', code).catch((e) => e)));
    // On PostgreSQL the losers of the insert race see the winner's row once it commits.
    expect(same.filter((r) => !(r instanceof Error) && r.recorded)).toHaveLength(1);
    const rows = await store.db.selectFrom('charges').select('code_hash').where('code_hash', '=', code).execute();
    expect(rows).toHaveLength(1);
  });
});
