import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/billing/rules.js';
import { SimulatorState, startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import { fuzzUp } from '../../src/simulator/ledger.js';

const PAYER = { appid: 'wx00000000000000c1', secret: 's-payer' };
const REALTIME = { appid: 'wx00000000000000c2', secret: 's-rt', product: 'realtime' as const };
const GOV = { appid: 'wx00000000000000c3', secret: 's-gov', subjectType: 'government' as const };
const HOSPITAL = { appid: 'wx00000000000000c4', secret: 's-med', subjectType: 'enterprise' as const, category: '公立医疗机构' };
const CITY_HALL = { appid: 'wx00000000000000c5', secret: 's-pi', subjectType: 'public-institution' as const, category: '政务民生' };
const SHOP = { appid: 'wx00000000000000c6', secret: 's-shop', subjectType: 'enterprise' as const, category: '政务民生' };
const PHONE = '13800138000';

type Json = Record<string, any>;
let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimulator({ apps: [PAYER, REALTIME, GOV, HOSPITAL, CITY_HALL, SHOP] });
});
afterAll(() => sim.close());
beforeEach(() => sim.state.reset());

const nowS = () => Math.floor(sim.state.now() / 1000);

async function post(path: string, body: Json): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${sim.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Json };
}

async function addPack(appid: string, all: number, startTime: number, endTime: number): Promise<string> {
  const { status, json } = await post('/__sim__/packs', { appid, all, startTime, endTime });
  expect(status).toBe(200);
  expect(json.pkgId).toMatch(/^ZY\d{19}$/);
  return json.pkgId as string;
}

function spendTrial(appid: string): void {
  for (let i = 0; i < 1000; i++) expect(sim.state.mintPhoneCode(appid, PHONE)).toHaveProperty('code');
}

async function token(app: { appid: string; secret: string }): Promise<string> {
  const res = await fetch(`${sim.url}/cgi-bin/stable_token`, {
    method: 'POST',
    body: JSON.stringify({ grant_type: 'client_credential', appid: app.appid, secret: app.secret }),
  });
  return ((await res.json()) as Json).access_token as string;
}

async function usage(accessToken: string, params: Record<string, string | number>): Promise<Json> {
  const query = new URLSearchParams({ access_token: accessToken, ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])) });
  const res = await fetch(`${sim.url}/wxa/charge/usage/get?${query}`);
  return (await res.json()) as Json;
}

const packUsed = (appid: string, pkgId: string) => sim.state.ledger(appid).packs.find((p) => p.id === pkgId)?.used;

describe('charging (one unit per issued phone code)', () => {
  it('1,000 codes spend the trial; the 1,001st with no pack is refused with 1400001 and no code', async () => {
    spendTrial(PAYER.appid);
    expect(sim.state.ledger(PAYER.appid).trialUsed).toBe(1000);
    const { status, json } = await post('/__sim__/phone-codes', { appid: PAYER.appid, phoneNumber: PHONE });
    expect(status).toBe(200);
    expect(json).toEqual({ errno: 1400001, errMsg: 'getPhoneNumber:fail no permission' });
    expect(sim.state.stats().codesIssued).toBe(1000);
  });

  it('after the trial, draws from the pack that expires soonest, then the next, then refuses', async () => {
    spendTrial(PAYER.appid);
    const now = nowS();
    const b = await addPack(PAYER.appid, 3, now - 60, now + 10 * 86_400); // expires in 10 days
    const c = await addPack(PAYER.appid, 2, now - 60, now + 5 * 86_400); // expires in 5 days
    const code = await post('/__sim__/phone-codes', { appid: PAYER.appid, phoneNumber: PHONE });
    expect(code.json).toHaveProperty('code');
    expect([packUsed(PAYER.appid, c), packUsed(PAYER.appid, b)]).toEqual([1, 0]);
    sim.state.mintPhoneCode(PAYER.appid, PHONE);
    expect([packUsed(PAYER.appid, c), packUsed(PAYER.appid, b)]).toEqual([2, 0]);
    for (let i = 0; i < 3; i++) expect(sim.state.mintPhoneCode(PAYER.appid, PHONE)).toHaveProperty('code');
    expect([packUsed(PAYER.appid, c), packUsed(PAYER.appid, b)]).toEqual([2, 3]);
    expect(sim.state.mintPhoneCode(PAYER.appid, PHONE)).toEqual({ errno: 1400001, errMsg: 'getPhoneNumber:fail no permission' });
  });

  it('the trial comes before any pack', async () => {
    const now = nowS();
    const p = await addPack(PAYER.appid, 5, now - 60, now + 86_400);
    sim.state.mintPhoneCode(PAYER.appid, PHONE);
    expect(sim.state.ledger(PAYER.appid).trialUsed).toBe(1);
    expect(packUsed(PAYER.appid, p)).toBe(0);
  });

  it('never draws from a pack not yet in effect or expired', async () => {
    spendTrial(PAYER.appid);
    const now = nowS();
    const future = await addPack(PAYER.appid, 5, now + 3600, now + 7200);
    const ending = await addPack(PAYER.appid, 5, now - 3600, now + 60);
    expect(sim.state.mintPhoneCode(PAYER.appid, PHONE)).toHaveProperty('code');
    expect(packUsed(PAYER.appid, ending)).toBe(1);
    sim.state.advance(120); // `ending` expired, `future` not yet in effect
    expect(sim.state.mintPhoneCode(PAYER.appid, PHONE)).toHaveProperty('errno', 1400001);
    sim.state.advance(3600);
    expect(sim.state.mintPhoneCode(PAYER.appid, PHONE)).toHaveProperty('code');
    expect(packUsed(PAYER.appid, future)).toBe(1);
  });

  it('a pack bought before the charging start date takes effect on it (Pack A)', async () => {
    const state = new SimulatorState({ apps: [PAYER], startTime: Date.parse('2023-08-01T10:00:00+08:00') });
    const { pkgId } = state.addPack(PAYER.appid, { all: 10, paidAt: Math.floor(state.now() / 1000), validityDays: 365 });
    const packA = state.ledger(PAYER.appid).packs.find((p) => p.id === pkgId)!;
    expect(packA.effectiveAt).toBe(Date.parse('2023-08-28T00:00:00+08:00'));
    expect(packA.expiresAt).toBe(Date.parse('2024-08-27T00:00:00+08:00'));
  });

  it.each([
    ['government', GOV],
    ['public medical', HOSPITAL],
    ['public institution in 政务民生', CITY_HALL],
  ])('a %s app is never charged (5,000 codes, trial untouched)', (_name, app) => {
    for (let i = 0; i < 5000; i++) expect(sim.state.mintPhoneCode(app.appid, PHONE)).toHaveProperty('code');
    expect(sim.state.ledger(app.appid).trialUsed).toBe(0);
    expect(sim.state.ledger(app.appid).chargeCount()).toBe(0);
  });

  it('an enterprise in 政务民生 is charged like any other', () => {
    sim.state.mintPhoneCode(SHOP.appid, PHONE);
    expect(sim.state.ledger(SHOP.appid).trialUsed).toBe(1);
  });

  it('lists apps with their exemption and product', async () => {
    const apps = (await (await fetch(`${sim.url}/__sim__/apps`)).json()) as Json[];
    expect(apps).toContainEqual({ appid: GOV.appid, secret: GOV.secret, exempt: true, product: 'quick' });
    expect(apps).toContainEqual({ appid: SHOP.appid, secret: SHOP.secret, exempt: false, product: 'quick' });
    expect(apps).toContainEqual({ appid: REALTIME.appid, secret: REALTIME.secret, exempt: false, product: 'realtime' });
  });
});

describe('usage API', () => {
  const SPU = '10000077';

  it("answers WeChat's bytes: string pkgIds (the trial's \"\"), 64-bit counts as strings, numeric source and status, no errmsg", async () => {
    const t = await token(PAYER);
    const now = nowS();
    const active = await addPack(PAYER.appid, 100, now - 60, now + 86_400);
    const future = await addPack(PAYER.appid, 50, now + 86_400, now + 2 * 86_400);
    const expiring = await addPack(PAYER.appid, 20, now - 60, now + 60);
    for (let i = 0; i < 3; i++) sim.state.mintPhoneCode(PAYER.appid, PHONE);

    const res = await fetch(`${sim.url}/wxa/charge/usage/get?access_token=${t}&spuId=${SPU}&offset=0&limit=20`);
    const before = (await res.json()) as Json;
    expect(Object.keys(before).sort()).toEqual(['all', 'detailList', 'effectiveAll', 'effectiveUse', 'endServiceTime', 'errcode', 'startServiceTime', 'total']);
    // `all` counts the rows in effect: the pack not yet in effect is not in it.
    expect(before).toMatchObject({ errcode: 0, all: '1120', effectiveUse: '3', effectiveAll: '0', total: 4, endServiceTime: 4294967295 });
    expect(before.detailList[0]).toEqual({
      pkgId: '',
      orderId: '',
      status: 1,
      startTime: before.startServiceTime,
      endTime: 4294967295,
      all: '1000',
      used: '3',
      spuId: SPU,
      skuId: '20000093',
      source: 1,
    });
    const rows = new Map<string, Json>(before.detailList.map((r: Json) => [r.pkgId, r]));
    expect(rows.get(active)).toEqual({ pkgId: active, orderId: expect.stringMatching(/^DD\d{19}$/), status: 1, startTime: now - 60, endTime: now + 86_400, all: '100', used: '0', spuId: SPU, skuId: expect.stringMatching(/^\d+$/), source: 2 });
    expect(rows.get(future)).toMatchObject({ status: 2 });
    expect(rows.get(expiring)).toMatchObject({ status: 1 });
  });

  it('a pack that expires with units unused leaves `all` and keeps its use in effectiveUse, so remaining is the rows in effect, not all − effectiveUse', async () => {
    const t = await token(PAYER);
    spendTrial(PAYER.appid);
    const now = nowS();
    const expiring = await addPack(PAYER.appid, 10, now - 60, now + 60);
    await addPack(PAYER.appid, 20, now - 60, now + 86_400);
    for (let i = 0; i < 3; i++) sim.state.mintPhoneCode(PAYER.appid, PHONE); // drawn from the pack expiring first
    expect(packUsed(PAYER.appid, expiring)).toBe(3);
    sim.state.advance(120);
    const after = await usage(t, { spuId: SPU, offset: 0, limit: 20 });
    expect(after.detailList.find((r: Json) => r.pkgId === expiring)).toMatchObject({ status: 3, all: '10', used: '3' });
    expect(after).toMatchObject({ all: '1020', effectiveUse: '1003' });
    const inEffect = after.detailList.filter((r: Json) => r.status === 1);
    expect(inEffect.reduce((n: bigint, r: Json) => n + BigInt(r.all) - BigInt(r.used), 0n)).toBe(20n);
    expect(BigInt(after.all) - BigInt(after.effectiveUse)).toBe(17n); // the old reading: 7 expired units short
  });

  it('pages with offset/limit; spuId, offset and limit 1..20 are required (10120002)', async () => {
    const t = await token(PAYER);
    const now = nowS();
    for (let i = 0; i < 25; i++) await addPack(PAYER.appid, 1, now - 60, now + 86_400);
    const first = await usage(t, { spuId: SPU, offset: 0, limit: 20 });
    const second = await usage(t, { spuId: SPU, offset: 20, limit: 20 });
    expect(first.total).toBe(26);
    expect(first.detailList).toHaveLength(20);
    expect(second.detailList).toHaveLength(6);
    const ids = [...first.detailList, ...second.detailList].map((r: Json) => r.pkgId);
    expect(new Set(ids).size).toBe(26);
    const refused = { errcode: 10120002, errmsg: expect.stringMatching(/^invalid param/) };
    for (const limit of [21, 0, -1, 'x']) expect(await usage(t, { spuId: SPU, offset: 0, limit })).toEqual(refused);
    expect(await usage(t, { offset: 0, limit: 20 })).toEqual(refused);
    expect(await usage(t, { spuId: SPU, limit: 20 })).toEqual(refused);
    expect(await usage(t, { spuId: SPU, offset: 0 })).toEqual(refused);
    expect(await usage(t, { spuId: 'quick', offset: 0, limit: 20 })).toEqual(refused);
  });

  it("lists nothing for another product's spuId", async () => {
    const quick = await token(PAYER);
    expect(await usage(quick, { spuId: '10000086', offset: 0, limit: 20 })).toMatchObject({ all: '0', effectiveUse: '0', total: 0, detailList: [] });
    const rt = await token(REALTIME);
    const answer = await usage(rt, { spuId: '10000086', offset: 0, limit: 20 });
    expect(answer.total).toBe(1);
    expect(answer.detailList[0]).toMatchObject({ pkgId: '', spuId: '10000086', source: 1 });
  });

  it('exact for counters beyond 2^53', async () => {
    const t = await token(PAYER);
    const now = nowS();
    const big = Number.MAX_SAFE_INTEGER;
    await addPack(PAYER.appid, big, now - 60, now + 86_400);
    await addPack(PAYER.appid, big, now - 60, now + 86_400);
    const answer = await usage(t, { spuId: SPU, offset: 0, limit: 20 });
    expect(answer.all).toBe((1000n + 2n * BigInt(big)).toString());
  });

  it('needs a valid token', async () => {
    expect((await usage('nope', { spuId: SPU, offset: 0, limit: 20 })).errcode).toBe(40014);
  });

  it('before the charging start date, `all` also counts packs not yet in effect', () => {
    const state = new SimulatorState({ apps: [PAYER], startTime: Date.parse('2023-08-01T10:00:00+08:00') });
    state.addPack(PAYER.appid, { all: 10, paidAt: Math.floor(state.now() / 1000), validityDays: 365 });
    const t = state.stableToken({ grant_type: 'client_credential', appid: PAYER.appid, secret: PAYER.secret });
    const answer = state.usage('access_token' in t ? t.access_token : '', { spuId: SPU, offset: '0', limit: '20' });
    expect(answer).toMatchObject({ all: '1010', total: 2 });
  });

  it("averages MONTHLY use over the last three months, fuzzed upward as WeChat does (a JSON number); 10122000 with no use", async () => {
    const average = async () => {
      const t = await token(PAYER); // days pass here: fetch a live token each time
      const res = await fetch(`${sim.url}/wxa/charge/usage/get_recent_average?access_token=${t}&spuId=${SPU}`);
      return (await res.json()) as Json;
    };
    expect(await average()).toEqual({ errcode: 10122000, errmsg: expect.stringMatching(/^no recent usage data/) });
    for (let i = 0; i < 70; i++) sim.state.mintPhoneCode(PAYER.appid, PHONE);
    expect(await average()).toEqual({ errcode: 0, averageData: 50 }); // 70 / 3 ≈ 24: at most 50 a month
    for (let i = 0; i < 400; i++) sim.state.mintPhoneCode(PAYER.appid, PHONE);
    expect((await average()).averageData).toBe(160); // 470 / 3 = 156.7 → 157 → two significant digits, up
    sim.state.advance((91 * DAY_MS) / 1000); // all of it falls out of the window
    expect((await average()).errcode).toBe(10122000);
    const t = await token(PAYER);
    const missing = await fetch(`${sim.url}/wxa/charge/usage/get_recent_average?access_token=${t}`);
    expect(await missing.json()).toEqual({ errcode: 10120002, errmsg: expect.stringMatching(/^invalid param/) });
  });

  it('fuzzes to two significant digits, rounding up, never below 50', () => {
    expect([0n, 1n, 50n, 51n, 99n, 100n, 101n, 261_234n, 260_000n].map(fuzzUp)).toEqual([50n, 50n, 50n, 51n, 99n, 100n, 110n, 270_000n, 260_000n]);
  });
});

describe('packs control endpoint', () => {
  it('refuses bad packs with 400', async () => {
    const now = nowS();
    for (const body of [
      { appid: PAYER.appid, all: 0, startTime: now, endTime: now + 10 },
      { appid: PAYER.appid, all: 5, startTime: now + 10, endTime: now },
      { appid: PAYER.appid, all: 1.5, startTime: now, endTime: now + 10 },
      { appid: 'wx-unknown', all: 5, startTime: now, endTime: now + 10 },
      { appid: PAYER.appid, all: 5, paidAt: now, validityDays: 0 },
    ]) {
      const { status, json } = await post('/__sim__/packs', body);
      expect(status).toBe(400);
      expect(json.error).toEqual(expect.any(String));
    }
    expect(sim.state.ledger(PAYER.appid).packs).toHaveLength(0);
  });
});
