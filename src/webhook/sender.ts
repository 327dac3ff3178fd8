/**
 * The CRM webhook sender: drains the outbox (see store/contract.ts, OutboxStore) in the background.
 *
 * - Never in the call path: the engine only writes outbox rows inside its transactions; this loop POSTs
 *   them later, one at a time, each bounded by `timeoutMs`. A slow or dead CRM delays notifications, never calls.
 * - Retries with back-off (`backoffMs`, the last value repeats) up to `retries` times, then gives the event up
 *   with an error in the log. Only a 2xx answer counts as delivered.
 * - Survives restarts: unsent rows stay in the store and are sent after the next start.
 * - Redirects are not followed (a 3xx is a failed delivery: the event must not land on another host), and
 *   at most MAX_RESPONSE_BYTES of an answer are read.
 * - Signed per attempt over `<timestamp>.<body>` (payload.ts), the timestamp in X-Considerate-Timestamp.
 * - Delivered once: a row is marked sent as soon as the CRM accepted it. A crash between the CRM's answer and
 *   that mark would resend it; the idempotency key (body.id, X-Considerate-Delivery) lets the CRM drop it.
 */
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { OutboxRow, OutboxStore as OutboxContract } from '../store/contract';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign } from './payload';

/** At most this much of a CRM's answer is read (the content does not matter, only the status). */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/** While the outbox is empty, look this often for rows re-queued by `webhook retry` from the CLI. */
const IDLE_POLL_MS = 30_000;

export interface WebhookOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  retries: number;
  backoffMs: readonly number[];
  log: Logger;
  clock?: () => number;
  /** Longest single timer delay (re-armed). */
  maxTimerMs?: number;
  /** Told of every attempt's result and how long the CRM took (metrics). */
  onAttempt?: (result: 'delivered' | 'retry' | 'given_up', seconds: number) => void;
}

/** The outbox through the store contract (SQLite or PostgreSQL; with several instances each row is claimed by one). */
export type OutboxStore = Pick<OutboxContract, 'outboxClaimDue' | 'outboxNextAt' | 'outboxSent' | 'outboxFailed'>;

/** The wait before retry number `attempt` (1-based). */
export function backoffDelay(backoffMs: readonly number[], attempt: number): number {
  if (backoffMs.length === 0) return 0;
  return backoffMs[Math.min(attempt, backoffMs.length) - 1];
}

export class WebhookSender {
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = true;
  private inFlight?: AbortController;
  private readonly clock: () => number;

  constructor(
    private readonly store: OutboxStore,
    private readonly opts: WebhookOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  start(): void {
    this.stopped = false;
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort();
  }

  /** New rows may be due: drain now (coalesced; never re-entrant). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = true;
    void this.drain().finally(() => {
      this.running = false;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.kick();
      } else {
        void this.arm();
      }
    });
  }

  private async arm(): Promise<void> {
    if (this.stopped) return;
    let next: number | null;
    try {
      next = await this.store.outboxNextAt();
    } catch (err) {
      this.opts.log.error('webhook outbox unreadable; retrying in 5 s', { error: (err as Error).message });
      next = this.clock() + 5000;
    }
    if (this.stopped) return;
    clearTimeout(this.timer);
    // Empty outbox: look again now and then for rows re-queued by `webhook retry` from the CLI.
    const delay = next === null ? IDLE_POLL_MS : Math.max(0, Math.min(next - this.clock(), this.opts.maxTimerMs ?? 60_000));
    this.timer = setTimeout(() => this.kick(), delay);
    this.timer.unref?.();
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) return;
        // One row at a time, claimed atomically (PostgreSQL: FOR UPDATE SKIP LOCKED) until the attempt can no
        // longer be running (timeout plus a margin): several instances drain one outbox, each row once.
        const now = this.clock();
        const [row] = await this.store.outboxClaimDue(now, now + this.opts.timeoutMs + 30_000, 1);
        if (!row) return;
        await this.deliver(row);
      }
    } catch (err) {
      this.opts.log.error('webhook outbox failed; retrying later', { error: (err as Error).message });
    }
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const { log } = this.opts;
    const rlog = log.child({ requestId: row.requestId, webhookEvent: row.event, delivery: row.key, attempt: row.attempts + 1 });
    let error: string | undefined;
    const controller = new AbortController();
    this.inFlight = controller;
    const timer = setTimeout(() => controller.abort(), this.opts.timeoutMs);
    const started = performance.now();
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'considerate-callback',
        [EVENT_HEADER]: row.event,
        [DELIVERY_HEADER]: row.key,
        'idempotency-key': row.key,
      };
      if (this.opts.secret) {
        const timestamp = Math.floor(this.clock() / 1000);
        headers[TIMESTAMP_HEADER] = String(timestamp);
        headers[SIGNATURE_HEADER] = sign(row.body, this.opts.secret, timestamp);
      }
      const res = await fetch(this.opts.url, { method: 'POST', headers, body: row.body, signal: controller.signal, redirect: 'manual' });
      await readCapped(res, MAX_RESPONSE_BYTES);
      if (res.status >= 300 && res.status < 400) {
        error = `HTTP ${res.status} redirect${res.headers.get('location') ? ` to ${safeHost(res.headers.get('location') ?? '')}` : ''} (not followed)`;
      } else if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      error = controller.signal.aborted
        ? this.stopped
          ? 'aborted at shutdown'
          : `no answer within ${this.opts.timeoutMs} ms`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
    } finally {
      clearTimeout(timer);
      this.inFlight = undefined;
    }
    const at = this.clock();
    const seconds = (performance.now() - started) / 1000;
    const attempted = (result: 'delivered' | 'retry' | 'given_up') => {
      try {
        this.opts.onAttempt?.(result, seconds);
      } catch {
        // metrics never stop a delivery
      }
    };
    if (error === undefined) {
      attempted('delivered');
      await this.store.outboxSent(row.id, at);
      emit(rlog, 'info', 'webhook.delivered', 'webhook delivered', {});
      return;
    }
    const attempt = row.attempts + 1;
    if (this.stopped) {
      // Shutting down: try again right after the next start.
      await this.store.outboxFailed(row.id, error, at, at);
      return;
    }
    if (attempt > this.opts.retries) {
      attempted('given_up');
      await this.store.outboxFailed(row.id, error, null, at);
      emit(rlog, 'error', 'webhook.given_up', 'webhook given up: the CRM did not accept the event', { error, attempts: attempt });
      return;
    }
    attempted('retry');
    const nextAt = at + backoffDelay(this.opts.backoffMs, attempt);
    await this.store.outboxFailed(row.id, error, nextAt, at);
    emit(rlog, 'warn', 'webhook.retry', 'webhook not delivered; will retry', { error, retryAt: new Date(nextAt).toISOString() });
  }
}

/** Reads at most `max` bytes of the body, then drops the rest (a huge answer never fills the memory). */
async function readCapped(res: Response, max: number): Promise<number> {
  const reader = res.body?.getReader();
  if (!reader) return 0;
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return n;
      n += value.byteLength;
      if (n >= max) {
        await reader.cancel().catch(() => undefined);
        return n;
      }
    }
  } catch {
    return n;
  }
}

/** The host of a redirect target, for the log (no path or query: they may carry tokens). */
function safeHost(location: string): string {
  try {
    return new URL(location).host;
  } catch {
    return '(relative)';
  }
}
