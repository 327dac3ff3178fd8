/**
 * One prospect, many agents: at most one recall per prospect number at any time (the store's guarantee), agents
 * served in opt-in order, the next one after the first has ended (with the grace again), and the offer knows the
 * queue and the promise.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newRequest, decide, type CallbackRequest, type PolicyConfig } from '../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../testkit/policy';
import type { Engine } from '../../src/engine';
import { SqliteStore } from '../../src/store/sqlite';
import { notOfferedRow, outboxRowsFor } from '../../src/webhook/payload';
import { engineWorld } from '../../testkit/engine';

const T0 = Date.UTC(2026, 10, 25, 9, 0, 0); // Wed 2026-11-25 10:00 Berlin
const FRIDAY_EVENING = Date.UTC(2026, 10, 27, 18, 0, 0); // Fri 19:00 Berlin

async function setup(now: { t: number }, policy: Partial<PolicyConfig> = {}) {
  const store = SqliteStore.open<CallbackRequest>(':memory:');
  const rings: { request: string; agent: string; at: number }[] = [];
  const { engine } = await engineWorld({
    store,
    policy: { graceMs: 60_000, agentWrapUpMs: 0, ...policy },
    clock: () => now.t,
    telephony: {
      execute: async (request, action) => {
        if (action.type === 'ringAgent') rings.push({ request: request.id, agent: request.agent, at: now.t });
      },
    },
  });
  return { store, engine, rings };
}

const optIn = async (engine: Engine, agent: string, prospect: string) => {
  const r = await engine.optIn({ agent, agentCallerId: { name: 'A', number: agent.slice(-4) }, prospect, language: 'en', channelId: `c-${agent}` });
  if (r.result !== 'created' && r.result !== 'refreshed') throw new Error(r.result);
  return r;
};

const inRecall = async (store: SqliteStore<CallbackRequest>, prospect: string) =>
  (await store.prospectQueue(prospect)).filter((q) => q.state === 'RINGING_AGENT' || q.state === 'CONNECTING');

/** Lets the engine's queued work run (the next agent's wake-up is scheduled with setImmediate, then awaits the store). */
const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('the store: one recall per prospect number', () => {
  const cfg = makePolicyConfig({ ...defaultPolicyConfig, graceMs: 0 });
  const make = (id: string, agent: string) =>
    newRequest({ id, agent, agentCallerId: { name: 'A', number: '1' }, prospect: '+12125551234', language: 'en', mode: 'timed' }, cfg, T0).request;
  const ring = (r: CallbackRequest) => decide({ ...r, notBefore: null, wakeAt: T0 }, { type: 'tick' }, { now: T0 + 1, cfg, agent: { busy: false, since: 0 } });

  it('refuses a second agent ring for the same number, in the transition itself', async () => {
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    for (const [id, agent] of [['a', 'PJSIP/1001'], ['b', 'PJSIP/1002']]) await store.createOrRefresh(agent, '+12125551234', 10, () => ({ request: make(id, agent), events: [] }), () => { throw new Error('no'); });
    const a = ring((await store.get('a'))!.request);
    const b = ring((await store.get('b'))!.request);
    expect([a.request.state, b.request.state]).toEqual(['RINGING_AGENT', 'RINGING_AGENT']);
    expect(await store.transition(a.request, 1, [])).toBe(2);
    expect(await store.transition(b.request, 1, [])).toBeUndefined();
    expect(store.recallConflicts).toBe(1);
    expect((await store.get('b'))!.request.state).toBe('WAITING'); // untouched, version 1
    // Once the first recall has ended, the second may start.
    expect(await store.transition({ ...a.request, state: 'COMPLETED', wakeAt: null }, 2, [])).toBe(3);
    expect(await store.transition(b.request, 1, [])).toBe(2);
  });

  it('holds across two processes on the same file: exactly one of two simultaneous rings is written', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-one-recall-'));
    const file = path.join(dir, 'cb.db');
    const one = SqliteStore.open<CallbackRequest>(file);
    const two = SqliteStore.open<CallbackRequest>(file);
    for (const [id, agent] of [['a', 'PJSIP/1001'], ['b', 'PJSIP/1002']]) await one.createOrRefresh(agent, '+12125551234', 10, () => ({ request: make(id, agent), events: [] }), () => { throw new Error('no'); });
    const results = [await one.transition(ring((await one.get('a'))!.request).request, 1, []), await two.transition(ring((await two.get('b'))!.request).request, 1, [])];
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect((await one.prospectQueue('+12125551234')).filter((q) => q.state === 'RINGING_AGENT')).toHaveLength(1);
    await one.close();
    await two.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('does not confuse the one-pending-per-agent rule with the one-recall rule', async () => {
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    await store.createOrRefresh('PJSIP/1001', '+12125551234', 10, () => ({ request: make('a', 'PJSIP/1001'), events: [] }), () => { throw new Error('no'); });
    await expect(store.transition({ ...(await store.get('a'))!.request, id: 'a' }, 1, [{ requestId: 'nope', at: 0, type: 'x' }])).rejects.toMatchObject({ message: expect.stringMatching(/FOREIGN KEY/) }); // a foreign-key failure is an error, not a lost claim
  });
});

describe('Engine: two agents, one prospect', () => {
  it('rings the agents one after the other, in opt-in order, with the grace again after our call', async () => {
    const now = { t: T0 };
    const { store, engine, rings } = await setup(now);
    const first = await optIn(engine, 'PJSIP/1001', '2001');
    now.t += 1000;
    const second = await optIn(engine, 'PJSIP/1002', '2001');
    expect([first.position, second.position]).toEqual([1, 2]);

    now.t += 60_000;
    await engine.deviceState('PJSIP/2001', { busy: false }); // line free: both in GRACE
    now.t += 61_000;
    await engine.tick();
    await flush();
    expect(rings.map((r) => r.agent)).toEqual(['PJSIP/1001']);
    expect((await store.get(second.requestId))!.request).toMatchObject({ state: 'DUE', waitingFor: 'colleague' });
    expect(await inRecall(store, '2001')).toHaveLength(1);

    // Agent 1 answers, presses 1; we dial the prospect (their line is busy with our call), they answer.
    await engine.observe(first.requestId, { type: 'agentAnswered' });
    await engine.observe(first.requestId, { type: 'agentKey', key: '1' });
    await engine.deviceState('PJSIP/2001', { busy: true });
    now.t += 5000;
    await engine.observe(first.requestId, { type: 'prospectAnswered' });
    await flush();
    expect((await store.get(first.requestId))!.request.state).toBe('COMPLETED');
    expect((await store.get(second.requestId))!.request).toMatchObject({ state: 'WAITING', waitingFor: 'prospect-busy' });
    expect(rings).toHaveLength(1); // nobody rings while the prospect talks to agent 1

    now.t += 10 * 60_000; // the call ends: the prospect gets the grace again
    await engine.conversationEnded(first.requestId);
    await engine.deviceState('PJSIP/2001', { busy: false });
    expect((await store.get(second.requestId))!.request).toMatchObject({ state: 'GRACE' });
    now.t += 61_000;
    await engine.tick();
    await flush();
    expect(rings.map((r) => r.agent)).toEqual(['PJSIP/1001', 'PJSIP/1002']);
    expect((await inRecall(store, '2001')).map((q) => q.agent)).toEqual(['PJSIP/1002']);
    engine.stop();
  });

  it("after a restart, a colleague's conversation whose end was never recorded counts as ended when the new run reconciled the PBX", async () => {
    const now = { t: T0 };
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-one-prospect-')), 'callbacks.db');
    const open = async () => {
      const store = SqliteStore.open<CallbackRequest>(file);
      const rings: string[] = [];
      const { engine } = await engineWorld({
        store,
        policy: { graceMs: 60_000, agentWrapUpMs: 0 },
        clock: () => now.t,
        telephony: {
          execute: async (request, action) => {
            if (action.type === 'ringAgent') rings.push(request.agent);
          },
        },
        started: false,
        pbxUp: false,
      });
      return { store, engine, rings };
    };
    const run1 = await open();
    run1.engine.setPbxUp(true);
    await run1.engine.start();
    const first = await optIn(run1.engine, 'PJSIP/1001', '2001');
    now.t += 1000;
    const second = await optIn(run1.engine, 'PJSIP/1002', '2001');
    now.t += 60_000;
    await run1.engine.deviceState('PJSIP/2001', { busy: false });
    now.t += 61_000;
    await run1.engine.tick();
    await flush();
    await run1.engine.observe(first.requestId, { type: 'agentAnswered' });
    await run1.engine.observe(first.requestId, { type: 'agentKey', key: '1' });
    await run1.engine.observe(first.requestId, { type: 'prospectAnswered' });
    await flush();
    expect((await run1.store.get(first.requestId))!.request.state).toBe('COMPLETED');
    // kill -9 while agent 1 talks to the prospect: the conversation's end is never recorded.
    run1.engine.stop();
    await run1.store.close();

    now.t += 5 * 60_000;
    const run2 = await open();
    await run2.engine.start();
    run2.engine.setPbxUp(true); // reconciled: the old recall's channels are gone
    const reconciledAt = now.t;
    await flush();
    expect((await run2.store.get(second.requestId))!.request).toMatchObject({ state: 'DUE', waitingFor: 'grace' });
    expect((await run2.store.get(second.requestId))!.request.wakeAt).toBe(reconciledAt + 60_000); // the grace after our call, not an hour
    now.t = reconciledAt + 61_000;
    await run2.engine.tick();
    await flush();
    expect(run2.rings).toEqual(['PJSIP/1002']);
    run2.engine.stop();
    await run2.store.close();
  });

  it('external number: the second agent waits for the first and its conversation, then a first-probe delay after it', async () => {
    const now = { t: T0 };
    const { store, engine, rings } = await setup(now);
    const first = await optIn(engine, 'PJSIP/1001', '+12125551234');
    const second = await optIn(engine, 'PJSIP/1002', '+12125551234');
    now.t += 10 * 60_000;
    await engine.tick();
    await flush();
    expect(rings.map((r) => r.agent)).toEqual(['PJSIP/1001']);
    await engine.observe(first.requestId, { type: 'agentKey', key: '1' });
    now.t += 5000;
    const connectedAt = now.t;
    await engine.observe(first.requestId, { type: 'prospectAnswered' });
    await flush();
    // The prospect talks to agent 1: agent 2 waits, however long the probe delay has passed.
    now.t = connectedAt + 30 * 60_000;
    await engine.tick();
    await flush();
    expect((await store.get(second.requestId))!.request).toMatchObject({ state: 'DUE', waitingFor: 'colleague', reason: 'the prospect is on the phone with a colleague (since 10:10:05)' });
    expect(rings).toHaveLength(1);
    await engine.conversationEnded(first.requestId);
    await flush();
    expect((await store.events(first.requestId)).at(-1)).toMatchObject({ type: 'conversation-ended', at: now.t });
    const endedAt = now.t;
    expect((await store.get(second.requestId))!.request).toMatchObject({ state: 'DUE', waitingFor: 'grace', wakeAt: endedAt + 10 * 60_000 });
    now.t = endedAt + 10 * 60_000;
    await engine.tick();
    await flush();
    expect(rings.map((r) => r.agent)).toEqual(['PJSIP/1001', 'PJSIP/1002']);
    engine.stop();
  });

  it('the first agent cancelling lets the second go at once', async () => {
    const now = { t: T0 };
    const { engine, rings } = await setup(now);
    const first = await optIn(engine, 'PJSIP/1001', '+12125551234');
    await optIn(engine, 'PJSIP/1002', '+12125551234');
    now.t += 10 * 60_000;
    await engine.tick();
    await flush();
    expect(rings.map((r) => r.agent)).toEqual(['PJSIP/1001']);
    await engine.observe(first.requestId, { type: 'agentKey', key: '3' });
    await flush();
    await flush();
    expect(rings.map((r) => r.agent)).toEqual(['PJSIP/1001', 'PJSIP/1002']);
    engine.stop();
  });

  it('the offer knows the queue: position and the colleagues ahead', async () => {
    const now = { t: T0 };
    const { engine } = await setup(now);
    expect(await engine.offerOutlook('PJSIP/1002', '2001')).toMatchObject({ promise: 'regular', position: 1, queue: [] });
    await optIn(engine, 'PJSIP/1001', '2001');
    expect(await engine.offerOutlook('PJSIP/1002', '2001')).toMatchObject({ position: 2, queue: ['PJSIP/1001'] });
    expect(await engine.offerOutlook('PJSIP/1001', '2001')).toMatchObject({ position: 1 });
    await optIn(engine, 'PJSIP/1002', '2001');
    expect(await engine.offerOutlook('PJSIP/1003', '2001')).toMatchObject({ position: 3, queue: ['PJSIP/1001', 'PJSIP/1002'] });
    engine.stop();
  });
});

describe('Engine: the promise at the busy signal', () => {
  it('carry-over (default): Friday evening, stored as carried over to Monday', async () => {
    const now = { t: FRIDAY_EVENING };
    const { store, engine } = await setup(now);
    expect(await engine.offerOutlook('PJSIP/1001', '2001')).toMatchObject({ promise: 'next-calling-day' });
    const r = await optIn(engine, 'PJSIP/1001', '2001');
    expect(r.promise).toBe('next-calling-day');
    expect((await store.get(r.requestId))!.request).toMatchObject({ expiresBecause: 'carry-over', carriedOver: { opensAt: Date.UTC(2026, 10, 30, 8, 0, 0) } });
    engine.stop();
  });

  it('decline: no offer, nothing stored, and the reason', async () => {
    const now = { t: FRIDAY_EVENING };
    const { store, engine } = await setup(now, { afterHours: 'decline' });
    expect(await engine.offerOutlook('PJSIP/1001', '2001')).toMatchObject({ promise: 'declined' });
    const r = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1' }, prospect: '2001', language: 'en', channelId: 'c' });
    expect(r).toEqual({ result: 'closed', reason: 'outside calling hours in Europe/Berlin (next window Mon 09:00); policy.afterHours is "decline"' });
    expect(await store.list()).toEqual([]);
    engine.stop();
  });

  it('the CRM hears what was promised, and about a busy signal at which nothing was offered', async () => {
    const now = { t: FRIDAY_EVENING };
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const mk = (afterHours: 'carry-over' | 'decline') =>
      engineWorld({ store, policy: { afterHours }, clock: () => now.t, prospectDevice: () => undefined, outbox: outboxRowsFor, notOffered: notOfferedRow, started: false, pbxUp: false });
    const { engine: carry } = await mk('carry-over');
    await carry.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1' }, prospect: '0301234567', language: 'en', channelId: 'c' });
    const world = await mk('decline');
    const declined = world.engine;
    await declined.optIn({ agent: 'PJSIP/1002', agentCallerId: { name: 'A', number: '1' }, prospect: '0309999999', language: 'en', channelId: 'c' });
    const bodies = (await store.outbox()).map((o) => JSON.parse(o.body) as Record<string, unknown>);
    expect(bodies[0]).toMatchObject({
      event: 'requested',
      request: { timeZone: 'Europe/Berlin', promise: { kind: 'next-calling-day', opensAt: '2026-11-30T08:00:00.000Z', expiresAt: '2026-11-30T17:00:00.000Z' } },
    });
    expect(bodies[1]).toMatchObject({ event: 'not-offered', agent: 'PJSIP/1002', prospect: '0309999999', timeZone: 'Europe/Berlin', reason: expect.stringContaining('policy.afterHours is "decline"') });
    expect(world.outboxKicks).toBe(1);
  });

  it("the prospect's zone decides: 19:00 in Berlin is 13:00 in New York, a regular callback", async () => {
    const now = { t: FRIDAY_EVENING };
    const { store, engine } = await setup(now, { afterHours: 'decline' });
    expect(await engine.offerOutlook('PJSIP/1001', '+12125551234', 'America/New_York')).toMatchObject({ promise: 'regular', timeZone: 'America/New_York' });
    const r = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1' }, prospect: '+12125551234', language: 'en', channelId: 'c', timeZone: 'America/New_York', zoneSource: 'number' });
    expect(r).toMatchObject({ result: 'created', promise: 'regular' });
    if (r.result !== 'created') throw new Error('not created');
    expect((await store.get(r.requestId))!.request).toMatchObject({ timeZone: 'America/New_York', zoneSource: 'number' });
    engine.stop();
  });
});
