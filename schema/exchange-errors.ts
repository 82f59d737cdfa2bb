import { builder } from './builder.js';
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

export const ExchangeErrorCodeEnum = builder.enumType('ExchangeErrorCode', {
  description: 'Why an exchange gave no phone number. New codes may be added: treat unknown ones by `retryable`.',
  values: EXCHANGE_ERROR_CODES,
});

export const ExchangeErrorInterface = builder.interfaceRef<ExchangeFailure>('ExchangeError').implement({
  description: 'Every expected failure of an exchange: a stable code, a message safe to log, and whether retrying may help.',
  fields: (t) => ({
    code: t.field({ type: ExchangeErrorCodeEnum, resolve: (e) => e.code }),
    message: t.exposeString('message'),
    retryable: t.exposeBoolean('retryable'),
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

/** The error classes every phone-number field answers as union members. */
export const EXCHANGE_ERROR_TYPES = [InvalidInputError, ...described.map(([cls]) => cls)] as unknown as (new (
  ...args: any[]
) => Error)[];
