// An app in WeChat's API security mode, end to end: the gateway (keys from env vars and the
// config file) exchanges codes with the simulator, which enforces the mode; answers whose
// platform signature does not check out are refused as OUTCOME_UNKNOWN, and WeChat's refusal
// of a badly signed request as GATEWAY_MISCONFIGURED with the code still usable.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, nextPhone, rememberSecret, startTestGateway, type TestGateway } from '../support/gateway.js';
import type { SimApiSecurityInput } from '../../src/simulator/index.js';

const SECURED = { appid: 'wx00000000000000a5', secret: 'secured-app-secret-0123456789ab' };
const SNS = { symmetricKeySn: 'e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6', privateKeySn: 'f1f2f3f4f5f6f7f8f9f0f1f2f3f4f5f6', platformCertificateSn: 'a9a8a7a6a5a4a3a2a1a0a9a8a7a6a5a4' };

const pem = (k: KeyObject) => (k.type === 'private' ? k.export({ type: 'pkcs1', format: 'pem' }) : k.export({ type: 'spki', format: 'pem' })).toString();

describe.each(BACKENDS)('API security mode end to end ($name)', (backend) => {
  let t: TestGateway;
  const symmetricKey = randomBytes(32).toString('base64');
  let app: { privateKey: KeyObject; publicKey: KeyObject };
  let platform: { privateKey: KeyObject; publicKey: KeyObject };
  let wechatConsole: SimApiSecurityInput;

  /** What the WeChat console holds for the app; a test may change it to play a misconfiguration. */
  const registerWithWechat = (changes: Partial<SimApiSecurityInput> = {}) =>
    t.simulator.state.registerApp({ ...SECURED, apiSecurity: { ...wechatConsole, ...changes } });

  beforeAll(async () => {
    app = generateKeyPairSync('rsa', { modulusLength: 2048 });
    platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const privateKey = pem(app.privateKey);
    rememberSecret(symmetricKey, ...privateKey.split('\n').filter((l) => l.length > 40));
    wechatConsole = {
      symmetricKey,
      symmetricKeySn: SNS.symmetricKeySn,
      publicKey: pem(app.publicKey),
      publicKeySn: SNS.privateKeySn,
      platformCertificateSn: SNS.platformCertificateSn,
      platformPrivateKey: pem(platform.privateKey),
    };
    t = await startTestGateway({
      backend,
      extraApps: [
        {
          ...SECURED,
          purposes: ['login'],
          apiSecurity: { ...SNS, symmetricKeyEnv: 'WX_A5_SYMMETRIC_KEY', privateKeyEnv: 'WX_A5_PRIVATE_KEY', platformCertificate: pem(platform.publicKey) },
        },
      ],
      env: { WX_A5_SYMMETRIC_KEY: symmetricKey, WX_A5_PRIVATE_KEY: privateKey },
    });
  });
  afterAll(() => t?.close());
  beforeEach(() => registerWithWechat());

  const exchange = async (code: string, sub = 'o_secured_user') =>
    (await (await t.client(sub, { appid: SECURED.appid })).ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode;

  it('exchanges a code: encrypted and signed on the way out, verified and decrypted on the way back', async () => {
    const phone = nextPhone();
    const r = await exchange(await mintCode(t.sim, phone, SECURED.appid));
    expect(r).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone, countryCode: '86', watermark: { appid: SECURED.appid }, replayed: false });
    expect(t.simulator.state.stats().codesExchanged).toBeGreaterThanOrEqual(1);
  });

  it("refuses an answer signed with another platform key as OUTCOME_UNKNOWN (WeChat used the code), and says why in the log", async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    registerWithWechat({ platformPrivateKey: pem(other.privateKey) });
    const before = t.simulator.state.stats().codesExchanged;
    const r = await exchange(await mintCode(t.sim, nextPhone(), SECURED.appid));
    expect(r).toMatchObject({ __typename: 'OutcomeUnknownError', code: 'OUTCOME_UNKNOWN' });
    expect(t.simulator.state.stats().codesExchanged).toBe(before + 1);
    expect(t.logs.some((l) => l.includes('"reason":"bad_signature"') && l.includes(SECURED.appid))).toBe(true);
  });

  it('refuses an answer from a platform certificate it does not know as OUTCOME_UNKNOWN', async () => {
    registerWithWechat({ platformCertificateSn: '00000000000000000000000000000000' });
    const r = await exchange(await mintCode(t.sim, nextPhone(), SECURED.appid));
    expect(r).toMatchObject({ __typename: 'OutcomeUnknownError', code: 'OUTCOME_UNKNOWN' });
    expect(t.logs.some((l) => l.includes('"reason":"unknown_serial"') && l.includes('"serial":"00000000000000000000000000000000"'))).toBe(true);
  });

  it('a request WeChat cannot verify (another public key in the console) is GATEWAY_MISCONFIGURED, and the code still works once fixed', async () => {
    registerWithWechat({ publicKey: pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey) });
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone, SECURED.appid);
    const refused = await exchange(code);
    expect(refused).toMatchObject({ __typename: 'GatewayMisconfiguredError', code: 'GATEWAY_MISCONFIGURED', retryable: false });
    expect(refused.__typename !== 'PhoneNumberVerified' && refused.message).toMatch(/40234/);
    registerWithWechat();
    expect(await exchange(code)).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: phone });
  });
});
