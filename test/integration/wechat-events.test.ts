import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { withSearchPath } from '../support/stores.js';
import { testSchemaName } from '../support/schemas.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createLogger } from '../../src/log.js';
import { createDataKeys } from '../../src/crypto/keys.js';
import { WechatEvents } from '../../src/billing/wechat-events.js';
import { MessagePushError, type OpenedPush, type PushFields } from '../../src/wechat/message-push.js';
import type { WechatAlertWebhookEvent } from '../../src/billing/alerts.js';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const HOUR = 3_600_000;
const push = (fields: PushFields): OpenedPush => ({ fields, mode: 'safe', raw: JSON.stringify(fields) });

describe.each(BACKENDS)('pushed WeChat events in the database ($name)', (backend) => {
  let dir: string;
  let a: Store;
  let b: Store;
  let clock = T0;
  const appid = `wx${randomBytes(8).toString('hex')}`;
  const synced: string[] = [];
  const notified: WechatAlertWebhookEvent[] = [];
  const keys = createDataKeys(Buffer.alloc(32, 9));
  const events = (store: Store) =>
    new WechatEvents({
      db: store.db,
      hash: (...parts) => keys.codeHash(...parts),
      sync: async (app) => void synced.push(app),
      notify: (e) => void notified.push(e),
      registry: new Registry(),
      log: createLogger({ level: 'silent' }),
      now: () => clock,
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-events-'));
    let url = `file:${join(dir, 'events.db')}`;
    if (backend.databaseUrl) {
      // A schema of this file's own (dropped by the global teardown).
      const schema = testSchemaName('events');
      const c = new pg.Client({ connectionString: backend.databaseUrl });
      await c.connect();
      await c.query(`create schema ${schema}`);
      await c.end();
      url = withSearchPath(backend.databaseUrl, schema);
    }
    // Two stores on one database stand for two gateway instances.
    a = await openStore(url);
    b = await openStore(url);
  });
  afterAll(async () => {
    await a?.db.deleteFrom('wechat_events').where('appid', '=', appid).execute();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const quota = (createTime: number, used: number, extra: PushFields = {}): PushFields => ({
    ToUserName: 'gh_24b0688b9fda',
    FromUserName: 'oeg5b5PFuO_A9Ax3cBxajvn6q41Y',
    CreateTime: createTime,
    MsgType: 'event',
    Event: 'charge_service_quota_notify',
    event_type: 3,
    spu_id: 10000077,
    spu_name: '手机号快速验证组件',
    total_quota: 1000,
    total_used_quota: used,
    appid,
    ...extra,
  });

  it('an alert delivered to two instances at once (a retry racing the first attempt) is recorded, synced and notified once', async () => {
    const [x, y] = [events(a), events(b)];
    const results = await Promise.all([x.accept(appid, push(quota(1_772_323_200, 800))), y.accept(appid, push(quota(1_772_323_200, 800)))]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['duplicate', 'recorded']);
    for (const r of results) r.afterAnswer();
    await Promise.all([x.flush(), y.flush()]);
    expect(synced).toEqual([appid]);
    expect(notified).toEqual([expect.objectContaining({ event: 'wechat.quota_alert', appid, totalQuota: 1000, totalUsedQuota: 800, remainingQuota: 200, eventAt: '2026-03-01T00:00:00.000Z' })]);
    // Strings for numbers are the same event.
    const again = await x.accept(appid, push(quota(1_772_323_200, 800, { CreateTime: '1772323200', total_used_quota: '800', total_quota: '1000', event_type: '3', spu_id: '10000077' })));
    expect(again.outcome).toBe('duplicate');
  });

  it('two alerts in one second differ by their figures; the latest by CreateTime is what quota shows', async () => {
    const x = events(a);
    clock += HOUR;
    expect((await x.accept(appid, push(quota(1_772_326_800, 900)))).outcome).toBe('recorded');
    expect((await x.accept(appid, push(quota(1_772_326_800, 950)))).outcome).toBe('recorded');
    // A late retry of an older alert does not hide the newer one.
    expect((await x.accept(appid, push(quota(1_772_323_199, 700)))).outcome).toBe('recorded');
    const latest = (await x.latest([appid, 'wx0000000000000000'])).get(appid);
    expect(latest).toMatchObject({ kind: 'quota', totalUsedQuota: 950, remainingQuota: 50, spuName: '手机号快速验证组件' });
    expect((await x.latest(['wx0000000000000000'])).size).toBe(0);
  });

  it('an alert naming another app than the URL is refused; other events keep no fields and are purged after a day, alerts stay', async () => {
    const x = events(a);
    await expect(x.accept(appid, push(quota(1_772_330_000, 10, { appid: 'wx1111111111111111' })))).rejects.toBeInstanceOf(MessagePushError);
    const other = await x.accept(appid, push({ FromUserName: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY', CreateTime: 1_772_330_000, MsgType: 'event', Event: 'user_authorization_revoke', OpenID: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY', RevokeInfo: '8' }));
    expect(other).toMatchObject({ outcome: 'recorded', kind: 'other' });
    const rows = await a.db.selectFrom('wechat_events').selectAll().where('appid', '=', appid).execute();
    expect(JSON.stringify(rows)).not.toContain('o9AgO5Kd5ggOC');
    expect(JSON.stringify(rows)).not.toContain('oeg5b5PFuO');
    expect(rows.find((r) => r.kind === 'other')).toMatchObject({ event: 'user_authorization_revoke', fields: null });
    clock += 25 * HOUR;
    expect(await x.purge()).toBeGreaterThanOrEqual(1);
    const left = await a.db.selectFrom('wechat_events').select('kind').where('appid', '=', appid).execute();
    expect(left.every((r) => r.kind === 'quota_alert')).toBe(true);
    expect(left).toHaveLength(4);
  });
});
