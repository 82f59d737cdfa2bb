import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

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
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
