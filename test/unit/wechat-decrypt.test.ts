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
