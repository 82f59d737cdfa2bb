import { describe, expect, it } from 'vitest';
import { randomBytesPooled } from '../../src/crypto/random.js';

describe('randomBytesPooled', () => {
  it('hands out fresh bytes of the size asked, across pool refills, never the same twice', () => {
    const seen = new Set<string>();
    // 3,000 × 12 bytes: the 4 KB pool is refilled several times, at offsets that do not divide it.
    for (let i = 0; i < 3000; i++) {
      const b = randomBytesPooled(12);
      expect(b.length).toBe(12);
      seen.add(b.toString('hex'));
    }
    expect(seen.size).toBe(3000);
  });

  it('returns a copy: a later refill of the pool does not change bytes already handed out', () => {
    const first = randomBytesPooled(16);
    const kept = Buffer.from(first);
    for (let i = 0; i < 600; i++) randomBytesPooled(16); // more than the whole pool
    expect(first.equals(kept)).toBe(true);
  });

  it('refuses more than the pool holds', () => {
    expect(() => randomBytesPooled(4097)).toThrow(RangeError);
  });
});
