import { randomFillSync } from 'node:crypto';

/**
 * Random bytes from a pool filled 8 KiB at a time, each byte handed out once: one call into the crypto binding per
 * id or per WebSocket mask (`randomBytes(5)`, ws 6's `randomBytes(4)` per frame) was several per cent of the service's
 * CPU per offered call (issue 23). The same CSPRNG's bytes. A refill takes a new buffer, so a view handed out before
 * (a mask not yet written to its frame) never changes under its holder.
 */
const POOL_SIZE = 8192;
let pool = Buffer.alloc(0);
let next = POOL_SIZE;

/** `n` fresh random bytes (n ≤ 8192): a view into the pool, handed out once. */
export function pooledRandomBytes(n: number): Buffer {
  if (next + n > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_SIZE));
    next = 0;
  }
  const bytes = pool.subarray(next, next + n);
  next += n;
  return bytes;
}

/** A short request id: 10 hex digits; safe inside channel ids (`ccb-<id>-<n>`). */
export function newRequestId(): string {
  return pooledRandomBytes(5).toString('hex');
}
