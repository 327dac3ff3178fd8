/**
 * What the bench measures beside the targets, in the same run: the disk's own limit (the fsync probe), how
 * busy the machine was while a part ran (other processes' CPU), and a summary of a V8 CPU profile
 * (`node --cpu-prof`) of the service.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Stats, round, stats } from './common';

/**
 * The physical limit of a durable commit on this disk: `n` times a 4 KiB write at the same offset of a
 * file in `dir` + fdatasync (what a WAL commit does at least once), timed one by one (ms).
 */
export function fsyncProbe(dir: string, n = 200): Stats {
  const file = path.join(dir, `.cc-bench-fsync-${process.pid}`);
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(4096, 0x5a);
  const xs: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      fs.writeSync(fd, buf, 0, buf.length, 0);
      fs.fdatasyncSync(fd);
      xs.push(performance.now() - t0);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return roundedStats(xs);
}

/** The probes' samples as Stats, rounded to µs. */
function roundedStats(xs: readonly number[]): Stats {
  const s = stats(xs);
  return { n: s.n, p50: round(s.p50, 3), p95: round(s.p95, 3), p99: round(s.p99, 3), max: round(s.max, 3), mean: round(s.mean, 3) };
}

/**
 * SQLite's own floor for a durable opt-in on this disk: `n` transactions one after the other, each one INSERT of
 * a row about the size of an opt-in's rows (1 KiB) + COMMIT, in a bare database in `dir` (WAL,
 * synchronous = FULL, SQLite's own checkpoints), timed one by one (ms). No app, no event routing, no indexes:
 * what any program using SQLite this way waits for at least.
 */
export function sqliteCommitProbe(dir: string, n = 200): Stats {
  const file = path.join(dir, `.cc-bench-sqlite-${process.pid}.db`);
  const db = new Database(file);
  const xs: number[] = [];
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    const ins = db.prepare('INSERT INTO t (body) VALUES (?)');
    const begin = db.prepare('BEGIN IMMEDIATE');
    const commit = db.prepare('COMMIT');
    const body = 'x'.repeat(1024);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      begin.run();
      ins.run(body);
      commit.run();
      xs.push(performance.now() - t0);
    }
  } finally {
    db.close();
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  }
  return roundedStats(xs);
}

/**
 * How often the machine takes the CPU away from a running process (the virtual machine's host, other
 * processes): the bench spins for `ms` reading the clock and counts the gaps between two readings longer than
 * 0.1 ms. On an idle dedicated core they stay near zero; every such gap is time a latency measurement of the
 * same moment would include whatever the app did.
 */
export function hiccupProbe(ms = 300): { spunMs: number; lostPct: number; over1msPerS: number; p99GapMs: number; maxGapMs: number } {
  const gaps: number[] = [];
  const t0 = performance.now();
  let last = t0;
  let lost = 0;
  for (;;) {
    const now = performance.now();
    const gap = now - last;
    if (gap > 0.1) {
      gaps.push(gap);
      lost += gap;
    }
    last = now;
    if (now - t0 >= ms) break;
  }
  const spun = last - t0;
  const sorted = gaps.sort((a, b) => a - b);
  const over1 = sorted.filter((g) => g > 1).length;
  return {
    spunMs: round(spun, 1),
    lostPct: round((lost / spun) * 100, 2),
    over1msPerS: round(over1 / (spun / 1000), 1),
    p99GapMs: round(sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] : 0, 3),
    maxGapMs: round(sorted.length ? sorted[sorted.length - 1] : 0, 3),
  };
}

/**
 * The machine's CPU use between `start()` and the returned `end()`: busy cores (0…nproc), the 1-min load
 * average, and the share of CPU time the virtual machine's host took for others (steal, from /proc/stat; NaN
 * where there is none).
 */
export function machineLoad(): () => { busyCores: number; loadAverage1: number; stealPct: number } {
  const t0 = cpuTotals();
  const s0 = procStat();
  return () => {
    const t1 = cpuTotals();
    const s1 = procStat();
    const total = t1.total - t0.total;
    const busy = total - (t1.idle - t0.idle);
    const stealPct = s0 && s1 && s1.total > s0.total ? round(((s1.steal - s0.steal) / (s1.total - s0.total)) * 100, 2) : NaN;
    return { busyCores: total > 0 ? round((busy / total) * os.cpus().length, 2) : NaN, loadAverage1: round(os.loadavg()[0], 2), stealPct };
  };
}

/** The `cpu` line of /proc/stat: steal and the total of all fields (USER_HZ ticks); undefined off Linux. */
function procStat(): { steal: number; total: number } | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const xs = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (xs.length < 8 || xs.some((x) => !Number.isFinite(x))) return undefined;
    return { steal: xs[7], total: xs.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

function cpuTotals(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const c of os.cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
  }
  return { idle, total };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** Where a function's self time belongs, by its script. */
function category(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8/native (program)';
  if (/better-sqlite3/.test(url) || /\/store\//.test(url)) return 'store (SQL, SQLite/pg driver)';
  if (/node_modules\/(pg|pg-protocol|pg-pool)\//.test(url)) return 'store (SQL, SQLite/pg driver)';
  if (/node_modules\/(ws|ari-client|swagger-client|node-fetch)\//.test(url) || /\/telephony\//.test(url)) return 'ARI transport (ws, ari-client, REST)';
  if (/\/logging\//.test(url)) return 'logging';
  if (/node_modules\//.test(url)) return `library ${url.replace(/.*node_modules\/((?:@[^/]+\/)?[^/]+).*/, '$1')}`;
  if (/^node:/.test(url) || url === '') return 'Node core';
  return 'the app (core, flows, engine)';
}

/** The self time of a `.cpuprofile` by category and its heaviest functions (ms and % of the non-idle time). */
export function summariseProfile(file: string, top = 12): Record<string, unknown> {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let busy = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const c = category(n.callFrame.url, n.callFrame.functionName);
    cats.set(c, (cats.get(c) ?? 0) + ms);
    if (c === 'idle') continue;
    busy += ms;
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/.*\/(node_modules\/|dist\/)/, '$1')}:${n.callFrame.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + ms);
  }
  const pct = (ms: number) => round((ms / busy) * 100, 1);
  return {
    wallMs: round((p.endTime - p.startTime) / 1000, 0),
    busyMs: round(busy, 0),
    categories: [...cats.entries()].filter(([c]) => c !== 'idle').sort((a, b) => b[1] - a[1]).map(([name, ms]) => ({ name, ms: round(ms, 0), pct: pct(ms) })),
    top: [...fns.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, ms]) => ({ name, ms: round(ms, 0), pct: pct(ms) })),
  };
}

/** The newest `.cpuprofile` in `dir`, summarised; undefined when there is none. */
export function profileIn(dir: string): Record<string, unknown> | undefined {
  try {
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) return undefined;
    const newest = files.map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
    return { file: newest, ...summariseProfile(newest) };
  } catch {
    return undefined;
  }
}

/** The median of `xs` and the spread (min–max) across runs. */
export function acrossRuns(xs: readonly number[]): { median: number; min: number; max: number; runs: number[] } {
  const ok = xs.filter((x) => Number.isFinite(x));
  const s = [...ok].sort((a, b) => a - b);
  const median = s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: round(median, 3), min: round(s[0] ?? NaN, 3), max: round(s[s.length - 1] ?? NaN, 3), runs: xs.map((x) => round(x, 3)) };
}

/**
 * Self and total (self + callees) time per function of a `.cpuprofile`, heaviest first; `filter` keeps the
 * functions whose script matches (e.g. `dist/telephony|dist/flows`). Recursion counts a function once per stack.
 */
export function functionTimes(file: string, filter?: RegExp): Array<{ name: string; selfMs: number; totalMs: number }> {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/.*\/(node_modules\/|dist\/)/, '$1')}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    let n = byId.get(p.samples[i]);
    if (!n || n.callFrame.functionName === '(idle)') continue;
    self.set(keyOf(n), (self.get(keyOf(n)) ?? 0) + ms);
    const seen = new Set<string>();
    while (n) {
      const k = keyOf(n);
      if (!seen.has(k)) {
        seen.add(k);
        total.set(k, (total.get(k) ?? 0) + ms);
      }
      const up = parent.get(n.id);
      n = up === undefined ? undefined : byId.get(up);
    }
  }
  return [...total.entries()]
    .filter(([k]) => !filter || filter.test(k))
    .map(([name, t]) => ({ name, selfMs: round(self.get(name) ?? 0, 1), totalMs: round(t, 1) }))
    .sort((a, b) => b.selfMs - a.selfMs);
}

// `node .tools-dist/bench/probe.js <file.cpuprofile> [top] [filter]`: the summary, then the heaviest functions
// by self time (optionally only those whose script matches the filter), with their total time.
if (require.main === module) {
  const [file, n, filter] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node .tools-dist/bench/probe.js <file.cpuprofile> [top] [filter regexp]\n');
    process.exit(2);
  }
  const s = summariseProfile(file, Number(n ?? 25)) as { busyMs: number; wallMs: number; categories: Array<{ name: string; ms: number; pct: number }> };
  process.stdout.write(`${s.busyMs} ms of CPU in ${s.wallMs} ms\n`);
  for (const c of s.categories.slice(0, 10)) process.stdout.write(`  ${c.name}: ${c.ms} ms (${c.pct} %)\n`);
  process.stdout.write('self ms  total ms  function\n');
  for (const f of functionTimes(file, filter ? new RegExp(filter) : undefined).slice(0, Number(n ?? 25))) {
    process.stdout.write(`${String(f.selfMs).padStart(7)}  ${String(f.totalMs).padStart(8)}  ${f.name}\n`);
  }
}
