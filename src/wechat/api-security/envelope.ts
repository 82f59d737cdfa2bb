// The cryptography of API security mode, with nothing else in it: the encrypted body
// {iv, data, authtag} (AES-256-GCM), its additional data, and RSA-PSS signatures over the
// signed string. Pure functions, so the console's worked example can pin every byte.

import { constants, createCipheriv, createDecipheriv, sign, verify, type KeyObject } from 'node:crypto';

export interface Envelope {
  iv: string;
  data: string;
  authtag: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** WeChat's guide: PSS with a salt as long as the SHA-256 digest. */
const REQUEST_SALT_LENGTH = 32;

/** GCM's additional data: `urlpath|appid|timestamp|sn`, sn being the symmetric key's number. */
export function additionalData(urlpath: string, appid: string, timestamp: number, symmetricKeySn: string): string {
  return `${urlpath}|${appid}|${timestamp}|${symmetricKeySn}`;
}

/**
 * What is signed, requests and answers alike: `urlpath\nappid\ntimestamp\nbody`, with no
 * trailing newline. The key's serial number is not part of it (it travels in Wechatmp-Serial).
 */
export function signedString(urlpath: string, appid: string, timestamp: number, body: string): string {
  return `${urlpath}\n${appid}\n${timestamp}\n${body}`;
}

/** Encrypts `plaintext` and returns the request body, exactly as it is then signed and sent. */
export function sealEnvelope(key: KeyObject, plaintext: string, aad: string, iv: Buffer): string {
  if (iv.length !== IV_BYTES) throw new RangeError(`the IV must be ${IV_BYTES} bytes`);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const envelope: Envelope = { iv: iv.toString('base64'), data: data.toString('base64'), authtag: cipher.getAuthTag().toString('base64') };
  return JSON.stringify(envelope);
}

/** The plaintext, or undefined when the envelope does not decrypt under this key and additional data. */
export function openEnvelope(key: KeyObject, envelope: Envelope, aad: string): string | undefined {
  const iv = Buffer.from(envelope.iv, 'base64');
  const tag = Buffer.from(envelope.authtag, 'base64');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(envelope.data, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** RSAwithSHA256, PSS padding, salt length 32, base64: the Wechatmp-Signature of a request. */
export function signRequest(privateKey: KeyObject, message: string): string {
  return sign('sha256', Buffer.from(message, 'utf8'), {
    key: privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: REQUEST_SALT_LENGTH,
  }).toString('base64');
}

/** Checks a platform signature; the guide leaves its salt length open, so any is accepted. */
export function verifyAnswer(publicKey: KeyObject, message: string, signature: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  try {
    return verify(
      'sha256',
      Buffer.from(message, 'utf8'),
      { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
      Buffer.from(signature, 'base64'),
    );
  } catch {
    return false;
  }
}

/** A parsed body that has the shape of an encrypted envelope. */
export function asEnvelope(value: unknown): Envelope | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { iv, data, authtag } = value as Record<string, unknown>;
  return typeof iv === 'string' && typeof data === 'string' && typeof authtag === 'string' ? { iv, data, authtag } : undefined;
}
