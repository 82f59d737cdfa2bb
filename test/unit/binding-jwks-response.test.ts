import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { VerificationTokens, jwksResponse, type VerificationTokenOptions } from '../../src/binding/index.js';
import { createDataKeys } from '../../src/crypto/keys.js';
import type { Database } from '../../src/store/schema.js';

const base: VerificationTokenOptions = {
  db: {} as Kysely<Database>,
  seal: createDataKeys(randomBytes(32)),
  issuer: 'wxphone-gateway',
  audience: 'wxphone-downstream',
  ttlSeconds: 900,
  rotationDays: 30,
};

describe('jwksResponse', () => {
  it('answers 200 with the set as JSON, cacheable for five minutes', async () => {
    const keys = [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'auto-30d-1', alg: 'ES256', use: 'sig' }];
    const res = await jwksResponse({ jwks: async () => ({ keys }) });
    expect(res).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=300' },
      body: JSON.stringify({ keys }),
    });
  });

  it('answers 503 without the cause when keys cannot be read, and is not cached', async () => {
    const res = await jwksResponse({
      jwks: async () => {
        throw new Error('connect ECONNREFUSED secret-host:5432 password=hunter2');
      },
    });
    expect(res.status).toBe(503);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).not.toContain('hunter2');
    expect(JSON.parse(res.body)).toEqual({ error: 'jwks_unavailable' });
  });
});

describe('VerificationTokens options', () => {
  it('refuses a missing issuer/audience and non-positive lifetimes', () => {
    expect(() => new VerificationTokens(base)).not.toThrow();
    expect(() => new VerificationTokens({ ...base, issuer: '' })).toThrow(TypeError);
    expect(() => new VerificationTokens({ ...base, audience: '' })).toThrow(TypeError);
    expect(() => new VerificationTokens({ ...base, ttlSeconds: 0 })).toThrow(TypeError);
    expect(() => new VerificationTokens({ ...base, ttlSeconds: 1.5 })).toThrow(TypeError);
    expect(() => new VerificationTokens({ ...base, rotationDays: 0 })).toThrow(TypeError);
    expect(() => new VerificationTokens({ ...base, rotationDays: Number.NaN })).toThrow(TypeError);
  });
});
