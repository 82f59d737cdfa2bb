// The billing mirror against the simulator's usage API, which answers in WeChat's bytes: the
// trial found by its row, remaining summed over the rows in effect, WeChat's monthly figure
// shown as a bound, the forecast run on what the gateway observes, and low quota meaning
// something with no thresholds configured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { GatewayClient } from '../../sdk/client.js';
import { DAY_MS, USAGE_RATE_HALF_LIFE_MS, cstDate } from '../../src/billing/rules.js';

const EXPIRY_APP = { appid: 'wx00000000000000e1', secret: 'expiry-app-secret-0123456789abcdef' };
const EMPTY_APP = { appid: 'wx00000000000000e2', secret: 'empty-app-secret-0123456789abcdef' };
const FORECAST_APP = { appid: 'wx00000000000000e3', secret: 'forecast-app-secret-0123456789abcd' };

describe.each(BACKENDS)('usage mirror against the simulator ($name)', (backend) => {
  let t: TestGateway;
  let admin: GatewayClient;

  beforeAll(async () => {
    // No lowQuota thresholds anywhere: the default rule alone.
    t = await startTestGateway({ backend, extraApps: [EXPIRY_APP, EMPTY_APP, FORECAST_APP] });
    admin = await t.client('svc_usage', { scopes: ['quota:read', 'billing:admin'] });
  });
  afterAll(() => t?.close());

  const snapshots = (appid: string) =>
    t.gateway.store.db.selectFrom('usage_snapshots').selectAll().where('appid', '=', appid).orderBy('synced_at').execute();

  async function sync(appid: string) {
    const r = await admin.SyncUsage({ appid });
    if (r.syncUsage.__typename !== 'UsageSynced') throw new Error(`sync failed: ${JSON.stringify(r.syncUsage)}`);
    return r.syncUsage.quota;
  }

  it('forecasts from the charges the gateway observes: its confirmed ones plus the unseen ones a sync reveals', async () => {
    const user = await t.client('o_forecast', { appid: FORECAST_APP.appid });
    const ledger = (await admin.Quota({ appid: FORECAST_APP.appid })).quota;
    expect(ledger).toMatchObject({ basis: 'LEDGER', remaining: 1000, unitsInEffect: 1000, lowQuota: false, exhausted: false });
    const first = await sync(FORECAST_APP.appid);
    // Nothing used yet: no rate, nothing to forecast; WeChat has no recent data (10122000) either.
    expect(first).toMatchObject({ remaining: 1000, dailyAverage: 0, daysLeft: null, wechatMonthlyAverageBound: null, lowQuota: false, exhausted: false });

    for (let i = 0; i < 4; i++) {
      const code = await mintCode(t.sim, undefined, FORECAST_APP.appid);
      const r = await user.ExchangePhoneCode({ input: { code, purpose: 'login' } });
      expect(r.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    }
    for (let i = 0; i < 6; i++) await mintCode(t.sim, undefined, FORECAST_APP.appid); // taps whose codes never reach the gateway

    const second = await sync(FORECAST_APP.appid);
    const rows = await snapshots(FORECAST_APP.appid);
    expect(rows).toHaveLength(2); // every sync is kept
    expect(Number(rows[1]!.unseen_units)).toBe(6);
    expect(BigInt(rows[1]!.effective_use) - BigInt(rows[0]!.effective_use)).toBe(10n); // what reconciliation measures

    // 10 units seen over seconds, after a seeded week of none: 10 over the week's weight
    // (3.5 days / ln 2 ≈ 5.05 days). Confirmed charges alone would read 4, WeChat's figure 50 a month.
    const weekWeightDays = (USAGE_RATE_HALF_LIFE_MS / DAY_MS / Math.LN2) * 0.5;
    expect(second.dailyAverage).toBeCloseTo(10 / weekWeightDays, 3);
    expect(second).toMatchObject({ remaining: 990, estimatedRemaining: 990, wechatMonthlyAverageBound: 50 });
    expect(second.daysLeft).toBeGreaterThanOrEqual(499);
    expect(second.daysLeft).toBeLessThanOrEqual(500);
    expect(second.forecastExhaustionDate).toBe(cstDate(Date.parse(second.syncedAt!) + second.daysLeft! * DAY_MS));

    // Charges confirmed after the sync count at once, before the next one.
    const code = await mintCode(t.sim, undefined, FORECAST_APP.appid);
    await user.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    const after = (await admin.Quota({ appid: FORECAST_APP.appid })).quota;
    expect(after.chargesSinceSync).toBe(1);
    expect(after.dailyAverage).toBeGreaterThan(second.dailyAverage);
  });

  it('reads the trial from its row and remaining from the rows in effect: a pack expired with units unused does not shrink it', async () => {
    const sim = t.simulator.state;
    const ledger = sim.ledger(EXPIRY_APP.appid);
    for (let i = 0; i < 1000; i++) ledger.charge(sim.now()); // the trial, spent at WeChat
    const nowS = Math.floor(sim.now() / 1000);
    await t.sim.addPack(EXPIRY_APP.appid, { all: 10, startTime: nowS - 60, endTime: nowS + 60 });
    await t.sim.addPack(EXPIRY_APP.appid, { all: 20, startTime: nowS - 60, endTime: nowS + 30 * 86_400 });
    for (let i = 0; i < 3; i++) await mintCode(t.sim, undefined, EXPIRY_APP.appid); // drawn from the pack expiring first
    await t.sim.advance(120); // it expires with 7 units unused

    const q = await sync(EXPIRY_APP.appid);
    expect(q).toMatchObject({
      basis: 'WECHAT',
      trialUsed: 1000,
      trialRemaining: 0,
      remaining: 20, // WeChat's all − effectiveUse would say 1020 − 1003 = 17
      packsRemaining: 20,
      unitsInEffect: 1020,
      estimatedRemaining: 20,
      // 1,003 units in three months: 335 a month, fuzzed up to two significant digits.
      wechatMonthlyAverageBound: 340,
      // 20 of 1,020 in effect is below WeChat's 20 % alert point; no threshold is configured.
      lowQuota: true,
      exhausted: false,
    });
    expect(BigInt(q.remaining)).toBe(sim.ledger(EXPIRY_APP.appid).totals(sim.now()).remaining);
    const details = JSON.parse((await snapshots(EXPIRY_APP.appid))[0]!.details) as { pkgId: string; source: number; trial: boolean }[];
    expect(details.filter((d) => d.trial)).toEqual([expect.objectContaining({ pkgId: '', source: 1 })]);
  });

  it('with no thresholds configured, an app whose users get 1400001 is low and says it is exhausted', async () => {
    const sim = t.simulator.state;
    const ledger = sim.ledger(EMPTY_APP.appid);
    for (let i = 0; i < 1000; i++) ledger.charge(sim.now());
    expect(await t.sim.phoneCode({ appid: EMPTY_APP.appid, phoneNumber: '13800138000' })).toMatchObject({ errno: 1400001 });

    const q = await sync(EMPTY_APP.appid);
    expect(q).toMatchObject({ remaining: 0, estimatedRemaining: 0, trialUsed: 1000, unitsInEffect: 1000, lowQuota: true, exhausted: true, daysLeft: 0 });
    const metrics = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(new RegExp(`wxphone_quota_units_left\\{appid="${EMPTY_APP.appid}"\\} 0`));
  });
});
