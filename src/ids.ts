import { randomBytes } from 'node:crypto';

/** A short request id: 10 hex digits; safe inside channel ids (`ccb-<id>-<n>`). */
export function newRequestId(): string {
  return randomBytes(5).toString('hex');
}
