import { createGraphQLError } from 'graphql-yoga';
import { builder } from './builder.js';
import { DateTime } from './scalars.js';
import type { AppConfig } from '../src/config.js';
import { AppNotServedError, servedApp } from '../src/served-apps.js';
import { LedgerInputError } from '../src/billing/ledger.js';
import type { AssignmentRequestRule, AssignmentResultRule } from '../src/billing/procurement.js';
import { ReconciliationInputError } from '../src/billing/reconciliation.js';
import type { AssignmentCancelRule, RefundRule } from '../src/billing/rules.js';
import { UsageSyncError } from '../src/billing/usage-sync.js';
import {
  AppMismatchError,
  Base64MangledError,
  CodeAlreadyUsedError,
  ConsentWithdrawnError,
  EXCHANGE_ERROR_CODES,
  type ExchangeFailure,
  GatewayMisconfiguredError,
  InProgressError,
  InvalidCodeError,
  InvalidInputError,
  OutcomeUnknownError,
  RateLimitedError,
  ServiceUnavailableError,
  SessionKeyMismatchError,
  UpstreamUnavailableError,
  WatermarkMismatchError,
} from '../src/phone/errors.js';

/**
 * How domain errors reach clients, all in this module. A field's expected failures are members of
 * its result union: the exchange's failures (ExchangeError), a billing input refused, a refusal by a
 * billing rule (with the rule), a usage sync that failed. Whatever else a client got wrong is a
 * GraphQL error with an `extensions.code`: NOT_FOUND for an app not served here, BAD_USER_INPUT for
 * an argument refused. Anything not mapped here is unexpected, and yoga masks it.
 */

// ---------------------------------------------------------------------------
// The exchange's failures

export const ExchangeErrorCodeEnum = builder.enumType('ExchangeErrorCode', {
  description:
    'Why an exchange gave no phone number. OPEN ENUM: new codes are added in minor releases, so clients must handle a code they do not know (act on `retryable`, show `message`) and never treat this list as exhaustive; generated unions need a default branch.',
  values: {
    INVALID_INPUT: { description: 'The input was refused before anything was sent to WeChat (InvalidInputError names the field).' },
    INVALID_CODE: { description: 'WeChat rejected the code (40029): expired, used, malformed, or a wx.login code. Ask the user to tap again.' },
    CODE_ALREADY_USED: { description: 'Another session already used this code.' },
    APP_MISMATCH: { description: 'The code or session belongs to another mini program, or the app is not served here.' },
    WATERMARK_MISMATCH: { description: "WeChat's answer carried another app's watermark; the number was withheld." },
    RATE_LIMITED: { description: 'Too many requests (WeChat 45011, or the gateway limit); retry after the time the message gives.' },
    UPSTREAM_UNAVAILABLE: { description: 'WeChat was busy or unreachable and the code was not used; retry shortly.' },
    OUTCOME_UNKNOWN: { description: 'WeChat gave no clear answer: the code may be spent. Ask the user to tap again.' },
    IN_PROGRESS: { description: 'The same code is being exchanged by a concurrent request of this session; retry shortly.' },
    SESSION_KEY_MISMATCH: { description: 'Legacy flow only: the data does not decrypt with this login.' },
    BASE64_MANGLED: { description: 'Legacy flow only: encryptedData or iv is not intact base64.' },
    GATEWAY_MISCONFIGURED: { description: "WeChat refused the gateway's own credentials or request form; operators must act." },
    CONSENT_WITHDRAWN: { description: 'The user withdrew consent for this purpose; giveConsent first.' },
    SERVICE_UNAVAILABLE: { description: "The gateway's own storage is down; retryable when the message says the code was not used." },
  } satisfies Record<(typeof EXCHANGE_ERROR_CODES)[number], { description: string }>,
});

export const ExchangeErrorInterface = builder.interfaceRef<ExchangeFailure>('ExchangeError').implement({
  description: 'Every expected failure of an exchange: a stable code, a message safe to log, and whether retrying may help.',
  fields: (t) => ({
    code: t.field({ type: ExchangeErrorCodeEnum, description: 'Stable: branch on it (an open enum: handle codes you do not know).', resolve: (e) => e.code }),
    message: t.exposeString('message', { description: 'What happened and what to do, in English; safe to log (never a number, code or token).' }),
    retryable: t.exposeBoolean('retryable', { description: 'Whether the same request may succeed later; false means ask the user to tap again or fix the input.' }),
  }),
});

type FailureClass = new (message: string) => ExchangeFailure;

const described: [FailureClass, string, string][] = [
  [InvalidCodeError, 'InvalidCodeError', 'WeChat rejected the code: expired (5 minutes), already used, malformed, or a wx.login code.'],
  [CodeAlreadyUsedError, 'CodeAlreadyUsedError', 'Another session already used this code, or its stored answer has expired.'],
  [AppMismatchError, 'AppMismatchError', 'The code or the session belongs to another mini program, or the app is not served here.'],
  [WatermarkMismatchError, 'WatermarkMismatchError', "WeChat's answer carried another app's watermark; the number was withheld."],
  [
    RateLimitedError,
    'RateLimitedError',
    "Too many requests; retry later (the message says when). Either WeChat is limiting calls (45011), or this session or client address went over the gateway's own exchange limit, in which case nothing reached WeChat.",
  ],
  [UpstreamUnavailableError, 'UpstreamUnavailableError', 'WeChat was busy, failing or unreachable; retry shortly.'],
  [OutcomeUnknownError, 'OutcomeUnknownError', 'WeChat gave no clear answer (timeout, broken connection): the code may be spent and is never resent; ask the user to tap again.'],
  [InProgressError, 'ExchangeInProgressError', 'The same code is being exchanged by a concurrent request of this session; retry shortly.'],
  [SessionKeyMismatchError, 'SessionKeyMismatchError', 'Legacy flow: the data does not decrypt with this login (the session key rotated).'],
  [Base64MangledError, 'Base64MangledError', 'Legacy flow: encryptedData or iv is not intact base64 (often "+" lost to URL decoding).'],
  [ConsentWithdrawnError, 'ConsentWithdrawnError', 'The user withdrew consent for this purpose; give consent again (giveConsent) before exchanging.'],
  [
    GatewayMisconfiguredError,
    'GatewayMisconfiguredError',
    "WeChat refused the gateway's own credentials for this app, or the form of its request before reading the code (the code was not used); operators must act.",
  ],
  [
    ServiceUnavailableError,
    'ServiceUnavailableError',
    "The gateway's own storage is unavailable. Retryable when the code was not used (nothing reached WeChat, or a stored answer waits to be replayed); not retryable when WeChat had already answered and the exchange could not be recorded: the number is withheld and the code is spent, so ask the user to tap again. The message says which.",
  ],
];

for (const [cls, name, description] of described) {
  builder.objectType(cls, {
    name,
    description,
    interfaces: [ExchangeErrorInterface],
    isTypeOf: (value: unknown) => value instanceof cls,
    fields: () => ({}),
  });
}

builder.objectType(InvalidInputError, {
  name: 'InvalidInputError',
  description: 'The input was refused before anything was sent to WeChat.',
  interfaces: [ExchangeErrorInterface],
  isTypeOf: (value) => value instanceof InvalidInputError,
  fields: (t) => ({
    field: t.exposeString('field', { description: 'The input field at fault.' }),
  }),
});

type ErrorClass = new (...args: any[]) => Error;

/** Failures only the legacy flow (a login code and encrypted data) can meet: not members of the exchange's union. */
export const LEGACY_ONLY_ERROR_TYPES = [SessionKeyMismatchError, Base64MangledError] as unknown as ErrorClass[];

/** The error classes every phone-number field answers as union members. */
export const EXCHANGE_ERROR_TYPES = [InvalidInputError, ...described.map(([cls]) => cls).filter((cls) => !(LEGACY_ONLY_ERROR_TYPES as unknown[]).includes(cls))] as unknown as ErrorClass[];

// ---------------------------------------------------------------------------
// Billing

builder.objectType(LedgerInputError, {
  name: 'BillingInputError',
  description: 'The billing change was refused: the message says which rule or input.',
  fields: (t) => ({ message: t.exposeString('message', { description: 'Which input or rule refused it.' }) }),
});

/**
 * A refusal by a billing rule, as a member of its field's result union: which rule (an enum, each
 * value described) and a message that says it. A class per kind of refusal, so that the unions tell
 * them apart.
 */
function refusal<R extends string>(name: string, ruleEnum: string, rules: Record<R, { description: string; message: string }>) {
  const entries = Object.entries(rules) as [R, { description: string }][];
  const RuleEnum = builder.enumType(ruleEnum, {
    description: `The rules that can refuse it (${name}).`,
    values: Object.fromEntries(entries.map(([rule, { description }]) => [rule, { description }])),
  });
  class Refused extends Error {
    /** The rule enum, for fields that name a rule without a refusal (e.g. what a pack's refund would meet). */
    static readonly ruleEnum = RuleEnum;
    constructor(readonly rule: R) {
      super(rules[rule].message);
    }
  }
  builder.objectType(Refused, {
    name,
    description: 'A billing rule refused the change: which rule, and a message that says it.',
    fields: (t) => ({
      rule: t.field({ type: RuleEnum, description: 'The rule that refused it.', resolve: (e): string => e.rule }),
      message: t.exposeString('message', { description: 'The rule in words.' }),
    }),
  });
  return Refused;
}

export const RefundRefused = refusal<RefundRule>('RefundRefused', 'RefundRefusalRule', {
  PACK_USED: {
    description: 'At least one unit was used: no refund.',
    message: 'the pack has been used (one unit or more): WeChat refunds only unused packs',
  },
  REFUND_WINDOW_PASSED: { description: 'More than 7 days after payment: no refund.', message: 'refunds are possible only within 7 days after payment' },
  ALREADY_REQUESTED: { description: 'A refund was already requested.', message: 'a refund was already requested for this pack' },
});

export const PackAssignmentRefused = refusal<AssignmentRequestRule>('PackAssignmentRefused', 'PackAssignmentRequestRefusalRule', {
  REQUEST_ID_REUSED: {
    description: 'This orderId and requestId were used for another SKU, app or beginTime: a requestId names one request.',
    message: 'this requestId was used for another assignment of the order: a requestId names one request',
  },
  ORDER_EXPIRED: {
    description: "The order's validity has ended: WeChat assigns nothing more from it (10121012).",
    message: "the order's validity has ended: nothing more can be assigned from it",
  },
  ORDER_UNITS_EXHAUSTED: {
    description: "The order's free units are fewer than one pack of the SKU.",
    message: "the order's free units are fewer than one pack of this SKU",
  },
});

export const PackAssignmentResultRefused = refusal<AssignmentResultRule>('PackAssignmentResultRefused', 'PackAssignmentResultRefusalRule', {
  RESULT_CONFLICT: {
    description: 'Another result (or another receivePkgId) was recorded for this assignment.',
    message: 'another result was recorded for this assignment',
  },
  ALREADY_CANCELLED: { description: 'The assignment was cancelled: only a repeat of its success is accepted.', message: 'the assignment was cancelled' },
  ASSIGNMENT_MISMATCH: { description: 'The result names another app or SKU than the request.', message: 'the result names another app or SKU than the request' },
});

export const PackAssignmentCancelRefused = refusal<AssignmentCancelRule>('PackAssignmentCancelRefused', 'PackAssignmentCancelRefusalRule', {
  ALREADY_CANCELLED: { description: 'The assignment was cancelled before.', message: 'the assignment was cancelled before' },
  NOT_ASSIGNED: {
    description: "Nothing to cancel: still REQUESTED (wait for WeChat's result) or FAILED.",
    message: "the assignment is not in effect: still waiting for WeChat's result, or failed",
  },
  PACK_USED: {
    description: 'At least one unit of the pack was used: WeChat cancels only unused assignments.',
    message: 'the assigned pack has been used (one unit or more): WeChat cancels only unused assignments',
  },
  CANCEL_WINDOW_PASSED: {
    description: 'More than 7 days since the assignment.',
    message: 'an assignment can be cancelled only within 7 days of the assignment',
  },
});

export class UsageSyncFailure extends Error {
  constructor(
    message: string,
    readonly lastSyncedAt: number | null,
  ) {
    super(message);
  }
}

builder.objectType(UsageSyncFailure, {
  name: 'UsageSyncFailed',
  description: "WeChat's usage API could not be read; the last good snapshot stays in use.",
  fields: (t) => ({
    message: t.exposeString('message', { description: 'Why WeChat could not be read.' }),
    lastSyncedAt: t.field({ type: DateTime, nullable: true, description: 'When the last good sync was; null when none ever was.', resolve: (e) => e.lastSyncedAt }),
  }),
});

// ---------------------------------------------------------------------------
// GraphQL errors

export function badUserInput(message: string) {
  return createGraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

/** A domain error as it reaches the client: a union member or a GraphQL error; any other error as it is. */
export function toClientError(e: unknown): unknown {
  if (e instanceof AppNotServedError) return createGraphQLError(e.message, { extensions: { code: 'NOT_FOUND' } });
  if (e instanceof ReconciliationInputError) return badUserInput(e.message);
  if (e instanceof UsageSyncError) return new UsageSyncFailure(e.message, e.lastSuccessAt);
  return e;
}

/** The app a field names (see servedApp): one this gateway does not serve is NOT_FOUND. */
export function appNamed(apps: ReadonlyMap<string, AppConfig>, appid: string): AppConfig {
  try {
    return servedApp(apps, appid);
  } catch (e) {
    throw toClientError(e);
  }
}
