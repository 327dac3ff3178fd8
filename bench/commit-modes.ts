/**
 * How to commit concurrent opt-ins on SQLite (better-sqlite3 is synchronous): measured, not guessed. Bursts
 * of `k` opt-ins arriving together (each: one request row, one history row and one outbox row, ~1 KiB of
 * JSON, in WAL mode with synchronous = FULL as the store runs) are committed four ways:
 *
 *  - serial: one transaction per opt-in on the event loop (what the store does);
 *  - group: the burst's opt-ins in one transaction, a savepoint each, one commit (one fsync) for all;
 *  - worker: one transaction per opt-in in a worker thread (the event loop only posts and waits);
 *  - worker+group: the burst as one group in the worker thread.
 *
 * Per opt-in: its arrival → its commit durable (ms); per burst: how long the event loop was blocked (ms).
 * Run as a part of `npm run bench` (`--only commit`), or `node .tools-dist/bench/commit-modes.js [bursts] [k]`:
 * prints one JSON line.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { round, stats } from './common';
import { fsyncProbe } from './probe';

type Mode = 'serial' | 'group' | 'worker' | 'worker+group';

function open(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE IF NOT EXISTS requests(id TEXT PRIMARY KEY, agent TEXT, prospect TEXT, state TEXT, data TEXT);
           CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, request_id TEXT, at INTEGER, data TEXT);
           CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY, request_id TEXT, body TEXT)`);
  return db;
}

/** One opt-in's rows, prepared once. */
function writer(db: Database.Database): (id: string) => void {
  const r = db.prepare('INSERT INTO requests(id, agent, prospect, state, data) VALUES (?, ?, ?, ?, ?)');
  const e = db.prepare('INSERT INTO events(request_id, at, data) VALUES (?, ?, ?)');
  const o = db.prepare('INSERT INTO outbox(request_id, body) VALUES (?, ?)');
  const data = JSON.stringify({ pad: 'x'.repeat(700), agent: 'PJSIP/1001', prospect: '+4930123456' });
  return (id) => {
    r.run(id, 'PJSIP/1001', '+4930123456', 'PENDING', data);
    e.run(id, Date.now(), '{"type":"created"}');
    o.run(id, '{"event":"callback.requested"}');
  };
}

/** Commits `ids` one transaction each, or as one group (a savepoint per opt-in); returns each one's done time. */
function commit(db: Database.Database, write: (id: string) => void, ids: readonly string[], group: boolean): number[] {
  const done: number[] = [];
  if (!group) {
    for (const id of ids) {
      db.exec('BEGIN IMMEDIATE');
      write(id);
      db.exec('COMMIT');
      done.push(performance.now());
    }
    return done;
  }
  db.exec('BEGIN IMMEDIATE');
  for (const id of ids) {
    db.exec('SAVEPOINT o');
    write(id);
    db.exec('RELEASE o');
  }
  db.exec('COMMIT');
  const t = performance.now();
  return ids.map(() => t);
}

if (!isMainThread && parentPort) {
  // The worker: opens its own connection, commits what it is sent and replies once all of it is durable.
  const db = open(workerData.file as string);
  const write = writer(db);
  const port = parentPort;
  port.on('message', (m: { ids: string[]; group: boolean }) => {
    commit(db, write, m.ids, m.group);
    port.postMessage({ done: m.ids.length });
  });
}

async function measure(mode: Mode, file: string, bursts: number, k: number): Promise<Record<string, unknown>> {
  const latencies: number[] = [];
  const blocked: number[] = [];
  let n = 0;
  if (mode === 'serial' || mode === 'group') {
    const db = open(file);
    const write = writer(db);
    commit(db, write, ['warm-up'], false); // not counted
    for (let b = 0; b < bursts; b++) {
      const ids = Array.from({ length: k }, () => `${mode}-${n++}`);
      const t0 = performance.now();
      const done = commit(db, write, ids, mode === 'group');
      blocked.push(performance.now() - t0);
      for (const t of done) latencies.push(t - t0);
      await new Promise((r) => setImmediate(r));
    }
    db.close();
  } else {
    const w = new Worker(__filename, { workerData: { file } });
    try {
      // warm-up, not counted: the thread's start and its first open
      await new Promise((r) => {
        w.once('message', r);
        w.postMessage({ ids: ['warm-up'], group: false });
      });
      for (let b = 0; b < bursts; b++) {
        const ids = Array.from({ length: k }, () => `${mode}-${n++}`);
        const t0 = performance.now();
        const reply = new Promise<{ done: number }>((r) => w.once('message', r));
        w.postMessage({ ids, group: mode === 'worker+group' });
        blocked.push(performance.now() - t0);
        const { done } = await reply;
        const now = performance.now();
        // the caller hears of each commit when the reply arrives
        for (let i = 0; i < done; i++) latencies.push(now - t0);
      }
    } finally {
      await w.terminate();
    }
  }
  const l = stats(latencies);
  const bl = stats(blocked);
  return { mode, perOptIn: { p50: round(l.p50, 3), p99: round(l.p99, 3), max: round(l.max, 3) }, loopBlockedPerBurst: { p50: round(bl.p50, 3), p99: round(bl.p99, 3) } };
}

export async function commitModes(bursts = 60, k = 10): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-commit-'));
  try {
    const modes: Mode[] = ['serial', 'group', 'worker', 'worker+group'];
    const out: Record<string, unknown>[] = [];
    // alternating: every mode once per round, three rounds; each mode's figures are the median round's
    const rounds: Record<string, Array<Record<string, unknown>>> = {};
    const probes = [];
    for (let round = 0; round < 3; round++) {
      probes.push(fsyncProbe(dir, 100));
      for (const m of modes) (rounds[m] ??= []).push(await measure(m, path.join(dir, `${m.replace('+', '-')}-${round}.db`), bursts, k));
    }
    for (const m of modes) {
      const rs = rounds[m].sort((a, b) => (a.perOptIn as { p99: number }).p99 - (b.perOptIn as { p99: number }).p99);
      out.push({ ...rs[1], runsP99: rounds[m].map((r) => (r.perOptIn as { p99: number }).p99) });
    }
    const fs50 = probes.map((p) => p.p50).sort((a, b) => a - b)[1];
    return { bursts, k, fsyncP50: fs50, modes: out };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread && require.main === module) {
  commitModes(Number(process.argv[2] ?? 60), Number(process.argv[3] ?? 10)).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
