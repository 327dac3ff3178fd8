/** RINGING_AGENT and CONNECTING: the menu, snoozes and their limits, hang-ups, failures, crash recovery, channel ids. */
import { agentChannelId, decide, prospectChannelId, recallCallerId, type Action, type PolicyConfig } from '../../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../../testkit/policy';
import { MINUTE, PROSPECT, SECOND, Sim, T0, freeAgent } from './helpers';
import { DEFAULT_RECALL_LABEL, recallLabel } from '../../../src/core/label';

const RING = T0 + 15 * MINUTE; // grace ends, the agent is rung
const RING_SAFETY = RING + defaultPolicyConfig.agentRingTimeoutMs + defaultPolicyConfig.recallSafetyMarginMs; // 25 s ring + 2 min

function ringing(cfg?: PolicyConfig, id?: string): Sim {
  const s = Sim.device({ cfg, id });
  s.free(T0 + 10 * MINUTE);
  s.wake();
  expect(s.state).toBe('RINGING_AGENT');
  return s;
}

const ringIds = (actions: Action[]): string[] => actions.flatMap((a) => (a.type === 'ringAgent' ? [a.channelId] : []));

describe('the agent menu', () => {
  it('answer → menu; no key twice → implicit snooze', () => {
    const s = ringing();
    expect(s.request.wakeAt).toBe(RING_SAFETY);
    const a = s.do(RING + 5 * SECOND, { type: 'agentAnswered' });
    expect(a.actions).toEqual([{ type: 'announce', channelId: 'ccb-r1-1', prompt: 'menu' }]);
    expect(a.events).toEqual([
      {
        at: RING + 5 * SECOND,
        type: 'agent-answered',
        from: 'RINGING_AGENT',
        to: 'RINGING_AGENT',
        reason: 'agent answered; menu: 1 connect · 2 snooze · 3 cancel',
        wakeAt: RING + 5 * SECOND + 20 * SECOND + 2 * MINUTE,
        waitingFor: 'agent',
      },
    ]);
    expect(a.request.agentAnsweredAt).toBe(RING + 5 * SECOND);

    const n1 = s.key(RING + 15 * SECOND, 'none');
    expect(n1.actions).toEqual([{ type: 'announce', channelId: 'ccb-r1-1', prompt: 'menu' }]);
    expect(n1.request).toMatchObject({ state: 'RINGING_AGENT', menuTimeouts: 1, wakeAt: RING + 15 * SECOND + 10 * SECOND + 2 * MINUTE, reason: 'no key pressed (1 of 2); repeating the menu' });
    expect(n1.events.map((e) => [e.type, e.from, e.to])).toEqual([['menu-timeout', 'RINGING_AGENT', 'RINGING_AGENT']]);

    const n2 = s.key(RING + 25 * SECOND, 'none');
    expect(n2.actions).toEqual([{ type: 'hangupAgent', channelId: 'ccb-r1-1' }]);
    expect(n2.events).toEqual([
      {
        at: RING + 25 * SECOND,
        type: 'menu-timeout',
        from: 'RINGING_AGENT',
        to: 'WAITING',
        reason: 'agent pressed no key (2 prompts); snooze 1 of 3 until 10:00:25',
        wakeAt: RING + 25 * SECOND + 15 * MINUTE,
        waitingFor: 'snooze',
      },
    ]);
    expect(n2.request).toMatchObject({ snoozes: 1, menuTimeouts: 0, agentAnsweredAt: null, recallStartedAt: null, notBefore: RING + 25 * SECOND + 15 * MINUTE, notBeforeKind: 'snooze' });
  });

  it('menuRepeats 1: the first silent menu already snoozes', () => {
    const s = ringing({ ...defaultPolicyConfig, menuRepeats: 1 });
    s.do(RING + 5 * SECOND, { type: 'agentAnswered' });
    expect(s.key(RING + 15 * SECOND, 'none').request).toMatchObject({ state: 'WAITING', snoozes: 1 });
  });

  it('key 2 snoozes for 15 minutes; then the agent is rung again on a new channel', () => {
    const s = ringing();
    const d = s.key(RING + 5 * SECOND, '2');
    expect(d.actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-1', prompt: 'snoozed' },
      { type: 'hangupAgent', channelId: 'ccb-r1-1' },
    ]);
    expect(d.events).toEqual([
      {
        at: RING + 5 * SECOND,
        type: 'agent-snoozed',
        from: 'RINGING_AGENT',
        to: 'WAITING',
        reason: 'agent pressed 2 (snooze); snooze 1 of 3 until 10:00:05',
        wakeAt: RING + 15 * MINUTE + 5 * SECOND,
        waitingFor: 'snooze',
      },
    ]);
    expect(d.request).toMatchObject({ reason: 'snooze 1 of 3 until 10:00:05', lineBusy: false });
    const again = s.wake();
    expect(again.events.map((e) => [e.type, e.reason])).toEqual([
      ['due', 'snooze over'],
      ['ring-agent', 'ringing the agent on ccb-r1-2 (attempt 1 of 3)'],
    ]);
  });

  it('a busy line during a snooze: wait for free, then grace (held by the snooze)', () => {
    const s = ringing();
    s.key(RING + 5 * SECOND, '2'); // snoozed until RING+15m5s
    s.busy(RING + MINUTE);
    expect(s.request.reason).toBe('prospect line busy since 09:46; snooze 1 of 3 until 10:00:05');
    const d = s.free(RING + 2 * MINUTE);
    expect(d.request).toMatchObject({
      state: 'GRACE',
      waitingFor: 'snooze',
      graceUntil: RING + 7 * MINUTE,
      wakeAt: RING + 15 * MINUTE + 5 * SECOND,
      reason: 'grace until 09:52, held until 10:00:05 by snooze 1 of 3',
    });
  });

  it('key 3 cancels', () => {
    const s = ringing();
    const d = s.key(RING + 5 * SECOND, '3');
    expect(d.request).toMatchObject({ state: 'CANCELLED', outcome: 'cancelled', reason: 'cancelled by the agent (pressed 3)', wakeAt: null, waitingFor: null });
    expect(d.actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-1', prompt: 'cancelled' },
      { type: 'hangupAgent', channelId: 'ccb-r1-1' },
      { type: 'notify', event: 'cancelled', reason: 'cancelled by the agent (pressed 3)' },
    ]);
  });

  it('a key without a prior agentAnswered implies the answer', () => {
    const s = ringing();
    expect(s.key(RING + 5 * SECOND, '1').request).toMatchObject({ state: 'CONNECTING', agentAnsweredAt: RING + 5 * SECOND });
  });

  it.each<[string, boolean, string]>([
    ['before answering', false, 'agent rejected the call; snooze 1 of 3 until 10:00:05'],
    ['during the menu', true, 'agent hung up during the menu; snooze 1 of 3 until 10:00:05'],
  ])('agent hangs up %s → snooze', (_label, answered, reason) => {
    const s = ringing();
    if (answered) s.do(RING + 2 * SECOND, { type: 'agentAnswered' });
    const d = s.do(RING + 5 * SECOND, { type: 'agentHungUp' });
    expect(d.actions).toEqual([]);
    expect(d.events.map((e) => [e.type, e.reason])).toEqual([['agent-hung-up', reason]]);
  });
});

describe('snooze limits', () => {
  it('not answering counts: the 4th time → FAILED agent-unavailable', () => {
    const s = ringing();
    for (let i = 1; i <= 3; i++) {
      const at = (s.request.recallStartedAt as number) + 30 * SECOND;
      const d = s.do(at, { type: 'agentNoAnswer' });
      expect(d.request).toMatchObject({ state: 'WAITING', snoozes: i, wakeAt: at + 15 * MINUTE });
      expect(d.events[0].reason).toBe(`agent did not answer; snooze ${i} of 3 until ${label(at + 15 * MINUTE)}`);
      s.wake();
    }
    const last = s.do((s.request.recallStartedAt as number) + 30 * SECOND, { type: 'agentNoAnswer' });
    expect(last.request).toMatchObject({ state: 'FAILED', outcome: 'agent-unavailable', snoozes: 3, reason: 'agent did not answer; snooze limit (3) reached' });
    expect(last.actions).toEqual([{ type: 'notify', event: 'failed', reason: 'agent did not answer; snooze limit (3) reached' }]);
    expect(ringIds(s.actions)).toEqual(['ccb-r1-1', 'ccb-r1-2', 'ccb-r1-3', 'ccb-r1-4']);
  });

  it('explicit snoozes count too: the 4th key 2 → FAILED snooze-limit, and the agent hears "cancelled"', () => {
    const s = ringing();
    for (let i = 0; i < 3; i++) {
      s.key((s.request.recallStartedAt as number) + 5 * SECOND, '2');
      s.wake();
    }
    const d = s.key((s.request.recallStartedAt as number) + 5 * SECOND, '2');
    expect(d.request).toMatchObject({ state: 'FAILED', outcome: 'snooze-limit', reason: 'agent pressed 2 (snooze); snooze limit (3) reached' });
    expect(d.actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-4', prompt: 'cancelled' },
      { type: 'hangupAgent', channelId: 'ccb-r1-4' },
      { type: 'notify', event: 'failed', reason: 'agent pressed 2 (snooze); snooze limit (3) reached' },
    ]);
  });

  it('maxSnoozes 0: the first snooze fails', () => {
    const s = ringing({ ...defaultPolicyConfig, maxSnoozes: 0 });
    expect(s.do(RING + 30 * SECOND, { type: 'agentNoAnswer' }).request).toMatchObject({ state: 'FAILED', outcome: 'agent-unavailable' });
  });
});

describe('while the prospect is being dialled', () => {
  function connecting(cfg?: PolicyConfig): Sim {
    const s = ringing(cfg);
    s.key(RING + 10 * SECOND, '1');
    return s;
  }

  it('the agent hangs up → prospect leg hung up, snooze; the line counts as free (no grace next time)', () => {
    const s = connecting();
    const d = s.do(RING + 20 * SECOND, { type: 'agentHungUp' });
    expect(d.actions).toEqual([{ type: 'hangupProspect', channelId: 'ccb-r1-1-p' }]);
    expect(d.events.map((e) => [e.type, e.from, e.to, e.reason])).toEqual([
      ['agent-hung-up', 'CONNECTING', 'WAITING', 'agent hung up while the prospect was ringing (attempt 1); snooze 1 of 3 until 10:00:20'],
    ]);
    expect(d.request).toMatchObject({ attempts: 1, snoozes: 1, lineBusy: false, freeSince: RING + 20 * SECOND });
    expect(s.wake().request).toMatchObject({ state: 'RINGING_AGENT', rings: 2 });
  });

  it('the agent hangs up on the last attempt → FAILED max-attempts', () => {
    const s = connecting({ ...defaultPolicyConfig, maxAttempts: 1 });
    const d = s.do(RING + 20 * SECOND, { type: 'agentHungUp' });
    expect(d.request).toMatchObject({ state: 'FAILED', outcome: 'max-attempts', reason: 'agent hung up while the prospect was ringing (attempt 1); no attempts left (1 of 1)' });
    expect(d.actions.map((a) => a.type)).toEqual(['hangupProspect', 'notify']);
  });

  it('recallFailed: ringing the agent failed → snooze with the reason', () => {
    const s = ringing();
    const d = s.do(RING + SECOND, { type: 'recallFailed', reason: 'endpoint PJSIP/1001 offline' });
    expect(d.actions).toEqual([]);
    expect(d.events.map((e) => e.reason)).toEqual(['could not ring the agent: endpoint PJSIP/1001 offline; snooze 1 of 3 until 10:00:01']);
  });

  it('recallFailed: dialling the prospect failed → agent hung up, snooze with the reason', () => {
    const s = connecting();
    const d = s.do(RING + 11 * SECOND, { type: 'recallFailed', reason: 'trunk down' });
    expect(d.actions).toEqual([{ type: 'hangupAgent', channelId: 'ccb-r1-1' }]);
    expect(d.events.map((e) => e.reason)).toEqual(['could not dial the prospect (attempt 1): trunk down; snooze 1 of 3 until 10:00:11']);
  });
});

describe('crash recovery: a tick past the safety deadline of a recall', () => {
  it('RINGING_AGENT: no-op before the deadline; at it hang up and recover — not a snooze, rung again after the recovery delay', () => {
    const s = ringing();
    expect(s.tick(RING_SAFETY - 1).request).toBe(s.request);
    const d = s.tick(RING_SAFETY);
    expect(d.actions).toEqual([{ type: 'hangupAgent', channelId: 'ccb-r1-1' }]);
    expect(d.events).toEqual([
      {
        at: RING_SAFETY,
        type: 'recall-timeout',
        from: 'RINGING_AGENT',
        to: 'WAITING',
        reason: 'no outcome from the PBX by 09:47:25 (recall stalled, service restart?); not a snooze; recovery after an interrupted recall until 09:47:35',
        wakeAt: RING_SAFETY + 10 * SECOND,
        waitingFor: 'recovery',
      },
    ]);
    expect(d.request).toMatchObject({ snoozes: 0, attempts: 0, notBeforeKind: 'recovery' });
    expect(s.wake().actions.map((a) => (a.type === 'ringAgent' ? a.channelId : a.type))).toEqual(['ccb-r1-2']);
  });

  it('RINGING_AGENT after the answer: the deadline covers the menu', () => {
    const s = ringing();
    s.do(RING + 5 * SECOND, { type: 'agentAnswered' });
    const deadline = RING + 5 * SECOND + 2 * 10 * SECOND + 2 * MINUTE;
    expect(s.request.wakeAt).toBe(deadline);
    expect(s.tick(deadline - 1).events).toEqual([]);
    expect(s.tick(deadline).events.map((e) => e.type)).toEqual(['recall-timeout']);
  });

  it('CONNECTING: both legs hung up, the attempt still counts, no snooze', () => {
    const s = ringing();
    s.key(RING + 10 * SECOND, '1');
    const deadline = RING + 10 * SECOND + 45 * SECOND + 2 * MINUTE;
    expect(s.request.wakeAt).toBe(deadline);
    const d = s.tick(deadline);
    expect(d.actions).toEqual([
      { type: 'hangupProspect', channelId: 'ccb-r1-1-p' },
      { type: 'hangupAgent', channelId: 'ccb-r1-1' },
    ]);
    expect(d.request).toMatchObject({ state: 'WAITING', attempts: 1, snoozes: 0, waitingFor: 'recovery' });
  });

  it('no snoozes left does not matter (it is not a snooze); with no attempts left → FAILED max-attempts', () => {
    const a = ringing({ ...defaultPolicyConfig, maxSnoozes: 0 });
    expect(a.tick(RING_SAFETY).request).toMatchObject({ state: 'WAITING', snoozes: 0, waitingFor: 'recovery' });
    const b = ringing({ ...defaultPolicyConfig, maxAttempts: 1 });
    b.key(RING + 10 * SECOND, '1');
    expect(b.wake().request).toMatchObject({ state: 'FAILED', outcome: 'max-attempts' });
  });

  it('a recall in progress is not cut off by the expiry; it expires when it returns to waiting', () => {
    const s = Sim.device();
    const expires = s.request.expiresAt;
    s.free(expires - 16 * MINUTE);
    s.wake(); // grace (10m, long busy) ends 6 minutes before expiry
    expect(s.state).toBe('RINGING_AGENT');
    s.key(expires - 5 * SECOND, '1');
    expect(s.tick(expires).request.state).toBe('CONNECTING');
    const d = s.do(expires + 20 * SECOND, { type: 'prospectBusy' });
    expect(d.events.map((e) => [e.type, e.from, e.to])).toEqual([
      ['attempt-busy', 'CONNECTING', 'WAITING'],
      ['expired', 'WAITING', 'EXPIRED'],
    ]);
    expect(d.actions.map((a) => (a.type === 'notify' ? `notify:${a.event}` : a.type))).toEqual(['announce', 'hangupAgent', 'notify:expired']);
  });
});

describe('considerate withdrawal: the prospect goes busy while the agent is rung', () => {
  it('before the answer: hang up the agent, back to WAITING — not an attempt, not a snooze', () => {
    const s = ringing();
    const d = s.busy(RING + 10 * SECOND);
    expect(d.actions).toEqual([{ type: 'hangupAgent', channelId: 'ccb-r1-1' }]);
    expect(d.events).toEqual([
      {
        at: RING + 10 * SECOND,
        type: 'prospect-busy',
        from: 'RINGING_AGENT',
        to: 'WAITING',
        reason: 'prospect busy again while ringing the agent; recall withdrawn; prospect line busy since 09:45:10',
        wakeAt: s.request.expiresAt,
        waitingFor: 'prospect-busy',
      },
    ]);
    expect(d.request).toMatchObject({ attempts: 0, snoozes: 0, recallStartedAt: null });
    s.free(RING + 5 * MINUTE);
    expect(s.request.graceUntil).toBe(RING + 10 * MINUTE);
    expect(ringIds(s.wake().actions)).toEqual(['ccb-r1-2']);
  });

  it('after the answer: tell the agent first', () => {
    const s = ringing();
    s.do(RING + 5 * SECOND, { type: 'agentAnswered' });
    expect(s.busy(RING + 10 * SECOND).actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-1', prompt: 'still-busy' },
      { type: 'hangupAgent', channelId: 'ccb-r1-1' },
    ]);
  });
});

describe('channel ids', () => {
  it('are ccb-<id>-<n>, n counting rings over the whole life (refresh included), prospect leg -p', () => {
    const s = ringing(undefined, 'abc-42');
    s.key(RING + 5 * SECOND, '2');
    s.wake();
    s.do(s.request.updatedAt + SECOND, { type: 'refresh' });
    s.free(s.request.updatedAt + MINUTE);
    s.wake();
    s.key(s.request.updatedAt + 5 * SECOND, '1');
    expect(ringIds(s.actions)).toEqual(['ccb-abc-42-1', 'ccb-abc-42-2', 'ccb-abc-42-3']);
    expect(s.last.actions).toContainEqual(expect.objectContaining({ type: 'dialProspect', channelId: 'ccb-abc-42-3-p', agentChannelId: 'ccb-abc-42-3' }));
    expect([agentChannelId('x', 7), prospectChannelId('x', 7)]).toEqual(['ccb-x-7', 'ccb-x-7-p']);
  });

  it('are deterministic: the same inputs give the same decisions', () => {
    const run = () => {
      const s = ringing();
      s.key(RING + 5 * SECOND, '2');
      s.wake();
      s.key(s.request.updatedAt + 5 * SECOND, '1');
      s.do(s.request.updatedAt + 5 * SECOND, { type: 'prospectAnswered' });
      return { events: s.events, actions: s.actions, request: s.request };
    };
    expect(run()).toEqual(run());
  });

  it('the agent sees "Callback: <prospect>" and never the prospect\'s number', () => {
    const s = ringing();
    // The label fits a 16-character display with the whole number (src/core/label.ts, test/unit/label.test.ts).
    const ring = s.actions.find((a) => a.type === 'ringAgent') as { callerId: { name: string; number: string } };
    expect(ring.callerId).toEqual({ name: recallLabel('${prefix}${number}', DEFAULT_RECALL_LABEL, PROSPECT, s.request.language), number: '' });
    expect(ring.callerId.name.length).toBeLessThanOrEqual(16);
    expect(ring.callerId.name.replace(/ /g, '')).toContain(PROSPECT);
  });

  it('the label and the service number are configurable', () => {
    const cfg = makePolicyConfig({ recallCallerIdName: 'Rückruf ${prospect} (auto)', recallCallerIdNumber: '+49309000', recallLabel: { ...DEFAULT_RECALL_LABEL, width: 24 } });
    expect(recallCallerId(cfg, '2001')).toEqual({ name: 'Rückruf 2001 (auto)', number: '+49309000' });
    expect(() => makePolicyConfig({ recallCallerIdName: 'Callback' })).toThrow(/recallCallerIdName: expected a text containing \$\{number\}/);
    expect(() => makePolicyConfig({ recallCallerIdName: '"${prospect}" <x>' })).toThrow(/must not contain quotes/);
    expect(() => makePolicyConfig({ recallCallerIdNumber: '2001&PJSIP/x' })).toThrow(/recallCallerIdNumber: expected digits/);
  });
});

describe('limits lowered while a request waits', () => {
  it('a DUE request with no attempts left under the new config fails instead of ringing', () => {
    const s = ringing();
    s.key(RING + 10 * SECOND, '1');
    s.do(RING + 20 * SECOND, { type: 'prospectBusy' });
    s.free(RING + 30 * MINUTE);
    const strict = { ...defaultPolicyConfig, maxAttempts: 1 };
    const d = decide(s.request, { type: 'tick' }, { now: RING + 35 * MINUTE, cfg: strict, agent: s.agent });
    expect(d.events.map((e) => [e.type, e.from, e.to, e.reason])).toEqual([
      ['due', 'GRACE', 'DUE', 'grace over'],
      ['failed', 'DUE', 'FAILED', 'no attempts left (1 of 1)'],
    ]);
    expect(d.request.outcome).toBe('max-attempts');
  });
});

function label(at: number): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    .format(at)
    .replace(/:00$/, '');
}

describe('returning a missed recall (the agent calls the service number)', () => {
  it('missed (agent did not answer) → WAITING snooze; the agent calls back → RINGING_AGENT at the menu, answered; 1 → CONNECTING, attempt 1', () => {
    const s = ringing();
    const missedAt = (s.request.recallStartedAt as number) + 30 * SECOND;
    expect(s.do(missedAt, { type: 'agentNoAnswer' }).request).toMatchObject({ state: 'WAITING', snoozes: 1, attempts: 0, rings: 1, notBeforeKind: 'snooze' });
    const back = s.do(missedAt + 2 * MINUTE, { type: 'agentReturned' });
    expect(back.request).toMatchObject({ state: 'RINGING_AGENT', rings: 2, attempts: 0, snoozes: 1, waitingFor: 'agent', agentAnsweredAt: missedAt + 2 * MINUTE, notBefore: null });
    expect(back.actions).toEqual([{ type: 'announce', channelId: 'ccb-r1-2', prompt: 'menu' }]);
    expect(back.events.map((e) => [e.type, e.from, e.to])).toEqual([['agent-returned', 'WAITING', 'RINGING_AGENT']]);
    const one = s.key(missedAt + 2 * MINUTE + 3 * SECOND, '1');
    expect(one.request).toMatchObject({ state: 'CONNECTING', attempts: 1 });
    expect(one.actions.find((a) => a.type === 'dialProspect')).toMatchObject({ channelId: 'ccb-r1-2-p', agentChannelId: 'ccb-r1-2' });
  });

  it('2 and 3 on a returned recall work as after a ring; a returned recall the agent hangs up on is a snooze', () => {
    const s = ringing();
    s.do((s.request.recallStartedAt as number) + 30 * SECOND, { type: 'agentNoAnswer' });
    s.do(s.request.updatedAt + MINUTE, { type: 'agentReturned' });
    expect(s.key(s.request.updatedAt + 5 * SECOND, '2').request).toMatchObject({ state: 'WAITING', snoozes: 2 });
    s.do(s.request.updatedAt + MINUTE, { type: 'agentReturned' });
    expect(s.do(s.request.updatedAt + 5 * SECOND, { type: 'agentHungUp' }).request).toMatchObject({ state: 'WAITING', snoozes: 3 });
    s.do(s.request.updatedAt + MINUTE, { type: 'agentReturned' });
    expect(s.key(s.request.updatedAt + 5 * SECOND, '3').request).toMatchObject({ state: 'CANCELLED', outcome: 'cancelled' });
  });

  it('is ignored outside the pending states (a recall already in progress, a finished request)', () => {
    const s = ringing();
    expect(s.do(s.request.updatedAt + SECOND, { type: 'agentReturned' }).events).toEqual([]);
    s.key(s.request.updatedAt + 2 * SECOND, '3');
    expect(s.do(s.request.updatedAt + SECOND, { type: 'agentReturned' }).events).toEqual([]);
  });
});

describe('a recall interrupted by the service (recallInterrupted): never a snooze, rung again after the recovery delay', () => {
  function connecting(cfg?: PolicyConfig): Sim {
    const s = ringing(cfg);
    s.key(RING + 10 * SECOND, '1');
    return s;
  }
  const why = 'the lease holder died; its channel is gone';

  it('in the menu: back to WAITING for the recovery delay, no snooze, no attempt; then rung again on a new channel', () => {
    const s = ringing();
    s.do(RING + 5 * SECOND, { type: 'agentAnswered' });
    s.key(RING + 15 * SECOND, 'none'); // one silent menu: the menu's count restarts with the new ring
    const d = s.do(RING + 20 * SECOND, { type: 'recallInterrupted', reason: why });
    expect(d.actions).toEqual([]);
    expect(d.events).toEqual([
      {
        at: RING + 20 * SECOND,
        type: 'recall-interrupted',
        from: 'RINGING_AGENT',
        to: 'WAITING',
        reason: `recall interrupted by a service failure (${why}); not a snooze; recovery after an interrupted recall until 09:45:30`,
        wakeAt: RING + 30 * SECOND,
        waitingFor: 'recovery',
      },
    ]);
    expect(d.request).toMatchObject({ snoozes: 0, attempts: 0, menuTimeouts: 0, agentAnsweredAt: null, recallStartedAt: null, notBefore: RING + 30 * SECOND, notBeforeKind: 'recovery' });
    expect(s.tick(RING + 30 * SECOND - 1).actions).toEqual([]);
    const again = s.tick(RING + 30 * SECOND);
    expect(again.events.map((e) => e.type)).toEqual(['due', 'ring-agent']);
    expect(ringIds(again.actions)).toEqual(['ccb-r1-2']);
  });

  it('as often as the service fails: never FAILED for it, even with maxSnoozes 0', () => {
    const s = ringing({ ...defaultPolicyConfig, maxSnoozes: 0 });
    let at = RING;
    for (let i = 0; i < 10; i++) {
      at += SECOND;
      expect(s.do(at, { type: 'recallInterrupted', reason: why }).request).toMatchObject({ state: 'WAITING', snoozes: 0 });
      at += 10 * SECOND;
      expect(s.tick(at).request.state).toBe('RINGING_AGENT');
    }
    expect(s.request.rings).toBe(11);
  });

  it('respects the agent\'s wrap-up and the calling hours after the delay', () => {
    const s = ringing();
    s.do(RING + SECOND, { type: 'recallInterrupted', reason: why });
    s.agent = freeAgent(RING + 5 * SECOND); // the orphaned call was hung up at +5 s: wrap-up 30 s from then
    const d = s.tick(RING + 11 * SECOND);
    expect(d.request).toMatchObject({ state: 'DUE', waitingFor: 'agent-wrap-up', wakeAt: RING + 35 * SECOND });
    const late = ringing();
    const closing = late.request.expiresAt; // end of the calling day
    late.do(closing - 5 * SECOND, { type: 'recallInterrupted', reason: why });
    expect(late.tick(closing).request.state).toBe('EXPIRED');
  });

  it('with a zero recovery delay: due at once, rung in the same decision when the agent is free', () => {
    const s = ringing({ ...defaultPolicyConfig, recoveryDelayMs: 0 });
    const d = s.do(RING + SECOND, { type: 'recallInterrupted', reason: why });
    expect(d.events.map((e) => [e.type, e.from, e.to])).toEqual([
      ['recall-interrupted', 'RINGING_AGENT', 'DUE'],
      ['ring-agent', 'DUE', 'RINGING_AGENT'],
    ]);
    expect(ringIds(d.actions)).toEqual(['ccb-r1-2']);
  });

  it('while the prospect was dialled: the attempt stays counted (not a snooze); the last attempt → FAILED max-attempts', () => {
    const s = connecting();
    const d = s.do(RING + 12 * SECOND, { type: 'recallInterrupted', reason: why });
    expect(d.actions).toEqual([]);
    expect(d.request).toMatchObject({ state: 'WAITING', attempts: 1, snoozes: 0, waitingFor: 'recovery', lineBusy: false });
    const last = connecting({ ...defaultPolicyConfig, maxAttempts: 1 });
    const f = last.do(RING + 12 * SECOND, { type: 'recallInterrupted', reason: why });
    expect(f.request).toMatchObject({ state: 'FAILED', outcome: 'max-attempts', snoozes: 0 });
    expect(f.events.map((e) => e.type)).toEqual(['recall-interrupted']);
  });

  it('is ignored outside a recall', () => {
    const s = Sim.device();
    expect(s.do(T0 + MINUTE, { type: 'recallInterrupted', reason: why }).request).toBe(s.request);
  });
});
