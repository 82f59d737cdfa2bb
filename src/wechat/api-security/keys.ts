// The keys of WeChat's API security mode (安全鉴权模式), parsed once at start-up.
//
// Key material is held as KeyObjects: printing, logging or JSON-serialising one shows no
// key bytes, so a config object that ends up in a log line leaks nothing.

import { X509Certificate, createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';

/** Encryption algorithms the console offers; only these are implemented. */
export const API_SECURITY_ALGORITHMS = ['AES256_GCM'] as const;
export type ApiSecurityAlgorithm = (typeof API_SECURITY_ALGORITHMS)[number];
/** Signature algorithms the console offers; only these are implemented. */
export const API_SECURITY_SIGNATURE_ALGORITHMS = ['RSAwithSHA256'] as const;
export type ApiSecuritySignatureAlgorithm = (typeof API_SECURITY_SIGNATURE_ALGORITHMS)[number];
/** Offered by WeChat, deliberately refused here until implemented and tested against a vector. */
const NOT_YET: Readonly<Record<string, string>> = { SM4_GCM: 'SM4_GCM', SM2withSM3: 'SM2withSM3' };

export interface ApiSecurityKeys {
  readonly algorithm: ApiSecurityAlgorithm;
  readonly signatureAlgorithm: ApiSecuritySignatureAlgorithm;
  /** The console's symmetric key (32 bytes) that encrypts requests and answers. */
  readonly symmetricKey: KeyObject;
  readonly symmetricKeySn: string;
  /** The app's RSA private key: signs requests. Its public half is what was uploaded to the console. */
  readonly privateKey: KeyObject;
  readonly privateKeySn: string;
  /** The public key of WeChat's platform certificate: verifies answers. */
  readonly platformKey: KeyObject;
  /** The certificate's number as the console shows it (not the X.509 serial number). */
  readonly platformCertificateSn: string;
}

/** What the operator gave, already read from the config file, the environment or a file. */
export interface ApiSecurityMaterial {
  algorithm: string;
  signatureAlgorithm: string;
  symmetricKey: string;
  symmetricKeySn: string;
  privateKey: string | Buffer;
  privateKeySn: string;
  platformCertificate: string | Buffer;
  platformCertificateSn: string;
}

export type ApiSecurityField = 'algorithm' | 'signatureAlgorithm' | 'symmetricKey' | 'privateKey' | 'platformCertificate';

/**
 * Parses and checks the material. Problems name the field (through `where`, which knows
 * whether it came from the file, an env var or a key file), never a value.
 */
export function parseApiSecurityKeys(
  m: ApiSecurityMaterial,
  where: (field: ApiSecurityField) => string,
): { keys: ApiSecurityKeys; problems: [] } | { keys: undefined; problems: string[] } {
  const problems: string[] = [];
  const algorithm = oneOf(API_SECURITY_ALGORITHMS, m.algorithm);
  if (!algorithm) problems.push(unsupported(where('algorithm'), m.algorithm, API_SECURITY_ALGORITHMS));
  const signatureAlgorithm = oneOf(API_SECURITY_SIGNATURE_ALGORITHMS, m.signatureAlgorithm);
  if (!signatureAlgorithm) problems.push(unsupported(where('signatureAlgorithm'), m.signatureAlgorithm, API_SECURITY_SIGNATURE_ALGORITHMS));

  const symmetricKey = symmetricKeyFrom(m.symmetricKey);
  if (!symmetricKey) problems.push(`${where('symmetricKey')} must be the console's API symmetric key: 32 bytes, base64-encoded (44 characters)`);
  const privateKey = rsaPrivateKeyFrom(m.privateKey);
  if (!privateKey) problems.push(`${where('privateKey')} must be an RSA private key in PEM (PKCS#1 "BEGIN RSA PRIVATE KEY" or PKCS#8 "BEGIN PRIVATE KEY")`);
  const platformKey = rsaPublicKeyFrom(m.platformCertificate);
  if (!platformKey) problems.push(`${where('platformCertificate')} must be WeChat's platform certificate (PEM or DER) or its RSA public key in PEM`);

  if (problems.length || !algorithm || !signatureAlgorithm || !symmetricKey || !privateKey || !platformKey) {
    return { keys: undefined, problems };
  }
  return {
    keys: Object.freeze({
      algorithm,
      signatureAlgorithm,
      symmetricKey,
      symmetricKeySn: m.symmetricKeySn,
      privateKey,
      privateKeySn: m.privateKeySn,
      platformKey,
      platformCertificateSn: m.platformCertificateSn,
    }),
    problems: [],
  };
}

function oneOf<T extends string>(allowed: readonly T[], value: string): T | undefined {
  return (allowed as readonly string[]).includes(value) ? (value as T) : undefined;
}

function unsupported(where: string, value: string, allowed: readonly string[]): string {
  const later = Object.hasOwn(NOT_YET, value) ? ` (${value} is offered by WeChat but not implemented here yet)` : '';
  return `${where} must be ${allowed.map((a) => `"${a}"`).join(' or ')}${later}`;
}

function symmetricKeyFrom(text: string): KeyObject | undefined {
  const b64 = text.trim();
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(b64)) return undefined;
  const raw = Buffer.from(b64, 'base64');
  return raw.length === 32 ? createSecretKey(raw) : undefined;
}

/** Env vars often carry a PEM on one line with literal "\n" sequences. */
function pemText(material: string | Buffer): string | Buffer {
  if (typeof material !== 'string') return material;
  const text = material.trim();
  return text.includes('-----BEGIN') && !text.includes('\n') ? text.replace(/\\n/g, '\n') : text;
}

function rsaPrivateKeyFrom(material: string | Buffer): KeyObject | undefined {
  try {
    const key = createPrivateKey(pemText(material));
    return key.asymmetricKeyType === 'rsa' ? key : undefined;
  } catch {
    return undefined; // the parser's message is not passed on: it may quote the material
  }
}

function rsaPublicKeyFrom(material: string | Buffer): KeyObject | undefined {
  const text = pemText(material);
  // createPublicKey would accept a private key too (and derive its public half): a private key
  // here is a mix-up of files, not WeChat's certificate.
  if (text.includes('PRIVATE KEY')) return undefined;
  let key: KeyObject | undefined;
  try {
    key = new X509Certificate(text).publicKey;
  } catch {
    try {
      key = createPublicKey(text);
    } catch {
      return undefined;
    }
  }
  return key.asymmetricKeyType === 'rsa' ? key : undefined;
}
