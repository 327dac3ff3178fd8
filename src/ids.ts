import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for ids, drawn from a pool filled 4 KiB at a time: one `randomBytes(5)` per id (a call into the
 * crypto binding for five bytes) was about 1 % of the service's CPU per offered call (issue 23). The bytes are the
 * same CSPRNG's; each is handed out once.
 */
const POOL = Buffer.alloc(4096);
let next = POOL.length;

/** A short request id: 10 hex digits; safe inside channel ids (`ccb-<id>-<n>`). */
export function newRequestId(): string {
  if (next + 5 > POOL.length) {
    randomFillSync(POOL);
    next = 0;
  }
  const id = POOL.toString('hex', next, next + 5);
  next += 5;
  return id;
}
