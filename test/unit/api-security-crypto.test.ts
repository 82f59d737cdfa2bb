// API security mode's cryptography against WeChat's own worked example (the fixture names the
// page): the encrypted body byte for byte, the request signature's signed string, the platform
// signature and the decryption of the answer.
import { readFileSync } from 'node:fs';
import { constants, createHash, createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { additionalData, signedString } from '../../src/wechat/api-security/envelope.js';
import { openAnswer, sealRequest } from '../../src/wechat/api-security/transport.js';
import { parseApiSecurityKeys, WechatAnswerUnverifiedError, WechatUpstreamError, type ApiSecurityKeys } from '../../src/wechat/index.js';

const example = JSON.parse(readFileSync(new URL('../fixtures/api-security/api_signature_example.json', import.meta.url), 'utf8')) as {
  appid: string;
  urlpath: string;
  symmetricKey: { sn: string; key: string };
  privateKey: { sn: string; pem: string };
  platformCertificate: { sn: string; pem: string };
  request: { timestamp: number; fields: Record<string, unknown>; nonce: string; iv: string; additionalData: string; plaintext: string; body: string; headers: Record<string, string> };
  response: { headers: Record<string, string>; body: string; signedStringSha256: string; plaintext: string; answer: Record<string, unknown> };
};

function exampleKeys(overrides: Partial<{ platformCertificateSn: string; algorithm: string; signatureAlgorithm: string }> = {}): ApiSecurityKeys {
  const parsed = parseApiSecurityKeys(
    {
      algorithm: overrides.algorithm ?? 'AES256_GCM',
      signatureAlgorithm: overrides.signatureAlgorithm ?? 'RSAwithSHA256',
      symmetricKey: example.symmetricKey.key,
      symmetricKeySn: example.symmetricKey.sn,
      privateKey: example.privateKey.pem,
      privateKeySn: example.privateKey.sn,
      platformCertificate: example.platformCertificate.pem,
      platformCertificateSn: overrides.platformCertificateSn ?? example.platformCertificate.sn,
    },
    (field) => `apiSecurity.${field}`,
  );
  if (!parsed.keys) throw new Error(parsed.problems.join('; '));
  return parsed.keys;
}

const lower = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
const answerAt = (seconds: number) => ({ endpoint: 'getuserphonenumber' as const, urlpath: example.urlpath, appid: example.appid, keys: exampleKeys(), now: seconds * 1000 });
const answerTimestamp = Number(example.response.headers['Wechatmp-TimeStamp']);

function verifiesWithAppKey(message: string, signature: string): boolean {
  const publicKey = createPublicKey(example.privateKey.pem);
  return verify('sha256', Buffer.from(message), { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(signature, 'base64'));
}

describe('API security mode against WeChat\'s worked example', () => {
  it('encrypts the request into exactly the example\'s body (iv, data, authtag), with the example\'s additional data', () => {
    const { request } = example;
    expect(additionalData(example.urlpath, example.appid, request.timestamp, example.symmetricKey.sn)).toBe(request.additionalData);
    const sealed = sealRequest({ urlpath: example.urlpath, appid: example.appid, keys: exampleKeys(), fields: request.fields }, request.timestamp, Buffer.from(request.iv, 'base64'), request.nonce);
    expect(sealed.body).toBe(request.body);
    expect(sealed.headers).toMatchObject({ 'Wechatmp-Appid': example.appid, 'Wechatmp-TimeStamp': String(request.timestamp), 'Wechatmp-Serial': example.privateKey.sn });
    // PSS is randomised: our signature differs from the example's, and verifies over the same string.
    expect(verifiesWithAppKey(signedString(example.urlpath, example.appid, request.timestamp, sealed.body), sealed.headers['Wechatmp-Signature']!)).toBe(true);
  });

  it("signs urlpath\\nappid\\ntimestamp\\nbody, without the key's serial: the example's own signature verifies over that string only", () => {
    const { request } = example;
    const signature = request.headers['Wechatmp-Signature']!;
    expect(verifiesWithAppKey(signedString(example.urlpath, example.appid, request.timestamp, request.body), signature)).toBe(true);
    const withSerial = `${example.urlpath}\n${example.appid}\n${request.timestamp}\n${example.privateKey.sn}\n${request.body}`;
    expect(verifiesWithAppKey(withSerial, signature)).toBe(false);
  });

  it("verifies the platform's signature with the certificate and decrypts the answer", () => {
    const { response } = example;
    const signed = signedString(example.urlpath, example.appid, answerTimestamp, response.body);
    expect(createHash('sha256').update(signed).digest('hex')).toBe(response.signedStringSha256);
    const fields = openAnswer(answerAt(answerTimestamp + 2), { text: response.body, headers: lower(response.headers) });
    expect(fields).toEqual(response.answer);
  });

  it('refuses the answer when a byte of it changed, before decrypting', () => {
    const { response } = example;
    const tampered = response.body.replace('"iv":"r2WDQt56rEAmMuoR"', '"iv":"r2WDQt56rEAmMuoS"');
    const e = refusal(() => openAnswer(answerAt(answerTimestamp), { text: tampered, headers: lower(response.headers) }));
    expect(e.reason).toBe('bad_signature');
  });

  it("refuses a certificate number that is not the configured one (the example's deprecated one does not verify with this certificate)", () => {
    const { response } = example;
    const call = { ...answerAt(answerTimestamp), keys: exampleKeys({ platformCertificateSn: 'ffffffffffffffffffffffffffffffff' }) };
    expect(refusal(() => openAnswer(call, { text: response.body, headers: lower(response.headers) })).reason).toBe('unknown_serial');
    // Configured as the deprecated certificate: its signature is the one checked, and it is not this certificate's.
    const deprecated = { ...answerAt(answerTimestamp), keys: exampleKeys({ platformCertificateSn: response.headers['Wechatmp-Serial-Deprecated']! }) };
    expect(refusal(() => openAnswer(deprecated, { text: response.body, headers: lower(response.headers) })).reason).toBe('bad_signature');
  });

  it('refuses an answer signed more than 300 s before or after this host\'s clock', () => {
    const { response } = example;
    const at = (s: number) => () => openAnswer(answerAt(s), { text: response.body, headers: lower(response.headers) });
    expect(at(answerTimestamp + 300)()).toEqual(response.answer);
    expect(at(answerTimestamp - 300)()).toEqual(response.answer);
    expect(refusal(at(answerTimestamp + 301)).reason).toBe('stale_timestamp');
    expect(refusal(at(answerTimestamp - 301)).reason).toBe('stale_timestamp');
  });

  it('refuses an answer for another app, even signed', () => {
    const { response } = example;
    const call = { ...answerAt(answerTimestamp), appid: 'wx0000000000000000' };
    expect(refusal(() => openAnswer(call, { text: response.body, headers: lower(response.headers) })).reason).toBe('appid_mismatch');
  });
});

describe('API security keys', () => {
  it('parses the example keys; SM4_GCM and SM2withSM3 are refused by name, as is anything unknown', () => {
    expect(exampleKeys().algorithm).toBe('AES256_GCM');
    expect(() => exampleKeys({ algorithm: 'SM4_GCM' })).toThrow(/algorithm must be "AES256_GCM" \(SM4_GCM is offered by WeChat but not implemented here yet\)/);
    expect(() => exampleKeys({ signatureAlgorithm: 'SM2withSM3' })).toThrow(/signatureAlgorithm must be "RSAwithSHA256" \(SM2withSM3/);
    expect(() => exampleKeys({ algorithm: 'aes' })).toThrow(/algorithm must be "AES256_GCM"$/);
  });

  it('names a bad key without quoting it, and never takes a private key for the platform certificate', () => {
    const parsed = parseApiSecurityKeys(
      {
        algorithm: 'AES256_GCM',
        signatureAlgorithm: 'RSAwithSHA256',
        symmetricKey: 'c2hvcnQ=',
        symmetricKeySn: 's',
        privateKey: '-----BEGIN RSA PRIVATE KEY-----\nnot-a-key-but-secret-material\n-----END RSA PRIVATE KEY-----',
        privateKeySn: 'p',
        platformCertificate: example.privateKey.pem,
        platformCertificateSn: 'c',
      },
      (field) => `F(${field})`,
    );
    expect(parsed.keys).toBeUndefined();
    const text = parsed.problems.join('\n');
    expect(text).toMatch(/F\(symmetricKey\) must be/);
    expect(text).toMatch(/F\(privateKey\) must be an RSA private key/);
    expect(text).toMatch(/F\(platformCertificate\) must be/);
    expect(text).not.toMatch(/c2hvcnQ|not-a-key|MIIE/);
  });

  it('holds keys as KeyObjects: printing them shows no key material', () => {
    const keys = exampleKeys();
    const printed = `${JSON.stringify(keys)} ${String(Object.values(keys))}`;
    expect(printed).not.toContain(example.symmetricKey.key);
    expect(printed).not.toContain('MIIEowIBAAKCAQEA3FoQ');
    expect(Buffer.from(keys.symmetricKey.export()).toString('base64')).toBe(example.symmetricKey.key);
  });
});

function refusal(f: () => unknown): WechatAnswerUnverifiedError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(WechatAnswerUnverifiedError);
    expect(e).toBeInstanceOf(WechatUpstreamError);
    expect((e as WechatUpstreamError).kind).toBe('unverified');
    return e as WechatAnswerUnverifiedError;
  }
  throw new Error('expected a refusal');
}
