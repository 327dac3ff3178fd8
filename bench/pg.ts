/**
 * PostgreSQL figures beside SQLite, in its own process (`node …/bench/pg.js [N]`), one JSON
 * object on stdout. The PostgreSQL server is the test cluster (testkit/pg.ts: Debian's PostgreSQL in its
 * own directory, started when not running), a fresh database per run, dropped at the end; fsync and
 * synchronous_commit on. No PBX here.
 *
 *  - durable: the opt-in's commit alone (Engine.optIn → createOrRefresh, one transaction with its history
 *    and outbox rows) on SQLite (synchronous=FULL) and on PostgreSQL: p50/p95/p99 of 300 opt-ins. This is
 *    the store's share of `#` → durable; the whole path through the PBX (Asterisk's DTMF timestamp → the
 *    service's commit) is measured on both backends by the offer bench (bench/offer.ts, `dtmf` and
 *    `dtmf.postgres`).
 *  - claim rate: requests whose wake-up has come, fed to engine.observe(tick) for ~5 s on each backend:
 *    decide + version-guarded transition (+ the fence check on PostgreSQL).
 *  - scheduler at N pending (default 100 000) on PostgreSQL: this process fills the database with the
 *    request mix of bench/scheduler.ts (bench/scale.ts), then Engine.start() time and RSS (before start,
 *    after start, after a forced GC) are measured in a FRESH child process (bench/scale-start.ts) that
 *    only opens the store and starts the engine — the same child, same steps, as SQLite's figures.
 *  - take-over: a child process holds the lease of (pbx, app) with a TTL of 3 s and renews it every
 *    TTL/3; it is killed with SIGKILL; the time until this process's stand-by coordinator (trying every
 *    TTL/3) took the lease — the stand-by's first action — is the take-over time (5 runs).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Coordinator } from '../src/coordination/coordinator';
import { PgLease } from '../src/coordination/lease';
import { CallbackRequest } from '../src/core/policy';
import { Engine, RequestStore } from '../src/engine';
import type { OptInMarks } from '../src/engine/opt-in';
import { SqliteStore } from '../src/store/sqlite';
import { pgBenchSeams } from '../src/store';
import { PgStore } from '../src/store/postgres';
import { freshDatabase } from '../testkit/pg';
import { round, stats } from './common';
import { AGENTS, HOUR, benchRequest, engineFor as sharedEngineFor, measureStartInFreshProcess, silent } from './scale';

const N = process.argv[2] === '--opt-in' ? 0 : Number(process.argv[2] ?? 100_000);
function engineFor(store: RequestStore, clock: () => number): Engine {
  const e = sharedEngineFor(store, clock);
  e.setPbxUp(true);
  return e;
}

async function durable(store: RequestStore): Promise<ReturnType<typeof stats>> {
  const engine = engineFor(store, Date.now);
  const ms: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await engine.optIn({ agent: `PJSIP/d${i % 50}`, agentCallerId: { name: 'A', number: '1' }, prospect: `+49301${String(i).padStart(7, '0')}`, language: 'en', channelId: `c${i}` });
    ms.push(performance.now() - t0);
  }
  return stats(ms);
}

async function claimRate(store: RequestStore, n: number): Promise<{ decisions: number; perSecond: number }> {
  const now = { t: Date.now() };
  const engine = engineFor(store, () => now.t);
  for (let i = 0; i < n; i++) {
    await engine.optIn({ agent: `PJSIP/c${i % AGENTS}`, agentCallerId: { name: 'A', number: '1' }, prospect: `+49302${String(i).padStart(7, '0')}`, language: 'en', channelId: `c${i}` });
  }
  now.t += 25 * HOUR;
  let decisions = 0;
  const t0 = performance.now();
  outer: for (;;) {
    const due = await store.due(now.t, 200);
    if (due.length === 0) break;
    for (const { request } of due) {
      if (await engine.observe(request.id, { type: 'tick' })) decisions++;
      if (performance.now() - t0 > 5000) break outer;
    }
  }
  const ms = performance.now() - t0;
  return { decisions, perSecond: round((decisions / ms) * 1000, 0) };
}

async function fillPg(store: PgStore<CallbackRequest>, n: number, base: number): Promise<number> {
  const t0 = performance.now();
  for (let start = 0; start < n; start += 5000) {
    const rows: CallbackRequest[] = [];
    for (let i = start; i < Math.min(n, start + 5000); i++) rows.push(benchRequest(i, base + Math.floor((i * 24 * HOUR) / n)));
    await store.query(
      `INSERT INTO requests(id, pbx, agent, prospect, state, created_at, updated_at, wake_at, version, data)
       SELECT id, $1, agent, prospect, state, created_at, updated_at, wake_at, 1, data
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::jsonb[])
         AS t(id, agent, prospect, state, created_at, updated_at, wake_at, data)`,
      [
        store.pbx,
        rows.map((r) => r.id),
        rows.map((r) => r.agent),
        rows.map((r) => r.prospect),
        rows.map((r) => r.state),
        rows.map((r) => r.createdAt),
        rows.map((r) => r.updatedAt),
        rows.map((r) => r.wakeAt),
        rows.map((r) => JSON.stringify(r)),
      ],
    );
  }
  await store.query('ANALYZE requests');
  return performance.now() - t0;
}

/** The lease holder that gets killed: a child process running a coordinator (see takeOver). */
const HOLDER = `
const { PgStore } = require(${JSON.stringify(path.join(__dirname, '../src/store/postgres'))});
const { PgLease } = require(${JSON.stringify(path.join(__dirname, '../src/coordination/lease'))});
const { Coordinator } = require(${JSON.stringify(path.join(__dirname, '../src/coordination/coordinator'))});
const winston = require('winston');
(async () => {
  const store = await PgStore.open(process.argv[1], { pbx: 'bench' });
  const lease = new PgLease(store, { pbx: 'bench', app: 'cc', holder: 'child-' + process.pid, ttlMs: Number(process.argv[2]) });
  const c = new Coordinator({ lease, fenced: store, log: winston.createLogger({ silent: true }), onActive: () => process.stdout.write('active\\n'), onStandby: () => undefined });
  await c.start();
})();
`;

async function takeOver(url: string, ttlMs: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', HOLDER, url, String(ttlMs)], { stdio: ['ignore', 'pipe', 'inherit'], cwd: path.join(__dirname, '..') });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('active')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`lease holder exited (${code})`)));
  });
  const store = await PgStore.open<CallbackRequest>(url, { pbx: 'bench' });
  let tookAt = 0;
  const standby = new Coordinator({
    lease: new PgLease(store, { pbx: 'bench', app: 'cc', holder: `standby-${process.pid}`, ttlMs }),
    fenced: store,
    log: silent,
    onActive: () => {
      tookAt = performance.now();
    },
    onStandby: () => undefined,
  });
  await standby.start();
  // Let the stand-by's loop run out of phase with the holder's, as two hosts would.
  await sleep(ttlMs / 2 + Math.random() * ttlMs);
  const killedAt = performance.now();
  child.kill('SIGKILL');
  while (tookAt === 0) await sleep(5);
  await standby.stop();
  await store.close();
  return tookAt - killedAt;
}

/**
 * The opt-in's path to durable on PostgreSQL alone (`node …/bench/pg.js --opt-in [rounds]`): the real store and
 * engine (Engine.optIn → group commit → createOrRefresh), in a store that already holds what a working day leaves
 * (30 000 requests: 27 000 finished, 3 000 pending over 5 000 numbers; the number every opt-in here queues for has
 * 1 500 requests, 150 of them pending, as in the offer bench where every call queues for one number), VACUUMed and
 * ANALYZEd. One after the other (`rounds` × 10 opt-ins), 10 concurrent (`rounds` bursts of 10) and 10 streams (10
 * callers, each `rounds` opt-ins one after the other, 0–2 ms apart: arrivals spread as in the offer bench), p50/p99 ms of
 * each opt-in from the call to its durable answer, and its steps (p50 / p99 ms): `queued` the call → its decision
 * starts (the group opened), `staging` → its rows staged, `commit` → the group durable, `after` → the answer.
 * `sessions`: the sessions the server opened for the store during the opt-ins, the first six opt-ins after the store
 * opened, and with `--after-quiet N` N opt-ins each after 11 s of quiet (past node-postgres's idle timeout);
 * `CC_PG_SESSIONS=cold` runs the pool as node-postgres makes it (the A/B of src/store/postgres.ts's warmed sessions);
 * `CC_PG_COMMIT=apart` sends each group's COMMIT alone (the A/B of the default, the COMMIT in the last opt-ins' message,
 * where `staging` holds the round trip with the COMMIT and `commit` is nearly nothing). The store is fenced, as the
 * service's (a lease held: every COMMIT checks it).
 * One JSON object on stdout.
 */
async function optInPath(rounds: number, quietRounds: number): Promise<void> {
  const db = await freshDatabase('optin');
  try {
    // CC_PG_SESSIONS=cold: the pool as node-postgres makes it (the A/B of warmed, kept sessions; src/store/index.ts).
    const store = await PgStore.open<CallbackRequest>(db.url, { pbx: 'bench', ...pgBenchSeams() });
    await store.query(
      `INSERT INTO requests(id, pbx, agent, prospect, state, created_at, updated_at, wake_at, version, data)
       SELECT 'f' || g, 'bench', 'PJSIP/a' || (g % 3000), CASE WHEN g % 20 = 0 THEN '+493077777' ELSE '+4930' || (g % 5000) END,
         CASE WHEN g > 27000 THEN 'WAITING' ELSE 'COMPLETED' END, g, g, CASE WHEN g > 27000 THEN g + 100000 ELSE NULL END, 1, '{}'::jsonb
       FROM generate_series(1, 30000) g`,
    );
    await store.query('VACUUM ANALYZE requests');
    // Fenced as the service's store is (it holds the PBX's lease: every group's COMMIT checks it, src/coordination).
    await store.query(`INSERT INTO leases(pbx, app, holder, epoch, expires_at) VALUES ('bench', 'cc', 'bench', 1, clock_timestamp() + interval '1 hour')`);
    store.setFence({ app: 'cc', holder: 'bench', epoch: 1 });
    const engine = engineFor(store, Date.now);
    let i = 0;
    // Each opt-in's steps (OptInMarks): call → its decision starts (the engine's turn: the group opened), started →
    // staged (its rows in the group's transaction), staged → committed (the group's commit), committed → answered.
    const steps: Record<'queued' | 'staging' | 'commit' | 'after', number[]> = { queued: [], staging: [], commit: [], after: [] };
    let record = false;
    /** The staging step split, one after the other: decide (the policy's new request), → its message sent (the group's
     *  turn, the call inlined), the round trip (node-postgres: query → rows), → staged (rows parsed, back in the decision). */
    const split: Record<string, number[]> = {};
    const one = async (): Promise<number> => {
      const n = i++;
      const marks: OptInMarks = {};
      const t0 = performance.now();
      await engine.optIn({ agent: `PJSIP/o${n}`, agentCallerId: { name: 'A', number: '1' }, prospect: '+493077777', language: 'en', channelId: `c${n}`, marks });
      const t1 = performance.now();
      if (record && marks.started !== undefined && marks.staged !== undefined && marks.committed !== undefined) {
        steps.queued.push(marks.started - t0);
        steps.staging.push(marks.staged - marks.started);
        steps.commit.push(marks.committed - marks.staged);
        steps.after.push(t1 - marks.committed);
        // One after the other, the staging step split (the opt-in's message is the last one sent before `staged`).
        const trip = lastTrip;
        if (marks.decided !== undefined && trip && trip.sent > marks.decided && trip.back <= marks.staged) {
          (split.decide ??= []).push(marks.decided - marks.started);
          (split.toSend ??= []).push(trip.sent - marks.decided);
          (split.trip ??= []).push(trip.back - trip.sent);
          (split.toStaged ??= []).push(marks.staged - trip.back);
        }
      }
      return t1 - t0;
    };
    const stepsOf = () => {
      const all: Record<string, number[]> = { ...steps, ...(Object.keys(split).length > 0 && split.trip.length > steps.staging.length / 2 ? Object.fromEntries(Object.entries(split).map(([k, v]) => [`staging.${k}`, v])) : {}) };
      const out = Object.fromEntries(Object.entries(all).map(([k, xs]) => [k, `${round(stats(xs).p50, 2)} / ${round(stats(xs).p99, 2)}`]));
      for (const xs of Object.values(steps)) xs.length = 0;
      for (const k of Object.keys(split)) delete split[k];
      return out;
    };
    const sessionsOpened = async () =>
      Number((await store.query<{ n: string }>('SELECT sessions AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0].n);
    const sessionsAtStart = await sessionsOpened();
    // The first opt-ins of the store (before them, the pool's sessions were opened and warmed, or not: CC_PG_SESSIONS).
    const first: number[] = [];
    for (let w = 0; w < 6; w++) first.push(await one());
    for (let w = 6; w < 20; w++) await one(); // warm: the pool's sessions, their cached plans
    record = true;
    const server = await serverFigures(store);
    const sequential: number[] = [];
    await server.begin();
    for (let r = 0; r < rounds * 10; r++) sequential.push(await one());
    const sequentialServer = await server.end(rounds * 10);
    const sequentialSteps = stepsOf();
    const concurrent: number[] = [];
    await server.begin();
    for (let r = 0; r < rounds; r++) concurrent.push(...(await Promise.all(Array.from({ length: 10 }, () => one()))));
    const concurrentServer = await server.end(rounds * 10);
    const concurrentSteps = stepsOf();
    // 10 callers, each one opt-in after the other with 0–2 ms between (as the offer bench's originators: arrivals spread,
    // a decision often arriving while the group's message is on its way).
    const streams: number[] = [];
    await server.begin();
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let r = 0; r < rounds; r++) {
          await sleep(Math.random() * 2);
          streams.push(await one());
        }
      }),
    );
    const streamsServer = await server.end(rounds * 10);
    const streamsSteps = stepsOf();
    await server.close();
    // After a quiet spell longer than node-postgres's idle timeout (10 s): one opt-in each (`--after-quiet N`).
    const afterQuiet: number[] = [];
    for (let q = 0; q < quietRounds; q++) {
      await sleep(11_000);
      afterQuiet.push(await one());
    }
    const sessions = (await sessionsOpened()) - sessionsAtStart;
    const load = os.loadavg()[0];
    await store.close();
    const brief = (xs: number[]) => {
      const s = stats(xs);
      return { n: s.n, p50: round(s.p50, 2), p99: round(s.p99, 2), max: round(s.max, 2) };
    };
    process.stdout.write(
      `${JSON.stringify({
        sequential: brief(sequential),
        concurrent10: brief(concurrent),
        streams10: brief(streams),
        steps: { sequential: sequentialSteps, concurrent10: concurrentSteps, streams10: streamsSteps },
        perOptIn: { sequential: sequentialServer, concurrent10: concurrentServer, streams10: streamsServer },
        commit: process.env.CC_PG_COMMIT || 'with',
        sessions: {
          pool: process.env.CC_PG_SESSIONS || 'warm',
          openedDuringTheOptIns: sessions,
          firstSixOptInsMs: first.map((x) => round(x, 2)),
          afterQuietMs: afterQuiet.map((x) => round(x, 2)),
        },
        loadAverage1m: round(load, 2),
      })}\n`,
    );
  } finally {
    await db.drop().catch(() => undefined);
  }
}

/** The last opt-in message's round trip as node-postgres timed it (serverFigures), for the staging split. */
let lastTrip: { sent: number; back: number } | undefined;

/**
 * What one opt-in costs, in quantities the machine's load does not change much (`--opt-in`'s `perOptIn`): the
 * messages the store sent and their round trips as the client timed them (node-postgres `query`, call → rows), the
 * bench process's CPU time, and — when the server has pg_stat_statements loaded (shared_preload_libraries, as in
 * docs/performance-log.md) — the server's own time: each top-level statement's planning and execution, and
 * cc_opt_in's time by track_functions (when on). Per opt-in: totals divided by the opt-ins of the phase.
 */
async function serverFigures(store: PgStore<CallbackRequest>) {
  let statements = false;
  try {
    await store.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await store.query('SELECT pg_stat_statements_reset()');
    statements = true;
  } catch {
    statements = false;
  }
  const trips: Record<string, number[]> = {};
  const bytes: Record<string, number[]> = {};
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: pg.Client, ...args: unknown[]) {
    const out = original.apply(this, args);
    const text = typeof args[0] === 'string' ? args[0] : '';
    if (out instanceof Promise && text) {
      const optIns = /cc_opt_ins?\(/.test(text) ? `opt-in x${(text.match(/cc_opt_in\(/g) ?? []).length + (text.match(/cc_opt_ins\(/g) ?? []).length}` : undefined;
      const kind = optIns ? `${optIns}${/COMMIT$/.test(text) ? ' + commit' : ''}` : /COMMIT$/.test(text) ? 'commit' : text.slice(0, 24);
      const t0 = performance.now();
      void out.then(
        () => {
          const t1 = performance.now();
          (trips[kind] ??= []).push(t1 - t0);
          (bytes[kind] ??= []).push(Buffer.byteLength(text));
          if (kind.startsWith('opt-in')) lastTrip = { sent: t0, back: t1 };
        },
        () => undefined,
      );
    }
    return out;
  };
  let cpu = process.cpuUsage();
  // CC_BENCH_PG_PROFILE=<dir>: a V8 CPU profile of each phase alone (<dir>/opt-in-<phase>.cpuprofile; bench/probe.ts).
  const profileDir = process.env.CC_BENCH_PG_PROFILE;
  const session = profileDir ? new inspector.Session() : undefined;
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session!.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  if (session) {
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 100 });
  }
  let phase = 0;
  const fns = async () =>
    (await store.query<{ funcname: string; calls: number; total_time: number; self_time: number }>('SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions')).rows;
  let fnsBefore: Awaited<ReturnType<typeof fns>> = [];
  return {
    async begin() {
      for (const k of Object.keys(trips)) delete trips[k];
      for (const k of Object.keys(bytes)) delete bytes[k];
      if (statements) await store.query('SELECT pg_stat_statements_reset()');
      await store.query('SELECT pg_stat_clear_snapshot()');
      fnsBefore = await fns();
      if (session) await post('Profiler.start');
      cpu = process.cpuUsage();
    },
    async end(n: number) {
      const used = process.cpuUsage(cpu);
      if (session) {
        const { profile } = (await post('Profiler.stop')) as { profile: unknown };
        fs.writeFileSync(path.join(profileDir!, `opt-in-${['sequential', 'concurrent', 'streams'][phase++] ?? 'more'}.cpuprofile`), JSON.stringify(profile));
      }
      await sleep(600); // the statistics collector's flush (pg_stat_user_functions)
      await store.query('SELECT pg_stat_clear_snapshot()');
      const fnsAfter = await fns();
      const functions = Object.fromEntries(
        fnsAfter.map((f) => {
          const b = fnsBefore.find((x) => x.funcname === f.funcname);
          const calls = Number(f.calls) - Number(b?.calls ?? 0);
          return [f.funcname, { calls, totalMsPerOptIn: round((f.total_time - (b?.total_time ?? 0)) / n, 3), selfMsPerOptIn: round((f.self_time - (b?.self_time ?? 0)) / n, 3) }];
        }).filter(([, v]) => (v as { calls: number }).calls > 0),
      );
      const top = statements
        ? (
            await store.query<{ query: string; calls: number; plan: number; exec: number; toplevel: boolean }>(
              `SELECT query, calls, total_plan_time AS plan, total_exec_time AS exec, toplevel FROM pg_stat_statements
               WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat%' ORDER BY toplevel DESC, total_exec_time DESC LIMIT 14`,
            )
          ).rows.map((r) => ({
            query: r.query.replace(/\s+/g, ' ').slice(0, 90),
            toplevel: r.toplevel,
            callsPerOptIn: round(Number(r.calls) / n, 2),
            planMsPerOptIn: round(r.plan / n, 3),
            execMsPerOptIn: round(r.exec / n, 3),
          }))
        : 'pg_stat_statements not loaded';
      const messages = Object.fromEntries(Object.entries(trips).map(([k, xs]) => [k, { count: xs.length, p50: round(stats(xs).p50, 2), p99: round(stats(xs).p99, 2), bytesP50: stats(bytes[k] ?? []).p50 }]));
      return { n, clientCpuMsPerOptIn: { user: round(used.user / 1000 / n, 3), system: round(used.system / 1000 / n, 3) }, messages, functions, statements: top };
    },
    async close() {
      proto.query = original;
      session?.disconnect();
    },
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--opt-in') {
    const quiet = process.argv.indexOf('--after-quiet');
    return optInPath(Number(process.argv[3] ?? 30), quiet > 0 ? Number(process.argv[quiet + 1] ?? 3) : 0);
  }
  const db = await freshDatabase('bench');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-pg-'));
  try {
    const sqlite = SqliteStore.open<CallbackRequest>(path.join(dir, 'durable.db'));
    const pgDurable = await PgStore.open<CallbackRequest>(db.url, { pbx: 'durable' });
    const durableMs = { sqlite: await durable(sqlite), postgres: await durable(pgDurable) };
    await sqlite.close();
    await pgDurable.close();

    const sqliteClaim = SqliteStore.open<CallbackRequest>(path.join(dir, 'claim.db'));
    const pgClaim = await PgStore.open<CallbackRequest>(db.url, { pbx: 'claim' });
    const claim = { sqlite: await claimRate(sqliteClaim, 3000), postgres: await claimRate(pgClaim, 3000) };
    await sqliteClaim.close();
    await pgClaim.close();

    const ttlMs = 3000;
    const takeOverMs: number[] = [];
    for (let i = 0; i < 5; i++) takeOverMs.push(await takeOver(db.url, ttlMs));

    // Scheduler at N pending on PostgreSQL: filled here, start-up and memory measured in a fresh process.
    const scale = await PgStore.open<CallbackRequest>(db.url, { pbx: 'scale' });
    const fillMs = await fillPg(scale, N, Date.now() + HOUR);
    await scale.close();
    const fillRss = process.memoryUsage().rss;
    const start = measureStartInFreshProcess('postgres', db.url, 'scale');

    const out = {
      n: N,
      durableMs,
      claim,
      takeOver: { ttlMs, renewEveryMs: ttlMs / 3, ...stats(takeOverMs), runs: takeOverMs.map((m) => round(m, 0)) },
      scale: {
        n: N,
        fillMs: round(fillMs, 0),
        fillProcessRssMiB: round(fillRss / 2 ** 20, 1),
        ...start,
      },
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await db.drop().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
