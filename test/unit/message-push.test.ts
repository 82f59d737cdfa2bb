import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MessagePushError,
  aesKeyFromEncodingAesKey,
  decryptPushMessage,
  openPush,
  parsePushXml,
  pushSignature,
  verifyPushUrl,
  type MessagePushSettings,
} from '../../src/wechat/message-push.js';
import { encryptPush, signPush } from '../../src/simulator/push-crypto.js';
import { readChargeAlert, instant } from '../../src/billing/wechat-events.js';

/** Captured or published bytes of WeChat's message push, each with its source (see the files). */
interface Fixture {
  source: string;
  note: string;
  kind: 'url_verification' | 'push' | 'encrypt' | 'charge_event';
  token?: string;
  encodingAesKey?: string;
  appid?: string | null;
  query?: Record<string, string>;
  body?: string;
  random?: string;
  message?: string;
  timestamp?: string;
  nonce?: string;
  expect: Record<string, unknown>;
}

const DIR = join(import.meta.dirname, '../fixtures/message-push');
const FIXTURES: [string, Fixture][] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Fixture]);
const of = (kind: Fixture['kind']) => FIXTURES.filter(([, f]) => f.kind === kind);

const settings = (f: Fixture, format: 'json' | 'xml' = 'xml'): MessagePushSettings => ({
  token: f.token!,
  aesKey: f.encodingAesKey ? aesKeyFromEncodingAesKey(f.encodingAesKey) : undefined,
  format,
});
const nowOf = (q: Record<string, string>) => Number(q.timestamp);
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof MessagePushError) return e.reason;
    throw e;
  }
  throw new Error('expected a refusal');
};

describe('the fixtures', () => {
  it('each names its source and says what it shows', () => {
    expect(FIXTURES.length).toBeGreaterThanOrEqual(8);
    for (const [name, f] of FIXTURES) {
      expect(f.source, name).toMatch(/^(https:\/\/developers\.weixin\.qq\.com\/|[\w.-]+\/[\w.-]+:|\.\.\/shared\/spec\/)/);
      expect(f.note.length, name).toBeGreaterThan(20);
    }
  });
});

describe.each(of('url_verification'))('URL verification: %s', (_name, f) => {
  it('answers echostr when the signature matches', () => {
    const q = new URLSearchParams(f.query);
    expect(verifyPushUrl(settings(f), q, nowOf(f.query!))).toBe(f.expect.echostr);
  });

  it('refuses a signature one digit off, another token, a stale timestamp, a missing signature', () => {
    const q = f.query!;
    const last = q.signature!.at(-1) === '0' ? '1' : '0';
    expect(refusal(() => verifyPushUrl(settings(f), new URLSearchParams({ ...q, signature: q.signature!.slice(0, -1) + last }), nowOf(q)))).toBe('bad_signature');
    expect(refusal(() => verifyPushUrl({ ...settings(f), token: `${f.token}x` }, new URLSearchParams(q), nowOf(q)))).toBe('bad_signature');
    expect(refusal(() => verifyPushUrl(settings(f), new URLSearchParams(q), nowOf(q) + 301))).toBe('stale_timestamp');
    const { signature: _s, ...unsigned } = q;
    expect(refusal(() => verifyPushUrl(settings(f), new URLSearchParams(unsigned), nowOf(q)))).toBe('missing_signature');
  });
});

describe('a plaintext push (the official JSON example)', () => {
  const [, f] = of('push').find(([, x]) => !x.encodingAesKey)!;

  it('is read when its signature matches', () => {
    const opened = openPush(settings(f, 'json'), 'wx0000000000000000', new URLSearchParams(f.query), f.body!, nowOf(f.query!));
    expect(opened.mode).toBe('plaintext');
    expect(opened.fields).toEqual(f.expect.fields);
  });

  it('is refused with a bad signature, and refused outright when an AES key is configured (a plaintext signature covers no body)', () => {
    expect(refusal(() => openPush(settings(f, 'json'), 'wx0000000000000000', new URLSearchParams({ ...f.query, signature: '0'.repeat(40) }), f.body!, nowOf(f.query!)))).toBe('bad_signature');
    const withKey = { ...settings(f, 'json'), aesKey: aesKeyFromEncodingAesKey('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG') };
    expect(refusal(() => openPush(withKey, 'wx0000000000000000', new URLSearchParams(f.query), f.body!, nowOf(f.query!)))).toBe('not_encrypted');
  });
});

describe('a safe-mode push (EasyWeChat vector)', () => {
  const [, f] = of('push').find(([, x]) => x.encodingAesKey)!;
  const q = () => new URLSearchParams(f.query);

  it("decrypts someone else's bytes to the message they encrypted", () => {
    const opened = openPush(settings(f), f.appid!, q(), f.body!, nowOf(f.query!));
    expect(opened.mode).toBe('safe');
    expect(opened.fields).toEqual(f.expect.fields);
  });

  it('refuses a wrong msg_signature, a missing one, another appid, a tampered Encrypt and a wrong key', () => {
    const now = nowOf(f.query!);
    expect(refusal(() => openPush(settings(f), f.appid!, new URLSearchParams({ ...f.query, msg_signature: 'ab'.repeat(20) }), f.body!, now))).toBe('bad_signature');
    const { msg_signature: _m, ...unsigned } = f.query!;
    expect(refusal(() => openPush(settings(f), f.appid!, new URLSearchParams(unsigned), f.body!, now))).toBe('missing_signature');
    expect(refusal(() => openPush(settings(f), 'wx0000000000000001', q(), f.body!, now))).toBe('wrong_appid');
    // A tampered ciphertext no longer matches msg_signature; decrypted directly, its padding breaks.
    const encrypt = /CDATA\[([^\]]+)\]\]><\/Encrypt>/.exec(f.body!)![1]!;
    const tampered = `${encrypt.slice(0, 10)}${encrypt[10] === 'A' ? 'B' : 'A'}${encrypt.slice(11)}`;
    expect(refusal(() => openPush(settings(f), f.appid!, q(), f.body!.replace(encrypt, tampered), now))).toBe('bad_signature');
    const otherKey = aesKeyFromEncodingAesKey('kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR');
    expect(refusal(() => decryptPushMessage(otherKey, encrypt, f.appid!))).toMatch(/undecryptable|wrong_appid/);
    expect(refusal(() => decryptPushMessage(aesKeyFromEncodingAesKey(f.encodingAesKey!), 'not base64!', f.appid!))).toBe('undecryptable');
  });

  it('without a configured key, an encrypted-only body cannot be read (undecryptable)', () => {
    expect(refusal(() => openPush({ ...settings(f), aesKey: undefined }, f.appid!, q(), f.body!, nowOf(f.query!)))).toBe('undecryptable');
  });
});

describe.each(of('encrypt'))("the simulator's encryption against %s", (_name, f) => {
  it('gives the same Encrypt (and msg_signature) for the same random bytes', () => {
    const encrypt = encryptPush(f.encodingAesKey!, f.appid!, f.message!, Buffer.from(f.random!));
    expect(encrypt).toBe(f.expect.encrypt);
    if (f.expect.msgSignature) expect(signPush(f.token!, f.timestamp!, f.nonce!, encrypt)).toBe(f.expect.msgSignature);
  });

  it("and the gateway's reader decrypts that vector back to the message", () => {
    expect(decryptPushMessage(aesKeyFromEncodingAesKey(f.encodingAesKey!), f.expect.encrypt as string, f.appid!)).toBe(f.message);
  });
});

describe('both modes and formats, round trip between the two independent halves', () => {
  const key = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
  const appid = 'wx00000000000000a1';
  const s = (format: 'json' | 'xml'): MessagePushSettings => ({ token: 'T0ken', aesKey: aesKeyFromEncodingAesKey(key), format });
  const fields = { ToUserName: 'gh_1', FromUserName: 'o_x', CreateTime: 1700000000, MsgType: 'event', Event: 'charge_service_quota_notify', total_quota: 1000, total_used_quota: 800, spu_name: '手机号快速验证组件 <&>' };
  const xml = (f: Record<string, string | number>) =>
    `<xml>${Object.entries(f)
      .map(([k, v]) => (typeof v === 'number' ? `<${k}>${v}</${k}>` : `<${k}><![CDATA[${v}]]></${k}>`))
      .join('')}</xml>`;

  for (const format of ['json', 'xml'] as const) {
    it(`${format}: safe mode (Encrypt only) and compatible mode (plaintext beside Encrypt) read the decrypted copy`, () => {
      const inner = format === 'json' ? JSON.stringify(fields) : xml(fields);
      const encrypt = encryptPush(key, appid, inner);
      const query = new URLSearchParams({ timestamp: '1700000000', nonce: '42', signature: pushSignature('T0ken', '1700000000', '42'), encrypt_type: 'aes', msg_signature: signPush('T0ken', '1700000000', '42', encrypt) });
      const outerSafe = { ToUserName: 'gh_1', Encrypt: encrypt };
      // Compatible mode's plaintext copy is ignored when a key is configured: a forged one changes nothing.
      const outerCompatible = { ...fields, total_used_quota: 0, Encrypt: encrypt };
      for (const [mode, outer] of [['safe', outerSafe], ['compatible', outerCompatible]] as const) {
        const body = format === 'json' ? JSON.stringify(outer) : xml(outer);
        const opened = openPush(s(format), appid, query, body, 1_700_000_100);
        expect(opened.mode).toBe(mode);
        const got = format === 'json' ? opened.fields : { ...opened.fields, CreateTime: Number(opened.fields.CreateTime), total_quota: Number(opened.fields.total_quota), total_used_quota: Number(opened.fields.total_used_quota) };
        expect(got).toEqual(fields);
      }
    });
  }
});

describe("WeChat's XML", () => {
  it('reads CDATA, bare numbers, entities, whitespace between elements, nested and repeated elements', () => {
    const x = `<?xml version="1.0"?>\n<xml>\n  <ToUserName><![CDATA[gh_1]]></ToUserName>\n  <CreateTime>1700000000</CreateTime>\n  <Note>a &lt;b&gt; &amp; &#x4E2D;</Note>\n  <Empty></Empty><Self/>\n  <List><item><A>1</A></item><item><A>2</A></item></List>\n</xml>`;
    expect(parsePushXml(x)).toEqual({ ToUserName: 'gh_1', CreateTime: '1700000000', Note: 'a <b> & 中', Empty: '', Self: '', List: { item: [{ A: '1' }, { A: '2' }] } });
  });

  it('refuses a DOCTYPE (no entity is ever expanded), another root, mixed content and unclosed elements', () => {
    for (const bad of [
      '<!DOCTYPE x [<!ENTITY e "boom">]><xml><A>&e;</A></xml>',
      '<root><A>1</A></root>',
      '<xml><A>1<B>2</B></A></xml>',
      '<xml><A>1</xml>',
      '<xml><A><![CDATA[x</A></xml>',
      '<xml></xml>trailing',
    ]) {
      expect(refusal(() => parsePushXml(bad)), bad).toBe('bad_body');
    }
  });
});

describe('charge events', () => {
  it.each(of('charge_event'))('%s: read whatever the numbers are sent as', (_name, f) => {
    const fields = JSON.parse(f.body!);
    const alert = readChargeAlert(fields)!;
    expect(alert).toMatchObject(f.expect);
  });

  it('matches the event name in any case, and nothing else is an alert', () => {
    const base = { MsgType: 'event', CreateTime: 1, event_type: 3, total_quota: 10, total_used_quota: 8 };
    for (const name of ['charge_mp_service_quota_notify', 'charge_service_quota_notify', 'CHARGE_SERVICE_QUOTA_NOTIFY']) {
      expect(readChargeAlert({ ...base, Event: name })?.kind).toBe('quota');
    }
    expect(readChargeAlert({ ...base, Event: 'charge_mp_service_validity_notify', validity_end_time: '1731536000' })).toMatchObject({ kind: 'expiry', validityEndsAt: 1_731_536_000_000 });
    expect(readChargeAlert({ ...base, Event: 'debug_demo' })).toBeNull();
    expect(readChargeAlert({ ...base, MsgType: 'text', Event: 'charge_service_quota_notify' })).toBeNull();
  });

  it('validity_end_time in the forms it may take (Unix s or ms, a CST date and time, ISO), else kept raw and unread', () => {
    expect(instant('1731536000')).toBe(1_731_536_000_000);
    expect(instant('1731536000000')).toBe(1_731_536_000_000);
    expect(instant('2024-11-14 06:13:20')).toBe(Date.parse('2024-11-13T22:13:20Z'));
    expect(instant('2024-11-14')).toBe(Date.parse('2024-11-13T16:00:00Z'));
    expect(instant('2024-11-13T22:13:20Z')).toBe(Date.parse('2024-11-13T22:13:20Z'));
    expect(instant('next tuesday')).toBeNull();
  });
});
