/**
 * Returning a recall (src/flows/return.ts) and the recall flow running on the agent's own call
 * (RecallFlow.takeOver), against fake ports.
 */
import type { Action, CallbackRequest, Observation } from '../../../src/core/policy';
import { RecallFlow, type RecallOptions, type ReturnOutcome } from '../../../src/flows/recall';
import { ReturnFlow, orderReturn } from '../../../src/flows/return';
import { FakeCallPort, FakeSwitchboard, capturedLog, settle } from '../fake-port';

const OPTS: RecallOptions = {
  outboundContext: 'cc-outbound',
  alertInfo: '',
  menuTimeoutMs: 8000,
  prompts: {
    recallIntro: 'sound:cc-recall-intro',
    recallMenu: 'sound:cc-recall-menu',
    recallNumber: 'sound:cc-recall-number',
    connecting: 'sound:cc-connecting',
    stillBusy: 'sound:cc-still-busy',
    noAnswer: 'sound:cc-no-answer',
    snoozed: 'sound:cc-snoozed',
    cancelled: 'sound:cc-cancelled',
  },
};

function req(id: string, over: Partial<CallbackRequest> = {}): CallbackRequest {
  return { id, agent: 'PJSIP/1001', prospect: '2995', language: 'en', state: 'WAITING', rings: 0, updatedAt: 0, createdAt: 0, wakeAt: 1000, ...over } as CallbackRequest;
}

describe('orderReturn', () => {
  it('missed or due first, the most recent first; then the rest in calling order', () => {
    const list = [
      req('waiting-late', { wakeAt: 9000, createdAt: 1 }),
      req('missed-old', { rings: 1, updatedAt: 100 }),
      req('due', { state: 'DUE', updatedAt: 200 }),
      req('waiting-soon', { wakeAt: 5000, createdAt: 2 }),
      req('missed-new', { rings: 2, updatedAt: 300 }),
    ];
    expect(orderReturn(list).map((r) => r.id)).toEqual(['missed-new', 'due', 'missed-old', 'waiting-soon', 'waiting-late']);
  });
});

/** A recall flow whose policy is played by the test: `decide` turns an observation into actions. */
function recallWith(decide: (id: string, o: Observation) => Action[] | undefined) {
  const pbx = new FakeSwitchboard();
  const reports: Array<[string, Observation]> = [];
  const { log, lines } = capturedLog();
  const requests = new Map<string, CallbackRequest>();
  // eslint-disable-next-line prefer-const
  let flow: RecallFlow;
  const observe = async (id: string, o: Observation) => {
    reports.push([id, o]);
    const actions = decide(id, o);
    if (!actions) return false;
    for (const a of actions) if (a.type !== 'notify') await flow.execute(requests.get(id)!, a);
    return true;
  };
  flow = new RecallFlow(pbx, { observe, stateOf: () => 'RINGING_AGENT' }, OPTS, log);
  return { pbx, flow, reports, lines, requests, observe };
}

describe('RecallFlow.takeOver: the recall on the agent\'s own call', () => {
  it('the menu plays on the agent\'s call; 1 dials the prospect into a bridge with THAT call; the conversation\'s end hands it back as connected', async () => {
    const t = recallWith((_id, o) => {
      if (o.type === 'agentReturned') return [{ type: 'announce', channelId: 'ccb-r1-2', prompt: 'menu' }];
      if (o.type === 'agentKey' && o.key === '1')
        return [
          { type: 'announce', channelId: 'ccb-r1-2', prompt: 'connecting' },
          { type: 'dialProspect', attempt: 1, channelId: 'ccb-r1-2-p', agentChannelId: 'ccb-r1-2', callerId: { name: 'Agent', number: '1001' }, timeoutMs: 45000 },
        ];
      return [];
    });
    t.requests.set('r1', req('r1'));
    const own = new FakeCallPort('agent-call-7');
    own.autoFinish = false;
    const outcome = t.flow.takeOver('r1', own, () => t.observe('r1', { type: 'agentReturned' }));
    await settle();
    expect(own.playing?.slice(0, 2)).toEqual(['sound:cc-recall-intro', 'sound:cc-recall-menu']);
    expect(t.lines.find((l) => l.event === 'recall.returned')).toMatchObject({ requestId: 'r1', agentCallId: 'agent-call-7' });
    own.press('1');
    await settle();
    own.finishPrompt(); // "connecting"
    await settle();
    expect(t.reports.map(([, o]) => o)).toEqual([{ type: 'agentReturned' }, { type: 'agentKey', key: '1' }]);
    expect(t.pbx.calls).toEqual(expect.arrayContaining(['createBridge ccb-r1-2-b', 'addToBridge ccb-r1-2-b agent-call-7']));
    expect(t.pbx.calls.find((c) => c.startsWith('originate Local/2995@cc-outbound ccb-r1-2-p'))).toBeDefined();
    t.flow.onStasisStart('ccb-r1-2-p', ['prospect', 'r1']);
    await settle();
    expect(t.pbx.calls).toContain('addToBridge ccb-r1-2-b ccb-r1-2-p');
    // The prospect hangs up: the agent's call is handed back, never hung up by the recall.
    t.pbx.ports.get('ccb-r1-2-p')!.hangUp(16);
    expect(await outcome).toBe<ReturnOutcome>('connected');
    expect(t.pbx.calls).not.toContain('hangup agent-call-7');
    expect(t.pbx.calls).not.toContain('hangup ccb-r1-2');
    expect(own.calls).not.toContain('hangup normal');
  });

  it('2: "snoozed", then the call is handed back (released), not hung up', async () => {
    const t = recallWith((_id, o) => {
      if (o.type === 'agentReturned') return [{ type: 'announce', channelId: 'ccb-r1-2', prompt: 'menu' }];
      if (o.type === 'agentKey') return [{ type: 'announce', channelId: 'ccb-r1-2', prompt: 'snoozed' }, { type: 'hangupAgent', channelId: 'ccb-r1-2' }];
      return [];
    });
    t.requests.set('r1', req('r1'));
    const own = new FakeCallPort('agent-call-8');
    own.autoFinish = false;
    const outcome = t.flow.takeOver('r1', own, () => t.observe('r1', { type: 'agentReturned' }));
    await settle();
    own.press('2');
    await settle();
    own.finishPrompt();
    expect(await outcome).toBe('released');
    expect(t.pbx.calls.filter((c) => c.startsWith('hangup'))).toEqual([]);
    expect(t.flow.active).toBe(0);
  });

  it('the agent hangs up during the menu: reported as agentHungUp, outcome gone', async () => {
    const t = recallWith((_id, o) => (o.type === 'agentReturned' ? [{ type: 'announce', channelId: 'ccb-r1-2', prompt: 'menu' }] : []));
    t.requests.set('r1', req('r1'));
    const own = new FakeCallPort('agent-call-9');
    own.autoFinish = false;
    const outcome = t.flow.takeOver('r1', own, () => t.observe('r1', { type: 'agentReturned' }));
    await settle();
    own.hangUp(16);
    expect(await outcome).toBe('gone');
    await settle();
    expect(t.reports.map(([, o]) => o.type)).toEqual(['agentReturned', 'agentHungUp']);
  });

  it('the policy does not take it (the request changed meanwhile): skipped, nothing played', async () => {
    const t = recallWith(() => undefined);
    t.requests.set('r1', req('r1'));
    const own = new FakeCallPort('agent-call-10');
    expect(await t.flow.takeOver('r1', own, () => t.observe('r1', { type: 'agentReturned' }))).toBe('skipped');
    expect(own.calls).toEqual([]);
  });
});

describe('ReturnFlow', () => {
  function flow(pending: CallbackRequest[], outcomes: ReturnOutcome[]) {
    const taken: string[] = [];
    const { log, lines } = capturedLog();
    const f = new ReturnFlow(
      {
        pendingOf: () => pending,
        takeOver: async (id) => {
          taken.push(id);
          return outcomes.shift() ?? 'released';
        },
      },
      { prompts: { noCallbacks: 'sound:cc-no-callbacks' }, languages: ['en', 'de'], defaultLanguage: 'en' },
      log,
    );
    return { f, taken, lines };
  }

  it('nothing pending: answers, "No callbacks for you.", hangs up', async () => {
    const { f, taken, lines } = flow([], []);
    const port = new FakeCallPort('c1', { language: 'de' });
    await f.run(port, ['return', 'PJSIP/1001']);
    expect(port.calls).toEqual(['setLanguage de', 'answer', 'play sound:cc-no-callbacks', 'hangup normal']);
    expect(taken).toEqual([]);
    expect(lines.find((l) => l.event === 'return.ended')).toMatchObject({ offered: 0, reason: 'list done' });
  });

  it('the most recent missed one first, then the rest; each handed back leads to the next; then "no callbacks"', async () => {
    const { f, taken, lines } = flow([req('w1', { wakeAt: 50 }), req('missed', { rings: 1, updatedAt: 10 })], ['released', 'released']);
    const port = new FakeCallPort('c2');
    await f.run(port, ['return', 'PJSIP/1001']);
    expect(taken).toEqual(['missed', 'w1']);
    expect(port.calls.slice(-2)).toEqual(['play sound:cc-no-callbacks', 'hangup normal']);
    expect(lines.find((l) => l.event === 'return.asked')).toMatchObject({ pending: 2, first: 'missed', agent: 'PJSIP/1001' });
  });

  it('connected or the agent gone: the list ends there', async () => {
    const { f, taken } = flow([req('a', { rings: 1, updatedAt: 2 }), req('b', { rings: 1, updatedAt: 1 })], ['connected']);
    await f.run(new FakeCallPort('c3'), ['return', 'PJSIP/1001']);
    expect(taken).toEqual(['a']);
  });

  it('a bad agent device from the dialplan is refused (attack: "1001&Local/x")', async () => {
    const { f, taken, lines } = flow([req('a')], []);
    const port = new FakeCallPort('c4');
    await f.run(port, ['return', 'PJSIP/1001&Local/x@evil']);
    expect(taken).toEqual([]);
    expect(port.calls).toEqual(['hangup normal']);
    expect(lines.find((l) => l.event === 'return.refused')).toBeDefined();
  });
});
