/**
 * SQLite's WAL checkpoints off the event loop and out of the opt-in's COMMIT.
 *
 * By default SQLite checkpoints inside the COMMIT that takes the WAL past 1000 pages (`wal_autocheckpoint`): that
 * COMMIT copies the WAL's pages into the main file and fsyncs it, synchronously on the event loop. On the store's
 * opt-in path (about 15 pages per opt-in) one COMMIT in 70 did so, at 4–12 ms instead of about 1 ms: the p99 of
 * `#` → durable (docs/performance-log.md, issue 23).
 *
 * Here the writer's own auto-checkpoint is only a backstop (at `BACKSTOP_FACTOR` × the threshold) and a worker
 * thread with its own connection (`synchronous = FULL`: SQLite syncs the WAL before it copies frames, and the main
 * file is on disk before SQLite lets the WAL be reused; the writer runs NORMAL and syncs the WAL itself, see
 * wal-sync.ts) runs PASSIVE checkpoints: they copy what the writer committed without blocking it. The writer
 * reads the WAL's length (`mxFrame`, the WAL-index header in the `-shm` file, https://www.sqlite.org/walformat.html)
 * after each COMMIT, a 24-byte read, and asks the worker for a checkpoint once `threshold` pages have come since the
 * last one. SQLite reuses the WAL from its start (instead of growing it) only when a write begins after everything
 * in it was copied; under continuous writes that moment may not come by itself, so once the WAL reaches twice the
 * threshold the writer holds its own writes back (the store's gate: reads go on, on the reader connection) while the
 * worker copies the few pages that came during its last checkpoint. The WAL therefore stays near twice the threshold
 * (test/unit/store-checkpoint.test.ts), and if the worker cannot run, the writer checkpoints inline again as SQLite
 * does by default.
 */
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';

/** SQLite's default auto-checkpoint threshold (pages): the worker checkpoints as often as SQLite would have. */
export const CHECKPOINT_PAGES = 1000;
/** The writer's own auto-checkpoint, a backstop should the worker fall behind: this many times the threshold. */
export const BACKSTOP_FACTOR = 4;

/** Where the checkpoint runs: in a worker thread (the default for a writable file) or inside the COMMIT (SQLite's default). */
export type CheckpointMode = 'background' | 'commit';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
let failed;
try {
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = 0');
  db.pragma('synchronous = FULL');
  db.pragma('wal_autocheckpoint = 0');
} catch (err) {
  failed = 'cannot open ' + workerData.file + ': ' + String(err && err.message);
}
parentPort.on('message', () => {
  if (failed) {
    parentPort.postMessage({ ok: false, error: failed });
    return;
  }
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    parentPort.postMessage({ ok: true, busy: r.busy, log: r.log, checkpointed: r.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message) });
  }
});
`;

interface Reply {
  ok: boolean;
  busy?: number;
  log?: number;
  checkpointed?: number;
  error?: string;
}

/** What the store lends the checkpointer: its gate (no write of its own while held) and its fall-back. */
export interface CheckpointHost {
  /** Runs `f` while no transaction of this process's writer is open and none can begin. */
  exclusive<T>(f: () => Promise<T>): Promise<T>;
  /** The worker failed: SQLite checkpoints inside the COMMIT again (wal_autocheckpoint back to its default). */
  inline(reason: string): void;
}

export class Checkpointer {
  private worker: Worker | undefined;
  private shm: number | undefined;
  private readonly header = Buffer.alloc(24);
  private lastFrame = 0;
  /** Frames of the current WAL already copied into the main file (the worker's last answer). */
  private copied = 0;
  private running = false;
  private failed = false;
  private closed = false;
  private waiting: ((r: Reply) => void) | undefined;
  /** Checkpoints run by the worker, and how many of them held the writer back (for tests and the bench). */
  readonly counts = { checkpoints: 0, exclusive: 0 };

  constructor(
    private readonly file: string,
    private readonly host: CheckpointHost,
    readonly threshold = CHECKPOINT_PAGES,
  ) {}

  /** The WAL's length in frames (the WAL-index header's mxFrame), or undefined when it cannot be read. */
  walFrames(): number | undefined {
    try {
      this.shm ??= fs.openSync(`${this.file}-shm`, 'r');
      if (fs.readSync(this.shm, this.header, 0, 24, 0) < 24) return undefined;
      return this.header.readUInt32LE(0) === 3007000 ? this.header.readUInt32LE(16) : this.header.readUInt32BE(16);
    } catch {
      return undefined;
    }
  }

  /** After each COMMIT of the writer: a checkpoint in the worker once `threshold` pages came since the last. */
  committed(): void {
    if (this.running || this.failed || this.closed) return;
    const frames = this.walFrames();
    if (frames === undefined) return;
    if (frames < this.lastFrame) this.copied = 0; // the WAL started over from its beginning
    this.lastFrame = frames;
    // The thread starts (tens of ms) while the first half of the threshold fills, not when the first checkpoint is due.
    if (!this.worker && frames >= this.threshold / 2) this.start();
    if (frames - this.copied < this.threshold) return;
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
    });
  }

  private async run(): Promise<void> {
    try {
      await this.checkpoint();
      // Continuous writes: the WAL was never wholly copied when a write began, so SQLite could not start it over.
      // Copy the rest with the writer held back; the next write then reuses the WAL from its beginning.
      if (!this.closed && (this.walFrames() ?? 0) >= 2 * this.threshold) {
        await this.host.exclusive(async () => {
          if (!this.closed) await this.checkpoint();
        });
        this.counts.exclusive++;
      }
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  private async checkpoint(): Promise<void> {
    const r = await this.ask();
    if (!r.ok) throw new Error(r.error ?? 'checkpoint failed');
    this.counts.checkpoints++;
    if (r.busy === 0 && typeof r.checkpointed === 'number') this.copied = r.checkpointed;
  }

  private ask(): Promise<Reply> {
    const w = this.start();
    return new Promise<Reply>((resolve) => {
      this.waiting = resolve;
      w.postMessage('checkpoint');
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER, { eval: true, workerData: { file: this.file, driver: require.resolve('better-sqlite3') } });
    w.unref();
    w.on('message', (r: Reply) => this.settle(r));
    w.on('error', (err) => this.settle({ ok: false, error: String((err as Error)?.message ?? err) }));
    w.on('exit', (code) => {
      this.worker = undefined;
      if (!this.closed) this.settle({ ok: false, error: `checkpoint worker exited (${code})` });
    });
    this.worker = w;
    return w;
  }

  private settle(r: Reply): void {
    const f = this.waiting;
    this.waiting = undefined;
    if (f) f(r);
    else if (!r.ok) this.fail(r.error ?? 'checkpoint worker failed');
  }

  private fail(reason: string): void {
    if (this.failed || this.closed) return;
    this.failed = true;
    this.host.inline(reason);
    void this.worker?.terminate();
  }

  /** Stops the worker (the store closes). A checkpoint under way finishes first or is simply dropped: both are safe. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.shm !== undefined) fs.closeSync(this.shm);
    this.shm = undefined;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    this.settle({ ok: false, error: 'closed' });
  }
}
