import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

// The id of the request being handled, for every log line written on its behalf: set once
// per request (plugins/request-id), so services and plugins log without passing it around.
const requestIds = new AsyncLocalStorage<string>();

/** Runs `fn` (and everything it awaits or schedules) as part of request `id`. */
export function withRequestId<T>(id: string, fn: () => T): T {
  return requestIds.run(id, fn);
}

/** The id of the request this code runs for; undefined outside any request. */
export function currentRequestId(): string | undefined {
  return requestIds.getStore();
}

// Shared and frozen: lines outside a request allocate nothing for the mixin.
const NO_FIELDS: object = Object.freeze({});
const requestIdMixin = () => {
  const requestId = requestIds.getStore();
  return requestId === undefined ? NO_FIELDS : { requestId };
};
// pino's default strategy assigns the line's fields onto the mixin object, which NO_FIELDS cannot take.
const mergeRequestId = (fields: object, mixin: object) => (mixin === NO_FIELDS ? fields : Object.assign(mixin, fields));

/**
 * Structured logs. Redaction is the second line of defence: no code path is
 * meant to log a phone number, code, token, session key or secret in the first
 * place; these paths catch the ones that slip through in objects.
 */
export const REDACT_PATHS = [
  'phoneNumber',
  'purePhoneNumber',
  'code',
  'loginCode',
  'encryptedData',
  'iv',
  'secret',
  'sessionKey',
  'session_key',
  'accessToken',
  'access_token',
  'token',
  'authorization',
  '*.phoneNumber',
  '*.purePhoneNumber',
  '*.code',
  '*.loginCode',
  '*.encryptedData',
  '*.secret',
  '*.sessionKey',
  '*.accessToken',
  '*.token',
  '*.authorization',
  'req.headers.authorization',
  'variables',
  '*.variables',
];

export function createLogger(opts: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? 'info';
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'wxphone-gateway' },
    mixin: requestIdMixin,
    mixinMergeStrategy: mergeRequestId,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
