import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  TRIAL_UNITS,
  chargeSource,
  choosePackToCharge,
  cstDate,
  cstDayNumber,
  cstMidnight,
  exemption,
  packEffectiveAt,
  packExpiresAt,
  packStatus,
  refundable,
  type BillingPack,
} from '../../src/billing/rules.js';

const cst = (isoLocal: string): number => Date.parse(`${isoLocal}+08:00`);

function pack(id: number, effectiveAt: number, expiresAt: number, all = 10, used = 0): BillingPack {
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
