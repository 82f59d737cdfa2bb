import { randomBytes, randomUUID } from 'node:crypto';
import { APP, mintCode, nextPhone, type ExtraApp, type TestGateway } from './gateway.js';
import { assignedPack, requestId } from './procurement.js';
import { chargeRow } from './stores.js';
import type { OpenedPush } from '../../src/wechat/message-push.js';

/**
 * A month of believable operations for the console's screenshots: apps exhausted, low, exempt,
 * failing to sync, never synced; one app with a month of history (usage syncs, charges, consent
 * records), packs to refund, a 集采 assignment, client reports and WeChat's charge alerts.
 *
 * The past cannot be replayed through a running gateway, so the month before today is written
 * straight into its tables (charges, usage snapshots) and its consent log (through the audit
 * service, so the chain verifies), and WeChat's side (the simulator) is charged to match; today
 * goes through the gateway for real: exchanges, reports, syncs.
 */
export const DEMO_APPS = {
  exempt: { appid: 'wx1c0ffee000000c01', secret: 'demo-secret-exempt-0123456789', subjectType: 'government' },
  low: { appid: 'wx1c0ffee000000d01', secret: 'demo-secret-low-0123456789abc', lowQuota: { daysBelow: 7 } },
  exhausted: { appid: 'wx1c0ffee000000d02', secret: 'demo-secret-exhausted-0123456' },
  failing: { appid: 'wx1c0ffee000000d03', secret: 'demo-secret-failing-012345678' },
  busy: { appid: 'wx1c0ffee000000e01', secret: 'demo-secret-busy-0123456789ab', product: 'realtime' },
  quiet: { appid: 'wx1c0ffee000000e02', secret: 'demo-secret-quiet-0123456789a' },
  school: { appid: 'wx1c0ffee000000e03', secret: 'demo-secret-school-012345678', subjectType: 'public-institution', category: '学历教育（学校）' },
} satisfies Record<string, ExtraApp>;

const DAY = 86_400_000;
const CST = 8 * 3_600_000;
const cstMidnight = (ms: number) => Math.floor((ms + CST) / DAY) * DAY - CST;

/** A deterministic wobble, so every run draws the same month. */
function wobble(seed: number): number {
  const x = Math.sin(seed * 12.9898) * 43758.5453;
  return x - Math.floor(x);
}

export async function seedConsoleDemo(t: TestGateway): Promise<{ subject: string }> {
  const now = Date.now();
  const db = t.gateway.store.db;
  const services = t.gateway.services;
  const state = t.simulator.state;
  const admin = await t.client('svc_demo', { appid: undefined, scopes: ['quota:read', 'billing:admin', 'audit:read', 'audit:admin'] });

  const buy = async (appid: string, units: number, paidAt: number, validityDays: number, pricePaidMilli: number) => {
    const { pkgId } = state.addPack(appid, { all: units, paidAt: Math.floor(paidAt / 1000), validityDays });
    const r = await admin.RecordPackPurchase({ input: { appid, units, paidAt: new Date(paidAt).toISOString(), validityDays, pricePaidMilli: String(pricePaidMilli), wechatPkgId: pkgId } });
    if (r.recordPackPurchase.__typename !== 'Pack') throw new Error(`pack not recorded: ${JSON.stringify(r.recordPackPurchase)}`);
  };
  const spend = (appid: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const r = state.mintPhoneCode(appid, nextPhone());
      if (!('code' in r)) break;
    }
  };
  const sync = async (appid: string) => {
    const r = await admin.SyncUsage({ appid });
    if (r.syncUsage.__typename !== 'UsageSynced') throw new Error(`sync of ${appid} failed: ${r.syncUsage.message}`);
  };
  /** Confirmed charges over the last `days` days, so the forecast has a rate to go on. */
  const history = async (appid: string, days: number, perDay: (day: number) => number, product: 'quick' | 'realtime' = 'quick') => {
    const rows = [];
    for (let d = days; d >= 1; d--) {
      const start = cstMidnight(now - d * DAY) + 8 * 3_600_000;
      const n = perDay(d);
      for (let i = 0; i < n; i++) {
        const at = start + Math.floor((i / n) * 13 * 3_600_000);
        rows.push(chargeRow(appid, at + 2000, at, { product, source: 'pack', price_milli: product === 'quick' ? 30 : 40 }));
      }
    }
    for (let i = 0; i < rows.length; i += 500) await db.insertInto('charges').values(rows.slice(i, i + 500)).execute();
    return rows.length;
  };

  // --- the sandbox app: a month of history -------------------------------------------------
  await buy(APP, 20_000, now - 60 * DAY, 365, 600_000);
  const perDay = (d: number) => Math.round(150 + 60 * wobble(d) + (d % 7 === 1 || d % 7 === 2 ? -50 : 0));
  const unseenPerDay = (d: number) => Math.round(3 + 6 * wobble(d + 100));
  const expiredPerDay = (d: number) => (d <= 5 ? 12 + Math.round(10 * wobble(d + 200)) : Math.round(2 * wobble(d + 300)));
  let usedSoFar = 0;
  const snapshots = [];
  const chargeRows = [];
  const subjects = Array.from({ length: 40 }, (_, i) => services.audit.subjectHashOf(services.issuer, `o_demo_user_${i}`));
  for (let d = 30; d >= 1; d--) {
    const dayStart = cstMidnight(now - d * DAY);
    const confirmed = perDay(d);
    const unseen = unseenPerDay(d);
    const expired = expiredPerDay(d);
    spend(APP, confirmed + unseen + expired);
    // The expired codes spread evenly over the day's exchanges.
    const every = expired ? Math.floor((confirmed + expired) / expired) : Infinity;
    for (let i = 0; i < confirmed + expired; i++) {
      const at = dayStart + 8 * 3_600_000 + Math.floor((i / (confirmed + expired)) * 14 * 3_600_000);
      const ok = !(i % every === 0 && i / every < expired);
      chargeRows.push(chargeRow(APP, at + 1500, at, ok ? { source: usedSoFar + i < 1000 ? 'trial' : 'pack', price_milli: usedSoFar + i < 1000 ? 0 : 30 } : { status: 'unconfirmed', source: null, price_milli: 0 }));
      await services.audit.record({
        flow: i % 23 === 0 ? 'legacy' : 'exchange',
        appid: APP,
        subjectHash: subjects[(i + d) % subjects.length]!,
        purpose: i % 5 === 0 ? 'order-contact' : 'login',
        noticeVersion: '2026-01',
        requestId: randomUUID(),
        outcome: ok ? (i % 17 === 0 ? 'replayed' : 'disclosed') : 'refused',
        errorCode: ok ? null : 'INVALID_CODE',
        ...(ok ? { phone: { phoneNumber: nextPhone(), purePhoneNumber: nextPhone(), countryCode: '86' } } : {}),
        at,
      } as Parameters<typeof services.audit.record>[0]);
    }
    for (const [code, n] of [
      ['CODE_ALREADY_USED', d % 4 === 0 ? 2 : 0],
      ['RATE_LIMITED', d === 12 ? 9 : 0],
      ['UPSTREAM_UNAVAILABLE', d === 19 ? 4 : 0],
    ] as const) {
      for (let i = 0; i < n; i++) {
        await services.audit.record({ flow: 'exchange', appid: APP, subjectHash: subjects[i]!, purpose: 'login', outcome: 'refused', errorCode: code, requestId: randomUUID(), at: dayStart + 15 * 3_600_000 + i * 60_000 });
      }
    }
    usedSoFar += confirmed + unseen + expired;
    const trialUsed = Math.min(1000, usedSoFar);
    const syncedAt = dayStart + 23 * 3_600_000;
    // The pack bought two days ago (below) is in effect from then on.
    const inEffect = 21_000 + (syncedAt > now - 2 * DAY ? 5000 : 0);
    snapshots.push({
      id: `us_${randomUUID()}`,
      appid: APP,
      synced_at: syncedAt,
      all_units: String(inEffect),
      effective_use: String(usedSoFar),
      trial_all: 1000,
      trial_used: trialUsed,
      recent_average: null,
      details: '[]',
      remaining_units: String(inEffect - usedSoFar),
      units_in_effect: String(inEffect),
      trial_remaining: 1000 - trialUsed,
      monthly_average: String(Math.ceil(usedSoFar / 10) * 10),
      unseen_units: unseen,
      rate_weighted_units: null,
      rate_weighted_ms: null,
    });
  }
  for (let i = 0; i < chargeRows.length; i += 500) await db.insertInto('charges').values(chargeRows.slice(i, i + 500)).execute();
  await db.insertInto('usage_snapshots').values(snapshots).execute();
  // Bought two days ago and untouched (refundable); bought last month and drawn from (not).
  await buy(APP, 5000, now - 2 * DAY, 365, 150_000);

  // Today, for real: exchanges, one replay, a code used by another session, expired codes, reports.
  const alice = await t.client('o_demo_alice');
  const bob = await t.client('o_demo_bob');
  for (let i = 0; i < 8; i++) await (i % 2 ? alice : bob).ExchangePhoneCode({ input: { code: await mintCode(t.sim, nextPhone(), APP), purpose: i % 3 ? 'login' : 'order-contact', noticeVersion: '2026-01' } });
  const twice = await mintCode(t.sim, nextPhone(), APP);
  await alice.ExchangePhoneCode({ input: { code: twice, purpose: 'login' } });
  await alice.ExchangePhoneCode({ input: { code: twice, purpose: 'login' } });
  await bob.ExchangePhoneCode({ input: { code: twice, purpose: 'login' } });
  const expiring = [await mintCode(t.sim, nextPhone(), APP), await mintCode(t.sim, nextPhone(), APP)];
  for (let i = 0; i < 5; i++) {
    const code = await mintCode(t.sim, nextPhone(), APP);
    await alice.ReportButtonOutcome({ input: { outcome: 'SUCCESS', code, clientEventId: `demo-${randomBytes(6).toString('hex')}` } });
  }
  for (const outcome of ['USER_DENY', 'USER_DENY', 'USER_DENY', 'PRIVACY', 'NO_QUOTA'] as const) await bob.ReportButtonOutcome({ input: { outcome, ...(outcome === 'NO_QUOTA' ? { errno: 1400001 } : outcome === 'PRIVACY' ? { errno: 104 } : {}) } });
  await t.sim.advance(301);
  for (const code of expiring) await alice.ExchangePhoneCode({ input: { code, purpose: 'login' } });
  await sync(APP);
  // 集采: one pack assigned from a provider's order, one assignment still waiting for WeChat.
  const assigned = await assignedPack(services.billing.procurement, { appid: APP, now: now - 3 * DAY, units: 10_000, days: 365 });
  await services.billing.procurement.requestAssignment({ orderId: assigned.orderId, skuId: assigned.skuId, receiverAppId: APP, requestId: requestId(), beginTime: null }, now);

  // --- the other apps ------------------------------------------------------------------------
  await buy(DEMO_APPS.low.appid, 2000, now - 40 * DAY, 180, 60_000);
  await history(DEMO_APPS.low.appid, 14, (d) => 45 + Math.round(20 * wobble(d + 7)));
  spend(DEMO_APPS.low.appid, 2600);
  await sync(DEMO_APPS.low.appid);

  spend(DEMO_APPS.exhausted.appid, 1000);
  await history(DEMO_APPS.exhausted.appid, 10, (d) => 90 + Math.round(30 * wobble(d + 11)));
  await sync(DEMO_APPS.exhausted.appid);

  await buy(DEMO_APPS.busy.appid, 100_000, now - 20 * DAY, 365, 4_000_000);
  await history(DEMO_APPS.busy.appid, 20, (d) => 900 + Math.round(400 * wobble(d + 13)), 'realtime');
  spend(DEMO_APPS.busy.appid, 19_000);
  await sync(DEMO_APPS.busy.appid);

  await buy(DEMO_APPS.quiet.appid, 5000, now - 358 * DAY, 365, 150_000);
  await history(DEMO_APPS.quiet.appid, 20, (d) => (d % 3 === 0 ? 4 : 2));
  spend(DEMO_APPS.quiet.appid, 1400);
  await sync(DEMO_APPS.quiet.appid);

  spend(DEMO_APPS.exempt.appid, 300);
  await sync(DEMO_APPS.exempt.appid);
  await sync(DEMO_APPS.school.appid);

  // WeChat's usage API fails once for this app: the sync keeps nothing and says why.
  await t.sim.fault('/wxa/charge/usage/get', { errcode: -1, times: 3 });
  await admin.SyncUsage({ appid: DEMO_APPS.failing.appid });

  // WeChat's charge alerts, as its message push delivers them.
  const alert = (appid: string, fields: Record<string, string | number>) =>
    services.billing.wechatEvents.accept(appid, { fields: { MsgType: 'event', CreateTime: Math.floor(now / 1000) - 3600, ...fields } as never, mode: 'plaintext', raw: JSON.stringify(fields) } as OpenedPush);
  await alert(DEMO_APPS.low.appid, { Event: 'charge_service_quota_notify', event_type: 3, spu_id: '10000077', spu_name: '手机号快速验证组件', total_quota: 3000, total_used_quota: 2600 });
  await alert(DEMO_APPS.exhausted.appid, { Event: 'charge_service_quota_notify', event_type: 3, spu_id: '10000077', spu_name: '手机号快速验证组件', total_quota: 1000, total_used_quota: 1000 });
  await alert(DEMO_APPS.quiet.appid, { Event: 'charge_mp_service_validity_notify', event_type: 4, spu_id: '10000077', spu_name: '手机号快速验证组件', validity_end_time: String(Math.floor((now + 7 * DAY) / 1000)) });
  return { subject: 'o_demo_alice' };
}

export const DEMO_EXTRA_APPS: ExtraApp[] = Object.values(DEMO_APPS);
