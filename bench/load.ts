/**
 * Sustained load: SIPp (agent 1001, uac-busy-pound.xml) calls the always-busy simulator 2991 at
 * increasing rates (`-r`, `-m rate×seconds`) against the real service: busy → offer → `#` → stored →
 * confirmation → BYE. All calls are the same agent/prospect pair, so after the first each opt-in is a
 * refresh (an UPDATE + event in one transaction), not an insert. A call fails when SIPp counts it failed
 * (no 200 OK: 486 because the offer was not made, a timeout, no BYE within 30 s).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SANDBOX } from '../testkit/sandbox';
import { runSipp } from '../testkit/sipp';
import { log, sleep } from './common';
import { Target } from './offer';

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat; undefined if unreadable. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
export function cpuMs(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may contain spaces) start after the last ')'; utime, stime are 14, 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
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

export async function loadBench(opts: { rates: number[]; seconds: number; nodeArgs?: readonly string[] }): Promise<Record<string, unknown>> {
  // SIPp's calls go through the agents' dialplan without CC_APP: the default app name.
  const target = new Target('app', 'considerate-callback', {}, opts.nodeArgs ?? []);
  await target.start();
  const steps: Array<Record<string, unknown>> = [];
  let highestClean: number | undefined;
  let breaksAt: number | undefined;
  let breakReason: string | undefined;
  try {
    for (const rate of opts.rates) {
      const calls = rate * opts.seconds;
      log(`load: ${rate} calls/s × ${opts.seconds} s (${calls} calls)…`);
      const before = target.logs.length;
      const astLog = path.join(SANDBOX.dir, 'asterisk.log');
      const astFrom = fs.existsSync(astLog) ? fs.statSync(astLog).size : 0;
      const astPid = asteriskPid();
      const cpu0 = { app: cpuMs(target.pid), asterisk: cpuMs(astPid) };
      const rss0 = { app: rssMiB(target.pid), asterisk: rssMiB(astPid) };
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
      const r = await runSipp({
        scenario: 'uac-busy-pound.xml',
        port: SANDBOX.testPhones.agentUac.sip,
        mediaPort: SANDBOX.testPhones.agentUac.media,
        service: '2991',
        keys: { agent: '1001' },
        auth: { user: '1001', password: 'agent1001' },
        calls,
        timeoutMs: (opts.seconds + 60) * 1000,
        extraArgs: ['-r', String(rate), '-l', String(rate * 40)],
        label: `load ${rate}/s`,
      });
      sampling = false;
      await sampler;
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
      // CPU per offered call, the service's beside Asterisk's (/proc/<pid>/stat, user + system).
      const cpu1 = { app: cpuMs(target.pid), asterisk: cpuMs(astPid) };
      const per = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : Math.round(((b - a) / calls) * 100) / 100);
      const cpuPerCallMs = { app: per(cpu0.app, cpu1.app), asterisk: per(cpu0.asterisk, cpu1.asterisk) };
      const logs = target.logs.slice(before);
      const stored = logs.filter((l) => l.event === 'offer.opted_in').length;
      const successful = lastCount(r.output, 'Successful call') ?? NaN;
      const failed = lastCount(r.output, 'Failed call') ?? NaN;
      const pbxErrors = asteriskErrors(astLog, astFrom);
      const errorLines = logs.filter((l) => l.level === 'error' || l.level === 'warn').map((l) => l.message);
      const why = [...pbxErrors.map(([m, n]) => `Asterisk ${n}× "${m}"`), ...[...new Set(errorLines)].slice(0, 3).map((m) => `service: ${m}`)];
      const note = failed > 0 || r.code !== 0 ? `sipp exit ${r.code}; ${why.join('; ') || 'no error logged'}` : undefined;
      steps.push({ rate, seconds: opts.seconds, calls, successful, failed, stored, code: r.code, durationMs: r.durationMs, note, pbxErrors, cpuPerCallMs, memory, cpuBusyFraction: { app: fraction(cpu0.app, cpu1.app, r.durationMs), asterisk: fraction(cpu0.asterisk, cpu1.asterisk, r.durationMs) } });
      if (failed === 0 && r.code === 0 && successful === calls) highestClean = rate;
      else {
        breaksAt = rate;
        breakReason = note ?? `successful ${successful}/${calls}`;
        break;
      }
      await sleep(3000);
    }
  } finally {
    await target.stop();
  }
  return { steps, highestClean, breaksAt, breakReason, pair: 'PJSIP/1001 → 2991 for every call (refresh after the first)' };
}

/** CPU time over wall time (1 = one core busy). */
function fraction(a: number | undefined, b: number | undefined, wallMs: number): number | undefined {
  return a === undefined || b === undefined || !wallMs ? undefined : Math.round(((b - a) / wallMs) * 100) / 100;
}

/** The ERROR lines Asterisk logged since `from` (bytes), grouped by message (ids stripped), most frequent first. */
function asteriskErrors(file: string, from: number): Array<[string, number]> {
  let text = '';
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - from));
    fs.readSync(fd, buf, 0, buf.length, from);
    fs.closeSync(fd);
    text = buf.toString('utf8');
  } catch {
    return [];
  }
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = line.match(/ ERROR(?:\[[^\]]*\])+: \S+ \S+: (.*)$/);
    if (!m) continue;
    const msg = m[1].replace(/'0x[0-9a-f]+'/g, "'…'").trim();
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
}
