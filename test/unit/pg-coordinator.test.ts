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

async function instance(holder: string, ttlMs: number, clock: { t: number }) {
  const store = await PgStore.open<RequestRecord>(db.url, { pbx: 'site-a' });
  stores.push(store);
  const log = createLogger({ format: 'json', stream: new PassThrough() });
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
  });
  return { store, c, calls, lease };
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
