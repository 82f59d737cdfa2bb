// Real WeChat answers (test/fixtures/wechat/<endpoint>/<name>.json, each with its source) run
// both ways, so that the adapter and the simulator cannot drift apart again:
// 1. the adapter (src/wechat/client.ts) against a local server that replays the fixture's status,
//    Content-Type and body byte for byte: it must return `expect.ok` or throw `expect.error`;
// 2. the simulator, driven into the fixture's `situation` (the SITUATIONS table below): its answer
//    must have the fixture's shape (keys, JSON types, errcode, status, Content-Type family).
//    Values that differ on every answer (tokens, rids, timestamps) are not compared.
// A fixture whose situation is null is one the simulator cannot reproduce; it is checked against
// the adapter only. A fixture naming a situation the table does not know fails: add a way to
// produce it, or the simulator has a gap.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import { WECHAT_ENDPOINT_PATHS, createWechatClient } from '../../src/wechat/index.js';
import type { WechatClient, WechatEndpoint } from '../../src/wechat/index.js';

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/wechat/', import.meta.url));
const ENDPOINTS = Object.keys(WECHAT_ENDPOINT_PATHS) as WechatEndpoint[];

interface Fixture {
  file: string;
  source: string;
  note: string;
  endpoint: WechatEndpoint;
  situation: string | null;
  status: number;
  contentType: string;
  body: string;
  expect: { ok: unknown } | { error: Record<string, unknown> };
}

/** An HTTP answer as it came off the wire. */
interface RawAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Reads every fixture; a file that breaks the shared format is reported by name rather than skipped. */
function loadFixtures(): { fixtures: Fixture[]; problems: string[] } {
  const fixtures: Fixture[] = [];
  const problems: string[] = [];
  for (const dir of readdirSync(FIXTURE_DIR, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const name of readdirSync(`${FIXTURE_DIR}${dir.name}`).filter((n) => n.endsWith('.json')).sort()) {
      const file = `${dir.name}/${name}`;
      const f = JSON.parse(readFileSync(`${FIXTURE_DIR}${file}`, 'utf8')) as Omit<Fixture, 'file'>;
      const wrong = [
        typeof f.source === 'string' && f.source.length > 0 ? null : 'source',
        typeof f.note === 'string' && f.note.length > 0 ? null : 'note',
        f.endpoint === dir.name && ENDPOINTS.includes(f.endpoint) ? null : 'endpoint (must name the folder, one of the adapter endpoints)',
        f.situation === null || (typeof f.situation === 'string' && f.situation.length > 0) ? null : 'situation',
        Number.isInteger(f.status) ? null : 'status',
        typeof f.contentType === 'string' ? null : 'contentType',
        typeof f.body === 'string' ? null : 'body (the body as captured, as a string)',
        f.expect && (('ok' in f.expect) !== ('error' in f.expect)) ? null : 'expect (exactly one of ok, error)',
      ].filter((w) => w !== null);
      if (wrong.length) problems.push(`${file}: ${wrong.join(', ')}`);
      else fixtures.push({ file, ...f });
    }
  }
  return { fixtures, problems };
}

const { fixtures: FIXTURES, problems: FORMAT_PROBLEMS } = loadFixtures();

// ---------------------------------------------------------------------------------------------
// 1. The adapter against each fixture, replayed by a local server.

const APPID = 'wx4f4bc4dec97d474b';
const SECRET = 'fixture-secret-0123456789';
const ACCESS_TOKEN = 'fixture-access-token-0123456789';
const PHONE_CODE = 'e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144';
const LOGIN_CODE = '0716AVll20uHk94SLDml27etM946AVlq';
const SPU_ID = '10000077';

/** The adapter call each endpoint's answers come back to. */
const ADAPTER_CALLS: Record<WechatEndpoint, (c: WechatClient) => Promise<unknown>> = {
  stable_token: (c) => c.getStableToken({ appid: APPID, secret: SECRET }),
  token: (c) => c.getToken({ appid: APPID, secret: SECRET }),
  getuserphonenumber: (c) => c.getUserPhoneNumber(ACCESS_TOKEN, { code: PHONE_CODE }),
  jscode2session: (c) => c.code2Session({ appid: APPID, secret: SECRET, jsCode: LOGIN_CODE }),
  usage_get: (c) => c.getUsagePage(ACCESS_TOKEN, { spuId: SPU_ID, offset: 0, limit: 20 }),
  usage_get_recent_average: (c) => c.getRecentAverage(ACCESS_TOKEN, { spuId: SPU_ID }),
};

/** What the adapter returned, as JSON: 64-bit counters (bigint) compare as their decimal strings. */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'null');
}

describe('the adapter reads every captured answer', () => {
  let server: Server;
  let client: WechatClient;
  let replay: Fixture | undefined;
  const hits: Array<{ method: string; path: string }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hits.push({ method: req.method ?? '', path: new URL(req.url ?? '/', 'http://x').pathname });
        const f = replay;
        if (!f) return void res.writeHead(500).end();
        res.writeHead(f.status, { 'content-type': f.contentType });
        res.end(f.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    // No retries: a fixture of -1 or a 5xx is one answer, and the adapter must type it, not hide it.
    client = createWechatClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2000, maxRetries: 0 });
  });
  afterAll(async () => {
    await client?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  it('every fixture follows the shared format', () => {
    expect(FORMAT_PROBLEMS).toEqual([]);
    expect(FIXTURES.length).toBeGreaterThan(0);
  });

  it.each(FIXTURES.map((f) => [f.file, f] as const))('%s', async (_file, f) => {
    replay = f;
    hits.length = 0;
    let result: unknown;
    let thrown: unknown;
    try {
      result = await ADAPTER_CALLS[f.endpoint](client);
    } catch (e) {
      thrown = e;
    }
    expect(hits.map((h) => h.path)).toEqual([WECHAT_ENDPOINT_PATHS[f.endpoint]]);
    if ('ok' in f.expect) {
      expect(thrown, `the adapter threw on ${f.file}: ${String(thrown)}`).toBeUndefined();
      expect(asJson(result)).toEqual(f.expect.ok);
    } else {
      expect(thrown, `the adapter accepted ${f.file}`).toBeInstanceOf(Error);
      const fields = Object.fromEntries(Object.keys(f.expect.error).map((k) => [k, (thrown as Record<string, unknown>)[k]]));
      expect(fields).toEqual(f.expect.error);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. The simulator, driven into each fixture's situation.

const START = Date.parse('2024-03-01T01:00:00+08:00');
const SIM_APP = { appid: 'wx00000000000000f1', secret: 'fixture-sim-secret' };

interface Sim {
  sim: RunningSimulator;
  /** Any request to the simulator, answered as it came off the wire. */
  call(method: 'GET' | 'POST', path: string, opts?: { query?: Record<string, string>; json?: unknown; form?: Record<string, string> }): Promise<RawAnswer>;
  /** A fresh stable token of the app (straight from the simulator's state: no HTTP needed for setup). */
  token(): string;
}

type Produce = (s: Sim) => Promise<RawAnswer>;

const PHONE_PATH = WECHAT_ENDPOINT_PATHS.getuserphonenumber;
const SESSION_PATH = WECHAT_ENDPOINT_PATHS.jscode2session;
const STABLE_PATH = WECHAT_ENDPOINT_PATHS.stable_token;
const TOKEN_PATH = WECHAT_ENDPOINT_PATHS.token;
const USAGE_PATH = WECHAT_ENDPOINT_PATHS.usage_get;
const AVERAGE_PATH = WECHAT_ENDPOINT_PATHS.usage_get_recent_average;

function phoneCode(s: Sim, phoneNumber = '13800138000', countryCode?: string): string {
  const minted = s.sim.state.mintPhoneCode(SIM_APP.appid, phoneNumber, countryCode);
  if (!('code' in minted)) throw new Error('the fixture app has no quota left');
  return minted.code;
}

const loginCode = (s: Sim): string => s.sim.state.mintLoginCode(SIM_APP.appid, 'o_fixture_user').code;
const stableBody = (over: Record<string, unknown> = {}) => ({ grant_type: 'client_credential', ...SIM_APP, force_refresh: false, ...over });
const sessionQuery = (jsCode: string, over: Record<string, string> = {}) => ({ ...SIM_APP, js_code: jsCode, grant_type: 'authorization_code', ...over });

/**
 * How to drive the simulator into each situation a fixture may name, by endpoint. Each entry
 * does what a client would do to get that answer from WeChat and returns the simulator's answer.
 */
const SITUATIONS: Record<WechatEndpoint, Record<string, Produce>> = {
  getuserphonenumber: {
    // A code fresh from the button, exchanged once.
    success: (s) => s.call('POST', PHONE_PATH, { query: { access_token: s.token() }, json: { code: phoneCode(s) } }),
    // A Hong Kong number: phoneNumber "+85261234567", purePhoneNumber without the calling code.
    success_overseas: (s) => s.call('POST', PHONE_PATH, { query: { access_token: s.token() }, json: { code: phoneCode(s, '61234567', '852') } }),
    // A code WeChat never issued (a login code, another app's expired code: all alike).
    invalid_code: (s) => s.call('POST', PHONE_PATH, { query: { access_token: s.token() }, json: { code: '0'.repeat(64) } }),
    // A JSON body without the code key.
    missing_code: (s) => s.call('POST', PHONE_PATH, { query: { access_token: s.token() }, json: {} }),
    // The code sent form-encoded instead of as JSON.
    body_not_json: (s) => s.call('POST', PHONE_PATH, { query: { access_token: s.token() }, form: { code: phoneCode(s) } }),
    // No access_token in the query string.
    missing_access_token: (s) => s.call('POST', PHONE_PATH, { json: { code: phoneCode(s) } }),
    // A token past its 7200 s.
    token_expired: async (s) => {
      const token = s.token();
      s.sim.state.advance(7201);
      return s.call('POST', PHONE_PATH, { query: { access_token: token }, json: { code: phoneCode(s) } });
    },
    // WeChat busy (-1) and calls too frequent (45011): injected faults.
    busy: (s) => {
      s.sim.state.faults.add(PHONE_PATH, { errcode: -1 }, 1);
      return s.call('POST', PHONE_PATH, { query: { access_token: s.token() }, json: { code: phoneCode(s) } });
    },
    rate_limited: (s) => {
      s.sim.state.faults.add(PHONE_PATH, { errcode: 45011 }, 1);
      return s.call('POST', PHONE_PATH, { query: { access_token: s.token() }, json: { code: phoneCode(s) } });
    },
  },
  jscode2session: {
    success: (s) => s.call('GET', SESSION_PATH, { query: sessionQuery(loginCode(s)) }),
    no_grant_type: (s) => {
      const { grant_type: _omitted, ...query } = sessionQuery(loginCode(s));
      return s.call('GET', SESSION_PATH, { query });
    },
    invalid_code: (s) => s.call('GET', SESSION_PATH, { query: sessionQuery('Z'.repeat(32)) }),
    code_used: async (s) => {
      const code = loginCode(s);
      await s.call('GET', SESSION_PATH, { query: sessionQuery(code) });
      return s.call('GET', SESSION_PATH, { query: sessionQuery(code) });
    },
    missing_code: (s) => s.call('GET', SESSION_PATH, { query: sessionQuery('') }),
    invalid_secret: (s) => s.call('GET', SESSION_PATH, { query: sessionQuery(loginCode(s), { secret: 'wrong-secret' }) }),
    // The parameters POSTed as a JSON body: jscode2session reads only the query string.
    post_instead_of_get: (s) => s.call('POST', SESSION_PATH, { json: sessionQuery(loginCode(s)) }),
  },
  stable_token: {
    success: (s) => s.call('POST', STABLE_PATH, { json: stableBody() }),
    // Normal mode while the token is valid: the same token, with what is left of its life.
    success_reused: async (s) => {
      await s.call('POST', STABLE_PATH, { json: stableBody() });
      s.sim.state.advance(1000);
      return s.call('POST', STABLE_PATH, { json: stableBody() });
    },
    force_refresh: (s) => s.call('POST', STABLE_PATH, { json: stableBody({ force_refresh: true }) }),
    invalid_secret: (s) => s.call('POST', STABLE_PATH, { json: stableBody({ secret: 'wrong-secret' }) }),
    invalid_appid: (s) => s.call('POST', STABLE_PATH, { json: stableBody({ appid: 'wx0000000000000099' }) }),
    get_instead_of_post: (s) => s.call('GET', STABLE_PATH, { query: { grant_type: 'client_credential', ...SIM_APP } }),
  },
  token: {
    success: (s) => s.call('GET', TOKEN_PATH, { query: { grant_type: 'client_credential', ...SIM_APP } }),
    invalid_secret: (s) => s.call('GET', TOKEN_PATH, { query: { grant_type: 'client_credential', ...SIM_APP, secret: 'wrong-secret' } }),
    invalid_appid: (s) => s.call('GET', TOKEN_PATH, { query: { grant_type: 'client_credential', ...SIM_APP, appid: 'wx0000000000000099' } }),
  },
  usage_get: {
    // The trial and one paid pack in effect.
    success: (s) => {
      const now = Math.floor(s.sim.state.now() / 1000);
      s.sim.state.addPack(SIM_APP.appid, { all: 10_000, startTime: now - 86_400, endTime: now + 30 * 86_400 });
      return s.call('GET', USAGE_PATH, { query: { access_token: s.token(), spuId: SPU_ID, offset: '0', limit: '20' } });
    },
    missing_spu_id: (s) => s.call('GET', USAGE_PATH, { query: { access_token: s.token(), offset: '0', limit: '20' } }),
    limit_over_20: (s) => s.call('GET', USAGE_PATH, { query: { access_token: s.token(), spuId: SPU_ID, offset: '0', limit: '21' } }),
    missing_access_token: (s) => s.call('GET', USAGE_PATH, { query: { spuId: SPU_ID, offset: '0', limit: '20' } }),
  },
  usage_get_recent_average: {
    // Some use in the last three months (a tap the button charged), so there is an average to give.
    success: (s) => {
      phoneCode(s);
      return s.call('GET', AVERAGE_PATH, { query: { access_token: s.token(), spuId: SPU_ID } });
    },
    // An app nobody has used lately: WeChat has no average to give (10122000).
    no_recent_usage: (s) => s.call('GET', AVERAGE_PATH, { query: { access_token: s.token(), spuId: SPU_ID } }),
    missing_spu_id: (s) => s.call('GET', AVERAGE_PATH, { query: { access_token: s.token() } }),
    missing_access_token: (s) => s.call('GET', AVERAGE_PATH, { query: { spuId: SPU_ID } }),
  },
};

/** The media type alone ("text/plain" of "text/plain; charset=utf-8"): the family both must share. */
const mediaType = (contentType: string): string => contentType.split(';')[0]!.trim().toLowerCase();

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Where two JSON values differ in shape, one line per difference ($.a.b: …); [] when alike. */
function shapeDiff(fixture: unknown, simulator: unknown, at = '$'): string[] {
  const [ft, st] = [jsonType(fixture), jsonType(simulator)];
  if (ft !== st) return [`${at}: fixture ${ft}, simulator ${st}`];
  if (ft === 'array') {
    const [fa, sa] = [fixture as unknown[], simulator as unknown[]];
    if (fa.length === 0 || sa.length === 0) return fa.length === sa.length ? [] : [`${at}: fixture ${fa.length} elements, simulator ${sa.length}`];
    // Every element of each has the shape of the other's first: rows of one list are alike.
    return [...new Set([...fa.flatMap((e, i) => shapeDiff(e, sa[0], `${at}[${i}]`)), ...sa.flatMap((e, i) => shapeDiff(fa[0], e, `${at}[${i}]`))])];
  }
  if (ft !== 'object') return [];
  const [fo, so] = [fixture as Record<string, unknown>, simulator as Record<string, unknown>];
  const out: string[] = [];
  for (const k of Object.keys(fo)) {
    if (!(k in so)) out.push(`${at}.${k}: in the fixture, not in the simulator's answer`);
    else out.push(...shapeDiff(fo[k], so[k], `${at}.${k}`));
  }
  for (const k of Object.keys(so)) if (!(k in fo)) out.push(`${at}.${k}: in the simulator's answer, not in the fixture`);
  return out;
}

/** Everything that must agree between a captured answer and the simulator's; [] when it all does. */
function answerDiff(f: Fixture, answer: RawAnswer): string[] {
  const out: string[] = [];
  if (answer.status !== f.status) out.push(`status: fixture ${f.status}, simulator ${answer.status}`);
  if (mediaType(answer.contentType) !== mediaType(f.contentType)) {
    out.push(`Content-Type: fixture "${f.contentType}", simulator "${answer.contentType}"`);
  }
  const parse = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return { '(not JSON)': text.slice(0, 60) };
    }
  };
  const [fb, sb] = [parse(f.body), parse(answer.body)];
  out.push(...shapeDiff(fb, sb));
  const field = (b: unknown, k: string) => (b !== null && typeof b === 'object' ? (b as Record<string, unknown>)[k] : undefined);
  if (field(fb, 'errcode') !== field(sb, 'errcode')) out.push(`$.errcode: fixture ${String(field(fb, 'errcode'))}, simulator ${String(field(sb, 'errcode'))}`);
  // A captured errmsg that ends with a request id ("rid: …", or the older "req_id: …") wants one from the simulator too.
  const suffixed = (b: unknown) => /\b(rid|req_id): /.test(String(field(b, 'errmsg') ?? ''));
  if (suffixed(fb) && !suffixed(sb)) out.push(`$.errmsg: the fixture's ends with a request id, the simulator's does not`);
  return [...new Set(out)];
}

describe('the simulator gives the same shapes in the same situations', () => {
  let s: Sim;
  const reproducible = FIXTURES.filter((f) => f.situation !== null);

  beforeAll(async () => {
    const sim = await startSimulator({ apps: [SIM_APP], startTime: START });
    s = {
      sim,
      async call(method, path, opts = {}) {
        const query = opts.query ? `?${new URLSearchParams(opts.query)}` : '';
        const init: RequestInit = { method };
        if (opts.json !== undefined) init.body = JSON.stringify(opts.json);
        if (opts.form) {
          init.body = new URLSearchParams(opts.form).toString();
          init.headers = { 'content-type': 'application/x-www-form-urlencoded' };
        }
        const res = await fetch(`${sim.url}${path}${query}`, init);
        return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
      },
      token() {
        const t = sim.state.stableToken(stableBody());
        if (!('access_token' in t)) throw new Error(`no token for the fixture app: ${JSON.stringify(t)}`);
        return t.access_token;
      },
    };
  });
  afterAll(() => s?.sim.close());
  beforeEach(() => s.sim.state.reset());

  it('the comparison itself reports keys, types, errcode, status and media type', () => {
    const f = { status: 200, contentType: 'text/plain', body: '{"errcode":0,"a":{"b":"86","c":[{"d":1}]},"gone":1}' } as Fixture;
    const diff = answerDiff(f, { status: 200, contentType: 'application/json', body: '{"errcode":47001,"a":{"b":86,"c":[{"d":"1"}]},"extra":true}' });
    const rid = { ...f, body: '{"errcode":40029,"errmsg":"invalid code hint: [hElexSDNRa-XiBFgA] rid: 632d16be-15ad5486-1e378de4"}' };
    expect(answerDiff(rid, { status: 200, contentType: 'text/plain', body: '{"errcode":40029,"errmsg":"invalid code"}' })).toEqual([
      "$.errmsg: the fixture's ends with a request id, the simulator's does not",
    ]);
    expect(diff).toEqual([
      'Content-Type: fixture "text/plain", simulator "application/json"',
      '$.a.b: fixture string, simulator number',
      '$.a.c[0].d: fixture number, simulator string',
      "$.gone: in the fixture, not in the simulator's answer",
      "$.extra: in the simulator's answer, not in the fixture",
      '$.errcode: fixture 0, simulator 47001',
    ]);
  });

  it('every way in the table still drives the simulator to a JSON answer', async () => {
    for (const [endpoint, ways] of Object.entries(SITUATIONS)) {
      for (const [situation, produce] of Object.entries(ways)) {
        s.sim.state.reset();
        const answer = await produce(s);
        expect({ endpoint, situation, status: answer.status }).toEqual({ endpoint, situation, status: 200 });
        expect(() => JSON.parse(answer.body), `${endpoint} ${situation}: ${answer.body}`).not.toThrow();
      }
    }
  });

  it.each(reproducible.map((f) => [`${f.file} (${f.situation})`, f] as const))('%s', async (_name, f) => {
    const produce = SITUATIONS[f.endpoint]?.[f.situation!];
    expect(produce, `no way to drive the simulator into "${f.situation}" for ${f.endpoint}: add it to SITUATIONS`).toBeDefined();
    const answer = await produce!(s);
    expect(answerDiff(f, answer), `simulator answered ${answer.status} ${answer.contentType}: ${answer.body}`).toEqual([]);
  });
});
