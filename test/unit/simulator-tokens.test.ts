import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../src/simulator/index.js';
import { errmsg } from '../support/wechat-errmsg.js';

// Fixed start well inside a CST day, so the daily force-refresh count cannot roll over mid-test.
const START = Date.parse('2024-03-01T01:00:00+08:00');
const A = { appid: 'wx00000000000000a1', secret: 'secret-a' };
const B = { appid: 'wx00000000000000b2', secret: 'secret-b' };

let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimulator({ apps: [A, B], startTime: START });
});
afterAll(() => sim.close());
beforeEach(() => sim.state.reset());

type Json = Record<string, unknown>;

async function stableToken(body: Json, method = 'POST'): Promise<Json> {
  const res = await fetch(`${sim.url}/cgi-bin/stable_token`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(method === 'POST' && { body: JSON.stringify(body) }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Json;
}

const stable = (app: typeof A, force?: boolean) =>
  stableToken({ grant_type: 'client_credential', appid: app.appid, secret: app.secret, force_refresh: force ?? false });

async function plain(params: Record<string, string>): Promise<Json> {
  const res = await fetch(`${sim.url}/cgi-bin/token?${new URLSearchParams(params)}`);
  return (await res.json()) as Json;
}
const plainFor = (app: typeof A) => plain({ grant_type: 'client_credential', appid: app.appid, secret: app.secret });

/** errcode of a cheap business call made with this token (0 = accepted). */
async function probe(token: unknown): Promise<number> {
  const res = await fetch(`${sim.url}/wxa/charge/usage/get?access_token=${encodeURIComponent(String(token))}&spuId=10000077&offset=0&limit=20`);
  return ((await res.json()) as { errcode: number }).errcode;
}

const advance = (seconds: number) => sim.state.advance(seconds);

describe('stable_token, normal mode', () => {
  it('returns the same token with its remaining lifetime, and no errcode', async () => {
    const first = await stable(A);
    expect(first).not.toHaveProperty('errcode');
    expect(first.expires_in).toBe(7200);
    expect(first.access_token).toMatch(/^[A-Za-z0-9_-]{100,150}$/);

    advance(1000);
    const second = await stable(A);
    expect(second.access_token).toBe(first.access_token);
    expect(second.expires_in).toBeGreaterThanOrEqual(6198);
    expect(second.expires_in).toBeLessThanOrEqual(6200);

    advance(200);
    const third = await stable(A);
    expect(third.access_token).toBe(first.access_token);
    expect(third.expires_in as number).toBeLessThan(second.expires_in as number);
    expect(await probe(first.access_token)).toBe(0);
  });

  it('rotates at 300 s left; the old token works until its own expiry, then 42001', async () => {
    const t1 = await stable(A);
    advance(6899); // ~301 s left: still the same token
    const same = await stable(A);
    expect(same.access_token).toBe(t1.access_token);
    expect(same.expires_in).toBe(300);

    advance(2); // ~299 s left: rotate
    const t2 = await stable(A);
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(t2.expires_in).toBe(7200);
    expect(await probe(t1.access_token)).toBe(0);
    expect(await probe(t2.access_token)).toBe(0);

    advance(297); // t1 has ~1 s left
    expect(await probe(t1.access_token)).toBe(0);
    advance(3);
    expect(await probe(t1.access_token)).toBe(42001);
    expect(await probe(t2.access_token)).toBe(0);
    expect((await stable(A)).access_token).toBe(t2.access_token);
  });

  it('issues a new token once the current one has expired', async () => {
    const t1 = await stable(A);
    advance(7300);
    expect(await probe(t1.access_token)).toBe(42001);
    const t2 = await stable(A);
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(t2.expires_in).toBe(7200);
  });

  it('gives each app its own token', async () => {
    const a = await stable(A);
    const b = await stable(B);
    expect(a.access_token).not.toBe(b.access_token);
    expect(sim.state.checkToken(a.access_token as string)).toEqual({ ok: true, appid: A.appid });
    // A token presented for another app is "invalid or not latest".
    expect(sim.state.checkToken(a.access_token as string, B.appid)).toEqual({ ok: false, errcode: 40001 });
  });
});

describe('stable_token, force mode', () => {
  it('invalidates the previous token at once (40001) and needs 30 s between forced calls', async () => {
    const t1 = await stable(A);
    const t2 = await stable(A, true);
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(t2.expires_in).toBe(7200);
    const rejected = await fetch(`${sim.url}/wxa/charge/usage/get_recent_average?access_token=${t1.access_token}`);
    expect(await rejected.json()).toEqual({ errcode: 40001, errmsg: errmsg('invalid credential, access_token is invalid or not latest') });

    expect(await stable(A, true)).toMatchObject({ errcode: 45011 });
    advance(29);
    expect(await stable(A, true)).toMatchObject({ errcode: 45011 });
    advance(2);
    const t3 = await stable(A, true);
    expect(t3.access_token).toEqual(expect.any(String));
    expect(await probe(t2.access_token)).toBe(40001);
    expect(await probe(t3.access_token)).toBe(0);
    // Normal mode now hands out the forced token.
    expect((await stable(A)).access_token).toBe(t3.access_token);
  });

  it('also kills a token still in its 5-minute overlap', async () => {
    const t1 = await stable(A);
    advance(6950);
    const t2 = await stable(A);
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(await probe(t1.access_token)).toBe(0);
    await stable(A, true);
    expect(await probe(t1.access_token)).toBe(40001);
    expect(await probe(t2.access_token)).toBe(40001);
  });

  it('allows 20 forced refreshes a CST day (45009 after), and counts anew the next day', async () => {
    const own = await startSimulator({ apps: [A], startTime: Date.parse('2024-03-01T08:00:00+08:00') });
    try {
      const force = async () => {
        const res = await fetch(`${own.url}/cgi-bin/stable_token`, {
          method: 'POST',
          body: JSON.stringify({ grant_type: 'client_credential', ...A, force_refresh: true }),
        });
        return (await res.json()) as Json;
      };
      for (let i = 0; i < 20; i++) {
        expect(await force()).toHaveProperty('access_token');
        own.state.advance(31);
      }
      expect(await force()).toMatchObject({ errcode: 45009 });
      own.state.advance(16 * 3600); // past CST midnight
      expect(await force()).toHaveProperty('access_token');
      expect(own.state.stats().tokensIssued).toEqual({ stable: 0, plain: 0, forced: 21 });
    } finally {
      await own.close();
    }
  });
});

describe('stable_token validation', () => {
  it.each([
    ['bad grant_type', { grant_type: 'password', ...A }, 40002],
    ['missing appid', { grant_type: 'client_credential', secret: A.secret }, 41002],
    ['missing secret', { grant_type: 'client_credential', appid: A.appid }, 41004],
    ['unknown appid', { grant_type: 'client_credential', appid: 'wx0000000000000099', secret: 'x' }, 40013],
    ['wrong secret', { grant_type: 'client_credential', appid: A.appid, secret: 'nope' }, 40125],
  ])('%s -> %i', async (_name, body, errcode) => {
    const answer = await stableToken(body);
    expect(answer.errcode).toBe(errcode);
    expect(answer.errmsg).toEqual(expect.any(String));
    expect(answer).not.toHaveProperty('access_token');
  });

  it('must be POST (43002), with a JSON body (47001)', async () => {
    expect((await stableToken({}, 'GET')).errcode).toBe(43002);
    const res = await fetch(`${sim.url}/cgi-bin/stable_token`, { method: 'POST', body: 'grant_type=client_credential' });
    expect(((await res.json()) as Json).errcode).toBe(47001);
  });
});

describe('legacy /cgi-bin/token', () => {
  it('issues a new token every call; the previous one stops working 300 s later', async () => {
    const p1 = await plainFor(A);
    const p2 = await plainFor(A);
    expect(p1.expires_in).toBe(7200);
    expect(p2.access_token).not.toBe(p1.access_token);
    expect(await probe(p1.access_token)).toBe(0);
    advance(298);
    expect(await probe(p1.access_token)).toBe(0);
    advance(3);
    expect(await probe(p1.access_token)).toBe(40001);
    expect(await probe(p2.access_token)).toBe(0);
    advance(7000);
    expect(await probe(p2.access_token)).toBe(42001);
  });

  it('ends the overlap at the predecessor expiry when that comes first (42001, not 40001)', async () => {
    const p1 = await plainFor(A);
    advance(7000);
    await plainFor(A);
    advance(199);
    expect(await probe(p1.access_token)).toBe(0);
    advance(2);
    expect(await probe(p1.access_token)).toBe(42001);
  });

  it('is separate from stable tokens in both directions', async () => {
    const s1 = await stable(A);
    const p1 = await plainFor(A);
    await plainFor(A);
    advance(301);
    expect(await probe(p1.access_token)).toBe(40001);
    expect(await probe(s1.access_token)).toBe(0);
    const p3 = await plainFor(A);
    advance(31);
    await stable(A, true);
    expect(await probe(s1.access_token)).toBe(40001);
    expect(await probe(p3.access_token)).toBe(0);
    expect(sim.state.stats().tokensIssued).toEqual({ stable: 1, plain: 3, forced: 1 });
  });

  it.each([
    ['bad grant_type', { grant_type: 'authorization_code', ...A }, 40002],
    ['missing appid', { grant_type: 'client_credential', secret: A.secret }, 41002],
    ['missing secret', { grant_type: 'client_credential', appid: A.appid }, 41004],
    ['unknown appid', { grant_type: 'client_credential', appid: 'wx0000000000000099', secret: 'x' }, 40013],
    ['wrong secret', { grant_type: 'client_credential', appid: A.appid, secret: 'nope' }, 40125],
  ])('%s -> %i', async (_name, params, errcode) => {
    expect((await plain(params)).errcode).toBe(errcode);
  });
});

describe('token check on business calls', () => {
  it('no access_token at all -> 41001 (access_token missing); a never-issued one -> 40014', async () => {
    const res = await fetch(`${sim.url}/wxa/charge/usage/get_recent_average`);
    expect(await res.json()).toEqual({ errcode: 41001, errmsg: errmsg('access_token missing') });
    expect((await (await fetch(`${sim.url}/wxa/charge/usage/get_recent_average?access_token=`)).json()).errcode).toBe(41001);
    const bogus = await fetch(`${sim.url}/wxa/charge/usage/get_recent_average?access_token=not-a-token`);
    expect(await bogus.json()).toEqual({ errcode: 40014, errmsg: errmsg('invalid access_token') });
  });

  it('tokens are long, varied and unguessable', async () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 30; i++) tokens.add((await plainFor(A)).access_token as string);
    expect(tokens.size).toBe(30);
    const lengths = new Set([...tokens].map((t) => t.length));
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]{100,150}$/);
    expect(lengths.size).toBeGreaterThan(1);
  });

  it('forgets every token on reset (40014)', async () => {
    const t = await stable(A);
    sim.state.reset();
    expect(await probe(t.access_token)).toBe(40014);
  });
});
