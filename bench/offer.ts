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
 * (performance.now() from the moment the DTMF event reached the offer flow to the end of the opt-in
 * commit), `commitMs` (the commit alone) and `committedAt` (Date.now() after the commit); the end-to-end
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
        { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-app-')) },
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
  /** Calls per target and mode (sequential, concurrent) for the latency comparison and for `#` → durable. */
  calls: number;
  concurrency: number;
}

export async function offerBench(opts: OfferBenchOptions): Promise<Record<string, unknown>> {
  const o = await Originator.connect();
  const app = new Target('app');
  const bare = new Target('bare');
  let seqCalls: CallResult[] = [];
  let concCalls: CallResult[] = [];
  const pound = { seq: [] as CallResult[], conc: [] as CallResult[] };
  const poundPg = { seq: [] as CallResult[], conc: [] as CallResult[] };
  const durable = new Target('app'); // a fresh service for the # runs, so that its event-loop figures are theirs
  let durablePg: Target | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let pgError: string | undefined;
  try {
    await app.start();
    await bare.start();
    await runCalls(o, [app, bare], 6, 1, false); // warm-up, not counted
    log(`offer latency: ${opts.calls} calls each to app and bare, alternating, one after the other…`);
    seqCalls = await runCalls(o, [app, bare], 2 * opts.calls, 1, false);
    log(`offer latency: ${opts.calls} calls each, alternating, from ${opts.concurrency} concurrent originators…`);
    concCalls = await runCalls(o, [app, bare], 2 * opts.calls, opts.concurrency, false);
    await app.stop();
    await bare.stop();
    log(`# → durable, SQLite: ${opts.calls} calls to the app one after the other, ${opts.calls} from ${opts.concurrency} concurrent originators…`);
    await durable.start();
    await runCalls(o, [durable], 3, 1, true);
    pound.seq = await runCalls(o, [durable], opts.calls, 1, true);
    pound.conc = await runCalls(o, [durable], opts.calls, opts.concurrency, true);
    await durable.stop();
    log(`# → durable, PostgreSQL (a fresh database on the test cluster): the same calls…`);
    try {
      db = await freshDatabase('bench_offer');
    } catch (err) {
      // No PostgreSQL on this machine (scripts/pg.sh could not start one): the SQLite figures still count.
      pgError = `no PostgreSQL: ${(err as Error).message.split('\n')[0]}`;
      log(`# → durable, PostgreSQL: skipped (${pgError})`);
    }
    if (db) {
      durablePg = new Target('app', undefined, { store: { url: db.url }, pbx: { id: 'bench' } });
      await durablePg.start();
      await runCalls(o, [durablePg], 3, 1, true);
      poundPg.seq = await runCalls(o, [durablePg], opts.calls, 1, true);
      poundPg.conc = await runCalls(o, [durablePg], opts.calls, opts.concurrency, true);
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
  const mk = (rs: CallResult[]) => {
    const appRs = rs.filter((r) => r.kind === 'app');
    const bareRs = rs.filter((r) => r.kind === 'bare');
    const a = summary(appRs);
    const b = summary(bareRs);
    return { app: a, bare: b, ratio: ratio(appRs, bareRs, a, b) };
  };
  const dtmf = (rs: CallResult[]) => {
    const ok = rs.filter((r) => r.dtmfMs !== undefined);
    return {
      ...stats(ok.map((r) => r.dtmfMs as number)),
      errors: rs.length - ok.length,
      firstError: rs.find((r) => r.error)?.error,
      inApp: stats(ok.map((r) => r.keyToDurableMs as number)),
      commit: stats(ok.map((r) => r.commitMs as number)),
    };
  };
  return {
    concurrency: opts.concurrency,
    design: 'app and bare running at the same time, calls alternating between them',
    sequential: mk(seqCalls),
    concurrent: mk(concCalls),
    dtmf: {
      sequential: dtmf(pound.seq),
      concurrent: dtmf(pound.conc),
      serviceEventLoopLateMs: durable.loopDelay(),
      postgres: pgError ? { error: pgError } : { sequential: dtmf(poundPg.seq), concurrent: dtmf(poundPg.conc), serviceEventLoopLateMs: durablePg?.loopDelay() },
    },
    serviceEventLoopLateMs: app.loopDelay(),
  };
}
