/**
 * Two service instances' engines on one PostgreSQL database, each with its coordinator (driven step by
 * step): a callback whose grace ends while the active instance is paused is rung exactly once — by the
 * stand-by that took over — and the paused one, resumed, rings nobody (its actions are skipped by its
 * own clock and its writes refused by the database) and steps down.
 */
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Coordinator } from '../../src/coordination/coordinator';
import { PgLease } from '../../src/coordination/lease';
import { defaultPolicyConfig, makePolicyConfig, type CallbackRequest } from '../../src/core/policy';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/log';
import { PgStore } from '../../src/store/postgres';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

const T0 = Date.UTC(2026, 10, 25, 9, 0, 0); // a Wednesday, 10:00 in Berlin
let db: TestDatabase;
const closers: (() => Promise<void>)[] = [];
beforeEach(async () => {
  db = await freshDatabase('engine');
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  await db.drop();
});

async function instance(name: string, now: { t: number }, mono: { t: number }) {
  const store = await PgStore.open<CallbackRequest>(db.url, { pbx: 'site-a' });
  const rings: string[] = [];
  const log = createLogger({ format: 'json', stream: new PassThrough() });
  const lease = new PgLease(store, { pbx: 'site-a', app: 'cc', holder: name, ttlMs: 400 });
  const holder: { engine?: Engine } = {};
  const coordinator = new Coordinator({
    lease,
    fenced: store,
    log,
    now: () => mono.t,
    timers: false,
    onActive: () => holder.engine!.start(),
    onStandby: () => holder.engine!.stop(),
  });
  const engine = new Engine({
    store,
    log,
    policy: makePolicyConfig({ ...defaultPolicyConfig, graceMs: 60_000, agentWrapUpMs: 0 }),
    clock: () => now.t,
    maxPendingPerAgent: 10,
    prospectDevice: (n) => `PJSIP/${n}`,
    canAct: () => coordinator.holds(),
  });
  engine.setTelephony({
    execute: async (request, action) => {
      if (action.type === 'ringAgent') rings.push(`${name}:${request.id}`);
    },
  });
  holder.engine = engine;
  engine.setPbxUp(true);
  closers.push(async () => {
    engine.stop();
    await store.close();
  });
  return { store, engine, coordinator, rings };
}

it('the agent is rung exactly once, by the instance holding the lease; the resumed one rings nobody and steps down', async () => {
  const now = { t: T0 };
  const monoA = { t: 0 };
  const monoB = { t: 0 };
  const a = await instance('A', now, monoA);
  const b = await instance('B', now, monoB);
  await a.coordinator.start();
  await b.coordinator.start();
  expect(a.coordinator.isActive).toBe(true);
  expect(b.coordinator.isActive).toBe(false);
  const r = await a.engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c' });
  if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
  now.t += 1000;
  await a.engine.deviceState('PJSIP/2001', { busy: false }); // the line frees: GRACE
  expect((await a.store.get(r.requestId))!.request.state).toBe('GRACE');
  // A is paused (SIGSTOP) past the lease TTL; B takes over.
  while (!b.coordinator.isActive) {
    await sleep(100);
    await b.coordinator.step();
  }
  // The grace ends; B's scheduler fires.
  now.t += 61_000;
  await b.engine.tick();
  expect(b.rings).toEqual([`B:${r.requestId}`]);
  expect((await b.store.get(r.requestId))!.request.state).toBe('RINGING_AGENT');
  // A resumes: its timer fires too. Its own clock says the lease is gone (no action), and whatever it
  // tries to write is refused by the database.
  monoA.t += 10_000;
  await a.engine.tick().catch(() => undefined);
  await a.engine.observe(r.requestId, { type: 'tick' }).catch(() => undefined);
  expect(a.rings).toEqual([]);
  await a.coordinator.step();
  expect(a.coordinator.isActive).toBe(false);
  const history = (await b.store.events(r.requestId)).map((e) => e.to);
  expect(history.filter((s) => s === 'RINGING_AGENT')).toHaveLength(1);
});
