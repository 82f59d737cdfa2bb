import { builder } from './builder.js';
import { EXCHANGE_ERROR_TYPES, LEGACY_ONLY_ERROR_TYPES } from './errors.js';
import type { VerifiedPhone } from '../src/phone/request.js';
import { STORAGE_UNAVAILABLE_MESSAGES } from '../src/phone/storage-outage.js';
import { ServiceUnavailableError } from '../src/phone/errors.js';
import { checkNoticeVersion } from '../src/phone/input.js';
import { isStorageUnavailable } from '../src/store/unavailable.js';
import { DateTime } from './scalars.js';

type Answer = VerifiedPhone & { verificationToken?: { token: string; expiresAt: number } | null };

const VerificationTokenRef = builder.objectRef<{ token: string; expiresAt: number }>('VerificationToken').implement({
  description:
    'A short-lived JWT signed by the gateway (ES256; keys at /.well-known/jwks.json): sub, appid, phone_verified_at and a keyed phone_hash — proof of the verification without the number.',
  fields: (t) => ({
    token: t.exposeString('token', { description: 'The JWT: pass it to the services that need proof of the verification.' }),
    expiresAt: t.field({ type: DateTime, description: 'When it expires.', resolve: (v) => v.expiresAt }),
  }),
});

const Watermark = builder.objectRef<VerifiedPhone['watermark']>('Watermark').implement({
  description: "WeChat's watermark of the answer: which app it was for, and when.",
  fields: (t) => ({
    appid: t.exposeString('appid', { description: 'The mini program WeChat verified the number for; always the requested app.' }),
    timestamp: t.exposeInt('timestamp', { description: 'When the user made the request, in Unix seconds as WeChat gives it (a 32-bit Int until 2038-01-19: prefer at).' }),
    at: t.field({ type: DateTime, description: 'The same instant as timestamp, as a DateTime.', resolve: (w) => w.timestamp * 1000 }),
  }),
});

const PhoneNumberVerified = builder.objectRef<Answer>('PhoneNumberVerified').implement({
  description: 'The verified number. This is the one place a phone number leaves the gateway.',
  fields: (t) => ({
    phoneNumber: t.exposeString('phoneNumber', { description: 'With the calling code for numbers outside mainland China.' }),
    purePhoneNumber: t.exposeString('purePhoneNumber', { description: 'Without the calling code.' }),
    countryCode: t.exposeString('countryCode', { description: 'The calling code, e.g. "86".' }),
    watermark: t.field({ type: Watermark, description: "WeChat's watermark: the app (always the requested one) and when.", resolve: (p) => p.watermark }),
    replayed: t.exposeBoolean('replayed', {
      description: 'True when the same session sent the same code again and got the stored answer; WeChat was not called again.',
    }),
    verificationToken: t.field({
      type: VerificationTokenRef,
      nullable: true,
      description: 'Present when the input asked for one (issueVerificationToken).',
      resolve: (p) => p.verificationToken ?? null,
    }),
  }),
});

const ExchangePhoneCodeInput = builder.inputType('ExchangePhoneCodeInput', {
  description: 'A code from the getPhoneNumber button, and why the number is needed.',
  fields: (t) => ({
    code: t.string({ description: 'The code from the getPhoneNumber button (not a wx.login code). Valid 5 minutes, once.' }),
    purpose: t.string({ description: "Why the number is needed, recorded as consent; one of the app's configured purposes." }),
    appid: t.string({ required: false, description: "The mini program; defaults to the session token's appid." }),
    noticeVersion: t.string({ required: false, description: 'The privacy notice the user was shown; recorded with the consent.' }),
    issueVerificationToken: t.boolean({ required: false, description: 'Also return a gateway-signed verification token for downstream services.' }),
  }),
});

const DecryptPhoneNumberInput = builder.inputType('DecryptPhoneNumberInput', {
  description: 'Legacy flow (base library before 2.21.2): a wx.login code plus the encrypted data from the button.',
  fields: (t) => ({
    loginCode: t.string({ description: 'The wx.login code, exchanged through jscode2session.' }),
    encryptedData: t.string({ description: 'Base64, exactly as the button gave it.' }),
    iv: t.string({ description: 'Base64, exactly as the button gave it.' }),
    purpose: t.string({ description: "Why the number is needed, recorded as consent; one of the app's configured purposes." }),
    appid: t.string({ required: false, description: "The mini program; defaults to the session token's appid." }),
    noticeVersion: t.string({ required: false, description: 'The privacy notice the user was shown; recorded with the consent.' }),
    issueVerificationToken: t.boolean({ required: false, description: 'Also return a gateway-signed verification token for downstream services.' }),
  }),
});

/** Adds the verification token when asked for: signed after the number is verified and recorded. */
async function withToken(
  ctx: import('./context.js').GraphQLContext,
  answer: VerifiedPhone,
  wanted: boolean | null | undefined,
): Promise<Answer> {
  if (!wanted) return answer;
  const issued = await ctx.services.tokens
    .issue({
      subject: ctx.session.subject,
      appid: answer.watermark.appid,
      // When WeChat verified the number for the user (the watermark), not when this token was made.
      phoneVerifiedAt: answer.watermark.timestamp * 1000,
      phoneHash: ctx.services.keys.phoneHash(answer.purePhoneNumber, 'binding'),
    })
    .catch((e: unknown) => {
      // The exchange itself is recorded and its answer stored: the same request again replays it.
      throw isStorageUnavailable(e) ? new ServiceUnavailableError(STORAGE_UNAVAILABLE_MESSAGES.replayKept) : e;
    });
  return { ...answer, verificationToken: { token: issued.token, expiresAt: issued.expiresAt } };
}

const errors = {
  types: EXCHANGE_ERROR_TYPES,
  union: { name: 'ExchangePhoneCodeResult', description: 'The verified number, or why there is none: every failure implements ExchangeError (select `... on ExchangeError { code message retryable }`).' },
};

builder.mutationField('exchangePhoneCode', (t) =>
  t.field({
    type: PhoneNumberVerified,
    nullable: true,
    description: 'Exchanges a phone-number code for the verified number, at most once per code.',
    authScopes: { scope: 'phone:exchange' },
    args: { input: t.arg({ type: ExchangePhoneCodeInput, description: 'The code and the purpose.' }) },
    errors,
    resolve: async (_root, { input }, ctx) => {
      const meta = { requestId: ctx.requestId, noticeVersion: checkNoticeVersion(input.noticeVersion), clientIp: ctx.clientIp ?? null };
      return withToken(ctx, await ctx.services.phone.exchange(ctx.session, input, meta), input.issueVerificationToken);
    },
  }),
);

builder.mutationField('decryptPhoneNumber', (t) =>
  t.field({
    type: PhoneNumberVerified,
    nullable: true,
    description: 'Legacy flow: jscode2session, then AES-128-CBC decryption of the button data, watermark checked.',
    authScopes: { scope: 'phone:exchange' },
    args: { input: t.arg({ type: DecryptPhoneNumberInput, description: 'The login code and the button data.' }) },
    errors: {
      types: [...EXCHANGE_ERROR_TYPES, ...LEGACY_ONLY_ERROR_TYPES],
      union: { name: 'DecryptPhoneNumberResult', description: 'The verified number, or why there is none (ExchangeError, including the two failures only this flow has).' },
    },
    resolve: async (_root, { input }, ctx) => {
      const meta = { requestId: ctx.requestId, noticeVersion: checkNoticeVersion(input.noticeVersion), clientIp: ctx.clientIp ?? null };
      return withToken(ctx, await ctx.services.phone.decryptLegacy(ctx.session, input, meta), input.issueVerificationToken);
    },
  }),
);
