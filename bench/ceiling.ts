/**
 * The app's own ceiling: the real service process (the built dist, as bench/load.ts starts it; default SQLite
 * store, durable commits on) against a simulated PBX (bench/ari-sim.ts: the ARI of the real Asterisk 22 as
 * recorded in bench/fixtures/ari-offer-capture.json, no SIP, no media) in the bench's process, so that the
 * service, not Asterisk, is what runs out first. On this machine the real Asterisk needs about three times the
 * app's CPU per call (the `load` part), so that part always finds Asterisk failing first.
 *
 * Every simulated call is a busy-signal offer with `#`: agent PJSIP/sim<k> (its own for every call, so every
 * opt-in is a new durable request with its commit on the path) dialled prospect 3<k> (its own too) and hears
 * busy; the call enters the app with the dialplan's Stasis() arguments, the agent presses `#` 1.5 s after the
 * service answered (as SIPp's uac-busy-pound.xml), hears the confirmation and the service hangs up.
 *
 * The rate steps up (default 50, 100, 150, 200, 300, 400, 600, 800 calls/s, 10 s each) until a step fails; a step
 * fails when the app does (an opt-in whose confirmation the service did not request within `confirmBoundMs` of
 * the `#`, an offer the service did not answer and play before the key, its event loop late by more than
 * `loopBoundMs` at p99 (its own figure: the nodejs_eventloop_lag gauges of its /metrics, reset at every
 * scrape), or its own error and warning lines) — or when the simulator does (its own event loop late beyond the
 * same bound, a request it does not know, a call that found no WebSocket): then the step names the simulator,
 * and the figure is the instrument's limit, not the app's. The source whose first failure came first is named.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LOOP_SAMPLE_MS } from '../src/http/metrics';
import { MAX_SOCKETS } from '../src/telephony/ari/rest';
import { SANDBOX } from '../testkit/sandbox';
import { ServiceProcess } from '../testkit/service-process';
import { ROOT, type Stats, log, round, sleep, stats } from './common';
import type { CaptureFile } from './ari-sim-events';
import { AriSim, type CallTimes } from './ari-sim';
import { type Failures, appFailures, cpuMs } from './load';
import { machineLoad } from './probe';

export const CAPTURE = path.join(ROOT, 'bench', 'fixtures', 'ari-offer-capture.json');

export interface CeilingOptions {
  rates: number[];
  seconds: number;
  /** An opt-in counts as confirmed when the service requests the confirmation within this of the `#` (ms). */
  confirmBoundMs?: number;
  /** The service's (and the simulator's) event loop may be late by at most this at p99 (ms). */
  loopBoundMs?: number;
  /**
   * Agents taking turns (0, the default: every call its own agent). The app subscribes to each new agent's device
   * state, and Asterisk's answer to a subscription lists every device subscribed so far: with an agent per call
   * those answers grow with the run; a pool (a call centre's size) keeps them at its size.
   */
  agents?: number;
  /** Node's flags for the service (`--ceiling-cpu-prof <dir>`: `--cpu-prof`, the profile written there when it stops). */
  nodeArgs?: readonly string[];
}

/** The resident set of a process in MiB (/proc/<pid>/status), or undefined. */
function rssMiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return m ? round(Number(m[1]) / 1024, 1) : undefined;
  } catch {
    return undefined;
  }
}

/** prom-client's event-loop gauges (seconds; the histogram's samples include the service's sampling interval, taken off here). */
export function loopLagFromMetrics(text: string): { p50: number; p99: number; max: number } | undefined {
  const get = (k: string) => {
    const m = text.match(new RegExp(`^\\S*eventloop_lag_${k}_seconds(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm'));
    return m ? Math.max(0, round(Number(m[1]) * 1000 - LOOP_SAMPLE_MS, 2)) : undefined;
  };
  const p50 = get('p50');
  const p99 = get('p99');
  const max = get('max');
  return p50 === undefined || p99 === undefined || max === undefined ? undefined : { p50, p99, max };
}

type Who = 'the app' | 'the simulator';

export async function ceilingBench(opts: CeilingOptions): Promise<Record<string, unknown>> {
  const confirmBoundMs = opts.confirmBoundMs ?? 1000;
  const loopBoundMs = opts.loopBoundMs ?? 100;
  const capture = JSON.parse(fs.readFileSync(CAPTURE, 'utf8')) as CaptureFile;
  const sim = new AriSim({ capture, username: SANDBOX.ari.username, password: SANDBOX.ari.password });
  await sim.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-ceiling-'));
  const svc = new ServiceProcess(
    // Every opt-in a new pending request: the cap over all agents (a defence against a flood, default 1000) is lifted.
    // With a pool of agents each takes many opt-ins: the cap per agent (default 10) is lifted as far as it goes.
    { ari: { url: sim.url, app: 'considerate-callback' }, log: { level: 'info' }, policy: { firstProbeDelay: '1h' }, offer: { maxPendingTotal: 1_000_000, ...(opts.agents ? { maxPendingPerAgent: 1000 } : {}) } },
    { dir, nodeArgs: opts.nodeArgs },
  );
  const simLoop = monitorEventLoopDelay({ resolution: 5 });
  simLoop.enable();
  const steps: Array<Record<string, unknown>> = [];
  let highestClean: number | undefined;
  let breaksAt: number | undefined;
  let failedFirst: { who: Who; what: string; at?: string } | undefined;
  let k = 0;
  let idleCores: number | undefined;
  const callAt = (rate: number, seconds: number) => runCalls(sim, rate, seconds, () => ++k, opts.agents ?? 0);
  // Whatever ends the bench's process (an uncaught error included), the service it started goes with it.
  const killService = () => {
    if (svc.running && svc.pid) process.kill(svc.pid, 'SIGKILL');
  };
  process.once('exit', killService);
  try {
    await svc.start();
    const listening = await svc.waitLog((l) => l.event === 'http.listening', 10000);
    const metricsUrl = `http://127.0.0.1:${String(listening.port)}/metrics`;
    const scrape = async () => {
      try {
        return loopLagFromMetrics(await (await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })).text());
      } catch {
        return undefined; // no figure for the step (a service that does not answer its /metrics shows elsewhere too)
      }
    };
    for (let i = 0; i < 100 && !sim.connected; i++) await sleep(50);
    if (!sim.connected) throw new Error('ceiling: the service did not connect to the simulated PBX (or set no event filter)');
    log(`ceiling: warm-up, 20 calls/s for 3 s against the simulated PBX at ${sim.url}…`);
    await callAt(20, 3);
    await drain(sim, 20000);
    // The service's CPU with no call (its timers, the lease, the scheduler's wake-ups), to set beside the per-call figures.
    await sleep(1000);
    const idle0 = cpuMs(svc.pid);
    await sleep(3000);
    const idle1 = cpuMs(svc.pid);
    idleCores = idle0 === undefined || idle1 === undefined ? undefined : round((idle1 - idle0) / 3000, 3);
    for (const rate of opts.rates) {
      const calls = rate * opts.seconds;
      log(`ceiling: ${rate} calls/s × ${opts.seconds} s (${calls} calls, ${opts.agents ? `agents from a pool of ${opts.agents}` : 'each its own agent'}, all with #)…`);
      await sleep(1000);
      await scrape(); // resets the service's event-loop histogram
      simLoop.reset();
      const logFrom = svc.logs.length;
      const doneFrom = sim.done.length;
      sim.counters.peakConnections = sim.openConnections;
      const req0 = { ...sim.counters, bytes: sim.answeredBytes, subscriptions: sim.subscriptions };
      const cpu0 = cpuMs(svc.pid);
      const simCpu0 = process.cpuUsage();
      const rss0 = rssMiB(svc.pid);
      const machine = machineLoad();
      const peak = { rss: rss0 ?? 0, inProgress: 0 };
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak.rss = Math.max(peak.rss, rssMiB(svc.pid) ?? 0);
          peak.inProgress = Math.max(peak.inProgress, sim.inProgress);
          await sleep(250);
        }
      })();
      const t0 = Date.now();
      await callAt(rate, opts.seconds);
      const offeredMs = Date.now() - t0;
      const cpuOffered = cpuMs(svc.pid);
      const drained = await drain(sim, 20000);
      const wallMs = Date.now() - t0;
      sampling = false;
      await sampler;
      const cpu1 = cpuMs(svc.pid);
      const simCpu = process.cpuUsage(simCpu0);
      const lag = await scrape();
      const busy = machine();
      const simLag = { p50: ms(simLoop.percentile(50)), p99: ms(simLoop.percentile(99)), max: ms(simLoop.max) };

      const times = sim.done.slice(doneFrom);
      const logs = svc.logs.slice(logFrom);
      const keyed = times.filter((t) => t.keyAt !== undefined);
      const optInMs = keyed.filter((t) => t.confirmPlayAt !== undefined).map((t) => (t.confirmPlayAt as number) - (t.keyAt as number));
      const late = keyed.filter((t) => t.confirmPlayAt === undefined || t.confirmPlayAt - (t.keyAt as number) > confirmBoundMs);
      const unoffered = times.filter((t) => !t.lost && (t.answeredAt === undefined || t.offerPlayAt === undefined));
      const confirmed = keyed.length - late.length;
      const offerMs = times.filter((t) => t.offerPlayAt !== undefined).map((t) => (t.offerPlayAt as number) - t.arrivedAt);
      const stored = logs.filter((l) => l.event === 'offer.opted_in');
      const created = stored.filter((l) => l.result === 'created').length;
      const inApp = stored.map((l) => Number(l.keyToDurableMs)).filter(Number.isFinite);
      // Where the opt-in's time went, from the service's own lines (wall clock, the same machine's): the `#` event on
      // its way into the service's flow (the simulator sent it → the flow had it: committedAt − keyToDurableMs), the
      // service's own steps (offer.timing keyToConfirm: key routed → confirmation requested), and the confirmation's
      // request on its way out (requested → the simulator had it: the REST client's queue, its sockets, the loop).
      const byChannel = new Map(times.map((t) => [t.channelId, t]));
      const timing = new Map(logs.filter((l) => l.event === 'offer.timing').map((l) => [String(l.channelId), Number(l.keyToConfirm)]));
      const split = { inbound: [] as number[], inApp: [] as number[], outbound: [] as number[] };
      for (const l of stored) {
        const t = byChannel.get(String(l.channelId));
        const keyToConfirm = timing.get(String(l.channelId));
        if (!t || t.keyAt === undefined || t.confirmPlayAt === undefined || keyToConfirm === undefined || !Number.isFinite(keyToConfirm)) continue;
        const routedAt = Number(l.committedAt) - Number(l.keyToDurableMs);
        split.inbound.push(routedAt - t.keyAt);
        split.inApp.push(keyToConfirm);
        split.outbound.push(t.confirmPlayAt - routedAt - keyToConfirm);
      }
      const seen = appFailures(logs);
      const appCpu = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
      const simCpuMs = (simCpu.user + simCpu.system) / 1000;
      const concurrent = peak.inProgress;

      // Failures by source, with the time of the first.
      const fail: Record<string, Failures> = {};
      const add = (key: string, count: number, what: string, firstAt?: number) => {
        if (count > 0) fail[key] = { count, kinds: [[what, count]], firstAt };
      };
      add('app: opt-in not confirmed in time', late.length, `opt-ins whose confirmation was not requested within ${confirmBoundMs} ms of the #`, minOf(late.map((t) => (t.keyAt as number) + confirmBoundMs)));
      add('app: offer not answered and played before the #', unoffered.length, 'calls the service did not answer and offer before the agent pressed # (or gave up)', minOf(unoffered.map((t) => t.arrivedAt + 1500)));
      if (seen.app.count > 0) fail['app: its error and warning lines'] = seen.app;
      // a request the PBX refused or left unanswered, as the app saw it: here the PBX is the simulator
      if (seen.asterisk.count > 0) fail['simulator: failures of the PBX as the app saw them (refused or unanswered requests)'] = seen.asterisk;
      if (lag && lag.p99 > loopBoundMs) add('app: event loop late', 1, `the service's event loop late by p99 ${lag.p99} ms (bound ${loopBoundMs} ms)`);
      if (simLag.p99 > loopBoundMs) add('simulator: its event loop late', 1, `the simulator's event loop late by p99 ${simLag.p99} ms (bound ${loopBoundMs} ms)`);
      if (!svc.running) add('app: the service exited', 1, `the service process exited (code ${svc.exitCode})`);
      const unknownNow = [...sim.unknown.values()].reduce((a, b) => a + b, 0);
      add('simulator: requests it does not know', unknownNow, [...sim.unknown.keys()].join(', '));
      const lost = times.filter((t) => t.lost);
      add('simulator: calls without the WebSocket', lost.length, 'calls that arrived while the service had no WebSocket', minOf(lost.map((t) => t.arrivedAt)));
      const first = whoFirst(fail);
      const clean = first === undefined && drained;

      const step = {
        rate,
        seconds: opts.seconds,
        offered: times.length,
        offeredRate: round(times.length / (offeredMs / 1000), 1),
        keyed: keyed.length,
        confirmed,
        confirmedRate: round(confirmed / (offeredMs / 1000), 1),
        stored: stored.length,
        created,
        drained,
        wallMs,
        peakConcurrent: concurrent,
        cpu: {
          appCores: appCpu === undefined ? undefined : round(appCpu / wallMs, 2),
          // while the calls were being offered (the step's first `seconds`), before the last ones drained
          appCoresWhileOffered: cpu0 === undefined || cpuOffered === undefined ? undefined : round((cpuOffered - cpu0) / offeredMs, 2),
          appMsPerOfferedCall: appCpu === undefined ? undefined : round(appCpu / Math.max(1, times.length), 2),
          // the same without the service's idle CPU over the step (its timers and the lease, which no call causes)
          appMsPerOfferedCallNetOfIdle: appCpu === undefined || idleCores === undefined ? undefined : round((appCpu - idleCores * wallMs) / Math.max(1, times.length), 2),
          appMsPerSecondPerConcurrentCall: appCpu === undefined || concurrent === 0 ? undefined : round(((appCpu / wallMs) * 1000) / concurrent, 3),
          simulatorCores: round(simCpuMs / wallMs, 2),
          simulatorMsPerOfferedCall: round(simCpuMs / Math.max(1, times.length), 2),
          machineBusyCores: busy.busyCores,
          loadAverage1: busy.loadAverage1,
        },
        memory: {
          rssMiB: { before: rss0, peak: peak.rss },
          kibPerConcurrentCall: rss0 !== undefined && concurrent > 0 ? Math.round(((peak.rss - rss0) * 1024) / concurrent) : undefined,
        },
        eventLoopLateMs: { app: lag, simulator: simLag },
        optInMs: stats(optInMs),
        offerMs: stats(offerMs),
        keyToDurableInAppMs: stats(inApp),
        optInSplitMs: { eventIn: stats(split.inbound), inApp: stats(split.inApp), requestOut: stats(split.outbound) },
        simulator: {
          requests: sim.counters.requests - req0.requests,
          events: sim.counters.events - req0.events,
          eventsFiltered: sim.counters.eventsFiltered - req0.eventsFiltered,
          peakBufferedBytes: sim.counters.peakBufferedBytes,
          // connections from the service (its WebSocket and its REST client's kept-alive sockets) and REST requests
          // the simulator was answering at once, at the peak
          peakConnections: sim.counters.peakConnections,
          // the service's REST client keeps at most this many sockets (src/telephony/ari/rest.ts)
          restSockets: MAX_SOCKETS,
          peakRequestsInFlight: sim.counters.peakInFlight,
          // REST answer bodies per call: the subscription's answer lists every device the app subscribed to
          answerBytesPerCall: Math.round((sim.answeredBytes - req0.bytes) / Math.max(1, times.length)),
          devicesSubscribed: { before: req0.subscriptions, after: sim.subscriptions },
        },
        failures: fail,
        failedFirst: first,
      };
      steps.push(step);
      log(
        `ceiling: ${rate}/s: offered ${times.length}, confirmed ${confirmed} (within ${confirmBoundMs} ms), stored ${stored.length}; app ${step.cpu.appCoresWhileOffered} cores while offered (${step.cpu.appCores} over the step), ${step.cpu.appMsPerOfferedCall} ms CPU per call; RSS ${rss0} → ${peak.rss} MiB at ${concurrent} calls in progress; loop late p99 ${lag?.p99} ms (simulator ${simLag.p99} ms); opt-in p50 ${step.optInMs.p50} / p99 ${step.optInMs.p99} ms (p50: # event in ${round(step.optInSplitMs.eventIn.p50, 1)}, in the app ${round(step.optInSplitMs.inApp.p50, 1)}, request out ${round(step.optInSplitMs.requestOut.p50, 1)})${first ? `; FAILED, first: ${first.who}: ${first.what}` : ''}${drained ? '' : '; calls still in progress after 20 s'}`,
      );
      sim.counters.peakBufferedBytes = 0;
      sim.counters.peakInFlight = 0;
      if (clean) highestClean = rate;
      else {
        breaksAt = rate;
        failedFirst = first ?? { who: 'the app', what: 'calls still in progress 20 s after the step' };
        break;
      }
    }
  } finally {
    await svc.stop();
    process.off('exit', killService);
    await sim.stop();
    simLoop.disable();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return {
    what: 'the service against a simulated PBX (the real Asterisk 22 ARI as recorded; no SIP, no media)',
    capture: { recordedAt: capture.recordedAt, asterisk: capture.asterisk, script: sim.script.map((s) => `${s.type} (${s.cause})`) },
    bounds: { confirmMs: confirmBoundMs, eventLoopP99Ms: loopBoundMs },
    keyAfterMs: 1500,
    agents: opts.agents ? opts.agents : 'one per call',
    appIdleCores: idleCores,
    steps,
    highestClean,
    breaksAt,
    failedFirst,
    serviceEventLoopLateMs: svc.find((l) => l.event === 'service.stopped')[0]?.eventLoopDelayMs,
    // ARI requests over the WebSocket and the socket writes they went out in, over the service's life
    ariWebSocket: svc.find((l) => l.event === 'service.stopped')[0]?.ariWebSocket,
  };
}

/** Node's histogram holds the time between two 5 ms samples: lateness is what exceeds them. */
function ms(ns: number): number {
  return Math.max(0, Math.round((ns - 5e6) / 1e4) / 100);
}

function minOf(xs: number[]): number | undefined {
  return xs.length ? Math.min(...xs) : undefined;
}

function whoFirst(fail: Record<string, Failures>): { who: Who; what: string; at?: string } | undefined {
  const entries = Object.entries(fail).sort((a, b) => (a[1].firstAt ?? Infinity) - (b[1].firstAt ?? Infinity));
  if (entries.length === 0) return undefined;
  const [key, f] = entries[0];
  return { who: key.startsWith('simulator') ? 'the simulator' : 'the app', what: `${key.replace(/^\w+: /, '')}: ${f.kinds[0]?.[0] ?? ''}`, at: f.firstAt !== undefined ? new Date(f.firstAt).toISOString() : undefined };
}

/** Starts `rate` calls a second for `seconds` (on schedule: the calls due by now, every 5 ms). */
async function runCalls(sim: AriSim, rate: number, seconds: number, next: () => number, agents: number): Promise<CallTimes[]> {
  const total = rate * seconds;
  const out: CallTimes[] = [];
  const t0 = Date.now();
  while (out.length < total) {
    const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * rate) + 1);
    while (out.length < due) {
      const n = next();
      // agent n (or n's turn in the pool), prospect n: every opt-in a new pair, a new durable request
      out.push(sim.startCall(agents > 0 ? ((n - 1) % agents) + 1 : n, `3${String(n).padStart(6, '0')}`));
    }
    await sleep(5);
  }
  return out;
}

/** Waits until no simulated call is in progress (true) or `ms` passed (false). */
async function drain(sim: AriSim, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (sim.inProgress > 0) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

export type { Stats };
