import type { Action, CallbackRequest, CallbackState, Observation } from '../../../src/core/policy';
import { RecallFlow, type RecallOptions } from '../../../src/flows/recall';
import { FakeSwitchboard, capturedLog, settle } from '../fake-port';

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
const REQUEST = { id: 'r1', agent: 'PJSIP/1001', prospect: '+2001', language: 'de' } as CallbackRequest;
const AGENT = 'ccb-r1-1';
const PROSPECT = 'ccb-r1-1-p';
const ring: Extract<Action, { type: 'ringAgent' }> = { type: 'ringAgent', attempt: 1, channelId: AGENT, callerId: { name: 'Callback: 2001', number: '9000' }, timeoutMs: 30000 };
const dial: Extract<Action, { type: 'dialProspect' }> = { type: 'dialProspect', attempt: 1, channelId: PROSPECT, agentChannelId: AGENT, callerId: { name: 'Agent', number: '1001' }, timeoutMs: 45000 };

function setup() {
  const pbx = new FakeSwitchboard();
  const reports: Observation[] = [];
  const request: { decides: boolean; state: CallbackState } = { decides: true, state: 'RINGING_AGENT' };
  const { log, lines } = capturedLog();
  const flow = new RecallFlow(
    pbx,
    {
      observe: (_id, o) => {
        reports.push(o);
        return request.decides;
      },
      stateOf: () => request.state,
    },
    OPTS,
    log,
  );
  const events = () => lines.filter((l) => typeof l.event === 'string').map((l) => l.event);
  return { pbx, flow, reports, lines, events, request };
}

async function answered() {
  const t = setup();
  await t.flow.execute(REQUEST, ring);
  t.flow.onStasisStart(AGENT, ['recall', 'r1']);
  return { ...t, agent: t.pbx.ports.get(AGENT)! };
}

describe('the recall over a fake switchboard', () => {
  it('rings the agent on the deterministic channel, labelled, in the request language; answer is reported', async () => {
    const { pbx, flow, reports, events } = setup();
    await flow.execute(REQUEST, ring);
    expect(pbx.calls).toEqual([`originate PJSIP/1001 ${AGENT} recall,r1 "Callback: 2001" <9000> 30`]);
    expect(pbx.ports.get(AGENT)!.language).toBe('de');
    expect(flow.owns(AGENT)).toBe(true);
    flow.onStasisStart(AGENT, ['recall', 'r1']);
    expect(reports).toEqual([{ type: 'agentAnswered' }]);
    expect(events()).toEqual(['recall.ringing_agent', 'recall.agent_answered']);
  });

  it('the menu comes first, then the number in groups, twice; a key during the digits stops it at once and is reported', async () => {
    const { flow, agent, reports, lines } = await answered();
    agent.autoFinish = false;
    await flow.execute(REQUEST, { type: 'announce', channelId: AGENT, prompt: 'menu' });
    // +2001: an international number (+20 01), read with the international prefix.
    const number = ['sound:cc-recall-number', 'digits:00', 'digits:20', 'digits:01'];
    expect(agent.playing).toEqual(['sound:cc-recall-intro', 'sound:cc-recall-menu', ...number, ...number]);
    expect(agent.calls).toContain(`play ${['sound:cc-recall-intro', 'sound:cc-recall-menu', ...number, ...number].join(',')} [123]`);
    expect(agent.press('1')).toBe('prompt');
    await settle();
    expect(agent.playing).toBeUndefined();
    expect(reports).toEqual([{ type: 'agentAnswered' }, { type: 'agentKey', key: '1' }]);
    expect(lines.find((l) => l.event === 'recall.agent_key')).toMatchObject({ key: '1', requestId: 'r1' });
  });

  it('no key within the menu timeout after the menu is reported as none; other keys are ignored', async () => {
    const { flow, agent, reports, events } = await answered();
    await flow.execute(REQUEST, { type: 'announce', channelId: AGENT, prompt: 'menu' });
    await settle();
    expect(agent.calls).toContain('waitKey 8000 [123]');
    expect(agent.press('9')).toBe('dropped');
    agent.expireWait();
    await settle();
    expect(reports).toEqual([{ type: 'agentAnswered' }, { type: 'agentKey', key: 'none' }]);
    expect(events()).toContain('recall.menu_timeout');
  });

  it('on 1: bridge, ringback, the prospect dialled with the agent caller ID; answered → bridged, ringback stopped', async () => {
    const { flow, pbx, agent, reports, events } = await answered();
    agent.autoFinish = false;
    await flow.execute(REQUEST, dial);
    expect(pbx.calls.slice(1)).toEqual([
      `createBridge ${AGENT}-b`,
      `addToBridge ${AGENT}-b ${AGENT}`,
      `originate Local/+2001@cc-outbound ${PROSPECT} prospect,r1 "Agent" <1001> 45`,
    ]);
    expect(agent.playing).toEqual(['tone:ring']);
    flow.onStasisStart(PROSPECT, ['prospect', 'r1']);
    await settle();
    expect(agent.playing).toBeUndefined();
    expect(pbx.calls).toContain(`addToBridge ${AGENT}-b ${PROSPECT}`);
    expect(reports).toEqual([{ type: 'agentAnswered' }, { type: 'prospectAnswered' }]);
    expect(events()).toEqual(['recall.ringing_agent', 'recall.agent_answered', 'recall.dialling_prospect', 'recall.prospect_answered']);
    // The connected call ends: the prospect goes, the agent is hung up, the bridge destroyed.
    pbx.ports.get(PROSPECT)!.hangUp(16);
    expect(pbx.calls).toContain(`hangup ${AGENT}`);
    agent.hangUp(16);
    expect(pbx.calls).toContain(`destroyBridge ${AGENT}-b`);
    expect(flow.active).toBe(0);
  });

  it('a busy prospect is told apart from no answer by the Dial status', async () => {
    for (const [status, expected, event] of [
      ['BUSY', 'prospectBusy', 'recall.prospect_busy'],
      ['NOANSWER', 'prospectNoAnswer', 'recall.prospect_no_answer'],
    ] as const) {
      const { flow, pbx, reports, lines } = await answered();
      await flow.execute(REQUEST, dial);
      const prospect = pbx.ports.get(PROSPECT)!;
      prospect.dialStatus = status;
      prospect.hangUp(17);
      expect(reports.at(-1)).toEqual({ type: expected });
      expect(lines.find((l) => l.event === event)).toMatchObject({ dialStatus: status, cause: 17 });
    }
  });

  it('an agent who does not answer, or hangs up before the prospect answers, is reported as such', async () => {
    const a = setup();
    await a.flow.execute(REQUEST, ring);
    a.pbx.ports.get(AGENT)!.dialStatus = 'NOANSWER';
    a.pbx.ports.get(AGENT)!.hangUp(19);
    expect(a.reports).toEqual([{ type: 'agentNoAnswer' }]);
    expect(a.flow.active).toBe(0);

    const b = await answered();
    b.agent.hangUp(16);
    expect(b.reports).toEqual([{ type: 'agentAnswered' }, { type: 'agentHungUp' }]);
  });

  it('an originate the PBX refuses is a failed recall, not a crash', async () => {
    const { flow, pbx, reports } = setup();
    pbx.failOriginate = { endpoint: 'PJSIP/1001', error: new Error('400 Allocation failed') };
    await flow.execute(REQUEST, ring);
    expect(reports).toEqual([{ type: 'recallFailed', reason: 'originate to PJSIP/1001 failed: 400 Allocation failed' }]);
    expect(flow.active).toBe(0);
  });

  it('a request cancelled elsewhere during the menu: the menu stops, "cancelled" is played, the agent is hung up; no key is reported', async () => {
    const { flow, pbx, agent, reports, events } = await answered();
    agent.autoFinish = false;
    await flow.execute(REQUEST, { type: 'announce', channelId: AGENT, prompt: 'menu' });
    const abandoning = flow.abandon('r1', 'CANCELLED');
    await settle();
    expect(agent.playing).toEqual(['sound:cc-cancelled']);
    agent.finishPrompt();
    await abandoning;
    expect(pbx.calls.at(-1)).toBe(`hangup ${AGENT}`);
    expect(agent.press('1')).toBe('dropped');
    expect(reports).toEqual([{ type: 'agentAnswered' }]);
    expect(events()).toContain('recall.abandoned');
  });

  it('an observation the policy has nothing to decide on, for a request that ended meanwhile, ends the call', async () => {
    const { flow, pbx, agent, request, events } = await answered();
    request.decides = false;
    request.state = 'CANCELLED';
    await flow.execute(REQUEST, { type: 'announce', channelId: AGENT, prompt: 'menu' });
    await settle();
    agent.press('1');
    await settle(10);
    expect(events()).toContain('recall.abandoned');
    expect(agent.calls).toContain('play sound:cc-cancelled');
    expect(pbx.calls.at(-1)).toBe(`hangup ${AGENT}`);
  });

  it('a recall channel nobody knows (an earlier run) is hung up', () => {
    const { flow, pbx, events } = setup();
    flow.onStasisStart('ccb-old-1', ['recall', 'old']);
    expect(pbx.calls).toEqual(['hangup ccb-old-1']);
    expect(events()).toEqual(['recall.unknown_channel']);
  });

  it('after a reconnection, a recall channel that vanished unreported is an interruption (never a hang-up or a snooze)', async () => {
    const { flow, reports, events } = await answered();
    expect(flow.runs('r1')).toBe(true);
    flow.reconcileGone(new Set());
    await settle();
    expect(reports).toEqual([{ type: 'agentAnswered' }, { type: 'recallInterrupted', reason: expect.stringMatching(/vanished/) }]);
    expect(events()).toContain('recall.interrupted');
    expect(flow.runs('r1')).toBe(false);
  });

  it('a ring that vanished before the answer is an interruption too, not "agent did not answer"', async () => {
    const { flow, reports } = setup();
    await flow.execute(REQUEST, ring);
    flow.reconcileGone(new Set());
    await settle();
    expect(reports.map((r) => r.type)).toEqual(['recallInterrupted']);
  });

  it('a vanished agent while the prospect rings: the prospect leg still up is hung up, the recall interrupted', async () => {
    const { flow, pbx, reports } = await answered();
    await flow.execute(REQUEST, dial);
    flow.reconcileGone(new Set([PROSPECT]));
    await settle();
    expect(pbx.calls).toContain(`hangup ${PROSPECT}`);
    expect(reports.map((r) => r.type)).toEqual(['agentAnswered', 'recallInterrupted']);
  });

  it('an agent channel that ends just before the connection to Asterisk drops went with the PBX: interrupted, not hung up', async () => {
    const t = setup();
    const flow = new RecallFlow(t.pbx, { observe: (_id, o) => (t.reports.push(o), true), stateOf: () => 'RINGING_AGENT' }, { ...OPTS, hangupConfirmMs: 60_000 }, capturedLog().log);
    await flow.execute(REQUEST, ring);
    flow.onStasisStart(AGENT, ['recall', 'r1']);
    t.pbx.ports.get(AGENT)!.hangUp(16);
    await settle();
    expect(t.reports.map((r) => r.type)).toEqual(['agentAnswered']); // held back
    flow.pbxLost();
    await settle();
    expect(t.reports.map((r) => r.type)).toEqual(['agentAnswered', 'recallInterrupted']);
  });

  it('without a dropped connection the held-back hang-up is reported as the agent\'s', async () => {
    const t = setup();
    const flow = new RecallFlow(t.pbx, { observe: (_id, o) => (t.reports.push(o), true), stateOf: () => 'RINGING_AGENT' }, { ...OPTS, hangupConfirmMs: 30 }, capturedLog().log);
    await flow.execute(REQUEST, ring);
    flow.onStasisStart(AGENT, ['recall', 'r1']);
    t.pbx.ports.get(AGENT)!.hangUp(16);
    await new Promise((r) => setTimeout(r, 60));
    await settle();
    expect(t.reports.map((r) => r.type)).toEqual(['agentAnswered', 'agentHungUp']);
    flow.pbxLost(); // later: nothing held back any more
    await settle();
    expect(t.reports.map((r) => r.type)).toEqual(['agentAnswered', 'agentHungUp']);
  });

  it('a recall whose channels are still there is left alone by the reconciliation', async () => {
    const { flow, reports } = await answered();
    flow.reconcileGone(new Set([AGENT]));
    await settle();
    expect(reports.map((r) => r.type)).toEqual(['agentAnswered']);
    expect(flow.runs('r1')).toBe(true);
  });

  it('a lost lease lets go of a recall in its menu without a word to the PBX or the policy; whoever serves next finds it orphaned', async () => {
    const { flow, pbx, agent, reports, events } = await answered();
    const before = pbx.calls.length;
    expect(flow.relinquish()).toBe(1);
    expect(flow.runs('r1')).toBe(false);
    expect(flow.owns(AGENT)).toBe(false);
    // What happens on the channel afterwards is no longer this instance's to report.
    agent.hangUp(16);
    await settle();
    expect(pbx.calls.length).toBe(before);
    expect(reports).toEqual([{ type: 'agentAnswered' }]);
    expect(events()).toEqual(['recall.ringing_agent', 'recall.agent_answered']);
  });

  it('a lost lease leaves a connected conversation alone', async () => {
    const { flow, agent } = await answered();
    agent.autoFinish = false;
    await flow.execute(REQUEST, dial);
    flow.onStasisStart(PROSPECT, ['prospect', 'r1']);
    await settle();
    expect(flow.relinquish()).toBe(0);
    expect(flow.runs('r1')).toBe(true);
    expect(flow.owns(AGENT)).toBe(true);
  });
});
