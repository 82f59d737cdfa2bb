import { describe, expect, it } from 'vitest';
import {
  ASSIGNMENT_CANCEL_WINDOW_MS,
  DAY_MS,
  INT64_MAX,
  TRIAL_UNITS,
  assignedPackPeriod,
  assignmentCancelDecision,
  assignmentResultStep,
  cstMidnight,
  formatYuanExact,
  isRequestId,
  orderUnitsLeft,
  parseInt64Amount,
  planCharge,
  type AssignmentState,
} from '../../src/billing/rules.js';
import { assignmentResultFromEvent } from '../../src/billing/procurement.js';

const NOW = Date.parse('2026-06-01T04:00:00Z');

describe('requestId (package/assign: 10 to 64 characters)', () => {
  it('takes 10 to 64 printable characters, nothing shorter, longer, blank or beyond ASCII', () => {
    expect(isRequestId('1687254272930')).toBe(true); // the official example
    expect(isRequestId('2023072515031000')).toBe(true); // a forum capture
    expect(isRequestId('a'.repeat(10))).toBe(true);
    expect(isRequestId('a'.repeat(64))).toBe(true);
    expect(isRequestId('a'.repeat(9))).toBe(false);
    expect(isRequestId('a'.repeat(65))).toBe(false);
    expect(isRequestId('req 000000001')).toBe(false);
    expect(isRequestId('请求编号请求编号请求编号')).toBe(false);
    expect(isRequestId('')).toBe(false);
  });
});

describe('cancelling an assignment (within 7 days of it, and only if unused)', () => {
  const assigned = (daysAgo: number, used = 0) => ({ state: 'assigned' as const, assignedAt: NOW - daysAgo * DAY_MS, used });

  it('assigned 6 days ago and unused: cancellable; 1 unit used: no; 8 days ago: no', () => {
    expect(assignmentCancelDecision(assigned(6), NOW)).toEqual({ cancellable: true });
    expect(assignmentCancelDecision(assigned(6, 1), NOW)).toEqual({ cancellable: false, rule: 'PACK_USED' });
    expect(assignmentCancelDecision(assigned(8), NOW)).toEqual({ cancellable: false, rule: 'CANCEL_WINDOW_PASSED' });
  });

  it('"within 7 days" ends 7 × 24 h after the assignment; an instant before it is outside too', () => {
    const at = NOW - ASSIGNMENT_CANCEL_WINDOW_MS;
    expect(assignmentCancelDecision({ state: 'assigned', assignedAt: at + 1, used: 0 }, NOW).cancellable).toBe(true);
    expect(assignmentCancelDecision({ state: 'assigned', assignedAt: at, used: 0 }, NOW)).toEqual({ cancellable: false, rule: 'CANCEL_WINDOW_PASSED' });
    expect(assignmentCancelDecision({ state: 'assigned', assignedAt: NOW + 1, used: 0 }, NOW)).toEqual({ cancellable: false, rule: 'CANCEL_WINDOW_PASSED' });
  });

  it('names the first rule that forbids it: already cancelled, not assigned, used, then the window', () => {
    expect(assignmentCancelDecision({ state: 'cancelled', assignedAt: NOW - 20 * DAY_MS, used: 3 }, NOW)).toEqual({ cancellable: false, rule: 'ALREADY_CANCELLED' });
    for (const state of ['requested', 'failed'] as const) {
      expect(assignmentCancelDecision({ state, assignedAt: null, used: 0 }, NOW)).toEqual({ cancellable: false, rule: 'NOT_ASSIGNED' });
    }
    expect(assignmentCancelDecision(assigned(20, 3), NOW)).toEqual({ cancellable: false, rule: 'PACK_USED' });
  });
});

describe("recording WeChat's result of an assignment", () => {
  const at = (state: AssignmentState, errcode: number | null = null) => ({ state, errcode });

  it('settles a requested assignment: 0 is assigned, any other errcode (10045: no relationship) is failed', () => {
    expect(assignmentResultStep(at('requested'), 0)).toEqual({ kind: 'settle', state: 'assigned' });
    expect(assignmentResultStep(at('requested'), 10045)).toEqual({ kind: 'settle', state: 'failed' });
    expect(assignmentResultStep(at('requested'), -1)).toEqual({ kind: 'settle', state: 'failed' });
  });

  it('the same result again is a duplicate (WeChat repeats its pushes); a contradicting one is a conflict', () => {
    expect(assignmentResultStep(at('assigned'), 0)).toEqual({ kind: 'duplicate' });
    expect(assignmentResultStep(at('failed', 10045), 10045)).toEqual({ kind: 'duplicate' });
    expect(assignmentResultStep(at('assigned'), 10045)).toEqual({ kind: 'conflict', reason: 'RESULT_CONFLICT' });
    expect(assignmentResultStep(at('failed', 10045), 0)).toEqual({ kind: 'conflict', reason: 'RESULT_CONFLICT' });
    expect(assignmentResultStep(at('failed', 10045), 10121012)).toEqual({ kind: 'conflict', reason: 'RESULT_CONFLICT' });
  });

  it('a cancelled assignment had been assigned: a late success is a duplicate, a failure a conflict', () => {
    expect(assignmentResultStep(at('cancelled'), 0)).toEqual({ kind: 'duplicate' });
    expect(assignmentResultStep(at('cancelled'), 10045)).toEqual({ kind: 'conflict', reason: 'ALREADY_CANCELLED' });
  });

  it('refuses a result that is not an integer errcode', () => {
    expect(() => assignmentResultStep(at('requested'), 0.5)).toThrow(RangeError);
    expect(() => assignmentResultStep(at('requested'), Number.NaN)).toThrow(RangeError);
  });
});

describe('the assigned pack', () => {
  it('takes effect at the assignment, or at beginTime when the request set one, and lasts the SKU\'s duration', () => {
    expect(assignedPackPeriod({ assignedAt: NOW, beginTime: null, durationSeconds: 31_536_000 })).toEqual({ effectiveAt: NOW, expiresAt: NOW + 365 * DAY_MS });
    const begin = NOW + 3 * DAY_MS;
    expect(assignedPackPeriod({ assignedAt: NOW, beginTime: begin, durationSeconds: 3600 })).toEqual({ effectiveAt: begin, expiresAt: begin + 3_600_000 });
  });

  it('a start before the charging start date moves to it, as for a bought pack', () => {
    const start = cstMidnight('2023-08-28');
    expect(assignedPackPeriod({ assignedAt: Date.parse('2023-08-01T02:00:00Z'), beginTime: null, durationSeconds: 86_400 }, '2023-08-28')).toEqual({
      effectiveAt: start,
      expiresAt: start + DAY_MS,
    });
  });

  it('is drawn like any pack of the app: after the trial, soonest expiry first', () => {
    const bought = { id: 'pk_bought', all: 10, used: 0, effectiveAt: NOW - DAY_MS, expiresAt: NOW + 30 * DAY_MS };
    const period = assignedPackPeriod({ assignedAt: NOW - DAY_MS, beginTime: null, durationSeconds: 10 * 86_400 });
    const assigned = { id: 'pk_assigned', all: 5, used: 0, ...period };
    expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS - 1, packs: [bought, assigned], nowMs: NOW })).toEqual({ source: 'trial' });
    expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [bought, assigned], nowMs: NOW })).toEqual({ source: 'pack', pack: assigned });
    expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [bought, { ...assigned, used: 5 }], nowMs: NOW })).toEqual({ source: 'pack', pack: bought });
    expect(planCharge({ exempt: true, trialUsed: TRIAL_UNITS, packs: [assigned], nowMs: NOW })).toEqual({ source: 'exempt' });
    // Not yet in effect (a beginTime ahead): the bought pack pays.
    const ahead = { ...assigned, ...assignedPackPeriod({ assignedAt: NOW, beginTime: NOW + DAY_MS, durationSeconds: 86_400 }) };
    expect(planCharge({ exempt: false, trialUsed: TRIAL_UNITS, packs: [ahead, bought], nowMs: NOW })).toEqual({ source: 'pack', pack: bought });
  });
});

describe("an order's units", () => {
  it('are held by requested and assigned packs; failed and cancelled ones give theirs back', () => {
    const held = [
      { units: 100, state: 'requested' as const },
      { units: 200, state: 'assigned' as const },
      { units: 400, state: 'failed' as const },
      { units: 800, state: 'cancelled' as const },
    ];
    expect(orderUnitsLeft({ unitsAll: 1000 }, held)).toBe(700);
    expect(orderUnitsLeft({ unitsAll: 250 }, held)).toBe(0);
  });
});

describe('64-bit amounts (prices in 厘)', () => {
  it('reads digits exactly up to 2^63 − 1 and refuses anything else', () => {
    expect(parseInt64Amount('0')).toBe(0n);
    expect(parseInt64Amount('9223372036854775807')).toBe(INT64_MAX);
    expect(parseInt64Amount('9007199254740993')).toBe(9_007_199_254_740_993n); // past 2^53, still exact
    for (const bad of ['9223372036854775808', '-1', '01', '1e3', '1.5', ' 1', '', '0x10', '１']) expect(parseInt64Amount(bad)).toBeUndefined();
  });

  it('formats as yuan with three decimals, exactly', () => {
    expect(formatYuanExact(9_007_199_254_740_993n)).toBe('9007199254740.993');
    expect(formatYuanExact(30n)).toBe('0.030');
    expect(formatYuanExact(0n)).toBe('0.000');
  });
});

describe("WeChat's pushed assignment-result event (event_type 5)", () => {
  // Built from the field table of WeChat's page for the event (no captured body is published; the page names no
  // Event value, so none is assumed) plus the message-push envelope's CreateTime: numbers as the page types them, and
  // as strings the way WeChat's other charge events send them.
  const event = {
    CreateTime: 1687254300,
    event_type: 5,
    result: 0,
    order_id: 'DD2970445798112968704',
    assign_appid: 'wx0000000000000sp1',
    receive_appid: 'wxbf98693b6554a24a',
    sp_spu_id: '10000117',
    sp_sku_id: '20000176',
    spu_id: '10000077',
    sku_id: '20000178',
    request_id: '1687254272930',
    receive_pkg_id: 'ZY2823973277692477440',
  };

  it('gives the input recordAssignmentResult takes, whether numbers come as numbers or strings', () => {
    const expected = {
      orderId: 'DD2970445798112968704',
      requestId: '1687254272930',
      result: 0,
      receivePkgId: 'ZY2823973277692477440',
      receiverAppId: 'wxbf98693b6554a24a',
      skuId: '20000178',
      at: 1_687_254_300_000,
    };
    expect(assignmentResultFromEvent(event)).toEqual(expected);
    expect(assignmentResultFromEvent({ ...event, event_type: '5', result: '0', CreateTime: '1687254300' })).toEqual(expected);
    expect(assignmentResultFromEvent({ ...event, result: '10045', receive_pkg_id: '' })).toMatchObject({ result: 10045, receivePkgId: null });
  });

  it('is not one for other events (the cancel result is event_type 6) or without what identifies the assignment', () => {
    expect(assignmentResultFromEvent({ ...event, event_type: 6 })).toBeUndefined();
    expect(assignmentResultFromEvent({ ...event, event_type: '3' })).toBeUndefined();
    expect(assignmentResultFromEvent({ ...event, request_id: undefined })).toBeUndefined();
    expect(assignmentResultFromEvent({ ...event, order_id: '' })).toBeUndefined();
    expect(assignmentResultFromEvent({ ...event, result: 'ok' })).toBeUndefined();
  });
});
