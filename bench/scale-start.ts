/**
 * The scheduler's start-up over an already-filled store, in a process that did nothing else:
 *
 *   node --expose-gc …/bench/scale-start.js sqlite <file>
 *   node --expose-gc …/bench/scale-start.js postgres <url> <pbx>
 *
 * Opens the store (as the service does: SqliteStore through the contract, or PgStore for one pbx), forces
 * a GC and samples RSS (before start), runs Engine.start() (distinct agents and watched lines + nextWake +
 * arm) and samples RSS right after it (the peak of the reload), then times devicesToWatch, the pending
 * count and nextWake, forces a GC and samples RSS and heap again, and finally times one presence event
 * for an internal prospect line and one for an agent's device. Prints one JSON object (StartFigures of
 * bench/scale.ts) on stdout. The store was filled by the parent process (bench/scheduler.ts, bench/pg.ts),
 * so none of the fill's objects are in this process's memory.
 */
import { performance } from 'node:perf_hooks';
import { CallbackRequest } from '../src/core/policy';
import { PgStore } from '../src/store/postgres';
import { SqliteStore } from '../src/store/sqlite';
import { round } from './common';
import { StartFigures, engineFor } from './scale';

const MiB = (bytes: number): number => round(bytes / 2 ** 20, 1);

async function main(): Promise<void> {
  const [backend, where, pbx] = process.argv.slice(2);
  if ((backend !== 'sqlite' && backend !== 'postgres') || !where) throw new Error('usage: scale-start.js sqlite <file> | postgres <url> <pbx>');
  const raw = backend === 'sqlite' ? SqliteStore.open<CallbackRequest>(where) : await PgStore.open<CallbackRequest>(where, { pbx: pbx ?? 'scale' });
  let watched = 0;
  const engine = engineFor(raw, Date.now, () => watched++);
  if (global.gc) global.gc();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  await engine.start();
  const startMs = performance.now() - t0;
  // Memory right after the reload, before anything else touches the store.
  const rssAfterStart = process.memoryUsage().rss;
  const t1 = performance.now();
  const devices = (await engine.presence.devicesToWatch()).length;
  const devicesToWatchMs = performance.now() - t1;
  const t2 = performance.now();
  const pending = (await engine.store.pendingDependencies()).count;
  const pendingMs = performance.now() - t2;
  const t3 = performance.now();
  await engine.store.nextWake();
  const nextWakeMs = performance.now() - t3;
  if (global.gc) global.gc();
  const heapAfterGc = process.memoryUsage().heapUsed;
  const rssAfterGc = process.memoryUsage().rss;
  const t4 = performance.now();
  await engine.deviceState('Custom:prospect29000010', { busy: true });
  const deviceStateMs = performance.now() - t4;
  const t5 = performance.now();
  await engine.deviceState('PJSIP/a7', { busy: true });
  const deviceStateAgentMs = performance.now() - t5;
  const rssPeak = Math.max(rssAfterStart, process.memoryUsage().rss);
  engine.stop();
  await raw.close();
  const out: StartFigures = {
    backend,
    measuredIn: 'fresh process',
    pending,
    rssBeforeStartMiB: MiB(rssBefore),
    rssAfterStartMiB: MiB(rssAfterStart),
    rssPeakMiB: MiB(rssPeak),
    rssAfterGcMiB: MiB(rssAfterGc),
    heapAfterGcMiB: MiB(heapAfterGc),
    startMs: round(startMs, 0),
    devicesToWatchMs: round(devicesToWatchMs, 0),
    devices,
    watched,
    pendingMs: round(pendingMs, 0),
    nextWakeMs: round(nextWakeMs, 2),
    deviceStateMs: round(deviceStateMs, 0),
    deviceStateAgentMs: round(deviceStateAgentMs, 2),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
