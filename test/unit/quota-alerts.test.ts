import { describe, expect, it } from 'vitest';
import { isLow, quotaFlags, type AlertThresholds, type QuotaObservation } from '../../src/billing/alerts.js';

// By default nothing of the units in effect is used, so the configured thresholds decide (the default mark is tested below).
const obs = (remaining: number, daysLeft: number | null, exempt = false, unitsInEffect = remaining): QuotaObservation => ({
  appid: 'wxa1b2c3d4e5f60001',
  remaining,
  unitsInEffect,
  daysLeft,
  exempt,
});

describe('isLow', () => {
  const units: AlertThresholds = { unitsBelow: 100 };
  const days: AlertThresholds = { daysBelow: 7 };
  const both: AlertThresholds = { unitsBelow: 100, daysBelow: 7 };

  it.each<[string, QuotaObservation, AlertThresholds | undefined, boolean]>([
    ['units: below', obs(99, null), units, true],
    ['units: exactly at the threshold is not below', obs(100, null), units, false],
    ['units: above', obs(101, 1), units, false],
    ['units: zero left', obs(0, null, false, 1000), units, true],
    ['days: below', obs(10_000, 6), days, true],
    ['days: exactly at the threshold is not below', obs(10_000, 7), days, false],
    ['days: fractional days below', obs(10_000, 6.5), days, true],
    ['days: null daysLeft (no usage to forecast) is never low by days', obs(5, null), days, false],
    ['both: units trip it', obs(50, 30), both, true],
    ['both: days trip it', obs(5_000, 2), both, true],
    ['both: neither', obs(5_000, 30), both, false],
    ['both: null daysLeft, units fine', obs(5_000, null), both, false],
    ['exempt: never low, even at zero units and zero days', obs(0, 0, true), both, false],
    ['no thresholds, plenty left: not low', obs(500_000, 10, false, 600_000), undefined, false],
    ['no thresholds, nothing left: low (exhausted)', obs(0, 0, false, 1000), undefined, true],
    ['empty thresholds object, nothing left: low (exhausted)', obs(0, 0, false, 1000), {}, true],
    ['no thresholds, 20 % of the units in effect left: low (WeChat alerts at 20 %)', obs(200, null, false, 1000), undefined, true],
    ['no thresholds, just above 20 %: not low', obs(201, null, false, 1000), undefined, false],
    ['thresholds apply on top of the default: above 20 % but below unitsBelow', obs(300, null, false, 1000), { unitsBelow: 500 }, true],
    ['thresholds never mask the default: at 20 % with a lower unitsBelow', obs(200, null, false, 1000), { unitsBelow: 10 }, true],
    ['exempt: never low with no thresholds either', obs(0, 0, true, 0), undefined, false],
  ])('%s', (_name, o, t, expected) => {
    expect(isLow(o, t)).toBe(expected);
  });
});

describe('quotaFlags', () => {
  it('exhausted means nothing left, whatever the thresholds; never for exempt apps', () => {
    expect(quotaFlags(obs(0, null, false, 1000), undefined)).toEqual({ low: true, exhausted: true });
    expect(quotaFlags(obs(1, null, false, 1000), undefined)).toEqual({ low: true, exhausted: false });
    expect(quotaFlags(obs(0, null, true, 1000), { unitsBelow: 5 })).toEqual({ low: false, exhausted: false });
    // No units in effect at all (no trial row, no pack): nothing left, so exhausted.
    expect(quotaFlags(obs(0, null, false, 0), undefined)).toEqual({ low: true, exhausted: true });
  });
});
