/**
 * Sustained load: SIPp (agent 1001, uac-busy-pound.xml) calls the always-busy simulator 2991 at
 * increasing rates against the real service: busy → offer → `#` → stored → confirmation → BYE. All calls
 * are the same agent/prospect pair, so after the first each opt-in is a refresh (an UPDATE + event in one
 * transaction), not an insert.
 *
 * The step is meant to find where the *app* fails, not the instruments:
 * - the load comes from several SIPp instances (one per {@link PER_SIPP} calls/s, up to {@link MAX_SIPP}),
 *   each with its own SIP and media port, without the message trace: one SIPp sending pcap DTMF and
 *   receiving the prompts' RTP lags behind its own schedule long before the app does;
 * - every call carries media (the prompts go out as RTP and the `#` comes back as RFC 4733 in RTP, as from a
 *   phone: a call without media would not be the same call for Asterisk, and the `#` would need SIP INFO),
 *   so the sandbox needs two RTP ports (RTP + RTCP) per concurrent call: {@link ensureRtpPorts} widens the
 *   running sandbox's range for the bench when it is too narrow for the highest rate and puts it back after.
 *
 * Each step records its failures by source — SIPp (failed calls, its error log), the app (its own error and
 * warning lines), Asterisk (ERROR lines, task-processor overload, and what the app saw of it: failed playbacks,
 * refused or unanswered ARI requests), the media path (offers that ended without the `#`) — with
 * the time of each source's first failure, and names the source that failed first. Stepping stops after the
 * first failing step.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SANDBOX } from '../testkit/sandbox';
import { SippResult, runSipp } from '../testkit/sipp';
import { ROOT, log, round, sleep } from './common';
import { machineLoad } from './probe';
import { Target } from './offer';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU time (ms) a process has used so far in user and in system mode, from /proc/<pid>/stat; undefined if unreadable. */
export function cpuTimes(pid: number | undefined): { user: number; sys: number } | undefined {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may contain spaces) start after the last ')'; utime, stime are 14, 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: (Number(f[11]) * 1000) / CLK_TCK, sys: (Number(f[12]) * 1000) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, ms) a process has used so far; undefined if unreadable. */
export function cpuMs(pid: number | undefined): number | undefined {
  const t = cpuTimes(pid);
  return t && t.user + t.sys;
}

function asteriskPid(): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(SANDBOX.dir, 'asterisk.pid'), 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

function lastCount(output: string, label: string): number | undefined {
  const lines = output.split('\n').filter((l) => l.includes(label));
  const m = lines.pop()?.match(/(\d+)\s*$/);
  return m ? Number(m[1]) : undefined;
}

/** The resident set of a process (MiB, /proc/<pid>/status VmRSS); undefined if unreadable. */
function rssMiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Asterisk's channels now (ARI GET /channels), or undefined. */
async function channelCount(): Promise<number | undefined> {
  try {
    const res = await fetch(`${SANDBOX.ari.url.replace(/\/$/, '')}/ari/channels`, { headers: { authorization: `Basic ${Buffer.from(`${SANDBOX.ari.username}:${SANDBOX.ari.password}`).toString('base64')}` } });
    return res.ok ? ((await res.json()) as unknown[]).length : undefined;
  } catch {
    return undefined;
  }
}

/** Calls per second one SIPp instance is given; more instances share a higher rate. */
export const PER_SIPP = 25;
/** At most this many SIPp instances (their SIP ports are the sandbox's + 11 … + 18, inside the sandbox's own block). */
export const MAX_SIPP = 8;
/** How long a call of the load holds its RTP ports, generously (the offer, 1.5 s to the #, the confirmation, the BYE). */
export const HOLD_SECONDS = 10;

/** SIPp instance i's ports: SIP the sandbox's + 11 + i; media + 1000 + 11 + 4i (SIPp binds the media port and + 2). */
function sippPorts(i: number): { sip: number; media: number } {
  return { sip: SANDBOX.sipPort + 11 + i, media: SANDBOX.sipPort + 1000 + 11 + 4 * i };
}

/** `rate` calls/s split over instances of at most PER_SIPP each (whole calls/s, the first ones take the rest). */
export function splitRate(rate: number, perSipp = PER_SIPP, max = MAX_SIPP): number[] {
  const n = Math.min(max, Math.max(1, Math.ceil(rate / perSipp)));
  const base = Math.floor(rate / n);
  return Array.from({ length: n }, (_, i) => base + (i < rate - base * n ? 1 : 0));
}

/** The running sandbox's RTP range, as Asterisk reports it (`rtp show settings`); undefined when it cannot be read. */
export function asteriskRtpRange(): { start: number; end: number } | undefined {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'cli', 'rtp show settings'], { encoding: 'utf8' });
  const start = r.stdout.match(/Port start:\s*(\d+)/)?.[1];
  const end = r.stdout.match(/Port end:\s*(\d+)/)?.[1];
  return start && end ? { start: Number(start), end: Number(end) } : undefined;
}

/**
 * Makes sure the running sandbox has `needed` RTP ports: if its range is narrower, restarts it (scripts/pbx.sh
 * restart; the bench holds the sandbox lock) with the range's end moved up, and returns a function that puts the
 * configured range (the environment's) back. The ports added are checked to be free first.
 */
export function ensureRtpPorts(needed: number): { range: { start: number; end: number } | undefined; widened?: { from: { start: number; end: number }; to: { start: number; end: number } }; restore: () => void } {
  const range = asteriskRtpRange();
  if (!range) return { range, restore: () => undefined };
  const have = range.end - range.start + 1;
  if (have >= needed) return { range, restore: () => undefined };
  const to = { start: range.start, end: Math.min(65535, range.start + needed - 1) };
  const busy = boundUdpPorts(range.end + 1, to.end);
  if (busy.length > 0) {
    log(`load: the sandbox has ${have} RTP ports, ${needed} wanted, but ${busy.length} ports above it are in use (e.g. ${busy.slice(0, 3).join(', ')}); keeping ${range.start}-${range.end}`);
    return { range, restore: () => undefined };
  }
  log(`load: the sandbox has ${have} RTP ports (${range.start}-${range.end}); restarting it with ${to.start}-${to.end} (${needed}) for the load`);
  restartSandbox(to);
  const now = asteriskRtpRange();
  return {
    range: now,
    widened: { from: range, to: now ?? to },
    restore: () => {
      log(`load: restarting the sandbox with its configured RTP range (${SANDBOX.rtp.start}-${SANDBOX.rtp.end})`);
      restartSandbox(SANDBOX.rtp);
    },
  };
}

function restartSandbox(rtp: { start: number; end: number }): void {
  const env = { ...process.env, CC_PBX_RTP_START: String(rtp.start), CC_PBX_RTP_END: String(rtp.end) };
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'restart'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`scripts/pbx.sh restart failed (exit ${r.status})`);
}

/** UDP ports in [from, to] bound by any process now (/proc/net/udp{,6}). */
function boundUdpPorts(from: number, to: number): number[] {
  const out = new Set<number>();
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      const port = local ? parseInt(local.slice(local.lastIndexOf(':') + 1), 16) : NaN;
      if (port >= from && port <= to) out.add(port);
    }
  }
  return [...out].sort((a, b) => a - b);
}

export type Who = 'the app' | 'Asterisk' | 'SIPp' | 'media';

/** A source's failures in a step: how many, of which kind, and when the first came (ms since the epoch, when known). */
export interface Failures {
  count: number;
  kinds: Array<[string, number]>;
  firstAt?: number;
}

export interface LoadOptions {
  rates: number[];
  seconds: number;
  nodeArgs?: readonly string[];
  /** Calls/s per SIPp instance (default PER_SIPP). */
  perSipp?: number;
}

export async function loadBench(opts: LoadOptions): Promise<Record<string, unknown>> {
  const maxRate = Math.max(...opts.rates);
  const rtp = ensureRtpPorts(2 * maxRate * HOLD_SECONDS);
  // SIPp's calls go through the agents' dialplan without CC_APP: the default app name.
  const target = new Target('app', 'considerate-callback', {}, opts.nodeArgs ?? []);
  const steps: Array<Record<string, unknown>> = [];
  let highestClean: number | undefined;
  let breaksAt: number | undefined;
  let breakReason: string | undefined;
  let failedFirst: Record<string, unknown> | undefined;
  try {
    await target.start();
    for (const rate of opts.rates) {
      const split = splitRate(rate, opts.perSipp ?? PER_SIPP);
      const calls = split.reduce((a, b) => a + b, 0) * opts.seconds;
      log(`load: ${rate} calls/s × ${opts.seconds} s (${calls} calls) from ${split.length} SIPp (${split.join(' + ')} calls/s)…`);
      const before = target.logs.length;
      const astLog = path.join(SANDBOX.dir, 'asterisk.log');
      const astFrom = fs.existsSync(astLog) ? fs.statSync(astLog).size : 0;
      const astPid = asteriskPid();
      const cpu0 = { app: cpuMs(target.pid), asterisk: cpuMs(astPid) };
      const rss0 = { app: rssMiB(target.pid), asterisk: rssMiB(astPid) };
      const busy = machineLoad();
      // Once a second: Asterisk's channels and both processes' resident sets (the peak is what a call costs in memory).
      const peak = { channels: 0, app: 0, asterisk: 0 };
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak.channels = Math.max(peak.channels, (await channelCount()) ?? 0);
          peak.app = Math.max(peak.app, rssMiB(target.pid) ?? 0);
          peak.asterisk = Math.max(peak.asterisk, rssMiB(astPid) ?? 0);
          await sleep(1000);
        }
      })();
      const t0 = Date.now();
      const runs = await Promise.all(
        split.map((r, i) =>
          runSipp({
            scenario: 'uac-busy-pound.xml',
            port: sippPorts(i).sip,
            mediaPort: sippPorts(i).media,
            service: '2991',
            keys: { agent: '1001' },
            auth: { user: '1001', password: 'agent1001' },
            calls: r * opts.seconds,
            timeoutMs: (opts.seconds + 60) * 1000,
            extraArgs: ['-r', String(r), '-l', String(r * 40)],
            traceMessages: false,
            label: `load ${rate}/s, SIPp ${i + 1}/${split.length}`,
          }),
        ),
      );
      const wallMs = Date.now() - t0;
      sampling = false;
      await sampler;
      const machine = busy();
      // Memory per concurrent call: the resident set's growth over the step's peak of concurrent channels
      // (each SIPp call is two channels at Asterisk: the agent's and the Local half in the offer).
      const concurrentCalls = peak.channels / 2;
      const memory = {
        peakChannels: peak.channels,
        rssMiB: { app: { before: rss0.app, peak: peak.app }, asterisk: { before: rss0.asterisk, peak: peak.asterisk } },
        kibPerConcurrentCall:
          concurrentCalls > 0 && rss0.app !== undefined && rss0.asterisk !== undefined
            ? { app: Math.round(((peak.app - rss0.app) * 1024) / concurrentCalls), asterisk: Math.round(((peak.asterisk - rss0.asterisk) * 1024) / concurrentCalls) }
            : undefined,
      };
      // CPU per offered call, the service's beside Asterisk's (/proc/<pid>/stat, user + system), and per concurrent call.
      const cpu1 = { app: cpuMs(target.pid), asterisk: cpuMs(astPid) };
      const per = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : Math.round(((b - a) / calls) * 100) / 100);
      const cpuPerCallMs = { app: per(cpu0.app, cpu1.app), asterisk: per(cpu0.asterisk, cpu1.asterisk) };
      const cpuBusyFraction = { app: fraction(cpu0.app, cpu1.app, wallMs), asterisk: fraction(cpu0.asterisk, cpu1.asterisk, wallMs) };
      const perConcurrent = (x?: number) => (x === undefined || concurrentCalls === 0 ? undefined : round((x * 1000) / concurrentCalls, 2));
      // ms of CPU per second per call in progress at the peak
      const cpuPerConcurrentCallMsPerS = { app: perConcurrent(cpuBusyFraction.app), asterisk: perConcurrent(cpuBusyFraction.asterisk) };

      const logs = target.logs.slice(before);
      const stored = logs.filter((l) => l.event === 'offer.opted_in').length;
      // SIPp's final counters; an instance whose screen did not make it into the output tail counts by its exit
      // code (0: every call succeeded).
      const successful = sum(runs.map((r, i) => lastCount(r.output, 'Successful call') ?? (r.code === 0 ? split[i] * opts.seconds : NaN)));
      const failed = sum(runs.map((r) => lastCount(r.output, 'Failed call') ?? (r.code === 0 ? 0 : NaN)));
      const codes = runs.map((r) => r.code);
      const outcomes = countBy(logs.filter((l) => l.event === 'offer.ended').map((l) => String(l.outcome)));

      const sipp = sippFailures(runs, failed);
      const seen = appFailures(logs);
      const app = seen.app;
      const asterisk = mergeFailures(asteriskFailures(astLog, astFrom), seen.asterisk);
      // Calls SIPp counted good whose # never reached the app (the offer ended without a key): lost on the media path.
      const noKey = sum(['timeout', 'hangup'].map((k) => outcomes[k] ?? 0));
      const media: Failures = { count: Math.max(0, successful - stored) > 0 ? noKey : 0, kinds: noKey > 0 ? [['offers that ended without the # (timeout or hang-up before a key)', noKey]] : [] };
      const failures: Record<Who, Failures> = { SIPp: sipp, 'the app': app, Asterisk: asterisk, media };
      const clean = failed === 0 && codes.every((c) => c === 0) && successful === calls && stored === calls && app.count === 0 && asterisk.count === 0;
      const first = clean ? undefined : whoFailedFirst(failures);
      const note = clean ? undefined : describeFailures(first, failures, { failed, successful, calls, stored, codes });
      steps.push({
        rate,
        seconds: opts.seconds,
        calls,
        sippInstances: split,
        successful,
        failed,
        stored,
        codes,
        code: codes.find((c) => c !== 0) ?? 0,
        durationMs: wallMs,
        outcomes,
        failures,
        failedFirst: first,
        note,
        cpuPerCallMs,
        cpuPerConcurrentCallMsPerS,
        cpuBusyFraction,
        machineBusyCores: machine.busyCores,
        memory,
        rtpPortsAtPeak: peak.channels, // two per agent channel (RTP + RTCP); the Local halves have none
      });
      log(`load: ${rate}/s: ${successful}/${calls} ok, ${failed} failed, stored ${stored}; CPU per call app ${cpuPerCallMs.app} ms, Asterisk ${cpuPerCallMs.asterisk} ms; machine ${machine.busyCores} cores busy${note ? `; ${note}` : ''}`);
      if (clean) highestClean = rate;
      else {
        breaksAt = rate;
        breakReason = note;
        failedFirst = first;
        break;
      }
      await sleep(3000);
    }
  } finally {
    await target.stop();
    rtp.restore();
  }
  return {
    // the service's own event-loop lateness over the whole load (its service.stopped line)
    serviceEventLoopLateMs: target.loopDelay(),
    // ARI requests over the WebSocket and the socket writes they went out in, over the service's life
    ariWebSocket: target.logs.find((l) => l.event === 'service.stopped')?.ariWebSocket,
    steps,
    highestClean,
    breaksAt,
    breakReason,
    failedFirst,
    sipp: { perInstance: opts.perSipp ?? PER_SIPP, max: MAX_SIPP, messageTrace: false },
    rtp: { range: rtp.range, ports: rtp.range ? rtp.range.end - rtp.range.start + 1 : undefined, wanted: 2 * maxRate * HOLD_SECONDS, maxRate, holdSeconds: HOLD_SECONDS, widened: rtp.widened },
    media: 'every call with RTP (prompts out, the # in as RFC 4733)',
    pair: 'PJSIP/1001 → 2991 for every call (refresh after the first)',
  };
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

function top(counts: Map<string, number>, n = 3): Array<[string, number]> {
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}

/** SIPp's failed calls, its exit codes and its error log (timestamped lines: the first is its first failure). */
export function sippFailures(runs: Array<Pick<SippResult, 'errors' | 'code' | 'killed'>>, failed: number): Failures {
  const kinds = new Map<string, number>();
  let firstAt: number | undefined;
  for (const r of runs) {
    for (const line of r.errors.split('\n')) {
      const m = line.match(/^(\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d(?:\.\d+)?)\s+[\d.]+:\s*(.*)$/);
      if (!m) continue;
      const at = Date.parse(`${m[1]}T${m[2].slice(0, 12)}`);
      if (Number.isFinite(at)) firstAt = Math.min(firstAt ?? at, at);
      const what = m[3].replace(/^Call-Id: [^,]*, /i, '').replace(/\d+/g, 'N').replace(/'[^']*'/g, "'…'").slice(0, 160);
      kinds.set(what, (kinds.get(what) ?? 0) + 1);
    }
    if (r.code !== 0 && r.code !== 1) kinds.set(`exit ${r.code}${r.killed ? ' (killed)' : ''}`, (kinds.get(`exit ${r.code}`) ?? 0) + 1);
  }
  return { count: failed, kinds: top(kinds), firstAt };
}

/**
 * The app's error and warning lines in the step, by event (or message), and the time of the first — split by whose
 * failure they report: a playback Asterisk ended as failed (no error from ARI) or an ARI request Asterisk refused
 * (an HTTP status) or did not answer in time (also: an answer that came after its request's limit, the switch to HTTP
 * after an unanswered request) is Asterisk's failure as the app saw it (`asterisk`); the rest is the app's own (`app`).
 */
export function appFailures(logs: Array<Record<string, unknown>>): { app: Failures; asterisk: Failures } {
  const out = { app: { count: 0, kinds: new Map<string, number>(), firstAt: undefined as number | undefined }, asterisk: { count: 0, kinds: new Map<string, number>(), firstAt: undefined as number | undefined } };
  for (const l of logs) {
    if (l.level !== 'error' && l.level !== 'warn') continue;
    const error = typeof l.error === 'string' ? l.error : undefined;
    const playbackFailed = l.event === 'offer.prompt_failed' && error === undefined;
    const ariFailed = error !== undefined && (/: [45]\d\d /.test(error) || /no answer within/.test(error));
    // Asterisk answering too late: an answer after its request's limit (stray, late), or the app leaving the
    // WebSocket for HTTP after a request on it went unanswered.
    const ariLate = (l.event === 'ari.stray_answer' && l.kind === 'late') || (l.event === 'ari.rest_transport' && l.transport === 'http');
    const whose = playbackFailed || ariFailed || ariLate ? out.asterisk : out.app;
    const detail = error ?? (playbackFailed && typeof l.media === 'string' ? `${l.media}: Asterisk ended the playback as failed` : undefined);
    const what = `${whose === out.asterisk ? 'seen by the app, ' : ''}${l.level}: ${String(l.event ?? l.message)}${detail ? ` (${detail.replace(/[0-9a-f-]{8,}|\d{4,}/gi, 'N').slice(0, 120)})` : ''}`;
    whose.count++;
    whose.kinds.set(what, (whose.kinds.get(what) ?? 0) + 1);
    const at = typeof l.timestamp === 'string' ? Date.parse(l.timestamp) : NaN;
    if (Number.isFinite(at)) whose.firstAt = Math.min(whose.firstAt ?? at, at);
  }
  const done = (x: typeof out.app): Failures => ({ count: x.count, kinds: top(x.kinds), firstAt: x.firstAt });
  return { app: done(out.app), asterisk: done(out.asterisk) };
}

/** Two sources' failures as one (Asterisk's own log and what the app saw of Asterisk). */
export function mergeFailures(a: Failures, b: Failures): Failures {
  const kinds = new Map<string, number>([...a.kinds]);
  for (const [k, n] of b.kinds) kinds.set(k, (kinds.get(k) ?? 0) + n);
  const times = [a.firstAt, b.firstAt].filter((x): x is number => x !== undefined);
  return { count: a.count + b.count, kinds: top(kinds), firstAt: times.length ? Math.min(...times) : undefined };
}

/**
 * Asterisk's ERROR lines since `from` (bytes) and its task-processor overload warnings (a queue that backs up:
 * Asterisk itself falling behind), grouped by message with ids stripped, and the time of the first.
 */
export function asteriskFailures(file: string, from: number): Failures {
  let text = '';
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - from));
    fs.readSync(fd, buf, 0, buf.length, from);
    fs.closeSync(fd);
    text = buf.toString('utf8');
  } catch {
    return { count: 0, kinds: [] };
  }
  const kinds = new Map<string, number>();
  let firstAt: number | undefined;
  let count = 0;
  for (const line of text.split('\n')) {
    const m = line.match(/^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\] (ERROR|WARNING)(?:\[[^\]]*\])+: \S+ \S+: (.*)$/);
    if (!m) continue;
    if (m[3] === 'WARNING' && !/task ?processor|rtp|port/i.test(m[4])) continue;
    count++;
    const msg = `${m[3]}: ${m[4].replace(/'0x[0-9a-f]+'/g, "'…'").replace(/\b\d+\b/g, 'N').trim()}`;
    kinds.set(msg, (kinds.get(msg) ?? 0) + 1);
    const at = Date.parse(`${m[1]}T${m[2]}`);
    if (Number.isFinite(at)) firstAt = Math.min(firstAt ?? at, at);
  }
  return { count, kinds: top(kinds), firstAt };
}

/** The source whose first failure came earliest; a source with failures but no time comes after those with one. */
export function whoFailedFirst(failures: Record<Who, Failures>): { who: Who; at?: string; what?: string } | undefined {
  const failing = (Object.entries(failures) as Array<[Who, Failures]>).filter(([, f]) => f.count > 0);
  if (failing.length === 0) return undefined;
  failing.sort((a, b) => (a[1].firstAt ?? Infinity) - (b[1].firstAt ?? Infinity));
  const [who, f] = failing[0];
  return { who, at: f.firstAt !== undefined ? new Date(f.firstAt).toISOString() : undefined, what: f.kinds[0]?.[0] };
}

function describeFailures(first: { who: Who; at?: string; what?: string } | undefined, failures: Record<Who, Failures>, c: { failed: number; successful: number; calls: number; stored: number; codes: Array<number | null> }): string {
  const parts = (Object.entries(failures) as Array<[Who, Failures]>)
    .filter(([, f]) => f.count > 0)
    .map(([who, f]) => `${who} ${f.count} (${f.kinds.map(([k, n]) => `${n}× ${k}`).join('; ') || 'no detail'})`);
  const head = first ? `${first.who} failed first${first.at ? ` (${first.at.slice(11, 23)})` : ''}` : 'failed';
  return `${head}: ${c.successful}/${c.calls} ok, ${c.failed} failed, stored ${c.stored}; SIPp exits ${c.codes.join(',')}; ${parts.join('; ') || 'no failure logged'}`;
}

/** CPU time over wall time (1 = one core busy). */
function fraction(a: number | undefined, b: number | undefined, wallMs: number): number | undefined {
  return a === undefined || b === undefined || !wallMs ? undefined : Math.round(((b - a) / wallMs) * 100) / 100;
}
