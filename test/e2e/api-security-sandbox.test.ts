// A sandbox whose config has an app in API security mode: the in-process simulator gets the
// console's side of the app's keys and signs with a platform key of its own, which the sandbox
// gateway verifies with instead of WeChat's certificate.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createGateway, type Gateway } from '../../app/gateway.js';
import { createLogger } from '../../src/log.js';
import { signSessionToken } from '../../src/auth/index.js';
import { createGatewayClient } from '../../sdk/client.js';

const APPID = 'wx00000000000000a6';

describe('sandbox with an app in API security mode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-apisec-sandbox-'));
  let gateway: Gateway;
  let url: string;

  beforeAll(async () => {
    const wechatCertificate = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeFileSync(join(dir, 'app.key'), privateKey);
    writeFileSync(
      join(dir, 'wxphone.config.json'),
      JSON.stringify({
        apps: [
          {
            appid: APPID,
            secret: 'sandbox-secured-secret-0123456789',
            apiSecurity: {
              algorithm: 'AES256_GCM',
              symmetricKey: randomBytes(32).toString('base64'),
              symmetricKeySn: 'sym0000000000000000000000000001',
              privateKeyFile: 'app.key',
              privateKeySn: 'app0000000000000000000000000001',
              platformCertificate: wechatCertificate,
              platformCertificateSn: 'plat000000000000000000000000001',
            },
          },
        ],
      }),
    );
    const config = loadConfig({ SIMULATOR_PORT: '0', DATABASE_URL: `file:${join(dir, 'g.db')}` }, dir);
    expect(config.sandbox).toBe(true);
    gateway = await createGateway(config, { log: createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }) });
    url = (await gateway.listen(0, '127.0.0.1')).url;
  });
  afterAll(async () => {
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers the app with the simulator in the mode, and exchanges a code through it', async () => {
    const sim = gateway.simulator!;
    expect(sim.state.apiSecurity.summary(APPID)).toMatchObject({ symmetricKeySn: 'sym0000000000000000000000000001', publicKeySn: 'app0000000000000000000000000001', platformCertificateSn: 'plat000000000000000000000000001' });
    const minted = sim.state.mintPhoneCode(APPID, '13500135000');
    if (!('code' in minted)) throw new Error('no quota');
    const { jwt } = gateway.config;
    const token = await signSessionToken({ secret: jwt.secret!, issuer: jwt.issuer, audience: jwt.audience }, { subject: 'o_sandbox', appid: APPID, scopes: ['phone:exchange'], ttl: '5m' });
    const r = (await createGatewayClient({ url, token }).ExchangePhoneCode({ input: { code: minted.code, purpose: 'login' } })).exchangePhoneCode;
    expect(r).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: '13500135000' });
    // The simulator refuses plain calls for this app, so the exchange above went through the mode.
    expect(sim.state.stats().codesExchanged).toBe(1);
  });
});
