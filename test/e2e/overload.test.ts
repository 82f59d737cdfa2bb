import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';

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
