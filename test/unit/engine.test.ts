import { PassThrough } from 'node:stream';
import { defaultPolicyConfig, makePolicyConfig, type CallbackRequest } from '../../src/core/policy';
import { Engine } from '../../src/engine';
import { createLogger } from '../../src/logging/log';
import { SqliteStore } from '../../src/store/sqlite';

const T0 = Date.UTC(2026, 10, 25, 9, 0, 0); // a Wednesday, 10:00 in Berlin

function setup(now: { t: number }) {
  const store = SqliteStore.open<CallbackRequest>(':memory:');
  const log = createLogger({ format: 'json', stream: new PassThrough() });
  const engine = new Engine({
    store,
    log,
    policy: makePolicyConfig({ ...defaultPolicyConfig, graceMs: 60_000 }),
    clock: () => now.t,
    maxPendingPerAgent: 10,
    prospectDevice: (n) => (n.startsWith('20') ? `PJSIP/${n}` : undefined),
  });
  const watched: string[] = [];
  engine.onWatch = (d) => watched.push(d);
  return { store, engine, watched };
}

const optIn = (engine: Engine, agent: string, prospect: string) =>
  engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect, language: 'en', channelId: 'c' });

describe('Engine: device states reach only the requests that watch that line', () => {
  it('routes a line-free event to the requests of that prospect, by device, without touching others', async () => {
    const now = { t: T0 };
    const { store, engine, watched } = setup(now);
    const a = await optIn(engine, 'PJSIP/1001', '2001');
    const b = await optIn(engine, 'PJSIP/1002', '2001');
    const c = await optIn(engine, 'PJSIP/1001', '2002');
    const ext = await optIn(engine, 'PJSIP/1003', '+4930123456');
    expect(watched).toEqual(expect.arrayContaining(['PJSIP/2001', 'PJSIP/2002', 'PJSIP/1001', 'PJSIP/1002', 'PJSIP/1003']));
    now.t += 1000;
    await engine.deviceState('PJSIP/2001', { busy: false });
    const state = async (r: typeof a) => (r.result === 'full' || r.result === 'closed' ? '' : (await store.get(r.requestId))!.request.state);
    expect(await Promise.all([state(a), state(b), state(c), state(ext)])).toEqual(['GRACE', 'GRACE', 'WAITING', 'WAITING']);
    // An agent's device changing is not a prospect line: nothing moves.
    await engine.deviceState('PJSIP/1001', { busy: true });
    expect(await Promise.all([state(a), state(b), state(c)])).toEqual(['GRACE', 'GRACE', 'WAITING']);
  });

  it('after a restart, the lines to watch come from the store without loading every request', async () => {
    const now = { t: T0 };
    const first = setup(now);
    await optIn(first.engine, 'PJSIP/1001', '2001');
    await optIn(first.engine, 'PJSIP/1002', '+4930123456');
    const deps = await first.store.pendingDependencies();
    expect(deps).toEqual({ agents: expect.arrayContaining(['PJSIP/1001', 'PJSIP/1002']), lineProspects: ['2001'], count: 2 });
    const again = new Engine({
      store: first.store,
      log: createLogger({ format: 'json', stream: new PassThrough() }),
      policy: defaultPolicyConfig,
      clock: () => now.t,
      maxPendingPerAgent: 10,
      prospectDevice: (n) => (n.startsWith('20') ? `PJSIP/${n}` : undefined),
    });
    const watched: string[] = [];
    again.onWatch = (d) => watched.push(d);
    await again.start();
    expect(watched.sort()).toEqual(['PJSIP/1001', 'PJSIP/1002', 'PJSIP/2001']);
    await again.deviceState('PJSIP/2001', { busy: false });
    expect((await first.store.list()).map((r) => r.state).sort()).toEqual(['GRACE', 'WAITING']);
    again.stop();
  });
});

describe('Engine: recalls an earlier run or instance left are reconciled as interrupted', () => {
  it('an orphaned recall (started before this engine served, run by no call here) is recorded at once: no snooze, rung again after the recovery delay', async () => {
    const now = { t: T0 };
    const first = setup(now);
    await first.engine.start();
    const r = await optIn(first.engine, 'PJSIP/1001', '+4930123456'); // timed: first probe after 10 min
    if (r.result !== 'created') throw new Error(r.result);
    first.engine.setPbxUp(true);
    now.t += 10 * 60_000;
    await first.engine.tick();
    expect((await first.store.get(r.requestId))!.request.state).toBe('RINGING_AGENT');
    await first.engine.observe(r.requestId, { type: 'agentAnswered' });
    first.engine.stop(); // the process dies in the menu

    now.t += 3000;
    const { engine } = { engine: new Engine({ store: first.store, log: createLogger({ format: 'json', stream: new PassThrough() }), policy: defaultPolicyConfig, clock: () => now.t, maxPendingPerAgent: 10, prospectDevice: () => undefined }) };
    await engine.start();
    // A recall this process runs is left alone.
    expect(await engine.reconcileRecalls((id) => id === r.requestId)).toBe(0);
    expect((await first.store.get(r.requestId))!.request.state).toBe('RINGING_AGENT');
    expect(await engine.reconcileRecalls(() => false)).toBe(1);
    const after = (await first.store.get(r.requestId))!.request;
    expect(after).toMatchObject({ state: 'WAITING', snoozes: 0, attempts: 0, waitingFor: 'recovery', wakeAt: now.t + 10_000 });
    const history = (await first.store.events(r.requestId)).map((e) => e.type);
    expect(history.at(-1)).toBe('recall-interrupted');
    expect(history).not.toContain('agent-snoozed');
    // Once is enough: nothing left to reconcile.
    expect(await engine.reconcileRecalls(() => false)).toBe(0);
    engine.stop();
  });

  it('a recall this engine started itself (after it began serving) is never taken for an orphan', async () => {
    const now = { t: T0 };
    const { store, engine } = setup(now);
    await engine.start();
    const r = await optIn(engine, 'PJSIP/1001', '+4930123456');
    if (r.result !== 'created') throw new Error(r.result);
    engine.setPbxUp(true);
    now.t += 10 * 60_000;
    await engine.tick();
    expect((await store.get(r.requestId))!.request.state).toBe('RINGING_AGENT');
    expect(await engine.reconcileRecalls(() => false)).toBe(0);
    expect((await store.get(r.requestId))!.request.state).toBe('RINGING_AGENT');
    engine.stop();
  });
});

describe('Engine: the opt-in marks its steps for the bench (OptInInput.marks)', () => {
  it('stamps each step once, in order, for a new request and for a refresh', async () => {
    const now = { t: T0 };
    const { engine } = setup(now);
    for (const expected of ['created', 'refreshed'] as const) {
      const marks: import('../../src/engine').OptInMarks = {};
      const r = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1' }, prospect: '2001', language: 'en', channelId: 'c', marks });
      expect(r.result).toBe(expected);
      const order = [marks.started, marks.read, marks.decided, marks.committed, marks.positioned];
      expect(order.every((x) => typeof x === 'number')).toBe(true);
      expect([...(order as number[])].sort((a, b) => a - b)).toEqual(order);
    }
  });
});
