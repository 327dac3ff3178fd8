/**
 * Who serves a PBX, when PostgreSQL is the coordinator: one loop per (PBX, app) that keeps trying to take
 * the lease (stand-by) or renews it (active), and switches the instance between the two.
 *
 *   stand-by ── acquire() gives an epoch ──► active: store.setFence(epoch), onActive(epoch)
 *   active ── renew() refused, or no successful renew for a whole TTL ──► stand-by: onStandby(reason),
 *             store.setFence(undefined)
 *
 * An instance that lost the lease (the database was unreachable for a whole TTL, or another took it) stays in
 * the process as a stand-by: it rings no one, and keeps trying to take the lease — every TTL/3 while the
 * database answers, with back-off (doubling up to `retryMaxMs`) while it does not. When the database is back it
 * takes the lease again with a new epoch, or stays stand-by if another instance holds it. `lease.unreachable`
 * and `lease.reachable` are logged once per change, not per attempt.
 *
 * Renewals run every TTL/3. The database has the last word (the fence refuses a stale epoch's writes);
 * `holds()` is the local, conservative view: true only while the last successful renew (measured on this
 * process's monotonic clock from before the renew was sent) is younger than the TTL. The engine asks it
 * before carrying out an action, so an instance resumed after a pause (SIGSTOP) rings nobody even in the
 * moment before its next renew fails.
 */
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { PgLease } from './lease';
import type { Fence } from '../store/postgres';

export interface CoordinatorOptions {
  lease: PgLease;
  /** The store whose writes carry our epoch (PgStore.setFence). */
  fenced: { setFence(f: Fence | undefined): void };
  log: Logger;
  /** The lease was taken (epoch): start serving the PBX. */
  onActive: (epoch: number) => Promise<void> | void;
  /** The lease was lost or given up: stop serving the PBX (no new action may start). */
  onStandby: (reason: string) => Promise<void> | void;
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
  /** Renew/acquire period (default TTL / 3). */
  periodMs?: number;
  /**
   * Longest pause between two lease attempts of a stand-by while the database cannot be reached (back-off from
   * the period, doubling). Never below the period. Default: the period (no back-off).
   */
  retryMaxMs?: number;
  /** False: no timer, `step()` drives the loop (tests that pause an instance). Default true. */
  timers?: boolean;
}

export class Coordinator {
  private timer?: NodeJS.Timeout;
  private running = false;
  private active = false;
  private validUntil = 0;
  private busy: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly period: number;

  constructor(private readonly opts: CoordinatorOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.period = opts.periodMs ?? Math.max(50, Math.floor(opts.lease.opts.ttlMs / 3));
  }

  get isActive(): boolean {
    return this.active;
  }

  /** True while we may act for the PBX by our own clock (see the file comment). */
  holds(): boolean {
    return this.active && this.now() < this.validUntil;
  }

  get epoch(): number | undefined {
    return this.active ? this.opts.lease.epoch : undefined;
  }

  /** Starts the loop; the first attempt runs at once. Resolves after it. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.step();
  }

  /** Stops the loop; when active, steps down and releases the lease so a stand-by takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.busy;
    if (this.active) await this.stepDown('stopping', true);
  }

  /** One acquire or renew (also used by tests to drive the loop without timers). */
  step(): Promise<void> {
    const run = this.busy.then(() => this.once());
    this.busy = run.catch(() => undefined);
    return run;
  }

  /** The pause before the next attempt: the period, or while a stand-by cannot reach the database, a back-off. */
  get nextDelayMs(): number {
    if (this.active || this.failures === 0) return this.period;
    const max = Math.max(this.period, this.opts.retryMaxMs ?? this.period);
    return Math.min(max, this.period * 2 ** Math.min(this.failures - 1, 20));
  }

  private schedule(): void {
    if (!this.running || this.opts.timers === false) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.step(), this.nextDelayMs);
    this.timer.unref?.();
  }

  /** Lease checks failed in a row (the database is unreachable): logged once per change, not per attempt. */
  private failures = 0;
  private failingSince = 0;

  /** True while the lease checks fail (the database cannot be reached). */
  get unreachable(): boolean {
    return this.failures > 0;
  }

  private async once(): Promise<void> {
    const { lease, log } = this.opts;
    const sentAt = this.now();
    try {
      if (this.active) {
        const epoch = await lease.renew();
        if (epoch === undefined) {
          await this.stepDown('lease lost (expired or taken over)');
        } else {
          this.validUntil = sentAt + lease.opts.ttlMs;
        }
      } else if (this.running) {
        const epoch = await lease.acquire();
        if (epoch !== undefined) {
          this.validUntil = sentAt + lease.opts.ttlMs;
          this.active = true;
          this.opts.fenced.setFence({ app: lease.opts.app, holder: lease.opts.holder, epoch });
          emit(log, 'info', 'lease.taken', 'lease taken: serving this PBX', { pbx: lease.opts.pbx, app: lease.opts.app, epoch, holder: lease.opts.holder });
          await this.opts.onActive(epoch);
        }
      }
      if (this.failures > 0) {
        emit(log, 'info', 'lease.reachable', 'lease checks work again', { pbx: lease.opts.pbx, app: lease.opts.app, failedMs: Math.round(this.now() - this.failingSince), attempts: this.failures, active: this.active });
      }
      this.failures = 0;
    } catch (err) {
      if (this.failures === 0) {
        this.failingSince = sentAt;
        emit(log, 'warn', 'lease.unreachable', 'lease check failed (database unreachable?); trying again with back-off, logged again when it works', {
          pbx: lease.opts.pbx,
          app: lease.opts.app,
          error: (err as Error).message,
          active: this.active,
        });
      }
      this.failures += 1;
      if (this.active && this.now() >= this.validUntil) await this.stepDown('lease not renewed within its TTL (database unreachable?)');
    } finally {
      this.schedule();
    }
  }

  private async stepDown(reason: string, release = false): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.validUntil = 0;
    const { lease, log } = this.opts;
    emit(log, 'warn', 'lease.lost', 'lease lost: standing by', { pbx: lease.opts.pbx, app: lease.opts.app, reason });
    try {
      await this.opts.onStandby(reason);
    } finally {
      this.opts.fenced.setFence(undefined);
      if (release) await lease.release().catch((err: Error) => log.warn('lease release failed', { pbx: lease.opts.pbx, error: err.message }));
      else lease.forget();
    }
  }
}
