/**
 * Where the service's CPU time goes: V8's own sampling profiler (`node --cpu-prof`) on
 * a service under the offer bench's `#` calls (10 concurrent originators, SQLite) and on a service under
 * SIPp's sustained load (one step of bench/load.ts). The profile is written when the service stops; its self
 * time is summarised by category (store, ARI transport, logging, garbage collection, …) and heaviest function
 * (bench/probe.ts). The profiled runs are not the timed ones: the profiler's own cost (a few %) is in them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, log } from './common';
import { loadBench } from './load';
import { profileUnderOffers } from './offer';
import { profileIn } from './probe';

export async function profileBench(opts: { calls?: number; rate?: number; seconds?: number } = {}): Promise<Record<string, unknown>> {
  // The raw profiles stay in bench-results/profiles/ (not committed): open them in Chrome's DevTools, or
  // summarise them with `node .tools-dist/bench/probe.js <file.cpuprofile>`.
  const dir = path.join(ROOT, 'bench-results', 'profiles');
  const nodeArgs = (sub: string) => {
    fs.rmSync(path.join(dir, sub), { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, sub), { recursive: true });
    return ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, sub)}`];
  };
  {
    const calls = opts.calls ?? 200;
    log(`profile: ${calls} # calls from 10 originators on a profiled service (SQLite)…`);
    await profileUnderOffers({ calls, concurrency: 10, nodeArgs: nodeArgs('offer') });
    const offer = profileIn(path.join(dir, 'offer'));
    const rate = opts.rate ?? 50;
    log(`profile: sustained load ${rate} calls/s on a profiled service…`);
    await loadBench({ rates: [rate], seconds: opts.seconds ?? 10, nodeArgs: nodeArgs('load') });
    const load = profileIn(path.join(dir, 'load'));
    log(`profile: the raw profiles are in ${path.relative(ROOT, dir)}/offer and /load`);
    return { offer: offer && { calls, concurrency: 10, ...offer, file: undefined }, load: load && { rate, seconds: opts.seconds ?? 10, ...load, file: undefined } };
  }
}
