/**
 * The engine's behaviour as a specification: given / when / then over a fake clock and fake ports, every engine built
 * by the one builder (testkit/engine.ts). What the engine itself does: the timer (wake-ups), the serial queue (one
 * decision at a time in this process), dispatching the decided actions (telephony, notifications, watched devices),
 * and routing the PBX's device states to the requests they concern. What is decided is the policy's (test/unit/policy).
 */
import { DEFAULT_AGENT_DEVICES, DEFAULT_PROSPECT_DENY } from '../../src/core/dial-policy';
import { engineWorld, type EngineWorld } from '../../testkit/engine';

const worlds: EngineWorld[] = [];
async function world(spec: Parameters<typeof engineWorld>[0] = {}): Promise<EngineWorld> {
  const w = await engineWorld({ policy: { graceMs: 60_000, agentWrapUpMs: 0 }, ...spec });
  worlds.push(w);
  return w;
}
/** Lets what the engine started on its own (a cancel after a refused call, a kick) run to its end. */
async function settled(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
}
afterEach(async () => {
  jest.useRealTimers();
  for (const w of worlds.splice(0)) await w.close();
});

describe('dispatching: a decision is written, then its actions go to the ports', () => {
  it('given an opt-in for an internal line, when the line frees and the grace is over, then the agent is rung once', async () => {
    const w = await world();
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await w.when.lineFrees('2001');
    expect(await w.then.stateOf(id)).toBe('GRACE');
    await w.when.timePasses(59_000);
    expect(w.then.rings()).toEqual([]);
    await w.when.timePasses(1_000);
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(w.then.rings()).toEqual(['PJSIP/1001']);
    // A repeated wake-up rings nobody again.
    await w.when.timePasses(0);
    expect(w.then.rings()).toEqual(['PJSIP/1001']);
  });

  it('the opt-in asks to watch the agent and the internal line; an external number has no line to watch', async () => {
    const w = await world();
    await w.given.optedIn('PJSIP/1001', '2001');
    await w.given.optedIn('PJSIP/1002', '+4930123456');
    expect([...new Set(w.watched)].sort()).toEqual(['PJSIP/1001', 'PJSIP/1002', 'PJSIP/2001']);
  });

  it('notify actions go to the notifier (the opt-in is announced as requested), telephony actions to the telephony', async () => {
    const w = await world();
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    expect(w.notified).toEqual([{ requestId: id, event: 'requested' }]);
    await w.when.lineFrees('2001');
    await w.when.timePasses(60_000);
    expect(w.then.actionsFor(id)).toEqual(['ringAgent']);
    expect(w.dispatched.every((d) => d.action.type !== ('notify' as string))).toBe(true);
  });

  it('given this instance no longer serves the PBX (canAct false), the decision is written but no action is carried out', async () => {
    let serving = true;
    const w = await world({ canAct: () => serving });
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await w.when.lineFrees('2001');
    serving = false;
    await w.when.timePasses(60_000);
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(w.then.rings()).toEqual([]);
  });

  it('without telephony the actions are skipped, the decisions still written', async () => {
    const w = await world({ telephony: false });
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await w.when.lineFrees('2001');
    await w.when.timePasses(60_000);
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(w.dispatched).toEqual([]);
  });

  it('a call the dial policy refuses just before it is made is not made; the request is cancelled', async () => {
    const policy = { agentDevices: [...DEFAULT_AGENT_DEVICES], prospectAllow: [], prospectDeny: [...DEFAULT_PROSPECT_DENY] };
    const open = await world();
    const id = await open.given.optedIn('PJSIP/1001', '2001');
    // The service restarts with a stricter policy: only 3xxx numbers may be dialled.
    const strict = await world({ store: open.store, dialPolicy: { ...policy, prospectAllow: ['3'] } });
    await strict.when.lineFrees('2001');
    await strict.when.timePasses(60_000);
    await settled();
    expect(strict.then.rings()).toEqual([]);
    expect(await strict.then.stateOf(id)).toBe('CANCELLED');
  });
});

describe("the CRM's name: asked again as the recall comes near when the opt-in could not have it", () => {
  /** A CRM that is down (the look-up gives up: undefined) until `up` is set. */
  function crm() {
    const asked: string[] = [];
    const c = {
      up: false,
      asked,
      cached: () => undefined,
      lookup: async (n: string) => {
        asked.push(n);
        return c.up ? { found: true as const, contact: { name: 'Anna Schmidt' } } : undefined;
      },
    };
    return c;
  }

  it('down at the opt-in, back when the line frees: the name is stored and the agent sees it on the recall', async () => {
    const contacts = crm();
    const w = await world({ contacts });
    await w.when.lineBusy('2001');
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await settled();
    expect(contacts.asked).toEqual(['2001']);
    expect((await w.then.request(id)).contact ?? null).toBeNull();

    contacts.up = true;
    await w.when.lineFrees('2001');
    await settled();
    expect(contacts.asked).toEqual(['2001', '2001']);
    expect((await w.then.request(id)).contact).toEqual({ name: 'Anna Schmidt' });
    await w.when.timePasses(60_000);
    const ring = w.dispatched.find((d) => d.action.type === 'ringAgent')?.action as { callerId?: { name?: string } } | undefined;
    expect(ring?.callerId?.name).toContain('Anna Schmidt');
  });

  it('a request that has its name is not asked again; one still unnamed is asked once per step, not per wake-up', async () => {
    const contacts = crm();
    contacts.up = true;
    const w = await world({ contacts });
    await w.when.lineBusy('2001');
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await settled();
    expect((await w.then.request(id)).contact).toEqual({ name: 'Anna Schmidt' });
    await w.when.lineFrees('2001');
    await w.when.timePasses(60_000);
    await settled();
    expect(contacts.asked).toEqual(['2001']);

    const down = crm();
    const w2 = await world({ contacts: down });
    await w2.when.lineBusy('2002');
    await w2.given.optedIn('PJSIP/1002', '2002');
    await w2.when.lineFrees('2002');
    await w2.when.timePasses(10_000);
    await w2.when.timePasses(10_000);
    await settled();
    // The opt-in, then the line freeing (GRACE): not every tick of the grace.
    expect(down.asked).toEqual(['2002', '2002']);
  });
});

describe('the serial queue: one decision at a time in this process', () => {
  it('two opt-ins of one agent for one number at the same moment: one request, created then refreshed', async () => {
    const w = await world();
    const [a, b] = await Promise.all([w.when.optIn('PJSIP/1001', '2001'), w.when.optIn('PJSIP/1001', '2001')]);
    expect([a.result, b.result]).toEqual(['created', 'refreshed']);
    expect(await w.store.list()).toHaveLength(1);
  });

  it('two due requests of one agent waking together: the agent is rung for one of them only', async () => {
    const w = await world();
    await w.given.optedIn('PJSIP/1001', '2001');
    await w.given.optedIn('PJSIP/1001', '2002');
    await Promise.all([w.when.lineFrees('2001'), w.when.lineFrees('2002')]);
    await w.when.timePasses(60_000);
    expect(w.then.rings()).toEqual(['PJSIP/1001']);
  });
});

describe('the timer: armed for the earliest wake-up', () => {
  it('given a request in grace, the timer alone wakes it when the grace is over (no tick by hand)', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const w = await world();
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await w.when.lineFrees('2001');
    w.when.clockMoves(60_000);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(w.then.rings()).toEqual(['PJSIP/1001']);
  });

  it('a stopped engine wakes nothing', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const w = await world();
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await w.when.lineFrees('2001');
    w.engine.stop();
    w.when.clockMoves(60_000);
    await jest.advanceTimersByTimeAsync(60_000);
    await w.when.timePasses(0);
    expect(await w.then.stateOf(id)).toBe('GRACE');
  });
});

describe('device states reach only the requests that watch that line, and the agents', () => {
  it('routes a line-free event to the requests of that prospect, by device, without touching others', async () => {
    const w = await world();
    const a = await w.given.optedIn('PJSIP/1001', '2001');
    const b = await w.given.optedIn('PJSIP/1002', '2001');
    const c = await w.given.optedIn('PJSIP/1001', '2002');
    const ext = await w.given.optedIn('PJSIP/1003', '+4930123456');
    w.when.clockMoves(1000);
    await w.when.lineFrees('2001');
    const states = () => Promise.all([a, b, c, ext].map((id) => w.then.stateOf(id)));
    expect(await states()).toEqual(['GRACE', 'GRACE', 'WAITING', 'WAITING']);
    // An agent's device changing is not a prospect line: nothing moves.
    await w.when.agentBusy('PJSIP/1001');
    expect(await states()).toEqual(['GRACE', 'GRACE', 'WAITING', 'WAITING']);
  });

  it('after a restart, the lines to watch come from the store without loading every request', async () => {
    const first = await world();
    await first.given.optedIn('PJSIP/1001', '2001');
    await first.given.optedIn('PJSIP/1002', '+4930123456');
    expect(await first.store.pendingDependencies()).toEqual({ agents: expect.arrayContaining(['PJSIP/1001', 'PJSIP/1002']), lineProspects: ['2001'], count: 2 });
    first.engine.stop();
    const again = await world({ store: first.store });
    expect([...again.watched].sort()).toEqual(['PJSIP/1001', 'PJSIP/1002', 'PJSIP/2001']);
    await again.when.lineFrees('2001');
    expect((await first.store.list()).map((r) => r.state).sort()).toEqual(['GRACE', 'WAITING']);
  });

  it('given a due request whose agent is on the phone, when the agent hangs up, then the agent is rung at once (not at the next re-check)', async () => {
    const w = await world();
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await w.when.agentBusy('PJSIP/1001');
    await w.when.lineFrees('2001');
    await w.when.timePasses(60_000);
    expect(await w.then.stateOf(id)).toBe('DUE');
    await w.when.agentFree('PJSIP/1001');
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(w.then.rings()).toEqual(['PJSIP/1001']);
  });

  it('while the PBX is unreachable a due request waits; when it is back, it is rung', async () => {
    const w = await world({ pbxUp: false });
    const id = await w.given.optedIn('PJSIP/1001', '2001');
    await w.when.lineFrees('2001');
    await w.when.timePasses(60_000);
    expect(await w.then.stateOf(id)).toBe('DUE');
    w.engine.setPbxUp(true);
    await settled();
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(w.then.rings()).toEqual(['PJSIP/1001']);
  });
});

describe('recalls an earlier run or instance left are reconciled as interrupted', () => {
  it('an orphaned recall (started before this engine served, run by no call here) is recorded at once: no snooze, rung again after the recovery delay', async () => {
    const first = await world({ policy: {} });
    const id = await first.given.optedIn('PJSIP/1001', '+4930123456'); // timed: first probe after 10 min
    await first.when.timePasses(10 * 60_000);
    expect(await first.then.stateOf(id)).toBe('RINGING_AGENT');
    await first.when.observed(id, { type: 'agentAnswered' });
    first.engine.stop(); // the process dies in the menu

    const engine = (await world({ policy: {}, store: first.store, at: first.now + 3000 })).engine;
    // A recall this process runs is left alone.
    expect(await engine.reconcileRecalls((r) => r === id)).toBe(0);
    expect(await first.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(await engine.reconcileRecalls(() => false)).toBe(1);
    expect(await first.then.request(id)).toMatchObject({ state: 'WAITING', snoozes: 0, attempts: 0, waitingFor: 'recovery', wakeAt: first.now + 3000 + 10_000 });
    const history = await first.then.history(id);
    expect(history.at(-1)).toBe('recall-interrupted');
    expect(history).not.toContain('agent-snoozed');
    // Once is enough: nothing left to reconcile.
    expect(await engine.reconcileRecalls(() => false)).toBe(0);
  });

  it('a recall this engine started itself (after it began serving) is never taken for an orphan', async () => {
    const w = await world({ policy: {} });
    const id = await w.given.optedIn('PJSIP/1001', '+4930123456');
    await w.when.timePasses(10 * 60_000);
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
    expect(await w.engine.reconcileRecalls(() => false)).toBe(0);
    expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');
  });
});

describe('Engine: the opt-in marks its steps for the bench (OptInInput.marks)', () => {
  it('stamps each step once, in order, for a new request and for a refresh', async () => {
    const { engine } = await world();
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
