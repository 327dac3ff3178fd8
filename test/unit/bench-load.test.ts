import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appFailures, asteriskFailures, mergeFailures, sippFailures, splitRate, whoFailedFirst } from '../../bench/load';
import { memoryRows } from '../../bench/report';

describe('bench load: the rate split over several SIPp instances', () => {
  it('at most 25 calls/s each, whole calls/s, the sum is the rate; never more than 8 instances', () => {
    expect(splitRate(5)).toEqual([5]);
    expect(splitRate(25)).toEqual([25]);
    expect(splitRate(30)).toEqual([15, 15]);
    expect(splitRate(130)).toEqual([22, 22, 22, 22, 21, 21]);
    expect(splitRate(200)).toEqual([25, 25, 25, 25, 25, 25, 25, 25]);
    const big = splitRate(260);
    expect(big).toHaveLength(8);
    expect(big.reduce((a, b) => a + b, 0)).toBe(260);
  });
});

describe('bench load: failures by source and who failed first', () => {
  it("reads SIPp's error log (its timestamps, Call-Ids left out of the kind) and its exit codes", () => {
    const errors = [
      'The following events occurred:',
      '2026-12-07\t04:49:44.954041\t1796618984.954041: Call-Id: 1-29042@127.0.0.1, receive timeout on message Basic Sipstone UAC:1 without label to jump to (ontimeout attribute): aborting call',
      '2026-12-07\t04:49:43.100000\t1796618983.100000: Call-Id: 7-29042@127.0.0.1, receive timeout on message Basic Sipstone UAC:1 without label to jump to (ontimeout attribute): aborting call',
    ].join('\n');
    const f = sippFailures([{ errors, code: 1, killed: false }, { errors: '', code: 255, killed: false }], 2);
    expect(f.count).toBe(2);
    expect(f.kinds[0]).toEqual(['receive timeout on message Basic Sipstone UAC:N without label to jump to (ontimeout attribute): aborting call', 2]);
    expect(f.kinds).toContainEqual(['exit 255', 1]);
    expect(new Date(f.firstAt as number).toISOString().slice(11, 23)).toBe(new Date(Date.parse('2026-12-07T04:49:43.100')).toISOString().slice(11, 23));
  });

  it("counts the app's error and warning lines by event, with the first one's time; Asterisk's failures the app saw go to Asterisk", () => {
    const { app, asterisk } = appFailures([
      { level: 'info', event: 'offer.opted_in', timestamp: '2026-12-07T04:50:00.000Z' },
      { level: 'warn', event: 'offer.store_failed', error: 'SQLITE_BUSY: database is locked', timestamp: '2026-12-07T04:50:02.000Z' },
      { level: 'error', event: 'offer.prompt_failed', media: 'sound:cc-confirm', timestamp: '2026-12-07T04:50:01.500Z' },
      { level: 'warn', event: 'offer.store_failed', error: 'SQLITE_BUSY: database is locked', timestamp: '2026-12-07T04:50:03.000Z' },
      { level: 'warn', event: 'offer.call_failed', error: 'POST /channels/x/answer: no answer within 5000 ms', timestamp: '2026-12-07T04:50:04.000Z' },
    ]);
    expect(app.count).toBe(2);
    expect(app.kinds[0]).toEqual(['warn: offer.store_failed (SQLITE_BUSY: database is locked)', 2]);
    expect(app.firstAt).toBe(Date.parse('2026-12-07T04:50:02.000Z'));
    expect(asterisk.count).toBe(2);
    expect(asterisk.kinds.map(([k]) => k)).toEqual(['seen by the app, error: offer.prompt_failed (sound:cc-confirm: Asterisk ended the playback as failed)', 'seen by the app, warn: offer.call_failed (POST /channels/x/answer: no answer within N ms)']);
    expect(asterisk.firstAt).toBe(Date.parse('2026-12-07T04:50:01.500Z'));
    // Asterisk's answers coming too late, as the app reports them: Asterisk's, not the app's own failure
    const late = appFailures([
      { level: 'warn', event: 'ari.stray_answer', kind: 'late', why: 'its request had already failed', timestamp: '2026-12-07T04:50:06.000Z' },
      { level: 'warn', event: 'ari.rest_transport', transport: 'http', reason: 'no answer within 5000 ms', timestamp: '2026-12-07T04:50:07.000Z' },
      { level: 'warn', event: 'ari.stray_answer', kind: 'unknown', why: 'no request with this id', timestamp: '2026-12-07T04:50:08.000Z' },
    ]);
    expect(late.asterisk.count).toBe(2);
    expect(late.app.count).toBe(1);
    expect(late.app.kinds[0][0]).toBe('warn: ari.stray_answer');
    const merged = mergeFailures({ count: 1, kinds: [['ERROR: x', 1]], firstAt: Date.parse('2026-12-07T04:50:05.000Z') }, asterisk);
    expect(merged.count).toBe(3);
    expect(merged.firstAt).toBe(Date.parse('2026-12-07T04:50:01.500Z'));
  });

  it("reads Asterisk's ERROR lines and task-processor warnings from where the step began, not other warnings", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-load-'));
    const file = path.join(dir, 'asterisk.log');
    const before = '[2026-12-07 04:40:00.000] ERROR[1][C-1]: res_rtp_asterisk.c:1 rtp_allocate: from an earlier step\n';
    fs.writeFileSync(
      file,
      before +
        "[2026-12-07 04:50:01.250] WARNING[2][C-2]: func_pjsip_endpoint.c:115 pjsip_endpoint_function_read: Failed to retrieve information for endpoint 'b1'\n" +
        "[2026-12-07 04:50:02.000] WARNING[3]: taskprocessor.c:1160 taskprocessor_push: The 'stasis/m:channel:all-0000001' task processor queue reached 500 scheduled tasks.\n" +
        '[2026-12-07 04:50:03.000] ERROR[4][C-3]: res_rtp_asterisk.c:4012 ast_rtp_new: Oh dear... we could not allocate a port for RTP instance\n',
    );
    try {
      const f = asteriskFailures(file, Buffer.byteLength(before));
      expect(f.count).toBe(2);
      expect(f.kinds.map(([k]) => k)).toEqual([
        "WARNING: The 'stasis/m:channel:all-N' task processor queue reached N scheduled tasks.",
        'ERROR: Oh dear... we could not allocate a port for RTP instance',
      ]);
      expect(f.firstAt).toBe(Date.parse('2026-12-07T04:50:02.000'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the source whose first failure came earliest; one without a time comes last', () => {
    const none = { count: 0, kinds: [] };
    expect(whoFailedFirst({ SIPp: none, 'the app': none, Asterisk: none, media: none })).toBeUndefined();
    const first = whoFailedFirst({
      SIPp: { count: 3, kinds: [['receive timeout', 3]], firstAt: Date.parse('2026-12-07T04:50:05Z') },
      'the app': { count: 1, kinds: [['warn: ari.lease_renewal_failed', 1]], firstAt: Date.parse('2026-12-07T04:50:01Z') },
      Asterisk: { count: 2, kinds: [['ERROR: x', 2]], firstAt: Date.parse('2026-12-07T04:50:03Z') },
      media: { count: 4, kinds: [['offers that ended without the #', 4]] },
    });
    expect(first).toEqual({ who: 'the app', at: '2026-12-07T04:50:01.000Z', what: 'warn: ari.lease_renewal_failed' });
    expect(whoFailedFirst({ SIPp: { count: 1, kinds: [] }, 'the app': none, Asterisk: none, media: { count: 1, kinds: [], firstAt: 5 } })?.who).toBe('media');
  });
});

describe('bench report: the sustained load', () => {
  const step = (rate: number, extra: Record<string, unknown> = {}) => ({
    rate,
    seconds: 15,
    calls: rate * 15,
    sippInstances: rate > 25 ? [rate / 2, rate / 2] : [rate],
    successful: rate * 15,
    failed: 0,
    stored: rate * 15,
    cpuPerCallMs: { app: 5, asterisk: 20 },
    cpuBusyFraction: { app: 0.1, asterisk: 0.4 },
    cpuPerConcurrentCallMsPerS: { app: 1, asterisk: 4 },
    machineBusyCores: 1.2,
    memory: { peakChannels: 100, rssMiB: { app: { before: 100, peak: 110 }, asterisk: { before: 150, peak: 170 } }, kibPerConcurrentCall: { app: 200, asterisk: 400 } },
    failures: { SIPp: { count: 0, kinds: [] }, 'the app': { count: 0, kinds: [] }, Asterisk: { count: 0, kinds: [] }, media: { count: 0, kinds: [] } },
    ...extra,
  });
  const load = {
    steps: [
      step(20),
      step(50, {
        successful: 740,
        failed: 10,
        note: 'Asterisk failed first',
        failures: {
          SIPp: { count: 10, kinds: [['receive timeout', 10]] },
          'the app': { count: 0, kinds: [] },
          Asterisk: { count: 5, kinds: [['ERROR: no RTP port', 5]] },
          media: { count: 0, kinds: [] },
        },
        failedFirst: { who: 'Asterisk', at: '2026-12-07T04:50:03.000Z', what: 'ERROR: no RTP port' },
      }),
    ],
    highestClean: 20,
    breaksAt: 50,
    failedFirst: { who: 'Asterisk', at: '2026-12-07T04:50:03.000Z', what: 'ERROR: no RTP port' },
    sipp: { perInstance: 25, max: 8 },
    rtp: { range: { start: 30000, end: 33999 }, ports: 4000, wanted: 1000, maxRate: 50, holdSeconds: 10 },
  };

  it('says how the load was made, what failed first and the CPU per call of both; a table of failures by source', () => {
    const rows = memoryRows(load).join('\n');
    expect(rows).toContain('several SIPp instances (one per 25 calls/s, up to 8');
    expect(rows).toContain('the sandbox had 4000 (30000-33999), for 1000 wanted (the highest rate, 50 calls/s, × 10 s × 2)');
    expect(rows).not.toContain('cores were all busy');
    const busy = memoryRows({ ...load, steps: [load.steps[0], { ...load.steps[1], machineBusyCores: 1.95 }] }, 2).join('\n');
    expect(busy).toContain("The machine's 2 cores were all busy at that step (1.95 on average");
    expect(rows).toContain('**Finding:** the first failing step was 50 calls/s; who failed first: Asterisk');
    expect(rows).toContain('At the highest clean step (20 calls/s) the app used 0.1 cores and Asterisk 0.4');
    expect(rows).toContain('| 50 | 10 (10× receive timeout) / 0 / 5 (5× ERROR: no RTP port) / 0 | Asterisk at 04:50:03.000 |');
    expect(rows).toContain('| 20 | 1 (20/s) | 100 | 0.1 / 0.4 / 1.2 | 110 / 170 | 200 / 400 | 1 / 4 | 5 ms / 20 ms (0.25) |');
  });

  it('an older results file (one SIPp, no failures by source) still renders', () => {
    const old = { steps: [{ rate: 5, seconds: 15, calls: 75, successful: 75, failed: 0, memory: { peakChannels: 10, rssMiB: { app: { peak: 1 }, asterisk: { peak: 2 } } }, cpuPerCallMs: { app: 1, asterisk: 2 } }], highestClean: 5 };
    const rows = memoryRows(old).join('\n');
    expect(rows).toContain('This run predates the several-SIPp load');
    expect(rows).toContain('no step failed up to 5 calls/s');
  });
});
