import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { rememberSecret, startTestGateway, type TestGateway } from '../support/gateway.js';
import { encryptPush, signPush } from '../../src/simulator/push-crypto.js';
import type { PushFormat, PushMode } from '../../src/simulator/index.js';
import type { GatewayClient } from '../../sdk/client.js';

const DAY_S = 86_400;
const ALPHANUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const randomKey = () => Array.from(randomBytes(43), (b) => ALPHANUM[b % ALPHANUM.length]).join('');

/** An app in safe mode (Token + EncodingAESKey), and one with no key (plaintext, or compatible read from its plaintext copy). */
const SAFE = { appid: 'wx00000000000000e1', secret: 'push-safe-app-secret-0123456789ab', token: `tok${randomBytes(6).toString('hex')}`, key: randomKey() };
const PLAIN = { appid: 'wx00000000000000e2', secret: 'push-plain-app-secret-0123456789', token: `tok${randomBytes(6).toString('hex')}` };

/** Receives the alert webhook. */
async function webhookReceiver() {
  const received: Record<string, unknown>[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/wechat`, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * Between the simulator and the gateway: passes every push on, but answers the first attempt of
 * each one with a 502 once the gateway has had it, so WeChat's retry arrives as a duplicate.
 */
async function flakyFront(target: () => string) {
  const seen = new Set<string>();
  const requests: { path: string; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      requests.push({ path: req.url!, body });
      const answer = await fetch(`${target()}${req.url}`, { method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'text/plain' }, body });
      const text = await answer.text();
      const first = !seen.has(body);
      seen.add(body);
      if (first) return void res.writeHead(502).end('bad gateway');
      res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe.each(BACKENDS)('WeChat message push end to end ($name)', (backend) => {
  let t: TestGateway;
  let hook: Awaited<ReturnType<typeof webhookReceiver>>;
  let front: Awaited<ReturnType<typeof flakyFront>>;
  let reader: GatewayClient;
  let origin: string;

  beforeAll(async () => {
    rememberSecret(SAFE.token, SAFE.key, PLAIN.token);
    hook = await webhookReceiver();
    t = await startTestGateway({
      backend,
      extraApps: [
        { appid: SAFE.appid, secret: SAFE.secret, messagePush: { token: SAFE.token, encodingAesKey: SAFE.key, format: 'xml' } },
        { appid: PLAIN.appid, secret: PLAIN.secret, messagePush: { tokenEnv: 'PLAIN_PUSH_TOKEN', format: 'json' } },
      ],
      env: { PLAIN_PUSH_TOKEN: PLAIN.token },
      billing: { webhookUrl: hook.url },
    });
    origin = t.url.replace(/\/graphql$/, '');
    front = await flakyFront(() => origin);
    reader = await t.client('svc_ops', { scopes: ['quota:read'] });
  });
  afterAll(async () => {
    await t?.close();
    await front?.close();
    await hook?.close();
  });

  const pushTo = (app: typeof SAFE | typeof PLAIN, mode: PushMode, format: PushFormat, via: 'front' | 'direct' = 'direct') =>
    t.sim.setMessagePush(app.appid, {
      url: `${via === 'front' ? front.url : origin}/wechat/events/${app.appid}`,
      token: app.token,
      ...(mode !== 'plaintext' ? { encodingAesKey: 'key' in app ? app.key : SAFE.key } : {}),
      mode,
      format,
    });
  /** Every push delivered (with its retries) and the usage syncs the gateway started after answering. */
  const settle = async () => {
    await t.simulator.state.messagePush.flush();
    await t.gateway.services.billing.wechatEvents.flush();
  };
  /** The webhook is posted in the background: wait (a while at most) for `n` of an app's events. */
  const webhooks = async (appid: string, kind: string, n: number) => {
    const mine = () => hook.received.filter((e) => e.appid === appid && e.event === kind);
    for (let waited = 0; mine().length < n && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    return mine();
  };
  const rows = (appid: string) => t.gateway.store.db.selectFrom('wechat_events').selectAll().where('appid', '=', appid).execute();
  const metrics = () => fetch(`${origin}/metrics`).then((r) => r.text());
  const usageCalls = async () => (await t.sim.stats()).calls['/wxa/charge/usage/get'] ?? 0;
  const mint = (appid: string, n: number) => {
    for (let i = 0; i < n; i++) t.simulator.state.mintPhoneCode(appid, '13800138000');
  };

  it("answers the console's URL check with echostr; a bad signature is a 401", async () => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const ok = await fetch(`${origin}/wechat/events/${SAFE.appid}?signature=${signPush(SAFE.token, timestamp, '77')}&timestamp=${timestamp}&nonce=77&echostr=4375120948345356249`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('4375120948345356249');
    const bad = await fetch(`${origin}/wechat/events/${SAFE.appid}?signature=${signPush('wrong', timestamp, '77')}&timestamp=${timestamp}&nonce=77&echostr=1`);
    expect(bad.status).toBe(401);
    expect(await bad.text()).not.toBe('1');
    expect((await fetch(`${origin}/wechat/events/wx9999999999999999?echostr=1`)).status).toBe(404);
  });

  it('quota alerts at 20 %, 10 %, 5 % and 0 % of the trial (safe mode, XML), each retry counted once: recorded, usage synced, webhook, shown in quota', async () => {
    await pushTo(SAFE, 'safe', 'xml', 'front');
    const syncsBefore = await usageCalls();
    mint(SAFE.appid, 799);
    await settle();
    expect((await t.sim.messagePushes(SAFE.appid)).deliveries).toHaveLength(0);

    // The 800th unit leaves 20 %, over the real HTTP control API.
    const r = await t.sim.phoneCode({ appid: SAFE.appid, phoneNumber: '13800138000' });
    rememberSecret('code' in r ? r.code : null);
    await settle();
    const [first] = (await t.sim.messagePushes(SAFE.appid)).deliveries;
    expect(first).toMatchObject({ event: 'charge_service_quota_notify', attempts: [502, 200], outcome: 'acknowledged', fields: { total_quota: 1000, total_used_quota: 800 } });
    expect(await rows(SAFE.appid)).toHaveLength(1);
    expect(await usageCalls()).toBeGreaterThan(syncsBefore);
    expect(await webhooks(SAFE.appid, 'wechat.quota_alert', 1)).toEqual([
      expect.objectContaining({ event: 'wechat.quota_alert', wechatEvent: 'charge_service_quota_notify', spuId: '10000077', totalQuota: 1000, totalUsedQuota: 800, remainingQuota: 200 }),
    ]);
    const shown = (await reader.LastWechatAlert({ appid: SAFE.appid })).quota.lastWechatAlert;
    expect(shown).toMatchObject({ kind: 'QUOTA', event: 'charge_service_quota_notify', totalQuota: 1000, totalUsed: 800, remaining: 200, spuName: '手机号快速验证组件' });
    expect(await metrics()).toMatch(new RegExp(`wxphone_wechat_events_total\\{appid="${SAFE.appid}",event="charge_service_quota_notify",outcome="duplicate"\\} 1`));

    mint(SAFE.appid, 100); // 10 % left
    mint(SAFE.appid, 50); // 5 %
    mint(SAFE.appid, 50); // none
    expect(t.simulator.state.mintPhoneCode(SAFE.appid, '13800138000')).toMatchObject({ errno: 1400001 });
    await settle();
    const pushed = (await t.sim.messagePushes(SAFE.appid)).deliveries;
    expect(pushed.map((d) => d.fields.total_used_quota)).toEqual([800, 900, 950, 1000]);
    expect(pushed.every((d) => d.outcome === 'acknowledged' && d.attempts.length === 2)).toBe(true);
    expect(await rows(SAFE.appid)).toHaveLength(4);
    expect((await webhooks(SAFE.appid, 'wechat.quota_alert', 4)).map((e) => e.remainingQuota)).toEqual([200, 100, 50, 0]);
    expect((await reader.LastWechatAlert({ appid: SAFE.appid })).quota.lastWechatAlert).toMatchObject({ kind: 'QUOTA', remaining: 0, totalUsed: 1000 });
    // Nothing of the sender (an openid-like id) is kept.
    expect(JSON.stringify(await rows(SAFE.appid))).not.toMatch(/o_sim_wechat|FromUserName/);
    expect(JSON.stringify(hook.received)).not.toMatch(/o_sim_wechat|FromUserName/);
  });

  it('expiry alerts 15, 7, 3 and 1 days before a pack expires and when it does (safe mode, JSON), as the clock moves', async () => {
    await pushTo(SAFE, 'safe', 'json');
    const now = Math.floor(t.simulator.state.now() / 1000);
    const endTime = now + 15 * DAY_S + 3600;
    await t.sim.addPack(SAFE.appid, { all: 5000, startTime: now - 60, endTime });
    const before = (await t.sim.messagePushes(SAFE.appid)).deliveries.length;
    await t.sim.advance(7200); // 15 days left
    await settle();
    const fresh = () => t.sim.messagePushes(SAFE.appid).then((p) => p.deliveries.slice(before));
    expect((await fresh()).map((d) => d.event)).toEqual(['charge_mp_service_validity_notify']);
    expect((await reader.LastWechatAlert({ appid: SAFE.appid })).quota.lastWechatAlert).toMatchObject({
      kind: 'EXPIRY',
      event: 'charge_mp_service_validity_notify',
      validityEndTime: String(endTime),
      validityEndsAt: new Date(endTime * 1000).toISOString(),
    });
    await t.sim.advance(8 * DAY_S); // 7 days left
    await t.sim.advance(10 * DAY_S); // past 3 and 1 days left, and the expiry itself
    await settle();
    const expiry = (await fresh()).filter((d) => d.event === 'charge_mp_service_validity_notify');
    expect(expiry.map((d) => (endTime - d.createTime) / DAY_S)).toEqual([15, 7, 3, 1, 0]);
    expect(expiry.every((d) => d.outcome === 'acknowledged' && d.attempts.length === 1)).toBe(true);
    const recorded = (await rows(SAFE.appid)).filter((r) => r.kind === 'expiry_alert');
    expect(recorded).toHaveLength(5);
    expect(await webhooks(SAFE.appid, 'wechat.expiry_alert', 5)).toHaveLength(5);
  });

  it.each([
    [PLAIN, 'plaintext', 'json'],
    [PLAIN, 'plaintext', 'xml'],
    [PLAIN, 'compatible', 'json'],
    [SAFE, 'compatible', 'xml'],
  ] as const)('%s in %s mode, %s: pushed, answered success, recorded', async (app, mode, format) => {
    await t.sim.setMessagePush(app === PLAIN ? SAFE.appid : PLAIN.appid, null);
    await pushTo(app, mode, format);
    const now = Math.floor(t.simulator.state.now() / 1000);
    await t.sim.addPack(app.appid, { all: 5000, startTime: now - 60, endTime: now + 15 * DAY_S + 3600 });
    const before = (await rows(app.appid)).length;
    await t.sim.advance(7200);
    await settle();
    const last = (await t.sim.messagePushes(app.appid)).deliveries.at(-1)!;
    expect(last).toMatchObject({ event: 'charge_mp_service_validity_notify', outcome: 'acknowledged', answer: 'success' });
    expect((await rows(app.appid)).length).toBe(before + 1);
    await t.sim.setMessagePush(app.appid, null);
  });

  it('a bad, missing or stale signature is a 401 and records nothing; an unknown app is a 404; a huge body a 413', async () => {
    const recorded = front.requests.at(-1)!;
    const countBefore = (await rows(SAFE.appid)).length;
    const url = new URL(recorded.path, origin);
    const tampered = new URL(url);
    tampered.searchParams.set('msg_signature', '0'.repeat(40));
    const noSig = new URL(url);
    noSig.searchParams.delete('msg_signature');
    for (const u of [tampered, noSig]) {
      const res = await fetch(u, { method: 'POST', body: recorded.body });
      expect(res.status).toBe(401);
    }
    // A forged plaintext copy is no use to an app with a key either.
    const timestamp = String(Math.floor(Date.now() / 1000));
    const forged = await fetch(`${origin}/wechat/events/${SAFE.appid}?signature=${signPush(SAFE.token, timestamp, '1')}&timestamp=${timestamp}&nonce=1`, {
      method: 'POST',
      body: '<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[charge_service_quota_notify]]></Event><CreateTime>1</CreateTime></xml>',
    });
    expect(forged.status).toBe(400);
    // Signed correctly but 10 minutes old.
    const old = String(Math.floor(Date.now() / 1000) - 600);
    const encrypt = encryptPush(SAFE.key, SAFE.appid, '<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[debug_demo]]></Event><CreateTime>2</CreateTime></xml>');
    const stale = await fetch(`${origin}/wechat/events/${SAFE.appid}?timestamp=${old}&nonce=5&msg_signature=${signPush(SAFE.token, old, '5', encrypt)}`, {
      method: 'POST',
      body: `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
    });
    expect(stale.status).toBe(401);
    expect((await fetch(`${origin}/wechat/events/wx9999999999999999`, { method: 'POST', body: recorded.body })).status).toBe(404);
    expect((await fetch(`${origin}/wechat/events/${SAFE.appid}`, { method: 'POST', body: 'x'.repeat(70_000) })).status).toBe(413);
    expect((await rows(SAFE.appid)).length).toBe(countBefore);
    const m = await metrics();
    expect(m).toMatch(/wxphone_wechat_push_rejected_total\{reason="bad_signature"\} [1-9]/);
    expect(m).toMatch(/wxphone_wechat_push_rejected_total\{reason="stale_timestamp"\} [1-9]/);
    // The original request, replayed as is, is a duplicate: success, nothing new.
    const replay = await fetch(url, { method: 'POST', body: recorded.body });
    expect([replay.status, await replay.text()]).toEqual([200, 'success']);
    expect((await rows(SAFE.appid)).length).toBe(countBefore);
  });

  it('other events and messages are acknowledged and counted (unknown names as "other"), never an error, never an alert', async () => {
    const alertBefore = (await reader.LastWechatAlert({ appid: PLAIN.appid })).quota.lastWechatAlert;
    const post = (body: object) => {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = String(Math.floor(Math.random() * 1e9));
      return fetch(`${origin}/wechat/events/${PLAIN.appid}?signature=${signPush(PLAIN.token, timestamp, nonce)}&timestamp=${timestamp}&nonce=${nonce}`, { method: 'POST', body: JSON.stringify(body) });
    };
    const base = { ToUserName: 'gh_97417a04a28d', FromUserName: 'o9AgO5Kd5ggOC-bXrbNODIiE3bGY', CreateTime: Math.floor(Date.now() / 1000) };
    for (const body of [
      { ...base, MsgType: 'event', Event: 'debug_demo', debug_str: 'hello world' },
      { ...base, MsgType: 'event', Event: 'some_event_wechat_adds_next_year' },
      { ...base, MsgType: 'text', Content: 'hi', MsgId: 4561255354251345929 },
      { ...base, MsgType: 'text', Content: 'hi', MsgId: 4561255354251345929 },
    ]) {
      const res = await post(body);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('success');
    }
    const m = await metrics();
    expect(m).toMatch(new RegExp(`wxphone_wechat_events_total\\{appid="${PLAIN.appid}",event="debug_demo",outcome="recorded"\\} 1`));
    expect(m).toMatch(new RegExp(`wxphone_wechat_events_total\\{appid="${PLAIN.appid}",event="other",outcome="recorded"\\} 1`));
    expect(m).toMatch(new RegExp(`wxphone_wechat_events_total\\{appid="${PLAIN.appid}",event="message",outcome="duplicate"\\} 1`));
    expect(m).not.toMatch(/some_event_wechat_adds_next_year/);
    expect((await reader.LastWechatAlert({ appid: PLAIN.appid })).quota.lastWechatAlert).toEqual(alertBefore);
    const stored = (await rows(PLAIN.appid)).filter((r) => r.kind === 'other');
    expect(stored.map((r) => r.fields)).toEqual([null, null, null]);
    expect(JSON.stringify(stored)).not.toContain('o9AgO5Kd5ggOC');
  });
});
