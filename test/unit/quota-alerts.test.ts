import { describe, expect, it } from 'vitest';
import { isLow, type AlertThresholds, type QuotaObservation } from '../../src/billing/alerts.js';

const obs = (remaining: number, daysLeft: number | null, exempt = false): QuotaObservation => ({
  appid: 'wxa1b2c3d4e5f60001',
  remaining,
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
    ['units: zero left', obs(0, null), units, true],
    ['days: below', obs(10_000, 6), days, true],
    ['days: exactly at the threshold is not below', obs(10_000, 7), days, false],
    ['days: fractional days below', obs(10_000, 6.5), days, true],
    ['days: null daysLeft (no usage to forecast) is never low by days', obs(0, null), days, false],
    ['both: units trip it', obs(50, 30), both, true],
    ['both: days trip it', obs(5_000, 2), both, true],
    ['both: neither', obs(5_000, 30), both, false],
    ['both: null daysLeft, units fine', obs(5_000, null), both, false],
    ['exempt: never low, even at zero units and zero days', obs(0, 0, true), both, false],
    ['no thresholds: never low', obs(0, 0), undefined, false],
    ['empty thresholds object: never low', obs(0, 0), {}, false],
  ])('%s', (_name, o, t, expected) => {
    expect(isLow(o, t)).toBe(expected);
  });
});
