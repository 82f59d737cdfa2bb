import type { SettlementHooks } from '../phone/service.js';
import type { BillingLedger } from './ledger.js';

/**
 * Records each phone code's charge in the transaction that settles its claim:
 * exchanged → confirmed (draws a unit); 40029 → unconfirmed (an expired code was
 * charged at the tap, a bogus one never was; reconciliation sorts them out).
 * Legacy login codes are not charged by WeChat, so they are not recorded.
 */
export function chargeHooks(ledger: BillingLedger): SettlementHooks {
  return {
    async disclosed(trx, c) {
      if (c.flow !== 'exchange') return;
      await ledger.recordCharge(trx, { codeHash: c.codeHash, appid: c.app.appid, status: 'confirmed', now: c.now });
    },
    async refused(trx, c) {
      if (c.flow !== 'exchange' || c.failure.code !== 'INVALID_CODE') return;
      await ledger.recordCharge(trx, { codeHash: c.codeHash, appid: c.app.appid, status: 'unconfirmed', now: c.now });
    },
  };
}
