import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hiccupProbe, machineLoad, sqliteCommitProbe } from '../../bench/probe';
import { verdictRows } from '../../bench/report';

describe("bench probes: the machine's own floor beside the targets", () => {
  it("SQLite's own floor: n timed INSERT + COMMITs in a bare database, which it removes afterwards", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-probe-'));
    try {
      const s = sqliteCommitProbe(dir, 20);
      expect(s.n).toBe(20);
      expect(s.p50).toBeGreaterThan(0);
      expect(s.p99).toBeGreaterThanOrEqual(s.p50);
      expect(s.max).toBeGreaterThanOrEqual(s.p99);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the hiccup probe spins for the time asked and reports the share lost as a percentage', () => {
    const h = hiccupProbe(50);
    expect(h.spunMs).toBeGreaterThanOrEqual(50);
    expect(h.lostPct).toBeGreaterThanOrEqual(0);
    expect(h.lostPct).toBeLessThanOrEqual(100);
    expect(h.maxGapMs).toBeGreaterThanOrEqual(h.p99GapMs);
  });

  it('machineLoad reads the CPU steal from /proc/stat on Linux', () => {
    const end = machineLoad();
    hiccupProbe(200); // the clock ticks of /proc/stat are 10 ms: let some pass
    const m = end();
    expect(m.busyCores).toBeGreaterThanOrEqual(0);
    if (fs.existsSync('/proc/stat')) expect(Number.isNaN(m.stealPct)).toBe(false);
  });
});

describe('bench report: the floor rows beside the verdicts', () => {
  const across = (x: number) => ({ median: x, min: x, max: x, runs: [x, x, x] });
  const verdict = (extra: Record<string, unknown>) => ({
    concurrency: 10,
    runsOf: { callsPerRun: 10 },
    runs: [1, 2, 3].map((run) => ({ run, machine: { busyCores: 0.5, loadAverage1: 1 } })),
    verdict: {
      fsync: { p50: across(0.2), p99: across(1.3) },
      ratio: { sequential: { p50: across(1), p99: across(1), appMinusBareP50Ms: across(0) }, concurrent: { p50: across(1), p99: across(1), appMinusBareP50Ms: across(0) } },
      sqlite: { sequential: { inAppP50: across(2), inAppP99: across(4), writeCommitP99: across(3) } },
      ...extra,
    },
  });

  it("names SQLite's own floor and the machine's interruptions when the run measured them", () => {
    const rows = verdictRows(verdict({ sqliteCommit: { p50: across(0.5), p99: across(2.5) }, hiccups: { over1msPerS: across(3), maxGapMs: across(9), lostPct: across(1.5) }, stealPct: across(4) }));
    const floor = rows.find((r) => r.startsWith("| SQLite's own floor"));
    expect(floor).toContain('p50 0.5 ms (runs 0.5 / 0.5 / 0.5), p99 2.5 ms');
    const hiccups = rows.find((r) => r.startsWith('| the machine taking the CPU away'));
    expect(hiccups).toContain('3/s (runs 3 / 3 / 3); longest 9 ms');
    expect(hiccups).toContain('steal 4 %');
  });

  it('a results file from before the probes: no floor rows', () => {
    const rows = verdictRows(verdict({}));
    expect(rows.some((r) => r.includes("SQLite's own floor") || r.includes('taking the CPU away'))).toBe(false);
    expect(rows.some((r) => r.startsWith("| the disk's limit"))).toBe(true);
  });
});
