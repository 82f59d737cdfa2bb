import { createCipheriv, createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import { randomBytesPooled } from './random.js';

/**
 * Keys derived from the one root data key, one per use, so that a hash of a code
 * can never be compared with a hash of a session and a leak of one purpose's
 * derived key says nothing about another's.
 */
export interface DataKeys {
  /**
   * Keyed hash of a code: the claim's primary key; the code itself is never stored.
   * Not scoped by app, so one code sent under two appids is still one claim.
   */
  codeHash(...parts: string[]): string;
  /** Keyed hash of a session subject (an openid): who claimed a code, without storing the openid. */
  subjectHash(issuer: string, subject: string): string;
  /**
   * Keyed hash of a phone number, per use: the audit's hash and the one handed to downstream
   * services in verification tokens are different, so neither can be joined with the other.
   */
  phoneHash(phoneNumber: string, use: 'audit' | 'binding'): string;
  /** HMAC for the audit chain's links and its digests of personal fields. */
  auditMac(kind: 'chain' | 'personal', payload: string): string;
  /** AES-256-GCM; `context` is bound as additional data so a row's ciphertext cannot be moved to another row. */
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

function derive(root: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `wxphone:${purpose}`, 32));
}

export function createDataKeys(root: Buffer): DataKeys {
  const codeKey = derive(root, 'code-hash');
  const subjectKey = derive(root, 'subject-hash');
  const sealKey = derive(root, 'replay-answer');
  const phoneKeys = { audit: derive(root, 'phone-hash:audit'), binding: derive(root, 'phone-hash:binding') };
  const auditKeys = { chain: derive(root, 'audit-chain'), personal: derive(root, 'audit-personal') };
  const hmac = (key: Buffer, ...parts: string[]) => createHmac('sha256', key).update(parts.join('\u0000')).digest('base64url');
  return {
    codeHash: (...parts) => hmac(codeKey, ...parts),
    subjectHash: (issuer, subject) => hmac(subjectKey, issuer, subject),
    phoneHash: (phoneNumber, use) => hmac(phoneKeys[use], phoneNumber),
    auditMac: (kind, payload) => hmac(auditKeys[kind], payload),
    seal(plaintext, context) {
      const iv = randomBytesPooled(12);
      const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
    },
    open(sealed, context) {
      const raw = Buffer.from(sealed, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', sealKey, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}

/** 13812348000 → 138****8000: enough to recognise a number, not to use it. */
export function maskPhone(phoneNumber: string): string {
  const digits = phoneNumber.replace(/\D/g, '');
  if (digits.length >= 8) return `${digits.slice(0, 3)}****${digits.slice(-4)}`;
  return `${'*'.repeat(Math.max(0, digits.length - 2))}${digits.slice(-2)}`;
}
