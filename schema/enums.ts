import { builder } from './builder.js';
import type { Product } from '../src/billing/rules.js';
import type { SubjectType } from '../src/wechat/subject-types.js';
import type { AuditRecord } from '../src/consent/audit-record.js';
import { EXCHANGE_ERROR_CODES, type ExchangeErrorCode } from '../src/phone/errors.js';

// The domain keeps lower-case words (as config files and the database hold them); the API names
// them as enums, so codegen gives clients closed unions instead of strings to guess at.

const upper = <T extends string>(v: T) => v.toUpperCase().replace(/-/g, '_');

export const ProductEnum = builder.enumType('Product', {
  description: 'Which of the two phone-number components an app or pack is for.',
  values: { QUICK: { description: '手机号快速验证, 0.03 yuan a call.' }, REALTIME: { description: '手机号实时验证, 0.04 yuan a call.' } },
});
export const productName = (p: Product) => (p === 'quick' ? 'QUICK' : 'REALTIME') as 'QUICK' | 'REALTIME';

export const SubjectTypeEnum = builder.enumType('SubjectType', {
  description: 'The kind of subject (主体类型) the mini program is registered to; it decides exemption with the category.',
  values: {
    ENTERPRISE: { description: 'A company (企业).' },
    INDIVIDUAL: { description: 'A person (个人).' },
    GOVERNMENT: { description: 'A government body (政府).' },
    NON_PROFIT: { description: 'A non-profit organisation (其他组织 registered as non-profit).' },
    PUBLIC_INSTITUTION: { description: 'A public institution (事业单位).' },
    OTHER: { description: 'Anything else.' },
  },
});
export const subjectTypeName = (s: SubjectType) => upper(s) as 'ENTERPRISE' | 'INDIVIDUAL' | 'GOVERNMENT' | 'NON_PROFIT' | 'PUBLIC_INSTITUTION' | 'OTHER';

export const AuditRecordKindEnum = builder.enumType('AuditRecordKind', {
  description: 'What a consent record records.',
  values: {
    EXCHANGE: { description: 'An exchange or legacy decrypt: the number disclosed, replayed, or refused.' },
    WITHDRAWAL: { description: 'The user withdrew consent for purposes.' },
    CONSENT: { description: 'The user consented again after a withdrawal.' },
    ERASURE: { description: "A subject's personal fields were erased." },
    CHECKPOINT: { description: 'A periodic anchor of the chain (its detail holds the count and head).' },
  },
});
export const auditKindName = (k: AuditRecord['kind']) => upper(k) as 'EXCHANGE' | 'WITHDRAWAL' | 'CONSENT' | 'ERASURE' | 'CHECKPOINT';

export const ExchangeFlowEnum = builder.enumType('ExchangeFlow', {
  description: 'How the number was asked for.',
  values: {
    EXCHANGE: { description: 'exchangePhoneCode: the button code exchanged through getuserphonenumber.' },
    LEGACY: { description: 'decryptPhoneNumber: a wx.login code and the encrypted button data.' },
  },
});
export const flowName = (f: NonNullable<AuditRecord['flow']>) => upper(f) as 'EXCHANGE' | 'LEGACY';

export const ExchangeOutcomeEnum = builder.enumType('ExchangeOutcome', {
  description: 'How an exchange ended.',
  values: {
    DISCLOSED: { description: 'WeChat verified the number and the gateway returned it.' },
    REPLAYED: { description: 'The same session sent the same code again and got the stored answer.' },
    REFUSED: { description: 'No number: the record carries the ExchangeErrorCode.' },
  },
});
export function outcomeName(o: string | null): 'DISCLOSED' | 'REPLAYED' | 'REFUSED' | null {
  return o === 'disclosed' || o === 'replayed' || o === 'refused' ? (upper(o) as 'DISCLOSED' | 'REPLAYED' | 'REFUSED') : null;
}

/** A stored error code as the enum; one this release does not know (written by a newer one) reads as null. */
export function errorCodeName(code: string | null): ExchangeErrorCode | null {
  return code !== null && (EXCHANGE_ERROR_CODES as readonly string[]).includes(code) ? (code as ExchangeErrorCode) : null;
}
