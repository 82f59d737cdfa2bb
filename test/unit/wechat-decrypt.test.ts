import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WechatDecryptError, decryptPhoneData } from '../../src/wechat/index.js';
import type { DecryptFailureReason } from '../../src/wechat/index.js';

const APPID = 'wx4f4bc4dec97d474b';
const PHONE = '13800138000';

function encrypt(plaintext: string, key = randomBytes(16), iv = randomBytes(16)) {
  const cipher = createCipheriv('aes-128-cbc', key, iv);
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { sessionKey: key.toString('base64'), iv: iv.toString('base64'), encryptedData: data.toString('base64'), key, ivBytes: iv };
}

function phoneJson(over: Record<string, unknown> = {}) {
  return JSON.stringify({
    phoneNumber: PHONE,
    purePhoneNumber: PHONE,
    countryCode: '86',
    watermark: { appid: APPID, timestamp: 1637744274 },
    ...over,
  });
}

function failure(fn: () => unknown): WechatDecryptError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WechatDecryptError);
    return e as WechatDecryptError;
  }
  throw new Error('expected a WechatDecryptError');
}

function expectReason(fn: () => unknown, reason: DecryptFailureReason): WechatDecryptError {
  const e = failure(fn);
  expect(e.reason).toBe(reason);
  return e;
}

describe('decryptPhoneData', () => {
  it('round-trips with a generated key', () => {
    const enc = encrypt(phoneJson());
    expect(decryptPhoneData({ ...enc, appid: APPID })).toEqual({
      phoneNumber: PHONE,
      purePhoneNumber: PHONE,
      countryCode: '86',
      watermark: { appid: APPID, timestamp: 1637744274 },
    });
  });

  it('normalises a numeric countryCode to a string', () => {
    const enc = encrypt(phoneJson({ countryCode: 852, phoneNumber: '+852 61234567', purePhoneNumber: '61234567' }));
    const info = decryptPhoneData({ ...enc, appid: APPID });
    expect(info.countryCode).toBe('852');
    expect(info.purePhoneNumber).toBe('61234567');
  });

  it('a wrong session key is SESSION_KEY_MISMATCH, and says why', () => {
    const enc = encrypt(phoneJson());
    for (let i = 0; i < 20; i++) {
      const e = expectReason(
        () => decryptPhoneData({ ...enc, sessionKey: randomBytes(16).toString('base64'), appid: APPID }),
        'SESSION_KEY_MISMATCH',
      );
      expect(e.message).toMatch(/wx\.login/);
    }
  });

  it('a wrong key whose padding happens to look valid is still SESSION_KEY_MISMATCH, not MALFORMED', () => {
    const enc = encrypt(phoneJson());
    const data = Buffer.from(enc.encryptedData, 'base64');
    // About one wrong key in 256 yields valid PKCS#7 padding; find one.
    let lucky: Buffer | undefined;
    for (let i = 0; i < 20_000 && !lucky; i++) {
      const k = randomBytes(16);
      try {
        const d = createDecipheriv('aes-128-cbc', k, enc.ivBytes);
        Buffer.concat([d.update(data), d.final()]);
        lucky = k;
      } catch {
        // bad padding: the common case, keep looking
      }
    }
    expect(lucky).toBeDefined();
    expectReason(
      () => decryptPhoneData({ ...enc, sessionKey: lucky!.toString('base64'), appid: APPID }),
      'SESSION_KEY_MISMATCH',
    );
  });

  it('base64 wrapped into lines (76 columns with CRLF, or LF) decodes: line breaks are not a lost "+"', () => {
    const enc = encrypt(phoneJson());
    const wrap = (b64: string, width: number, eol: string) => (b64.match(new RegExp(`.{1,${width}}`, 'g')) ?? []).join(eol) + eol;
    const expected = { phoneNumber: PHONE, purePhoneNumber: PHONE, countryCode: '86', watermark: { appid: APPID, timestamp: 1637744274 } };
    for (const eol of ['\r\n', '\n']) {
      const wrapped = { sessionKey: `${enc.sessionKey}${eol}`, iv: wrap(enc.iv, 76, eol), encryptedData: wrap(enc.encryptedData, 76, eol) };
      expect(wrapped.encryptedData).toContain(eol);
      expect(decryptPhoneData({ ...wrapped, appid: APPID })).toEqual(expected);
    }
  });

  it("WeChat's own demo data, wrapped at 32 columns as it was printed, decodes and decrypts (to user info, so MALFORMED, not BASE64_MANGLED)", () => {
    // The encrypted-data demo WeChat published (user info under the session key below); SDKs keep it in their tests.
    const encryptedData = [
      'CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZM',
      'QmRzooG2xrDcvSnxIMXFufNstNGTyaGS',
      '9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+',
      '3hVbJSRgv+4lGOETKUQz6OYStslQ142d',
      'NCuabNPGBzlooOmB231qMM85d2/fV6Ch',
      'evvXvQP8Hkue1poOFtnEtpyxVLW1zAo6',
      '/1Xx1COxFvrc2d7UL/lmHInNlxuacJXw',
      'u0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn',
      '/Hz7saL8xz+W//FRAUid1OksQaQx4CMs',
      '8LOddcQhULW4ucetDf96JcR3g0gfRK4P',
      'C7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB',
      '6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns',
      '/8wR2SiRS7MNACwTyrGvt9ts8p12PKFd',
      'lqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYV',
      'oKlaRv85IfVunYzO0IKXsyl7JCUjCpoG',
      '20f0a04COwfneQAGGwd5oa+T8yO5hzuy',
      'Db/XcxxmK01EpqOyuxINew==',
    ].join('\n');
    const e = expectReason(
      () => decryptPhoneData({ sessionKey: 'tiihtNczf5v6AKRyjwEUhQ==', iv: 'r7BXXKkLb8qrSNn05n0qiA==', encryptedData, appid: APPID }),
      'MALFORMED',
    );
    expect(e.message).toMatch(/phoneNumber/);
  });

  it('spaces stay the lost-"+" signal even in wrapped base64; other whitespace is plain damage', () => {
    let enc = encrypt(phoneJson());
    while (!enc.encryptedData.includes('+')) enc = encrypt(phoneJson());
    const spaced = enc.encryptedData.replaceAll('+', ' ');
    const wrapped = `${spaced.slice(0, 40)}\r\n${spaced.slice(40)}`;
    const lost = expectReason(() => decryptPhoneData({ ...enc, encryptedData: wrapped, appid: APPID }), 'BASE64_MANGLED');
    expect(lost.message).toMatch(/URL-decoding/);
    const tabbed = expectReason(() => decryptPhoneData({ ...enc, encryptedData: `${enc.encryptedData.slice(0, 40)}\t${enc.encryptedData.slice(40)}`, appid: APPID }), 'BASE64_MANGLED');
    expect(tabbed.message).not.toMatch(/URL-decoding/);
  });

  it("base64 whose '+' became spaces is BASE64_MANGLED and names URL-decoding", () => {
    let enc = encrypt(phoneJson());
    while (!enc.encryptedData.includes('+')) enc = encrypt(phoneJson());
    const e = expectReason(
      () => decryptPhoneData({ ...enc, encryptedData: enc.encryptedData.replaceAll('+', ' '), appid: APPID }),
      'BASE64_MANGLED',
    );
    expect(e.message).toMatch(/encryptedData/);
    expect(e.message).toMatch(/URL-decoding/);
  });

  it("base64 that lost its '+' altogether is BASE64_MANGLED (length no longer whole blocks)", () => {
    let enc = encrypt(phoneJson());
    while (!enc.encryptedData.includes('+')) enc = encrypt(phoneJson());
    expectReason(
      () => decryptPhoneData({ ...enc, encryptedData: enc.encryptedData.replaceAll('+', ''), appid: APPID }),
      'BASE64_MANGLED',
    );
  });

  it('an iv of the wrong length or a key with foreign characters is BASE64_MANGLED', () => {
    const enc = encrypt(phoneJson());
    const e = expectReason(
      () => decryptPhoneData({ ...enc, iv: randomBytes(12).toString('base64'), appid: APPID }),
      'BASE64_MANGLED',
    );
    expect(e.message).toMatch(/^iv /);
    expectReason(() => decryptPhoneData({ ...enc, sessionKey: `${enc.sessionKey.slice(0, -3)}%2B=`, appid: APPID }), 'BASE64_MANGLED');
  });

  it('a plaintext that is not phone JSON is MALFORMED', () => {
    const notJson = encrypt('{"phoneNumber": "138');
    expectReason(() => decryptPhoneData({ ...notJson, appid: APPID }), 'MALFORMED');
    const wrongShape = encrypt(JSON.stringify({ nickName: 'x', watermark: { appid: APPID, timestamp: 1 } }));
    const e = expectReason(() => decryptPhoneData({ ...wrongShape, appid: APPID }), 'MALFORMED');
    expect(e.message).toMatch(/phoneNumber/);
  });

  it('a watermark for another app is WATERMARK_MISMATCH', () => {
    const enc = encrypt(phoneJson({ watermark: { appid: 'wxOTHERAPP0000000', timestamp: 1 } }));
    const e = expectReason(() => decryptPhoneData({ ...enc, appid: APPID }), 'WATERMARK_MISMATCH');
    expect(e.message).toContain('wxOTHERAPP0000000');
  });

  it('never puts the session key, the data or the phone number in a message', () => {
    const enc = encrypt(phoneJson({ watermark: { appid: 'wxOTHER', timestamp: 1 } }));
    const messages = [
      failure(() => decryptPhoneData({ ...enc, appid: APPID })),
      failure(() => decryptPhoneData({ ...enc, sessionKey: randomBytes(16).toString('base64'), appid: APPID })),
      failure(() => decryptPhoneData({ ...enc, encryptedData: enc.encryptedData.slice(1), appid: APPID })),
    ].map((e) => `${e.message} ${JSON.stringify(e)}`);
    for (const m of messages) {
      expect(m).not.toContain(enc.sessionKey);
      expect(m).not.toContain(PHONE);
      expect(m).not.toContain(enc.encryptedData.slice(0, 16));
    }
  });
});
