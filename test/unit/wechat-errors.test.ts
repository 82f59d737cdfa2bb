import { describe, expect, it } from 'vitest';
import {
  WECHAT_ERRCODES,
  WechatApiError,
  WechatUpstreamError,
  classifyErrcode,
  isTokenError,
  redactSecrets,
} from '../../src/wechat/index.js';
import type { WechatEndpoint, WechatErrorKind } from '../../src/wechat/index.js';

// Every errcode of wechat-api.md, with what it must mean off the phone endpoint.
const EXPECTED: Array<[errcode: number, kind: WechatErrorKind, retryable: boolean]> = [
  [-1, 'busy', true],
  [40001, 'token', true],
  [40002, 'credentials', false],
  [40013, 'credentials', false],
  [40014, 'token', true],
  [40029, 'invalid_code', false],
  [40097, 'bad_request', false],
  [40125, 'credentials', false],
  [40163, 'invalid_code', false],
  [40164, 'ip_blocked', false],
  [40226, 'risk_blocked', false],
  [40243, 'credentials', false],
  [41001, 'malformed_request', false],
  [41002, 'credentials', false],
  [41004, 'credentials', false],
  [42001, 'token', true],
  [43002, 'bad_request', false],
  [45009, 'rate_limited', false],
  [45011, 'rate_limited', true],
  [47001, 'malformed_request', false],
  [50004, 'account_frozen', false],
  [50007, 'account_frozen', false],
  [89503, 'ip_blocked', false],
  [89506, 'ip_blocked', false],
  [89507, 'ip_blocked', false],
  // API security mode's refusals (wechat-api.md §4d): WeChat turned the request away unread.
  ...[40230, 40231, 40232, 40233, 40234, 40235, 40236, 40237, 40238, 40239, 40240].map((c): [number, WechatErrorKind, boolean] => [c, 'credentials', false]),
  [10120002, 'bad_request', false],
  [10120700, 'bad_request', false],
  [10122000, 'bad_request', false],
];

describe('errcode table', () => {
  it('covers exactly the errcodes of the spec', () => {
    expect(Object.keys(WECHAT_ERRCODES).map(Number).sort((a, b) => a - b)).toEqual(
      EXPECTED.map(([c]) => c).sort((a, b) => a - b),
    );
  });

  it.each(EXPECTED)('errcode %i on stable_token is %s (retryable %s)', (errcode, kind, retryable) => {
    const e = new WechatApiError('stable_token', errcode, 'msg');
    expect(e.kind).toBe(kind);
    expect(e.retryable).toBe(retryable);
    expect(e.errcode).toBe(errcode);
    expect(e.endpoint).toBe('stable_token');
    expect(e.description.length).toBeGreaterThan(5);
    expect(e.message).toContain('stable_token');
    expect(e.message).toContain(String(errcode));
  });

  it('40013 means another app\'s code on getuserphonenumber, bad credentials elsewhere', () => {
    expect(classifyErrcode(40013, 'getuserphonenumber').kind).toBe('app_mismatch');
    const elsewhere: WechatEndpoint[] = ['stable_token', 'token', 'jscode2session', 'usage_get'];
    for (const ep of elsewhere) expect(classifyErrcode(40013, ep).kind).toBe('credentials');
  });

  it('every other errcode means the same on the phone endpoint', () => {
    for (const [errcode, kind, retryable] of EXPECTED.filter(([c]) => c !== 40013)) {
      expect(classifyErrcode(errcode, 'getuserphonenumber')).toMatchObject({ kind, retryable });
    }
  });

  it('an errcode outside the spec is unknown and not retryable', () => {
    const e = new WechatApiError('getuserphonenumber', 61451, 'invalid parameter');
    expect(e.kind).toBe('unknown');
    expect(e.retryable).toBe(false);
  });

  it('isTokenError picks 40001/40014/42001 only', () => {
    const token = EXPECTED.filter(([c]) => isTokenError(new WechatApiError('usage_get', c, ''))).map(([c]) => c);
    expect(token).toEqual([40001, 40014, 42001]);
    expect(isTokenError(new Error('40001'))).toBe(false);
    expect(isTokenError(new WechatUpstreamError('usage_get', 'timeout'))).toBe(false);
  });

  it('the message carries endpoint, errcode and errmsg', () => {
    const e = new WechatApiError('getuserphonenumber', 40029, 'invalid code, rid: 6543');
    expect(e.message).toBe(
      "WeChat getuserphonenumber failed with errcode 40029 (invalid code (expired, already used, malformed or another app's; on getuserphonenumber often a wx.login code sent by mistake)): invalid code, rid: 6543",
    );
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('WechatApiError');
  });
});

describe('WechatUpstreamError', () => {
  it('is always retryable and exposes its kind as kind and cause', () => {
    const e = new WechatUpstreamError('token', 'http_status', { status: 502 });
    expect(e).toMatchObject({ endpoint: 'token', kind: 'http_status', cause: 'http_status', status: 502, retryable: true });
    expect(e.message).toBe('WeChat token upstream failure (http_status) HTTP 502');
    expect(new WechatUpstreamError('token', 'timeout').status).toBeUndefined();
  });
});

describe('redactSecrets', () => {
  it('removes every secret, query strings of URLs, and bounds the length', () => {
    const out = redactSecrets(
      'bad code CODE-123456 for token TOKEN-abcdef see https://x.example/a?access_token=TOKEN-abcdef&b=1 more',
      ['CODE-123456', 'TOKEN-abcdef', undefined],
    );
    expect(out).not.toContain('CODE-123456');
    expect(out).not.toContain('TOKEN-abcdef');
    expect(out).not.toContain('b=1');
    expect(out).toContain('https://x.example/a?[redacted]');
    expect(redactSecrets('x'.repeat(1000), []).length).toBeLessThanOrEqual(301);
  });

  it('leaves text alone when secrets are too short to be real', () => {
    expect(redactSecrets('a b c', ['a', ''])).toBe('a b c');
  });
});
