import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SANDBOX_APP, SimulatorControl, startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import { errmsg } from '../support/wechat-errmsg.js';

const A = { appid: 'wx00000000000000d1', secret: 'secret-d' };
const PHONE = '13900139000';
const STABLE = '/cgi-bin/stable_token';
const EXCHANGE = '/wxa/business/getuserphonenumber';

type Json = Record<string, any>;
let sim: RunningSimulator;
let ctl: SimulatorControl;

beforeAll(async () => {
  sim = await startSimulator({ apps: [A] });
  ctl = new SimulatorControl(sim.url);
});
afterAll(() => sim.close());
beforeEach(() => sim.state.reset());

const stableBody = JSON.stringify({ grant_type: 'client_credential', ...A });
const stable = () => fetch(`${sim.url}${STABLE}`, { method: 'POST', body: stableBody });

async function post(path: string, body: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${sim.url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Json };
}

async function exchange(token: string, code: string, init: RequestInit = {}): Promise<Json> {
  const res = await fetch(`${sim.url}${EXCHANGE}?access_token=${token}`, { method: 'POST', body: JSON.stringify({ code }), ...init });
  return JSON.parse(await res.text()) as Json;
}

async function freshToken(): Promise<string> {
  return ((await (await stable()).json()) as Json).access_token as string;
}

async function newCode(): Promise<string> {
  const minted = await ctl.phoneCode({ appid: A.appid, phoneNumber: PHONE });
  if (!('code' in minted)) throw new Error('no quota');
  return minted.code;
}

describe('faults', () => {
  it('errcode: the next `times` calls answer HTTP 200 with that errcode, then normal service', async () => {
    expect(await ctl.fault(STABLE, { errcode: -1, times: 2 })).toEqual({ path: STABLE, pending: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await stable();
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ errcode: -1, errmsg: errmsg('system error') });
      expect(res.headers.get('content-type')).toBe('application/json; encoding=utf-8');
    }
    expect(await (await stable()).json()).toHaveProperty('access_token');
    expect(sim.state.stats().calls[STABLE]).toBe(3);
    expect(sim.state.stats().tokensIssued.stable).toBe(1);
  });

  it('httpStatus: that status with an HTML body that is not JSON', async () => {
    await ctl.fault(STABLE, { httpStatus: 502, times: 1 });
    const res = await stable();
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const text = await res.text();
    expect(text).toContain('502 Bad Gateway');
    expect(() => JSON.parse(text)).toThrow();
    expect((await stable()).status).toBe(200);
  });

  it('delayMs alone: a normal answer, late', async () => {
    await ctl.fault(STABLE, { delayMs: 250, times: 1 });
    const started = performance.now();
    const res = await stable();
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
    expect(await res.json()).toHaveProperty('access_token');
    const again = performance.now();
    await stable();
    expect(performance.now() - again).toBeLessThan(200);
  });

  it('a delayed exchange takes effect on arrival: a client that gives up has still used its code', async () => {
    const token = await freshToken();
    const code = await newCode();
    await ctl.fault(EXCHANGE, { delayMs: 1000, times: 1 });
    await expect(exchange(token, code, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect((await exchange(token, code)).errcode).toBe(40029);
  });

  it('delay with errcode: the error, late', async () => {
    await ctl.fault(STABLE, { delayMs: 150, errcode: 45011, times: 1 });
    const started = performance.now();
    expect(((await (await stable()).json()) as Json).errcode).toBe(45011);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('reset: the connection is destroyed, then service resumes', async () => {
    await ctl.fault(STABLE, { reset: true, times: 1 });
    await expect(stable()).rejects.toThrow();
    expect((await stable()).status).toBe(200);
    expect(sim.state.stats().calls[STABLE]).toBe(2);
  });

  it('queue per path, apply to that path only, and `times: 0` clears them', async () => {
    await ctl.fault(STABLE, { errcode: 45011, times: 1 });
    await ctl.fault(STABLE, { httpStatus: 503, times: 1 });
    expect(((await (await stable()).json()) as Json).errcode).toBe(45011);
    const probe = await fetch(`${sim.url}/wxa/charge/usage/get_recent_average?access_token=x`);
    expect(((await probe.json()) as Json).errcode).toBe(40014);
    expect((await stable()).status).toBe(503);
    await ctl.fault(STABLE, { errcode: -1, times: 5 });
    expect(await ctl.fault(STABLE, { times: 0 })).toEqual({ path: STABLE, pending: 0 });
    expect((await stable()).status).toBe(200);
  });

  it.each([
    ['an unknown path', { path: '/nope', errcode: -1, times: 1 }],
    ['no failure kind', { path: STABLE, times: 1 }],
    ['two failure kinds', { path: STABLE, errcode: -1, httpStatus: 500, times: 1 }],
    ['a bad status', { path: STABLE, httpStatus: 99, times: 1 }],
    ['negative times', { path: STABLE, errcode: -1, times: -1 }],
    ['a huge delay', { path: STABLE, delayMs: 10_000_000, times: 1 }],
  ])('refuse %s with 400', async (_name, body) => {
    const { status, json } = await post('/__sim__/faults', body);
    expect(status).toBe(400);
    expect(json.error).toEqual(expect.any(String));
  });
});

describe('stats and reset', () => {
  it('count tokens, calls per path without the query string, and codes', async () => {
    const token = await freshToken();
    await freshToken();
    await fetch(`${sim.url}/cgi-bin/token?grant_type=client_credential&appid=${A.appid}&secret=${A.secret}`);
    const code = await newCode();
    await exchange(token, code);
    await exchange(token, code);
    expect(await ctl.stats()).toEqual({
      tokensIssued: { stable: 1, plain: 1, forced: 0 },
      calls: { [STABLE]: 2, '/cgi-bin/token': 1, [EXCHANGE]: 2 },
      codesIssued: 1,
      codesExchanged: 1,
    });
  });

  it('reset keeps the apps and clears trial, packs, tokens, faults and stats', async () => {
    const token = await freshToken();
    const now = Math.floor(sim.state.now() / 1000);
    await ctl.addPack(A.appid, { all: 5, startTime: now, endTime: now + 600 });
    await newCode();
    await ctl.fault(STABLE, { errcode: -1, times: 3 });
    expect(await ctl.reset()).toEqual({ ok: true });

    expect(await ctl.listApps()).toEqual([{ appid: A.appid, secret: A.secret, exempt: false, product: 'quick' }]);
    expect(sim.state.ledger(A.appid).trialUsed).toBe(0);
    expect(sim.state.ledger(A.appid).packs).toHaveLength(0);
    expect(await ctl.stats()).toEqual({ tokensIssued: { stable: 0, plain: 0, forced: 0 }, calls: {}, codesIssued: 0, codesExchanged: 0 });
    const res = await fetch(`${sim.url}/wxa/charge/usage/get_recent_average?access_token=${token}`);
    expect(((await res.json()) as Json).errcode).toBe(40014);
    expect((await stable()).status).toBe(200); // the fault is gone
  });
});

describe('control API', () => {
  it('moves the clock', async () => {
    const before = sim.state.now();
    const { now } = await ctl.advance(3600);
    expect(now - before).toBeGreaterThanOrEqual(3_600_000);
    expect(now - before).toBeLessThan(3_605_000);
  });

  it('registers apps, updating one already known', async () => {
    const { status, json } = await post('/__sim__/apps', { appid: 'wx00000000000000e1', secret: 'x', subjectType: 'non-profit' });
    expect(status).toBe(200);
    expect(json).toMatchObject({ appid: 'wx00000000000000e1', exempt: true, exemptionRule: 'GOVERNMENT_OR_NON_PROFIT' });
    expect(json).not.toHaveProperty('secret');
    await post('/__sim__/apps', { appid: 'wx00000000000000e1', secret: 'y', product: 'realtime' });
    expect(await ctl.listApps()).toContainEqual({ appid: 'wx00000000000000e1', secret: 'y', exempt: false, product: 'realtime' });
  });

  it.each([
    ['/__sim__/phone-codes', { appid: 'wx-unknown', phoneNumber: PHONE }],
    ['/__sim__/phone-codes', { appid: A.appid, phoneNumber: '+86 139' }],
    ['/__sim__/phone-codes', { appid: A.appid }],
    ['/__sim__/phone-codes', '{not json'],
    ['/__sim__/login-codes', { appid: A.appid }],
    ['/__sim__/apps', { appid: 'wx1', secret: 's', subjectType: 'martian' }],
    ['/__sim__/apps', { appid: 'wx1' }],
    ['/__sim__/clock', { advanceSeconds: -5 }],
    ['/__sim__/clock', { advanceSeconds: '60' }],
  ])('%s refuses %j with 400 and changes nothing', async (path, body) => {
    const { status, json } = await post(path, body);
    expect(status).toBe(400);
    expect(json.error).toEqual(expect.any(String));
    expect(sim.state.stats().codesIssued).toBe(0);
    expect(sim.state.ledger(A.appid).trialUsed).toBe(0);
  });

  it('answers 405 for a wrong method and 404 JSON for unknown paths', async () => {
    expect((await fetch(`${sim.url}/__sim__/phone-codes`)).status).toBe(405);
    for (const path of ['/nope', '/__sim__/nope', '/cgi-bin/tokens']) {
      const res = await fetch(`${sim.url}${path}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ errcode: -1, errmsg: 'not found' });
    }
    expect(sim.state.stats().calls).toEqual({});
  });
});

describe('server', () => {
  it('serves 1,000 concurrent exchanges of one code: exactly one wins', async () => {
    const token = await freshToken();
    const code = await newCode();
    const answers = await Promise.all(Array.from({ length: 1000 }, () => exchange(token, code)));
    expect(answers.filter((a) => a.errcode === 0)).toHaveLength(1);
    expect(answers.filter((a) => a.errcode === 40029)).toHaveLength(999);
    expect(sim.state.stats().calls[EXCHANGE]).toBe(1000);
  });

  it('registers the sandbox app by default and closes promptly even with a delayed call pending', async () => {
    const own = await startSimulator();
    expect(own.url).toBe(`http://127.0.0.1:${own.port}`);
    expect(own.state.listApps()).toEqual([{ appid: SANDBOX_APP.appid, secret: SANDBOX_APP.secret, exempt: false, product: 'quick' }]);
    own.state.faults.add(STABLE, { delayMs: 60_000 }, 1);
    const pending = fetch(`${own.url}${STABLE}`, { method: 'POST', body: '{}' }).catch(() => 'closed');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await own.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await pending).toBe('closed');
  });

  it('logs nothing, so no token, code or phone number can leak', async () => {
    const spies = [
      vi.spyOn(console, 'log'),
      vi.spyOn(console, 'info'),
      vi.spyOn(console, 'warn'),
      vi.spyOn(console, 'error'),
      vi.spyOn(console, 'debug'),
      vi.spyOn(process.stdout, 'write'),
      vi.spyOn(process.stderr, 'write'),
    ];
    try {
      const token = await freshToken();
      await exchange(token, await newCode());
      await ctl.fault(EXCHANGE, { errcode: -1, times: 1 });
      await exchange(token, 'bad');
      await post('/__sim__/phone-codes', { appid: 'wx-unknown', phoneNumber: PHONE });
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});
