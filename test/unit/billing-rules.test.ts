import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  LIST_PRICE_MILLI,
  USAGE_RATE_HALF_LIFE_MS,
  advanceUsageRate,
  dailyUsageRate,
  defaultLowQuota,
  isTrialRow,
  observedUse,
  startUsageRate,
  usageTotals,
  REFUND_WINDOW_MS,
  TRIAL_UNITS,
  chargeSource,
  choosePackToCharge,
  comparePacksForCharging,
  cstDate,
  cstDayNumber,
  cstMidnight,
  exemption,
  forecastExhaustion,
  formatYuan,
  packEffectiveAt,
  packExpiresAt,
  packStatus,
  planCharge,
  reconcile,
  refundDecision,
  refundable,
  type BillingPack,
  type Product,
} from '../../src/billing/rules.js';

const cst = (isoLocal: string): number => Date.parse(`${isoLocal}+08:00`);

function pack(id: number | string, effectiveAt: number, expiresAt: number, all = 10, used = 0): BillingPack {
  return { id, all, used, effectiveAt, expiresAt };
}

describe('pack dates (billing.md worked examples)', () => {
  it('Pack A: paid 2023-08-01, 365 days -> in effect 2023-08-28 00:00 CST, expired from 2024-08-27 00:00 CST', () => {
    const paidAt = cst('2023-08-01T10:30:00');
    const effectiveAt = packEffectiveAt(paidAt, '2023-08-28');
    expect(effectiveAt).toBe(cst('2023-08-28T00:00:00'));
    expect(new Date(effectiveAt).toISOString()).toBe('2023-08-27T16:00:00.000Z');
    const expiresAt = packExpiresAt(effectiveAt, 365);
    expect(expiresAt).toBe(cst('2024-08-27T00:00:00'));

    const a = pack(1, effectiveAt, expiresAt);
    expect(packStatus(a, cst('2023-08-27T23:59:59'))).toBe('NOT_YET_EFFECTIVE');
    expect(packStatus(a, cst('2023-08-28T00:00:00'))).toBe('IN_EFFECT');
    expect(packStatus(a, expiresAt - 1)).toBe('IN_EFFECT');
    expect(packStatus(a, cst('2024-08-27T00:00:00'))).toBe('EXPIRED');
  });

  it('Pack D: paid 2023-09-10 15:00 CST, 30 days -> in effect at once, expired from 2023-10-10 15:00 CST', () => {
    const paidAt = cst('2023-09-10T15:00:00');
    const effectiveAt = packEffectiveAt(paidAt, '2023-08-28');
    expect(effectiveAt).toBe(paidAt);
    expect(packExpiresAt(effectiveAt, 30)).toBe(cst('2023-10-10T15:00:00'));
  });

  it('uses the charging start date it is given, and the default when none is', () => {
    const paidAt = cst('2024-01-01T00:00:00');
    expect(packEffectiveAt(paidAt, '2025-08-04')).toBe(cst('2025-08-04T00:00:00'));
    expect(packEffectiveAt(paidAt)).toBe(paidAt);
    // Exactly at the start instant counts as "not before".
    expect(packEffectiveAt(cst('2023-08-28T00:00:00'))).toBe(cst('2023-08-28T00:00:00'));
  });

  it('refuses dates and validities that are not whole', () => {
    expect(() => cstMidnight('2023-02-30')).toThrow(RangeError);
    expect(() => cstMidnight('28/08/2023')).toThrow(RangeError);
    expect(() => packExpiresAt(0, 1.5)).toThrow(RangeError);
    expect(() => packExpiresAt(0, 0)).toThrow(RangeError);
    expect(() => packEffectiveAt(1.5, '2023-08-28')).toThrow(RangeError);
  });

  it('computes CST calendar days', () => {
    expect(cstDate(cst('2023-08-28T00:00:00'))).toBe('2023-08-28');
    expect(cstDate(cst('2023-08-27T23:59:59'))).toBe('2023-08-27');
    expect(cstDayNumber(cst('2023-08-28T23:59:59')) - cstDayNumber(cst('2023-08-28T00:00:00'))).toBe(0);
    expect(cstDayNumber(cst('2023-08-29T00:00:00')) - cstDayNumber(cst('2023-08-28T23:59:59'))).toBe(1);
  });
});

describe('pack status', () => {
  const now = cst('2024-05-01T12:00:00');
  it('tells used up from in effect, and expiry and refund win', () => {
    expect(packStatus(pack(1, now - DAY_MS, now + DAY_MS, 5, 4), now)).toBe('IN_EFFECT');
    expect(packStatus(pack(1, now - DAY_MS, now + DAY_MS, 5, 5), now)).toBe('USED_UP');
    expect(packStatus(pack(1, now - 2 * DAY_MS, now - DAY_MS, 5, 5), now)).toBe('EXPIRED');
    expect(packStatus({ ...pack(1, now - DAY_MS, now + DAY_MS), refundedAt: now - 1 }, now)).toBe('REFUNDED');
  });
});

describe('consumption order', () => {
  const now = cst('2024-05-01T12:00:00');

  it('B (10 days left) vs C (5 days left): C is drawn first', () => {
    const b = pack(1, now - DAY_MS, now + 10 * DAY_MS);
    const c = pack(2, now - DAY_MS, now + 5 * DAY_MS);
    expect(choosePackToCharge([b, c], now)?.id).toBe(2);
    expect(choosePackToCharge([c, b], now)?.id).toBe(2);
  });

  it('breaks ties by earlier start, then by pack id', () => {
    const end = now + 5 * DAY_MS;
    expect(choosePackToCharge([pack(1, now - DAY_MS, end), pack(2, now - 2 * DAY_MS, end)], now)?.id).toBe(2);
    expect(choosePackToCharge([pack(9, now - DAY_MS, end), pack(3, now - DAY_MS, end)], now)?.id).toBe(3);
    expect(choosePackToCharge([{ ...pack(0, now - DAY_MS, end), id: '10' }, { ...pack(0, now - DAY_MS, end), id: '9' }], now)?.id).toBe('9');
  });

  it('skips packs that are used up, not yet in effect, expired or refunded', () => {
    const live = pack(7, now - DAY_MS, now + 30 * DAY_MS);
    const packs = [
      pack(1, now - DAY_MS, now + DAY_MS, 3, 3),
      pack(2, now + 1, now + 2 * DAY_MS),
      pack(3, now - 2 * DAY_MS, now),
      { ...pack(4, now - DAY_MS, now + DAY_MS), refundedAt: now - 10 },
      live,
    ];
    expect(choosePackToCharge(packs, now)).toBe(live);
    expect(choosePackToCharge(packs.slice(0, 4), now)).toBeUndefined();
  });

  it('draws from the trial first, then packs, then refuses', () => {
    const p = pack(1, now - DAY_MS, now + DAY_MS);
    expect(TRIAL_UNITS).toBe(1000);
    expect(chargeSource(0, [p], now)).toEqual({ source: 'trial' });
    expect(chargeSource(999, [p], now)).toEqual({ source: 'trial' });
    expect(chargeSource(1000, [p], now)).toEqual({ source: 'pack', pack: p });
    expect(chargeSource(1000, [], now)).toBeNull();
  });
});

describe('exemption', () => {
  it.each([
    [{ subjectType: 'government' }, 'GOVERNMENT_OR_NON_PROFIT'],
    [{ subjectType: 'non-profit', category: '工具' }, 'GOVERNMENT_OR_NON_PROFIT'],
    [{ subjectType: '政府' }, 'GOVERNMENT_OR_NON_PROFIT'],
    [{ subjectType: 'public-institution', category: '政务民生' }, 'PUBLIC_INSTITUTION_GOV_SERVICES'],
    [{ subjectType: 'public-institution', category: 'gov-services' }, 'PUBLIC_INSTITUTION_GOV_SERVICES'],
    [{ subjectType: 'enterprise', category: '公立医疗机构' }, 'PUBLIC_MEDICAL_OR_EDUCATION'],
    [{ subjectType: 'enterprise', category: '医疗 > 公立医疗机构' }, 'PUBLIC_MEDICAL_OR_EDUCATION'],
    [{ subjectType: 'public-institution', category: 'public-medical' }, 'PUBLIC_MEDICAL_OR_EDUCATION'],
    [{ subjectType: 'enterprise', category: '学历教育（学校）' }, 'PUBLIC_MEDICAL_OR_EDUCATION'],
    [{ subjectType: 'individual', category: '学历教育(学校)' }, 'PUBLIC_MEDICAL_OR_EDUCATION'],
    [{ subjectType: 'other', category: 'academic-education' }, 'PUBLIC_MEDICAL_OR_EDUCATION'],
    // Several rules hold: the first in billing.md's order is named.
    [{ subjectType: 'government', category: '公立医疗机构' }, 'GOVERNMENT_OR_NON_PROFIT'],
  ] as const)('%j is exempt by %s', (subject, rule) => {
    expect(exemption(subject)).toEqual({ exempt: true, rule });
  });

  it.each([
    [{ subjectType: 'enterprise' }],
    [{ subjectType: 'enterprise', category: '政务民生' }], // rule 2 needs a public institution
    [{ subjectType: 'public-institution', category: '工具' }],
    [{ subjectType: 'public-institution' }],
    [{ subjectType: 'individual', category: '医疗服务' }],
    [{}],
  ] as const)('%j is charged', (subject) => {
    expect(exemption(subject)).toEqual({ exempt: false, rule: null });
  });
});

describe('refund rule (billing.md worked examples)', () => {
  const now = cst('2024-05-10T12:00:00');
  it('paid 6 days ago and unused: refundable', () => {
    expect(refundable({ paidAt: now - 6 * DAY_MS, used: 0 }, now)).toBe(true);
  });
  it('paid 6 days ago, 1 unit used: not refundable', () => {
    expect(refundable({ paidAt: now - 6 * DAY_MS, used: 1 }, now)).toBe(false);
  });
  it('paid 8 days ago and unused: not refundable', () => {
    expect(refundable({ paidAt: now - 8 * DAY_MS, used: 0 }, now)).toBe(false);
  });
  it('already refunded: not again', () => {
    expect(refundable({ paidAt: now - DAY_MS, used: 0, refundedAt: now - 1 }, now)).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// billing.md worked examples through planCharge / refundDecision, one test each.

type Plan = ReturnType<typeof planCharge<BillingPack>>;

/** What a draw costs at list price: exempt and trial draws are free; a pack draw spends prepaid quota. */
function costMilli(plan: Plan, product: Product): number {
  return plan.source === 'pack' ? LIST_PRICE_MILLI[product] : 0;
}

/** Runs `n` charges the way the simulator does, drawing one unit per planned source. */
function runCharges(app: { exempt: boolean; trialUsed: number; packs: BillingPack[] }, n: number, nowMs: number) {
  const plans: Plan[] = [];
  let milli = 0;
  for (let i = 0; i < n; i++) {
    const plan = planCharge({ exempt: app.exempt, trialUsed: app.trialUsed, packs: app.packs, nowMs });
    if (plan.source === 'trial') app.trialUsed++;
    if (plan.source === 'pack') plan.pack.used++;
    milli += costMilli(plan, 'quick');
    plans.push(plan);
  }
  return { plans, milli };
}

describe('billing.md worked examples', () => {
  const now = cst('2024-05-10T12:00:00');

  it('Pack A: paid 2023-08-01, 365 days -> in effect 2023-08-28 00:00 CST, expired from 2024-08-27 00:00 CST, drawn from only in between', () => {
    const effectiveAt = packEffectiveAt(cst('2023-08-01T00:00:00'));
    const a = pack('A', effectiveAt, packExpiresAt(effectiveAt, 365));
    expect(cstDate(a.effectiveAt)).toBe('2023-08-28');
    expect(a.expiresAt).toBe(cst('2024-08-27T00:00:00'));
    const at = (ms: number) => planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [a], nowMs: ms }).source;
    expect(at(cst('2023-08-27T23:59:59'))).toBe('none');
    expect(at(cst('2023-08-28T00:00:00'))).toBe('pack');
    expect(at(cst('2024-08-26T23:59:59'))).toBe('pack');
    expect(at(cst('2024-08-27T00:00:00'))).toBe('none');
  });

  it('Pack D: paid 2023-09-10 15:00 CST, 30 days -> drawn from at once, expired from 2023-10-10 15:00 CST', () => {
    const paidAt = cst('2023-09-10T15:00:00');
    const d = pack('D', packEffectiveAt(paidAt), packExpiresAt(packEffectiveAt(paidAt), 30));
    expect(d.expiresAt).toBe(cst('2023-10-10T15:00:00'));
    const at = (ms: number) => planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [d], nowMs: ms }).source;
    expect(at(paidAt - 1)).toBe('none');
    expect(at(paidAt)).toBe('pack');
    expect(at(d.expiresAt - 1)).toBe('pack');
    expect(at(d.expiresAt)).toBe('none');
  });

  it('Packs B (expires in 10 days) and C (in 5 days), trial spent: the next charge is drawn from C', () => {
    const b = pack('B', now - DAY_MS, now + 10 * DAY_MS);
    const c = pack('C', now - DAY_MS, now + 5 * DAY_MS);
    for (const packs of [[b, c], [c, b]]) {
      expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs, nowMs: now })).toEqual({ source: 'pack', pack: c });
    }
  });

  it('refund: paid 6 days ago, unused -> refundable', () => {
    expect(refundDecision({ paidAt: now - 6 * DAY_MS, used: 0 }, now)).toEqual({ refundable: true });
  });

  it('refund: paid 6 days ago, 1 unit used -> not refundable (PACK_USED)', () => {
    expect(refundDecision({ paidAt: now - 6 * DAY_MS, used: 1 }, now)).toEqual({ refundable: false, rule: 'PACK_USED' });
  });

  it('refund: paid 8 days ago, unused -> not refundable (REFUND_WINDOW_PASSED)', () => {
    expect(refundDecision({ paidAt: now - 8 * DAY_MS, used: 0 }, now)).toEqual({
      refundable: false,
      rule: 'REFUND_WINDOW_PASSED',
    });
  });

  it('a government app makes 5,000 exchanges -> 0 yuan, trial untouched', () => {
    const c = pack('C', now - DAY_MS, now + 5 * DAY_MS, 100);
    const app = { exempt: exemption({ subjectType: '政府' }).exempt, trialUsed: 0, packs: [c] };
    const { plans, milli } = runCharges(app, 5000, now);
    expect(plans.every((p) => p.source === 'exempt')).toBe(true);
    expect(formatYuan(milli)).toBe('0.000');
    expect(app.trialUsed).toBe(0);
    expect(c.used).toBe(0);
  });

  it('1,000 exchanges on a new app -> trial used up, 0 yuan; the 1,001st draws from the soonest-expiring pack', () => {
    const b = pack('B', now - DAY_MS, now + 10 * DAY_MS, 100);
    const c = pack('C', now - DAY_MS, now + 5 * DAY_MS, 100);
    const app = { exempt: false, trialUsed: 0, packs: [b, c] };
    const { plans, milli } = runCharges(app, 1000, now);
    expect(plans.every((p) => p.source === 'trial')).toBe(true);
    expect(app.trialUsed).toBe(TRIAL_UNITS);
    expect(formatYuan(milli)).toBe('0.000');
    expect([b.used, c.used]).toEqual([0, 0]);

    const next = runCharges(app, 1, now);
    expect(next.plans).toEqual([{ source: 'pack', pack: c }]);
    expect(c.used).toBe(1);
    expect(formatYuan(next.milli)).toBe('0.030');
  });

  it('1,000 exchanges on a new app with no pack -> the next tap is refused (none, errno 1400001)', () => {
    const app = { exempt: false, trialUsed: 0, packs: [] as BillingPack[] };
    runCharges(app, 1000, now);
    expect(app.trialUsed).toBe(TRIAL_UNITS);
    expect(planCharge({ ...app, nowMs: now })).toEqual({ source: 'none' });
  });
});

describe('planCharge', () => {
  const now = cst('2024-05-10T12:00:00');

  it('exempt wins over everything, even with trial and packs left', () => {
    expect(planCharge({ exempt: true, trialUsed: 0, packs: [pack(1, now - 1, now + 1)], nowMs: now })).toEqual({
      source: 'exempt',
    });
  });

  it('orders bought and assigned packs as one list: expiry, then start, then id', () => {
    const end = now + 3 * DAY_MS;
    const own = pack(12, now - DAY_MS, end);
    const assigned = { ...pack(0, now - 2 * DAY_MS, end), id: 'pk_assigned-7' };
    expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [own, assigned], nowMs: now })).toEqual({
      source: 'pack',
      pack: assigned,
    });
    // Same expiry and start: all-digit ids come first, in numeric order.
    const sameStart = { ...assigned, effectiveAt: own.effectiveAt };
    const nine = { ...own, id: '9' };
    for (const packs of [[own, sameStart, nine], [sameStart, nine, own], [nine, own, sameStart]]) {
      const plan = planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs, nowMs: now });
      expect(plan.source === 'pack' && plan.pack.id).toBe('9');
    }
  });

  it('orders ids as a total order (the mixed-id cycle 9 < 10 < 1a < 9 is gone)', () => {
    const at = (id: string | number) => ({ ...pack(0, now - 1, now + 1), id });
    const ids = ['9', '10', '1a', 10, 9, 'b', '010'];
    const sorted = ids.map(at).sort(comparePacksForCharging).map((p) => p.id);
    expect(sorted).toEqual(['9', 9, '10', 10, '010', '1a', 'b']);
  });

  it('a pack refunded at this very instant is no longer drawn from', () => {
    const p = { ...pack(1, now - DAY_MS, now + DAY_MS), refundedAt: now };
    expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [p], nowMs: now - 1 }).source).toBe('pack');
    expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [p], nowMs: now }).source).toBe('none');
  });

  it('returns the caller\'s own object, so the caller can draw from it', () => {
    const p = pack(1, now - 1, now + 1);
    const plan = planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [p], nowMs: now });
    expect(plan.source === 'pack' && plan.pack).toBe(p);
  });

  it('refuses corrupt trial counters rather than handing out free units', () => {
    for (const trialUsed of [-1, 1.5, Number.NaN]) {
      expect(() => planCharge({ exempt: false, trialUsed, packs: [], nowMs: now })).toThrow(RangeError);
    }
  });
});

describe('refundDecision', () => {
  const paidAt = cst('2024-05-01T09:00:00');

  it('the window is 7×24 h from payment, end excluded', () => {
    expect(refundDecision({ paidAt, used: 0 }, paidAt)).toEqual({ refundable: true });
    expect(refundDecision({ paidAt, used: 0 }, paidAt + REFUND_WINDOW_MS - 1)).toEqual({ refundable: true });
    expect(refundDecision({ paidAt, used: 0 }, paidAt + REFUND_WINDOW_MS)).toEqual({
      refundable: false,
      rule: 'REFUND_WINDOW_PASSED',
    });
  });

  it('a request already made (pending or granted) is named first', () => {
    const requested = { paidAt, used: 3, refundState: 'requested' as const };
    expect(refundDecision(requested, paidAt + 10 * DAY_MS)).toEqual({ refundable: false, rule: 'ALREADY_REQUESTED' });
    expect(refundDecision({ paidAt, used: 0, refundedAt: paidAt + 1 }, paidAt + 2)).toEqual({
      refundable: false,
      rule: 'ALREADY_REQUESTED',
    });
  });

  it('use is named before the window when both forbid', () => {
    expect(refundDecision({ paidAt, used: 1 }, paidAt + 8 * DAY_MS)).toEqual({ refundable: false, rule: 'PACK_USED' });
  });

  it('an instant before payment fails closed, and refundable() agrees with refundDecision()', () => {
    expect(refundDecision({ paidAt, used: 0 }, paidAt - 1)).toEqual({ refundable: false, rule: 'REFUND_WINDOW_PASSED' });
    expect(refundable({ paidAt, used: 0 }, paidAt - 1)).toBe(false);
    expect(refundable({ paidAt, used: 0 }, paidAt + DAY_MS)).toBe(true);
  });
});

describe('prices', () => {
  it('list prices: quick 0.03 yuan, real-time 0.04 yuan per successful call', () => {
    expect(LIST_PRICE_MILLI).toEqual({ quick: 30, realtime: 40 });
    expect(formatYuan(LIST_PRICE_MILLI.quick)).toBe('0.030');
    expect(formatYuan(LIST_PRICE_MILLI.realtime)).toBe('0.040');
  });

  it('formats exactly, with no floating point in between', () => {
    expect(formatYuan(0)).toBe('0.000');
    expect(formatYuan(1)).toBe('0.001');
    expect(formatYuan(1000)).toBe('1.000');
    expect(formatYuan(1_234_567)).toBe('1234.567');
    expect(formatYuan(-30)).toBe('-0.030');
    // 0.1 + 0.2 style drift cannot happen: 10,001 charges of 0.03 yuan.
    expect(formatYuan(10_001 * LIST_PRICE_MILLI.quick)).toBe('300.030');
    expect(formatYuan(Number.MAX_SAFE_INTEGER)).toBe('9007199254740.991');
  });

  it('refuses non-integers', () => {
    expect(() => formatYuan(0.5)).toThrow(RangeError);
    expect(() => formatYuan(Number.NaN)).toThrow(RangeError);
  });
});

describe('forecastExhaustion', () => {
  const now = cst('2024-05-10T12:00:00');

  it('a zero average never exhausts', () => {
    expect(forecastExhaustion({ remaining: 500, dailyAverage: 0, nowMs: now })).toEqual({
      daysLeft: null,
      exhaustionDate: null,
    });
  });

  it('nothing left: 0 days, today, at any rate (a zero rate does not make an empty quota last)', () => {
    for (const dailyAverage of [7, 0.5, 0]) {
      expect(forecastExhaustion({ remaining: 0, dailyAverage, nowMs: now })).toEqual({
        daysLeft: 0,
        exhaustionDate: '2024-05-10',
      });
    }
  });

  it('whole days left, rounded down', () => {
    expect(forecastExhaustion({ remaining: 100, dailyAverage: 30, nowMs: now })).toEqual({
      daysLeft: 3,
      exhaustionDate: '2024-05-13',
    });
    expect(forecastExhaustion({ remaining: 90, dailyAverage: 30, nowMs: now }).daysLeft).toBe(3);
    expect(forecastExhaustion({ remaining: 89, dailyAverage: 30, nowMs: now }).daysLeft).toBe(2);
  });

  it('non-integer averages: rounded to 0.001 unit/day, no binary noise', () => {
    expect(forecastExhaustion({ remaining: 11, dailyAverage: 1.1, nowMs: now }).daysLeft).toBe(10);
    expect(forecastExhaustion({ remaining: 10, dailyAverage: 2.5, nowMs: now }).daysLeft).toBe(4);
    expect(forecastExhaustion({ remaining: 1000, dailyAverage: 1000 / 7, nowMs: now }).daysLeft).toBe(7);
    // Rounding half up (2/3 -> 0.667/day) may move an exact boundary a day earlier: the safe side.
    expect(forecastExhaustion({ remaining: 2, dailyAverage: 2 / 3, nowMs: now }).daysLeft).toBe(2);
    // 0.0004/day counts as 0.001/day: tiny but not zero, so it still exhausts.
    expect(forecastExhaustion({ remaining: 1, dailyAverage: 0.0004, nowMs: now }).daysLeft).toBe(1000);
  });

  it('dates are CST calendar dates, not UTC ones', () => {
    // 07:00 CST on 2024-05-01 is still 2024-04-30 in UTC.
    const early = cst('2024-05-01T07:00:00');
    expect(forecastExhaustion({ remaining: 0, dailyAverage: 1, nowMs: early }).exhaustionDate).toBe('2024-05-01');
    const late = cst('2024-05-01T23:30:00');
    expect(forecastExhaustion({ remaining: 5, dailyAverage: 5, nowMs: late }).exhaustionDate).toBe('2024-05-02');
    // Across a year end and a leap day.
    expect(forecastExhaustion({ remaining: 60, dailyAverage: 1, nowMs: cst('2023-12-31T10:00:00') }).exhaustionDate).toBe(
      '2024-02-29',
    );
  });

  it('names no date past 9999-12-31 but still counts the days', () => {
    const far = forecastExhaustion({ remaining: 9_000_000, dailyAverage: 0.001, nowMs: now });
    expect(far).toEqual({ daysLeft: 9_000_000_000, exhaustionDate: null });
  });

  it('refuses inputs that are not counts and rates', () => {
    expect(() => forecastExhaustion({ remaining: -1, dailyAverage: 1, nowMs: now })).toThrow(RangeError);
    expect(() => forecastExhaustion({ remaining: 1.5, dailyAverage: 1, nowMs: now })).toThrow(RangeError);
    expect(() => forecastExhaustion({ remaining: 1, dailyAverage: -1, nowMs: now })).toThrow(RangeError);
    expect(() => forecastExhaustion({ remaining: 1, dailyAverage: Number.NaN, nowMs: now })).toThrow(RangeError);
    expect(() => forecastExhaustion({ remaining: 1, dailyAverage: Infinity, nowMs: now })).toThrow(RangeError);
  });
});

describe('reconcile', () => {
  it('every charge confirmed: all explained, nothing over', () => {
    expect(reconcile({ wechatCharged: 40, confirmed: 40, unconfirmed: 0, reportedSuccessUnseen: 0 })).toEqual({
      explained: 40,
      unexplained: 0,
      unconfirmedCharged: 0,
      overCounted: 0,
    });
  });

  it('every code confirmed, unconfirmed-but-expired or reported: zero unexplained', () => {
    // 30 exchanged, 4 expired before exchange (40029), 6 never brought but reported as successes.
    expect(reconcile({ wechatCharged: 40, confirmed: 30, unconfirmed: 4, reportedSuccessUnseen: 6 })).toEqual({
      explained: 40,
      unexplained: 0,
      unconfirmedCharged: 4,
      overCounted: 0,
    });
  });

  it('codes neither seen nor reported: the exact count is unexplained', () => {
    // 30 exchanged, 4 expired, 6 reported, 5 never brought and never reported.
    expect(reconcile({ wechatCharged: 45, confirmed: 30, unconfirmed: 4, reportedSuccessUnseen: 6 })).toEqual({
      explained: 40,
      unexplained: 5,
      unconfirmedCharged: 4,
      overCounted: 0,
    });
  });

  it('unconfirmed codes that were never charged (bogus) do not hide anything or inflate the explanation', () => {
    // WeChat charged exactly the 30 exchanged codes; 8 bogus codes got 40029.
    expect(reconcile({ wechatCharged: 30, confirmed: 30, unconfirmed: 8, reportedSuccessUnseen: 0 })).toEqual({
      explained: 30,
      unexplained: 0,
      unconfirmedCharged: 0,
      overCounted: 0,
    });
    // 3 of 8 had expired (charged): only those 3 count as charged; the other 5 are not claimed.
    expect(reconcile({ wechatCharged: 33, confirmed: 30, unconfirmed: 8, reportedSuccessUnseen: 0 }).unconfirmedCharged).toBe(3);
  });

  it('reports cannot explain more than WeChat charged', () => {
    expect(reconcile({ wechatCharged: 12, confirmed: 10, unconfirmed: 0, reportedSuccessUnseen: 50 })).toEqual({
      explained: 12,
      unexplained: 0,
      unconfirmedCharged: 0,
      overCounted: 0,
    });
  });

  it('more confirmed than WeChat grew (usage lag or exempt): over-counted is shown, not absorbed', () => {
    expect(reconcile({ wechatCharged: 7, confirmed: 10, unconfirmed: 3, reportedSuccessUnseen: 2 })).toEqual({
      explained: 10,
      unexplained: 0,
      unconfirmedCharged: 0,
      overCounted: 3,
    });
    expect(reconcile({ wechatCharged: 0, confirmed: 5, unconfirmed: 0, reportedSuccessUnseen: 0 }).overCounted).toBe(5);
  });

  it('refuses inputs that are not counts', () => {
    expect(() => reconcile({ wechatCharged: -1, confirmed: 0, unconfirmed: 0, reportedSuccessUnseen: 0 })).toThrow(RangeError);
    expect(() => reconcile({ wechatCharged: 1, confirmed: 0.5, unconfirmed: 0, reportedSuccessUnseen: 0 })).toThrow(RangeError);
  });
});

describe('usage rows (getUsageDetail)', () => {
  const trial = { pkgId: '', status: 1, all: 1000n, used: 1n, source: 1 };
  const pack = (pkgId: string, status: number, all: bigint, used: bigint, source = 2) => ({ pkgId, status, all, used, source });

  it("wechat-api.md §4a's example: the trial is the row with source 1 (pkgId \"\"), remaining sums the rows in effect", () => {
    const rows = [trial, pack('ZY2823973277692477440', 1, 10_000n, 0n)];
    expect(usageTotals(rows)).toEqual({ remaining: 10_999n, unitsInEffect: 11_000n, trial: { all: 1000n, used: 1n, remaining: 999n } });
  });

  it('a pack that expired with units unused counts for nothing (all − effectiveUse would be short by them)', () => {
    // WeChat: all "1020" (rows in effect), effectiveUse "1003" (cumulative): 17, where 20 are left.
    const rows = [{ ...trial, used: 1000n }, pack('ZYa', 3, 10n, 3n), pack('ZYb', 1, 20n, 0n)];
    expect(usageTotals(rows)).toMatchObject({ remaining: 20n, unitsInEffect: 1020n, trial: { remaining: 0n } });
  });

  it('packs not yet in effect, used-up packs and assigned packs (source 3)', () => {
    const rows = [trial, pack('ZYa', 2, 50n, 0n), pack('ZYb', 1, 5n, 5n), pack('ZYc', 1, 40n, 10n, 3)];
    expect(usageTotals(rows)).toMatchObject({ remaining: 999n + 30n, unitsInEffect: 1045n });
  });

  it('exact beyond 2^53', () => {
    const big = 2n ** 63n - 1n;
    expect(usageTotals([pack('ZYa', 1, big, 1n), pack('ZYb', 1, big, 0n)]).remaining).toBe(2n * big - 1n);
  });

  it('no trial row: trial null', () => {
    expect(usageTotals([pack('ZYa', 1, 4n, 0n)]).trial).toBeNull();
    expect(usageTotals([])).toEqual({ remaining: 0n, unitsInEffect: 0n, trial: null });
  });

  it('the trial is source 1; rows without a source (the official example) by their empty pkgId; never the string "trial"', () => {
    expect(isTrialRow({ pkgId: '', source: 1 })).toBe(true);
    expect(isTrialRow({ pkgId: 'ZY1', source: 1 })).toBe(true);
    expect(isTrialRow({ pkgId: '', source: 2 })).toBe(false);
    expect(isTrialRow({ pkgId: '' })).toBe(true);
    expect(isTrialRow({ pkgId: 'ZY2823973277692477440' })).toBe(false);
  });
});

describe('defaultLowQuota', () => {
  it("nothing left is exhausted and low; at or below 20 % of the units in effect is low (WeChat's first alert)", () => {
    expect(defaultLowQuota({ remaining: 0, unitsInEffect: 1000 })).toEqual({ exhausted: true, low: true });
    expect(defaultLowQuota({ remaining: 0, unitsInEffect: 0 })).toEqual({ exhausted: true, low: true });
    expect(defaultLowQuota({ remaining: 200, unitsInEffect: 1000 })).toEqual({ exhausted: false, low: true });
    expect(defaultLowQuota({ remaining: 201, unitsInEffect: 1000 })).toEqual({ exhausted: false, low: false });
    expect(defaultLowQuota({ remaining: 2, unitsInEffect: 10 })).toEqual({ exhausted: false, low: true });
    // Integers only: 20 % of 11,000 is 2,200 exactly.
    expect(defaultLowQuota({ remaining: 2200, unitsInEffect: 11_000 }).low).toBe(true);
    expect(defaultLowQuota({ remaining: 2201, unitsInEffect: 11_000 }).low).toBe(false);
  });

  it('refuses counts that are not whole non-negative numbers', () => {
    expect(() => defaultLowQuota({ remaining: -1, unitsInEffect: 10 })).toThrow(RangeError);
    expect(() => defaultLowQuota({ remaining: 1.5, unitsInEffect: 10 })).toThrow(RangeError);
  });
});

describe('the observed usage rate', () => {
  const t0 = cst('2024-05-10T00:00:00');

  it('a steady 10 a day reads 10 a day, however it is cut into spans', () => {
    let daily = startUsageRate(t0);
    for (let d = 1; d <= 30; d++) daily = advanceUsageRate(daily, t0 + d * DAY_MS, 10);
    expect(dailyUsageRate(daily)).toBeCloseTo(10, 9);
    let hourly = startUsageRate(t0);
    for (let h = 1; h <= 30 * 24; h++) hourly = advanceUsageRate(hourly, t0 + h * (DAY_MS / 24), 10 / 24);
    expect(dailyUsageRate(hourly)).toBeCloseTo(10, 9);
  });

  it('weighs recent days more: a week-old day counts half as much as today', () => {
    // 7 days of 0, then a day of 70, vs a day of 70 then 7 days of 0.
    let late = startUsageRate(t0);
    late = advanceUsageRate(late, t0 + 7 * DAY_MS, 0);
    late = advanceUsageRate(late, t0 + 8 * DAY_MS, 70);
    let early = startUsageRate(t0);
    early = advanceUsageRate(early, t0 + DAY_MS, 70);
    early = advanceUsageRate(early, t0 + 8 * DAY_MS, 0);
    expect(dailyUsageRate(late)).toBeGreaterThan(70 / 8);
    expect(dailyUsageRate(early)).toBeLessThan(70 / 8);
    // The two weights differ by exactly one half-life (7 days).
    expect(dailyUsageRate(late) / dailyUsageRate(early)).toBeCloseTo(2, 9);
    expect(USAGE_RATE_HALF_LIFE_MS).toBe(7 * DAY_MS);
  });

  it('nothing observed yet reads 0; units at an instant (no time) still count', () => {
    expect(dailyUsageRate(startUsageRate(t0))).toBe(0);
    const instant = advanceUsageRate(startUsageRate(t0), t0, 5);
    expect(dailyUsageRate(instant)).toBe(0);
    expect(dailyUsageRate(advanceUsageRate(instant, t0 + DAY_MS, 0))).toBeGreaterThan(0);
  });

  it('the seed: a week of confirmed charges spread evenly is their plain average', () => {
    const seeded = advanceUsageRate(startUsageRate(t0 - 7 * DAY_MS), t0, 140);
    expect(dailyUsageRate(seeded)).toBeCloseTo(20, 9);
  });

  it('refuses negative units and non-integer instants', () => {
    expect(() => advanceUsageRate(startUsageRate(t0), t0 + 1, -1)).toThrow(RangeError);
    expect(() => advanceUsageRate(startUsageRate(t0), t0 + 0.5, 1)).toThrow(RangeError);
  });

  it("observedUse: WeChat's growth, or the confirmed charges where WeChat lags; unseen is the growth beyond them", () => {
    expect(observedUse({ effectiveUseGrowth: 10n, confirmed: 4 })).toEqual({ units: 10, unseen: 6 });
    expect(observedUse({ effectiveUseGrowth: 3n, confirmed: 4 })).toEqual({ units: 4, unseen: 0 });
    expect(observedUse({ effectiveUseGrowth: -5n, confirmed: 0 })).toEqual({ units: 0, unseen: 0 });
  });
});
