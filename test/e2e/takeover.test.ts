import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';
import { ClaimStore } from '../../src/phone/claims.js';
import { SANDBOX_APP } from '../../src/simulator/index.js';

/**
 * A retry after the instance that held a code's claim died mid-call (its lease ran out while the
 * claim was pending). The dead attempt is staged as what it leaves behind: a pending claim of the
 * same session whose lease has ended, and, if it got that far, the code used at WeChat. (Real
 * processes SIGKILLed under load: test/e2e/distributed.test.ts.)
 */
describe.each(BACKENDS)('a retry that takes over a dead attempt’s claim ($name)', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  type Result = { __typename: string; code?: string; message?: string; retryable?: boolean; phoneNumber?: string; replayed?: boolean };

  /** What a process that claimed `code` for `sub` a minute ago and then died leaves in the database. */
  async function deadAttempt(code: string, sub: string) {
    const keys = t.gateway.services.keys;
    const claimed = await new ClaimStore(t.gateway.store.db).claim({
      codeHash: keys.codeHash('phone', code),
      appid: APP,
      subjectHash: keys.subjectHash(t.config.jwt.issuer, sub),
      purpose: 'login',
      now: Date.now() - 60_000,
      leaseMs: 1_000,
    });
    expect(claimed).toMatchObject({ kind: 'owner', attempt: 1 });
  }

  /** The dead attempt's call, which WeChat answered (the answer was never recorded). */
  async function usedAtWechat(code: string) {
    const token = t.simulator.state.stableToken({ grant_type: 'client_credential', appid: APP, secret: SANDBOX_APP.secret }) as { access_token: string };
    const res = await fetch(`${t.simulator.url}/wxa/business/getuserphonenumber?access_token=${token.access_token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    expect(((await res.json()) as { errcode: number }).errcode).toBe(0);
  }

  const exchange = async (sub: string, code: string) => (await (await t.client(sub)).ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode as Result;

  it('the dead attempt had used the code: WeChat answers 40029, and the retry is told OUTCOME_UNKNOWN (ask the user to tap again), not that the code was bad', async () => {
    const code = await mintCode(t.sim);
    await deadAttempt(code, 'o_takeover_used');
    await usedAtWechat(code);
    const r = await exchange('o_takeover_used', code);
    expect(r).toMatchObject({ __typename: 'OutcomeUnknownError', code: 'OUTCOME_UNKNOWN', retryable: false });
    expect(r.message).toMatch(/earlier attempt .* may have used it.*tap again/);
    // Final: the next retry is answered from the claim, without WeChat.
    const calls = (await t.sim.stats()).calls['/wxa/business/getuserphonenumber'];
    expect(await exchange('o_takeover_used', code)).toMatchObject({ code: 'OUTCOME_UNKNOWN' });
    expect((await t.sim.stats()).calls['/wxa/business/getuserphonenumber']).toBe(calls);
    const codeHash = t.gateway.services.keys.codeHash('phone', code);
    const charge = await t.gateway.store.db.selectFrom('charges').select('status').where('code_hash', '=', codeHash).execute();
    expect(charge).toEqual([{ status: 'unconfirmed' }]);
  });

  it('the dead attempt never reached WeChat: the retry gets the number', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    await deadAttempt(code, 'o_takeover_unsent');
    expect(await exchange('o_takeover_unsent', code)).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone, replayed: false });
  });

  it('without an earlier attempt, a code WeChat rejects is still INVALID_CODE', async () => {
    const code = await mintCode(t.sim);
    await usedAtWechat(code);
    expect(await exchange('o_takeover_none', code)).toMatchObject({ __typename: 'InvalidCodeError', code: 'INVALID_CODE', retryable: false });
  });
});
