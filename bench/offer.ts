/**
 * Offer latency (full app vs a bare ari-client script) and `#` → durable, against the sandbox.
 *
 * Method. A bench ARI app (`cc-bench-<pid>`, subscribeAll, with an event filter so that Asterisk sends it
 * only the four event types it reads: the instrument should load the PBX as little as possible)
 * originates Local/2991@cc-test-agent (the always-busy simulator) exactly like TestAri.agentDials; the ;2
 * half gets a known id (otherChannelId) and enters Stasis(considerate-callback,offer,…).
 *
 * Offer latency = Asterisk's own `timestamp` of that channel's PlaybackStarted minus that of its
 * StasisStart (or, when StasisStart of a channel owned by another app is not delivered, of its
 * ChannelDialplan event for Stasis(), which precedes it) — both stamped by Asterisk, so the number is
 * independent of either app's clock or logs. The call script is the same for both targets (no key is
 * pressed; the originator hangs up once the prompt plays). Both targets run at the same time under
 * their own app names (the dialplan routine reads CC_APP, which the originator sets per call) and the
 * calls alternate between them — app, bare, app, … one after the other, and from `concurrency`
 * concurrent originators — so that every busy moment of the PBX or the machine hits both alike.
 *
 * `#` → durable: separate runs, calls to the app only, where the originator presses `#` (sendDTMF on the
 * ;1 half) once the prompt plays — first on a service with the default SQLite store (results `dtmf`), then
 * the same calls (warm-up, sequential, concurrent) on a service whose store is PostgreSQL (`store.url`, a
 * fresh database of the test cluster from testkit/pg.ts, dropped afterwards; results `dtmf.postgres`).
 * The service logs, on its 'callback requested' line (offer.opted_in), `keyToDurableMs`
 * (performance.now() from the moment the DTMF event reached the offer flow to the moment the opt-in's group
 * became durable — its COMMIT with its sync (SQLite's fsync inside it; with CC_SQLITE_SYNC=thread the WAL's fdatasync after it) completed — as the group stamps
 * it once, src/store/group.ts; until 2026-12-07 it ended later, when the flow heard back after the decision's
 * side effects, which are now their own steps in offer.timing and `afterDurableMs`), `commitMs` (the flow asked
 * to store → durable) and `committedAt` (the wall clock of the durable moment); the end-to-end
 * figure is committedAt − Asterisk's timestamp of ChannelDtmfReceived (1 ms resolution; it includes
 * Asterisk's own event dispatch and the hop over the WebSocket). Each call uses its own agent device
 * (PJSIP/b<n>), so every opt-in is an insert ('created'), not a refresh. (bench/pg.ts measures the
 * commit alone, without the PBX, on both backends.)
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ari from 'ari-client';
import '../src/telephony/ari/quiet-swagger';
import { Stats, bootstrapRatio, log, round, sleep, stats } from './common';
import { acrossRuns, fsyncProbe, hiccupProbe, machineLoad, sqliteCommitProbe } from './probe';
import { onJsonLines } from '../testkit/json-lines';
import { SANDBOX } from '../testkit/sandbox';
import { freshDatabase } from '../testkit/pg';
import { ServiceProcess, deepMerge } from '../testkit/service-process';
import type { EventName } from '../src/logging/events';

const ARI = SANDBOX.ari;
const BENCH_APP = `cc-bench-${process.pid}`;

interface Ev {
  type: string;
  timestamp: string;
  channel?: { id: string };
  playback?: { target_uri: string };
  digit?: string;
  dialplan_app?: string;
}

function ts(e: Ev): number {
  return Date.parse(e.timestamp.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
}

class Originator {
  readonly byChannel = new Map<string, Ev[]>();
  private waiters: Array<() => void> = [];
  constructor(readonly client: ari.Client) {}

  static async connect(): Promise<Originator> {
    const client = await ari.connect(ARI.url, ARI.username, ARI.password);
    const o = new Originator(client);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (client as any).on('*', (e: Ev) => o.push(e));
    await client.start(BENCH_APP, true);
    await (client.applications as unknown as { filter(p: object): Promise<unknown> }).filter({
      applicationName: BENCH_APP,
      filter: { allowed: ['StasisStart', 'PlaybackStarted', 'ChannelDtmfReceived', 'ChannelDialplan'].map((type) => ({ type })) },
    });
    return o;
  }

  private push(e: Ev): void {
    const id = e.channel?.id ?? (e.playback?.target_uri?.startsWith('channel:') ? e.playback.target_uri.slice(8) : undefined);
    if (!id) return;
    let list = this.byChannel.get(id);
    if (!list) this.byChannel.set(id, (list = []));
    list.push(e);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async wait(id: string, pred: (e: Ev) => boolean, timeoutMs: number): Promise<Ev | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.byChannel.get(id)?.find(pred);
      if (hit) return hit;
      const left = end - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

interface CallResult {
  kind?: 'app' | 'bare';
  latencyMs?: number;
  startFrom?: 'StasisStart' | 'ChannelDialplan';
  dtmfMs?: number;
  keyToDurableMs?: number;
  commitMs?: number;
  /** The opt-in's steps (offer.timing, ms). */
  steps?: Record<string, number>;
  error?: string;
}

type LogLine = Record<string, unknown> & { message: string; level?: string; event?: EventName | 'bench.ready' };

/** What the bench measures: the service (through the test kit's service process) or the bare ari-client script. */
export class Target {
  private svc?: ServiceProcess;
  private bare?: ChildProcess;
  private readonly bareLogs: LogLine[] = [];
  /** The Stasis app name it registers: its own by default; calls reach it through CC_APP. */
  readonly appName: string;
  constructor(
    readonly kind: 'app' | 'bare',
    appName?: string,
    /** Merged over the service's bench config (e.g. `store: { url }` for PostgreSQL). */
    private readonly extraConfig: Record<string, unknown> = {},
    /** Node's flags for the service (e.g. `--cpu-prof` for a profile). */
    private readonly nodeArgs: readonly string[] = [],
  ) {
    this.appName = appName ?? `cc-bench-${kind}-${process.pid}`;
  }

  /** The target process's pid (the service, or the bare ari-client script). */
  get pid(): number | undefined {
    return this.svc?.pid ?? this.bare?.pid;
  }

  get logs(): LogLine[] {
    return this.svc ? (this.svc.logs as LogLine[]) : this.bareLogs;
  }

  async start(): Promise<void> {
    if (this.kind === 'app') {
      this.svc = new ServiceProcess(
        deepMerge({ ari: { app: this.appName }, log: { level: 'info' }, policy: { firstProbeDelay: '1h' } }, this.extraConfig),
        { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-app-')), nodeArgs: this.nodeArgs },
      );
      await this.svc.start();
    } else {
      const proc = spawn(process.execPath, [path.join(__dirname, 'bare-ari.js')], { env: { ...process.env, CC_ARI_APP: this.appName, CC_ARI_URL: ARI.url }, stdio: ['ignore', 'pipe', 'pipe'] });
      this.bare = proc;
      onJsonLines(proc.stdout, (line) => this.bareLogs.push(line as LogLine));
      const end = Date.now() + 20000;
      while (!this.bareLogs.some((l) => l.event === 'bench.ready')) {
        if (Date.now() > end || proc.exitCode !== null) throw new Error('the bare ari-client script did not start');
        await sleep(50);
      }
    }
    await sleep(500);
  }

  /** The service's own event-loop lateness over its life, from its last log line (after stop()). */
  loopDelay(): { p50: number; p99: number; max: number } | undefined {
    return this.logs.find((l) => l.event === 'service.stopped')?.eventLoopDelayMs as { p50: number; p99: number; max: number } | undefined;
  }

  async stop(): Promise<void> {
    if (this.svc) {
      await this.svc.stop();
      fs.rmSync(this.svc.dir, { recursive: true, force: true });
    }
    const p = this.bare;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('close', r)); // after stdout's last line
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10000);
      await done;
      clearTimeout(t);
    }
  }
}

let seq = 0;

/** The opt-in's steps the service logs on offer.timing (flows/offer.ts optInSteps), in order. */
export const STEPS = ['keyToStore', 'queued', 'read', 'decide', 'writeCommit', 'write', 'groupCommit', 'position', 'handBack', 'confirm', 'keyToConfirm'] as const;

async function oneCall(o: Originator, target: Target, pressPound: boolean): Promise<CallResult> {
  const n = ++seq;
  const agentSide = `bench-${process.pid}-${n}-a`;
  const offerSide = `bench-${process.pid}-${n}-o`;
  try {
    await o.client.channels.originate({
      endpoint: 'Local/2991@cc-test-agent',
      app: BENCH_APP,
      appArgs: 'agent',
      channelId: agentSide,
      otherChannelId: offerSide,
      callerId: `"Bench ${n}" <${n}>`,
      timeout: 30,
      variables: { CC_TEST_AGENT: `PJSIP/b${process.pid}x${n}`, CC_TEST_LANGUAGE: 'en', CC_APP: target.appName },
    } as Parameters<typeof o.client.channels.originate>[0]);
    const started = await o.wait(offerSide, (e) => e.type === 'PlaybackStarted', 10000);
    if (!started) return { kind: target.kind, error: 'no PlaybackStarted within 10 s' };
    const evs = o.byChannel.get(offerSide) ?? [];
    const ss = evs.find((e) => e.type === 'StasisStart');
    const dp = evs.filter((e) => e.type === 'ChannelDialplan' && e.dialplan_app === 'Stasis').pop();
    const from = ss ?? dp;
    if (!from) return { kind: target.kind, error: 'neither StasisStart nor ChannelDialplan(Stasis) seen' };
    const r: CallResult = { kind: target.kind, latencyMs: ts(started) - ts(from), startFrom: ss ? 'StasisStart' : 'ChannelDialplan' };
    if (pressPound) {
      // The ;1 half enters the bench app only once the offer answered; the prompt may start before that.
      if (!(await o.wait(agentSide, (e) => e.type === 'StasisStart', 5000))) return { ...r, error: 'the originating half never entered the bench app' };
      await o.client.channels.sendDTMF({ channelId: agentSide, dtmf: '#', duration: 100 });
      const dtmf = await o.wait(offerSide, (e) => e.type === 'ChannelDtmfReceived' && e.digit === '#', 5000);
      const end = Date.now() + 5000;
      let line: LogLine | undefined;
      while (!(line = target.logs.find((l) => l.channelId === offerSide && l.event === 'offer.opted_in')) && Date.now() < end) await sleep(20);
      if (dtmf && line && typeof line.committedAt === 'number') {
        r.dtmfMs = line.committedAt - ts(dtmf);
        r.keyToDurableMs = line.keyToDurableMs as number;
        r.commitMs = line.commitMs as number;
        const tEnd = Date.now() + 2000;
        let t: LogLine | undefined;
        while (!(t = target.logs.find((l) => l.channelId === offerSide && l.event === 'offer.timing')) && Date.now() < tEnd) await sleep(10);
        if (t) r.steps = Object.fromEntries(STEPS.filter((k) => typeof t[k] === 'number').map((k) => [k, t[k] as number]));
      } else r.error = `no commit seen (dtmf event: ${!!dtmf}, log line: ${!!line})`;
    }
    return r;
  } catch (err) {
    return { kind: target.kind, error: (err as Error).message };
  } finally {
    await o.client.channels.hangup({ channelId: agentSide }).catch(() => undefined);
    o.byChannel.delete(offerSide);
    o.byChannel.delete(agentSide);
  }
}

/** `calls` calls from `concurrency` originators; call i goes to targets[i % targets.length]. */
async function runCalls(o: Originator, targets: readonly Target[], calls: number, concurrency: number, pressPound: boolean): Promise<CallResult[]> {
  const out: CallResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) {
        const target = targets[next % targets.length];
        next++;
        out.push(await oneCall(o, target, pressPound));
        await sleep(50);
      }
    }),
  );
  await sleep(1000);
  return out;
}

function summary(rs: CallResult[]): Stats & { errors: number; firstError?: string; startFrom: string[] } {
  const ok = rs.filter((r) => r.latencyMs !== undefined);
  const errs = rs.filter((r) => r.error);
  return {
    ...stats(ok.map((r) => r.latencyMs as number)),
    errors: errs.length,
    firstError: errs[0]?.error,
    startFrom: [...new Set(ok.map((r) => r.startFrom as string))],
  };
}

type Ratio = { p50: number; p95: number; p99: number; mean: number; interval: { p50: [number, number]; p99: [number, number] } };

/**
 * app/bare at p50, p95, p99 and the mean, with a bootstrap 95 % interval for p50 and p99: the
 * timestamps have 1 ms resolution and the tail is a handful of calls, so one run's point figure moves
 * by ±0.2–0.3 from run to run; the interval says how far.
 */
function ratio(appRs: CallResult[], bareRs: CallResult[], a: Stats, b: Stats): Ratio {
  const xs = appRs.filter((r) => r.latencyMs !== undefined).map((r) => r.latencyMs as number);
  const ys = bareRs.filter((r) => r.latencyMs !== undefined).map((r) => r.latencyMs as number);
  return {
    p50: round(a.p50 / b.p50, 3),
    p95: round(a.p95 / b.p95, 3),
    p99: round(a.p99 / b.p99, 3),
    mean: round(a.mean / b.mean, 3),
    interval: { p50: bootstrapRatio(xs, ys, 50), p99: bootstrapRatio(xs, ys, 99) },
  };
}

export interface OfferBenchOptions {
  /** Calls per target and mode (sequential, concurrent) for the latency comparison and for `#` → durable, over all runs. */
  calls: number;
  concurrency: number;
  /** Alternating runs (each: latency, `#` on SQLite, `#` on PostgreSQL, the fsync probe); the verdicts take their median. */
  runs: number;
}

type Mode = 'sequential' | 'concurrent';

function mkLatency(rs: CallResult[]) {
  const appRs = rs.filter((r) => r.kind === 'app');
  const bareRs = rs.filter((r) => r.kind === 'bare');
  const a = summary(appRs);
  const b = summary(bareRs);
  return { app: a, bare: b, ratio: ratio(appRs, bareRs, a, b) };
}

function mkDtmf(rs: CallResult[]) {
  const ok = rs.filter((r) => r.dtmfMs !== undefined);
  const steps: Record<string, Stats> = {};
  for (const k of STEPS) {
    const xs = ok.map((r) => r.steps?.[k]).filter((x): x is number => typeof x === 'number');
    if (xs.length > 0) steps[k] = stats(xs);
  }
  return {
    ...stats(ok.map((r) => r.dtmfMs as number)),
    errors: rs.length - ok.length,
    firstError: rs.find((r) => r.error)?.error,
    inApp: stats(ok.map((r) => r.keyToDurableMs as number)),
    commit: stats(ok.map((r) => r.commitMs as number)),
    steps,
  };
}

/**
 * The offer bench in `runs` alternating runs within one invocation: each run measures the offer latency (app
 * and bare, alternating call by call, one after the other and from `concurrency` originators), `#` → durable
 * on SQLite and on PostgreSQL (the same two modes), and the fsync probe before and after, and records how busy
 * the machine was. Every service runs for the whole bench, so a run differs from the next only in time. The
 * figures of every run are kept (`runs`); `verdict` holds, per target, the median across runs and the spread.
 */
export async function offerBench(opts: OfferBenchOptions): Promise<Record<string, unknown>> {
  const o = await Originator.connect();
  const app = new Target('app');
  const bare = new Target('bare');
  // separate services (their own app names) for the # runs, so that their event-loop figures are theirs
  const durable = new Target('app', `cc-bench-sqlite-${process.pid}`);
  let durablePg: Target | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let pgError: string | undefined;
  const per = Math.max(1, Math.ceil(opts.calls / opts.runs));
  const all = { seq: [] as CallResult[], conc: [] as CallResult[] };
  const runs: Array<Record<string, unknown>> = [];
  const probeDir = os.tmpdir(); // where the services' SQLite stores live (their mkdtemp directories)
  try {
    await app.start();
    await bare.start();
    await durable.start();
    try {
      db = await freshDatabase('bench_offer');
    } catch (err) {
      // No PostgreSQL on this machine (scripts/pg.sh could not start one): the SQLite figures still count.
      pgError = `no PostgreSQL: ${(err as Error).message.split('\n')[0]}`;
      log(`# → durable, PostgreSQL: skipped (${pgError})`);
    }
    if (db) {
      durablePg = new Target('app', `cc-bench-pg-${process.pid}`, { store: { url: db.url }, pbx: { id: 'bench' } });
      await durablePg.start();
    }
    // warm-up, not counted
    await runCalls(o, [app, bare], 6, 1, false);
    await runCalls(o, [durable], 3, 1, true);
    if (durablePg) await runCalls(o, [durablePg], 3, 1, true);
    for (let run = 1; run <= opts.runs; run++) {
      const busy = machineLoad();
      const fsyncBefore = fsyncProbe(probeDir);
      const sqliteBefore = sqliteCommitProbe(probeDir);
      const hiccupBefore = hiccupProbe();
      log(`run ${run}/${opts.runs}: offer latency, ${per} calls each to app and bare, alternating, one after the other, then from ${opts.concurrency} originators…`);
      const seqCalls = await runCalls(o, [app, bare], 2 * per, 1, false);
      const concCalls = await runCalls(o, [app, bare], 2 * per, opts.concurrency, false);
      log(`run ${run}/${opts.runs}: # → durable, SQLite then PostgreSQL: ${per} calls one after the other, ${per} from ${opts.concurrency} originators…`);
      const pound = { seq: await runCalls(o, [durable], per, 1, true), conc: await runCalls(o, [durable], per, opts.concurrency, true) };
      const poundPg = durablePg ? { seq: await runCalls(o, [durablePg], per, 1, true), conc: await runCalls(o, [durablePg], per, opts.concurrency, true) } : undefined;
      const fsyncAfter = fsyncProbe(probeDir);
      const sqliteAfter = sqliteCommitProbe(probeDir);
      const hiccupAfter = hiccupProbe();
      all.seq.push(...seqCalls);
      all.conc.push(...concCalls);
      const r = {
        run,
        machine: busy(),
        fsync: { before: fsyncBefore, after: fsyncAfter },
        sqliteCommit: { before: sqliteBefore, after: sqliteAfter },
        hiccups: { before: hiccupBefore, after: hiccupAfter },
        sequential: mkLatency(seqCalls),
        concurrent: mkLatency(concCalls),
        dtmf: {
          sequential: mkDtmf(pound.seq),
          concurrent: mkDtmf(pound.conc),
          postgres: poundPg ? { sequential: mkDtmf(poundPg.seq), concurrent: mkDtmf(poundPg.conc) } : { error: pgError },
        },
      };
      runs.push(r);
      log(
        `run ${run}: ratio p50 seq ${r.sequential.ratio.p50} conc ${r.concurrent.ratio.p50}; # SQLite p99 seq ${r.dtmf.sequential.inApp.p99} conc ${r.dtmf.concurrent.inApp.p99} ms; fsync p50 ${fsyncBefore.p50}/${fsyncAfter.p50} ms; bare SQLite commit p99 ${sqliteBefore.p99}/${sqliteAfter.p99} ms; machine busy ${r.machine.busyCores} cores, steal ${r.machine.stealPct} %`,
      );
    }
  } finally {
    await app.stop();
    await bare.stop();
    await durable.stop();
    await durablePg?.stop();
    await db?.drop().catch((err: unknown) => log(`could not drop the bench database: ${(err as Error).message}`));
    try {
      o.client.stop();
    } catch {
      // closed
    }
  }
  return {
    concurrency: opts.concurrency,
    runsOf: { runs: opts.runs, callsPerRun: per },
    design: 'app and bare running at the same time, calls alternating between them; three alternating runs in one invocation',
    // all calls of all runs pooled (the figures of earlier versions of this file)
    sequential: mkLatency(all.seq),
    concurrent: mkLatency(all.conc),
    dtmf: {
      serviceEventLoopLateMs: durable.loopDelay(),
      postgres: pgError ? { error: pgError } : { serviceEventLoopLateMs: durablePg?.loopDelay() },
    },
    serviceEventLoopLateMs: app.loopDelay(),
    runs,
    verdict: verdicts(runs),
  };
}

/** Per target, the median of the runs' figures and their spread (acrossRuns). */
/* eslint-disable @typescript-eslint/no-explicit-any */
function verdicts(runs: any[]): Record<string, unknown> {
  const over = (pick: (r: any) => unknown) => acrossRuns(runs.map((r) => (typeof pick(r) === 'number' ? (pick(r) as number) : NaN)));
  const modes: Mode[] = ['sequential', 'concurrent'];
  return {
    ratio: Object.fromEntries(modes.map((m) => [m, { p50: over((r) => r[m].ratio.p50), p99: over((r) => r[m].ratio.p99), appMinusBareP50Ms: over((r) => r[m].app.p50 - r[m].bare.p50) }])),
    sqlite: Object.fromEntries(modes.map((m) => [m, { inAppP50: over((r) => r.dtmf[m].inApp.p50), inAppP99: over((r) => r.dtmf[m].inApp.p99), writeCommitP50: over((r) => r.dtmf[m].steps.writeCommit?.p50), writeCommitP99: over((r) => r.dtmf[m].steps.writeCommit?.p99) }])),
    postgres: Object.fromEntries(modes.map((m) => [m, { inAppP50: over((r) => r.dtmf.postgres?.[m]?.inApp.p50), inAppP99: over((r) => r.dtmf.postgres?.[m]?.inApp.p99), max: over((r) => r.dtmf.postgres?.[m]?.inApp.max), writeCommitP99: over((r) => r.dtmf.postgres?.[m]?.steps.writeCommit?.p99) }])),
    fsync: { p50: over((r) => (r.fsync.before.p50 + r.fsync.after.p50) / 2), p99: over((r) => Math.max(r.fsync.before.p99, r.fsync.after.p99)) },
    // SQLite's own floor (a bare INSERT + COMMIT, sequential) and the machine's interruptions, before and after each run
    sqliteCommit: r0(runs, 'sqliteCommit') ? { p50: over((r) => (r.sqliteCommit.before.p50 + r.sqliteCommit.after.p50) / 2), p99: over((r) => Math.max(r.sqliteCommit.before.p99, r.sqliteCommit.after.p99)) } : undefined,
    hiccups: r0(runs, 'hiccups') ? { over1msPerS: over((r) => (r.hiccups.before.over1msPerS + r.hiccups.after.over1msPerS) / 2), maxGapMs: over((r) => Math.max(r.hiccups.before.maxGapMs, r.hiccups.after.maxGapMs)), lostPct: over((r) => (r.hiccups.before.lostPct + r.hiccups.after.lostPct) / 2) } : undefined,
    stealPct: over((r) => r.machine.stealPct),
    machineBusyCores: over((r) => r.machine.busyCores),
  };
}
const r0 = (runs: any[], key: string): boolean => runs.length > 0 && runs.every((r) => r[key] !== undefined);
/* eslint-enable @typescript-eslint/no-explicit-any */

/** `#` calls to a service started with Node's flags `nodeArgs` (the profile part: --cpu-prof); returns once it stopped. */
export async function profileUnderOffers(opts: { calls: number; concurrency: number; nodeArgs: readonly string[] }): Promise<void> {
  const o = await Originator.connect();
  const t = new Target('app', `cc-bench-prof-${process.pid}`, {}, opts.nodeArgs);
  try {
    await t.start();
    await runCalls(o, [t], opts.calls, opts.concurrency, true);
  } finally {
    await t.stop();
    try {
      o.client.stop();
    } catch {
      // closed
    }
  }
}
