/**
 * The lease for one (PBX, app) in PostgreSQL, with a fencing epoch.
 *
 * Which instance serves a PBX is decided in the database, by the database's clock (no two hosts' clocks
 * are compared):
 *
 *   acquire  INSERT … ON CONFLICT DO UPDATE … WHERE the lease has expired
 *            → the row is ours with epoch + 1 (a take-over), or stays the other's (we are stand-by)
 *   renew    UPDATE … WHERE holder = us AND epoch = ours AND not expired → still ours, or lost
 *   release  expires the row now (a clean stop lets a stand-by take over at once; the epoch stays)
 *
 * The epoch is the fencing token: the holder declares it on every write (PgStore.setFence), and the
 * database refuses a write whose epoch is not the current, unexpired lease's (trigger `cc_fence`,
 * src/store/migrations/postgres.ts). An instance that was paused (SIGSTOP, a long GC), partitioned or
 * slow past its TTL therefore cannot change a request — and since the engine rings only after its write
 * is committed, it cannot ring anyone — once another instance has taken over; its next renew fails and it
 * steps down.
 */
import type { PgStore } from '../store/postgres';

export interface LeaseState {
  pbx: string;
  app: string;
  holder: string;
  epoch: number;
  /** Milliseconds until the lease expires, by the database's clock (negative: expired). */
  remainingMs: number;
}

export interface PgLeaseOptions {
  pbx: string;
  app: string;
  /** This instance's name; unique per process (host, pid and a random part). */
  holder: string;
  /** How long a lease lasts without renewal. */
  ttlMs: number;
}

type Queryable = Pick<PgStore<never>, 'query'>;

export class PgLease {
  private held: number | undefined;

  constructor(
    private readonly db: Queryable,
    readonly opts: PgLeaseOptions,
  ) {
    if (!(opts.ttlMs >= 100)) throw new Error(`lease TTL must be at least 100 ms, got ${opts.ttlMs}`);
  }

  /** The epoch we hold, if we think we hold it (the database has the last word on every write). */
  get epoch(): number | undefined {
    return this.held;
  }

  /**
   * Takes the lease if it is free or expired (epoch + 1), renews it if it is already ours. Returns the
   * epoch held, or undefined when another live instance holds it.
   */
  async acquire(): Promise<number | undefined> {
    if (this.held !== undefined) {
      const renewed = await this.renew();
      if (renewed !== undefined) return renewed;
    }
    const { pbx, app, holder, ttlMs } = this.opts;
    const res = await this.db.query<{ epoch: number }>(
      `INSERT INTO leases(pbx, app, holder, epoch, expires_at)
       VALUES ($1, $2, $3, 1, clock_timestamp() + make_interval(secs => $4::double precision / 1000))
       ON CONFLICT (pbx, app) DO UPDATE
         SET holder = EXCLUDED.holder, epoch = leases.epoch + 1, acquired_at = clock_timestamp(),
             renewed_at = clock_timestamp(), expires_at = EXCLUDED.expires_at
         WHERE leases.expires_at <= clock_timestamp()
       RETURNING epoch`,
      [pbx, app, holder, ttlMs],
    );
    this.held = res.rows[0]?.epoch;
    return this.held;
  }

  /** Extends our lease; undefined (and we no longer hold it) when it expired or another took it. */
  async renew(): Promise<number | undefined> {
    if (this.held === undefined) return undefined;
    const { pbx, app, holder, ttlMs } = this.opts;
    const res = await this.db.query<{ epoch: number }>(
      `UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000), renewed_at = clock_timestamp()
       WHERE pbx = $1 AND app = $2 AND holder = $3 AND epoch = $5 AND expires_at > clock_timestamp()
       RETURNING epoch`,
      [pbx, app, holder, ttlMs, this.held],
    );
    this.held = res.rows[0]?.epoch;
    return this.held;
  }

  /** Gives the lease up now (a clean stop): a stand-by's next acquire takes over. */
  async release(): Promise<void> {
    if (this.held === undefined) return;
    const { pbx, app, holder } = this.opts;
    const epoch = this.held;
    this.held = undefined;
    await this.db.query('UPDATE leases SET expires_at = clock_timestamp() WHERE pbx = $1 AND app = $2 AND holder = $3 AND epoch = $4', [
      pbx,
      app,
      holder,
      epoch,
    ]);
  }

  /** Forgets the lease locally without telling the database (after a failed renew, or in tests). */
  forget(): void {
    this.held = undefined;
  }

  /** The lease row as the database sees it now. */
  async current(): Promise<LeaseState | undefined> {
    const res = await this.db.query<{ holder: string; epoch: number; remaining: number }>(
      `SELECT holder, epoch, (EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000)::double precision AS remaining
       FROM leases WHERE pbx = $1 AND app = $2`,
      [this.opts.pbx, this.opts.app],
    );
    const r = res.rows[0];
    return r ? { pbx: this.opts.pbx, app: this.opts.app, holder: r.holder, epoch: r.epoch, remainingMs: r.remaining } : undefined;
  }
}

/** A holder name unique to this process: host, pid and a random part. */
export function holderName(host: string, pid: number, random: string): string {
  return `${host}:${pid}:${random}`;
}
