import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createLogger } from '../../src/log.js';
import { QuotaAlerts, type AlertThresholds, type QuotaAlertsOptions, type QuotaObservation } from '../../src/billing/alerts.js';

/** What the receiver does with each request, in order; 'ok' once the script runs out. */
type Behaviour = 'ok' | 'hang' | number;

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real webhook receiver on a loopback port. */
class Receiver {
  readonly requests: Received[] = [];
  script: Behaviour[] = [];
  private readonly server: Server;
  private readonly hung: ServerResponse[] = [];

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const b = this.script.shift() ?? 'ok';
        if (b === 'hang') return void this.hung.push(res);
        res.writeHead(b === 'ok' ? 204 : b).end();
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  reset(): void {
    this.requests.length = 0;
    this.script = [];
  }

  bodies(): Record<string, unknown>[] {
    return this.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>);
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

// The path and query stand in for a receiver's secret token: they must never reach a log line.
const SECRET_PATH = 's3cr3t-path';
const SECRET_QUERY = 't0ps3cr3t';
const THRESHOLDS: AlertThresholds = { unitsBelow: 100, daysBelow: 7 };
const T0 = Date.UTC(2025, 0, 15, 4, 0, 0);

const newAppid = () => `wx${randomBytes(8).toString('hex')}`;
// By default none of the units in effect is used, so only the configured thresholds and
// exhaustion decide (the default 20 % mark has a test of its own below).
const obs = (appid: string, remaining: number, daysLeft: number | null = 30, exempt = false, unitsInEffect = remaining): QuotaObservation => ({
  appid,
  remaining,
  unitsInEffect,
  daysLeft,
  exempt,
});

/** pino output into an array, one JSON line per entry. */
function logInto(lines: string[]) {
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return createLogger({ level: 'debug', destination });
}

describe.each(BACKENDS)('QuotaAlerts on $name', (backend) => {
  const receiver = new Receiver();
  let dir: string;
  let storeA: Store;
  let storeB: Store;
  let webhookUrl: string;
  let clock: number;
  let logs: string[];
  let made: QuotaAlerts[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-alerts-'));
    const url = backend.databaseUrl ?? `file:${join(dir, 'alerts.db')}`;
    // Two stores on one database stand for two gateway instances.
    storeA = await openStore(url);
    storeB = await openStore(url);
    await receiver.start();
    webhookUrl = `http://127.0.0.1:${receiver.port}/hooks/${SECRET_PATH}?token=${SECRET_QUERY}`;
  });
  afterAll(async () => {
    await receiver.stop();
    await storeA?.close();
    await storeB?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    receiver.reset();
    clock = T0;
    logs = [];
    made = [];
  });
  afterEach(async () => {
    await Promise.all(made.map((a) => a.flush()));
    const text = logs.join('');
    expect(text).not.toContain(SECRET_PATH);
    expect(text).not.toContain(SECRET_QUERY);
  });

  function make(over: Partial<QuotaAlertsOptions> = {}): { alerts: QuotaAlerts; registry: Registry } {
    const registry = new Registry();
    const alerts = new QuotaAlerts({
      db: storeA.db,
      thresholds: () => THRESHOLDS,
      webhookUrl,
      registry,
      // Every instance of a test logs into `logs`, checked for the URL in afterEach.
      log: logInto(logs),
      now: () => clock,
      webhookTimeoutMs: 1000,
      ...over,
    });
    made.push(alerts);
    return { alerts, registry };
  }

  const stateOf = (appid: string) =>
    storeA.db.selectFrom('quota_alerts').selectAll().where('appid', '=', appid).executeTakeFirst();

  it('ok is recorded silently; ok→low sends one quota.low; staying low sends nothing; low→ok recovers; low again sends again', async () => {
    const { alerts } = make();
    const appid = newAppid();

    expect(await alerts.observe(obs(appid, 500))).toEqual({ low: false, crossed: false });
    await alerts.flush();
    expect(receiver.requests).toHaveLength(0);
    expect(await stateOf(appid)).toMatchObject({ low: 0, changed_at: T0, notified_at: null });

    clock = T0 + 1000;
    expect(await alerts.observe(obs(appid, 99))).toEqual({ low: true, crossed: true });
    await alerts.flush();
    expect(receiver.bodies()).toEqual([
      {
        event: 'quota.low',
        appid,
        remaining: 99,
        unitsInEffect: 99,
        exhausted: false,
        daysLeft: 30,
        thresholds: { unitsBelow: 100, daysBelow: 7, percentOfUnitsInEffect: 20 },
        at: new Date(T0 + 1000).toISOString(),
      },
    ]);
    expect(receiver.requests[0]).toMatchObject({ method: 'POST', path: `/hooks/${SECRET_PATH}?token=${SECRET_QUERY}` });
    expect(receiver.requests[0]!.headers['content-type']).toBe('application/json');
    expect(await stateOf(appid)).toMatchObject({ low: 1, changed_at: T0 + 1000, notified_at: T0 + 1000 });

    // Still low, by units and then by days: no new crossing.
    for (const o of [obs(appid, 50), obs(appid, 5000, 3), obs(appid, 0, null)]) {
      expect(await alerts.observe(o)).toEqual({ low: true, crossed: false });
    }
    await alerts.flush();
    expect(receiver.requests).toHaveLength(1);

    clock = T0 + 2000;
    expect(await alerts.observe(obs(appid, 10_000))).toEqual({ low: false, crossed: true });
    await alerts.flush();
    expect(receiver.bodies()[1]).toMatchObject({ event: 'quota.recovered', appid, remaining: 10_000 });
    expect(await stateOf(appid)).toMatchObject({ low: 0, changed_at: T0 + 2000, notified_at: T0 + 2000 });

    clock = T0 + 3000;
    expect(await alerts.observe(obs(appid, 5, 1))).toEqual({ low: true, crossed: true });
    await alerts.flush();
    expect(receiver.bodies().map((b) => b.event)).toEqual(['quota.low', 'quota.recovered', 'quota.low']);
  });

  it('the first observation of an app that is already low is a crossing', async () => {
    const { alerts } = make();
    const appid = newAppid();
    expect(await alerts.observe(obs(appid, 3, null))).toEqual({ low: true, crossed: true });
    await alerts.flush();
    expect(receiver.bodies()).toMatchObject([{ event: 'quota.low', appid, remaining: 3, daysLeft: null }]);
  });

  it('two instances, 20 concurrent observes of one crossing: exactly one webhook each way', async () => {
    const a = make({ db: storeA.db }).alerts;
    const b = make({ db: storeB.db }).alerts;
    const appid = newAppid();
    await a.observe(obs(appid, 500));

    const lows = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).observe(obs(appid, 10))));
    expect(lows.every((r) => r.low)).toBe(true);
    expect(lows.filter((r) => r.crossed)).toHaveLength(1);
    await Promise.all([a.flush(), b.flush()]);
    expect(receiver.bodies().map((x) => x.event)).toEqual(['quota.low']);

    const oks = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? b : a).observe(obs(appid, 900))));
    expect(oks.filter((r) => r.crossed)).toHaveLength(1);
    await Promise.all([a.flush(), b.flush()]);
    expect(receiver.bodies().map((x) => x.event)).toEqual(['quota.low', 'quota.recovered']);
  });

  it('two instances racing on a never-seen app that is already low: exactly one webhook', async () => {
    const a = make({ db: storeA.db }).alerts;
    const b = make({ db: storeB.db }).alerts;
    const appid = newAppid();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).observe(obs(appid, 0))));
    expect(results.filter((r) => r.crossed)).toHaveLength(1);
    await Promise.all([a.flush(), b.flush()]);
    expect(receiver.requests).toHaveLength(1);
  });

  it('the body has exactly the documented keys and nothing the caller or config slipped in', async () => {
    const sneaky = { ...THRESHOLDS, secret: 'appsecret-xyz' } as AlertThresholds;
    const { alerts } = make({ thresholds: () => sneaky });
    const appid = newAppid();
    const o = { ...obs(appid, 1, 2), phoneNumber: '13912345678', openid: 'oABCDEFG-openid', code: 'code-123', accessToken: 'tok-abc' };
    await alerts.observe(o as QuotaObservation);
    await alerts.flush();
    expect(receiver.requests).toHaveLength(1);
    const raw = receiver.requests[0]!.body;
    const body = JSON.parse(raw) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['appid', 'at', 'daysLeft', 'event', 'exhausted', 'remaining', 'thresholds', 'unitsInEffect']);
    expect(Object.keys(body.thresholds as object).sort()).toEqual(['daysBelow', 'percentOfUnitsInEffect', 'unitsBelow']);
    for (const s of ['13912345678', 'oABCDEFG-openid', 'code-123', 'tok-abc', 'appsecret-xyz']) {
      expect(raw).not.toContain(s);
      expect(logs.join('')).not.toContain(s);
    }
  });

  it('a receiver answering 500 then 200: retried once and delivered', async () => {
    const { alerts } = make();
    const appid = newAppid();
    receiver.script = [500, 'ok'];
    await alerts.observe(obs(appid, 1));
    await alerts.flush();
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests[0]!.body).toBe(receiver.requests[1]!.body);
    expect((await stateOf(appid))?.notified_at).toBe(T0);
    const entries = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries.filter((l) => l.msg === 'quota alert webhook delivered')).toEqual([expect.objectContaining({ appid, status: 204, attempts: 2 })]);
    expect(entries.filter((l) => l.msg === 'quota alert webhook failed')).toEqual([]);
  });

  it('a receiver answering 500 twice: one retry only, failure logged with appid and status, never thrown', async () => {
    const { alerts } = make();
    const appid = newAppid();
    receiver.script = [503, 502, 'ok'];
    await expect(alerts.observe(obs(appid, 1))).resolves.toEqual({ low: true, crossed: true });
    await alerts.flush();
    expect(receiver.requests).toHaveLength(2);
    expect((await stateOf(appid))?.notified_at).toBeNull();
    const failed = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'quota alert webhook failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ appid, status: 502, webhookHost: `127.0.0.1:${receiver.port}` });
    // The crossing is spent: staying low does not resend.
    await alerts.observe(obs(appid, 1));
    await alerts.flush();
    expect(receiver.requests).toHaveLength(2);
  });

  it('a 4xx answer is not retried', async () => {
    const { alerts } = make();
    receiver.script = [400];
    await alerts.observe(obs(newAppid(), 1));
    await alerts.flush();
    expect(receiver.requests).toHaveLength(1);
    expect(logs.join('')).toContain('"status":400');
  });

  it('a receiver that hangs: observe resolves at once, each attempt times out, the failure is logged', async () => {
    const { alerts } = make({ webhookTimeoutMs: 250 });
    const appid = newAppid();
    receiver.script = ['hang', 'hang'];
    const t0 = performance.now();
    await expect(alerts.observe(obs(appid, 1))).resolves.toEqual({ low: true, crossed: true });
    expect(performance.now() - t0).toBeLessThan(200);
    await alerts.flush();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(2 * 250);
    expect(took).toBeLessThan(2000);
    expect(receiver.requests).toHaveLength(2);
    const failed = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'quota alert webhook failed');
    expect(failed).toEqual([expect.objectContaining({ appid, status: 'timeout' })]);
  });

  it('an unreachable receiver: network error logged by code, never thrown', async () => {
    const closed = new Receiver();
    await closed.start();
    const port = closed.port;
    await closed.stop();
    const { alerts } = make({ webhookUrl: `http://127.0.0.1:${port}/hooks/${SECRET_PATH}?token=${SECRET_QUERY}` });
    const appid = newAppid();
    await expect(alerts.observe(obs(appid, 1))).resolves.toMatchObject({ crossed: true });
    await alerts.flush();
    const failed = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'quota alert webhook failed');
    expect(failed).toEqual([expect.objectContaining({ appid, status: 'ECONNREFUSED' })]);
  });

  it('without a webhook URL: flag and state only, nothing sent', async () => {
    let calls = 0;
    const { alerts } = make({
      webhookUrl: undefined,
      fetch: (() => {
        calls++;
        throw new Error('must not be called');
      }) as typeof fetch,
    });
    const appid = newAppid();
    expect(await alerts.observe(obs(appid, 1))).toEqual({ low: true, crossed: true });
    await alerts.flush();
    expect(calls).toBe(0);
    expect(receiver.requests).toHaveLength(0);
    expect(await stateOf(appid)).toMatchObject({ low: 1, notified_at: null });
  });

  it('gauge: units left per appid; exempt apps have no series; a second instance on one registry shares it', async () => {
    const { alerts, registry } = make();
    const a1 = newAppid();
    const a2 = newAppid();
    await alerts.observe(obs(a1, 42));
    await alerts.observe(obs(a2, 7000));
    let text = await registry.getSingleMetricAsString('wxphone_quota_units_left');
    expect(text).toContain('# TYPE wxphone_quota_units_left gauge');
    expect(text).toContain(`wxphone_quota_units_left{appid="${a1}"} 42`);
    expect(text).toContain(`wxphone_quota_units_left{appid="${a2}"} 7000`);

    await alerts.observe(obs(a1, 41));
    await alerts.observe(obs(a2, 0, null, true));
    text = await registry.getSingleMetricAsString('wxphone_quota_units_left');
    expect(text).toContain(`wxphone_quota_units_left{appid="${a1}"} 41`);
    expect(text).not.toContain(a2);

    const again = new QuotaAlerts({ db: storeA.db, thresholds: () => undefined, registry, log: createLogger({ level: 'silent' }) });
    expect(again.gauge).toBe(alerts.gauge);
  });

  it('an exempt app is never low: becoming exempt while low is a recovery', async () => {
    const { alerts } = make();
    const appid = newAppid();
    await alerts.observe(obs(appid, 0));
    expect(await alerts.observe(obs(appid, 0, 0, true))).toEqual({ low: false, crossed: true });
    await alerts.flush();
    expect(receiver.bodies().map((b) => b.event)).toEqual(['quota.low', 'quota.recovered']);
  });

  it('with no thresholds configured, the default rule alerts: nothing left, and at or below 20 % of the units in effect', async () => {
    const { alerts } = make({ thresholds: () => undefined });
    const empty = newAppid();
    // 0 left (users get 1400001): low, and the webhook says it is exhausted.
    expect(await alerts.observe(obs(empty, 0, null, false, 1000))).toEqual({ low: true, crossed: true });
    const share = newAppid();
    expect(await alerts.observe(obs(share, 201, 30, false, 1000))).toEqual({ low: false, crossed: false });
    expect(await alerts.observe(obs(share, 200, 30, false, 1000))).toEqual({ low: true, crossed: true });
    await alerts.flush();
    expect(receiver.bodies()).toEqual([
      expect.objectContaining({ event: 'quota.low', appid: empty, remaining: 0, unitsInEffect: 1000, exhausted: true, thresholds: { unitsBelow: null, daysBelow: null, percentOfUnitsInEffect: 20 } }),
      expect.objectContaining({ event: 'quota.low', appid: share, remaining: 200, unitsInEffect: 1000, exhausted: false }),
    ]);
  });

  it('an invalid webhook URL is refused without quoting it', () => {
    expect(() => make({ webhookUrl: `not a url/${SECRET_PATH}` })).toThrow(/not a valid URL/);
    try {
      make({ webhookUrl: `ftp://127.0.0.1/${SECRET_PATH}` });
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain(SECRET_PATH);
    }
  });
});
