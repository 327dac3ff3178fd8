/**
 * The command line end to end: the built binary (dist/cli/main.js) is spawned, as an admin would run it.
 * Requests are made in a temporary store with the real Engine (fake clock, no telephony), so `show` and
 * `cancel` see exactly what the service would have written. No PBX needed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { CallbackRequest } from '../../src/core/policy';
import { SqliteStore } from '../../src/store/sqlite';
import { cancelOne } from '../../src/cli/requests';
import { buildCliIfStale, CLI_BIN } from '../../testkit/cli';
import { engineWorld } from '../../testkit/engine';
import { headsUpText, pauseText } from '../../src/views/requests';

const ROOT = path.join(__dirname, '../..');
const BIN = CLI_BIN;
const PASSWORD = 'p@ss:w/rd+%';


beforeAll(buildCliIfStale, 120_000);

let tmp: string;
beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-cli-'));
});
afterEach(async () => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Run {
  const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TZ: 'UTC' };
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, env: { ...clean, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, content: unknown): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return f;
}

/** 2026-03-10 (a Tuesday) 10:00 in Berlin (CET, UTC+1). */
const T0 = Date.parse('2026-03-10T09:00:00Z');
const MIN = 60_000;

/** A store with requests made by the real engine: PJSIP/1001 → 2001 (freed at 10:40), 1001 → 2002, 1002 → 2003. */
async function makeStore(): Promise<{ file: string; ids: Record<string, string> }> {
  const file = path.join(tmp, 'callbacks.db');
  const store = SqliteStore.open<CallbackRequest>(file);
  let now = T0;
  const { engine } = await engineWorld({ store, policy: loadConfig({ env: {}, partial: true }).policy, clock: () => now, prospectDevice: (n) => `PJSIP/${n}`, started: false, pbxUp: false });
  const ids: Record<string, string> = {};
  const optIn = async (agent: string, prospect: string) => {
    const r = await engine.optIn({ agent, agentCallerId: { name: 'Agent', number: agent.slice(-4) }, prospect, language: 'en', channelId: `ch-${prospect}` });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    ids[prospect] = r.requestId;
  };
  await optIn('PJSIP/1001', '2001');
  await optIn('PJSIP/1001', '2002');
  await optIn('PJSIP/1002', '2003');
  now = T0 + 40 * MIN;
  await engine.deviceState('PJSIP/2001', { busy: false });
  await store.close();
  return { file, ids };
}

describe('help and usage', () => {
  it.each([['run'], ['list'], ['show'], ['cancel'], ['config', 'check'], ['config', 'keys'], ['explain'], ['dialplan']])(
    '%s %s --help has examples and exits 0',
    (...cmd) => {
      const r = cli([...cmd.filter(Boolean), '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Examples:');
    },
  );

  it('documents the exit codes at the top level', async () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/0 ok · 1 runtime failure · 2 usage or configuration error · 3 the store cannot be opened\s+· 4 not found/);
  });

  it('an unknown command or option is a usage error (2) with a pointer to --help', async () => {
    const r = cli(['lsit']);
    expect(r.code).toBe(2);
    const o = cli(['list', '--colour']);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain('Unknown argument: colour');
    expect(o.stderr).toContain('See: considerate-callback list --help');
    expect(cli([]).code).toBe(2);
  });
});

describe('config', () => {
  it('config check prints the effective configuration with the ARI password masked (JSON file, YAML file, environment, flag)', async () => {
    const json = write('cc.json', { ari: { password: PASSWORD }, policy: { grace: '10m' } });
    const yaml = write('cc.yaml', `ari:\n  password: "${PASSWORD}"\npolicy:\n  grace: 10m\n`);
    const runs = [
      cli(['config', 'check', '-c', json]),
      cli(['config', 'check', '-c', yaml]),
      cli(['config', 'check', '-c', yaml, '--json']),
      cli(['config', 'check'], { CC_ARI_PASSWORD: PASSWORD }),
      cli(['config', 'check', '--json'], { CC_ARI_PASSWORD: PASSWORD, CC_ARI_URL: 'http://127.0.0.1:8088' }),
      cli(['config', 'check', '--set', `ari.password=${PASSWORD}`]),
    ];
    for (const r of runs) {
      expect(r.code).toBe(0);
      for (const form of [PASSWORD, encodeURIComponent(PASSWORD), 'p@ss', 'w/rd']) {
        expect(r.stdout).not.toContain(form);
        expect(r.stderr).not.toContain(form);
      }
      expect(r.stdout).toContain('********');
    }
    expect(runs[0].stdout).toMatch(/policy\.grace\s+"10m"\s+file/);
    expect(runs[0].stdout).toMatch(/ari\.password\s+"\*{8}"\s+file/);
    expect(runs[3].stdout).toMatch(/ari\.password\s+"\*{8}"\s+env CC_ARI_PASSWORD/);
    const parsed = JSON.parse(runs[2].stdout) as { ok: boolean; config: { ari: { password: string }; policy: { grace: string } }; sources: Record<string, string> };
    expect(parsed.ok).toBe(true);
    expect(parsed.config.ari.password).toBe('********');
    expect(parsed.config.policy.grace).toBe('10m');
    expect(parsed.sources['policy.grace']).toBe('file');
    expect(parsed.sources['policy.snooze']).toBe('default');
  });

  it('config check never echoes the password in its problems either', async () => {
    const f = write('cc.json', { ari: { password: PASSWORD, url: `http://considerate:${PASSWORD}@pbx:8088`, pasword: PASSWORD }, policy: { maxAttempts: 'three' } });
    const r = cli(['config', 'check', '-c', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ari.pasword: unknown key');
    expect(r.stderr).toContain('policy.maxAttempts: expected a whole number, got "three"');
    expect(r.stderr).toContain('ari.url: expected a URL such as http://127.0.0.1:8088, got "http://********@pbx:8088"');
    expect(r.stdout + r.stderr).not.toContain('p@ss');
    const wrongType = write('wrong.json', { ari: { password: 12345 } });
    const w = cli(['config', 'check', '-c', wrongType]);
    expect(w.code).toBe(2);
    expect(w.stderr).toContain('ari.password: expected a non-empty string, got a number');
    expect(w.stderr).not.toContain('12345');
    // A password written into another key is masked too.
    const elsewhere = cli(['config', 'check', '-c', write('elsewhere.json', { ari: { password: PASSWORD, username: [PASSWORD] } })]);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain('ari.username: expected a non-empty string, got ["********"]');
  });

  it('config check masks credentials in ari.url and tokens in webhook.url, in the table and in --json', async () => {
    const f = write('urls.json', { ari: { password: 'x1234', url: 'http://considerate:hunter22@pbx:8088' }, webhook: { url: 'https://crm.example/hook?token=tok-987&id=1' } });
    for (const args of [['config', 'check', '-c', f], ['config', 'check', '-c', f, '--json']]) {
      const r = cli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('http://********@pbx:8088');
      expect(r.stdout).toContain('https://crm.example/hook?token=********&id=1');
      expect(r.stdout + r.stderr).not.toMatch(/hunter22|tok-987/);
    }
  });

  it('names an unknown key, suggests the right one, and exits 2', async () => {
    const f = write('cc.json', { ari: { password: 'x' }, policy: { gracee: '5m' } });
    const r = cli(['config', 'check', '-c', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/policy\.gracee: unknown key .*did you mean policy\.grace\?/);
    expect(r.stdout).toBe('');
  });

  it('names a wrong type or value with what is expected', async () => {
    const f = write('cc.yaml', 'ari:\n  password: x\npolicy:\n  grace: 5 minutes\n  maxAttempts: 0\nlog:\n  level: loud\n');
    const r = cli(['config', 'check', '-c', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('policy.grace: expected a duration such as "30s", "5m" or "1h30m", got "5 minutes"');
    expect(r.stderr).toContain('policy.maxAttempts: expected a whole number from 1 to 20, got 0');
    expect(r.stderr).toContain('log.level: expected one of error, warn, info, debug, got "loud"');
    const j = cli(['config', 'check', '-c', f, '--json']);
    expect(j.code).toBe(2);
    expect((JSON.parse(j.stdout) as { ok: boolean; problems: string[] }).problems).toHaveLength(3);
  });

  it('refuses broken YAML and JSON with the line, without echoing the file', async () => {
    const y = cli(['config', 'check', '-c', write('cc.yaml', `ari:\n  password: "${PASSWORD}"\n  url: [oops\npolicy:\n  grace: 5m\n`)]);
    expect(y.code).toBe(2);
    expect(y.stderr).toMatch(/cc\.yaml is not valid YAML: .*line \d+, column \d+/);
    expect(y.stderr).not.toContain('p@ss');
    const j = cli(['list', '-c', write('cc.json', `{ "ari": { "password": "${PASSWORD}", } }`)]);
    expect(j.code).toBe(2);
    expect(j.stderr).toMatch(/cc\.json is not valid JSON: .*line 1 column \d+/);
    expect(j.stderr).not.toContain('p@ss');
    const notObject = cli(['config', 'check', '-c', write('list.yaml', '- a\n- b\n')]);
    expect(notObject.code).toBe(2);
    expect(notObject.stderr).toContain('must contain a YAML mapping');
    const missing = cli(['config', 'check', '-c', path.join(tmp, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
  });

  it('requires the ARI password for config check, not for list', async () => {
    const r = cli(['config', 'check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ari.password: required (set it in the file or with CC_ARI_PASSWORD)');
  });

  it('--set overrides file and environment; a bad --set is a usage error', async () => {
    const f = write('cc.json', { ari: { password: 'x' }, policy: { grace: '10m' } });
    const r = cli(['config', 'check', '-c', f, '--set', 'policy.grace=2m', '--set', 'log.level=debug', '--json'], { CC_LOG_LEVEL: 'warn' });
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout) as { config: { policy: { grace: string }; log: { level: string } }; sources: Record<string, string> };
    expect(parsed.config.policy.grace).toBe('2m');
    expect(parsed.config.log.level).toBe('debug');
    expect(parsed.sources['log.level']).toBe('flag');
    const ll = JSON.parse(cli(['config', 'check', '-c', f, '--log-level', 'error', '--json']).stdout) as { config: { log: { level: string } } };
    expect(ll.config.log.level).toBe('error');
    const unknown = cli(['config', 'check', '-c', f, '--set', 'policy.nope=1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('policy.nope: unknown key (from --set)');
    const malformed = cli(['config', 'check', '-c', f, '--set', 'policy.grace']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('--set policy.grace: expected key=value');
  });

  it('config keys --markdown writes one README row per key', async () => {
    const r = cli(['config', 'keys', '--markdown']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('| `ari.password` | `CC_ARI_PASSWORD` | *(required)* |');
    expect(r.stdout).toContain('| `policy.grace` |  | `"5m"` |');
  });
});

describe('list and show: the heads-up and paused agents', () => {
  it('list has a HEADS-UP column (when it starts, for which due time) and a line per paused agent; show says both', async () => {
    const file = path.join(tmp, 'callbacks.db');
    const store = SqliteStore.open<CallbackRequest>(file);
    const start = Date.now();
    let now = start;
    const { engine } = await engineWorld({
      store,
      policy: loadConfig({ env: {}, partial: true }).policy, // grace 5m, headsUp 1m (the defaults)
      clock: () => now,
      prospectDevice: (n) => `PJSIP/${n}`,
      started: false,
      pbxUp: false,
    });
    const optIn = async (agent: string, prospect: string) => {
      const r = await engine.optIn({ agent, agentCallerId: { name: 'Agent', number: agent.slice(-4) }, prospect, language: 'en', channelId: `ch-${prospect}` });
      if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
      return r.requestId;
    };
    const a = await optIn('PJSIP/1001', '2001');
    const b = await optIn('PJSIP/1002', '2003');
    now = start + 1000;
    engine.setPbxUp(true); // the PBX is up and the agent free: the heads-up is planned
    await engine.deviceState('PJSIP/2001', { busy: false }); // grace: due in 5 min, heads-up a minute before
    await store.setPause('PJSIP/1002', { since: start, until: null, by: 'phone' });
    await store.close();
    const env = { CC_STORE_PATH: file };

    const listed = cli(['list'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('HEADS-UP');
    const rowA = listed.stdout.split('\n').find((l) => l.includes(a))!;
    expect(rowA).toMatch(/from \d\d:\d\d:\d\d \(in [^)]+\), for the recall due at \d\d:\d\d:\d\d \(in [^)]+\)/);
    expect(listed.stdout.split('\n').find((l) => l.includes(b))).not.toMatch(/for the recall due/); // still busy: no due time
    expect(listed.stdout).toMatch(/^Paused: PJSIP\/1002 paused by phone since \d\d:\d\d:\d\d, until resumed/m);
    expect(cli(['list', '--agent', 'PJSIP/1001'], env).stdout).not.toContain('Paused:');

    expect(cli(['show', a], env).stdout).toMatch(/^Heads-up: from \d\d:\d\d:\d\d .*for the recall due at/m);
    const showB = cli(['show', b], env).stdout;
    expect(showB).toMatch(/^Agent paused: PJSIP\/1002 paused by phone since/m);
    expect(showB).not.toContain('Heads-up:');
  });

  it('the words over a fixed clock: from, on now, none when finished or past', () => {
    const due = Date.parse('2026-03-10T09:05:00Z');
    const r = { state: 'GRACE' as const, dueAt: due, headsUpFor: null, wakeAt: due - 60_000, timeZone: 'UTC' };
    expect(headsUpText(r, due - 120_000)).toMatch(/^from 09:04:00 \(in [^)]+\), for the recall due at 09:05:00/);
    expect(headsUpText({ ...r, headsUpFor: due, wakeAt: due }, due - 30_000)).toMatch(/^on now, for the recall due at 09:05:00/);
    expect(headsUpText({ ...r, wakeAt: due }, due - 120_000)).toBeNull(); // heads-up off: the wake-up is the due time
    expect(headsUpText(r, due + 1)).toBeNull();
    expect(headsUpText({ ...r, state: 'CANCELLED' as const }, due - 120_000)).toBeNull();
    expect(pauseText({ agent: 'PJSIP/1001', since: due - 600_000, until: due + 3_600_000, by: 'web' }, 'UTC', due)).toMatch(/^PJSIP\/1001 paused by web since 08:55:00, until 10:05:00 \(in [^)]+\)/);
  });
});

describe('list, show, cancel', () => {
  it('list --json keeps its shape; filters by agent and state; the table is readable', async () => {
    const { file } = await makeStore();
    const env = { CC_STORE_PATH: file };
    const all = cli(['list', '--json'], env);
    expect(all.code).toBe(0);
    const rows = JSON.parse(all.stdout) as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(3);
    for (const key of ['id', 'agent', 'prospect', 'state', 'createdAt', 'updatedAt', 'wakeAt', 'expiresAt', 'reason', 'mode', 'attempts', 'snoozes']) {
      expect(rows[0]).toHaveProperty(key);
    }
    expect(rows.find((r) => r.prospect === '2001')).toMatchObject({ agent: 'PJSIP/1001', state: 'GRACE', createdAt: '2026-03-10T09:00:00.000Z', wakeAt: '2026-03-10T09:50:00.000Z' });
    const agent = JSON.parse(cli(['list', '--json', '--agent', 'PJSIP/1002'], env).stdout) as unknown[];
    expect(agent).toHaveLength(1);
    const grace = JSON.parse(cli(['list', '--json', '--state', 'grace'], env).stdout) as Array<{ prospect: string }>;
    expect(grace.map((r) => r.prospect)).toEqual(['2001']);
    const waiting = JSON.parse(cli(['list', '--json', '--agent', 'PJSIP/1001', '--state', 'WAITING', 'GRACE'], env).stdout) as unknown[];
    expect(waiting).toHaveLength(2);
    const table = cli(['list'], env);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+AGENT\s+PROSPECT\s+QUEUE\s+STATE\s+CREATED\s+NEXT WAKE-UP\s+WHY$/);
    expect(table.stdout).toContain('grace until 10:50 (extended by 5m after 40m busy)');
    expect(table.stdout).toContain('3 requests, 3 pending · local times in Europe/Berlin');
    expect(cli(['list', '--state', 'BOGUS'], env).code).toBe(2);
  });

  it('show prints every event with local time and reason, and the next wake-up and why', async () => {
    const { file, ids } = await makeStore();
    const r = cli(['show', ids['2001']], { CC_STORE_PATH: file });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Callback ${ids['2001']}: PJSIP/1001 → 2001 (internal, device watched)`);
    expect(r.stdout).toContain('2026-03-10 10:00:00  created: → WAITING — prospect line busy since 10:00');
    expect(r.stdout).toContain('2026-03-10 10:40:00  prospect-free: WAITING → GRACE — grace until 10:50 (extended by 5m after 40m busy)');
    expect(r.stdout).toMatch(/Next wake-up: 2026-03-10 10:50:00 Europe\/Berlin \(.*\), because: grace until 10:50 \(extended by 5m after 40m busy\)/);
    const j = cli(['show', ids['2001'], '--json'], { CC_STORE_PATH: file });
    expect(j.code).toBe(0);
    const parsed = JSON.parse(j.stdout) as {
      request: { id: string; state: string };
      next: { wakeAt: string; local: string; waitingFor: string; reason: string };
      events: Array<{ at: string; local: string; type: string; from: string | null; to: string; reason: string; wakeAt: string | null; data: Record<string, unknown> }>;
    };
    expect(parsed.request).toMatchObject({ id: ids['2001'], state: 'GRACE' });
    expect(parsed.next).toEqual({ wakeAt: '2026-03-10T09:50:00.000Z', local: '2026-03-10 10:50:00', waitingFor: 'grace', reason: 'grace until 10:50 (extended by 5m after 40m busy)' });
    expect(parsed.events.map((e) => [e.local, e.type, e.from, e.to])).toEqual([
      ['2026-03-10 10:00:00', 'created', null, 'WAITING'],
      ['2026-03-10 10:40:00', 'prospect-free', 'WAITING', 'GRACE'],
    ]);
    expect(parsed.events[0].data).toMatchObject({ channelId: 'ch-2001', prospectDevice: 'PJSIP/2001' });
  });

  it('list and show name the queue for a number, the zone used and a carry-over', async () => {
    const file = path.join(tmp, 'queue.db');
    const store = SqliteStore.open<CallbackRequest>(file);
    let now = T0;
    const { engine } = await engineWorld({
      store,
      policy: loadConfig({ env: {}, partial: true }).policy,
      clock: () => now,
      prospectDevice: (n) => (n.startsWith('2') ? `PJSIP/${n}` : undefined),
      started: false,
      pbxUp: false,
    });
    const ids: string[] = [];
    for (const agent of ['PJSIP/1001', 'PJSIP/1002']) {
      const r = await engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect: '2001', language: 'en', channelId: 'c' });
      if (r.result !== 'created') throw new Error(r.result);
      ids.push(r.requestId);
      now += MIN;
    }
    now = Date.parse('2026-03-13T18:00:00Z'); // Fri 19:00 Berlin, 14:00 New York
    const ny = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1' }, prospect: '+12125551234', language: 'en', channelId: 'c', timeZone: 'America/New_York', zoneSource: 'number' });
    const late = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1' }, prospect: '0301234567', language: 'en', channelId: 'c' });
    if (ny.result !== 'created' || late.result !== 'created') throw new Error('not created');
    await store.close();
    const env = { CC_STORE_PATH: file };
    const rows = JSON.parse(cli(['list', '--json'], env).stdout) as Array<Record<string, unknown>>;
    expect(rows.filter((r) => r.prospect === '2001').map((r) => [r.agent, r.queue])).toEqual([
      ['PJSIP/1001', { position: 1, of: 2 }],
      ['PJSIP/1002', { position: 2, of: 2 }],
    ]);
    expect(rows.find((r) => r.prospect === '+12125551234')).toMatchObject({ timeZone: 'America/New_York', zoneSource: 'number', promise: 'regular' });
    expect(rows.find((r) => r.prospect === '0301234567')).toMatchObject({ timeZone: 'Europe/Berlin', zoneSource: 'default', promise: 'next-calling-day', carriedOverTo: '2026-03-16T08:00:00.000Z' });
    expect(cli(['list'], env).stdout).toMatch(/PJSIP\/1002\s+2001\s+2\/2\s+WAITING/);
    const second = cli(['show', ids[1]], env).stdout;
    expect(second).toContain('Queue for 2001 (served in opt-in order, one recall at a time):');
    expect(second).toMatch(/1\. PJSIP\/1001 {2}WAITING/);
    expect(second).toMatch(/2\. PJSIP\/1002 {2}WAITING .*← this request/);
    expect(cli(['show', ny.requestId], env).stdout).toContain("Prospect's time zone: America/New_York (from the number's country and area code)");
    const carried = cli(['show', late.requestId], env).stdout;
    expect(carried).toContain('Promise: carried over to the next calling day, opening 2026-03-16 09:00:00 Europe/Berlin');
    const j = JSON.parse(cli(['show', ids[1], '--json'], env).stdout) as { queue: Array<{ position: number; agent: string }> };
    expect(j.queue.map((q) => [q.position, q.agent])).toEqual([[1, 'PJSIP/1001'], [2, 'PJSIP/1002']]);
  });

  it('show and cancel of an unknown id exit 4; a missing store exits 3', async () => {
    const { file } = await makeStore();
    const show = cli(['show', 'nope'], { CC_STORE_PATH: file });
    expect(show.code).toBe(4);
    expect(show.stderr).toContain('no callback request with id nope');
    expect(cli(['cancel', 'nope'], { CC_STORE_PATH: file }).code).toBe(4);
    const missing = cli(['list'], { CC_STORE_PATH: path.join(tmp, 'none.db') });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('does not exist');
    const garbage = write('garbage.db', 'this is not a database, just text that is long enough to be read as a header......');
    expect(cli(['show', 'x'], { CC_STORE_PATH: garbage }).code).toBe(3);
  });

  it('cancel <id> cancels through the policy and records who did it', async () => {
    const { file, ids } = await makeStore();
    const env = { CC_STORE_PATH: file };
    const r = cli(['cancel', ids['2002']], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Cancelled ${ids['2002']}: PJSIP/1001 → 2002 (was WAITING) — cancelled by cli`);
    const shown = JSON.parse(cli(['show', ids['2002'], '--json'], env).stdout) as { request: { state: string; outcome: string }; events: Array<{ type: string; from: string; to: string; reason: string }> };
    expect(shown.request).toMatchObject({ state: 'CANCELLED', outcome: 'cancelled' });
    expect(shown.events[shown.events.length - 1]).toMatchObject({ type: 'cancelled', from: 'WAITING', to: 'CANCELLED', reason: 'cancelled by cli' });
    const again = cli(['cancel', ids['2002'], '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual([expect.objectContaining({ id: ids['2002'], cancelled: false, state: 'CANCELLED', note: 'already CANCELLED; nothing to cancel' })]);
    expect(cli(['cancel', ids['2002'], '--agent', 'PJSIP/1001'], env).code).toBe(2);
  });

  it('cancel --agent cancels every pending callback of that agent and nothing else', async () => {
    const { file, ids } = await makeStore();
    const env = { CC_STORE_PATH: file };
    const dry = cli(['cancel', '--agent', 'PJSIP/1001', '--dry-run', '--json'], env);
    expect(JSON.parse(dry.stdout)).toHaveLength(2);
    expect((JSON.parse(cli(['list', '--json', '--state', 'CANCELLED'], env).stdout) as unknown[]).length).toBe(0);
    const r = cli(['cancel', '--agent', 'PJSIP/1001', '--by', 'alice', '--json'], env);
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout) as Array<{ id: string; from: string; state: string; cancelled: boolean; reason: string }>;
    expect(results.map((x) => [x.id, x.from, x.state, x.cancelled, x.reason]).sort()).toEqual(
      [
        [ids['2001'], 'GRACE', 'CANCELLED', true, 'cancelled by cli (alice)'],
        [ids['2002'], 'WAITING', 'CANCELLED', true, 'cancelled by cli (alice)'],
      ].sort(),
    );
    const rows = JSON.parse(cli(['list', '--json'], env).stdout) as Array<{ prospect: string; state: string }>;
    expect(Object.fromEntries(rows.map((x) => [x.prospect, x.state]))).toEqual({ '2001': 'CANCELLED', '2002': 'CANCELLED', '2003': 'WAITING' });
    const none = cli(['cancel', '--agent', 'PJSIP/1001'], env);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('No pending callbacks for PJSIP/1001; nothing cancelled.');
  });

  it('cancel while the agent is being rung says the command line cannot hang up that ring', async () => {
    const { file, ids } = await makeStore();
    // Move 2001 on to RINGING_AGENT as the service would: grace over at 10:50, agent free.
    const store = SqliteStore.open<CallbackRequest>(file);
    const { engine } = await engineWorld({ store, policy: loadConfig({ env: {}, partial: true }).policy, at: T0 + 51 * MIN, prospectDevice: (n) => `PJSIP/${n}`, started: false });
    await engine.observe(ids['2001'], { type: 'tick' });
    expect((await store.get(ids['2001']))?.request.state).toBe('RINGING_AGENT');
    await store.close();
    const r = cli(['cancel', ids['2001']], { CC_STORE_PATH: file });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(was RINGING_AGENT)');
    expect(r.stdout).toContain('the command line cannot hang it up');
  });
});

describe('cancel against a running service (in process)', () => {
  it('a lost claim is re-read and decided again, never applied over the newer version', async () => {
    const { file, ids } = await makeStore();
    const store = SqliteStore.open<CallbackRequest>(file);
    const policy = loadConfig({ env: {}, partial: true }).policy;
    const { engine } = await engineWorld({ store, policy, at: T0 + 45 * MIN, prospectDevice: (n) => `PJSIP/${n}`, started: false, pbxUp: false });
    // The service moves the request (line busy again) between the CLI's read and its write.
    const contract = store;
    const original = contract.transition.bind(contract);
    let raced = false;
    contract.transition = async (request, version, events) => {
      if (!raced) {
        raced = true;
        await engine.deviceState('PJSIP/2001', { busy: true });
      }
      return original(request, version, events);
    };
    const result = await cancelOne(contract, ids['2001'], 'cli', { now: T0 + 45 * MIN, cfg: policy });
    expect(raced).toBe(true);
    expect(result).toMatchObject({ cancelled: true, from: 'WAITING', state: 'CANCELLED' });
    const types = (await store.events(ids['2001'])).map((e) => `${e.type}:${e.from ?? ''}>${e.to}`);
    expect(types).toEqual(['created:>WAITING', 'prospect-free:WAITING>GRACE', 'prospect-busy:GRACE>WAITING', 'cancelled:WAITING>CANCELLED']);
    await store.close();
  });
});

describe('explain (dry run)', () => {
  const base = ['explain', '--date', '2026-03-10'];

  it("names the prospect's zone: from the number, or the configured one; runs in it", async () => {
    const ny = cli([...base, '--prospect', '0012125551234', '--external', '--at', '08:00']);
    expect(ny.code).toBe(0);
    expect(ny.stdout).toContain("Prospect's time zone: America/New_York (from the number +12125551234).");
    expect(ny.stdout).toContain('local times in America/New_York');
    expect(ny.stdout).toMatch(/09:00:00 +waiting|09:00:00 +ring-agent/);
    const local = cli([...base, '--at', '10:00', '--busy-until', '10:20']);
    expect(local.stdout).toContain("Prospect's time zone: Europe/Berlin (callingHours.timeZone; national or internal number).");
    const json = JSON.parse(cli([...base, '--prospect', '+12125551234', '--external', '--json']).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ timeZone: 'America/New_York', zoneSource: 'number' });
  });

  it('after hours: says what the agent was promised, or that nothing would be offered', async () => {
    const friday = ['explain', '--date', '2026-03-13', '--at', '19:00', '--busy-until', '19:20'];
    const carried = cli(friday);
    expect(carried.code).toBe(0);
    expect(carried.stdout).toContain('Promise: after hours, the agent heard "we will call you back on the next calling day" (opens Mon 2026-03-16 09:00:00).');
    expect(carried.stdout).toContain('The callback fires at Mon 2026-03-16 09:00:00');
    const declined = cli([...friday, '--set', 'policy.afterHours=decline']);
    expect(declined.code).toBe(0);
    expect(declined.stdout).toContain('No callback would be offered at 19:00 on 2026-03-13 (Europe/Berlin): outside calling hours in Europe/Berlin (next window Mon 09:00)');
  });

  it('the example timeline: a 40-minute busy spell earns extended grace; the agent is rung at 10:50:30', async () => {
    const r = cli([...base, '--at', '10:00', '--busy-until', '10:40', '--agent-busy', '10:44-10:50']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/10:00:00 +created +→ WAITING: prospect line busy since 10:00/);
    expect(r.stdout).toMatch(/10:40:00 +prospect-free +WAITING → GRACE: grace until 10:50 \(extended by 5m after 40m busy\)/);
    expect(r.stdout).toMatch(/10:50:00 +due +GRACE → DUE: agent wrap-up until 10:50:30/);
    expect(r.stdout).toMatch(/10:50:30 +ring-agent +DUE → RINGING_AGENT/);
    expect(r.stdout).toContain('The callback fires at 10:50:30');
    expect(r.stdout).toContain('Outcome: the prospect answered and was connected to the agent (COMPLETED).');
  });

  it('default grace 5m: free at 10:40 → due 10:45; agent busy 10:44–10:50 → wrap-up 30 s → rings 10:50:30', async () => {
    const r = cli([...base, '--at', '10:20', '--busy-until', '10:40', '--agent-busy', '10:44-10:50', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { firstRingLocal: string; state: string; timeline: Array<{ local: string; kind: string; type: string; text: string }> };
    expect(j.firstRingLocal).toBe('2026-03-10 10:50:30');
    expect(j.state).toBe('COMPLETED');
    const events = j.timeline.filter((e) => e.kind === 'event').map((e) => [e.local.slice(11), e.type, e.text]);
    expect(events).toEqual([
      ['10:20:00', 'created', 'prospect line busy since 10:20'],
      ['10:40:00', 'prospect-free', 'grace until 10:45'],
      ['10:45:00', 'due', 'agent busy since 10:44'],
      ['10:50:00', 'waiting', 'agent wrap-up until 10:50:30'],
      // policy.headsUp 1m: none at 10:44 (the agent's call began then), so it moved to the new due time.
      ['10:50:00', 'heads-up', 'heads-up: the recall is due at 10:50:30; agent wrap-up until 10:50:30'],
      ['10:50:30', 'ring-agent', 'ringing the agent on ccb-dry-run-1 (attempt 1 of 3)'],
      ['10:50:30', 'agent-accepted', 'dialling the prospect (attempt 1 of 3)'],
      ['10:50:30', 'prospect-answered', 'connected on attempt 1'],
    ]);
  });

  it('--timeline in words gives the same answer as the flags', async () => {
    const words = cli([...base, '--timeline', 'busy at 10:20, free at 10:40, agent busy 10:44–10:50', '--json']);
    const flags = cli([...base, '--at', '10:20', '--busy-until', '10:40', '--agent-busy', '10:44-10:50', '--json']);
    expect(words.code).toBe(0);
    expect(JSON.parse(words.stdout)).toEqual(JSON.parse(flags.stdout));
    const bad = cli([...base, '--timeline', 'busy at 10:00, moon rises at 10:40']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('cannot read "moon rises at 10:40"');
    expect(cli([...base, '--at', '25:99']).code).toBe(2);
  });

  it('uses the config and --set: a longer grace moves the callback', async () => {
    const f = write('cc.yaml', 'policy:\n  grace: 10m\n  agentWrapUp: 1m\n');
    const r = cli([...base, '-c', f, '--at', '10:20', '--busy-until', '10:40', '--json']);
    expect((JSON.parse(r.stdout) as { firstRingLocal: string }).firstRingLocal).toBe('2026-03-10 10:50:00');
    const s = cli([...base, '-c', f, '--set', 'policy.grace=1m', '--at', '10:20', '--busy-until', '10:40', '--json']);
    expect((JSON.parse(s.stdout) as { firstRingLocal: string }).firstRingLocal).toBe('2026-03-10 10:41:00');
  });

  it('external numbers: probe, busy attempt, back-off; and outside calling hours', async () => {
    const r = cli([...base, '--external', '--at', '10:00', '--busy-until', '10:15', '--json']);
    const j = JSON.parse(r.stdout) as { rings: string[]; state: string; timeline: Array<{ kind: string; type: string; text: string }> };
    expect(j.rings).toEqual(['2026-03-10 10:10:00', '2026-03-10 10:20:00']);
    expect(j.state).toBe('COMPLETED');
    expect(j.timeline.some((e) => e.type === 'attempt-busy' && /back-off after busy attempt 1 until 10:20/.test(e.text))).toBe(true);
    const late = cli([...base, '--at', '17:50', '--busy-until', '17:58', '--json']);
    const lj = JSON.parse(late.stdout) as { firstRingLocal: string | null; state: string; reason: string };
    expect(lj.firstRingLocal).toBeNull();
    expect(lj.state).toBe('EXPIRED');
  });
});

describe('dialplan', () => {
  it('prints the shipped routine with a usage example', async () => {
    const r = cli(['dialplan']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(';   #include considerate-callback.conf');
    expect(r.stdout).toContain('[considerate-callback]');
    expect(r.stdout).toContain(fs.readFileSync(path.join(ROOT, 'dialplan/considerate-callback.conf'), 'utf8').trim());
    const ex = cli(['dialplan', '--example', '--set', 'ari.app=cc-test']);
    expect(ex.stdout).toContain('exten => _0X.,1,Gosub(considerate-callback,s,1(PJSIP/${EXTEN}@trunk,${EXTEN},30,tT))');
    expect(ex.stdout).toContain('CC_APP=cc-test');
    expect(cli(['dialplan', '--path']).stdout.trim()).toBe(path.join(ROOT, 'dialplan/considerate-callback.conf'));
  });
});

describe('the docs stay true to the command line', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'docs/admin-guide.md'), 'utf8');

  it('the YAML example of docs/configuration.md passes config check', async () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(fs.readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8'))?.[1];
    expect(yaml).toBeDefined();
    const r = cli(['config', 'check', '-c', write('readme.yaml', yaml as string)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.each(['run', 'list', 'show <id>', 'cancel <id>', 'config check', 'config keys', 'explain', 'dialplan'])('documents `%s`', (cmd) => {
    expect(readme).toContain(`| \`${cmd}`);
  });

  it('documents exit code 4', async () => {
    expect(readme).toContain('4 not found');
  });
});

