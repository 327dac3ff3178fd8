/**
 * `considerate-callback pause|resume`: the built binary against a real SQLite store in a temp dir, and the engine
 * (a running service's) reading what the command wrote: the lamp's listener hears it and a due recall waits.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { CallbackRequest } from '../../src/core/policy';
import { SqliteStore } from '../../src/store/sqlite';
import { buildCliIfStale, CLI_BIN } from '../../testkit/cli';
import { engineWorld } from '../../testkit/engine';
import { pauseAgent, pauseUntil, MAX_PAUSE_MS } from '../../src/views/pauses';
import { InputError } from '../../src/views/errors';

const BIN = CLI_BIN;


beforeAll(buildCliIfStale, 120_000);

let tmp: string;
let file: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-cli-pause-'));
  file = path.join(tmp, 'callbacks.db');
  SqliteStore.open<CallbackRequest>(file).close();
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TZ: 'UTC', CC_STORE_PATH: file };
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function storedPauses() {
  const store = SqliteStore.open<CallbackRequest>(file);
  try {
    return await store.pauses();
  } finally {
    await store.close();
  }
}

describe('pause and resume from the command line', () => {
  it('pause until resumed: stored with who did it, shown by list; resume removes it', async () => {
    const before = Date.now();
    const r = cli(['pause', 'PJSIP/1001', '--by', 'alice']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Paused: PJSIP\/1001 paused by cli \(alice\) since \d\d:\d\d:\d\d, until resumed/m);
    const rows = await storedPauses();
    expect(rows).toEqual([{ agent: 'PJSIP/1001', since: expect.any(Number), until: null, by: 'cli (alice)' }]);
    expect(rows[0].since).toBeGreaterThanOrEqual(before);
    expect(cli(['list']).stdout).toMatch(/^Paused: PJSIP\/1001 paused by cli \(alice\)/m);

    const j = cli(['resume', 'PJSIP/1001', '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ agent: 'PJSIP/1001', paused: false, wasPaused: true });
    expect(await storedPauses()).toEqual([]);
    expect(cli(['list']).stdout).not.toContain('Paused:');
    // Resuming who is not paused is not an error.
    const again = cli(['resume', 'PJSIP/1001']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/was not paused/);
  });

  it('--until a duration or an ISO time: stored as that instant', async () => {
    const before = Date.now();
    const d = cli(['pause', 'PJSIP/1002', '--until', '45m', '--json']);
    expect(d.code).toBe(0);
    const out = JSON.parse(d.stdout) as { until: string; by: string };
    expect(out.by).toBe('cli');
    const until = Date.parse(out.until);
    expect(until).toBeGreaterThanOrEqual(before + 45 * 60_000);
    expect(until).toBeLessThan(before + 46 * 60_000);
    const at = new Date(Date.now() + 3_600_000).toISOString();
    expect(cli(['pause', 'PJSIP/1003', '--until', at]).code).toBe(0);
    const rows = await storedPauses();
    expect(rows.find((p) => p.agent === 'PJSIP/1002')?.until).toBe(until);
    expect(rows.find((p) => p.agent === 'PJSIP/1003')?.until).toBe(Date.parse(at));
  });

  it.each([
    [['pause', 'not-a-device'], /agent: expected a device such as PJSIP\/1001/],
    [['pause', 'PJSIP/10;01'], /agent: expected a device/],
    [['resume', 'PJSIP/'], /agent: expected a device/],
    [['pause', 'PJSIP/1001', '--until', '2000-01-01T00:00:00Z'], /until: must lie ahead/],
    [['pause', 'PJSIP/1001', '--until', '0s'], /until: must lie ahead/],
    [['pause', 'PJSIP/1001', '--until', '25h'], /until: at most 24 hours ahead/],
    [['pause', 'PJSIP/1001', '--until', 'soon'], /until: expected an ISO time .* or a duration/],
    [['pause', 'PJSIP/1001', '--until', `${'9'.repeat(41)}`], /until: expected/],
  ])('refuses %j with exit code 2 and a line naming what was wrong; nothing stored', async (args, message) => {
    const r = cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(await storedPauses()).toEqual([]);
  });

  it('no agent is a usage error (2); a store that cannot be opened is 3', () => {
    expect(cli(['pause']).code).toBe(2);
    const r = spawnSync(process.execPath, [BIN, 'pause', 'PJSIP/1001'], { cwd: tmp, env: { PATH: process.env.PATH, CC_STORE_PATH: path.join(tmp, 'no/such/dir/x.db') }, encoding: 'utf8' });
    expect(r.status).toBe(3);
  });

  it('--help has examples', () => {
    for (const c of ['pause', 'resume']) {
      const r = cli([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Examples:');
    }
  });
});

describe('a running engine notices a pause the command line wrote', () => {
  let world: Awaited<ReturnType<typeof engineWorld>> | undefined;
  it('the watch re-reads it: the listener (the lamp) hears it, a due recall waits as agent-paused; resume lets it ring', async () => {
    const store = SqliteStore.open<CallbackRequest>(file);
    let now = Date.parse('2026-03-10T09:00:00Z'); // a Tuesday, 10:00 in Berlin: within the default calling hours
    const w = (world = await engineWorld({ store, policy: loadConfig({ env: {}, partial: true }).policy, clock: () => now, prospectDevice: (n) => `PJSIP/${n}`, pauseWatchMs: 0 }));
    const told: [string, boolean][] = [];
    w.engine.pauses.onChange((agent, p) => told.push([agent, p !== null]));
    const r = await w.engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'Agent', number: '1001' }, prospect: '2001', language: 'en', channelId: 'ch-1' });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    await w.engine.deviceState('PJSIP/2001', { busy: false });

    expect(cli(['pause', 'PJSIP/1001', '--by', 'ops']).code).toBe(0);
    await w.engine.pauses.reread(); // one look of the watch (every pauseWatchMs in the service)
    expect(told).toEqual([['PJSIP/1001', true]]);
    expect(w.engine.pauses.pauseOf('PJSIP/1001')).not.toBeNull();

    // The grace ends: the recall is due but waits for the paused agent; nothing rings.
    now += 6 * 60_000;
    await w.engine.tick();
    const held = (await store.get(r.requestId))!.request;
    expect(held.waitingFor).toBe('agent-paused');
    expect(w.dispatched.filter((d) => d.action.type === 'ringAgent')).toEqual([]);

    expect(cli(['resume', 'PJSIP/1001']).code).toBe(0);
    await w.engine.pauses.reread();
    expect(told).toEqual([['PJSIP/1001', true], ['PJSIP/1001', false]]);
    expect(w.dispatched.filter((d) => d.action.type === 'ringAgent').map((d) => d.requestId)).toEqual([r.requestId]);
  });
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });
});

describe('the shared validation (src/views/pauses.ts)', () => {
  const T = Date.parse('2026-03-10T09:00:00Z');
  it('agent and until, as the page and the command line check them', () => {
    expect(pauseAgent(' PJSIP/1001 ')).toBe('PJSIP/1001');
    expect(() => pauseAgent(42)).toThrow(InputError);
    expect(pauseUntil(undefined, T)).toBeNull();
    expect(pauseUntil('', T)).toBeNull();
    expect(pauseUntil('2026-03-10T10:00:00Z', T)).toBe(T + 3_600_000);
    expect(() => pauseUntil('30m', T)).toThrow(/ISO time/); // the page takes times only
    expect(pauseUntil('30m', T, { durations: true })).toBe(T + 30 * 60_000);
    expect(pauseUntil('1h30m', T, { durations: true })).toBe(T + 90 * 60_000);
    expect(() => pauseUntil('2026-03-10T09:00:00Z', T)).toThrow(/ahead/);
    expect(() => pauseUntil(new Date(T + MAX_PAUSE_MS + 1).toISOString(), T)).toThrow(/at most 24 hours/);
    expect(() => pauseUntil(5, T)).toThrow(InputError);
  });
});
