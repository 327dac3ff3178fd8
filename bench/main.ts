/**
 * `npm run bench`: the performance figures (docs/performance.md), printed as a table and written to
 * bench-results/latest.json and bench-results/latest.md. Never part of `npm test`.
 *
 *   npm run bench                       # everything
 *   npm run bench -- --only scheduler   # scheduler, postgres, offer, load (comma-separated)
 *   npm run bench -- --only offer --calls 800
 *   npm run bench -- --only ceiling --ceiling-rates 50,100,200 --ceiling-seconds 10 [--ceiling-agents 500] [--ceiling-cpu-prof <dir>]
 *
 * The PBX parts take the sandbox lock (testkit/lock.ts, the same as the integration tests and the
 * demo) and start the sandbox with scripts/pbx.sh up when it is not running; the sandbox is left running.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { acquireSandboxLock } from '../testkit/lock';
import { SANDBOX } from '../testkit/sandbox';
import { ROOT, argValue, log, machine, writeJson } from './common';
import { renderMarkdown } from './report';

const PARTS = ['scheduler', 'postgres', 'commit', 'offer', 'load', 'profile', 'ceiling'];

export type Results = Record<string, unknown> & { machine: ReturnType<typeof machine>; startedAt: string };

async function main(): Promise<void> {
  const only = argValue('--only')?.split(',') ?? PARTS;
  const n = Number(argValue('--n') ?? 100_000);
  const results: Results = { machine: machine(), startedAt: new Date().toISOString() };
  const outDir = path.join(ROOT, 'bench-results');

  if (only.includes('scheduler')) {
    log(`scheduler: ${n} pending requests (own process)…`);
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'scheduler.js'), String(n)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`scheduler bench failed (${r.status})`);
    results.scheduler = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  }

  if (only.includes('postgres')) {
    log(`postgres: opt-in commit, claim rate, take-over, ${n} pending (own process, the test cluster of testkit/pg.ts)…`);
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'pg.js'), String(n)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`postgres bench failed (${r.status})`);
    results.postgres = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  }

  if (only.includes('commit')) {
    log('commit: concurrent opt-ins on SQLite committed one by one, as a group, in a worker thread (own process)…');
    const r = spawnSync(process.execPath, [path.join(__dirname, 'commit-modes.js')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`commit bench failed (${r.status})`);
    results.commit = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  }

  if (only.includes('ceiling')) {
    // No sandbox: the service against the simulated PBX in this process (bench/ari-sim.ts).
    const { ceilingBench } = await import('./ceiling');
    results.ceiling = await ceilingBench({
      rates: (argValue('--ceiling-rates') ?? '50,100,150,200,300,400,600,800').split(',').map(Number),
      seconds: Number(argValue('--ceiling-seconds') ?? 10),
      agents: Number(argValue('--ceiling-agents') ?? 0),
      nodeArgs: argValue('--ceiling-cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(argValue('--ceiling-cpu-prof') as string)}`] : undefined,
    });
  }

  const pbxParts = only.filter((p) => p === 'offer' || p === 'load' || p === 'profile');
  if (pbxParts.length > 0) {
    const lock = await acquireSandboxLock(SANDBOX.lockDir, {
      onWait: (owner) => log(`waiting for pid ${owner} to release the sandbox (${SANDBOX.lockDir})…`),
    });
    try {
      const up = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'up'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (up.status !== 0) throw new Error(`the sandbox did not start (scripts/pbx.sh up exit ${up.status})`);
      if (pbxParts.includes('offer')) {
        const { offerBench } = await import('./offer');
        results.offer = await offerBench({ calls: Number(argValue('--calls') ?? 400), concurrency: 10, runs: Number(argValue('--runs') ?? 3) });
      }
      if (pbxParts.includes('load')) {
        const { loadBench } = await import('./load');
        results.load = await loadBench({ rates: (argValue('--rates') ?? '5,10,20,30,50,80,100,130,160,200').split(',').map(Number), seconds: Number(argValue('--seconds') ?? 15) });
      }
      if (pbxParts.includes('profile')) {
        const { profileBench } = await import('./profile');
        results.profile = await profileBench();
      }
    } finally {
      lock.release();
    }
  }

  results.finishedAt = new Date().toISOString();
  const previous = readJson(path.join(outDir, 'latest.json'));
  // parts not run this time keep their last figures (marked with when they were measured)
  for (const key of PARTS) {
    if (results[key] === undefined && previous?.[key] !== undefined) results[key] = { ...(previous[key] as object), measuredAt: previous.measuredAt?.[key] ?? previous.startedAt };
  }
  results.measuredAt = Object.fromEntries(
    PARTS.filter((k) => results[k] !== undefined).map((k) => [k, only.includes(k) ? results.startedAt : ((results[k] as { measuredAt?: string }).measuredAt ?? null)]),
  );
  writeJson(path.join(outDir, 'latest.json'), results);
  const md = renderMarkdown(results);
  fs.writeFileSync(path.join(outDir, 'latest.md'), md);
  process.stdout.write(`${md}\nwritten: bench-results/latest.json, bench-results/latest.md (publish: npm run bench:docs -- --from bench-results/latest.json)\n`);
}

function readJson(file: string): (Record<string, unknown> & { measuredAt?: Record<string, string>; startedAt?: string }) | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
