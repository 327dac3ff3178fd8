/**
 * SQLite's WAL checkpoints in a worker thread (src/store/checkpoint.ts): the WAL stays bounded under continuous
 * writes, SQLite's own checkpoint remains as a backstop, a failing worker puts the checkpoints back inside the
 * COMMIT, and a process killed while the worker checkpoints loses no committed row.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BACKSTOP_FACTOR } from '../../src/store/checkpoint';
import { SqliteStore } from '../../src/store/sqlite';
import { RequestRecord } from '../../src/store/contract';

const ROOT = path.resolve(__dirname, '../..');
const FRAME = 4096 + 24;
const PAGES = 200;

function tmpFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-ckpt-')), 'callbacks.db');
}

const walSize = (file: string): number => {
  try {
    return fs.statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
};

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * `n` transactions of one ~3 KiB row each (a page or two of the WAL), an event-loop turn before each when `turns`.
 * Returns the WAL's largest size; `peaks` gets its largest size in each cycle (SQLite starting it over ends one).
 */
async function write(store: SqliteStore<RequestRecord>, n: number, turns: boolean, peaks: number[] = []): Promise<number> {
  const db = (store as unknown as { db: import('../../src/store/db').Db }).db;
  await db.run('CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const body = 'x'.repeat(3000);
  let most = 0;
  let peak = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    if (turns) await turn();
    await db.tx(async (q) => {
      await q.run('INSERT INTO filler (body) VALUES (?)', [body]);
    });
    // The file keeps its length when SQLite starts the WAL over: the frame count in the WAL-index header tells.
    const frames = store.checkpointer?.walFrames() ?? 0;
    if (frames < last) {
      peaks.push(peak);
      peak = 0;
    }
    last = frames;
    peak = Math.max(peak, frames * FRAME + 32);
    most = Math.max(most, walSize(store.file));
  }
  return most;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('WAL checkpoints in a worker thread', () => {
  it('under continuous writes (an event each) SQLite starts the WAL over at about twice the threshold, never at the backstop', async () => {
    const file = tmpFile();
    const store = SqliteStore.open<RequestRecord>(file, { checkpointPages: PAGES });
    try {
      const peaks: number[] = [];
      const most = await write(store, 20 * PAGES, true, peaks);
      const c = store.checkpointer!;
      expect(c.counts.checkpoints).toBeGreaterThanOrEqual(5);
      // Writes that never pause: the worker cannot catch up alone, the writer is held back for the last pages.
      expect(c.counts.exclusive).toBeGreaterThanOrEqual(1);
      // Started over again and again, typically within three times the threshold (SQLite's backstop alone lets each
      // cycle reach four times, as the test below shows). A cycle may run longer while a checkpoint waits for a busy
      // disk (the writer is only held back once it ends; then the backstop bounds it): the clean-clone CI of 2c84568
      // saw 3.2 times once, a run beside the compose stack the backstop.
      expect(peaks.length).toBeGreaterThanOrEqual(5);
      expect(median(peaks)).toBeLessThanOrEqual(3 * PAGES * FRAME + 32);
      expect(most).toBeLessThanOrEqual((BACKSTOP_FACTOR * PAGES + 50) * FRAME + 32);
      expect(store.checkpointFallback).toBeUndefined();
    } finally {
      await store.close();
    }
  }, 60000);

  it('without the worker the same writes grow the WAL past that bound (the test above can fail)', async () => {
    const file = tmpFile();
    const store = SqliteStore.open<RequestRecord>(file, { checkpoint: 'commit' });
    try {
      (store as unknown as { db: { db: { pragma(s: string): unknown } } }).db.db.pragma('wal_autocheckpoint = 0');
      const most = await write(store, 5 * PAGES, true);
      expect(most).toBeGreaterThan(3 * PAGES * FRAME + 32);
    } finally {
      await store.close();
    }
  }, 60000);

  it('writes that never give the event loop a turn (the worker cannot answer) are bounded by SQLite\'s own checkpoint at the backstop', async () => {
    const file = tmpFile();
    // synchronous=FULL: each write is done on the loop (with the sync in the thread pool, every write's wait for its
    // sync is a turn of the loop, and the worker answers).
    const store = SqliteStore.open<RequestRecord>(file, { checkpointPages: PAGES, sync: 'commit' });
    try {
      const most = await write(store, 6 * PAGES, false);
      expect(most).toBeLessThanOrEqual((BACKSTOP_FACTOR * PAGES + 50) * FRAME + 32);
      expect(most).toBeGreaterThan(3 * PAGES * FRAME);
    } finally {
      await store.close();
    }
  }, 60000);

  it('a worker that cannot open the file puts the checkpoints back inside the COMMIT, and writes go on', async () => {
    const file = tmpFile();
    const store = SqliteStore.open<RequestRecord>(file, { checkpointPages: PAGES });
    try {
      await write(store, 5, true);
      // The writer keeps its open file; the worker, started at the first threshold, finds no file to open.
      fs.renameSync(file, `${file}.moved`);
      await write(store, 3 * PAGES, true);
      for (let i = 0; i < 50 && !store.checkpointFallback; i++) await new Promise((r) => setTimeout(r, 20));
      expect(store.checkpointFallback).toMatch(/^cannot open .*callbacks\.db: /);
      const wal = walSize(file);
      await write(store, 3 * PAGES, true);
      // SQLite's own checkpoint (every 1000 pages) runs again: the WAL keeps to that, not the backstop.
      expect(walSize(file)).toBeLessThanOrEqual(Math.max(wal, (1000 + 50) * FRAME + 32));
    } finally {
      await store.close();
    }
  }, 60000);

  const built = fs.existsSync(path.join(ROOT, 'dist/store/sqlite.js'));
  (built ? it : it.skip)('kill -9 while the worker checkpoints: every committed row is there and the file is sound', async () => {
    const file = tmpFile();
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
const { SqliteStore } = require(${JSON.stringify(path.join(ROOT, 'dist/store/sqlite.js'))});
const store = SqliteStore.open(process.argv[1], { checkpointPages: 50 });
const db = store.db;
(async () => {
  await db.run('CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const body = 'y'.repeat(3000);
  for (let i = 1; ; i++) {
    await new Promise((r) => setImmediate(r));
    await db.tx((q) => q.run('INSERT INTO filler (id, body) VALUES (?, ?)', [i, body]));
    process.stdout.write(i + '\\n');
  }
})();
`,
        file,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let acknowledged = 0;
    let buf = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) acknowledged = Math.max(acknowledged, Number(l));
        // Past several thresholds: the worker has been checkpointing; kill at a point in the cycle that varies.
        if (acknowledged >= 600 + Math.floor(Math.random() * 200) && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const store = SqliteStore.open<RequestRecord>(file);
    try {
      const db = (store as unknown as { db: import('../../src/store/db').Db }).db;
      const n = await db.one<{ n: number; most: number }>('SELECT count(*) AS n, max(id) AS most FROM filler');
      expect(n!.most).toBeGreaterThanOrEqual(acknowledged);
      expect(n!.n).toBe(n!.most);
    } finally {
      await store.close();
    }
  }, 60000);
});
