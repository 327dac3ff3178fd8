/**
 * The opt-in's commit on SQLite, on the store's own path (Engine.optIn → createOrRefresh → the group's COMMIT), in
 * a loop: one after the other, then bursts of 10 at once. Small and quick, so two variants can be compared
 * alternately within a minute on a shared machine:
 *
 *   node .tools-dist/bench/optin-commit.js [variant] [opt-ins per mode] [seconds of continuous writes]
 *
 * `variant`: `inline` (wal_autocheckpoint=1000 on the writer: SQLite checkpoints inside the COMMIT that crosses
 * 1000 pages), `background` (the store's default: checkpoints in a worker thread; see src/store/checkpoint.ts).
 * `CC_SQLITE_SYNC=commit` in the environment runs the store at synchronous=FULL (SQLite's fsync inside the COMMIT,
 * on the event loop) instead of the default (NORMAL and the store's fdatasync of the WAL in the thread pool,
 * src/store/wal-sync.ts); the line says which (`sync`). "opt-in → durable" ends when the group stamped its durable
 * moment (the COMMIT, and the sync after it, completed); the COMMIT alone is the statement on the loop.
 * Prints one JSON line: per mode p50/p99/max of opt-in → durable and of the COMMIT alone (ms), the slowest
 * COMMITs, the largest WAL file seen (bytes), and the fsync probe of the same directory for comparison.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CallbackRequest } from '../src/core/policy';
import { OptInMarks } from '../src/engine/opt-in';
import { SqliteStore } from '../src/store/sqlite';
import { sqliteBenchSeams } from '../src/store';
import { fdatasync } from '../src/store/wal-sync';
import { round, stats } from './common';
import { fsyncProbe } from './probe';
import { engineFor } from './scale';

type Variant = 'inline' | 'background';

const commits: number[] = [];
/** The COMMITs during which the main file was written (SQLite's checkpoint ran inside them): their durations. */
const checkpointing: number[] = [];
let mainFile = '';
const mtime = () => (mainFile ? fs.statSync(mainFile).mtimeMs : 0);
const origExec = Database.prototype.exec;
// The COMMIT alone, timed where better-sqlite3 runs it (the group's end).
Database.prototype.exec = function exec(this: Database.Database, sql: string) {
  if (sql !== 'COMMIT') return origExec.call(this, sql);
  const m0 = mtime();
  const t0 = performance.now();
  const r = origExec.call(this, sql);
  const ms = performance.now() - t0;
  commits.push(ms);
  if (mtime() !== m0) checkpointing.push(ms);
  return r;
};

const r2 = (s: ReturnType<typeof stats>) => ({ n: s.n, p50: round(s.p50, 3), p99: round(s.p99, 3), max: round(s.max, 3) });

async function main(): Promise<void> {
  const variant = (process.argv[2] ?? 'background') as Variant;
  const n = Number(process.argv[3] ?? 1000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-optin-commit-'));
  const file = path.join(dir, 'callbacks.db');
  mainFile = file;
  const sync = sqliteBenchSeams().sync ?? 'thread';
  // The fdatasync itself, timed in the thread pool's callback (what the disk took, beside what the opt-in waited).
  const syncTimes: number[] = [];
  const syncFn = (fd: number) => {
    const t = performance.now();
    return fdatasync(fd).then(() => void syncTimes.push(performance.now() - t));
  };
  const store = SqliteStore.open<CallbackRequest>(file, { checkpoint: variant === 'inline' ? 'commit' : 'background', sync, syncFn });
  const engine = engineFor(store, Date.now);
  engine.setPbxUp(true);
  let walMax = 0;
  const walNow = () => {
    try {
      walMax = Math.max(walMax, fs.statSync(`${file}-wal`).size);
    } catch {
      // not there yet
    }
  };
  let i = 0;
  // Each opt-in comes with an event (a turn of the event loop), as in the service; without the turns a loop of
  // promises over the synchronous driver never lets the worker's answers in.
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const steps = { staging: [] as number[], afterCommit: [] as number[] };
  const one = async (): Promise<number> => {
    const k = i++;
    const marks: OptInMarks = {};
    const t0 = performance.now();
    const r = await engine.optIn({ marks, agent: `PJSIP/a${k % 400}`, agentCallerId: { name: 'A', number: '1' }, prospect: `+49301${String(k).padStart(7, '0')}`, language: 'en', channelId: `c${k}` });
    if (r.result !== 'created' && r.result !== 'refreshed') throw new Error(`opt-in ${k}: ${r.result}`);
    steps.staging.push(marks.staged! - marks.decided!);
    steps.afterCommit.push(marks.positioned! - marks.committed!);
    return marks.committed! - t0;
  };
  const out: Record<string, unknown> = { variant, sync, n };
  // warm-up
  for (let w = 0; w < 50; w++) await one();
  syncTimes.length = 0;
  commits.length = 0;
  checkpointing.length = 0;
  const seq: number[] = [];
  steps.staging.length = 0;
  steps.afterCommit.length = 0;
  for (let j = 0; j < n; j++) {
    await turn();
    seq.push(await one());
    walNow();
  }
  const stepStats = () => ({ staging: r2(stats(steps.staging)), afterCommit: r2(stats(steps.afterCommit)) });
  out.sequential = { sync: r2(stats(syncTimes.splice(0))), steps: stepStats(), optIn: r2(stats(seq)), commit: r2(stats(commits)), slowestCommits: [...commits].sort((a, b) => b - a).slice(0, 5).map((x) => round(x, 2)), checkpointingCommits: checkpointing.map((x) => round(x, 2)) };
  commits.length = 0;
  checkpointing.length = 0;
  steps.staging.length = 0;
  steps.afterCommit.length = 0;
  const conc: number[] = [];
  for (let j = 0; j < n / 10; j++) {
    await turn();
    conc.push(...(await Promise.all(Array.from({ length: 10 }, one))));
    walNow();
  }
  out.concurrent = { sync: r2(stats(syncTimes.splice(0))), steps: stepStats(), optIn: r2(stats(conc)), commit: r2(stats(commits)), slowestCommits: [...commits].sort((a, b) => b - a).slice(0, 5).map((x) => round(x, 2)), checkpointingCommits: checkpointing.map((x) => round(x, 2)) };
  out.walMaxBytes = walMax;
  out.checkpoints = store.checkpointer?.counts;
  out.syncs = store.walSync?.counts;
  await store.close();
  const probe = fsyncProbe(dir, 200);
  out.fsyncProbe = { p50: round(probe.p50, 3), p99: round(probe.p99, 3) };
  out.load = os.loadavg().map((x) => round(x, 2));
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
