/**
 * The CRM look-up of the prospect's name (lookup.url): a door to another system, kept narrow.
 *
 * - The request: POST <lookup.url> with `{"number": "<prospect>"}`, signed exactly like the webhook
 *   (X-Considerate-Timestamp, X-Considerate-Signature: sha256=HMAC of "<timestamp>.<body>"), redirects not followed.
 * - The answer: read up to lookup.maxBytes, JSON, validated (src/core/lookup.ts): `{"name", "company"}`; 404 or
 *   `{"name": null}` = no such contact. Anything else is a failure with a `lookup.failed` line naming what was wrong.
 * - Bounded in time (lookup.timeout), cached (lookup.cacheTtl, lookup.cacheSize), and behind a circuit breaker
 *   (lookup.breakerFailures, lookup.breakerCooldown): a dead CRM costs one timeout per cool-down, not one per call.
 * - Never in the way of a call: the service starts it after the opt-in is stored and writes the name to the request
 *   when it arrives; a recall uses what is stored (or cached) and never waits. `lookup` never rejects.
 */
import { performance } from 'node:perf_hooks';
import { Breaker, LookupCache, parseLookupAnswer, type LookupResult } from '../core/lookup';
import type { Contact } from '../core/policy';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign } from './payload';

export interface LookupOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  maxBytes: number;
  cacheTtlMs: number;
  cacheSize: number;
  breakerFailures: number;
  breakerCooldownMs: number;
  log: Logger;
  clock?: () => number;
}

type Failure = { kind: 'timeout' | 'network' | 'http' | 'too-large' | 'invalid'; error: string };

export class CrmLookup {
  private readonly cache: LookupCache;
  private readonly breaker: Breaker;
  private readonly clock: () => number;
  private readonly inFlight = new Map<string, Promise<LookupResult | undefined>>();
  private readonly controllers = new Set<AbortController>();

  constructor(private readonly opts: LookupOptions) {
    this.clock = opts.clock ?? Date.now;
    this.cache = new LookupCache({ ttlMs: opts.cacheTtlMs, maxEntries: opts.cacheSize }, this.clock);
    this.breaker = new Breaker({ failures: opts.breakerFailures, cooldownMs: opts.breakerCooldownMs }, this.clock);
  }

  /** What the cache knows now, without asking: a contact, null (no such contact), or undefined (not known). */
  cached(number: string): Contact | null | undefined {
    const r = this.cache.get(number);
    return r === undefined ? undefined : r.found ? r.contact : null;
  }

  /** Asks the CRM (once per number at a time); undefined when it failed or the breaker is open. Never rejects. */
  lookup(number: string): Promise<LookupResult | undefined> {
    const hit = this.cache.get(number);
    if (hit) return Promise.resolve(hit);
    const running = this.inFlight.get(number);
    if (running) return running;
    if (!this.breaker.allow()) return Promise.resolve(undefined);
    const p = this.ask(number).finally(() => this.inFlight.delete(number));
    this.inFlight.set(number, p);
    return p;
  }

  /** Aborts look-ups in flight (shutdown). */
  stop(): void {
    for (const c of this.controllers) c.abort();
  }

  private async ask(number: string): Promise<LookupResult | undefined> {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    const r = await this.request(number);
    if ('kind' in r) {
      emit(this.opts.log, 'warn', 'lookup.failed', 'CRM look-up failed; the number is shown instead of a name', { kind: r.kind, error: r.error, ms: ms() });
      const until = this.breaker.failure();
      if (until !== undefined) {
        emit(this.opts.log, 'warn', 'lookup.breaker_open', 'CRM look-up paused after repeated failures', { failures: this.breaker.consecutiveFailures, until: new Date(until).toISOString() });
      }
      return undefined;
    }
    if (this.breaker.success()) emit(this.opts.log, 'info', 'lookup.breaker_closed', 'CRM look-up answers again', {});
    this.cache.set(number, r);
    emit(this.opts.log, 'info', 'lookup.answered', r.found ? 'CRM look-up found the contact' : 'CRM look-up: no such contact', { found: r.found, ms: ms() });
    return r;
  }

  private async request(number: string): Promise<LookupResult | Failure> {
    const body = JSON.stringify({ number });
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'considerate-callback' };
    if (this.opts.secret) {
      const timestamp = Math.floor(this.clock() / 1000);
      headers[TIMESTAMP_HEADER] = String(timestamp);
      headers[SIGNATURE_HEADER] = sign(body, this.opts.secret, timestamp);
    }
    const controller = new AbortController();
    this.controllers.add(controller);
    const timer = setTimeout(() => controller.abort(), this.opts.timeoutMs);
    try {
      const res = await fetch(this.opts.url, { method: 'POST', headers, body, signal: controller.signal, redirect: 'manual' });
      if (res.status === 404) {
        await res.body?.cancel().catch(() => undefined);
        return { found: false };
      }
      if (res.status < 200 || res.status > 299) {
        await res.body?.cancel().catch(() => undefined);
        return { kind: 'http', error: `HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ' redirect (not followed)' : ''}` };
      }
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (Number.isFinite(declared) && declared > this.opts.maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        return { kind: 'too-large', error: `answer of ${declared} bytes, more than lookup.maxBytes (${this.opts.maxBytes})` };
      }
      const text = await readAtMost(res, this.opts.maxBytes);
      if (text === undefined) return { kind: 'too-large', error: `answer longer than lookup.maxBytes (${this.opts.maxBytes})` };
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return { kind: 'invalid', error: 'answer: not JSON' };
      }
      const parsed = parseLookupAnswer(json);
      return parsed.ok ? parsed.result : { kind: 'invalid', error: parsed.error };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (controller.signal.aborted) return { kind: 'timeout', error: `no answer within ${this.opts.timeoutMs} ms` };
      return { kind: 'network', error: e.cause?.code ?? e.cause?.message ?? e.message };
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
    }
  }
}

/** The body as text, or undefined when it is longer than `max` bytes (reading stops there). */
async function readAtMost(res: Response, max: number): Promise<string | undefined> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
