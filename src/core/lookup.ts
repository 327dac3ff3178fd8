/**
 * The CRM look-up's pure parts: what a valid answer is, the cache and the circuit breaker, all over an injected
 * clock (the HTTP adapter is src/webhook/lookup.ts).
 *
 * Why not a library: `opossum` (the usual Node circuit breaker) runs its own timers and wraps the call; here the
 * breaker is four fields and two transitions that must be decidable at an instant the caller gives (unit tests over
 * a fake clock, no timers to leak), and the cache is a Map in insertion order (an LRU in a dozen lines). Both stay
 * small enough to read whole.
 */
import { z } from 'zod';
import type { Contact } from './policy/types';

/** A text a phone display and Asterisk can take: no quotes, angle brackets, backslashes or control characters. */
const SAFE = /^[^"<>\\\p{Cc}]+$/u;
const text = (max: number) =>
  z
    .string()
    .transform((s) => s.replace(/\s+/g, ' ').trim())
    .pipe(z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`).regex(SAFE, 'must not contain quotes, angle brackets, backslashes or control characters'));

/**
 * The answer the CRM gives: `{"name": "Anna Schmidt", "company": "Acme GmbH"}`, or `{"name": null}` / 404 for no
 * such contact. Other keys are ignored (a CRM may send its whole record; only these two are read).
 */
export const lookupAnswer = z.object({
  name: z.union([text(60), z.null()]),
  company: z.union([text(60), z.null()]).optional(),
});

export type LookupResult = { found: true; contact: Contact } | { found: false };

/** A parsed body → a result, or what was wrong with it (for the log line). */
export function parseLookupAnswer(body: unknown): { ok: true; result: LookupResult } | { ok: false; error: string } {
  const r = lookupAnswer.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.length > 0 ? issue.path.join('.') : 'answer';
    return { ok: false, error: `${where}: ${issue.message}` };
  }
  if (r.data.name === null) return { ok: true, result: { found: false } };
  return { ok: true, result: { found: true, contact: { name: r.data.name, ...(r.data.company ? { company: r.data.company } : {}) } } };
}

/** A bounded cache with a time to live, least recently used out first. */
export class LookupCache {
  private readonly entries = new Map<string, { result: LookupResult; until: number }>();

  constructor(
    private readonly opts: { ttlMs: number; maxEntries: number },
    private readonly clock: () => number,
  ) {}

  get(number: string): LookupResult | undefined {
    const e = this.entries.get(number);
    if (!e) return undefined;
    if (e.until <= this.clock()) {
      this.entries.delete(number);
      return undefined;
    }
    // Most recently used last.
    this.entries.delete(number);
    this.entries.set(number, e);
    return e.result;
  }

  set(number: string, result: LookupResult): void {
    this.entries.delete(number);
    this.entries.set(number, { result, until: this.clock() + this.opts.ttlMs });
    while (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * A circuit breaker: closed (ask the CRM) until `failures` failures in a row; then open for `cooldownMs` (nobody
 * asks); then half-open: one trial at a time, whose success closes it and whose failure opens it again.
 */
export class Breaker {
  private failures = 0;
  private openUntil: number | null = null;
  private trial = false;

  constructor(
    private readonly opts: { failures: number; cooldownMs: number },
    private readonly clock: () => number,
  ) {}

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.openUntil === null) return 'closed';
    return this.clock() < this.openUntil ? 'open' : 'half-open';
  }

  /** May a request go out now? In half-open, only one (the trial) until it reports. */
  allow(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open' || this.trial) return false;
    this.trial = true;
    return true;
  }

  /** The request succeeded; true when this closed an open breaker. */
  success(): boolean {
    const wasOpen = this.openUntil !== null;
    this.failures = 0;
    this.openUntil = null;
    this.trial = false;
    return wasOpen;
  }

  /** The request failed; the instant the breaker opened until, when this failure opened it. */
  failure(): number | undefined {
    this.failures++;
    const trial = this.trial;
    this.trial = false;
    if (trial || (this.openUntil === null && this.failures >= this.opts.failures)) {
      this.openUntil = this.clock() + this.opts.cooldownMs;
      return this.openUntil;
    }
    return undefined;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
