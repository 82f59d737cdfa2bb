import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/util/lru.js';

describe('LruMap', () => {
  it('holds at most max entries and drops the least recently used', () => {
    const m = new LruMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    expect(m.get('a')).toBe(1); // a is now the most recent
    m.set('c', 3);
    expect(m.get('b')).toBeUndefined();
    expect(m.get('a')).toBe(1);
    expect(m.get('c')).toBe(3);
    expect(m.size).toBe(2);
  });

  it('replacing a key does not evict another, and max 0 keeps nothing', () => {
    const m = new LruMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 10);
    expect([m.get('a'), m.get('b'), m.size]).toEqual([10, 2, 2]);
    m.delete('a');
    expect(m.get('a')).toBeUndefined();
    const none = new LruMap<string, number>(0);
    none.set('a', 1);
    expect([none.get('a'), none.size]).toEqual([undefined, 0]);
  });
});
