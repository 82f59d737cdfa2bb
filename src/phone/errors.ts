/**
 * Expected outcomes of an exchange that are not a phone number. Each is a class
 * so the schema can map it to its own member of the result union; every one
 * carries a stable code, a message safe to show, and whether retrying may help.
 */
export const EXCHANGE_ERROR_CODES = [
  'INVALID_INPUT',
  'INVALID_CODE',
  'CODE_ALREADY_USED',
  'APP_MISMATCH',
  'WATERMARK_MISMATCH',
  'RATE_LIMITED',
  'UPSTREAM_UNAVAILABLE',
  'OUTCOME_UNKNOWN',
  'IN_PROGRESS',
  'SESSION_KEY_MISMATCH',
  'BASE64_MANGLED',
  'GATEWAY_MISCONFIGURED',
  'CONSENT_WITHDRAWN',
  'SERVICE_UNAVAILABLE',
] as const;

export type ExchangeErrorCode = (typeof EXCHANGE_ERROR_CODES)[number];

export abstract class ExchangeFailure extends Error {
  abstract readonly code: ExchangeErrorCode;
  abstract readonly retryable: boolean;
}

export class InvalidInputError extends ExchangeFailure {
  readonly code = 'INVALID_INPUT';
  readonly retryable = false;
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

export class InvalidCodeError extends ExchangeFailure {
  readonly code = 'INVALID_CODE';
  readonly retryable = false;
}

export class CodeAlreadyUsedError extends ExchangeFailure {
  readonly code = 'CODE_ALREADY_USED';
  readonly retryable = false;
}

export class AppMismatchError extends ExchangeFailure {
  readonly code = 'APP_MISMATCH';
  readonly retryable = false;
}

export class WatermarkMismatchError extends ExchangeFailure {
  readonly code = 'WATERMARK_MISMATCH';
  readonly retryable = false;
}

export class RateLimitedError extends ExchangeFailure {
  readonly code = 'RATE_LIMITED';
  readonly retryable = true;
}

export class UpstreamUnavailableError extends ExchangeFailure {
  readonly code = 'UPSTREAM_UNAVAILABLE';
  readonly retryable = true;
}

/** WeChat may or may not have spent the code (timeout, broken connection): never resent; the user must tap again. */
export class OutcomeUnknownError extends ExchangeFailure {
  readonly code = 'OUTCOME_UNKNOWN';
  readonly retryable = false;
}

export class InProgressError extends ExchangeFailure {
  readonly code = 'IN_PROGRESS';
  readonly retryable = true;
}

export class SessionKeyMismatchError extends ExchangeFailure {
  readonly code = 'SESSION_KEY_MISMATCH';
  readonly retryable = false;
}

export class Base64MangledError extends ExchangeFailure {
  readonly code = 'BASE64_MANGLED';
  readonly retryable = false;
}

export class GatewayMisconfiguredError extends ExchangeFailure {
  readonly code = 'GATEWAY_MISCONFIGURED';
  readonly retryable = false;
}

/** The user withdrew consent for this purpose; refused before anything reaches WeChat until consent is given again. */
export class ConsentWithdrawnError extends ExchangeFailure {
  readonly code = 'CONSENT_WITHDRAWN';
  readonly retryable = false;
}

/** The refusal for a purpose whose consent was withdrawn, at the consent check or when the disclosure is recorded. */
export function consentWithdrawnError(purpose: string): ConsentWithdrawnError {
  return new ConsentWithdrawnError(`consent for "${purpose}" was withdrawn; it must be given again before the number can be requested`);
}

/**
 * The gateway's own storage could not be used (down, restarting, out of connections). Retryable
 * when the code was not used: nothing reached WeChat, or a stored answer is still there to replay.
 * Not when WeChat had already answered and the exchange could not be recorded: the number is then
 * withheld (nothing is disclosed that was not recorded) and the code is spent.
 */
export class ServiceUnavailableError extends ExchangeFailure {
  readonly code = 'SERVICE_UNAVAILABLE';
  constructor(
    message: string,
    readonly retryable = true,
  ) {
    super(message);
  }
}

const BY_CODE: Record<ExchangeErrorCode, new (message: string) => ExchangeFailure> = {
  INVALID_INPUT: class extends InvalidInputError {
    constructor(message: string) {
      super(message, 'input');
    }
  },
  INVALID_CODE: InvalidCodeError,
  CODE_ALREADY_USED: CodeAlreadyUsedError,
  APP_MISMATCH: AppMismatchError,
  WATERMARK_MISMATCH: WatermarkMismatchError,
  RATE_LIMITED: RateLimitedError,
  UPSTREAM_UNAVAILABLE: UpstreamUnavailableError,
  OUTCOME_UNKNOWN: OutcomeUnknownError,
  IN_PROGRESS: InProgressError,
  SESSION_KEY_MISMATCH: SessionKeyMismatchError,
  BASE64_MANGLED: Base64MangledError,
  GATEWAY_MISCONFIGURED: GatewayMisconfiguredError,
  CONSENT_WITHDRAWN: ConsentWithdrawnError,
  SERVICE_UNAVAILABLE: ServiceUnavailableError,
};

/** Rebuilds a stored outcome (only its code is stored) for a duplicate request. */
export function failureFromCode(code: string, message: string): ExchangeFailure {
  const Cls = BY_CODE[code as ExchangeErrorCode] ?? UpstreamUnavailableError;
  return new Cls(message);
}

/** The same outcome as a new object, for another request that shares it (each request's refusal is recorded on its own). */
export function sameFailure(e: ExchangeFailure): ExchangeFailure {
  return e instanceof ServiceUnavailableError ? new ServiceUnavailableError(e.message, e.retryable) : failureFromCode(e.code, e.message);
}

/** What a later request is told of an outcome stored for its code (only the code is stored). */
export const STORED_FAILURE_MESSAGES = {
  INVALID_CODE: 'the code was already rejected by WeChat: it is expired, used, malformed or not a phone-number code',
  APP_MISMATCH: 'the code belongs to another mini program',
  WATERMARK_MISMATCH: "WeChat's answer was for another mini program; the number was withheld",
  SESSION_KEY_MISMATCH: 'the encrypted data could not be decrypted with this login session',
  OUTCOME_UNKNOWN: 'an earlier attempt with this code ended without a clear answer from WeChat; the code may have been spent, so ask the user to tap again',
  CONSENT_WITHDRAWN: 'consent was withdrawn while this code was being exchanged; the number was withheld',
} satisfies Partial<Record<ExchangeErrorCode, string>>;

/** A stored outcome rebuilt for a later request, with its stored message (else `otherwise`). */
export function storedFailure(code: string, otherwise: string): ExchangeFailure {
  return failureFromCode(code, (STORED_FAILURE_MESSAGES as Partial<Record<string, string>>)[code] ?? otherwise);
}
