/**
 * SQLite's durability off the event loop — not the default (`sync: 'thread'`, env `CC_SQLITE_SYNC=thread`): on the
 * 2-core machine beside Asterisk the thread pool's hand-offs made the opt-in slower under concurrency than the
 * event loop's wait for SQLite's own fsync (docs/performance-log.md, 2026-12-07 16:05–16:15). In it the writer's connection runs `synchronous=NORMAL` (in WAL mode a COMMIT
 * then writes its frames to the `-wal` file — the page cache — and does not sync), and the store makes the commit
 * durable itself with an `fdatasync` of the `-wal` file in libuv's thread pool (`fs.fdatasync`, asynchronous). A
 * write is acknowledged (the group's callers answered, its side effects run; `tx` and a statement outside a
 * transaction resolve) only once an fdatasync that **started after its COMMIT returned** has completed. While one
 * sync is in flight, commits wait for the next one, which then covers every frame written before it started
 * (coalescing: one sync for all the commits of a busy moment, none while the loop waits).
 *
 * Why this is as durable as `synchronous=FULL` (which syncs the WAL inside each COMMIT, on the event loop):
 *
 *  - **What a sync covers.** The frames of a COMMIT are in the WAL file's page cache when COMMIT returns (SQLite
 *    wrote them with write()); an fdatasync of any descriptor of that inode that starts afterwards writes them and
 *    the file's size to the disk before it completes. fdatasync, not fsync: the mtime is not needed to read the WAL
 *    back, and on ext4 (data=ordered) leaving it out spares the journal commit that made fsync wait for other
 *    processes' data (docs/performance-log.md). Our SQLite is built without HAVE_FDATASYNC, so FULL pays fsync.
 *  - **Recovery reads what we synced.** Each WAL frame carries the header's salts and a cumulative checksum over the
 *    frames before it; at recovery SQLite replays frames up to the last valid commit frame and drops a torn or
 *    unsynced tail. A tail we never acknowledged may be lost; an acknowledged commit is in the synced prefix.
 *  - **WAL restarts.** After a checkpoint the next writer starts the WAL over with new salts; SQLite syncs the new
 *    header before the first frame even under NORMAL (`syncHeader`), so old frames beyond the new ones never
 *    validate. Our sync then covers the new frames as any others.
 *  - **Checkpoints.** The checkpoint worker (src/store/checkpoint.ts) keeps its own connection at FULL, and SQLite
 *    syncs the WAL before it copies frames into the main file and syncs the main file before a restart may reuse
 *    the WAL; the writer's backstop checkpoint inside a COMMIT (NORMAL) keeps those checkpoint syncs too (SQLite's
 *    checkpoint sync flags are not switched off by NORMAL). So no frame reaches the main file unsynced, and the
 *    WAL is only reset after the main file holds its frames durably.
 *  - **The descriptor stays the WAL's inode.** The WAL is truncated (checkpoint TRUNCATE, journal_size_limit), never
 *    replaced, while a connection is open; SQLite deletes it only when the last connection to the file closes, and
 *    the writer's connection is open for as long as this descriptor (closed first on close). The store never changes
 *    the journal mode. `open` checks the inode once (a test checks it again after a TRUNCATE checkpoint).
 *    Closing this descriptor drops no lock: SQLite's POSIX locks in WAL mode are on the main file and `-shm`.
 *  - **Several processes on one file.** One instance writes a SQLite file at a time (the lease); a command-line
 *    write (`cc` tools) opens its own store and syncs its own commits the same way. A sync of the shared inode
 *    covers everybody's frames written before it, so another process's writes never make ours less durable.
 *  - **Migrations and opening.** The schema is created at `synchronous=FULL` while the file is opened; NORMAL is
 *    switched on after it (sqlite.ts openSqliteDb).
 *
 * A failed fdatasync is fatal for writes ("fsyncgate": after a failed fsync the kernel may have dropped the dirty
 * pages and a retry can report success for data that is gone). Every waiting write fails with a StoreError naming
 * the file and the errno, every later write is refused with the same error, never retried; reads go on (they show
 * what SQLite has, which may include a commit that was never acknowledged). The service logs it once
 * (`store.sync_failed`) and needs a restart (SQLite's recovery then reads what truly is on the disk).
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { StoreError } from './contract';

/** How the store makes a commit durable (SqliteOptions.sync). */
export type SyncMode =
  /** synchronous=NORMAL and the store's own fdatasync of the WAL in the thread pool (the bench's A/B: CC_SQLITE_SYNC=thread). */
  | 'thread'
  /** synchronous=FULL: SQLite's fsync inside each COMMIT, on the event loop (the default: measured faster here). */
  | 'commit';

/** The sync itself (a test seam): resolves when the descriptor's data is on the disk, rejects with its errno. */
export type SyncFn = (fd: number) => Promise<void>;

export const fdatasync: SyncFn = (fd) =>
  new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));

/** Coalesced syncs of one WAL file; see the module's header. */
export class WalSync {
  /** The sync in flight (it started after the commits that wait on it). */
  private inflight: Promise<number> | undefined;
  /** The sync that starts once the one in flight ends (for commits made while it was in flight). */
  private next: Promise<number> | undefined;
  /** Set once a sync failed: every write from then on is refused with it. */
  private fatal: StoreError | undefined;
  /** Syncs started, and the writes they acknowledged (tests, bench). */
  readonly counts = { syncs: 0, waits: 0 };

  constructor(
    private readonly fd: number,
    private readonly file: string,
    private readonly sync: SyncFn = fdatasync,
    private readonly onFatal?: (err: StoreError) => void,
  ) {}

  /** The error every write gets once a sync failed (undefined while all is well). */
  get failed(): StoreError | undefined {
    return this.fatal;
  }

  /** Throws the fatal error, if any: called before a write begins. */
  refuseIfFailed(): void {
    if (this.fatal) throw this.fatal;
  }

  /**
   * Call right after a COMMIT returned: resolves with performance.now() at the end of a sync that started after
   * this call (the commit is durable then), rejects with the fatal StoreError.
   */
  durable(): Promise<number> {
    if (this.fatal) return Promise.reject(this.fatal);
    this.counts.waits++;
    if (!this.inflight) return (this.inflight = this.start());
    // The sync in flight may have started before this commit's frames were written: wait for the next one.
    if (!this.next) {
      const after = this.inflight;
      this.next = after.then(
        () => this.startNext(),
        () => this.startNext(),
      );
    }
    return this.next;
  }

  /** Whether the descriptor is still the file at `<store>-wal` (tests; see "The descriptor stays the WAL's inode"). */
  sameFile(): boolean {
    try {
      const a = fs.fstatSync(this.fd);
      const b = fs.statSync(`${this.file}-wal`);
      return a.ino === b.ino && a.dev === b.dev;
    } catch {
      return false;
    }
  }

  /** Waits for the syncs under way (their writes are acknowledged or failed), then closes the descriptor. */
  async close(): Promise<void> {
    while (this.inflight || this.next) await (this.next ?? this.inflight)!.catch(() => undefined);
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  private closed = false;

  private startNext(): Promise<number> {
    this.next = undefined;
    if (this.fatal) return Promise.reject(this.fatal);
    return (this.inflight = this.start());
  }

  private start(): Promise<number> {
    this.counts.syncs++;
    const p = this.sync(this.fd).then(
      () => {
        if (this.inflight === p) this.inflight = undefined;
        if (this.fatal) throw this.fatal;
        return performance.now();
      },
      (err: NodeJS.ErrnoException) => {
        if (this.inflight === p) this.inflight = undefined;
        if (!this.fatal) {
          const code = err?.code ?? 'unknown';
          this.fatal = new StoreError(
            `callback store ${this.file}: fdatasync of ${this.file}-wal failed (${code}${err?.errno !== undefined ? `, errno ${err.errno}` : ''}): ` +
              'commits since the last good sync may not be on the disk; writes are refused until the service restarts',
            err,
          );
          (this.fatal as StoreError & { code?: string }).code = code;
          this.onFatal?.(this.fatal);
        }
        throw this.fatal;
      },
    );
    return p;
  }
}
