/**
 * Two service instances' engines on one PostgreSQL database, each with its coordinator (driven step by
 * step): a callback whose grace ends while the active instance is paused is rung exactly once — by the
 * stand-by that took over — and the paused one, resumed, rings nobody (its actions are skipped by its
 * own clock and its writes refused by the database) and steps down. And one prospect with two agents on
 * PostgreSQL: the queue is served in opt-in order, one recall at a time, also with two instances ticking.
 */
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Coordinator } from '../../src/coordination/coordinator';
import { PgLease } from '../../src/coordination/lease';
import { type CallbackRequest } from '../../src/core/policy';
import type { Engine } from '../../src/engine';
import { createLogger } from '../../src/logging/log';
import { PgStore } from '../../src/store/postgres';
import { engineWorld } from '../../testkit/engine';
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
  const { engine } = await engineWorld({
    store,
    log,
    policy: { graceMs: 60_000, agentWrapUpMs: 0 },
    clock: () => now.t,
    prospectDevice: (n) => `PJSIP/${n}`,
    canAct: () => coordinator.holds(),
    telephony: {
      execute: async (request, action) => {
        if (action.type === 'ringAgent') rings.push(`${name}:${request.id}`);
      },
    },
    started: false, // the coordinator starts it when the lease is this instance's
  });
  holder.engine = engine;
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

/**
 * An engine serving `pbx` on the test database without a coordinator (already reconciled: PBX up), ringing
 * into `rings` as `<name>:<agent>`; closed after the test, or earlier with `close`.
 */
async function servingEngine(name: string, pbx: string, now: { t: number }, rings: string[], log: ReturnType<typeof createLogger>) {
  const store = await PgStore.open<CallbackRequest>(db.url, { pbx });
  const { engine } = await engineWorld({
    store,
    log,
    policy: { graceMs: 60_000, agentWrapUpMs: 0 },
    clock: () => now.t,
    prospectDevice: () => undefined,
    telephony: {
      execute: async (request, action) => {
        if (action.type === 'ringAgent') rings.push(`${name}:${request.agent}`);
      },
    },
  });
  const close = async () => {
    engine.stop();
    await store.close();
  };
  closers.push(close);
  return { engine, store, close };
}

it('one prospect, two agents on PostgreSQL: two instances ticking at once ring the first agent once; the second goes after the first ends', async () => {
  const now = { t: T0 };
  const log = createLogger({ format: 'json', stream: new PassThrough() });
  const rings: string[] = [];
  const engines = await Promise.all(['A', 'B'].map((name) => servingEngine(name, 'site-a', now, rings, log)));
  const [a, b] = engines;
  const first = await a.engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '+12125551234', language: 'en', channelId: 'c1' });
  now.t += 1000;
  const second = await b.engine.optIn({ agent: 'PJSIP/1002', agentCallerId: { name: 'A', number: '1002' }, prospect: '+12125551234', language: 'en', channelId: 'c2' });
  if (first.result !== 'created' || second.result !== 'created') throw new Error('not created');
  expect([first.position, second.position]).toEqual([1, 2]);
  expect((await a.engine.offerOutlook('PJSIP/1003', '+12125551234')).queue).toEqual(['PJSIP/1001', 'PJSIP/1002']);
  now.t += 10 * 60_000;
  await Promise.all([a.engine.tick(), b.engine.tick()]);
  expect(rings.map((r) => r.split(':')[1])).toEqual(['PJSIP/1001']);
  expect((await a.store.get(second.requestId))!.request).toMatchObject({ state: 'DUE', waitingFor: 'colleague' });
  // The first agent declines the recall (3): the second agent's recall follows at once.
  await a.engine.observe(first.requestId, { type: 'agentKey', key: '3' });
  for (let i = 0; i < 50 && rings.length < 2; i++) await sleep(20);
  expect(rings.map((r) => r.split(':')[1])).toEqual(['PJSIP/1001', 'PJSIP/1002']);
  const recalls = (await a.store.prospectQueue('+12125551234')).filter((q) => q.state === 'RINGING_AGENT' || q.state === 'CONNECTING');
  expect(recalls.map((q) => q.agent)).toEqual(['PJSIP/1002']);
});

it("two PBXs, one prospect: a restart on one site does not end the other site's conversation with the prospect", async () => {
  const now = { t: T0 };
  const log = createLogger({ format: 'json', stream: new PassThrough() });
  const rings: string[] = [];
  const site = (name: string, pbx: string) => servingEngine(name, pbx, now, rings, log);
  const a = await site('A', 'site-a');
  const b = await site('B', 'site-b');
  const first = await a.engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '+12125551234', language: 'en', channelId: 'c1' });
  now.t += 1000;
  const second = await b.engine.optIn({ agent: 'PJSIP/1002', agentCallerId: { name: 'B', number: '1002' }, prospect: '+12125551234', language: 'en', channelId: 'c2' });
  if (first.result !== 'created' || second.result !== 'created') throw new Error('not created');
  now.t += 10 * 60_000;
  await a.engine.tick();
  await b.engine.tick();
  expect(rings).toEqual(['A:PJSIP/1001']);
  // Site A's agent talks to the prospect; its conversation goes on.
  await a.engine.observe(first.requestId, { type: 'agentAnswered' });
  await a.engine.observe(first.requestId, { type: 'agentKey', key: '1' });
  await a.engine.observe(first.requestId, { type: 'prospectAnswered' });
  expect((await a.store.get(first.requestId))!.request.state).toBe('COMPLETED');
  // Site B's instance is killed and restarts (reconciling site B's PBX only) while A's call goes on.
  await b.close();
  now.t += 60_000;
  const b2 = await site('B2', 'site-b');
  for (let i = 0; i < 3; i++) {
    now.t += 10 * 60_000;
    await b2.engine.tick();
    await b2.engine.observe(second.requestId, { type: 'tick' });
  }
  expect(rings).toEqual(['A:PJSIP/1001']);
  expect((await b2.store.get(second.requestId))!.request).toMatchObject({ state: 'DUE', waitingFor: 'colleague' });
  // The conversation on site A ends: site B's agent follows after the pause the prospect is given.
  await a.engine.conversationEnded(first.requestId);
  now.t += 10 * 60_000;
  await b2.engine.observe(second.requestId, { type: 'tick' });
  await b2.engine.tick();
  expect(rings).toEqual(['A:PJSIP/1001', 'B2:PJSIP/1002']);
});
