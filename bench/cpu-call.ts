/**
 * The service's CPU per offered call, in counts that depend less on what else the machine does than a latency: the
 * real service (the built dist, as the ceiling part starts it) against the simulated PBX (bench/ari-sim.ts), a fixed
 * number of calls at a fixed rate after a warm-up, and per call:
 * - CPU ms, user and sys apart (/proc/<pid>/stat), the threads' run time (schedstat), and the main thread's context
 *   switches (waits, and preemptions: a write on a loopback socket wakes the peer, which may take the core);
 * - ARI requests and events (the simulator's counters), log lines, and the WebSocket's frames and writes (the
 *   service's `service.stopped` line, over its life);
 * - `--gc`: V8's collections per 1000 calls by kind, their pauses (in all per call; per kind the median and longest) and the bytes allocated per call
 *   (`--trace-gc-nvp`: every collection prints the bytes allocated since the one before);
 * - `--strace`: system calls per call (`strace -c -f` attached over the round; the round's CPU is then not the
 *   service's own: ptrace slows it);
 * - `--callgrind`: instructions per call (the service under valgrind's callgrind, counting only over the rounds;
 *   user space only; about fifty times slower, so at 1 or 2 calls/s with `--drain 60`). Not steady enough yet to
 *   settle a small change: rounds of 60 calls after 60 varied by 20-30 % between runs of one build (V8's
 *   background compiles and collections fall differently), as much as CPU ms per call move with the machine's load;
 * - `--perf <file>`: an on-CPU profile of each round (`perf record -g`, cpu-clock; add
 *   `--node-args --perf-basic-prof-only-functions` for the JavaScript frames);
 * - `--usr2`: SIGUSR2 to the service before and after each round (for a preload given with `--node-args -r …` that
 *   profiles just the round).
 * - `--timing`: the opt-in's steps as the service times them (its `offer.timing` lines: performance.now() marks in the
 *   flow, the engine and the group), p50 / p99 per step in ms over the round, and with `--turns` the event loop's turns
 *   from the key event to the group's COMMIT (a preload counts the loop's callbacks other than promises' through
 *   async_hooks, bench/turns-preload.ts; the hooks slow the service, so take the steps' times from a round without it).
 *   At a low rate (`--rate 5`) the opt-ins come one at a time, as in the offer part's "one after the other".
 * `--agents 1 --prospects 1`: every opt-in a refresh of the same request, as under the load part's SIPp calls
 * (default: every call its own agent and prospect, as the ceiling part).
 *
 *   node .tools-dist/bench/cpu-call.js [--rate 50] [--calls 500] [--rounds 2] [--warm 300] [--drain 20] [--agents 0] [--prospects 0]
 *     [--gc] [--strace] [--callgrind] [--perf <file>] [--usr2] [--node-args '…'] [--env K=V,K=V]
 *
 * The rounds' figures are printed one JSON line each.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SANDBOX } from '../testkit/sandbox';
import { ServiceProcess } from '../testkit/service-process';
import { argValue, round, sleep, stats } from './common';
import { cpuTimes } from './load';
import type { CaptureFile } from './ari-sim-events';
import { AriSim } from './ari-sim';
import { CAPTURE } from './ceiling';

/** utime, stime (ms), the scheduler's run time (ms) of a process, and its main thread's context switches. */
function cpu(pid: number): { user: number; sys: number; run: number; vcs: number; ivcs: number } {
  const status = fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const vcs = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const ivcs = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const { user, sys } = cpuTimes(pid) ?? { user: NaN, sys: NaN };
  const run = Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  // the threads' run time: /proc/<pid>/schedstat is the main thread's only; sum over the tasks
  let all = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      all += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
    } catch {
      // the thread ended
    }
  }
  return { user, sys, run: all || run, vcs, ivcs };
}

async function main(): Promise<void> {
  const rate = Number(argValue('--rate') ?? 50);
  const calls = Number(argValue('--calls') ?? 500);
  const rounds = Number(argValue('--rounds') ?? 2);
  const agents = Number(argValue('--agents') ?? 0);
  const prospects = Number(argValue('--prospects') ?? 0);
  const gc = process.argv.includes('--gc');
  const trace = process.argv.includes('--strace');
  const usr2 = process.argv.includes('--usr2');
  const timing = process.argv.includes('--timing');
  const turns = process.argv.includes('--turns');
  // the longest wait for the round's last calls to end (s)
  const drainS = Number(argValue('--drain') ?? 20);
  const env = Object.fromEntries((argValue('--env') ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
  const capture = JSON.parse(fs.readFileSync(CAPTURE, 'utf8')) as CaptureFile;
  const sim = new AriSim({ capture, username: SANDBOX.ari.username, password: SANDBOX.ari.password });
  await sim.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-cpu-'));
  const svc = new ServiceProcess(
    { ari: { url: sim.url, app: 'considerate-callback' }, log: { level: 'info' }, policy: { firstProbeDelay: '1h' }, offer: { maxPendingTotal: 1_000_000, ...(agents ? { maxPendingPerAgent: 1000 } : {}) } },
    { dir, env, nodeArgs: [...(gc ? ['--trace-gc-nvp'] : []), ...(turns ? ['-r', path.join(__dirname, 'turns-preload.js')] : []), ...(argValue('--node-args') ?? '').split(' ').filter(Boolean)] },
  );
  let k = 0;
  const run = async (r: number, n: number) => {
    const t0 = Date.now();
    let started = 0;
    while (started < n) {
      const due = Math.min(n, Math.floor(((Date.now() - t0) / 1000) * r) + 1);
      while (started < due) {
        const i = ++k;
        const prospect = prospects > 0 ? ((i - 1) % prospects) + 1 : i;
        sim.startCall(agents > 0 ? ((i - 1) % agents) + 1 : i, `3${String(prospect).padStart(6, '0')}`);
        started++;
      }
      await sleep(5);
    }
    for (let i = 0; i < drainS * 20 && sim.inProgress > 0; i++) await sleep(50);
  };
  const out: Array<Record<string, unknown>> = [];
  try {
    // --callgrind: the service under valgrind's callgrind (instructions counted over each round only: instrumentation
    // switched on at the round's start, the counts dumped at its end); slow, so at a low rate
    const callgrind = process.argv.includes('--callgrind');
    if (callgrind) {
      const wrapper = path.join(dir, 'node-under-callgrind.sh');
      fs.writeFileSync(wrapper, `#!/bin/sh\nexec valgrind --tool=callgrind --smc-check=all-non-file --instr-atstart=no --callgrind-out-file=${dir}/callgrind.out.%p ${process.execPath} "$@"\n`, { mode: 0o755 });
      process.execPath = wrapper;
    }
    await svc.start(!callgrind);
    if (callgrind) await svc.waitLog((l) => l.event === 'ari.connected', 600_000);
    for (let i = 0; i < 100 && !sim.connected; i++) await sleep(50);
    const pid = svc.pid as number;
    // the warm-up: V8 optimizes what the calls run (the first hundreds of calls cost more)
    await run(rate, Number(argValue('--warm') ?? 300));
    await sleep(1000);
    for (let round_ = 1; round_ <= rounds; round_++) {
      const logFrom = svc.logs.length;
      const req0 = { ...sim.counters };
      let tracer: ReturnType<typeof spawn> | undefined;
      const straceFile = path.join(dir, `strace-${round_}.txt`);
      // --perf <file>: an on-CPU profile of the round (perf record, cpu-clock; the service with --perf-basic-prof)
      const perfOut = argValue('--perf');
      if (perfOut) {
        tracer = spawn('perf', ['record', '-F', '1999', '-g', '-o', `${perfOut}-${round_}`, '-p', String(pid)], { stdio: 'ignore' });
        await sleep(1000);
      }
      if (trace) {
        tracer = spawn('strace', ['-c', '-f', '-o', straceFile, '-p', String(pid)], { stdio: 'ignore' });
        await sleep(1000);
      }
      // --usr2: SIGUSR2 to the service before and after the round's calls (a preload's profile of just these calls)
      if (usr2) process.kill(pid, 'SIGUSR2');
      if (callgrind) {
        execFileSync('callgrind_control', ['-z', String(pid)]);
        execFileSync('callgrind_control', ['-i', 'on', String(pid)]);
      }
      const c0 = cpu(pid);
      await run(rate, calls);
      const c1 = cpu(pid);
      if (usr2) process.kill(pid, 'SIGUSR2');
      let instructions: number | undefined;
      if (callgrind) {
        execFileSync('callgrind_control', ['-i', 'off', String(pid)]);
        execFileSync('callgrind_control', ['-d', String(pid)]);
        // the newest dump's totals (instructions executed by every thread of the service over the round)
        const dumps = fs.readdirSync(dir).filter((f) => f.startsWith('callgrind.out.')).map((f) => path.join(dir, f));
        const newest = dumps.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
        const m = newest ? /^totals: (\d+)/m.exec(fs.readFileSync(newest, 'utf8')) : null;
        instructions = m ? Number(m[1]) : undefined;
        if (argValue('--keep')) fs.copyFileSync(newest, `${argValue('--keep')}-${round_}`);
      }
      if (tracer) {
        tracer.kill('SIGINT');
        await new Promise((r) => tracer!.once('exit', r));
      }
      const logs = svc.logs.slice(logFrom);
      const opted = logs.filter((l) => l.event === 'offer.opted_in').length;
      const errors = logs.filter((l) => l.level === 'error' || l.level === 'warn').length;
      const row: Record<string, unknown> = {
        round: round_,
        calls,
        optedIn: opted,
        warnOrError: errors,
        userMs: round((c1.user - c0.user) / calls, 3),
        sysMs: round((c1.sys - c0.sys) / calls, 3),
        cpuMs: round((c1.user + c1.sys - c0.user - c0.sys) / calls, 3),
        ...(instructions !== undefined ? { kInstructionsPerCall: Math.round(instructions / calls / 1000) } : {}),
        runMs: round((c1.run - c0.run) / calls, 3),
        // the main thread giving up the CPU (waiting) and having it taken (preempted), per call
        switches: { voluntary: round((c1.vcs - c0.vcs) / calls, 2), preempted: round((c1.ivcs - c0.ivcs) / calls, 2) },
        requests: round((sim.counters.requests - req0.requests) / calls, 2),
        events: round((sim.counters.events - req0.events) / calls, 2),
        logLines: round(logs.filter((l) => l.level !== 'raw').length / calls, 2),
      };
      if (gc) {
        const nvp = logs.filter((l) => l.level === 'raw' && / gc=/.test(l.message)).map((l) => l.message);
        const kinds: Record<string, number> = {};
        let allocated = 0;
        let pause = 0;
        const pauses: Record<string, number[]> = {};
        for (const line of nvp) {
          const kind = / gc=(\S+)/.exec(line)?.[1] ?? '?';
          kinds[kind] = (kinds[kind] ?? 0) + 1;
          // V8 prints an unsigned wrap-around (about 2^55) now and then for the bytes since the last collection: not a count.
          const bytes = Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0);
          if (bytes < 2 ** 40) allocated += bytes;
          const p = Number(/ pause=([0-9.]+)/.exec(line)?.[1] ?? 0);
          pause += p;
          (pauses[kind] ??= []).push(p);
        }
        // Each kind's pauses: median and longest (a long one inside an opt-in is its p99).
        row.gcPauseMs = Object.fromEntries(
          Object.entries(pauses).map(([kk, v]) => {
            const st = stats(v);
            return [kk, { p50: round(st.p50, 2), max: round(st.max, 2) }];
          }),
        );
        row.gcPer1000 = Object.fromEntries(Object.entries(kinds).map(([kk, v]) => [kk, round((v * 1000) / calls, 1)]));
        row.allocatedKiBPerCall = round(allocated / 1024 / calls, 1);
        row.gcPauseMsPerCall = round(pause / calls, 3);
      }
      if (trace) {
        const text = fs.readFileSync(straceFile, 'utf8');
        const rows = text
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f.length >= 5 && /^\d/.test(f[0]) && f[f.length - 1] !== 'total');
        const per: Record<string, number> = {};
        for (const f of rows) per[f[f.length - 1]] = round(Number(f[3]) / calls, 2);
        row.syscallsPerCall = round(Object.values(per).reduce((a, b) => a + b, 0), 2);
        row.syscalls = Object.fromEntries(Object.entries(per).sort((a, b) => b[1] - a[1]).slice(0, 12));
      }
      if (timing) {
        const steps: Record<string, number[]> = {};
        for (const l of logs.filter((x) => x.event === 'offer.timing')) {
          for (const [key, v] of Object.entries(l)) if (typeof v === 'number' && !['time', 'pid'].includes(key)) (steps[key] ??= []).push(v);
        }
        row.timing = Object.fromEntries(
          Object.entries(steps).map(([key, v]) => {
            const st = stats(v);
            return [key, `${round(st.p50, 3)} / ${round(st.p99, 3)}`];
          }),
        );
        row.timed = Object.values(steps)[0]?.length ?? 0;
      }
      row.loadavg = os.loadavg().map((x) => round(x, 2));
      out.push(row);
      console.log(JSON.stringify(row));
      await sleep(1000);
    }
  } finally {
    await svc.stop();
    await sim.stop();
    const stopped = svc.find((l) => l.event === 'service.stopped')[0];
    if (stopped) console.log(JSON.stringify({ ariWebSocket: stopped.ariWebSocket, eventLoopDelayMs: stopped.eventLoopDelayMs, stopMs: stopped.stopMs }));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
