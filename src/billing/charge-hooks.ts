import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import type { BillingLedger, DrawableAhead } from './ledger.js';

/**
 * Records each phone code's charge in the transaction that settles its claim:
 * exchanged → confirmed (draws a unit); 40029 or an unknown outcome → unconfirmed (an
 * expired code was charged at the tap, a bogus one never was; reconciliation sorts them out).
 * Legacy login codes are not charged by WeChat, so they are not recorded.
 */
/** How far from the exchange a watermark's tap time may be and still be taken as the tap time. */
export const TAP_PLAUSIBLE_MS = 3_600_000;

/** A claim's settlement, as its charge needs to know it (the exchange's settlement tells more). */
interface Settled {
  flow: 'exchange' | 'legacy';
  codeHash: string;
  app: { appid: string };
  now: number;
}

/** The charge as the exchange's settlement runs it; `prepare` reads the app's drawable packs while WeChat answers. */
export interface ChargeHooks {
  prepare(c: Pick<Settled, 'flow' | 'app'>): Promise<DrawableAhead | undefined> | undefined;
  disclosed(trx: Kysely<Database>, c: Settled & { info: { watermark: { timestamp: number } }; prepared: DrawableAhead | undefined }): Promise<void>;
  refused(trx: Kysely<Database>, c: Settled & { failure: { code: string } }): Promise<void>;
}

export function chargeHooks(ledger: BillingLedger): ChargeHooks {
  return {
    prepare(c) {
      return c.flow === 'exchange' ? ledger.drawableAhead(c.app.appid) : undefined;
    },
    async disclosed(trx, c) {
      if (c.flow !== 'exchange') return;
      const second = c.info.watermark.timestamp * 1000;
      // The watermark is WeChat's; distrust one that is absurd for a code that lives 5 minutes.
      const plausible = Number.isSafeInteger(second) && second > c.now - TAP_PLAUSIBLE_MS && second < c.now + TAP_PLAUSIBLE_MS;
      // Watermarks are whole seconds. Record the latest tap time the facts allow (inside that
      // second, and not after the exchange): a tap in the same second as a usage sync then
      // counts as after it, so estimatedRemaining errs low, never high.
      const tappedAt = plausible ? Math.min(c.now, second + 999) : null;
      await ledger.recordCharge(trx, { codeHash: c.codeHash, appid: c.app.appid, status: 'confirmed', now: c.now, tappedAt, drawable: c.prepared });
    },
    async refused(trx, c) {
      // 40029, a call whose outcome is unknown, a number withheld after a withdrawal: the code was
      // issued (so charged, or maybe) but no disclosure is confirmed here.
      const seen = ['INVALID_CODE', 'OUTCOME_UNKNOWN', 'CONSENT_WITHDRAWN'];
      if (c.flow !== 'exchange' || !seen.includes(c.failure.code)) return;
      await ledger.recordCharge(trx, { codeHash: c.codeHash, appid: c.app.appid, status: 'unconfirmed', now: c.now });
    },
  };
}
