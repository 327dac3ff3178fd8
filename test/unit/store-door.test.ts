/**
 * Storage hardening: files for the service's user only, retention (prune, also from the CLI), a store
 * locked by ANOTHER process (a real child process holding a write transaction) makes the opt-in fail fast
 * instead of freezing the event loop; given-up webhook events listed and re-queued from the CLI.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CallbackRequest } from '../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../testkit/policy';
import type { Engine } from '../../src/engine';
import { StoreError, type Store } from '../../src/store/contract';
import { SqliteStore } from '../../src/store/sqlite';
import { outboxRowsFor } from '../../src/webhook/payload';
import { engineWorld } from '../../testkit/engine';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'dist/cli/main.js');
const DAY = 86_400_000;

let tmp: string;
beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-store-door-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const always = makePolicyConfig({
  ...defaultPolicyConfig,
  callingHours: { timeZone: 'UTC', windows: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])), holidays: [] },
});

async function engineOn(store: Store<CallbackRequest> | SqliteStore<CallbackRequest>, now: { t: number }): Promise<Engine> {
  return (await engineWorld({ store, policy: always, clock: () => now.t, prospectDevice: () => undefined, outbox: outboxRowsFor, started: false, pbxUp: false })).engine;
}
const optIn = (engine: Engine, agent: string, prospect: string) =>
  engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect, language: 'en', channelId: 'c' });

const mode = (f: string) => fs.statSync(f).mode & 0o777;

describe('store files are the service user\'s only', () => {
  it('a new directory is 0700, the store, its -wal and -shm 0600', async () => {
    const file = path.join(tmp, 'new-dir', 'callbacks.db');
    const store = SqliteStore.open<CallbackRequest>(file);
    await optIn(await engineOn(store, { t: Date.now() }), 'PJSIP/1001', '2001');
    expect(mode(path.dirname(file)).toString(8)).toBe('700');
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect({ f: path.basename(f), mode: mode(f).toString(8) }).toEqual({ f: path.basename(f), mode: '600' });
    await store.close();
  });

  it('an existing world-readable store is tightened at open', async () => {
    const file = path.join(tmp, 'callbacks.db');
    SqliteStore.open<CallbackRequest>(file).close();
    fs.chmodSync(file, 0o644);
    SqliteStore.open<CallbackRequest>(file).close();
    expect(mode(file).toString(8)).toBe('600');
  });
});

describe('retention', () => {
  it('prune deletes finished requests older than the age with their history and sent webhook rows; pending and given-up stay', async () => {
    const store = SqliteStore.open<CallbackRequest>(path.join(tmp, 'callbacks.db'));
    const now = { t: Date.now() - 30 * DAY };
    const engine = await engineOn(store, now);
    const old = (await optIn(engine, 'PJSIP/1001', '2001')) as { requestId: string };
    await engine.cancel(old.requestId, 'test');
    const oldPending = (await optIn(engine, 'PJSIP/1002', '2002')) as { requestId: string };
    const rows = await store.outbox();
    await store.outboxSent(rows[0].id, now.t); // the old request's "requested" event was delivered
    await store.outboxFailed(rows[1].id, 'HTTP 500', null, now.t); // "cancelled": given up
    now.t = Date.now();
    const fresh = (await optIn(engine, 'PJSIP/1003', '2003')) as { requestId: string };
    await engine.cancel(fresh.requestId, 'test');

    expect(await store.prune(Date.now() - 14 * DAY, { dryRun: true })).toEqual({ requests: 1, events: 2, outbox: 1 });
    expect(await store.list()).toHaveLength(3);
    expect(await store.prune(Date.now() - 14 * DAY)).toEqual({ requests: 1, events: 2, outbox: 1 });
    expect(await store.get(old.requestId)).toBeUndefined();
    expect(await store.events(old.requestId)).toEqual([]);
    expect(await store.get(oldPending.requestId)).toBeDefined();
    expect(await store.get(fresh.requestId)).toBeDefined();
    expect((await store.outboxGivenUp()).map((r) => r.id)).toEqual([rows[1].id]);
    expect(await store.prune(Date.now() - 14 * DAY)).toEqual({ requests: 0, events: 0, outbox: 0 });
    await store.close();
  });
});

describe('a store locked by another process', () => {
  it('the opt-in fails fast with a store error while a real second process holds the write lock; works again after', async () => {
    const file = path.join(tmp, 'callbacks.db');
    const store = SqliteStore.open<CallbackRequest>(file);
    const engine = await engineOn(store, { t: Date.now() });
    // The other process: takes the write lock, says so, and holds it until told to let go.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require(${JSON.stringify(require.resolve('better-sqlite3'))}))(${JSON.stringify(file)});
         db.exec('BEGIN IMMEDIATE'); db.exec("INSERT OR REPLACE INTO meta(key, value) VALUES ('lock-test', '1')");
         process.stdout.write('locked\\n');
         process.stdin.on('data', () => { db.exec('COMMIT'); db.close(); process.stdout.write('released\\n'); process.exit(0); });
         setTimeout(() => process.exit(3), 60000);`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const said: string[] = [];
    const heard = (what: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => (said.join('').includes(what) ? resolve() : undefined);
        holder.stdout.on('data', (b: Buffer) => {
          said.push(b.toString());
          check();
        });
        holder.once('exit', (code) => (said.join('').includes(what) ? resolve() : reject(new Error(`holder exited ${code}`))));
        check();
      });
    try {
      await heard('locked');
      await expect(optIn(engine, 'PJSIP/1001', '2001')).rejects.toThrow(StoreError);
      await expect(optIn(engine, 'PJSIP/1001', '2001')).rejects.toThrow(/locked by another process/);
      // The opt-in gave up while the other process still held the lock: it did not wait for it.
      expect(holder.exitCode).toBeNull();
      expect(said.join('')).not.toContain('released');
      expect(await store.list()).toEqual([]);
      holder.stdin.write('go\n');
      await heard('released');
      expect((await optIn(engine, 'PJSIP/1001', '2001')).result).toBe('created');
    } finally {
      holder.kill();
      await store.close();
    }
  });
});

describe('CLI: prune, webhook list / retry', () => {
  beforeAll(async () => {
    if (!fs.existsSync(BIN)) throw new Error('build first (npm run build)');
  });
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, env: { PATH: process.env.PATH, HOME: process.env.HOME, TZ: 'UTC' }, encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('lists given-up events, re-queues one or all, and prunes by age', async () => {
    const file = path.join(tmp, 'callbacks.db');
    const store = SqliteStore.open<CallbackRequest>(file);
    const now = { t: Date.now() - 40 * DAY };
    const engine = await engineOn(store, now);
    const a = (await optIn(engine, 'PJSIP/1001', '2001')) as { requestId: string };
    await engine.cancel(a.requestId, 'test');
    await optIn(engine, 'PJSIP/1002', '2002');
    const [r1, r2, r3] = await store.outbox();
    await store.outboxSent(r1.id, now.t);
    await store.outboxFailed(r2.id, 'HTTP 500', null, now.t);
    await store.outboxFailed(r3.id, 'HTTP 302 redirect to evil.example (not followed)', null, now.t);
    await store.close();
    const cfg = ['--set', `store.path=${file}`];

    const list = cli(['webhook', 'list', '--json', ...cfg]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ id: number }>).map((r) => r.id)).toEqual([r2.id, r3.id]);
    expect(cli(['webhook', 'retry', ...cfg]).code).toBe(2);
    const one = cli(['webhook', 'retry', String(r2.id), '999', '--json', ...cfg]);
    expect(JSON.parse(one.stdout)).toEqual({ requeued: [r2.id], notGivenUp: [999] });
    expect(one.code).toBe(4);
    expect(JSON.parse(cli(['webhook', 'retry', '--all', '--json', ...cfg]).stdout)).toEqual({ requeued: [r3.id], notGivenUp: [] });
    expect(JSON.parse(cli(['webhook', 'list', '--json', ...cfg]).stdout)).toEqual([]);

    const dry = cli(['prune', '--dry-run', '--json', ...cfg]);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, requests: 1, outbox: 1 });
    const done = cli(['prune', '--older-than', '30d', '--json', ...cfg]);
    expect(JSON.parse(done.stdout)).toMatchObject({ dryRun: false, requests: 1, outbox: 1 });
    const check = SqliteStore.open<CallbackRequest>(file, { readonly: true });
    expect((await check.list()).map((r) => r.agent)).toEqual(['PJSIP/1002']);
    await check.close();
    expect(cli(['prune', '--older-than', 'soon', ...cfg]).code).toBe(2);
  });
});
