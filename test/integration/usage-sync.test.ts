// UsageSync against a scripted WeChat (the adapter's typed answers) and a real database, on a
// clock the test moves: what each snapshot keeps, and the observed rate it carries.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { chargeRow, openIsolatedStore } from '../support/stores.js';
import type { Store } from '../../src/store/db.js';
import { createLogger } from '../../src/log.js';
import type { AppConfig } from '../../src/config.js';
import { UsageSync, UsageSyncError } from '../../src/billing/usage-sync.js';
import { QuotaService } from '../../src/billing/quota.js';
import { DAY_MS, advanceUsageRate, dailyUsageRate, startUsageRate } from '../../src/billing/rules.js';
import { WechatApiError, type UsageDetail, type UsageSummary, type WechatClient } from '../../src/wechat/index.js';
import type { AccessTokenProvider } from '../../src/wechat/index.js';

const APPID = 'wx00000000000000a7';
const APP: AppConfig = { appid: APPID, secret: 's', product: 'quick', subjectType: 'enterprise', category: undefined, purposes: ['login'], lowQuota: undefined };
const T0 = Date.parse('2026-03-01T00:00:00+08:00');

const trialRow = (used: bigint): UsageDetail => ({ pkgId: '', orderId: '', status: 1, startTime: 1692028800, endTime: 4294967295, all: 1000n, used, spuId: '10000077', skuId: '20000093', source: 1 });
const packRow = (pkgId: string, status: number, all: bigint, used: bigint): UsageDetail => ({ pkgId, status, startTime: 1, endTime: 2, all, used, spuId: '10000077', skuId: '20000059', source: 2 });

describe.each(BACKENDS)('UsageSync on $name', (backend) => {
  let dir: string;
  let store: Store;
  let now = T0;
  let usage: UsageSummary | Error;
  let average: { monthlyAverage: bigint } | Error;
  const logs: string[] = [];
  let sync: UsageSync;
  let quota: QuotaService;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-usage-sync-'));
    store = await openIsolatedStore(backend, dir, 'usync');
    await store.db.insertInto('app_trials').values({ appid: APPID, trial_used: 0, updated_at: T0 }).execute();
    const wechat = {
      getUsage: async () => (usage instanceof Error ? Promise.reject(usage) : usage),
      getRecentAverage: async () => (average instanceof Error ? Promise.reject(average) : average),
    } as unknown as WechatClient;
    const tokens = { withToken: (_appid: string, call: (t: string) => Promise<unknown>) => call('ACCESS-TOKEN-usage-sync') } as unknown as AccessTokenProvider;
    const log = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }) });
    const apps = new Map([[APPID, APP]]);
    sync = new UsageSync({ db: store.db, cache: new Keyv(), lock: null, tokens, wechat, apps, log, now: () => now });
    quota = new QuotaService(store.db, apps, sync, () => undefined, () => now);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const summary = (effectiveUse: bigint, details: UsageDetail[]): UsageSummary => ({ all: 0n, effectiveUse, details, total: details.length, detailsComplete: true });
  const snapshots = () => store.db.selectFrom('usage_snapshots').selectAll().where('appid', '=', APPID).orderBy('synced_at').execute();

  it('keeps what the rows say: remaining over the rows in effect, the trial from its row, WeChat\'s monthly figure; seeds the rate with the week before', async () => {
    // 14 confirmed charges in the week before the first sync (and one older, outside it).
    await store.db
      .insertInto('charges')
      .values([...Array.from({ length: 14 }, (_, i) => chargeRow(APPID, T0 - (i + 1) * 3_600_000, null)), chargeRow(APPID, T0 - 8 * DAY_MS, null)])
      .execute();
    usage = summary(1003n, [trialRow(1000n), packRow('ZYa', 3, 10n, 3n), packRow('ZYb', 1, 20n, 0n)]);
    average = { monthlyAverage: 340n };
    const s = await sync.sync(APPID);
    expect(s).toMatchObject({ remaining: 20n, unitsInEffect: 1020n, trialAll: 1000, trialUsed: 1000, trialRemaining: 0, monthlyAverage: 340n, unseen: 0 });
    const seeded = advanceUsageRate(startUsageRate(T0 - 7 * DAY_MS), T0, 14);
    expect(s.rate).toEqual(seeded);
    expect(dailyUsageRate(s.rate)).toBeCloseTo(2, 9);
    const [row] = await snapshots();
    expect(row).toMatchObject({ remaining_units: '20', units_in_effect: '1020', trial_remaining: 0, monthly_average: '340', recent_average: null });
    expect(Number(row!.unseen_units)).toBe(0);
    expect(JSON.parse(row!.details)).toEqual([
      expect.objectContaining({ pkgId: '', source: 1, trial: true, all: '1000', used: '1000' }),
      expect.objectContaining({ pkgId: 'ZYa', source: 2, trial: false, status: 3 }),
      expect.objectContaining({ pkgId: 'ZYb', source: 2, trial: false }),
    ]);
    const [q] = await quota.load([APPID]);
    expect(q).toMatchObject({ basis: 'WECHAT', remaining: 20, trialUsed: 1000, packsRemaining: 20, unitsInEffect: 1020, wechatMonthlyAverageBound: 340, lowQuota: true, exhausted: false });
    expect((q as { dailyAverage: number }).dailyAverage).toBeCloseTo(2, 9);
  });

  it("folds each sync's use into the rate: the confirmed charges, or WeChat's growth where it is more (the unseen part kept)", async () => {
    const [first] = await snapshots();
    const t1 = Number(first!.synced_at);
    // A day later: 8 codes confirmed by the gateway, WeChat's effectiveUse up by 12 (4 unseen).
    await store.db.insertInto('charges').values(Array.from({ length: 8 }, (_, i) => chargeRow(APPID, t1 + (i + 1) * 60_000, t1 + (i + 1) * 60_000 - 500))).execute();
    now = t1 + DAY_MS;
    usage = summary(1015n, [trialRow(1000n), packRow('ZYa', 3, 10n, 3n), packRow('ZYb', 1, 20n, 12n)]);
    const s = await sync.sync(APPID);
    expect(s).toMatchObject({ remaining: 8n, unseen: 4 });
    const expected = advanceUsageRate(advanceUsageRate(startUsageRate(t1 - 7 * DAY_MS), t1, 14), now, 12);
    expect(s.rate.at).toBe(expected.at);
    expect(s.rate.weightedUnits).toBeCloseTo(expected.weightedUnits, 9);
    expect(s.rate.weightedMs).toBeCloseTo(expected.weightedMs, 3);

    // WeChat lagging behind the gateway (growth 1, 3 confirmed): the confirmed charges count, nothing unseen.
    await store.db.insertInto('charges').values(Array.from({ length: 3 }, (_, i) => chargeRow(APPID, now + (i + 1) * 60_000, null))).execute();
    const t2 = now;
    now = t2 + DAY_MS;
    usage = summary(1016n, [trialRow(1000n), packRow('ZYa', 3, 10n, 3n), packRow('ZYb', 1, 20n, 13n)]);
    const lagging = await sync.sync(APPID);
    expect(lagging.unseen).toBe(0);
    expect(lagging.rate.weightedUnits).toBeCloseTo(advanceUsageRate(s.rate, now, 3).weightedUnits, 9);
    expect(await snapshots()).toHaveLength(3);
  });

  it('10122000 (no recent use) leaves the monthly figure null without a warning; other failures of the average are logged and do not fail the sync', async () => {
    now += 60_000;
    average = new WechatApiError('usage_get_recent_average', 10122000, 'no recent usage data');
    logs.length = 0;
    expect((await sync.sync(APPID)).monthlyAverage).toBeNull();
    expect(logs.join('')).not.toContain('recent average unavailable');
    now += 60_000;
    average = new WechatApiError('usage_get_recent_average', 10120700, 'invalid spuId');
    expect((await sync.sync(APPID)).monthlyAverage).toBeNull();
    expect(logs.join('')).toContain('recent average unavailable');
  });

  it('rows that could not all be read fail the sync and keep the last good snapshot', async () => {
    const before = await snapshots();
    now += 60_000;
    usage = { ...summary(2000n, [trialRow(1000n)]), total: 30, detailsComplete: false };
    await expect(sync.sync(APPID)).rejects.toBeInstanceOf(UsageSyncError);
    await expect(sync.sync(APPID)).rejects.toThrow(/incomplete: read 1 of 30 rows/);
    expect(await snapshots()).toHaveLength(before.length);
    expect((await sync.status(APPID))?.lastError).toMatch(/incomplete/);
  });
});
