import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  TRIAL_UNITS,
  advanceUsageRate,
  comparePacksForCharging,
  dailyUsageRate,
  defaultLowQuota,
  planCharge,
  reconcile,
  startUsageRate,
  usageTotals,
  type BillingPack,
  type UsageRate,
} from '../../src/billing/rules.js';

/**
 * Properties of the billing rules, checked with a fixed seed so a failure
 * reproduces on every machine. The oracles below restate billing.md in the
 * plainest terms rather than calling the functions under test.
 */
const SEED = 20_230_828;
const RUNS = { seed: SEED, numRuns: 400 };

const T0 = Date.parse('2024-05-10T00:00:00+08:00');
const HOUR_MS = DAY_MS / 24;

// Pack dates on a coarse grid (half days within ±2 days) so that ties in expiry
// and in start come up often; "now" on an hourly grid over the same span, often
// a millisecond either side, so it falls exactly on pack boundaries, just
// before and just after them, and between them.
const packDate = fc.integer({ min: -4, max: 4 }).map((k) => T0 + k * 12 * HOUR_MS);
const instant = fc
  .tuple(fc.oneof(packDate, fc.integer({ min: -48, max: 48 }).map((h) => T0 + h * HOUR_MS)), fc.constantFrom(0, 0, -1, 1))
  .map(([at, ms]) => at + ms);

// Ids as the gateway will pass them: pkgIds (numbers or their strings, with
// and without leading zeros) mixed with the mirror's own ids that are not numbers.
const packId: fc.Arbitrary<number | string> = fc.oneof(
  fc.nat({ max: 30 }),
  fc.nat({ max: 120 }).map(String),
  fc.constantFrom('010', '9', '10', '1a', 'alloc-1', 'alloc-10', 'b', ''),
  fc.string({ maxLength: 3 }),
);

const billingPack: fc.Arbitrary<BillingPack> = fc
  .record({
    id: packId,
    all: fc.nat({ max: 5 }),
    usedShare: fc.nat({ max: 5 }),
    effectiveAt: packDate,
    // Independent of effectiveAt: an expiry at or before the start is a pack never in effect.
    expiresAt: packDate,
    refundedAt: fc.option(instant, { nil: null }),
  })
  .map(({ usedShare, ...p }) => ({ ...p, used: Math.min(usedShare, p.all) }));

const packs = fc.array(billingPack, { maxLength: 8 });

/** billing.md: a pack can pay when it is in effect (started, not expired, not refunded) and has units left. */
function canPay(p: BillingPack, now: number): boolean {
  const refunded = p.refundedAt != null && p.refundedAt <= now;
  return !refunded && p.effectiveAt <= now && now < p.expiresAt && p.used < p.all;
}

/** Id order as documented: all-digit ids first, by length then digits (numeric order); then the rest as strings. */
function idBefore(a: number | string, b: number | string): boolean {
  const [sa, sb] = [String(a), String(b)];
  const [da, db] = [/^\d+$/.test(sa), /^\d+$/.test(sb)];
  if (da !== db) return da;
  if (da && sa.length !== sb.length) return sa.length < sb.length;
  return sa < sb;
}

/** billing.md: soonest expiry first, ties by earlier start, then by id. */
function drawnBefore(a: BillingPack, b: BillingPack): boolean {
  if (a.expiresAt !== b.expiresAt) return a.expiresAt < b.expiresAt;
  if (a.effectiveAt !== b.effectiveAt) return a.effectiveAt < b.effectiveAt;
  return idBefore(a.id, b.id);
}

/** Copies, because the simulations draw from packs and fast-check replays generated values while shrinking. */
const copy = (list: readonly BillingPack[]): BillingPack[] => list.map((p) => ({ ...p }));

describe('ORDER: the pack planCharge draws from', () => {
  it('is in effect with units left, and no other such pack is drawn before it; none left -> none', () => {
    fc.assert(
      fc.property(packs, instant, (list, now) => {
        const plan = planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: list, nowMs: now });
        const payers = list.filter((p) => canPay(p, now));
        if (payers.length === 0) {
          expect(plan).toEqual({ source: 'none' });
          return;
        }
        expect(plan.source).toBe('pack');
        if (plan.source !== 'pack') return;
        expect(list).toContain(plan.pack);
        expect(canPay(plan.pack, now)).toBe(true);
        for (const other of payers) expect(drawnBefore(other, plan.pack)).toBe(false);
      }),
      RUNS,
    );
  });

  it('does not depend on the order the packs are listed in', () => {
    fc.assert(
      fc.property(packs, instant, (list, now) => {
        const forward = planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: list, nowMs: now });
        const backward = planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [...list].reverse(), nowMs: now });
        expect(backward.source).toBe(forward.source);
        if (forward.source === 'pack' && backward.source === 'pack') {
          // Equal ids and dates may tie; the two picks are then interchangeable.
          expect(comparePacksForCharging(forward.pack, backward.pack)).toBe(0);
        }
      }),
      RUNS,
    );
  });

  it('comes from a total order: antisymmetric and transitive over any ids', () => {
    const sign = (n: number) => (n > 0 ? 1 : n < 0 ? -1 : 0);
    // Dates from a two-value grid, so that the id decides often.
    // Ids that broke transitivity in an earlier version ('9' < '10' < '1a' < '9'), and any others.
    const trickyId = fc.constantFrom<number | string>(9, 10, '9', '10', '010', '1a', 'a', '', 'alloc-2');
    const tied = fc.record({
      id: fc.oneof(trickyId, packId),
      all: fc.constant(1),
      used: fc.constant(0),
      effectiveAt: fc.constantFrom(T0, T0 + HOUR_MS),
      expiresAt: fc.constantFrom(T0 + DAY_MS, T0 + 2 * DAY_MS),
    });
    fc.assert(
      fc.property(tied, tied, tied, (a, b, c) => {
        expect(sign(comparePacksForCharging(a, b)) + sign(comparePacksForCharging(b, a))).toBe(0);
        if (comparePacksForCharging(a, b) <= 0 && comparePacksForCharging(b, c) <= 0) {
          expect(comparePacksForCharging(a, c)).toBeLessThanOrEqual(0);
        }
      }),
      { ...RUNS, numRuns: 1000 },
    );
  });

  it('puts exemption before the trial and the trial before any pack', () => {
    fc.assert(
      fc.property(packs, instant, fc.integer({ min: 0, max: TRIAL_UNITS + 50 }), (list, now, trialUsed) => {
        expect(planCharge({ exempt: true, trialUsed, packs: list, nowMs: now })).toEqual({ source: 'exempt' });
        const plan = planCharge({ exempt: false, trialUsed, packs: list, nowMs: now });
        if (trialUsed < TRIAL_UNITS) expect(plan).toEqual({ source: 'trial' });
        else expect(plan.source).not.toBe('trial');
      }),
      RUNS,
    );
  });
});

// Trial counters near the end of the trial, so that N charges cross into packs and beyond.
const trialUsed = fc.oneof(fc.integer({ min: TRIAL_UNITS - 10, max: TRIAL_UNITS }), fc.nat({ max: TRIAL_UNITS }));

/** Charges one unit the way the simulator and gateway do; returns where it came from. */
function drawOne(app: { trialUsed: number; packs: BillingPack[] }, now: number) {
  const plan = planCharge({ exempt: false, trialUsed: app.trialUsed, packs: app.packs, nowMs: now });
  if (plan.source === 'trial') app.trialUsed++;
  if (plan.source === 'pack') plan.pack.used++;
  return plan;
}

describe('NEVER BELOW ZERO: drawing N charges', () => {
  it('never overdraws, and succeeds exactly min(N, trial left + units left in packs in effect) times', () => {
    fc.assert(
      fc.property(packs, instant, trialUsed, fc.nat({ max: 50 }), (list, now, trial, n) => {
        const app = { trialUsed: trial, packs: copy(list) };
        const available =
          TRIAL_UNITS - trial + list.filter((p) => canPay(p, now)).reduce((sum, p) => sum + (p.all - p.used), 0);
        let successes = 0;
        let refused = false;
        for (let i = 0; i < n; i++) {
          const plan = drawOne(app, now);
          if (plan.source === 'none') refused = true;
          else {
            // Once refused, nothing can pay again at the same instant.
            expect(refused).toBe(false);
            successes++;
          }
          expect(app.trialUsed).toBeLessThanOrEqual(TRIAL_UNITS);
          for (const p of app.packs) expect(p.used).toBeLessThanOrEqual(p.all);
        }
        expect(successes).toBe(Math.min(n, available));
        // Packs that could not pay were never touched.
        app.packs.forEach((p, i) => {
          if (!canPay(list[i]!, now)) expect(p.used).toBe(list[i]!.used);
        });
      }),
      RUNS,
    );
  });

  it('never overdraws as time moves on, and draws only from packs in effect at that instant', () => {
    const times = fc.array(fc.nat({ max: 6 * HOUR_MS }), { maxLength: 40 }).map((steps) => {
      let t = T0 - 48 * HOUR_MS;
      return steps.map((s) => (t += s));
    });
    fc.assert(
      fc.property(packs, trialUsed, times, (list, trial, instants) => {
        const app = { trialUsed: trial, packs: copy(list) };
        for (const now of instants) {
          const before = app.packs.map((p) => ({ ...p }));
          const plan = drawOne(app, now);
          if (plan.source === 'pack') expect(canPay(before[app.packs.indexOf(plan.pack)]!, now)).toBe(true);
          expect(app.trialUsed).toBeLessThanOrEqual(TRIAL_UNITS);
          for (const p of app.packs) expect(p.used).toBeLessThanOrEqual(p.all);
        }
      }),
      RUNS,
    );
  });

  it('an exempt app draws nothing, however many charges', () => {
    fc.assert(
      fc.property(packs, instant, trialUsed, fc.nat({ max: 50 }), (list, now, trial, n) => {
        const app = { trialUsed: trial, packs: copy(list) };
        for (let i = 0; i < n; i++) {
          expect(planCharge({ exempt: true, trialUsed: app.trialUsed, packs: app.packs, nowMs: now })).toEqual({
            source: 'exempt',
          });
        }
        expect(app).toEqual({ trialUsed: trial, packs: list });
      }),
      RUNS,
    );
  });
});

describe('reconcile', () => {
  // Mostly small counts, where the min/max branches cross; sometimes large ones.
  const count = fc.oneof(fc.nat({ max: 20 }), fc.nat({ max: 1_000_000 }));
  const input = fc.record({ wechatCharged: count, confirmed: count, unconfirmed: count, reportedSuccessUnseen: count });

  /*
   * Invariants proved for every input:
   *  - every output is a non-negative integer (unexplained is never negative);
   *  - balance: explained + unexplained − overCounted = wechatCharged;
   *  - explained ≤ max(wechatCharged, confirmed): beyond what WeChat charged, only
   *    codes the gateway itself confirmed are counted (and then shown as overCounted);
   *  - explained ≤ confirmed + unconfirmed + reportedSuccessUnseen: every explained
   *    charge has a code or a report behind it; unconfirmedCharged ≤ unconfirmed and
   *    ≤ WeChat's growth beyond the confirmed codes;
   *  - unexplained = max(0, wechatCharged − confirmed − unconfirmed − reportedSuccessUnseen);
   *  - overCounted > 0 leaves nothing unexplained and no unconfirmed code counted as charged.
   */
  it('keeps its invariants for any counts', () => {
    fc.assert(
      fc.property(input, (i) => {
        const r = reconcile(i);
        for (const v of Object.values(r)) {
          expect(Number.isSafeInteger(v)).toBe(true);
          expect(v).toBeGreaterThanOrEqual(0);
        }
        expect(r.explained + r.unexplained - r.overCounted).toBe(i.wechatCharged);
        expect(r.explained).toBeLessThanOrEqual(Math.max(i.wechatCharged, i.confirmed));
        expect(r.explained).toBeLessThanOrEqual(i.confirmed + i.unconfirmed + i.reportedSuccessUnseen);
        expect(r.unconfirmedCharged).toBeLessThanOrEqual(i.unconfirmed);
        expect(r.unconfirmedCharged).toBeLessThanOrEqual(Math.max(0, i.wechatCharged - i.confirmed));
        expect(r.unexplained).toBe(
          Math.max(0, i.wechatCharged - i.confirmed - i.unconfirmed - i.reportedSuccessUnseen),
        );
        expect(r.overCounted).toBe(Math.max(0, i.confirmed - i.wechatCharged));
        if (r.overCounted > 0) expect([r.unexplained, r.unconfirmedCharged]).toEqual([0, 0]);
      }),
      RUNS,
    );
  });

  it('more evidence never leaves more unexplained', () => {
    fc.assert(
      fc.property(input, fc.constantFrom('unconfirmed', 'reportedSuccessUnseen', 'confirmed'), (i, field) => {
        const more = { ...i, [field]: i[field] + 1 };
        expect(reconcile(more).unexplained).toBeLessThanOrEqual(reconcile(i).unexplained);
      }),
      RUNS,
    );
  });

  /*
   * A model of one period: each code's fate decides what the gateway sees and
   * what WeChat charges. Unexplained is then exactly the codes nobody brought or
   * reported when no 40029 code was bogus; with bogus codes it can only be lower
   * (they get the benefit of the doubt), never higher.
   */
  it('matches a model of code fates: exact without bogus codes, a lower bound with them', () => {
    const fates = fc.record({
      exchanged: fc.nat({ max: 30 }),
      expired: fc.nat({ max: 30 }),
      bogus: fc.nat({ max: 30 }),
      unseenReported: fc.nat({ max: 30 }),
      unseenUnreported: fc.nat({ max: 30 }),
    });
    fc.assert(
      fc.property(fates, (f) => {
        const r = reconcile({
          wechatCharged: f.exchanged + f.expired + f.unseenReported + f.unseenUnreported,
          confirmed: f.exchanged,
          unconfirmed: f.expired + f.bogus,
          reportedSuccessUnseen: f.unseenReported,
        });
        expect(r.overCounted).toBe(0);
        expect(r.unexplained).toBeLessThanOrEqual(f.unseenUnreported);
        if (f.bogus === 0) {
          expect(r.unexplained).toBe(f.unseenUnreported);
          expect(r.unconfirmedCharged).toBe(f.expired);
        }
      }),
      RUNS,
    );
  });
});

describe('USAGE ROWS: what an app can still draw', () => {
  // Counts around 2^53 and 2^64 as well as small ones: the sums must stay exact.
  const count = fc.oneof(fc.bigInt({ min: 0n, max: 50n }), fc.bigInt({ min: 2n ** 53n - 3n, max: 2n ** 53n + 3n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
  const row = fc.record({
    pkgId: fc.oneof(fc.constant(''), fc.nat({ max: 99 }).map((n) => `ZY28239732776924774${String(n).padStart(2, '0')}`)),
    status: fc.constantFrom(1, 1, 2, 3, 4),
    all: count,
    used: count,
    source: fc.option(fc.constantFrom(1, 2, 3, 4, 5), { nil: undefined }),
  });
  const rows = fc.array(row, { maxLength: 12 });

  it('remaining is the sum of (all − used, never below 0) over the rows in effect (status 1), whatever their order', () => {
    fc.assert(
      fc.property(rows, (list) => {
        let oracle = 0n;
        for (const r of list) if (r.status === 1 && r.all > r.used) oracle += r.all - r.used;
        const t = usageTotals(list);
        expect(t.remaining).toBe(oracle);
        expect(usageTotals([...list].reverse())).toEqual(t);
        expect(t.remaining <= t.unitsInEffect).toBe(true);
      }),
      RUNS,
    );
  });

  it("never less than WeChat's `all − effectiveUse`, and more exactly by the units used in rows no longer in effect", () => {
    fc.assert(
      fc.property(rows, (list) => {
        // Rows as WeChat's own ledger would have them: never more used than bought.
        const sane = list.map((r) => ({ ...r, used: r.used > r.all ? r.all : r.used }));
        const all = sane.filter((r) => r.status === 1).reduce((n, r) => n + r.all, 0n); // WeChat's top-level `all`
        const effectiveUse = sane.reduce((n, r) => n + r.used, 0n); // cumulative, expired packs included
        const usedOutOfEffect = sane.filter((r) => r.status !== 1).reduce((n, r) => n + r.used, 0n);
        expect(usageTotals(sane).remaining).toBe(all - effectiveUse + usedOutOfEffect);
      }),
      RUNS,
    );
  });

  it('the default low mark: low exactly when nothing is left or at most 20 % of the units in effect is, and only more so with less left', () => {
    const pair = fc.tuple(fc.nat({ max: 100_000 }), fc.nat({ max: 100_000 })).map(([a, b]) => ({ remaining: Math.min(a, b), unitsInEffect: Math.max(a, b) }));
    fc.assert(
      fc.property(pair, fc.nat({ max: 100_000 }), ({ remaining, unitsInEffect }, less) => {
        const d = defaultLowQuota({ remaining, unitsInEffect });
        expect(d.exhausted).toBe(remaining === 0);
        expect(d.low).toBe(remaining === 0 || remaining * 5 <= unitsInEffect);
        if (d.low) expect(defaultLowQuota({ remaining: Math.max(0, remaining - less), unitsInEffect }).low).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('RATE: the observed usage rate the forecast runs on', () => {
  const T = Date.parse('2024-05-10T00:00:00+08:00');
  // Spans from a minute to 20 days, with their use; every span starts where the last one ended.
  const span = fc.record({ ms: fc.integer({ min: 60_000, max: 20 * DAY_MS }), units: fc.nat({ max: 5000 }) });
  const spans = fc.array(span, { minLength: 1, maxLength: 15 });
  const fold = (list: readonly { ms: number; units: number }[], from = T): UsageRate => {
    let state = startUsageRate(from);
    let at = from;
    for (const s of list) {
      at += s.ms;
      state = advanceUsageRate(state, at, s.units);
    }
    return state;
  };
  const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(a), Math.abs(b)));

  it('a steady rate reads as that rate, whatever the spans', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 60_000, max: 20 * DAY_MS }), { minLength: 1, maxLength: 15 }), fc.integer({ min: 0, max: 100_000 }), (lengths, perDay) => {
        close(dailyUsageRate(fold(lengths.map((ms) => ({ ms, units: (perDay * ms) / DAY_MS })))), perDay);
      }),
      RUNS,
    );
  });

  it("is a weighted mean of the spans' own rates: never below the lowest, never above the highest", () => {
    fc.assert(
      fc.property(spans, (list) => {
        const rates = list.map((s) => (s.units / s.ms) * DAY_MS);
        const r = dailyUsageRate(fold(list));
        expect(r).toBeGreaterThanOrEqual(Math.min(...rates) * (1 - 1e-9));
        expect(r).toBeLessThanOrEqual(Math.max(...rates) * (1 + 1e-9));
      }),
      RUNS,
    );
  });

  it('cutting a span in two, its use shared by length, changes nothing', () => {
    fc.assert(
      fc.property(spans, fc.nat({ max: 14 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (list, which, at) => {
        const i = which % list.length;
        const s = list[i]!;
        const first = Math.max(1, Math.round(s.ms * at));
        if (first >= s.ms) return;
        const cut = [...list.slice(0, i), { ms: first, units: (s.units * first) / s.ms }, { ms: s.ms - first, units: (s.units * (s.ms - first)) / s.ms }, ...list.slice(i + 1)];
        const [a, b] = [fold(list), fold(cut)];
        expect(b.at).toBe(a.at);
        close(b.weightedMs, a.weightedMs);
        close(b.weightedUnits, a.weightedUnits);
      }),
      RUNS,
    );
  });

  it('more use in the latest span never lowers it, and the same use later never weighs less than earlier', () => {
    fc.assert(
      fc.property(spans, fc.integer({ min: 1, max: 5000 }), (list, extra) => {
        const more = list.map((s, i) => (i === list.length - 1 ? { ...s, units: s.units + extra } : s));
        expect(dailyUsageRate(fold(more))).toBeGreaterThan(dailyUsageRate(fold(list)));
        // Moving the extra use from the first span to the last (equal lengths) raises the rate.
        const even = list.map((s) => ({ ...s, ms: DAY_MS }));
        const early = even.map((s, i) => (i === 0 ? { ...s, units: s.units + extra } : s));
        const late = even.map((s, i) => (i === even.length - 1 ? { ...s, units: s.units + extra } : s));
        expect(dailyUsageRate(fold(late))).toBeGreaterThanOrEqual(dailyUsageRate(fold(early)) * (1 - 1e-12));
      }),
      RUNS,
    );
  });
});
