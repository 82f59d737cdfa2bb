import { randomBytes } from 'node:crypto';
import Keyv from 'keyv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.js';
import { ClaimStore } from '../../src/phone/claims.js';
import { PhoneService } from '../../src/phone/exchange.js';
import { WatermarkMismatchError } from '../../src/phone/errors.js';
import { createDataKeys } from '../../src/crypto/keys.js';
import { AccessTokenProvider } from '../../src/wechat/index.js';
import type { Session } from '../../src/auth/index.js';
import { WechatApiError } from '../../src/wechat/index.js';
import type { PhoneInfo, WechatClient } from '../../src/wechat/index.js';
import type { AppConfig } from '../../src/config.js';
import { BillingLedger } from '../../src/billing/ledger.js';
import { ledgerStatements } from '../../src/store/ledger/index.js';
import { chargeHooks } from '../../src/billing/charge-hooks.js';
import type { ExchangeAudit, SettlementHooks } from '../../src/phone/ports.js';

const APPID = 'wx0000000000000001';
const app: AppConfig = { appid: APPID, secret: 's', product: 'quick', subjectType: 'enterprise', category: undefined, purposes: ['login'], lowQuota: undefined };
const session: Session = { subject: 'o_user', issuer: 'test', appid: APPID, scopes: new Set(['phone:exchange']), expiresAt: Date.now() + 60_000 };

// A stub adapter: this file tests the service's own decisions, not WeChat's.
function stubWechat(answer: () => Promise<PhoneInfo>) {
  const calls = { phone: 0 };
  const wechat = {
    getStableToken: async () => ({ accessToken: 'tok', expiresIn: 7200 }),
    getUserPhoneNumber: async () => {
      calls.phone += 1;
      return answer();
    },
  } as unknown as WechatClient;
  return { wechat, calls };
}

describe('PhoneService decisions', () => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore('file::memory:');
  });
  afterEach(() => store.close());

  function service(wechat: WechatClient, extra: { audit?: ExchangeAudit; withLedger?: boolean; hooks?: SettlementHooks; sendOpenid?: boolean } = {}) {
    const apps = new Map([[APPID, app]]);
    const tokens = new AccessTokenProvider({
      apps,
      fetchToken: () => wechat.getStableToken({ appid: APPID, secret: 's' }),
      cache: new Keyv(),
      lock: null,
      isTokenError: () => false,
    });
    const options = {
      apps,
      claims: new ClaimStore(store.db),
      keys: createDataKeys(randomBytes(32)),
      tokens,
      wechat,
      replayTtlMs: 60_000,
      leaseMs: 10_000,
      attemptDeadlineMs: 5_000,
      ...(extra.audit ? { audit: extra.audit } : {}),
      ...(extra.sendOpenid !== undefined ? { sendOpenid: extra.sendOpenid } : {}),
    };
    if (extra.withLedger) return new PhoneService({ ...options, hooks: chargeHooks(new BillingLedger(store.db, ledgerStatements(store.dialect), apps)) });
    return new PhoneService({ ...options, ...(extra.hooks ? { hooks: extra.hooks } : {}) });
  }

  describe('WeChat refusing the form of the request (47001, 41001): the code was never read', () => {
    const info = { phoneNumber: '13911112222', purePhoneNumber: '13911112222', countryCode: '86', watermark: { appid: APPID, timestamp: 1 } };
    // Real errmsg forms (see test/fixtures/wechat/getuserphonenumber): never matched on, only carried.
    const refusal = (errcode: number) =>
      new WechatApiError('getuserphonenumber', errcode, errcode === 47001 ? 'data format error hint: [A.iFN8ore-wKxRIa] rid: 61bb6300-1afe0d69-29186878' : 'access_token missing rid: 66739825-3646610c-1b890536');

    it.each([47001, 41001])('errcode %i is GATEWAY_MISCONFIGURED, and the same session may send the code again once fixed', async (errcode) => {
      let refuse = true;
      const { wechat, calls } = stubWechat(async () => {
        if (refuse) throw refusal(errcode);
        return info;
      });
      const phone = service(wechat);
      const code = `${errcode}`.padEnd(64, 'f');
      const err = await phone.exchange(session, { code, purpose: 'login' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'GATEWAY_MISCONFIGURED', retryable: false });
      expect((err as Error).message).toMatch(/operators/);
      expect((err as Error).message).toMatch(/not used/);
      refuse = false;
      await expect(phone.exchange(session, { code, purpose: 'login' })).resolves.toMatchObject({ purePhoneNumber: '13911112222', replayed: false });
      expect(calls.phone).toBe(2);
    });

    it('47001 names wechat.sendOpenid when it is on, and only then', async () => {
      const { wechat } = stubWechat(async () => {
        throw refusal(47001);
      });
      const on = await service(wechat, { sendOpenid: true }).exchange(session, { code: 'o'.repeat(64), purpose: 'login' }).catch((e: unknown) => e);
      expect((on as Error).message).toContain('wechat.sendOpenid');
      const off = await service(wechat, { sendOpenid: false }).exchange(session, { code: 'n'.repeat(64), purpose: 'login' }).catch((e: unknown) => e);
      expect(off).toMatchObject({ code: 'GATEWAY_MISCONFIGURED' });
      expect((off as Error).message).not.toContain('sendOpenid');
      expect((off as Error).message).toMatch(/malformed/);
    });
  });

  it("withholds a number whose watermark names another app, and answers retries from the record", async () => {
    const { wechat, calls } = stubWechat(async () => ({
      phoneNumber: '13911112222',
      purePhoneNumber: '13911112222',
      countryCode: '86',
      watermark: { appid: 'wx9999999999999999', timestamp: 1 },
    }));
    const phone = service(wechat);
    const err = await phone.exchange(session, { code: 'c'.repeat(64), purpose: 'login' }).catch((e) => e);
    expect(err).toBeInstanceOf(WatermarkMismatchError);
    expect(String(err.message)).not.toContain('13911112222');
    const again = await phone.exchange(session, { code: 'c'.repeat(64), purpose: 'login' }).catch((e) => e);
    expect(again).toBeInstanceOf(WatermarkMismatchError);
    expect(calls.phone).toBe(1);
  });

  it("hooks' reads made while WeChat answers reach the settlement; one that throws or rejects is ignored, not the exchange", async () => {
    const info = { phoneNumber: '1', purePhoneNumber: '1', countryCode: '86', watermark: { appid: APPID, timestamp: 1 } };
    const { wechat } = stubWechat(async () => info);
    const seen: unknown[] = [];
    const hook = (prepare: SettlementHooks['prepare']): SettlementHooks => ({ prepare, disclosed: async (_trx, c) => seen.push(c.prepared) });
    const hooks = [
      hook(async ({ app: a }) => `read for ${a.appid}`),
      hook(() => {
        throw new Error('sync bug');
      }),
      hook(() => Promise.reject(new Error('storage down'))),
      hook(undefined),
    ];
    // One settlement has one charge: each kind of read in an exchange of its own.
    for (const [i, hooked] of hooks.entries()) {
      const phone = service(wechat, { hooks: hooked });
      expect(await phone.exchange(session, { code: `${i}`.padEnd(64, 'p'), purpose: 'login' })).toMatchObject({ purePhoneNumber: '1', replayed: false });
    }
    expect(seen).toEqual([`read for ${APPID}`, undefined, undefined, undefined]);
  });

  it('an unexpected failure is surfaced masked and the claim is final: the code is never sent twice', async () => {
    let fail = true;
    const { wechat, calls } = stubWechat(async () => {
      if (fail) throw new TypeError('boom');
      return { phoneNumber: '1', purePhoneNumber: '1', countryCode: '86', watermark: { appid: APPID, timestamp: 1 } };
    });
    const phone = service(wechat);
    await expect(phone.exchange(session, { code: 'd'.repeat(64), purpose: 'login' })).rejects.toThrow('boom');
    fail = false;
    await expect(phone.exchange(session, { code: 'd'.repeat(64), purpose: 'login' })).rejects.toMatchObject({ code: 'OUTCOME_UNKNOWN', retryable: false });
    expect(calls.phone).toBe(1);
  });

  it('a disclosure whose consent record cannot be written is not made, and nothing is charged', async () => {
    const { wechat, calls } = stubWechat(async () => ({
      phoneNumber: '13911112222',
      purePhoneNumber: '13911112222',
      countryCode: '86',
      watermark: { appid: APPID, timestamp: Math.floor(Date.now() / 1000) },
    }));
    const recorded: string[] = [];
    const audit: ExchangeAudit = {
      consentWithdrawn: async () => false,
      record: async (e) => {
        recorded.push(e.outcome);
        if (e.outcome === 'disclosed') throw new Error('audit storage unavailable');
      },
    };
    const phone = service(wechat, { audit, withLedger: true });
    await expect(phone.exchange(session, { code: 'e'.repeat(64), purpose: 'login' })).rejects.toThrow('audit storage unavailable');
    expect(calls.phone).toBe(1);
    // The confirmed charge was rolled back with the disclosure: the code is only on record as
    // seen with an unknown outcome (unconfirmed, nothing drawn); the claim is final, never resent.
    const charges = await store.db.selectFrom('charges').select(['status', 'source']).execute();
    expect(charges).toEqual([{ status: 'unconfirmed', source: null }]);
    const trial = await store.db.selectFrom('app_trials').select('trial_used').where('appid', '=', APPID).executeTakeFirst();
    expect(trial?.trial_used ?? 0).toBe(0);
    const claim = await store.db.selectFrom('code_claims').select(['state', 'error_code', 'answer_sealed']).executeTakeFirstOrThrow();
    expect(claim).toEqual({ state: 'failed', error_code: 'OUTCOME_UNKNOWN', answer_sealed: null });
    await expect(phone.exchange(session, { code: 'e'.repeat(64), purpose: 'login' })).rejects.toMatchObject({ code: 'OUTCOME_UNKNOWN' });
    expect(calls.phone).toBe(1);
    expect(recorded).toEqual(['disclosed', 'refused', 'refused']);
  });
});
