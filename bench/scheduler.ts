/**
 * Scheduler scale: the engine over a store holding N pending requests (default 100 000), on SQLite.
 *
 * Runs in its own process (`node …/bench/scheduler.js [N]`); prints one JSON object on stdout. No PBX: the
 * engine gets no telephony (its actions are skipped) and a silent logger. The request mix, policy and
 * engine set-up are bench/scale.ts's, shared with the PostgreSQL figures of bench/pg.ts.
 *
 *  - fill: requests made by the real policy (`newRequest`, timed mode; 10 % internal prospects in device
 *    mode), inserted with one raw transaction into a store created by SqliteStore.open (same schema,
 *    same INSERT as createOrRefresh; no `events` rows — the scheduler never reads them).
 *  - start and memory, in a FRESH child process (bench/scale-start.ts) that only opens the filled store
 *    and starts the engine, so that none of the fill's garbage is in the figure: RSS before Engine.start()
 *    (after a forced GC), Engine.start() (distinct agents and watched lines from the store + nextWake +
 *    arm), RSS right after it (the peak of the reload), devicesToWatch / pending count / nextWake, RSS and
 *    heap after a forced GC (--expose-gc), and one presence event for an internal prospect line (reads the
 *    requests of that line through the prospect index) and one for an agent's device (no request is read).
 *  - claim rate (this process): fake clock past every wake-up; due(…) batches fed to
 *    engine.observe(tick) for ~5 s: decide + version-guarded transition (synchronous=FULL commit each).
 *  - fire drift (this process): a fresh store with the same N, of which 300 wake up spread over the next
 *    6 s (real clock, the engine's own timer; the 30 device-mode ones among them wait for their line, so
 *    270 are expected): drift = time of the committed transition − wakeAt. The run waits until 6 s after
 *    the last wake-up (at least 12 s after the start).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { CallbackRequest } from '../src/core/policy';
import { SqliteStore } from '../src/store/sqlite';
import { round, stats } from './common';
import { AGENTS, HOUR, benchRequest, engineFor, measureStartInFreshProcess } from './scale';

const N = Number(process.argv[2] ?? 100_000);

/** Fills `file` with `n` requests; `wakeAt(i)` is the wished wake-up (ms) of request i. */
function fill(file: string, n: number, wakeAt: (i: number) => number): number {
  SqliteStore.open<CallbackRequest>(file).close();
  const db = new Database(file);
  const insert = db.prepare(
    `INSERT INTO requests(id, agent, prospect, state, created_at, updated_at, wake_at, version, data) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`,
  );
  const t0 = performance.now();
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const r = benchRequest(i, wakeAt(i));
      insert.run(r.id, r.agent, r.prospect, r.state, r.createdAt, r.updatedAt, r.wakeAt, JSON.stringify(r));
    }
  })();
  const ms = performance.now() - t0;
  db.close();
  return ms;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-sched-'));
  try {
    const base = Date.now() + HOUR;
    // 1. fill: wake-ups spread over the next 24 h
    const file = path.join(dir, 'scale.db');
    const fillMs = fill(file, N, (i) => base + Math.floor((i * 24 * HOUR) / N));
    const dbBytes = fs.statSync(file).size + (fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : 0);
    const fillRss = process.memoryUsage().rss;

    // 2. start-up reload and memory, in a process that did not fill
    const start = measureStartInFreshProcess('sqlite', file);

    // 3. this process's own engine over the same store, for the claim rate
    let now = Date.now();
    const store = SqliteStore.open<CallbackRequest>(file);
    const engine = engineFor(store, () => now);
    await engine.start();
    engine.setPbxUp(true);

    // 4. claim rate: every request is due (fake clock a day ahead)
    now = base + 25 * HOUR;
    let decisions = 0;
    let lost = 0;
    const claimBudgetMs = 5000;
    const c0 = performance.now();
    outer: for (;;) {
      const due = await store.due(now, 200);
      if (due.length === 0) break;
      for (const { request } of due) {
        if (await engine.observe(request.id, { type: 'tick' })) decisions++;
        else lost++;
        if (performance.now() - c0 > claimBudgetMs) break outer;
      }
    }
    const claimMs = performance.now() - c0;
    engine.stop();
    await store.close();

    // 5. fire drift with the engine's own timer, real clock
    const file2 = path.join(dir, 'drift.db');
    const soon = 300;
    // the first wake-up comes about 3 s after the engine has started (fill + start as measured above, with room
    // for a machine busier now than then); a wake-up that still falls before the start is counted apart below
    const t5 = Date.now() + fillMs * 1.5 + start.startMs * 3 + 3000;
    fill(file2, N, (i) => (i < soon ? t5 + Math.floor((i * 6000) / soon) : base + Math.floor((i * 24 * HOUR) / N)));
    const store2 = SqliteStore.open<CallbackRequest>(file2);
    const wakeOf = new Map<string, number>();
    for (const { request } of await store2.due(t5 + 10_000, soon + 10)) wakeOf.set(request.id, request.wakeAt as number);
    const fired: { wake: number; at: number }[] = [];
    const transition = store2.transition.bind(store2);
    store2.transition = async (request, expectedVersion, events, outbox) => {
      const v = await transition(request, expectedVersion, events, outbox);
      const w = wakeOf.get(request.id);
      if (v !== undefined && w !== undefined) {
        fired.push({ wake: w, at: Date.now() });
        wakeOf.delete(request.id);
      }
      return v;
    };
    const expected = wakeOf.size;
    const engine2 = engineFor(store2, Date.now);
    engine2.setPbxUp(true);
    await engine2.start();
    const startedAt = Date.now();
    const lateBeforeStart = [...wakeOf.values()].filter((w) => w < startedAt).length;
    // The window ends 6 s after the LAST wake-up, not 12 s after the engine's start: t5 is estimated from the
    // first fill's duration, and when that fill was slow (a loaded machine, a cold JIT) and the second one fast,
    // the wake-ups lay up to ~15 s after the start and the old fixed window cut the last ones off — the
    // "258/270 fired" of the first PostgreSQL run was that cut, not requests the engine missed.
    const lastWake = Math.max(...wakeOf.values());
    const end = Math.max(Date.now() + 12_000, lastWake + 6_000);
    const windowMs = end - startedAt;
    while (wakeOf.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    const unfired = [...wakeOf.values()].map((w) => Date.now() - w);
    engine2.stop();
    await store2.close();
    // The drift is the timer's: a wake-up that fell before the engine had started fires at the start, late by the
    // start-up (fill and reload), which is measured above, not here; those are counted (dueBeforeEngineStart).
    const drift = stats(fired.filter((x) => x.wake >= startedAt).map((x) => x.at - x.wake));

    const out = {
      n: N,
      agents: AGENTS,
      fillMs: round(fillMs, 0),
      dbMiB: round(dbBytes / 2 ** 20, 1),
      /** The filling process's RSS after the fill (not the engine's: see the fresh process's figures). */
      fillProcessRssMiB: round(fillRss / 2 ** 20, 1),
      measuredIn: start.measuredIn,
      rssBaseMiB: start.rssBeforeStartMiB,
      rssAfterStartMiB: start.rssAfterStartMiB,
      rssPeakMiB: start.rssPeakMiB,
      rssAfterGcMiB: start.rssAfterGcMiB,
      heapAfterGcMiB: start.heapAfterGcMiB,
      startMs: start.startMs,
      devicesToWatchMs: start.devicesToWatchMs,
      devices: start.devices,
      watched: start.watched,
      pending: start.pending,
      pendingMs: start.pendingMs,
      nextWakeMs: start.nextWakeMs,
      deviceStateMs: start.deviceStateMs,
      deviceStateAgentMs: start.deviceStateAgentMs,
      claim: { decisions, lost, ms: round(claimMs, 0), perSecond: round((decisions / claimMs) * 1000, 0) },
      drift: {
        fired: fired.length,
        expected,
        /** Fired wake-ups that fell after the engine's start: the drift's sample. */
        measured: drift.n,
        dueBeforeEngineStart: lateBeforeStart,
        lastWakeAfterStartMs: lastWake - startedAt,
        windowMs,
        unfiredOverdueMs: unfired.length ? Math.max(...unfired) : 0,
        p50: drift.p50,
        p95: drift.p95,
        p99: drift.p99,
        max: drift.max,
      },
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
