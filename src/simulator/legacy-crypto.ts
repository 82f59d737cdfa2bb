import { createCipheriv, randomBytes } from 'node:crypto';

/**
 * What the pre-2.21.2 button hands the mini program: the phone number as JSON,
 * AES-128-CBC with PKCS#7 padding under the user's session key.
 */

export interface EncryptedPhone {
  encryptedData: string;
  iv: string;
}

export interface LegacyPhonePayload {
  phoneNumber: string;
  purePhoneNumber: string;
  /** A string, as in getuserphonenumber's answer. */
  countryCode: string;
  watermark: { appid: string; timestamp: number };
}

export function encryptPhonePayload(sessionKey: Buffer, payload: LegacyPhonePayload): EncryptedPhone {
  const iv = randomBytes(16);
  // Node's default auto-padding is PKCS#7.
  const cipher = createCipheriv('aes-128-cbc', sessionKey, iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return { encryptedData: data.toString('base64'), iv: iv.toString('base64') };
}
