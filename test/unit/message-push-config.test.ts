import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const APPID = 'wx4f4bc4dec97d474b';
const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';

function load(messagePush: unknown, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-push-config-'));
  const path = join(dir, 'wxphone.config.json');
  writeFileSync(path, JSON.stringify({ apps: [{ appid: APPID, secret: 's3cret', messagePush }] }));
  return loadConfig({ WXPHONE_CONFIG: path, ...env }, dir).apps.get(APPID)!;
}

function refusal(messagePush: unknown, env: Record<string, string> = {}): string {
  try {
    load(messagePush, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('messagePush in an app config', () => {
  it('token and EncodingAESKey from the file; format defaults to XML (the console default)', () => {
    const app = load({ token: 'pamtest', encodingAesKey: KEY });
    expect(app.messagePush?.token).toBe('pamtest');
    expect(app.messagePush?.aesKey?.length).toBe(32);
    expect(app.messagePush?.format).toBe('xml');
  });

  it('without an EncodingAESKey: plaintext only', () => {
    expect(load({ token: 'pamtest', format: 'json' }).messagePush).toEqual({ token: 'pamtest', aesKey: undefined, format: 'json' });
  });

  it('secrets from the env vars named by tokenEnv / encodingAesKeyEnv; a missing one is named, never quoted', () => {
    const app = load({ tokenEnv: 'PUSH_TOKEN', encodingAesKeyEnv: 'PUSH_KEY', format: 'json' }, { PUSH_TOKEN: 'envtoken', PUSH_KEY: KEY });
    expect(app.messagePush?.token).toBe('envtoken');
    expect(app.messagePush?.aesKey).toEqual(Buffer.from(`${KEY}=`, 'base64'));
    expect(refusal({ tokenEnv: 'PUSH_TOKEN', encodingAesKeyEnv: 'PUSH_KEY' }, { PUSH_TOKEN: 'envtoken' })).toMatch(/PUSH_KEY/);
    expect(refusal({ tokenEnv: 'PUSH_TOKEN' })).toMatch(/PUSH_TOKEN/);
  });

  it('an EncodingAESKey that is not 43 letters and digits is refused, from the file or the env, without quoting it', () => {
    const short = KEY.slice(0, 42);
    const m1 = refusal({ token: 't', encodingAesKey: short });
    expect(m1).toMatch(/encodingAesKey/);
    expect(m1).not.toContain(short);
    const m2 = refusal({ token: 't', encodingAesKeyEnv: 'PUSH_KEY' }, { PUSH_KEY: `${KEY}!` });
    expect(m2).toMatch(/PUSH_KEY/);
    expect(m2).not.toContain(KEY);
  });

  it('both a value and its env var, no token at all, an unknown key or format: each a clear error', () => {
    expect(refusal({ token: 't', tokenEnv: 'X' })).toMatch(/either token or tokenEnv/);
    expect(refusal({ token: 't', encodingAesKey: KEY, encodingAesKeyEnv: 'X' })).toMatch(/either encodingAesKey or encodingAesKeyEnv/);
    expect(refusal({ format: 'json' })).toMatch(/needs token or tokenEnv/);
    expect(refusal({ token: 't', mode: 'safe' })).toMatch(/mode/);
    expect(refusal({ token: 't', format: 'yaml' })).toMatch(/format/);
  });
});
