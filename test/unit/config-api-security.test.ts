import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const APPID = 'wx4f4bc4dec97d474b';
let privatePem: string;
let platformPem: string;
const symmetricKey = randomBytes(32).toString('base64');
const SNS = { symmetricKeySn: 'fa05fe1e5bcc79b81ad5ad4b58acf787', privateKeySn: '97845f6ed842ea860df6fdf65941ff56', platformCertificateSn: '79ba700ea147819f640941bceb38b1d1' };

beforeAll(() => {
  const app = generateKeyPairSync('rsa', { modulusLength: 2048 });
  privatePem = app.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  platformPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
});

function load(apiSecurity: object, env: Record<string, string> = {}, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-apisec-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  const path = join(dir, 'wxphone.config.json');
  writeFileSync(path, JSON.stringify({ apps: [{ appid: APPID, secret: 's3cret', apiSecurity }] }));
  return loadConfig({ WXPHONE_CONFIG: path, ...env }, dir);
}

function configError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('apps[].apiSecurity', () => {
  it('reads the keys from env vars (a PEM on one line with \\n escapes too) and from files beside the config', () => {
    const c = load(
      { ...SNS, symmetricKeyEnv: 'WX_SYM', privateKeyEnv: 'WX_PRIV', platformCertificateFile: 'keys/platform.pem' },
      { WX_SYM: symmetricKey, WX_PRIV: privatePem.trim().replace(/\n/g, '\\n') },
      { 'keys/platform.pem': platformPem },
    );
    const keys = c.apps.get(APPID)!.apiSecurity!;
    expect(keys).toMatchObject({ algorithm: 'AES256_GCM', signatureAlgorithm: 'RSAwithSHA256', ...SNS });
    expect(keys.privateKey.asymmetricKeyType).toBe('rsa');
    expect(keys.platformKey.type).toBe('public');
    expect(Buffer.from(keys.symmetricKey.export()).toString('base64')).toBe(symmetricKey);
    // Nothing of the keys shows when the config is printed.
    const printed = JSON.stringify(c.apps.get(APPID));
    expect(printed).not.toContain(symmetricKey);
    expect(printed).not.toContain(privatePem.split('\n')[1]!);
  });

  it('inline keys work; apps without apiSecurity stay plain', () => {
    const c = load({ ...SNS, symmetricKey, privateKey: privatePem, platformCertificate: platformPem });
    expect(c.apps.get(APPID)!.apiSecurity?.privateKeySn).toBe(SNS.privateKeySn);
    expect(c.apps.get('wxa1b2c3d4e5f60001')?.apiSecurity).toBeUndefined();
  });

  it('a missing env var or file is named, with its app; no key is printed', () => {
    const message = configError(() =>
      load({ ...SNS, symmetricKey, privateKeyEnv: 'WX_PRIV_UNSET', platformCertificateFile: 'nowhere/platform.cer' }),
    );
    expect(message).toMatch(/missing WX_PRIV_UNSET \(apiSecurity\.privateKeyEnv of app wx4f4bc4dec97d474b\)/);
    expect(message).toMatch(/cannot read apiSecurity\.platformCertificateFile of app wx4f4bc4dec97d474b \(.*nowhere\/platform\.cer\): ENOENT/);
    expect(message).not.toContain(symmetricKey);
  });

  it('a key that is not what it should be is named, never quoted', () => {
    const message = configError(() => load({ ...SNS, symmetricKey: 'dG9vIHNob3J0', privateKeyEnv: 'WX_PRIV', platformCertificate: platformPem }, { WX_PRIV: '-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END PRIVATE KEY-----' }));
    expect(message).toMatch(/apiSecurity\.symmetricKey of app wx4f4bc4dec97d474b must be the console's API symmetric key/);
    expect(message).toMatch(/WX_PRIV \(apiSecurity\.privateKeyEnv of app wx4f4bc4dec97d474b\) must be an RSA private key/);
    expect(message).not.toMatch(/dG9vIHNob3J0|c2VjcmV0LW1hdGVyaWFs/);
  });

  it('SM4_GCM and SM2withSM3 are refused until implemented; unknown values too', () => {
    const base = { ...SNS, symmetricKey, privateKey: privatePem, platformCertificate: platformPem };
    expect(configError(() => load({ ...base, algorithm: 'SM4_GCM' }))).toMatch(/algorithm of app wx4f4bc4dec97d474b must be "AES256_GCM" \(SM4_GCM is offered by WeChat but not implemented here yet\)/);
    expect(configError(() => load({ ...base, signatureAlgorithm: 'SM2withSM3' }))).toMatch(/signatureAlgorithm of app .* must be "RSAwithSHA256"/);
    expect(configError(() => load({ ...base, algorithm: 'AES128' }))).toMatch(/must be "AES256_GCM"/);
  });

  it('exactly one source per key; key numbers required; unknown keys named', () => {
    expect(configError(() => load({ ...SNS, symmetricKey, symmetricKeyEnv: 'X', privateKey: privatePem, platformCertificate: platformPem }))).toMatch(
      /apiSecurity needs exactly one of symmetricKey, symmetricKeyEnv and symmetricKeyFile/,
    );
    expect(configError(() => load({ symmetricKey, privateKey: privatePem, platformCertificate: platformPem }))).toMatch(/apiSecurity\.symmetricKeySn/);
    expect(configError(() => load({ ...SNS, symmetricKey, privateKey: privatePem, platformCertificate: platformPem, aesKey: 'x' }))).toMatch(/unknown key\(s\) aesKey/);
  });
});
