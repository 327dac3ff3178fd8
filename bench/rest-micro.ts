/**
 * Micro-benchmark: one ARI REST call through ari-client (its swagger layer) against the same call
 * through the lean client (src/telephony/ari/rest.ts), against the running sandbox. It decided which one
 * serves every REST call of the service (docs/performance-log.md).
 *
 *   npx tsc -p tsconfig.tools.json && node .tools-dist/bench/rest-micro.js [calls per kind, default 300]
 *
 * Three kinds of call, the shapes the service makes: a read (GET /asterisk/variable), a write
 * (POST /asterisk/variable) and a list (GET /channels). Each round runs one call of each kind through
 * each client, alternating which client goes first, so that both see the same PBX load and the same
 * warm-up; the first 20 rounds are not counted. Times are wall-clock per call (request sent → answer
 * parsed), in ms.
 */
import { performance } from 'node:perf_hooks';
import * as ari from 'ari-client';
import { AriRest } from '../src/telephony/ari/rest';
import { SANDBOX } from '../testkit/sandbox';
import { round, stats } from './common';

type Kind = 'get' | 'set' | 'list';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 300);
  const { url, username, password } = SANDBOX.ari;
  const client = await ari.connect(url, username, password);
  const lean = new AriRest({ url, username, password });
  const variable = `CC_BENCH_${process.pid}`;
  const calls: Record<'ari-client' | 'lean', Record<Kind, () => Promise<unknown>>> = {
    'ari-client': {
      get: () => client.asterisk.getGlobalVar({ variable }),
      set: () => client.asterisk.setGlobalVar({ variable, value: 'x' }),
      list: () => client.channels.list(),
    },
    lean: {
      get: () => lean.globals.getGlobalVar({ variable }),
      set: () => lean.globals.setGlobalVar({ variable, value: 'x' }),
      list: () => lean.listChannels(),
    },
  };
  const times: Record<string, number[]> = {};
  const warmup = 20;
  for (let i = 0; i < n + warmup; i++) {
    const order = i % 2 === 0 ? (['ari-client', 'lean'] as const) : (['lean', 'ari-client'] as const);
    for (const kind of ['get', 'set', 'list'] as const) {
      for (const who of order) {
        const t0 = performance.now();
        await calls[who][kind]();
        const ms = performance.now() - t0;
        if (i >= warmup) (times[`${who} ${kind}`] ??= []).push(ms);
      }
    }
  }
  await lean.globals.setGlobalVar({ variable, value: '' });
  lean.close();
  const rows = Object.entries(times).map(([name, xs]) => {
    const s = stats(xs);
    return { call: name, n: s.n, p50: round(s.p50, 3), p99: round(s.p99, 3), mean: round(s.mean, 3) };
  });
  rows.sort((a, b) => a.call.split(' ')[1].localeCompare(b.call.split(' ')[1]) || a.call.localeCompare(b.call));
  console.table(rows);
  process.exit(0);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
