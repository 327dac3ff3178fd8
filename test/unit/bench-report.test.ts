import { ceilingWhy, dtmfRows, renderMarkdown, schedulerRows } from '../../bench/report';

const st = (p50: number, extra: Record<string, unknown> = {}) => ({ n: 30, p50, p95: p50 + 1, p99: p50 + 2, max: p50 + 3, mean: p50, ...extra });
const dtmfOf = (e2e: number, inApp: number, commit: number, errors = 0) => ({ ...st(e2e), errors, firstError: errors ? 'no commit seen' : undefined, inApp: st(inApp), commit: st(commit) });

const offer = {
  concurrency: 10,
  dtmf: {
    sequential: dtmfOf(11, 3, 1),
    concurrent: dtmfOf(12, 4, 2),
    serviceEventLoopLateMs: { p50: 10, p99: 11, max: 12 },
    postgres: {
      sequential: dtmfOf(21, 6, 5),
      concurrent: dtmfOf(22, 30, 25, 2),
      serviceEventLoopLateMs: { p50: 13, p99: 14, max: 15 },
    },
  },
};

/** The cells of a Markdown table row. */
const cells = (row: string) => row.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, ''));

describe('bench report: # → durable on SQLite and PostgreSQL side by side', () => {
  it('per mode: in-app on each backend, then end to end on each backend, each row labelled with its backend', () => {
    const rows = dtmfRows(offer);
    expect(rows).toHaveLength(9);
    const measures = rows.map((r) => cells(r)[0]);
    expect(measures.slice(0, 4)).toEqual([
      '`#` → durable in the app (DTMF event received → the group durable: its COMMIT with its sync), SQLite, 30 opt-ins one after the other',
      '`#` → durable in the app (DTMF event received → the group durable: its COMMIT with its sync), PostgreSQL, 30 opt-ins one after the other',
      "`#` → durable end to end (Asterisk's DTMF timestamp → commit done), SQLite, 30 opt-ins one after the other",
      "`#` → durable end to end (Asterisk's DTMF timestamp → commit done), PostgreSQL, 30 opt-ins one after the other",
    ]);
    expect(measures[5]).toBe('`#` → durable in the app (DTMF event received → the group durable: its COMMIT with its sync), PostgreSQL, 30 opt-ins, 10 concurrent originators');
    // the figures are each backend's own
    expect(cells(rows[2])[1]).toBe('p50 11 ms, p95 12 ms, p99 13 ms, max 14 ms');
    expect(cells(rows[3])[1]).toBe('p50 21 ms, p95 22 ms, p99 23 ms, max 24 ms');
    expect(cells(rows[1])[1]).toBe('p50 6 ms, p99 8 ms, max 9 ms; the commit itself p50 5 ms, p99 7 ms');
    // targets: met on SQLite; PostgreSQL concurrent misses p99 < 20 ms and had failures, which the row names
    expect(cells(rows[4])[3]).toBe('met');
    expect(cells(rows[5])[1]).toContain('2 failed: no commit seen');
    expect(cells(rows[5])[3]).toBe('**not met**');
    expect(rows[8]).toContain('`#` runs on SQLite; `#` runs on PostgreSQL) | –; p50 10 ms, p99 11 ms, max 12 ms; p50 13 ms, p99 14 ms, max 15 ms |');
  });

  it('a results file from before the PostgreSQL run: the SQLite rows only, unchanged in wording', () => {
    const { postgres: _pg, ...sqliteOnly } = offer.dtmf;
    const rows = dtmfRows({ ...offer, dtmf: sqliteOnly });
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => !r.includes('PostgreSQL'))).toBe(true);
    expect(rows[4]).toContain('(latency runs; `#` runs on SQLite)');
  });
});

describe('bench report: scheduler start-up and memory on SQLite and PostgreSQL side by side', () => {
  const sqlite = { n: 100000, measuredIn: 'fresh process', rssBaseMiB: 60, rssAfterStartMiB: 80, rssAfterGcMiB: 70, heapAfterGcMiB: 9, startMs: 300, devicesToWatchMs: 20, pendingMs: 30, nextWakeMs: 0.05, deviceStateMs: 1, deviceStateAgentMs: 0 };
  const postgres = { n: 100000, measuredIn: 'fresh process', rssBeforeStartMiB: 55, rssAfterStartMiB: 160, rssAfterGcMiB: 58, heapAfterGcMiB: 8, startMs: 400, devicesToWatchMs: 25, pendingMs: 35, nextWakeMs: 0.6, deviceStateMs: 2, deviceStateAgentMs: 0 };

  it('RSS, start-up and presence rows for each backend, adjacent, with where they were measured', () => {
    const rows = schedulerRows(sqlite, postgres);
    expect(rows.map((r) => cells(r)[0])).toEqual([
      'scheduler: RSS with 100000 pending after Engine.start, SQLite (measured in a fresh process)',
      'scheduler: RSS with 100000 pending after Engine.start, PostgreSQL (measured in a fresh process)',
      'scheduler: start-up reload (Engine.start) with 100000 pending, SQLite',
      'scheduler: start-up reload (Engine.start) with 100000 pending, PostgreSQL',
      'scheduler: one presence event (deviceState), SQLite',
      'scheduler: one presence event (deviceState), PostgreSQL',
    ]);
    expect(cells(rows[0])[1]).toBe('80 MiB (before start: 60 MiB; after GC 70 MiB, heap 9 MiB)');
    expect(cells(rows[0])[3]).toBe('met');
    expect(cells(rows[1])[1]).toBe('160 MiB (before start: 55 MiB; after GC 58 MiB, heap 8 MiB)');
    expect(cells(rows[1])[3]).toBe('**not met**');
    expect(cells(rows[3])[1]).toBe('400 ms (devicesToWatch 25 ms, pending count 35 ms, nextWake 0.6 ms)');
  });

  it('figures of an older results file (measured in the filling process, fewer fields) say so and render what they have', () => {
    const old = { n: 100000, startMs: 500, rssAfterStartMiB: 120, rssBeforeStartMiB: 110, rssAfterGcMiB: 100, nextWakeMs: 1 };
    const rows = schedulerRows(undefined, old);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('PostgreSQL (measured in the filling process)');
    expect(cells(rows[1])[1]).toBe('500 ms (nextWake 1 ms)');
    expect(schedulerRows(undefined, undefined)).toEqual([]);
  });

  it('renderMarkdown puts both in one table, and no PostgreSQL scheduler row is left in the PostgreSQL block', () => {
    const md = renderMarkdown({
      startedAt: 'now',
      machine: { nproc: 2, cpu: 'x', memoryGiB: 1, node: 'v20', platform: 'Linux' },
      offer,
      scheduler: { ...sqlite, claim: { perSecond: 1, decisions: 1, ms: 1, lost: 0 }, drift: { fired: 1, expected: 1, p50: 1, p99: 1, max: 1 } },
      postgres: {
        durableMs: { sqlite: st(1), postgres: st(2) },
        claim: { sqlite: { perSecond: 1 }, postgres: { perSecond: 1 } },
        takeOver: { ttlMs: 3000, renewEveryMs: 1000, p50: 1, max: 1, n: 5 },
        scale: postgres,
      },
    });
    const rows = md.split('\n').filter((l) => l.startsWith('| '));
    expect(rows.filter((r) => r.includes('scheduler: RSS'))).toHaveLength(2);
    expect(rows.filter((r) => r.includes('durable end to end'))).toHaveLength(4);
    expect(md).not.toContain('scheduler on PostgreSQL');
    // every row has the table's four columns
    for (const r of rows) expect(r.split('|')).toHaveLength(6);
  });
});

describe('bench report: no PostgreSQL on the machine', () => {
  it('the SQLite rows stay, and one row says why PostgreSQL was not measured', () => {
    const rows = dtmfRows({ ...offer, dtmf: { ...offer.dtmf, postgres: { error: 'no PostgreSQL: scripts/pg.sh up, exit 3' } } });
    expect(rows.filter((r) => r.includes(', SQLite, '))).toHaveLength(4);
    expect(rows.filter((r) => r.includes('PostgreSQL'))).toEqual(['| `#` → durable, PostgreSQL | not measured: no PostgreSQL: scripts/pg.sh up, exit 3 | | |']);
  });
});

describe("bench report: the app's own ceiling against the simulated PBX", () => {
  const step = (rate: number, extra: Record<string, unknown> = {}) => ({
    rate,
    offered: rate * 10,
    offeredRate: rate,
    confirmed: rate * 10,
    confirmedRate: rate,
    peakConcurrent: rate * 4,
    drained: true,
    cpu: { appCores: 0.4, appCoresWhileOffered: 0.5, appMsPerOfferedCall: 4, appMsPerSecondPerConcurrentCall: 1, simulatorCores: 0.2, simulatorMsPerOfferedCall: 1.5, machineBusyCores: 1 },
    memory: { rssMiB: { before: 130, peak: 150 }, kibPerConcurrentCall: 40 },
    eventLoopLateMs: { app: { p50: 0.2, p99: 20, max: 40 }, simulator: { p50: 0.1, p99: 3, max: 9 } },
    optInMs: st(8),
    keyToDurableInAppMs: st(3),
    ...extra,
  });
  const load = { steps: [{ rate: 50, cpuPerCallMs: { app: 9, asterisk: 27 } }, { rate: 80, note: 'Asterisk failed first', cpuPerCallMs: { app: 7, asterisk: 34 } }] };
  const ceiling = {
    capture: { asterisk: '22.10.1', recordedAt: '2026-12-07T08:04:00Z', script: ['StasisStart (arrival)'] },
    bounds: { confirmMs: 1000, eventLoopP99Ms: 100 },
    keyAfterMs: 1500,
    steps: [
      step(100),
      step(200, {
        confirmed: 900,
        cpu: { appCores: 0.7, appCoresWhileOffered: 0.97, appMsPerOfferedCall: 5, simulatorCores: 0.3, machineBusyCores: 1.5 },
        eventLoopLateMs: { app: { p50: 1, p99: 400, max: 900 }, simulator: { p50: 0.1, p99: 4, max: 9 } },
        failedFirst: { who: 'the app', what: 'opt-in not confirmed in time: …' },
      }),
    ],
    highestClean: 100,
    breaksAt: 200,
    failedFirst: { who: 'the app', what: 'opt-in not confirmed in time: …' },
  };

  it('names the highest clean step, who failed first and why from the service\'s own signals (its CPU, its event loop)', () => {
    const text = renderMarkdown({ machine: { nproc: 2, cpu: 'x', memoryGiB: 1, node: 'v20', platform: 'Linux' }, startedAt: 'now', ceiling, load });
    expect(text).toContain("### The app's own ceiling: the service against a simulated PBX");
    expect(text).toContain('**No SIP, no media, no dialplan**');
    expect(text).toContain('the highest clean step was 100 calls/s; the first failing step was 200 calls/s, where the app failed first');
    expect(text).toContain('the service used 0.97 cores while the calls were offered');
    expect(text).toContain('late by p99 400 ms');
    expect(text).toContain("only a run on a machine with little else to do is committed");
    // the app's CPU per offered call beside the real Asterisk's from the load part's highest clean step (50/s)
    expect(text).toContain('| the app here beside the real Asterisk there | 4 ms | 27 ms | 0.15 |');
    expect(text).toMatch(/\| the app's own ceiling, against a simulated PBX .* \| 100 calls\/s \(breaks at 200\/s; failed first: the app: /);
  });

  it("names the largest part of the opt-in's time at the failing step (the request out to the PBX here)", () => {
    const failing = { ...ceiling.steps[1], optInSplitMs: { eventIn: st(3), inApp: st(9), requestOut: st(700) }, optInMs: st(720), simulator: { peakConnections: 17 } };
    const why = ceilingWhy(failing, 2);
    expect(why).toContain('the confirmation\'s request out p99 702 ms');
    expect(why).toContain('most of the time the confirmation\'s request spent on its way out of the service');
    expect(why).toContain('its REST client had all its sockets to the PBX busy (16 open at the peak');
    expect(ceilingWhy({ ...failing, simulator: { peakConnections: 5 } }, 2)).toContain('4 REST sockets open at the peak, fewer than its agent');
    const inbound = ceilingWhy({ ...failing, optInSplitMs: { eventIn: st(700), inApp: st(9), requestOut: st(3) } }, 2);
    expect(inbound).toContain("most of the time the `#` event spent before the service's flow had it");
  });

  it('says so when the simulator, not the app, failed first', () => {
    const sim = { ...ceiling, failedFirst: { who: 'the simulator', what: 'its event loop late: …' }, steps: [ceiling.steps[0], { ...ceiling.steps[1], failedFirst: { who: 'the simulator', what: 'its event loop late: …' } }] };
    const text = renderMarkdown({ machine: { nproc: 2, cpu: 'x', memoryGiB: 1, node: 'v20', platform: 'Linux' }, startedAt: 'now', ceiling: sim, load });
    expect(text).toContain("That is the limit of the instrument, not of the app: the app's ceiling lies above it.");
  });
});
