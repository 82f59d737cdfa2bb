import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { GatewayClient } from '../../sdk/client.js';

const EXCHANGE_PATH = '/wxa/business/getuserphonenumber';
const IN_FLIGHT = 4;
const QUEUED = 20;
const BURST = 100;

/**
 * A burst far beyond what one process is allowed to run at once: the admission gate runs
 * IN_FLIGHT exchanges, queues QUEUED more and refuses the rest before their codes are claimed,
 * so nothing ends as OUTCOME_UNKNOWN for want of CPU and every refused code still works.
 */
describe.each(BACKENDS)('a burst beyond capacity ($name)', (backend) => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway({ backend, env: { EXCHANGE_MAX_IN_FLIGHT: String(IN_FLIGHT), EXCHANGE_MAX_QUEUED: String(QUEUED) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`${BURST} concurrent exchanges: the excess is refused as RATE_LIMITED with the code unspent, and succeeds on retry`, async () => {
    const phones = Array.from({ length: BURST }, () => nextPhone());
    const codes = await Promise.all(phones.map((p) => mintCode(t.sim, p)));
    const clients = await Promise.all(phones.map((_, i) => t.client(`o_burst_${i}`)));
    const callsBefore = (await t.sim.stats()).calls[EXCHANGE_PATH] ?? 0;
    // WeChat answers slowly, so the admitted exchanges hold their slots while the burst arrives.
    await t.sim.fault(EXCHANGE_PATH, { delayMs: 200, times: BURST });

    const burst = Promise.all(codes.map((code, i) => clients[i]!.ExchangePhoneCode({ input: { code, purpose: 'login' } }).then((r) => r.exchangePhoneCode)));
    // At capacity, bad input is still answered as bad input, at once: checks come before the gate.
    await new Promise((r) => setTimeout(r, 50));
    const malformed = (await clients[0]!.ExchangePhoneCode({ input: { code: 'not a code\u200b', purpose: 'login' } })).exchangePhoneCode;
    expect(malformed).toMatchObject({ code: 'INVALID_INPUT', retryable: false });
    const results = await burst;
    const verified = results.flatMap((r, i) => (r.__typename === 'PhoneNumberVerified' ? [i] : []));
    const refused = results.flatMap((r, i) => (r.__typename !== 'PhoneNumberVerified' && r.code === 'RATE_LIMITED' && r.retryable ? [i] : []));
    expect(verified.length + refused.length).toBe(BURST);
    // Requests arrive over some milliseconds while slots free up, so more than IN_FLIGHT + QUEUED may
    // get in; but a burst this size against 24 places must be cut.
    expect(refused.length).toBeGreaterThan(0);
    expect(verified.length).toBeGreaterThanOrEqual(IN_FLIGHT + QUEUED);
    for (const i of verified) expect(results[i]).toMatchObject({ phoneNumber: phones[i], replayed: false });
    // Refused codes never reached WeChat.
    expect(((await t.sim.stats()).calls[EXCHANGE_PATH] ?? 0) - callsBefore).toBe(verified.length);

    const metrics = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
    const refusedMetric = [...metrics.matchAll(/^wxphone_exchange_admission_refused_total\{reason="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(refusedMetric).toBe(refused.length);
    expect(metrics).toMatch(/^wxphone_exchanges_in_flight\{state="running"\} 0$/m);
    // A refusal at capacity processed nothing of the person: it is counted, not put in the consent chain.
    const audit = t.gateway.store.db.selectFrom('audit_records').select((eb) => eb.fn.countAll<number>().as('n'));
    expect(Number((await audit.where('error_code', '=', 'RATE_LIMITED').executeTakeFirstOrThrow()).n)).toBe(0);
    expect(Number((await audit.where('outcome', '=', 'disclosed').executeTakeFirstOrThrow()).n)).toBe(verified.length);

    // The refused clients retry, within capacity, and get their numbers: their codes were never claimed.
    for (let k = 0; k < refused.length; k += IN_FLIGHT) {
      const batch = refused.slice(k, k + IN_FLIGHT);
      const retried = await Promise.all(batch.map((i) => clients[i]!.ExchangePhoneCode({ input: { code: codes[i]!, purpose: 'login' } }).then((r) => r.exchangePhoneCode)));
      retried.forEach((r, j) => expect(r).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phones[batch[j]!], replayed: false }));
    }
    expect(((await t.sim.stats()).calls[EXCHANGE_PATH] ?? 0) - callsBefore).toBe(BURST);
  });
});

/**
 * A slot is for work that may reach WeChat. A duplicate that only waits for another attempt at
 * its code gives its slot back, so a retry storm (clients of a dead instance resending to the
 * live ones) cannot fill every slot with waiting; and a request turned away at capacity does not
 * use up its client's rate-limit allowance.
 */
describe.each(BACKENDS)('admission slots and rate-limit allowance ($name)', (backend) => {
  const running: TestGateway[] = [];
  afterAll(async () => {
    for (const g of running.reverse()) await g.close();
  });
  const start = async (env: Record<string, string>, peerOf?: TestGateway) => {
    const g = await startTestGateway({ backend, env, ...(peerOf ? { peerOf } : {}) });
    running.push(g);
    return g;
  };

  type Answer = Awaited<ReturnType<GatewayClient['ExchangePhoneCode']>>['exchangePhoneCode'];

  /**
   * The first exchange's WeChat call is held 800 ms; meanwhile a request that can only wait for
   * it is sent, then another user's exchange. With the waiter's slot given back, that one
   * answers first; the first and the waiter both get the number, the waiter as a replay.
   */
  async function otherRunsWhileWaiterWaits(sim: TestGateway['sim'], send: (code: string) => { first: () => Promise<Answer>; waiter: () => Promise<Answer> }, other: (code: string) => Promise<Answer>) {
    const [slowPhone, otherPhone] = [nextPhone(), nextPhone()];
    const [slow, otherCode] = [await mintCode(sim, slowPhone), await mintCode(sim, otherPhone)];
    await sim.fault(EXCHANGE_PATH, { delayMs: 800, times: 1 });
    const order: string[] = [];
    const tracked = (name: string, p: Promise<Answer>) => p.then((r) => (order.push(name), r));
    const { first, waiter } = send(slow);
    const firstDone = tracked('first', first());
    await new Promise((r) => setTimeout(r, 150));
    const waiterDone = tracked('waiter', waiter());
    await new Promise((r) => setTimeout(r, 150));
    const otherDone = tracked('other', other(otherCode));
    const [x, y, z] = await Promise.all([firstDone, waiterDone, otherDone]);
    expect(order[0]).toBe('other');
    expect(x).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: slowPhone, replayed: false });
    expect(y).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: slowPhone, replayed: true });
    expect(z).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: otherPhone });
  }

  const exchangeAs = async (g: TestGateway, sub: string, code: string) =>
    (await (await g.client(sub)).ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;

  it('a duplicate waiting for the same session\'s running exchange does not hold a slot', async () => {
    // Two slots: the first exchange holds one; the duplicate gives its own back, so another user's runs at once.
    const t = await start({ EXCHANGE_MAX_IN_FLIGHT: '2', EXCHANGE_MAX_QUEUED: '10' });
    await otherRunsWhileWaiterWaits(
      t.sim,
      (code) => ({ first: () => exchangeAs(t, 'o_slot_alice', code), waiter: () => exchangeAs(t, 'o_slot_alice', code) }),
      (code) => exchangeAs(t, 'o_slot_bob', code),
    );
  });

  it("a retry on another instance that waits for the first instance's attempt does not hold a slot there", async () => {
    // The same session resends to instance b: the claim is a's, in progress, so b's request waits
    // for it. b has one slot; the waiting retry gives it back, so another user's exchange runs at once.
    const a = await start({});
    const b = await start({ EXCHANGE_MAX_IN_FLIGHT: '1', EXCHANGE_MAX_QUEUED: '10' }, a);
    await otherRunsWhileWaiterWaits(
      a.sim,
      (code) => ({ first: () => exchangeAs(a, 'o_retry_carol', code), waiter: () => exchangeAs(b, 'o_retry_carol', code) }),
      (code) => exchangeAs(b, 'o_retry_dave', code),
    );
  });

  it('requests turned away at capacity are not counted against the session\'s rate limit', async () => {
    const t = await start({ EXCHANGE_MAX_IN_FLIGHT: '1', EXCHANGE_MAX_QUEUED: '0', RATE_LIMIT_SESSION: '3/60' });
    const phones = Array.from({ length: 7 }, () => nextPhone());
    const codes = await Promise.all(phones.map((p) => mintCode(t.sim, p)));
    const erin = await t.client('o_allowance_erin');
    const exchange = (i: number) => erin.ExchangePhoneCode({ input: { code: codes[i]!, purpose: 'login' } }).then((r) => r.exchangePhoneCode);
    await t.sim.fault(EXCHANGE_PATH, { delayMs: 1000, times: 1 });
    const slow = exchange(0);
    await new Promise((r) => setTimeout(r, 150));
    // The one slot is taken and nobody may queue: the client retries as told, and is refused at
    // capacity each time, four times, more than its limit of three would allow if they counted.
    for (const i of [1, 2, 3, 4]) {
      expect(await exchange(i)).toMatchObject({ code: 'RATE_LIMITED', retryable: true, message: expect.stringMatching(/at capacity/) });
    }
    expect(await slow).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phones[0] });
    // Counted: the slow one only. So the session has two more of its three, then its own limit.
    expect(await exchange(5)).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phones[5] });
    expect(await exchange(6)).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phones[6] });
    expect(await exchange(1)).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringMatching(/too many exchange requests from this session/) });
  });
});
