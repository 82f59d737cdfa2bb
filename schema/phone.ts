import { builder } from './builder.js';
import { EXCHANGE_ERROR_TYPES } from './exchange-errors.js';
import type { VerifiedPhone } from '../src/phone/service.js';

const Watermark = builder.objectRef<VerifiedPhone['watermark']>('Watermark').implement({
  fields: (t) => ({
    appid: t.exposeString('appid', { description: 'The mini program WeChat verified the number for; always the requested app.' }),
    timestamp: t.exposeInt('timestamp', { description: 'When the user made the request (Unix seconds).' }),
  }),
});

const PhoneNumberVerified = builder.objectRef<VerifiedPhone>('PhoneNumberVerified').implement({
  description: 'The verified number. This is the one place a phone number leaves the gateway.',
  fields: (t) => ({
    phoneNumber: t.exposeString('phoneNumber', { description: 'With the calling code for numbers outside mainland China.' }),
    purePhoneNumber: t.exposeString('purePhoneNumber', { description: 'Without the calling code.' }),
    countryCode: t.exposeString('countryCode', { description: 'The calling code, e.g. "86".' }),
    watermark: t.field({ type: Watermark, resolve: (p) => p.watermark }),
    replayed: t.exposeBoolean('replayed', {
      description: 'True when the same session sent the same code again and got the stored answer; WeChat was not called again.',
    }),
  }),
});

const ExchangePhoneCodeInput = builder.inputType('ExchangePhoneCodeInput', {
  fields: (t) => ({
    code: t.string({ description: 'The code from the getPhoneNumber button (not a wx.login code). Valid 5 minutes, once.' }),
    purpose: t.string({ description: "Why the number is needed, recorded as consent; one of the app's configured purposes." }),
    appid: t.string({ required: false, description: "The mini program; defaults to the session token's appid." }),
  }),
});

const DecryptPhoneNumberInput = builder.inputType('DecryptPhoneNumberInput', {
  description: 'Legacy flow (base library before 2.21.2): a wx.login code plus the encrypted data from the button.',
  fields: (t) => ({
    loginCode: t.string({ description: 'The wx.login code, exchanged through jscode2session.' }),
    encryptedData: t.string({ description: 'Base64, exactly as the button gave it.' }),
    iv: t.string({ description: 'Base64, exactly as the button gave it.' }),
    purpose: t.string(),
    appid: t.string({ required: false }),
  }),
});

const errors = { types: EXCHANGE_ERROR_TYPES, union: { name: 'ExchangePhoneCodeResult' } };

builder.mutationField('exchangePhoneCode', (t) =>
  t.field({
    type: PhoneNumberVerified,
    description: 'Exchanges a phone-number code for the verified number, at most once per code.',
    authScopes: { scope: 'phone:exchange' },
    args: { input: t.arg({ type: ExchangePhoneCodeInput }) },
    errors,
    resolve: (_root, { input }, ctx) => ctx.services.phone.exchange(ctx.session, input),
  }),
);

builder.mutationField('decryptPhoneNumber', (t) =>
  t.field({
    type: PhoneNumberVerified,
    description: 'Legacy flow: jscode2session, then AES-128-CBC decryption of the button data, watermark checked.',
    authScopes: { scope: 'phone:exchange' },
    args: { input: t.arg({ type: DecryptPhoneNumberInput }) },
    errors: { ...errors, union: { name: 'DecryptPhoneNumberResult' } },
    resolve: (_root, { input }, ctx) => ctx.services.phone.decryptLegacy(ctx.session, input),
  }),
);
