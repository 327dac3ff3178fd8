/** The Markdown table of bench-results/latest.md (also printed by `npm run bench`) and the generated docs/performance.md. */
/* eslint-disable @typescript-eslint/no-explicit-any */

function f(x: unknown, unit = ''): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  const v = Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 100) / 100;
  return `${v}${unit}`;
}

function ok(pass: boolean | undefined): string {
  return pass === undefined ? '' : pass ? 'met' : '**not met**';
}

export function renderMarkdown(r: any): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(`# Benchmarks (${r.startedAt})`, '');
  const load = Array.isArray(m.loadAverage) ? `; load average at the start ${m.loadAverage.join(' / ')} (1 / 5 / 15 min)` : '';
  lines.push(`Machine: ${m.nproc} × ${m.cpu}, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.platform}${load}`, '');
  if (r.measuredAt) lines.push(`Measured: ${Object.entries(r.measuredAt).map(([k, at]) => `${k} ${at}`).join(', ')}.`, '');
  lines.push('| measure | figure | target | |', '| --- | --- | --- | --- |');
  const o = r.offer;
  if (o) {
    for (const mode of ['sequential', 'concurrent'] as const) {
      const x = o[mode];
      if (!x) continue;
      const label = (mode === 'sequential' ? `${x.app.n} calls one after the other` : `${x.app.n} calls, ${o.concurrency} concurrent originators`) + (o.design ? ', alternating with the other' : '');
      lines.push(`| offer latency, app (${label}) | p50 ${f(x.app.p50, ' ms')}, p95 ${f(x.app.p95, ' ms')}, p99 ${f(x.app.p99, ' ms')} | | |`);
      lines.push(`| offer latency, bare ari-client (${label}) | p50 ${f(x.bare.p50, ' ms')}, p95 ${f(x.bare.p95, ' ms')}, p99 ${f(x.bare.p99, ' ms')} | | |`);
      const ci = x.ratio.interval ? ` (95 % interval: p50 ${f(x.ratio.interval.p50[0])}–${f(x.ratio.interval.p50[1])}, p99 ${f(x.ratio.interval.p99[0])}–${f(x.ratio.interval.p99[1])})` : '';
      lines.push(`| offer latency ratio app/bare (${mode}) | p50 ${f(x.ratio.p50)}, p95 ${f(x.ratio.p95)}, p99 ${f(x.ratio.p99)}, mean ${f(x.ratio.mean)}${ci}; app − bare at p50: ${f(x.app.p50 - x.bare.p50, ' ms')} | ≤ 1.10 | ${ok(x.ratio.p50 <= 1.1 && x.ratio.p99 <= 1.1)} |`);
    }
    lines.push(...dtmfRows(o));
  }
  lines.push(...schedulerRows(r.scheduler, r.postgres?.scale));
  const s = r.scheduler;
  if (s) {
    lines.push(`| scheduler: claim rate (observe tick, fake clock) | ${f(s.claim.perSecond, '/s')} (${s.claim.decisions} decisions in ${f(s.claim.ms, ' ms')}, ${s.claim.lost} lost) | | |`);
    lines.push(`| scheduler: fire drift (real timer, ${s.drift.fired}/${s.drift.expected} fired; last wake-up ${f(s.drift.lastWakeAfterStartMs, ' ms')} after the start, window ${f(s.drift.windowMs, ' ms')}) | p50 ${f(s.drift.p50, ' ms')}, p99 ${f(s.drift.p99, ' ms')}, max ${f(s.drift.max, ' ms')} | p99 < 1 s | ${ok(s.drift.p99 < 1000 && s.drift.fired === s.drift.expected)} |`);
  }
  const l = r.load;
  if (l) {
    for (const step of l.steps) {
      const cpu = step.cpuPerCallMs;
      const cpuText = cpu && cpu.app !== undefined && cpu.asterisk !== undefined ? `; CPU per call: app ${f(cpu.app, ' ms')}, Asterisk ${f(cpu.asterisk, ' ms')} (app/Asterisk ${f(cpu.asterisk ? Math.round((cpu.app / cpu.asterisk) * 100) / 100 : NaN)})` : '';
      lines.push(`| sustained load ${step.rate} calls/s for ${step.seconds} s | ${step.successful}/${step.calls} ok, ${step.failed} failed; stored ${step.stored ?? '–'}${cpuText}${step.note ? `; ${step.note}` : ''} | | |`);
    }
    lines.push(`| sustained load: highest rate with 0 failed calls | ${l.highestClean ?? 'none'} calls/s${l.breaksAt ? ` (breaks at ${l.breaksAt}/s: ${l.breakReason})` : ''} | ≥ 20/s | ${ok((l.highestClean ?? 0) >= 20)} |`);
  }
  const pg = r.postgres;
  if (pg) {
    const d = pg.durableMs;
    lines.push(`| opt-in commit (createOrRefresh), SQLite | p50 ${f(d.sqlite.p50, ' ms')}, p99 ${f(d.sqlite.p99, ' ms')} | | |`);
    lines.push(`| opt-in commit (createOrRefresh), PostgreSQL (local, fsync on) | p50 ${f(d.postgres.p50, ' ms')}, p99 ${f(d.postgres.p99, ' ms')} | p99 < 20 ms | ${ok(d.postgres.p99 < 20)} |`);
    lines.push(`| claim rate (observe tick), SQLite / PostgreSQL | ${f(pg.claim.sqlite.perSecond, '/s')} / ${f(pg.claim.postgres.perSecond, '/s')} | | |`);
    lines.push(`| take-over (SIGKILL of the lease holder → stand-by's first action), TTL ${f(pg.takeOver.ttlMs, ' ms')}, tries every ${f(pg.takeOver.renewEveryMs, ' ms')} | p50 ${f(pg.takeOver.p50, ' ms')}, max ${f(pg.takeOver.max, ' ms')} (${pg.takeOver.n} runs) | ≤ TTL + TTL/3 | ${ok(pg.takeOver.max <= pg.takeOver.ttlMs * 1.34)} |`);
  }
  lines.push('');
  return lines.join('\n');
}

const BACKENDS = [
  ['SQLite', (d: any) => d],
  ['PostgreSQL', (d: any) => d?.postgres],
] as const;

/**
 * The `#` → durable rows of the offer bench, SQLite and PostgreSQL side by side: per mode, the in-app
 * figure on each backend, then the end-to-end figure on each backend; then the service's event loop.
 * A backend without figures (an older results file) has no rows.
 */
export function dtmfRows(o: any): string[] {
  const lines: string[] = [];
  for (const mode of ['sequential', 'concurrent'] as const) {
    const per = BACKENDS.map(([name, pick]) => [name, pick(o.dtmf)?.[mode]] as const).filter(([, d]) => d?.inApp);
    const label = (d: any) => (mode === 'sequential' ? `${d.n} opt-ins one after the other` : `${d.n} opt-ins, ${o.concurrency} concurrent originators`);
    for (const [name, d] of per) {
      lines.push(`| \`#\` → durable in the app (DTMF event received → commit done), ${name}, ${label(d)} | p50 ${f(d.inApp.p50, ' ms')}, p99 ${f(d.inApp.p99, ' ms')}, max ${f(d.inApp.max, ' ms')}; the commit itself p50 ${f(d.commit.p50, ' ms')}, p99 ${f(d.commit.p99, ' ms')}${d.errors ? `; ${d.errors} failed: ${d.firstError}` : ''} | p99 < 20 ms | ${ok(d.inApp.p99 < 20 && !d.errors)} |`);
    }
    for (const [name, d] of per) {
      lines.push(`| \`#\` → durable end to end (Asterisk's DTMF timestamp → commit done), ${name}, ${label(d)} | p50 ${f(d.p50, ' ms')}, p95 ${f(d.p95, ' ms')}, p99 ${f(d.p99, ' ms')}, max ${f(d.max, ' ms')} | | |`);
    }
  }
  if (o.dtmf?.postgres?.error) lines.push(`| \`#\` → durable, PostgreSQL | not measured: ${o.dtmf.postgres.error} | | |`);
  const late = (x: any) => (x ? `p50 ${f(x.p50, ' ms')}, p99 ${f(x.p99, ' ms')}, max ${f(x.max, ' ms')}` : '–');
  if (o.dtmf?.serviceEventLoopLateMs || o.serviceEventLoopLateMs || o.dtmf?.postgres?.serviceEventLoopLateMs) {
    const withPg = o.dtmf?.postgres && !o.dtmf.postgres.error;
    const pg = withPg ? `; ${late(o.dtmf.postgres.serviceEventLoopLateMs)}` : '';
    lines.push(`| the service's event loop, late by (latency runs; \`#\` runs on SQLite${withPg ? '; `#` runs on PostgreSQL' : ''}) | ${late(o.serviceEventLoopLateMs)}; ${late(o.dtmf?.serviceEventLoopLateMs)}${pg} | | |`);
  }
  return lines;
}

/**
 * The scheduler's start-up and memory with N pending, SQLite (bench/scheduler.ts: the results' top level)
 * and PostgreSQL (bench/pg.ts: `scale`) side by side. Both are measured in a fresh process that only opens
 * the filled store and starts the engine; figures from an older results file that were measured in the
 * filling process say so.
 */
export function schedulerRows(sqlite: any, postgres: any): string[] {
  const per = [
    ['SQLite', sqlite && { ...sqlite, rssBeforeStartMiB: sqlite.rssBeforeStartMiB ?? sqlite.rssBaseMiB }],
    ['PostgreSQL', postgres],
  ].filter(([, x]) => x) as Array<[string, any]>;
  const where = (x: any) => (x.measuredIn === 'fresh process' ? 'a fresh process' : 'the filling process');
  const lines: string[] = [];
  for (const [name, x] of per) {
    const heap = x.heapAfterGcMiB !== undefined ? `, heap ${f(x.heapAfterGcMiB, ' MiB')}` : '';
    lines.push(`| scheduler: RSS with ${x.n} pending after Engine.start, ${name} (measured in ${where(x)}) | ${f(x.rssAfterStartMiB, ' MiB')} (before start: ${f(x.rssBeforeStartMiB, ' MiB')}; after GC ${f(x.rssAfterGcMiB, ' MiB')}${heap}) | < 150 MB | ${ok(x.rssAfterStartMiB < 150)} |`);
  }
  for (const [name, x] of per) {
    const more = [
      x.devicesToWatchMs !== undefined ? `devicesToWatch ${f(x.devicesToWatchMs, ' ms')}` : undefined,
      x.pendingMs !== undefined ? `pending count ${f(x.pendingMs, ' ms')}` : undefined,
      `nextWake ${f(x.nextWakeMs, ' ms')}`,
    ].filter(Boolean);
    lines.push(`| scheduler: start-up reload (Engine.start) with ${x.n} pending, ${name} | ${f(x.startMs, ' ms')} (${more.join(', ')}) | | |`);
  }
  for (const [name, x] of per) {
    if (x.deviceStateMs === undefined) continue;
    lines.push(`| scheduler: one presence event (deviceState), ${name} | prospect line ${f(x.deviceStateMs, ' ms')} (reads that line's requests); agent device ${f(x.deviceStateAgentMs, ' ms')} | | |`);
  }
  return lines;
}

/**
 * docs/performance.md, generated from the committed results (bench/results.json) by `npm run bench:docs`;
 * test/unit/docs.test.ts keeps the page and the file in step. Not hand-edited.
 */
export function performancePage(r: any): string {
  const table = renderMarkdown(r).split('\n').slice(2).join('\n');
  return [
    '# Performance',
    '',
    '<!-- Generated by `npm run bench:docs` from bench/results.json; do not edit by hand. -->',
    '',
    '`npm run bench` (as root after `npm ci`; it starts the sandbox with `scripts/pbx.sh up` if needed, takes the sandbox',
    'lock (`$CC_SANDBOX_DIR/test.lock`) like the tests and the demo, and leaves the sandbox running) prints the table',
    'below and writes `bench-results/latest.json` and `latest.md` (not committed). `npm run bench -- --only scheduler`',
    '(or `postgres`, `offer`, `load`) runs one part; the others keep their last figures; `--calls 800` (offer, per target',
    'and mode; default 400) and `--rates 5,10,20` (load steps in calls/s) change the sizes. About 9 minutes in all. Not',
    'part of `npm test` or CI, and no test asserts a time.',
    '',
    'To publish a run: `npm run bench:docs -- --from bench-results/latest.json` copies it to `bench/results.json` and',
    'writes this page; commit both. The figures and findings recorded by hand before this page was generated are in',
    '[the performance log](performance-log.md).',
    '',
    `## The committed figures (${r.startedAt})`,
    '',
    ...caveats(r),
    table.trimEnd(),
    '',
  ].join('\n');
}

/** What a reader must know before comparing the figures: a busy machine, parts not measured in this file. */
function caveats(r: any): string[] {
  const out: string[] = [];
  const load = r.machine?.loadAverage?.[0];
  if (typeof load === 'number' && load > r.machine.nproc) {
    out.push(`**Measured on a busy machine** (load average ${load} on ${r.machine.nproc} cores at the start): not comparable with a run on a quiet machine; the last quiet figures are in [the performance log](performance-log.md).`, '');
  }
  const missing = ['scheduler', 'postgres', 'offer', 'load'].filter((k) => r[k] === undefined);
  if (missing.length > 0) out.push(`Not in this file: ${missing.join(', ')} (run \`npm run bench -- --only ${missing.join(',')}\`; the last figures are in [the performance log](performance-log.md)).`, '');
  return out;
}
