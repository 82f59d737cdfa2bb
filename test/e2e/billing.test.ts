import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import { GatewayClientError, type GatewayClient } from '../../sdk/client.js';

const GOV_APP = { appid: 'wx00000000000000c3', secret: 'gov-app-secret-0123456789abcdef', subjectType: 'government' as const };
const DAY = 86_400_000;

/** A webhook receiver: what the alerts post, for assertions. */
async function webhookReceiver() {
  const received: unknown[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/quota?token=s3cret`, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function exchangeAll(client: GatewayClient, codes: string[], concurrency = 16) {
  const results: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < codes.length) {
        const code = codes[next++]!;
        const r = await client.ExchangePhoneCode({ input: { code, purpose: 'login' } });
        results.push(r.exchangePhoneCode.__typename);
      }
    }),
  );
  return results;
}

describe.each(BACKENDS)('billing mirror end to end ($name)', (backend) => {
  let t: TestGateway;
  let hook: Awaited<ReturnType<typeof webhookReceiver>>;
  let admin: GatewayClient;
  let user: GatewayClient;

  beforeAll(async () => {
    hook = await webhookReceiver();
    t = await startTestGateway({ backend, extraApps: [GOV_APP], billing: { lowQuota: { unitsBelow: 25 }, webhookUrl: hook.url } });
    admin = await t.client('svc_finance', { scopes: ['quota:read', 'billing:admin'] });
    user = await t.client('o_billing_user');
  });
  afterAll(async () => {
    await t?.close();
    await hook?.close();
  });

  it('quota and admin fields need their scopes', async () => {
    const reader = await t.client('svc_reader', { scopes: ['quota:read'] });
    await expect(user.Quota({ appid: APP })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(reader.SyncUsage({ appid: APP })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(reader.Quota({ appid: 'wx9999999999999999' })).rejects.toBeInstanceOf(GatewayClientError);
    expect((await reader.Quota({ appid: APP })).quota.appid).toBe(APP);
  });

  let s1: number;
  let s2: number;

  // 1,010 taps and exchanges one after another: 15-30 s on the 2-core machine, more when it is busy.
  it("mirrors WeChat across trial and packs: the gateway's quota and WeChat's usage agree", async () => {
    const nowS = Math.floor(t.simulator.state.now() / 1000);
    const { pkgId } = await t.sim.addPack(APP, { all: 30, startTime: nowS - 60, endTime: nowS + 30 * 86_400 });
    const bought = await admin.RecordPackPurchase({
      input: { appid: APP, units: 30, paidAt: new Date(Date.now() - 60_000).toISOString(), validityDays: 30, pricePaidMilli: '900', wechatPkgId: String(pkgId) },
    });
    expect(bought.recordPackPurchase.__typename).toBe('Pack');

    const before = (await admin.Quota({ appid: APP })).quota;
    expect(before).toMatchObject({ basis: 'LEDGER', remaining: 1030, estimatedRemaining: 1030, syncedAt: null, lowQuota: false });

    const s0 = await admin.SyncUsage({ appid: APP });
    expect(s0.syncUsage).toMatchObject({ __typename: 'UsageSynced', quota: { basis: 'WECHAT', remaining: 1030, trialUsed: 0 } });

    const codes = [];
    for (let i = 0; i < 1010; i++) codes.push(await mintCode(t.sim));
    const results = await exchangeAll(user, codes);
    expect(results.filter((r) => r === 'PhoneNumberVerified')).toHaveLength(1010);

    const between = (await admin.Quota({ appid: APP })).quota;
    expect(between).toMatchObject({ basis: 'WECHAT', remaining: 1030, chargesSinceSync: 1010, estimatedRemaining: 20 });

    const synced = await admin.SyncUsage({ appid: APP });
    if (synced.syncUsage.__typename !== 'UsageSynced') throw new Error('sync failed');
    s1 = Date.parse(synced.syncUsage.quota.syncedAt!);
    expect(synced.syncUsage.quota).toMatchObject({ remaining: 20, trialUsed: 1000, trialRemaining: 0, packsRemaining: 20, chargesSinceSync: 0, estimatedRemaining: 20 });
    // WeChat's own numbers, straight from the simulator, and the mirror's ledger say the same.
    const wechat = t.simulator.state.ledger(APP).totals(t.simulator.state.now());
    expect(wechat.remaining).toBe(20n);
    const packs = (await admin.Packs({ appid: APP })).packs;
    expect(packs).toHaveLength(1);
    expect(packs[0]).toMatchObject({ kind: 'OWN', unitsAll: 30, unitsUsed: 10, unitsLeft: 20, status: 'IN_EFFECT', pricePaidYuan: '0.900' });
  }, 90_000);

  it('flags low quota, exports it as a gauge, and posts the webhook once per crossing', async () => {
    const q = (await admin.Quota({ appid: APP })).quota;
    expect(q.lowQuota).toBe(true);
    await t.gateway.services.billing.usage.sync(APP); // a second sync while still low: no second webhook
    await new Promise((r) => setTimeout(r, 200));
    const lows = hook.received.filter((e) => (e as { event: string }).event === 'quota.low');
    expect(lows).toHaveLength(1);
    expect(Object.keys(lows[0] as object).sort()).toEqual(['appid', 'at', 'daysLeft', 'event', 'exhausted', 'remaining', 'thresholds', 'unitsInEffect']);
    expect(lows[0]).toMatchObject({ appid: APP, remaining: 20 });
    const metrics = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(new RegExp(`wxphone_quota_units_left\\{appid="${APP}"\\} 20`));
    expect(t.logs.join('\n')).not.toContain('s3cret');
  });

  it('reconciliation explains every charge that was exchanged, expired or reported, and counts exactly the rest', async () => {
    const codes = [];
    for (let i = 0; i < 12; i++) codes.push(await mintCode(t.sim));
    const [exchanged, expiring, reported, silent] = [codes.slice(0, 6), codes[6]!, codes.slice(7, 10), codes.slice(10)];
    expect(await exchangeAll(user, exchanged)).toEqual(Array(6).fill('PhoneNumberVerified'));
    await t.sim.advance(301);
    const late = await user.ExchangePhoneCode({ input: { code: expiring, purpose: 'login' } });
    expect(late.exchangePhoneCode).toMatchObject({ code: 'INVALID_CODE' });
    for (const code of reported) {
      const r = await user.ReportButtonOutcome({ input: { outcome: 'SUCCESS', code, clientEventId: `evt-${code.slice(0, 12)}` } });
      expect(r.reportButtonOutcome).toMatchObject({ __typename: 'ButtonOutcomeRecorded', duplicate: false });
    }
    // Reporting the same tap twice counts once.
    const again = await user.ReportButtonOutcome({ input: { outcome: 'SUCCESS', code: reported[0]!, clientEventId: `evt-${reported[0]!.slice(0, 12)}` } });
    expect(again.reportButtonOutcome).toMatchObject({ duplicate: true });
    expect((await user.ReportButtonOutcome({ input: { outcome: 'NO_QUOTA', errno: 1400001 } })).reportButtonOutcome.__typename).toBe('ButtonOutcomeRecorded');

    const synced = await admin.SyncUsage({ appid: APP });
    if (synced.syncUsage.__typename !== 'UsageSynced') throw new Error('sync failed');
    s2 = Date.parse(synced.syncUsage.quota.syncedAt!);
    const window = { appid: APP, from: new Date(s1).toISOString(), to: new Date(s2).toISOString() };
    const r1 = (await admin.Reconciliation(window)).reconciliation;
    expect(r1).toMatchObject({
      wechatCharged: 12,
      confirmed: 6,
      unconfirmed: 1,
      unconfirmedCharged: 1,
      reportedSuccessUnseen: 3,
      explained: 10,
      unexplained: 2,
      reported: { success: 3, noQuota: 1 },
    });

    // The backend reports the two silent taps too (with the times they happened): nothing is left unexplained.
    for (const code of silent) {
      await user.ReportButtonOutcome({ input: { outcome: 'SUCCESS', code, occurredAt: new Date(s2).toISOString() } });
    }
    const r2 = (await admin.Reconciliation(window)).reconciliation;
    expect(r2).toMatchObject({ wechatCharged: 12, explained: 12, unexplained: 0, reportedSuccessUnseen: 5 });
  });

  it('a failed sync keeps the last good snapshot and says how old it is', async () => {
    await t.sim.fault('/wxa/charge/usage/get', { httpStatus: 500, times: 3 });
    const r = await admin.SyncUsage({ appid: APP });
    expect(r.syncUsage).toMatchObject({ __typename: 'UsageSyncFailed', lastSyncedAt: new Date(s2).toISOString() });
    const q = (await admin.Quota({ appid: APP })).quota;
    expect(q.syncedAt).toBe(new Date(s2).toISOString());
    expect(q.lastSyncError).toMatch(/usage_get|500/);
    expect(q.syncAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(Date.parse(q.lastSyncAttemptAt!)).toBeGreaterThan(s2);
  });

  it('an exempt (government) app is never charged, here and at WeChat', async () => {
    const gov = await t.client('o_gov_user', { appid: GOV_APP.appid });
    const codes = [];
    for (let i = 0; i < 20; i++) codes.push(await mintCode(t.sim, undefined, GOV_APP.appid));
    expect(await exchangeAll(gov, codes)).toEqual(Array(20).fill('PhoneNumberVerified'));
    expect((await admin.Exemption({ appid: GOV_APP.appid })).exemption).toMatchObject({ exempt: true, rule: 'GOVERNMENT_OR_NON_PROFIT', subjectType: 'GOVERNMENT' });
    const synced = await admin.SyncUsage({ appid: GOV_APP.appid });
    expect(synced.syncUsage).toMatchObject({ quota: { exempt: true, exemptionRule: 'GOVERNMENT_OR_NON_PROFIT', trialUsed: 0, lowQuota: false, daysLeft: null } });
  });

  it('refunds are refused with the rule that forbids them', async () => {
    const packs = (await admin.Packs({ appid: APP })).packs;
    const used = await admin.RequestPackRefund({ packId: packs[0]!.packId });
    expect(used.requestPackRefund).toMatchObject({ __typename: 'RefundRefused', rule: 'PACK_USED' });
    const fresh = await admin.RecordPackPurchase({ input: { appid: APP, units: 10, paidAt: new Date(Date.now() - 6 * DAY).toISOString(), validityDays: 365, pricePaidMilli: '300' } });
    if (fresh.recordPackPurchase.__typename !== 'Pack') throw new Error('purchase refused');
    expect((await admin.RequestPackRefund({ packId: fresh.recordPackPurchase.packId })).requestPackRefund.__typename).toBe('RefundRequested');
    const old = await admin.RecordPackPurchase({ input: { appid: APP, units: 10, paidAt: new Date(Date.now() - 8 * DAY).toISOString(), validityDays: 365, pricePaidMilli: '300' } });
    if (old.recordPackPurchase.__typename !== 'Pack') throw new Error('purchase refused');
    expect((await admin.RequestPackRefund({ packId: old.recordPackPurchase.packId })).requestPackRefund).toMatchObject({ rule: 'REFUND_WINDOW_PASSED' });

  });
});

describe('apps: every configured app with its quota in one batched query', () => {
  let t: TestGateway;
  const many = Array.from({ length: 50 }, (_, i) => ({ appid: `wx${(0xa000 + i).toString(16).padStart(16, '0')}`, secret: `secret-${i}-0123456789abcdef` }));
  beforeAll(async () => {
    t = await startTestGateway({ backend: BACKENDS[BACKENDS.length - 1]!, extraApps: many });
  });
  afterAll(() => t?.close());

  it('52 apps, one database query', async () => {
    const reader = await t.client('svc_apps', { scopes: ['quota:read'] });
    // Let start-up work (the first quota watch over all apps) finish, so only this request is counted.
    for (let seen = -1; seen !== t.queries.length; ) {
      seen = t.queries.length;
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = t.queries.length;
    const r = await reader.Apps();
    const during = t.queries.slice(before);
    expect(r.apps).toHaveLength(52);
    expect(r.apps.every((a) => a.quota?.appid === a.appid && a.quota?.remaining === 1000)).toBe(true);
    expect(during).toHaveLength(1);
    expect(during[0]).toMatch(/from app_trials/);
  });
});

describe.each(BACKENDS)('scheduled usage sync ($name)', (backend) => {
  it('syncs every app on its own, and with Redis only one of two instances does it per interval', async () => {
    const a = await startTestGateway({ backend, billing: { syncIntervalSeconds: 30 } });
    const b = await startTestGateway({ backend, peerOf: a, billing: { syncIntervalSeconds: 30 } });
    try {
      const reader = await a.client('svc_sched', { scopes: ['quota:read'] });
      let q = (await reader.Quota({ appid: APP })).quota;
      for (let i = 0; i < 50 && q.basis !== 'WECHAT'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        q = (await reader.Quota({ appid: APP })).quota;
      }
      expect(q).toMatchObject({ basis: 'WECHAT', remaining: 1000 });
      // Both instances ran their first round at start-up; with a shared lock only one synced.
      const expected = backend.redisUrl ? 1 : 2;
      const count = async () => (await a.gateway.store.db.selectFrom('usage_snapshots').select('appid').where('appid', '=', APP).execute()).length;
      for (let i = 0; i < 30 && (await count()) < expected; i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 300));
      expect(await count()).toBe(expected);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
