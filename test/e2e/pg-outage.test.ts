import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatewayClientError } from '../../sdk/client.js';
import { APP, isTransportError, startCluster, until, type Cluster } from '../support/processes.js';
import { PrivatePostgres, privatePostgresSupport, type StopMode } from '../support/private-postgres.js';

/**
 * PostgreSQL stopped and started again under load, with three real gateway processes using it:
 * no process may exit, every request gets an answer (a number, or a typed error saying what to
 * do), and once PostgreSQL is back every instance serves again without a restart of its own. No
 * code is charged twice and the audit chain verifies.
 *
 * The PostgreSQL is a cluster this file creates on a port of its own and drops at the end, so the
 * machine's shared one is never stopped; no DATABASE_URL needed. REDIS_URL is used when set.
 */

const support = privatePostgresSupport();
if ('unavailable' in support) console.warn(`[pg-outage] not run: ${support.unavailable}`);
const redisUrl = process.env.REDIS_URL || undefined;

const INSTANCES = 3;
/** Requests the load keeps in flight, spread evenly over the instances. */
const IN_FLIGHT = 24;
const SESSIONS = 6;
const REQUEST_TIMEOUT_MS = 30_000;
const DOWN_MS = 4000;
/** From PostgreSQL accepting connections again to every instance serving an exchange. */
const RECOVERY_BOUND_MS = 20_000;

/** A resend answered IN_PROGRESS waits out the gateway's duplicate wait (10 s) first: many run at once. */
const RESEND_CONCURRENCY = 32;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `f` over `items`, at most `n` at a time; results in order. */
async function inPool<T, R>(items: T[], n: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await f(items[i]!);
      }
    }),
  );
  return results;
}

/** The exchange's answer, loosely typed: the union grows (ServiceUnavailableError) without this file changing. */
type Result = { __typename: string; code?: string; retryable?: boolean; phoneNumber?: string; replayed?: boolean };

type Outcome =
  | { kind: 'number'; replayed: boolean; right: boolean }
  | { kind: 'typed'; typename: string; code: string; retryable: boolean }
  /** A GraphQL-level error (GatewayClientError): an HTTP answer without a typed result. */
  | { kind: 'graphql'; status: number; code: string | undefined; message: string }
  /** No HTTP answer at all: refused, reset, timed out. */
  | { kind: 'transport'; message: string };

interface Exchange {
  tag: 'load' | 'probe' | 'resend';
  instance: number;
  session: number;
  code: string;
  start: number;
  end: number;
  outcome?: Outcome;
}

function label(o: Outcome | undefined): string {
  if (!o) return 'unanswered';
  switch (o.kind) {
    case 'number':
      return `number${o.replayed ? '(replayed)' : ''}${o.right ? '' : '(WRONG NUMBER)'}`;
    case 'typed':
      return `${o.code}${o.retryable ? '(retryable)' : ''}`;
    case 'graphql':
      return `graphql ${o.status} ${o.code ?? '-'} "${o.message}"`;
    case 'transport':
      return `transport ${o.message}`;
  }
}

function countBy(list: Exchange[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const x of list) counts[label(x.outcome)] = (counts[label(x.outcome)] ?? 0) + 1;
  return counts;
}

/** "ECONNREFUSED" (no process listening), "UND_ERR_SOCKET" (closed mid-request), "TimeoutError"… */
function transportCause(e: Error): string {
  const cause = e.cause as { code?: string } | undefined;
  return cause?.code ?? e.name;
}

const isMasked = (o: Outcome | undefined) => o?.kind === 'graphql' && (o.code === 'INTERNAL_SERVER_ERROR' || o.message === 'Unexpected error.');
const isUnavailable = (o: Outcome | undefined, retryable?: boolean) =>
  o?.kind === 'typed' && o.typename === 'ServiceUnavailableError' && o.code === 'SERVICE_UNAVAILABLE' && (retryable === undefined || o.retryable === retryable);

/** Every exchange of one test, recorded as it is sent and answered. */
class Traffic {
  readonly all: Exchange[] = [];
  readonly inFlight = new Set<Exchange>();
  private phones = 0;
  private readonly clients: ReturnType<Cluster['client']>[][];

  constructor(
    private readonly cluster: Cluster,
    tokens: string[],
  ) {
    this.clients = tokens.map((jwt) => cluster.processes.map((_, i) => cluster.client(i, jwt, { timeoutMs: REQUEST_TIMEOUT_MS })));
  }

  /** A fresh code (a distinct number each) unless `code` is given. An answer or a transport failure is an outcome; anything else (a bug here) throws. */
  async exchange(tag: Exchange['tag'], instance: number, session: number, code?: string): Promise<Exchange> {
    const phone = code ? undefined : `139${String(++this.phones).padStart(8, '0')}`;
    const x: Exchange = { tag, instance, session, code: code ?? this.cluster.mint(phone!), start: Date.now(), end: 0 };
    this.all.push(x);
    this.inFlight.add(x);
    try {
      const r = (await this.clients[session]![instance]!.ExchangePhoneCode({ input: { code: x.code, purpose: 'login' } })).exchangePhoneCode as Result;
      x.outcome =
        r.__typename === 'PhoneNumberVerified'
          ? { kind: 'number', replayed: r.replayed === true, right: phone === undefined || r.phoneNumber === phone }
          : { kind: 'typed', typename: r.__typename, code: r.code ?? '?', retryable: r.retryable === true };
    } catch (e) {
      if (e instanceof GatewayClientError) x.outcome = { kind: 'graphql', status: e.status, code: e.code, message: e.message };
      else if (isTransportError(e)) x.outcome = { kind: 'transport', message: transportCause(e as Error) };
      else throw e;
    } finally {
      x.end = Date.now();
      this.inFlight.delete(x);
    }
    return x;
  }

  /** Requests alive at any moment of [from, to]. */
  overlapping(from: number, to: number): Exchange[] {
    return this.all.filter((x) => x.start <= to && (x.end === 0 || x.end >= from));
  }
}

/** Workers, each sending one exchange after another on its instance and session, until stopped. */
function startLoad(traffic: Traffic) {
  let running = true;
  const workers = Array.from({ length: IN_FLIGHT }, async (_, w) => {
    const instance = w % INSTANCES;
    const session = Math.floor(w / INSTANCES) % SESSIONS;
    while (running) {
      const x = await traffic.exchange('load', instance, session);
      // Clients back off after a refusal; without it an outage turns into a busy loop.
      if (x.outcome?.kind !== 'number') await sleep(200 + Math.random() * 100);
    }
  });
  return {
    async stop() {
      running = false;
      // Bounded: each request ends within REQUEST_TIMEOUT_MS.
      await Promise.all(workers);
    },
  };
}

describe.skipIf('unavailable' in support)('PostgreSQL stopped and started under load, three gateway processes (a private cluster)', () => {
  let postgres: PrivatePostgres | undefined;
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    postgres = await PrivatePostgres.create((support as { version: string }).version);
  }, 60_000);
  // Before the next test stops PostgreSQL: the cluster's own query connection must be closed by then.
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  }, 30_000);
  afterAll(async () => {
    await postgres?.destroy();
  }, 60_000);

  it.each(['fast', 'immediate'] as const)(
    'stop -m %s: no process exits, every request is answered, every instance serves again, nothing charged twice',
    async (mode: StopMode) => {
      const pg = postgres!;
      const c = await startCluster({
        instances: INSTANCES,
        databaseUrl: pg.url,
        redisUrl,
        // Every minted code draws a unit on the simulator, and the load mints thousands.
        packUnits: 200_000,
      });
      cluster = c;
      const pids = c.processes.map((p) => p.pid);
      const exits: string[] = [];
      let stopAt = 0;
      c.processes.forEach(
        (p) =>
          void p.whenExited().then((e) => {
            const when = stopAt ? `${Date.now() - stopAt} ms after the stop` : 'before the stop';
            exits.push(`${p.name} ${when} (code ${e.code}, signal ${e.signal})`);
          }),
      );

      // Session SESSIONS is the probes' own.
      const tokens = await Promise.all(Array.from({ length: SESSIONS + 1 }, (_, s) => c.token(`o_outage_${mode}_${s}`)));
      const traffic = new Traffic(c, tokens);
      const numbers = () => traffic.all.filter((x) => x.outcome?.kind === 'number');

      const load = startLoad(traffic);
      let stoppedAt = 0;
      let upAt = 0;
      let wasDown = false;
      let numbersBeforeStop = 0;
      let inFlightAtStop: number[] = [];
      const servedAt: (number | undefined)[] = [];
      const recoveryFailures: string[] = [];
      try {
        // Steady state first: every instance has answered numbers for a while.
        const loadFrom = Date.now();
        await until(
          () => Date.now() - loadFrom >= 1500 && c.processes.every((_, i) => numbers().filter((x) => x.instance === i).length >= 20),
          'the load to get numbers from every instance',
          20_000,
        );
        numbersBeforeStop = numbers().length;

        inFlightAtStop = c.processes.map((_, i) => [...traffic.inFlight].filter((x) => x.instance === i).length);
        stopAt = Date.now();
        await pg.stop(mode);
        stoppedAt = Date.now();
        await sleep(DOWN_MS);
        wasDown = !(await pg.isUp());
        await pg.start();
        upAt = Date.now();

        // Each instance, polled on its own: /ready says 200, then a fresh code gets its number.
        const probes = await Promise.allSettled(
          c.processes.map(async (p, i) => {
            await until(
              async () => {
                if (!p.alive) throw new Error(`${p.name} exited`);
                if ((await p.ready(2000).catch(() => undefined))?.status !== 200) return false;
                return (await traffic.exchange('probe', i, SESSIONS)).outcome?.kind === 'number';
              },
              `${p.name} to serve again`,
              RECOVERY_BOUND_MS,
              250,
            );
            servedAt[i] = Date.now();
          }),
        );
        for (const r of probes) if (r.status === 'rejected') recoveryFailures.push((r.reason as Error).message);
        // The load keeps going a moment on the recovered instances.
        await sleep(1000);
      } finally {
        await load.stop();
        // A failure between stop and start must not leave the next test without a database.
        if (stopAt && !upAt) await pg.start().catch(() => {});
      }

      // Codes the gateway said were untouched (SERVICE_UNAVAILABLE, retryable): each sent once
      // more by the same session on the same instance, now that PostgreSQL is back.
      const unspent = traffic.all.filter((x) => x.tag !== 'resend' && isUnavailable(x.outcome, true));
      const resendFrom = Date.now();
      const resends = await inPool(unspent, RESEND_CONCURRENCY, async (x) => {
        // At capacity the gateway refuses before touching the code; a client resends that.
        for (let attempt = 0; ; attempt++) {
          const r = await traffic.exchange('resend', x.instance, x.session, x.code);
          if (!(r.outcome?.kind === 'typed' && r.outcome.code === 'RATE_LIMITED') || attempt >= 20) return r;
          await sleep(200);
        }
      });

      const allServed = servedAt.length === INSTANCES && servedAt.every((t) => t !== undefined);
      const outage = traffic.overlapping(stopAt, upAt);
      const summary = {
        mode,
        requests: traffic.all.length,
        inFlightAtStop: inFlightAtStop.reduce((a, b) => a + b, 0),
        inFlightAtStopPerInstance: inFlightAtStop,
        numbersBeforeStop,
        answers: countBy(traffic.all.filter((x) => x.tag !== 'resend')),
        answersDuringOutage: countBy(outage),
        resends: countBy(resends),
        secondsResending: (Date.now() - resendFrom) / 1000,
        alive: c.processes.filter((p) => p.alive).length,
        samePid: c.processes.filter((p, i) => p.alive && p.pid === pids[i]).length,
        exits,
        unhandledErrorEvents: c.processes.filter((p) => p.logs.includes("Unhandled 'error' event")).map((p) => p.name),
        secondsDown: (upAt - stopAt) / 1000,
        secondsToServe: allServed ? Math.max(...(servedAt as number[]).map((t) => t - upAt)) / 1000 : null,
        recoveryFailures,
      };
      console.log(`[pg-outage] ${JSON.stringify(summary)}`);
      const problems = () => c.problems(30).join('\n');

      expect(wasDown, 'PostgreSQL was down').toBe(true);
      // No process exited or crashed on the outage, and none was restarted.
      expect.soft(exits, problems()).toEqual([]);
      expect.soft(summary.unhandledErrorEvents).toEqual([]);
      expect.soft(c.processes.map((p) => p.pid)).toEqual(pids);

      // Every request got an HTTP answer, none of them masked, each one a number or a typed error
      // a client can act on.
      const everything = traffic.all;
      expect.soft(countBy(everything.filter((x) => x.outcome?.kind === 'transport'))).toEqual({});
      expect.soft(countBy(everything.filter((x) => isMasked(x.outcome)))).toEqual({});
      const expected = (x: Exchange) =>
        (x.outcome?.kind === 'number' && x.outcome.right) ||
        isUnavailable(x.outcome) ||
        (x.outcome?.kind === 'typed' && ['RATE_LIMITED', 'IN_PROGRESS', 'OUTCOME_UNKNOWN'].includes(x.outcome.code));
      expect.soft(countBy(everything.filter((x) => !expected(x)))).toEqual({});
      // The outage was seen, and said so: clients are told the storage is unavailable.
      expect.soft(outage.filter((x) => isUnavailable(x.outcome)).length, JSON.stringify(summary.answersDuringOutage)).toBeGreaterThan(0);

      // Every instance serves again, within the bound, as the same process.
      expect(recoveryFailures).toEqual([]);
      expect(allServed).toBe(true);

      // An untouched code, sent again, gets its number. Also acceptable, never masked:
      // IN_PROGRESS — the claim its first attempt took could not be released with PostgreSQL
      // gone, and its lease is not over yet; OUTCOME_UNKNOWN — that lease is over and the claim's
      // attempt left no outcome, so the gateway cannot know it was never sent, and never sends a
      // code twice. A resend answered RATE_LIMITED twenty times in a row counts as a failure here.
      expect(resends).toHaveLength(unspent.length);
      const resentBadly = resends.filter(
        (x) => !((x.outcome?.kind === 'number' && x.outcome.right) || (x.outcome?.kind === 'typed' && ['IN_PROGRESS', 'OUTCOME_UNKNOWN'].includes(x.outcome.code))),
      );
      expect(countBy(resentBadly)).toEqual({});

      // No code charged twice (code_hash is the charge's key, so this is the schema's promise too).
      expect(await c.query(`select code_hash, count(*) from charges group by code_hash having count(*) > 1`)).toEqual([]);
      const confirmed = await c.count('charges', `status = 'confirmed'`);
      const numbered = new Set(traffic.all.filter((x) => x.outcome?.kind === 'number').map((x) => x.code)).size;
      // A code's last answer: its resend's if it had one.
      const last = new Map<string, Exchange>();
      for (const x of traffic.all) last.set(x.code, x);
      const spentWithoutNumber = [...last.values()].filter(
        (x) => isUnavailable(x.outcome, false) || (x.outcome?.kind === 'typed' && ['OUTCOME_UNKNOWN', 'IN_PROGRESS'].includes(x.outcome.code)),
      );
      const inFlightAtStopSpent = spentWithoutNumber.filter((x) => x.start <= stoppedAt && x.end >= stopAt);
      // Every number given was charged, once. A charge without a number can only be a settlement
      // that committed as PostgreSQL went away, before the gateway read the commit's
      // acknowledgement: a request in flight while it stopped, answered as spent. Otherwise equal.
      expect(confirmed).toBeGreaterThanOrEqual(numbered);
      expect(confirmed - numbered).toBeLessThanOrEqual(inFlightAtStopSpent.length);
      // WeChat exchanged every charged code, and beyond those only codes whose settlement could
      // not be written: answered as spent (SERVICE_UNAVAILABLE not retryable, OUTCOME_UNKNOWN) or
      // still IN_PROGRESS on the resend.
      const exchangedAtWechat = c.simulator.state.stats().codesExchanged;
      console.log(`[pg-outage] ${mode}: ${exchangedAtWechat} codes exchanged at WeChat, ${confirmed} confirmed charges, ${numbered} codes answered with a number, ${spentWithoutNumber.length} spent without one`);
      expect(exchangedAtWechat).toBeGreaterThanOrEqual(confirmed);
      expect(exchangedAtWechat - confirmed).toBeLessThanOrEqual(spentWithoutNumber.length);

      // The chain the three processes appended to, through the outage, verifies.
      const auditor = c.client(0, await c.token('o_outage_auditor', ['audit:read']), { timeoutMs: REQUEST_TIMEOUT_MS });
      expect((await auditor.VerifyAuditChain({ appid: APP })).verifyAuditChain).toMatchObject({ ok: true, firstBrokenId: null });

      expect(c.leaks()).toEqual([]);
    },
    90_000,
  );
});
