/**
 * SQLite's durability off the event loop (src/store/wal-sync.ts): synchronous=NORMAL on the writer and the store's
 * own fdatasync of the WAL in the thread pool. Driven through the sync seam (`syncFn`), each sync a promise the
 * test settles by hand: a group's callers are answered, and its side effects run, only after a sync that started
 * after its COMMIT; commits during a sync in flight wait for the next one; `tx` and a statement of its own wait the
 * same way; a failing sync (an EIO from the seam) fails the group without its side effects and every later write
 * is refused with the named error, while reads go on; the descriptor stays the WAL's file across a TRUNCATE
 * checkpoint; and the real fdatasync path works end to end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from '../../src/store/contract';
import type { Db } from '../../src/store/db';
import { GroupCommit } from '../../src/store/group';
import { openSqliteDb, SqliteStore } from '../../src/store/sqlite';
import { sqliteBenchSeams } from '../../src/store';
import type { RequestRecord } from '../../src/store/contract';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-sync-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
  /** Rows of `t` in the file when the sync started (read by another connection: committed rows only). */
  rowsAtStart: number;
}

/** A store whose syncs wait for the test; each started sync is recorded with what was committed when it began. */
function storeWithSeam() {
  const file = path.join(dir, 'callbacks.db');
  const syncs: Pending[] = [];
  let reader: Database.Database | undefined;
  const failures: StoreError[] = [];
  const db: Db = openSqliteDb(file, {
    checkpoint: 'commit',
    sync: 'thread',
    syncFn: () =>
      new Promise<void>((resolve, reject) => {
        reader ??= new Database(file, { readonly: true });
        let rowsAtStart = 0;
        try {
          rowsAtStart = (reader.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
        } catch {
          // no table yet
        }
        syncs.push({ resolve, reject, rowsAtStart });
      }),
    onSyncFailed: (err) => failures.push(err),
  });
  const close = async () => {
    reader?.close();
    for (const s of syncs) s.resolve();
    await db.close().catch(() => undefined);
  };
  return { file, db, syncs, failures, close };
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

function watch<T>(p: Promise<T>): { settled: boolean; failed?: unknown; p: Promise<T> } {
  const w: { settled: boolean; failed?: unknown; p: Promise<T> } = { settled: false, p };
  p.then(
    () => (w.settled = true),
    (err: unknown) => {
      w.settled = true;
      w.failed = err;
    },
  );
  return w;
}

/** Creates the table (its own write: waits for a sync, released here). */
async function table(s: ReturnType<typeof storeWithSeam>): Promise<void> {
  const made = s.db.run('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  await turns();
  s.syncs.shift()!.resolve();
  await made;
}

describe('SQLite: commits made durable by the store\'s own fdatasync, off the event loop', () => {
  it('a group\'s callers hear back, and its side effects run, only after a sync that started after its COMMIT', async () => {
    const s = storeWithSeam();
    try {
      await table(s);
      const g = new GroupCommit({ open: (o) => s.db.group(o) });
      const effects: number[] = [];
      const decision = (id: number) =>
        g.run(async () => {
          await s.db.run('INSERT INTO t (id) VALUES (?)', [id]);
          g.afterCommit((at) => effects.push(at));
          return id;
        });
      const a = watch(decision(1));
      const b = watch(decision(2));
      await turns();
      expect(s.syncs).toHaveLength(1);
      // The sync began after the COMMIT: both rows were already committed (another connection saw them).
      expect(s.syncs[0].rowsAtStart).toBe(2);
      expect(a.settled || b.settled).toBe(false);
      expect(effects).toEqual([]);
      s.syncs.shift()!.resolve();
      await Promise.all([a.p, b.p]);
      expect(effects).toHaveLength(2);
      // One durable moment for the group, handed to each side effect.
      expect(effects[0]).toBe(effects[1]);
    } finally {
      await s.close();
    }
  });

  it('commits made while a sync is in flight wait for the next one, which one sync covers', async () => {
    const s = storeWithSeam();
    try {
      await table(s);
      const g = new GroupCommit({ open: (o) => s.db.group(o) });
      const decision = (id: number) => g.run(async () => s.db.run('INSERT INTO t (id) VALUES (?)', [id]));
      const first = watch(decision(1));
      await turns();
      expect(s.syncs).toHaveLength(1);
      // Two more groups commit while the first sync is in flight (the loop is free: no wait on the disk).
      const second = watch(decision(2));
      await turns();
      const third = watch(s.db.tx((q) => q.run('INSERT INTO t (id) VALUES (3)')));
      await turns();
      expect(s.syncs).toHaveLength(1);
      expect(await s.db.one<{ n: number }>('SELECT count(*) AS n FROM t')).toEqual({ n: 3 });
      s.syncs.shift()!.resolve();
      await first.p;
      await turns();
      expect(second.settled || third.settled).toBe(false);
      // The next sync started once the first ended, after both later commits: one sync for the two.
      expect(s.syncs).toHaveLength(1);
      expect(s.syncs[0].rowsAtStart).toBe(3);
      s.syncs.shift()!.resolve();
      await Promise.all([second.p, third.p]);
      expect(s.syncs).toHaveLength(0);
    } finally {
      await s.close();
    }
  });

  it('a statement of its own and a transaction resolve only once synced', async () => {
    const s = storeWithSeam();
    try {
      await table(s);
      const ran = watch(s.db.run('INSERT INTO t (id) VALUES (1)'));
      await turns();
      expect(ran.settled).toBe(false);
      expect(s.syncs).toHaveLength(1);
      s.syncs.shift()!.resolve();
      expect(await ran.p).toBe(1);
      // A read does not wait for any sync.
      expect(await s.db.one<{ n: number }>('SELECT count(*) AS n FROM t')).toEqual({ n: 1 });
      expect(s.syncs).toHaveLength(0);
    } finally {
      await s.close();
    }
  });

  it('an EIO from the sync fails the group without its side effects; every later write is refused naming the file and errno; reads go on', async () => {
    const s = storeWithSeam();
    try {
      await table(s);
      const g = new GroupCommit({ open: (o) => s.db.group(o) });
      const effects: string[] = [];
      const doomed = watch(
        g.run(async () => {
          await s.db.run('INSERT INTO t (id) VALUES (1)');
          g.afterCommit(() => effects.push('ran'));
        }),
      );
      await turns();
      // A second write waits for the next sync behind the failing one.
      const behind = watch(s.db.tx((q) => q.run('INSERT INTO t (id) VALUES (2)')));
      await turns();
      const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 });
      s.syncs.shift()!.reject(eio);
      await expect(doomed.p).rejects.toBeInstanceOf(StoreError);
      await expect(behind.p).rejects.toBeInstanceOf(StoreError);
      const err = doomed.failed as StoreError;
      expect(err.message).toContain(`${s.file}-wal`);
      expect(err.message).toContain('EIO');
      expect(err.message).toContain('errno -5');
      expect(behind.failed).toBe(err);
      expect(effects).toEqual([]);
      expect(s.failures).toEqual([err]);
      // Never retried: no further sync was started, and every later write is refused at once with the same error.
      expect(s.syncs).toHaveLength(0);
      await expect(s.db.run('INSERT INTO t (id) VALUES (3)')).rejects.toBe(err);
      await expect(s.db.tx((q) => q.run('INSERT INTO t (id) VALUES (4)'))).rejects.toBe(err);
      await expect(s.db.group()).rejects.toBe(err);
      await expect(g.run(async () => s.db.run('INSERT INTO t (id) VALUES (5)'))).rejects.toBe(err);
      expect(s.syncs).toHaveLength(0);
      // Not ready for writes (the service's /readyz says why); reads go on.
      expect(await s.db.writable()).toEqual({ ok: false, reason: err.message });
      expect(await s.db.one<{ n: number }>('SELECT count(*) AS n FROM t WHERE id >= 3')).toEqual({ n: 0 });
      expect(s.failures).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it('the store keeps the WAL\'s descriptor across a TRUNCATE checkpoint, and the real fdatasync acknowledges writes', async () => {
    const file = path.join(dir, 'real.db');
    const store = SqliteStore.open<RequestRecord>(file, { sync: 'thread' });
    try {
      const db = (store as unknown as { db: Db }).db;
      await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      for (let i = 1; i <= 20; i++) await db.tx((q) => q.run('INSERT INTO t (id) VALUES (?)', [i]));
      const ws = store.walSync!;
      expect(ws.counts.syncs).toBeGreaterThanOrEqual(1);
      expect(ws.sameFile()).toBe(true);
      const other = new Database(file);
      other.pragma('wal_checkpoint(TRUNCATE)');
      other.close();
      expect(fs.statSync(`${file}-wal`).size).toBe(0);
      expect(ws.sameFile()).toBe(true);
      await db.tx((q) => q.run('INSERT INTO t (id) VALUES (21)'));
      expect(ws.sameFile()).toBe(true);
      expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(0);
      expect((store as unknown as { db: { db: Database.Database } }).db.db.pragma('synchronous', { simple: true })).toBe(1);
    } finally {
      await store.close();
    }
    // The default ('commit') is SQLite's FULL, without the store's syncs.
    const full = SqliteStore.open<RequestRecord>(file);
    try {
      expect(full.walSync).toBeUndefined();
      expect((full as unknown as { db: { db: Database.Database } }).db.db.pragma('synchronous', { simple: true })).toBe(2);
    } finally {
      await full.close();
    }
  });

  it('the bench\'s env seams choose the old behaviour, and a typo in them is refused', () => {
    expect(sqliteBenchSeams({})).toEqual({});
    expect(sqliteBenchSeams({ CC_SQLITE_SYNC: 'commit', CC_SQLITE_CHECKPOINT: 'commit' })).toEqual({ sync: 'commit', checkpoint: 'commit' });
    expect(sqliteBenchSeams({ CC_SQLITE_SYNC: 'thread' })).toEqual({ sync: 'thread' });
    expect(() => sqliteBenchSeams({ CC_SQLITE_SYNC: 'ful' })).toThrow(/CC_SQLITE_SYNC=ful: expected one of thread, commit/);
    expect(() => sqliteBenchSeams({ CC_SQLITE_CHECKPOINT: 'worker' })).toThrow(/CC_SQLITE_CHECKPOINT=worker/);
  });
});
