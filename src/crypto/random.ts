import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * Cryptographically random bytes, cut from a pool refilled 4 KB at a time (Node's randomUUID
 * does the same): `randomBytes` per call cost more than the AES-GCM seal it made an IV for.
 * Each byte is handed out once; the copy returned is the caller's own.
 */
export function randomBytesPooled(size: number): Buffer {
  if (size > POOL_BYTES) throw new RangeError(`at most ${POOL_BYTES} pooled random bytes at a time`);
  if (offset + size > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + size));
  // Handed-out bytes are zeroed in the pool, so nothing left there repeats them.
  pool.fill(0, offset, offset + size);
  offset += size;
  return out;
}
