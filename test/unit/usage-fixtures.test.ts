// The usage answers in test/fixtures/wechat/usage_get*/ (official examples, each with its source):
// what the adapter reads from each, what billing makes of it, and whether the simulator answers
// the same situations with the same shape.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WechatApiError, createWechatClient, type WechatClient } from '../../src/wechat/index.js';
import { usageTotals } from '../../src/billing/rules.js';
import { startSimulator, type RunningSimulator } from '../../src/simulator/index.js';

interface Fixture {
  file: string;
  source: string;
  note: string;
  endpoint: 'usage_get' | 'usage_get_recent_average';
  situation: string | null;
  status: number;
  contentType: string;
  body: string;
  expect: { ok: unknown } | { error: { errcode: number; kind: string } };
}

const DIR = join(import.meta.dirname, '..', 'fixtures', 'wechat');
const fixtures: Fixture[] = ['usage_get', 'usage_get_recent_average'].flatMap((endpoint) =>
  readdirSync(join(DIR, endpoint))
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ file: `${endpoint}/${f}`, ...(JSON.parse(readFileSync(join(DIR, endpoint, f), 'utf8')) as Omit<Fixture, 'file'>) })),
);

/** 64-bit counts are bigint in the adapter and decimal strings in the fixtures' JSON. */
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)));

/** What billing must make of each success answer (src/billing/rules.ts usageTotals). */
const TOTALS: Record<string, { remaining: string; unitsInEffect: string; trial: null | { all: string; used: string; remaining: string } }> = {
  'usage_get/official_example.json': { remaining: '10', unitsInEffect: '10', trial: null },
  'usage_get/official_example_with_order_ids.json': { remaining: '10', unitsInEffect: '10', trial: null },
  'usage_get/trial_and_pack.json': { remaining: '10999', unitsInEffect: '11000', trial: { all: '1000', used: '1', remaining: '999' } },
};

describe('usage fixtures', () => {
  it('are well formed: every field of the shared format, a source, a known endpoint', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(6);
    for (const f of fixtures) {
      expect(Object.keys(f).filter((k) => k !== 'file').sort(), f.file).toEqual(['body', 'contentType', 'endpoint', 'expect', 'note', 'situation', 'source', 'status']);
      expect(f.source, f.file).toMatch(/^https:\/\/developers\.weixin\.qq\.com\/|^[\w.-]+\/[\w.-]+:/);
      expect(f.file.startsWith(`${f.endpoint}/`), f.file).toBe(true);
      expect(() => JSON.parse(f.body), f.file).not.toThrow();
    }
  });
});

describe('the adapter reads each usage fixture', () => {
  let server: Server;
  let client: WechatClient;
  let serving: Fixture;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(serving.status, { 'content-type': serving.contentType });
      res.end(serving.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    client = createWechatClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 2000, maxRetries: 0 });
  });
  afterAll(async () => {
    await client.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const call = (f: Fixture) =>
    f.endpoint === 'usage_get'
      ? client.getUsagePage('ACCESS-TOKEN-fixture', { spuId: '10000077', offset: 0, limit: 20 })
      : client.getRecentAverage('ACCESS-TOKEN-fixture', { spuId: '10000077' });

  it.each(fixtures.map((f) => [f.file, f] as const))('%s', async (_name, f) => {
    serving = f;
    if ('ok' in f.expect) {
      const value = await call(f);
      expect(asJson(value)).toEqual(f.expect.ok);
      const totals = TOTALS[f.file];
      if (f.endpoint === 'usage_get') {
        expect(totals, `${f.file} needs its expected totals here`).toBeDefined();
        expect(asJson(usageTotals((value as Awaited<ReturnType<WechatClient['getUsagePage']>>).detailList))).toEqual(totals);
      }
    } else {
      const e = await call(f).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(WechatApiError);
      expect({ errcode: (e as WechatApiError).errcode, kind: (e as WechatApiError).kind }).toEqual(f.expect.error);
    }
  });
});

describe('the simulator answers the same situations with the same shape', () => {
  const APP = { appid: 'wx00000000000000f1', secret: 'fixture-app-secret' };
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ apps: [APP] });
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.state.reset());

  async function answer(path: string, params: Record<string, string>): Promise<{ status: number; json: unknown }> {
    const tok = await fetch(`${sim.url}/cgi-bin/stable_token`, { method: 'POST', body: JSON.stringify({ grant_type: 'client_credential', ...APP }) });
    const { access_token } = (await tok.json()) as { access_token: string };
    const res = await fetch(`${sim.url}${path}?${new URLSearchParams({ access_token, ...params })}`);
    return { status: res.status, json: await res.json() };
  }

  /** Drives the simulator into a fixture's situation and returns its answer. */
  async function situation(f: Fixture): Promise<{ status: number; json: unknown }> {
    const all = { spuId: '10000077', offset: '0', limit: '20' };
    if (f.endpoint === 'usage_get') {
      switch (f.situation) {
        case 'success': {
          const now = Math.floor(sim.state.now() / 1000);
          sim.state.mintPhoneCode(APP.appid, '13800138000');
          sim.state.addPack(APP.appid, { all: 10_000, startTime: now - 60, endTime: now + 86_400 });
          return answer('/wxa/charge/usage/get', all);
        }
        case 'missing_spu_id':
          return answer('/wxa/charge/usage/get', { offset: '0', limit: '20' });
        case 'limit_over_20':
          return answer('/wxa/charge/usage/get', { ...all, limit: '21' });
      }
    } else {
      switch (f.situation) {
        case 'success':
          for (let i = 0; i < 60; i++) sim.state.mintPhoneCode(APP.appid, '13800138000');
          return answer('/wxa/charge/usage/get_recent_average', { spuId: '10000077' });
        case 'no_recent_usage':
          return answer('/wxa/charge/usage/get_recent_average', { spuId: '10000077' });
        case 'missing_spu_id':
          return answer('/wxa/charge/usage/get_recent_average', {});
      }
    }
    throw new Error(`${f.file}: no way to drive the simulator into ${String(f.situation)}`);
  }

  /** Same JSON types key by key (arrays: each element like the fixture's first); the simulator may add keys (errmsg). */
  function expectSameShape(actual: unknown, expected: unknown, path: string): void {
    if (Array.isArray(expected)) {
      expect(Array.isArray(actual), path).toBe(true);
      if (expected.length) for (const [i, a] of (actual as unknown[]).entries()) expectSameShape(a, expected[0], `${path}[${i}]`);
      return;
    }
    if (expected !== null && typeof expected === 'object') {
      expect(actual !== null && typeof actual === 'object', path).toBe(true);
      for (const [k, v] of Object.entries(expected)) expectSameShape((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
      return;
    }
    expect(typeof actual, path).toBe(typeof expected);
  }

  const reproducible = fixtures.filter((f) => f.situation !== null);
  it('has situations to drive', () => expect(reproducible.length).toBeGreaterThanOrEqual(5));

  it.each(reproducible.map((f) => [f.file, f] as const))('%s', async (_name, f) => {
    const { status, json } = await situation(f);
    expect(status).toBe(f.status);
    const body = JSON.parse(f.body) as Record<string, unknown>;
    if ('error' in f.expect) {
      // errmsg may carry WeChat's " rid: …" / " hint: …" suffix: compare what comes before it.
      expect(json).toMatchObject({ errcode: body.errcode, errmsg: expect.stringMatching(new RegExp(`^${String(body.errmsg)}`)) });
    }
    else expectSameShape(json, body, f.file);
  });
});
