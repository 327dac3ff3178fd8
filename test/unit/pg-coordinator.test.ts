/**
 * The coordinator loop (src/coordination/coordinator.ts) against a real PostgreSQL: an active and a
 * stand-by instance for one PBX, driven step by step (no timers): take-over after the active stops
 * renewing, the resumed one steps down on its next step and may not act meanwhile, a clean stop hands
 * over at once.
 */
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Coordinator } from '../../src/coordination/coordinator';
import { PgLease } from '../../src/coordination/lease';
import { createLogger } from '../../src/logging/log';
import { FencedError, RequestRecord } from '../../src/store/contract';
import { PgStore } from '../../src/store/postgres';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

let db: TestDatabase;
const stores: PgStore<RequestRecord>[] = [];
beforeEach(async () => {
  db = await freshDatabase('coordinator');
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await db.drop();
});

async function instance(holder: string, ttlMs: number, clock: { t: number }, retryMaxMs?: number) {
  const store = await PgStore.open<RequestRecord>(db.url, { pbx: 'site-a' });
  stores.push(store);
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))));
  const log = createLogger({ format: 'json', stream });
  const calls: string[] = [];
  const lease = new PgLease(store, { pbx: 'site-a', app: 'cc', holder, ttlMs });
  const c = new Coordinator({
    lease,
    fenced: store,
    log,
    now: () => clock.t,
    timers: false,
    onActive: (epoch) => {
      calls.push(`active ${epoch}`);
    },
    onStandby: (reason) => {
      calls.push(`standby: ${reason}`);
    },
    retryMaxMs,
  });
  return { store, c, calls, lease, lines };
}

const rec = (id: string): RequestRecord => ({ id, agent: 'A', prospect: '1', state: 'WAITING', createdAt: 1, updatedAt: 1, wakeAt: 5 });

it('active and stand-by: take-over after the TTL, the resumed one may not act and steps down', async () => {
  const clockA = { t: 0 };
  const clockB = { t: 0 };
  const a = await instance('A', 300, clockA);
  const b = await instance('B', 300, clockB);
  await a.c.start();
  await b.c.start();
  expect(a.calls).toEqual(['active 1']);
  expect(b.calls).toEqual([]);
  expect(a.c.holds()).toBe(true);
  await a.store.createOrRefresh('A', '1', 5, () => ({ request: rec('r1'), events: [] }), (e) => ({ request: e, events: [] }));
  // A is paused (SIGSTOP): it neither renews nor runs. B keeps trying and takes over once the TTL passed.
  while (!b.c.isActive) {
    await sleep(100);
    await b.c.step();
  }
  expect(b.calls).toEqual(['active 2']);
  // A resumes: by its own clock the lease is past its TTL, so it may not act even before its next renew…
  clockA.t += 1000;
  expect(a.c.holds()).toBe(false);
  // …and a write it had under way is refused by the database.
  const v = (await a.store.get('r1'))!;
  await expect(a.store.transition({ ...v.request, state: 'RINGING_AGENT' }, v.version, [])).rejects.toBeInstanceOf(FencedError);
  // Its next step finds the lease gone and steps down.
  await a.c.step();
  expect(a.calls).toEqual(['active 1', 'standby: lease lost (expired or taken over)']);
  expect(a.c.isActive).toBe(false);
  // B writes.
  expect(await b.store.transition({ ...v.request, state: 'RINGING_AGENT' }, v.version, [])).toBe(2);
  await a.c.stop();
  await b.c.stop();
});

it('a clean stop releases the lease: the stand-by takes over on its next step', async () => {
  const clock = { t: 0 };
  const a = await instance('A', 60_000, clock);
  const b = await instance('B', 60_000, clock);
  await a.c.start();
  await b.c.start();
  expect(b.c.isActive).toBe(false);
  await a.c.stop();
  expect(a.calls).toEqual(['active 1', 'standby: stopping']);
  await b.c.step();
  expect(b.calls).toEqual(['active 2']);
  expect(await b.lease.current()).toMatchObject({ holder: 'B', epoch: 2 });
  await b.c.stop();
});

it('a database that stops answering: the active steps down once its TTL has passed by its own clock', async () => {
  const clock = { t: 0 };
  const a = await instance('A', 60_000, clock);
  await a.c.start();
  expect(a.c.isActive).toBe(true);
  // Renewals fail (the server went away); within the TTL the instance keeps serving.
  jest.spyOn(a.lease, 'renew').mockRejectedValue(new Error('connection terminated'));
  clock.t = 30_000;
  await a.c.step();
  expect(a.c.isActive).toBe(true);
  clock.t = 60_001;
  expect(a.c.holds()).toBe(false);
  await a.c.step();
  expect(a.calls).toEqual(['active 1', 'standby: lease not renewed within its TTL (database unreachable?)']);
  await a.c.stop();
});

it('a database down past the TTL: the holder stands by in the process, backs off, says so once, and takes the lease again when it is back', async () => {
  const clock = { t: 0 };
  const a = await instance('A', 300, clock, 2000);
  await a.c.start();
  expect(a.c.isActive).toBe(true);
  expect(a.c.nextDelayMs).toBe(100); // TTL/3 while active
  const renew = jest.spyOn(a.lease, 'renew').mockRejectedValue(new Error('connection terminated'));
  const acquire = jest.spyOn(a.lease, 'acquire').mockRejectedValue(new Error('connect ECONNREFUSED'));
  clock.t = 100;
  await a.c.step();
  expect(a.c.isActive).toBe(true); // within its TTL: still serving
  expect(a.c.nextDelayMs).toBe(100); // an active instance renews every period, no back-off
  clock.t = 400;
  await a.c.step();
  expect(a.calls).toEqual(['active 1', 'standby: lease not renewed within its TTL (database unreachable?)']);
  // Stand-by now; the attempts back off from the period up to retryMaxMs.
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    clock.t += 500;
    await a.c.step();
    delays.push(a.c.nextDelayMs);
    expect(a.c.isActive).toBe(false);
    expect(a.c.holds()).toBe(false);
  }
  expect(delays).toEqual([400, 800, 1600, 2000, 2000, 2000, 2000, 2000]);
  const unreachable = a.lines.filter((l) => l.event === 'lease.unreachable');
  expect(unreachable).toHaveLength(1);
  expect(unreachable[0]).toMatchObject({ active: true, error: 'connection terminated' });
  expect(a.lines.filter((l) => l.event === 'lease.lost')).toHaveLength(1);
  // The database is back (the old lease has expired by its clock): the same instance takes it with a new epoch.
  renew.mockRestore();
  acquire.mockRestore();
  await sleep(350);
  await a.c.step();
  expect(a.c.isActive).toBe(true);
  expect(a.calls).toEqual(['active 1', 'standby: lease not renewed within its TTL (database unreachable?)', 'active 2']);
  expect(a.c.nextDelayMs).toBe(100);
  expect(a.lines.filter((l) => l.event === 'lease.reachable')).toMatchObject([{ active: true, attempts: 10 }]);
  expect(a.lines.filter((l) => l.event === 'lease.taken').map((l) => l.epoch)).toEqual([1, 2]);
  await a.c.stop();
});

it('a database down past the TTL while a stand-by waits too: when it is back exactly one of them holds the lease, the other stays stand-by', async () => {
  const clockA = { t: 0 };
  const clockB = { t: 0 };
  const a = await instance('A', 300, clockA, 1000);
  const b = await instance('B', 300, clockB, 1000);
  await a.c.start();
  await b.c.start();
  const spies = [jest.spyOn(a.lease, 'renew'), jest.spyOn(a.lease, 'acquire'), jest.spyOn(b.lease, 'acquire')];
  for (const s of spies) s.mockRejectedValue(new Error('connect ECONNREFUSED'));
  clockA.t = 400;
  clockB.t = 400;
  await a.c.step();
  await b.c.step();
  expect(a.c.isActive).toBe(false);
  expect(b.c.isActive).toBe(false);
  for (const s of spies) s.mockRestore();
  await sleep(350); // the database's clock: A's lease has expired
  // Whoever asks first takes it; the other stays stand-by (and keeps trying every period, no back-off now).
  await b.c.step();
  await a.c.step();
  expect([a.c.isActive, b.c.isActive]).toEqual([false, true]);
  expect(b.calls).toEqual(['active 2']);
  expect(a.calls).toEqual(['active 1', 'standby: lease not renewed within its TTL (database unreachable?)']);
  expect(a.c.nextDelayMs).toBe(100);
  expect(a.lines.filter((l) => l.event === 'lease.reachable')).toMatchObject([{ active: false }]);
  await a.c.stop();
  await b.c.stop();
});
