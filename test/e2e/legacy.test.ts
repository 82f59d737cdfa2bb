import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';

describe.each(BACKENDS)('decryptPhoneNumber, the legacy flow ($name)', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  it('jscode2session + AES-128-CBC gives the number, watermark checked, and replays to the same session', async () => {
    const phone = nextPhone();
    const login = await t.sim.loginCode({ appid: APP, openid: 'o_legacy', phoneNumber: phone });
    const c = await t.client('o_legacy');
    const input = { loginCode: login.code, encryptedData: login.encryptedData!, iv: login.iv!, purpose: 'login' };
    const r = (await c.DecryptPhoneNumber({ input })).decryptPhoneNumber;
    expect(r).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone, countryCode: '86', watermark: { appid: APP }, replayed: false });
    const again = (await c.DecryptPhoneNumber({ input })).decryptPhoneNumber;
    expect(again).toMatchObject({ __typename: 'PhoneNumberVerified', replayed: true });
    expect((await t.sim.stats()).calls['/sns/jscode2session']).toBe(1);
  });

  it('data encrypted under a rotated session key (wx.login called again) is SESSION_KEY_MISMATCH', async () => {
    const phone = nextPhone();
    const stale = await t.sim.loginCode({ appid: APP, openid: 'o_rotated', phoneNumber: phone });
    const fresh = await t.sim.loginCode({ appid: APP, openid: 'o_rotated' }); // rotates the key
    const c = await t.client('o_rotated');
    const r = (await c.DecryptPhoneNumber({ input: { loginCode: fresh.code, encryptedData: stale.encryptedData!, iv: stale.iv!, purpose: 'login' } }))
      .decryptPhoneNumber;
    expect(r).toMatchObject({ __typename: 'SessionKeyMismatchError', code: 'SESSION_KEY_MISMATCH', retryable: false });
    expect(r.__typename !== 'PhoneNumberVerified' && r.message).toMatch(/wx\.login/);
    expect(JSON.stringify(r)).not.toContain(phone);
  });

  it('base64 that lost its "+" is BASE64_MANGLED, detected before the login code is spent', async () => {
    let login;
    // Find data with a '+' in it (most has one; retry a few times to be sure).
    for (let i = 0; i < 20; i++) {
      login = await t.sim.loginCode({ appid: APP, openid: 'o_mangled', phoneNumber: nextPhone() });
      if (login.encryptedData!.includes('+')) break;
    }
    expect(login!.encryptedData).toContain('+');
    const before = (await t.sim.stats()).calls['/sns/jscode2session'] ?? 0;
    const c = await t.client('o_mangled');
    const mangled = login!.encryptedData!.replaceAll('+', ' ');
    const r = (await c.DecryptPhoneNumber({ input: { loginCode: login!.code, encryptedData: mangled, iv: login!.iv!, purpose: 'login' } })).decryptPhoneNumber;
    expect(r).toMatchObject({ __typename: 'Base64MangledError', code: 'BASE64_MANGLED' });
    expect(r.__typename !== 'PhoneNumberVerified' && r.message).toMatch(/\+/);
    expect((await t.sim.stats()).calls['/sns/jscode2session'] ?? 0).toBe(before);
    // The intact data with the unspent login code still works.
    const ok = (await c.DecryptPhoneNumber({ input: { loginCode: login!.code, encryptedData: login!.encryptedData!, iv: login!.iv!, purpose: 'login' } }))
      .decryptPhoneNumber;
    expect(ok.__typename).toBe('PhoneNumberVerified');
  });

  it('encryptedData wrapped into 76-column lines (as some clients send it) decrypts; it is not lost "+"', async () => {
    const phone = nextPhone();
    const login = await t.sim.loginCode({ appid: APP, openid: 'o_wrapped', phoneNumber: phone });
    const wrapped = `${login.encryptedData!.match(/.{1,76}/g)!.join('\r\n')}\r\n`;
    expect(wrapped).toContain('\r\n');
    const c = await t.client('o_wrapped');
    const r = (await c.DecryptPhoneNumber({ input: { loginCode: login.code, encryptedData: wrapped, iv: `${login.iv!}\n`, purpose: 'login' } })).decryptPhoneNumber;
    expect(r).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone, replayed: false });
  });

  it("another user's login code is refused", async () => {
    const login = await t.sim.loginCode({ appid: APP, openid: 'o_owner', phoneNumber: nextPhone() });
    const c = await t.client('o_intruder');
    const r = (await c.DecryptPhoneNumber({ input: { loginCode: login.code, encryptedData: login.encryptedData!, iv: login.iv!, purpose: 'login' } }))
      .decryptPhoneNumber;
    expect(r).toMatchObject({ code: 'INVALID_CODE' });
  });
});
