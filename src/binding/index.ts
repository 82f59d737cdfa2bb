export {
  VerificationTokens,
  jwksResponse,
  DEFAULT_TTL_SECONDS,
  DEFAULT_ROTATION_DAYS,
  KEY_REFRESH_MS,
  JWKS_REFRESH_MS,
  ROTATE_DROP_SLACK_MS,
  type VerificationTokenOptions,
  type VerificationClaims,
  type VerificationTokenPayload,
} from './tokens.js';
