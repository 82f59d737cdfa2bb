import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import { MessagePusher, type PushAccount } from '../../src/simulator/message-push.js';
import { aesKeyFromEncodingAesKey, openPush } from '../../src/wechat/message-push.js';

const APPID = 'wx00000000000000d1';
const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const DAY_S = 86_400;

/** A receiver that reads each push with the gateway's own reader and answers as told. */
async function receiver(answer: (n: number) => { status: number; body: string; delayMs?: number } = () => ({ status: 200, body: 'success' })) {
  const got: { query: URLSearchParams; body: string; contentType: string | undefined }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ query: new URL(req.url!, 'http://x').searchParams, body, contentType: req.headers['content-type'] });
      const a = answer(got.length);
      setTimeout(() => res.writeHead(a.status, { 'content-type': 'text/plain' }).end(a.body), a.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/wechat/events/${APPID}`, got, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

describe('the simulator pushes charge alerts at WeChat thresholds', () => {
  let sim: RunningSimulator;
  let rx: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    sim = await startSimulator({ apps: [{ appid: APPID, secret: 'message-push-test-secret-000000' }] });
    rx = await receiver();
  });
  afterAll(async () => {
    await sim?.close();
    await rx?.close();
  });
  const state = () => sim.state;
  const read = (i: number, format: 'json' | 'xml' = 'xml') =>
    openPush({ token: 'tkn', aesKey: aesKeyFromEncodingAesKey(KEY), format }, APPID, rx.got[i]!.query, rx.got[i]!.body, Math.floor(Date.now() / 1000)).fields;

  it('quota: once at 20 %, 10 %, 5 % and 0 % of the units in effect; a new pack re-arms; nothing before a URL is set', async () => {
    for (let i = 0; i < 850; i++) state().mintPhoneCode(APPID, '13800138000');
    // Set while already below 20 %: that alert counts as sent.
    state().setMessagePush(APPID, { url: rx.url, token: 'tkn', encodingAesKey: KEY, mode: 'safe', format: 'xml' });
    for (let i = 0; i < 150; i++) state().mintPhoneCode(APPID, '13800138000');
    await state().messagePush.flush();
    expect(rx.got.map((_, i) => Number(read(i).total_used_quota))).toEqual([900, 950, 1000]);
    expect(read(0)).toMatchObject({ MsgType: 'event', Event: 'charge_service_quota_notify', event_type: '3', appid: APPID, spu_id: '10000077', total_quota: '1000' });
    expect(rx.got[0]!.query.get('encrypt_type')).toBe('aes');
    expect(rx.got[0]!.contentType).toBe('text/xml');

    // 100 more units: 100 of 1100 left (9 %): the 20 % and 10 % thresholds are armed again, and the next charge sends none.
    const now = Math.floor(state().now() / 1000);
    state().addPack(APPID, { all: 100, startTime: now - 10, endTime: now + 365 * DAY_S });
    state().mintPhoneCode(APPID, '13800138000');
    await state().messagePush.flush();
    expect(rx.got).toHaveLength(3);
    for (let i = 0; i < 45; i++) state().mintPhoneCode(APPID, '13800138000'); // down to 54 left: 5 % is reached at 55
    await state().messagePush.flush();
    expect(rx.got).toHaveLength(4);
    expect(read(3)).toMatchObject({ total_quota: '1100', total_used_quota: '1045' });
    expect(state().messagePush.describe(APPID).deliveries.every((d) => d.outcome === 'acknowledged')).toBe(true);
  });

  it('expiry: 15, 7, 3 and 1 days before and at expiry; a jump sends each passed moment oldest first; JSON when so set', async () => {
    rx.got.length = 0;
    state().setMessagePush(APPID, { url: rx.url, token: 'tkn', encodingAesKey: KEY, mode: 'compatible', format: 'json' });
    const now = Math.floor(state().now() / 1000);
    const endTime = now + 20 * DAY_S;
    state().addPack(APPID, { all: 10_000, startTime: now - 10, endTime });
    state().advance(6 * DAY_S); // 14 days left
    await state().messagePush.flush();
    state().advance(30 * DAY_S); // past everything
    await state().messagePush.flush();
    const expiry = rx.got.map((_, i) => read(i, 'json')).filter((f) => f.Event === 'charge_mp_service_validity_notify');
    expect(expiry.map((f) => (endTime - Number(f.CreateTime)) / DAY_S)).toEqual([15, 7, 3, 1, 0]);
    expect(expiry[0]).toMatchObject({ event_type: 4, spu_id: 10000077, validity_end_time: String(endTime) });
    // Compatible mode: the plaintext fields beside Encrypt.
    expect(JSON.parse(rx.got[0]!.body)).toHaveProperty('Encrypt');
    expect(JSON.parse(rx.got[0]!.body)).toHaveProperty('MsgType', 'event');
  });

  it('exempt apps are never alerted; the control API validates its input and never shows the Token or key', async () => {
    const gov = 'wx00000000000000d2';
    state().registerApp({ appid: gov, secret: 'gov-secret-000000000000000000000', subjectType: 'government' });
    state().setMessagePush(gov, { url: rx.url, token: 'tkn' });
    const before = rx.got.length;
    for (let i = 0; i < 1000; i++) state().mintPhoneCode(gov, '13800138000');
    await state().messagePush.flush();
    expect(rx.got).toHaveLength(before);

    const post = (body: object) => fetch(`${sim.url}/__sim__/message-push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post({ appid: APPID, url: 'ftp://x', token: 't' })).status).toBe(400);
    expect((await post({ appid: APPID, url: rx.url, token: 't', mode: 'safe' })).status).toBe(400);
    expect((await post({ appid: APPID, url: rx.url, token: 't', encodingAesKey: 'short' })).status).toBe(400);
    expect((await post({ appid: 'wx_unknown', url: rx.url, token: 't' })).status).toBe(400);
    const set = await post({ appid: APPID, url: rx.url, token: 'secret-token-x', encodingAesKey: KEY, format: 'json' });
    expect(await set.json()).toEqual({ appid: APPID, url: rx.url, mode: 'safe', format: 'json' });
    const shown = await (await fetch(`${sim.url}/__sim__/message-push?appid=${APPID}`)).text();
    expect(shown).not.toContain('secret-token-x');
    expect(shown).not.toContain(KEY);
    expect((await post({ appid: APPID, url: null })).status).toBe(200);
    expect(state().messagePush.describe(APPID).url).toBeNull();
  });
});

describe('retries like WeChat', () => {
  const account = (used: number): PushAccount => ({ appid: APPID, exempt: false, spuId: '10000077', trialUsed: used, packs: [] });

  it('sends again when the answer is not success, or not in time: 1 + 3 attempts at most, the same signed request', async () => {
    const rx = await receiver((n) => (n === 1 ? { status: 500, body: 'oops' } : n === 2 ? { status: 200, body: 'success', delayMs: 400 } : n === 3 ? { status: 200, body: 'not now' } : { status: 200, body: 'success' }));
    try {
      const pusher = new MessagePusher({ now: Date.now, timeoutMs: 200 });
      pusher.configure(account(0), { url: rx.url, token: 'tkn' });
      pusher.observe(account(800));
      await pusher.flush();
      const [d] = pusher.describe(APPID).deliveries;
      expect(d).toMatchObject({ attempts: [500, 'timeout', 200, 200], outcome: 'acknowledged', answer: 'success' });
      expect(new Set(rx.got.map((g) => g.query.toString() + g.body)).size).toBe(1);

      const never = await receiver(() => ({ status: 503, body: '' }));
      pusher.configure(account(800), { url: never.url, token: 'tkn' });
      pusher.observe(account(900));
      await pusher.flush();
      expect(pusher.describe(APPID).deliveries.at(-1)).toMatchObject({ attempts: [503, 503, 503, 503], outcome: 'failed' });
      await never.close();
    } finally {
      await rx.close();
    }
  });

  it('a plaintext XML push is what the docs show: flat elements, strings in CDATA, numbers bare', async () => {
    const rx = await receiver();
    try {
      const pusher = new MessagePusher({ now: () => 1_700_000_000_000 });
      pusher.configure(account(0), { url: rx.url, token: 'tkn', format: 'xml' });
      pusher.observe(account(1000));
      await pusher.flush();
      expect(rx.got[0]!.body).toBe(
        `<xml><ToUserName><![CDATA[gh_000000000000]]></ToUserName><FromUserName><![CDATA[o_sim_wechat_charge_notify0]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[charge_service_quota_notify]]></Event><event_type>3</event_type><appid><![CDATA[${APPID}]]></appid><spu_id>10000077</spu_id><spu_name><![CDATA[手机号快速验证组件]]></spu_name><total_quota>1000</total_quota><total_used_quota>1000</total_used_quota></xml>`,
      );
      expect(rx.got[0]!.query.has('msg_signature')).toBe(false);
    } finally {
      await rx.close();
    }
  });
});
