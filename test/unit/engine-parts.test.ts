/**
 * The engine's parts (src/engine/), each on its own over fake or in-memory neighbours: presence (device events →
 * the agent's status and observations; the agent's status as the policy sees it), the pauses, the opt-in, the queues
 * (who goes next outside the timer) and the recovery of orphaned recalls. The engine as a whole is specified in
 * engine.test.ts through testkit/engine.ts.
 */
import type { AgentPause, CallbackRequest, Observation } from '../../src/core/policy';
import { DialPolicyError } from '../../src/core/dial-policy';
import { Ledger } from '../../src/ledger';
import { OptIns, QUEUE_NAMES, type OptInsDeps } from '../../src/engine/opt-in';
import type { AppliedDecision } from '../../src/engine/options';
import { Pauses } from '../../src/engine/pauses';
import { Presence } from '../../src/engine/presence';
import { Queues } from '../../src/engine/queues';
import { reconcileRecalls } from '../../src/engine/recovery';
import { SqliteStore } from '../../src/store/sqlite';
import { notOfferedRow } from '../../src/webhook/payload';
import { T0, specPolicy } from '../../testkit/engine';
import { captureLog } from '../../testkit/log';

const req = (id: string, fields: Partial<CallbackRequest> = {}): CallbackRequest => ({ id, agent: 'PJSIP/1001', prospect: '2001', state: 'DUE', createdAt: T0, ...fields }) as CallbackRequest;
const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};
type Seen = { id: string; observation: Observation };

const stores: SqliteStore<CallbackRequest>[] = [];
const memory = () => {
  const s = SqliteStore.open<CallbackRequest>(':memory:');
  stores.push(s);
  return s;
};
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('presence (src/engine/presence.ts)', () => {
  function presence(watchers: Record<string, string[]> = {}, recalls: CallbackRequest[] = []) {
    const t = { now: T0 };
    const observed: Seen[] = [];
    const kicked: (string | undefined)[] = [];
    const paused = new Map<string, AgentPause>();
    let reads = 0;
    const p = new Presence({
      store: {
        pendingDependencies: async () => ({ count: 1, agents: ['PJSIP/1001'], lineProspects: ['2001', '+4930123'] }),
        pendingLineWatchers: async (prospects: string[]) => prospects.flatMap((n) => watchers[n] ?? []),
        list: async () => {
          reads++;
          return recalls;
        },
      },
      clock: () => t.now,
      prospectDevice: (n) => (n.startsWith('20') ? `PJSIP/${n}` : undefined),
      pauseOf: (agent) => paused.get(agent) ?? null,
      kickDue: async (agent) => void kicked.push(agent),
      observe: async (id, observation) => void observed.push({ id, observation }),
    });
    return { p, t, observed, kicked, paused, reads: () => reads };
  }

  it('a line event becomes a prospectState observation for each request watching that line; an unknown line none', async () => {
    const w = presence({ '2001': ['a', 'b'] });
    await w.p.deviceState('PJSIP/2001', { busy: false });
    expect(w.observed).toEqual([
      { id: 'a', observation: { type: 'prospectState', busy: false } },
      { id: 'b', observation: { type: 'prospectState', busy: false } },
    ]);
    await w.p.deviceState('PJSIP/2999', { busy: false });
    await w.p.deviceState('PJSIP/2001', undefined);
    expect(w.observed).toHaveLength(2);
  });

  it('devicesToWatch: the pending agents and internal lines (an external number has none)', async () => {
    expect((await presence().p.devicesToWatch()).sort()).toEqual(['PJSIP/1001', 'PJSIP/2001']);
  });

  it("an agent who becomes free after being seen busy has their due requests re-evaluated; the first free state does not", async () => {
    const w = presence();
    await w.p.deviceState('PJSIP/1001', { busy: false });
    expect(w.kicked).toEqual([]);
    await w.p.deviceState('PJSIP/1001', { busy: true });
    w.t.now += 5000;
    await w.p.deviceState('PJSIP/1001', { busy: false });
    expect(w.kicked).toEqual(['PJSIP/1001']);
  });

  it("the agent's status: busy without a read while the PBX is down; the device's status once up; with the pause", async () => {
    const w = presence();
    const r = req('r');
    expect(await w.p.agentFor(r)).toEqual({ busy: true, since: T0 });
    expect(w.reads()).toBe(0);
    w.p.setPbxUp(true);
    expect(await w.p.agentFor(r)).toEqual({ busy: false, since: 0 });
    await w.p.deviceState('PJSIP/1001', { busy: true });
    expect(await w.p.agentFor(r)).toEqual({ busy: true, since: T0 });
    w.paused.set('PJSIP/1001', { since: T0, until: null });
    expect(await w.p.agentFor(r)).toEqual({ busy: true, since: T0, paused: { since: T0, until: null } });
  });

  it("another of the agent's recalls makes the agent busy", async () => {
    const w = presence({}, [req('other', { state: 'RINGING_AGENT' })]);
    w.p.setPbxUp(true);
    expect(await w.p.agentFor(req('r'))).toEqual({ busy: true, since: T0 });
  });

  it('the PBX coming up re-evaluates every due request once and marks when serving began (the first time only)', async () => {
    const w = presence();
    expect(w.p.servingSince).toBeUndefined();
    w.p.setPbxUp(true);
    w.p.setPbxUp(true);
    expect(w.kicked).toEqual([undefined]);
    expect(w.p.servingSince).toBe(T0);
    w.p.setPbxUp(false);
    w.t.now += 1000;
    w.p.setPbxUp(true);
    expect(w.kicked).toEqual([undefined, undefined]);
    expect(w.p.servingSince).toBe(T0);
  });
});

describe('the pauses (src/engine/pauses.ts)', () => {
  function pauses(store = memory()) {
    const t = { now: T0 };
    const released: string[] = [];
    const told: [string, AgentPause | null][] = [];
    const { log, lines } = captureLog();
    const p = new Pauses({ store, log, clock: () => t.now, stopped: () => false, release: async (agent) => void released.push(agent) });
    p.onChange((agent, pause) => told.push([agent, pause]));
    return { p, t, released, told, lines, store };
  }

  it("pause: durable, announced, told to the listeners, and the agent's due requests re-evaluated; resume likewise", async () => {
    const w = pauses();
    expect(await w.p.pause('PJSIP/1001', { until: null, by: 'web' })).toEqual({ since: T0, until: null });
    expect(await w.store.pauses()).toEqual([{ agent: 'PJSIP/1001', since: T0, until: null, by: 'web' }]);
    expect(w.p.pauseOf('PJSIP/1001')).toEqual({ since: T0, until: null });
    expect(w.p.pausedAgents()).toEqual([{ agent: 'PJSIP/1001', since: T0, until: null, by: 'web' }]);
    expect(w.told).toEqual([['PJSIP/1001', { since: T0, until: null }]]);
    expect(w.released).toEqual(['PJSIP/1001']);
    await w.p.resume('PJSIP/1001', 'phone');
    expect(await w.store.pauses()).toEqual([]);
    expect(w.p.pauseOf('PJSIP/1001')).toBeNull();
    expect(w.told[1]).toEqual(['PJSIP/1001', null]);
    expect(w.released).toEqual(['PJSIP/1001', 'PJSIP/1001']);
    expect(w.lines.map((l) => l.event).filter(Boolean)).toEqual(['agent.paused', 'agent.resumed']);
  });

  it('a pause must end ahead; nothing is stored otherwise', async () => {
    const w = pauses();
    await expect(w.p.pause('PJSIP/1001', { until: T0, by: 'web' })).rejects.toThrow(/ahead/);
    expect(await w.store.pauses()).toEqual([]);
    expect(w.told).toEqual([]);
  });

  it('a pause with a time ends by itself: not in force after it, and the next load tells the listeners once', async () => {
    const w = pauses();
    await w.p.pause('PJSIP/1001', { until: T0 + 1000, by: 'web' });
    w.t.now = T0 + 1000;
    expect(w.p.pauseOf('PJSIP/1001')).toBeNull();
    expect(w.p.pausedAgents()).toEqual([]);
    await w.p.load();
    await w.p.load();
    expect(w.told).toEqual([
      ['PJSIP/1001', { since: T0, until: T0 + 1000 }],
      ['PJSIP/1001', null],
    ]);
  });

  it("load: another process's pause is read and told; the toggle resumes it, and pauses again", async () => {
    const store = memory();
    await store.setPause('PJSIP/1002', { since: T0, until: null, by: 'other' });
    const w = pauses(store);
    await w.p.load();
    expect(w.told).toEqual([['PJSIP/1002', { since: T0, until: null }]]);
    expect(await w.p.togglePause('PJSIP/1002', 'phone')).toEqual({ paused: false });
    expect(await w.p.togglePause('PJSIP/1002', 'phone')).toEqual({ paused: true });
    expect(w.p.pauseOf('PJSIP/1002')).toEqual({ since: T0, until: null });
  });

  it("watch: another process's pause and resume are read every interval, told, and the agent released once each", async () => {
    const store = memory();
    const w = pauses(store);
    w.p.watch(10);
    try {
      await store.setPause('PJSIP/1003', { since: T0, until: null, by: 'cli' });
      for (let i = 0; i < 200 && w.told.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(w.told).toEqual([['PJSIP/1003', { since: T0, until: null }]]);
      expect(w.released).toEqual(['PJSIP/1003']);
      await store.setPause('PJSIP/1003', null);
      for (let i = 0; i < 200 && w.told.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(w.told[1]).toEqual(['PJSIP/1003', null]);
      expect(w.released).toEqual(['PJSIP/1003', 'PJSIP/1003']);
    } finally {
      w.p.unwatch();
    }
    // Unchanged pauses release nobody.
    await w.p.reread();
    expect(w.released).toHaveLength(2);
  });

  it('a throwing listener is logged, never fatal; a failed read keeps the last known pauses', async () => {
    const store = memory();
    const w = pauses(store);
    w.p.onChange(() => {
      throw new Error('boom');
    });
    await w.p.pause('PJSIP/1001', { until: null, by: 'web' });
    expect(w.lines.some((l) => l.level === 'error' && l.agent === 'PJSIP/1001' && l.error === 'boom')).toBe(true);
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    await w.p.load();
    expect(w.p.pauseOf('PJSIP/1001')).toEqual({ since: T0, until: null });
  });
});

describe('the opt-in (src/engine/opt-in.ts)', () => {
  function optIns(extra: Partial<OptInsDeps['opts']> = {}) {
    const store = memory();
    const t = { now: T0 };
    const performed: string[] = [];
    const applied: AppliedDecision[] = [];
    const lines: [string, string][] = [];
    const watched: string[] = [];
    let armed = 0;
    let outboxKicks = 0;
    const { log, lines: logged } = captureLog();
    const ledger = new Ledger({ store, policy: specPolicy(), clock: () => t.now, agentStatus: () => ({ busy: false, since: 0 }) });
    const o = new OptIns({
      opts: {
        policy: specPolicy(),
        maxPendingPerAgent: 10,
        prospectDevice: (n) => (n.startsWith('20') ? `PJSIP/${n}` : undefined),
        watch: (d) => watched.push(d),
        notOffered: notOfferedRow,
        outboxQueued: () => outboxKicks++,
        ...extra,
      },
      store,
      ledger,
      log,
      clock: () => t.now,
      stopped: () => false,
      exclusive: (f) => f(),
      // No group here: a side effect runs at once, as it does outside a decision (the engine's queue in group-commit.test.ts).
      afterCommit: (fn) => fn(performance.now()),
      perform: (d) => performed.push(d.request.id),
      applied: (a) => applied.push(a),
      arm: async () => void armed++,
      presence: { rememberLine: (device, prospect) => lines.push([device, prospect]), agentGiven: () => ({ busy: false, since: 0 }) },
    });
    const optIn = (agent: string, prospect: string) => o.optIn({ agent, agentCallerId: { name: 'A', number: '1001' }, prospect, language: 'en', channelId: `c-${agent}` });
    return { o, optIn, store, t, performed, applied, lines, watched, armed: () => armed, outboxKicks: () => outboxKicks, logged };
  }

  it('a new opt-in is stored, carried out, told, its line and agent watched, the timer re-armed; the place in the queue follows', async () => {
    const w = optIns();
    const r = await w.optIn('PJSIP/1001', '2001');
    expect(r).toMatchObject({ result: 'created', promise: 'regular', position: 1 });
    if (r.result !== 'created') throw new Error('not created');
    expect((await w.store.get(r.requestId))?.request.state).toBe('WAITING');
    expect(w.performed).toEqual([r.requestId]);
    expect(w.applied.map((a) => a.observation.type)).toEqual(['optIn']);
    expect(w.lines).toEqual([['PJSIP/2001', '2001']]);
    expect(w.watched).toEqual(['PJSIP/2001', 'PJSIP/1001']);
    expect(w.armed()).toBe(1);
    expect(await w.optIn('PJSIP/1002', '2001')).toMatchObject({ result: 'created', position: 2 });
    expect(await w.optIn('PJSIP/1001', '2001')).toMatchObject({ result: 'refreshed', requestId: r.requestId, position: 1 });
  });

  it('a new request reads nothing before or after the store\'s opt-in (its place comes with it); a refresh reads the recalls inside its one opt-in', async () => {
    const w = optIns();
    const reads: string[] = [];
    const store = w.store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const m of ['list', 'findPending', 'prospectQueue', 'get', 'pending', 'countPending', 'idsInState', 'createOrRefresh']) {
      const f = store[m].bind(w.store);
      store[m] = (...a: unknown[]) => {
        reads.push(m);
        return f(...a);
      };
    }
    expect(await w.optIn('PJSIP/1001', '2001')).toMatchObject({ result: 'created', position: 1 });
    expect(await w.optIn('PJSIP/1002', '2001')).toMatchObject({ result: 'created', position: 2 });
    expect(reads).toEqual(['createOrRefresh', 'createOrRefresh']);
    reads.length = 0;
    expect(await w.optIn('PJSIP/1002', '2001')).toMatchObject({ result: 'refreshed', position: 2 });
    // One opt-in statement for the refresh too (the store found the pending request and handed it to the decision).
    expect(reads).toEqual(['createOrRefresh', 'list']);
    expect(w.applied.map((a) => [a.observation.type, a.before?.id === undefined])).toEqual([
      ['optIn', true],
      ['optIn', true],
      ['optIn', false],
    ]);
  });

  it('the outlook: the promise and the place in the queue, with the colleagues waiting; read-only', async () => {
    const w = optIns();
    await w.optIn('PJSIP/1002', '2001');
    const before = w.performed.length;
    expect(await w.o.offerOutlook('PJSIP/1001', '2001')).toMatchObject({ promise: 'regular', position: 2, queue: ['PJSIP/1002'] });
    expect(await w.o.offerOutlook('PJSIP/1002', '2001')).toMatchObject({ position: 1, queue: [], waiting: 0 });
    expect(w.performed).toHaveLength(before);
  });

  it('the outlook of a number many agents wait for: the place counted, the first QUEUE_NAMES colleagues named, how many in all', async () => {
    const w = optIns();
    const agents = Array.from({ length: QUEUE_NAMES + 5 }, (_, i) => `PJSIP/3${String(i).padStart(3, '0')}`);
    for (const a of agents) await w.optIn(a, '2001');
    expect(await w.o.offerOutlook('PJSIP/1001', '2001')).toMatchObject({ position: agents.length + 1, queue: agents.slice(0, QUEUE_NAMES), waiting: agents.length });
    expect(await w.o.offerOutlook(agents[12], '2001')).toMatchObject({
      position: 13,
      queue: agents.filter((a) => a !== agents[12]).slice(0, QUEUE_NAMES),
      waiting: agents.length - 1,
    });
  });

  it('a number the dial policy refuses: no request, a DialPolicyError', async () => {
    const w = optIns({ dialPolicy: { agentDevices: ['PJSIP/*'], prospectAllow: [], prospectDeny: ['2'] } });
    await expect(w.optIn('PJSIP/1001', '2001')).rejects.toBeInstanceOf(DialPolicyError);
    expect(await w.store.list({})).toEqual([]);
    expect(w.logged.some((l) => l.event === 'dial.refused')).toBe(true);
  });

  it('nothing offered: logged, the CRM row queued and the sender told', async () => {
    const w = optIns();
    await w.o.noOffer('PJSIP/1001', '2001', 'Europe/Berlin', 'after hours');
    expect(w.logged.some((l) => l.event === 'offer.closed')).toBe(true);
    expect(w.outboxKicks()).toBe(1);
  });

  it("the CRM's name: written once to an open request and told; the same name again, or a finished request, nothing", async () => {
    const w = optIns();
    const r = await w.optIn('PJSIP/1001', '2001');
    if (r.result !== 'created') throw new Error('not created');
    expect((await w.o.setContact(r.requestId, { name: 'Eva Berg' }))?.contact).toEqual({ name: 'Eva Berg' });
    expect(await w.o.setContact(r.requestId, { name: 'Eva Berg' })).toBeUndefined();
    expect(w.applied.map((a) => a.observation.type)).toEqual(['optIn', 'annotate']);
    expect((await w.store.get(r.requestId))?.request.contact).toEqual({ name: 'Eva Berg' });
  });

  it('the look-up starts after the opt-in and its answer lands on the request', async () => {
    const w = optIns({ contacts: { cached: () => undefined, lookup: async () => ({ found: true, contact: { name: 'Anna Schmidt' } }) } });
    const r = await w.optIn('PJSIP/1001', '+4930123');
    if (r.result !== 'created') throw new Error('not created');
    await flush();
    expect((await w.store.get(r.requestId))?.request.contact).toEqual({ name: 'Anna Schmidt' });
  });
});

describe('the queues (src/engine/queues.ts)', () => {
  function queues(store: Partial<Record<'list' | 'idsInState' | 'prospectQueue' | 'lastConversation', (...a: never[]) => Promise<unknown>>>) {
    const observed: Seen[] = [];
    const { log, lines } = captureLog();
    const q = new Queues({
      store: store as never,
      ledger: { conversationEnded: async (id: string) => (id === 'known' ? req(id, { prospect: '2001' }) : undefined) } as never,
      log,
      clock: () => T0,
      stopped: () => false,
      observe: async (id, observation) => void observed.push({ id, observation }),
      servingSince: () => undefined,
    });
    return { q, observed, lines };
  }

  it("an agent's due requests are re-evaluated in opt-in order; without an agent, every due request", async () => {
    const w = queues({
      list: async () => [req('late', { createdAt: T0 + 5 }), req('b', { createdAt: T0 }), req('a', { createdAt: T0 })],
      idsInState: async () => ['x', 'y'],
    });
    await w.q.kickDue('PJSIP/1001');
    expect(w.observed.map((o) => o.id)).toEqual(['a', 'b', 'late']);
    await w.q.kickDue();
    expect(w.observed.map((o) => o.id)).toEqual(['a', 'b', 'late', 'x', 'y']);
    expect(w.observed.every((o) => o.observation.type === 'tick')).toBe(true);
  });

  it('a failed read is logged, never thrown', async () => {
    const w = queues({ idsInState: async () => Promise.reject(new Error('disk')) });
    await expect(w.q.kickDue()).resolves.toBeUndefined();
    expect(w.lines.some((l) => l.level === 'error' && l.error === 'disk')).toBe(true);
  });

  it('a conversation ended: the next DUE colleague of this PBX for the number goes, after the current decision', async () => {
    const queue = [
      { id: 'known', agent: 'PJSIP/1001', state: 'COMPLETED' },
      { id: 'next', agent: 'PJSIP/1002', state: 'DUE' },
      { id: 'waits', agent: 'PJSIP/1003', state: 'WAITING' },
    ];
    const w = queues({ prospectQueue: async () => queue });
    await w.q.conversationEnded('known');
    expect(w.observed).toEqual([]);
    await flush();
    expect(w.observed).toEqual([{ id: 'next', observation: { type: 'tick' } }]);
    await w.q.conversationEnded('unknown');
    await flush();
    expect(w.observed).toHaveLength(1);
  });

  it("the colleagues: those ahead for the number and the last conversation's times", async () => {
    const w = queues({
      prospectQueue: async () => [
        { id: 'a', agent: 'PJSIP/1002', state: 'WAITING' },
        { id: 'r', agent: 'PJSIP/1001', state: 'WAITING' },
      ],
      lastConversation: async () => ({ connectedAt: T0 - 10, endedAt: T0 - 5, samePbx: true }),
    });
    expect(await w.q.colleaguesOf(req('r'))).toEqual({ ahead: 1, lastConnectedAt: T0 - 10, lastCallEndedAt: T0 - 5 });
  });
});

describe('the recovery of orphaned recalls (src/engine/recovery.ts)', () => {
  it('a recall begun before this process served and run by no call of it is interrupted; the others are left', async () => {
    const observed: Seen[] = [];
    const { log, lines } = captureLog();
    const list = [
      req('orphan', { state: 'RINGING_AGENT', recallStartedAt: T0 - 100 }),
      req('ours', { state: 'CONNECTING', recallStartedAt: T0 - 100 }),
      req('new', { state: 'RINGING_AGENT', recallStartedAt: T0 + 1 }),
      req('unstarted', { state: 'RINGING_AGENT', recallStartedAt: null }),
    ];
    const n = await reconcileRecalls(
      { store: { list: async () => list }, log, stopped: () => false, startedAt: () => T0, observe: async (id, observation) => (observed.push({ id, observation }), true) },
      (id) => id === 'ours',
    );
    expect(n).toBe(1);
    expect(observed).toEqual([{ id: 'orphan', observation: { type: 'recallInterrupted', reason: expect.stringContaining('gone') } }]);
    expect(lines.filter((l) => l.event === 'recall.interrupted')).toHaveLength(1);
  });

  it('stopped, or the recalls unreadable: nothing, and the read failure is logged', async () => {
    const { log, lines } = captureLog();
    const deps = { log, startedAt: () => T0, observe: async () => true };
    expect(await reconcileRecalls({ ...deps, store: { list: async () => [req('x', { state: 'RINGING_AGENT', recallStartedAt: 0 })] }, stopped: () => true }, () => false)).toBe(0);
    expect(await reconcileRecalls({ ...deps, store: { list: async () => Promise.reject(new Error('disk')) }, stopped: () => false }, () => false)).toBe(0);
    expect(lines.some((l) => l.level === 'error' && l.error === 'disk')).toBe(true);
  });
});
