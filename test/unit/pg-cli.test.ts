/**
 * The command line on a PostgreSQL store shared by two PBXs (CC_STORE_URL): `list` and `show` see every
 * PBX's requests, `cancel` cancels through the ledger (history and outbox row written with it), and the
 * password in the URL never appears in the output.
 */
import { spawnSync } from 'node:child_process';
import { type CallbackRequest } from '../../src/core/policy';
import { PgStore } from '../../src/store/postgres';
import { buildCliIfStale, CLI_BIN } from '../../testkit/cli';
import { engineWorld } from '../../testkit/engine';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

const BIN = CLI_BIN;


let db: TestDatabase;
beforeAll(buildCliIfStale, 120_000);
beforeEach(async () => {
  db = await freshDatabase('cli');
});
afterEach(async () => {
  await db.drop();
});

function cli(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, TZ: 'UTC', ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function site(pbx: string, agent: string, prospect: string): Promise<string> {
  const store = await PgStore.open<CallbackRequest>(db.url, { pbx });
  const w = await engineWorld({ store, clock: Date.now, maxPendingPerAgent: 5, prospectDevice: () => undefined, started: false, pbxUp: false });
  const r = await w.when.optIn(agent, prospect);
  await store.close();
  if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
  return r.requestId;
}

it('list, show and cancel see every PBX; no password in the output', async () => {
  const a = await site('site-a', 'PJSIP/1001', '+4930111111');
  const b = await site('site-b', 'PJSIP/1001', '+4930222222');
  // The same URL with a password the server ignores (trust auth), to check it is never printed.
  const url = db.url.replace('postgres@', 'postgres:Secr3tPw@');
  const env = { CC_STORE_URL: url, CC_PBX_ID: 'site-a' };
  const list = cli(['list', '--json'], env);
  expect(list.stderr).toBe('');
  expect(list.code).toBe(0);
  expect((JSON.parse(list.stdout) as { id: string }[]).map((r) => r.id).sort()).toEqual([a, b].sort());
  const show = cli(['show', b, '--json'], env);
  expect(show.code).toBe(0);
  expect(show.stdout).toContain('+4930222222');
  const cancel = cli(['cancel', b], env);
  expect(cancel.code).toBe(0);
  expect(cancel.stdout).toContain(`Cancelled ${b}`);
  const store = await PgStore.open<CallbackRequest>(db.url, { allPbx: true });
  expect((await store.get(b))!.request.state).toBe('CANCELLED');
  expect((await store.get(a))!.request.state).toBe('WAITING');
  expect((await store.events(b)).map((e) => e.type).at(-1)).toBe('cancelled');
  await store.close();
  for (const r of [list, show, cancel]) expect(r.stdout + r.stderr).not.toContain('Secr3tPw');
  // A server that is not there: exit 3, the URL without its password.
  const down = cli(['list'], { CC_STORE_URL: 'postgres://cc:Secr3tPw@127.0.0.1:1/none' });
  expect(down.code).toBe(3);
  expect(down.stderr).toMatch(/cannot open callback store postgres:\/\/\S*@127\.0\.0\.1:1\/none/);
  expect(down.stderr).not.toContain('Secr3tPw');
});
