/** Internal prospects (device state watched): creation, grace, adaptive grace, busy again, back-off, no answer. */
import { type CallbackRequest } from '../../../src/core/policy';
import { defaultPolicyConfig } from '../../../testkit/policy';
import { AGENT_CID, busyAgent, HOUR, MINUTE, PROSPECT, SECOND, Sim, T0 } from './helpers';

const EXPIRES = T0 + 8 * HOUR; // 17:30 CET, before the 18:00 close

describe('newRequest (device mode)', () => {
  it('starts WAITING for the busy line to be free, wakes at expiry, notifies the CRM', () => {
    const s = Sim.device();
    const expected: CallbackRequest = {
      id: 'r1',
      agent: 'PJSIP/1001',
      agentCallerId: AGENT_CID,
      prospect: PROSPECT,
      language: 'de',
      mode: 'device',
      timeZone: 'Europe/Berlin',
      zoneSource: 'default',
      carriedOver: null,
      state: 'WAITING',
      createdAt: T0,
      refreshedAt: null,
      refreshes: 0,
      updatedAt: T0,
      wakeAt: EXPIRES,
      expiresAt: EXPIRES,
      expiresBecause: 'max-age',
      waitingFor: 'prospect-busy',
      reason: 'prospect line busy since 09:30',
      outcome: null,
      attempts: 0,
      noAnswers: 0,
      snoozes: 0,
      rings: 0,
      menuTimeouts: 0,
      lineBusy: true,
      busySince: T0,
      freeSince: null,
      lastBusySpellMs: null,
      graceUntil: null,
      notBefore: null,
      notBeforeKind: null,
      lastAttemptAt: null,
      recallStartedAt: null,
      agentAnsweredAt: null,
    };
    expect(s.last).toEqual({
      request: expected,
      events: [{ at: T0, type: 'created', from: null, to: 'WAITING', reason: 'prospect line busy since 09:30', wakeAt: EXPIRES, waitingFor: 'prospect-busy' }],
      actions: [{ type: 'notify', event: 'requested', reason: 'prospect line busy since 09:30' }],
    });
  });
});

describe('grace', () => {
  it('line free → GRACE for 5 minutes, then DUE → RINGING_AGENT in one tick', () => {
    const s = Sim.device();
    const d = s.free(T0 + 10 * MINUTE);
    expect(d.events).toEqual([
      { at: T0 + 10 * MINUTE, type: 'prospect-free', from: 'WAITING', to: 'GRACE', reason: 'grace until 09:45', wakeAt: T0 + 15 * MINUTE, waitingFor: 'grace' },
    ]);
    expect(d.actions).toEqual([]);
    expect(d.request).toMatchObject({
      state: 'GRACE',
      lineBusy: false,
      busySince: null,
      freeSince: T0 + 10 * MINUTE,
      lastBusySpellMs: 10 * MINUTE,
      graceUntil: T0 + 15 * MINUTE,
      wakeAt: T0 + 15 * MINUTE,
      updatedAt: T0 + 10 * MINUTE,
    });

    expect(s.tick(T0 + 15 * MINUTE - 1).request.state).toBe('GRACE'); // early tick: no-op
    const due = s.tick(T0 + 15 * MINUTE);
    expect(due.events).toEqual([
      { at: T0 + 15 * MINUTE, type: 'due', from: 'GRACE', to: 'DUE', reason: 'grace over', wakeAt: T0 + 15 * MINUTE, waitingFor: null },
      {
        at: T0 + 15 * MINUTE,
        type: 'ring-agent',
        from: 'DUE',
        to: 'RINGING_AGENT',
        reason: 'ringing the agent on ccb-r1-1 (attempt 1 of 3)',
        wakeAt: T0 + 15 * MINUTE + 25 * SECOND + 2 * MINUTE,
        waitingFor: 'agent',
      },
    ]);
    expect(due.actions).toEqual([
      { type: 'ringAgent', attempt: 1, channelId: 'ccb-r1-1', callerId: { name: "RR 030 1234567", number: "" }, timeoutMs: 25 * SECOND },
    ]);
    expect(due.request).toMatchObject({ rings: 1, recallStartedAt: T0 + 15 * MINUTE, graceUntil: null, notBefore: null });
  });

  it.each<[string, number, number, string]>([
    ['10m', 10 * MINUTE, 5 * MINUTE, 'grace until 09:45'],
    ['exactly the 30m threshold', 30 * MINUTE, 5 * MINUTE, 'grace until 10:05'],
    ['30m1s', 30 * MINUTE + SECOND, 10 * MINUTE, 'grace until 10:10:01 (extended by 5m after 30m1s busy)'],
    ['2h', 2 * HOUR, 10 * MINUTE, 'grace until 11:40 (extended by 5m after 2h busy)'],
  ])('adaptive grace: busy for %s since creation → grace %d ms', (_label, busyFor, grace, reason) => {
    const s = Sim.device();
    const d = s.free(T0 + busyFor);
    expect(d.request.graceUntil).toBe(T0 + busyFor + grace);
    expect(d.request.wakeAt).toBe(T0 + busyFor + grace);
    expect(d.request.reason).toBe(reason);
  });

  it('adaptive grace honours the configured threshold and extra', () => {
    const cfg = { ...defaultPolicyConfig, graceMs: 2 * MINUTE, longBusyThresholdMs: 10 * MINUTE, longBusyExtraGraceMs: 3 * MINUTE };
    const s = Sim.device({ cfg });
    expect(s.free(T0 + 15 * MINUTE).request.graceUntil).toBe(T0 + 20 * MINUTE);
    const t = Sim.device({ cfg });
    expect(t.free(T0 + 9 * MINUTE).request.graceUntil).toBe(T0 + 11 * MINUTE);
  });

  it('a zero grace goes straight from WAITING to ringing the agent', () => {
    const s = Sim.device({ cfg: { ...defaultPolicyConfig, graceMs: 0 } });
    const d = s.free(T0 + 10 * MINUTE);
    expect(d.events.map((e) => [e.type, e.from, e.to, e.reason])).toEqual([
      ['prospect-free', 'WAITING', 'DUE', 'grace over'],
      ['ring-agent', 'DUE', 'RINGING_AGENT', 'ringing the agent on ccb-r1-1 (attempt 1 of 3)'],
    ]);
  });

  it('busy during grace → WAITING; grace restarts in full when free again', () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    const busy = s.busy(T0 + 12 * MINUTE);
    expect(busy.events).toEqual([
      {
        at: T0 + 12 * MINUTE,
        type: 'prospect-busy',
        from: 'GRACE',
        to: 'WAITING',
        reason: 'prospect busy again; prospect line busy since 09:42',
        wakeAt: EXPIRES,
        waitingFor: 'prospect-busy',
      },
    ]);
    expect(busy.request).toMatchObject({ lineBusy: true, busySince: T0 + 12 * MINUTE, freeSince: null, graceUntil: null, wakeAt: EXPIRES });
    expect(s.tick(T0 + 15 * MINUTE).events).toEqual([]); // the old grace end means nothing now
    expect(s.request.state).toBe('WAITING');
    const free = s.free(T0 + 20 * MINUTE);
    expect(free.request).toMatchObject({ state: 'GRACE', graceUntil: T0 + 25 * MINUTE, wakeAt: T0 + 25 * MINUTE, lastBusySpellMs: 8 * MINUTE });
    expect(free.request.reason).toBe('grace until 09:55');
  });

  it('adaptive grace measures the current busy spell, not the time since creation', () => {
    const short = Sim.device();
    short.free(T0 + 5 * MINUTE);
    short.busy(T0 + 6 * MINUTE);
    expect(short.free(T0 + 35 * MINUTE).request.graceUntil).toBe(T0 + 40 * MINUTE); // spell 29m: no extra
    const long = Sim.device();
    long.free(T0 + 20 * MINUTE);
    long.busy(T0 + 22 * MINUTE);
    expect(long.free(T0 + 55 * MINUTE).request.graceUntil).toBe(T0 + 65 * MINUTE); // spell 33m: +5m
  });

  it('busy while DUE (waiting for the agent) → WAITING; free again → a fresh grace', () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    s.agent = busyAgent(T0);
    expect(s.tick(T0 + 15 * MINUTE).request.state).toBe('DUE');
    const d = s.busy(T0 + 15 * MINUTE + 30 * SECOND);
    expect(d.events.map((e) => [e.type, e.from, e.to, e.reason])).toEqual([
      ['prospect-busy', 'DUE', 'WAITING', 'prospect busy again; prospect line busy since 09:45:30'],
    ]);
    expect(s.free(T0 + 20 * MINUTE).request).toMatchObject({ state: 'GRACE', graceUntil: T0 + 25 * MINUTE });
  });

  it('duplicate device states are no-ops', () => {
    const s = Sim.device();
    const before = s.request;
    expect(s.busy(T0 + MINUTE).request).toBe(before);
    s.free(T0 + 2 * MINUTE);
    const grace = s.request;
    expect(s.free(T0 + 3 * MINUTE).request).toBe(grace);
  });
});

/** Ring 1 at T0+15m; the agent accepts at T0+15m10s (attempt 1). */
function connecting(): Sim {
  const s = Sim.device();
  s.free(T0 + 10 * MINUTE);
  s.wake();
  s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
  return s;
}

describe('back-off after a busy attempt (device mode)', () => {
  it('dials the prospect with the agent caller ID on key 1', () => {
    const s = connecting();
    expect(s.last.actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-1', prompt: 'connecting' },
      { type: 'dialProspect', attempt: 1, channelId: 'ccb-r1-1-p', agentChannelId: 'ccb-r1-1', callerId: AGENT_CID, timeoutMs: 45 * SECOND },
    ]);
    expect(s.request).toMatchObject({
      state: 'CONNECTING',
      attempts: 1,
      lastAttemptAt: T0 + 15 * MINUTE + 10 * SECOND,
      wakeAt: T0 + 15 * MINUTE + 10 * SECOND + 45 * SECOND + 2 * MINUTE,
      waitingFor: 'prospect-answer',
      reason: 'dialling the prospect (attempt 1 of 3)',
    });
  });

  it('busy → WAITING for free; the next grace ends no earlier than lastAttemptAt + 10m', () => {
    const s = connecting();
    const d = s.do(T0 + 15 * MINUTE + 20 * SECOND, { type: 'prospectBusy' });
    const backoffEnd = T0 + 25 * MINUTE + 10 * SECOND; // 09:55:10
    expect(d.actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-1', prompt: 'still-busy' },
      { type: 'hangupAgent', channelId: 'ccb-r1-1' },
    ]);
    expect(d.events).toEqual([
      {
        at: T0 + 15 * MINUTE + 20 * SECOND,
        type: 'attempt-busy',
        from: 'CONNECTING',
        to: 'WAITING',
        reason: 'prospect busy on attempt 1 of 3; prospect line busy since 09:45:20; back-off after busy attempt 1 until 09:55:10',
        wakeAt: EXPIRES,
        waitingFor: 'prospect-busy',
      },
    ]);
    expect(d.request).toMatchObject({
      lineBusy: true,
      busySince: T0 + 15 * MINUTE + 20 * SECOND,
      notBefore: backoffEnd,
      notBeforeKind: 'backoff',
      recallStartedAt: null,
      agentAnsweredAt: null,
    });

    const free = s.free(T0 + 17 * MINUTE);
    expect(free.request).toMatchObject({ state: 'GRACE', graceUntil: T0 + 22 * MINUTE, wakeAt: backoffEnd, waitingFor: 'backoff' });
    expect(free.request.reason).toBe('grace until 09:52, held until 09:55:10 by back-off after busy attempt 1');
    expect(s.tick(T0 + 22 * MINUTE).events).toEqual([]);
    const ring = s.tick(backoffEnd);
    expect(ring.events.map((e) => [e.type, e.reason])).toEqual([
      ['due', 'back-off over'],
      ['ring-agent', 'ringing the agent on ccb-r1-2 (attempt 2 of 3)'],
    ]);
    expect(ring.actions).toEqual([
      { type: 'ringAgent', attempt: 2, channelId: 'ccb-r1-2', callerId: { name: "RR 030 1234567", number: "" }, timeoutMs: 25 * SECOND },
    ]);
  });

  it('when the line frees after the back-off has passed, the plain grace applies', () => {
    const s = connecting();
    s.do(T0 + 15 * MINUTE + 20 * SECOND, { type: 'prospectBusy' });
    const d = s.free(T0 + 40 * MINUTE);
    expect(d.request).toMatchObject({ state: 'GRACE', waitingFor: 'grace', graceUntil: T0 + 45 * MINUTE, wakeAt: T0 + 45 * MINUTE, reason: 'grace until 10:15' });
  });

  it('three busy attempts → FAILED max-attempts (back-offs 10m, then 30m)', () => {
    const s = connecting(); // attempt 1 at T0+15m10s
    s.do(T0 + 15 * MINUTE + 20 * SECOND, { type: 'prospectBusy' });
    s.free(T0 + 30 * MINUTE);
    expect(s.request.wakeAt).toBe(T0 + 35 * MINUTE);
    s.wake();
    s.key(T0 + 35 * MINUTE + 10 * SECOND, '1'); // attempt 2
    s.do(T0 + 35 * MINUTE + 20 * SECOND, { type: 'prospectBusy' });
    expect(s.request.notBefore).toBe(T0 + 35 * MINUTE + 10 * SECOND + 30 * MINUTE);
    s.free(T0 + 40 * MINUTE);
    expect(s.request).toMatchObject({ state: 'GRACE', graceUntil: T0 + 45 * MINUTE, wakeAt: T0 + 65 * MINUTE + 10 * SECOND });
    s.wake();
    expect(s.request.rings).toBe(3);
    s.key(T0 + 65 * MINUTE + 20 * SECOND, '1'); // attempt 3
    const d = s.do(T0 + 65 * MINUTE + 30 * SECOND, { type: 'prospectBusy' });
    expect(d.request).toMatchObject({
      state: 'FAILED',
      outcome: 'max-attempts',
      reason: 'prospect busy on attempt 3 of 3',
      attempts: 3,
      wakeAt: null,
      waitingFor: null,
    });
    expect(d.events).toEqual([
      { at: T0 + 65 * MINUTE + 30 * SECOND, type: 'attempt-busy', from: 'CONNECTING', to: 'FAILED', reason: 'prospect busy on attempt 3 of 3', wakeAt: null, waitingFor: null },
    ]);
    expect(d.actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-3', prompt: 'still-busy' },
      { type: 'hangupAgent', channelId: 'ccb-r1-3' },
      { type: 'notify', event: 'failed', reason: 'prospect busy on attempt 3 of 3' },
    ]);
  });
});

describe('prospect does not answer', () => {
  it('one retry after the back-off (no grace: the line is free), then FAILED prospect-no-answer', () => {
    const s = connecting();
    const d = s.do(T0 + 16 * MINUTE, { type: 'prospectNoAnswer' });
    const retryAt = T0 + 25 * MINUTE + 10 * SECOND;
    expect(d.actions).toEqual([
      { type: 'announce', channelId: 'ccb-r1-1', prompt: 'no-answer' },
      { type: 'hangupAgent', channelId: 'ccb-r1-1' },
    ]);
    expect(d.events).toEqual([
      {
        at: T0 + 16 * MINUTE,
        type: 'attempt-no-answer',
        from: 'CONNECTING',
        to: 'WAITING',
        reason: 'prospect did not answer; retry after no answer on attempt 1 until 09:55:10',
        wakeAt: retryAt,
        waitingFor: 'no-answer-retry',
      },
    ]);
    expect(d.request).toMatchObject({ noAnswers: 1, lineBusy: false, freeSince: T0 + 16 * MINUTE, notBefore: retryAt, notBeforeKind: 'no-answer-retry' });

    const ring = s.wake();
    expect(ring.events.map((e) => [e.type, e.from, e.to, e.reason])).toEqual([
      ['due', 'WAITING', 'DUE', 'retry time reached'],
      ['ring-agent', 'DUE', 'RINGING_AGENT', 'ringing the agent on ccb-r1-2 (attempt 2 of 3)'],
    ]);
    s.key(retryAt + 10 * SECOND, '1');
    const fail = s.do(retryAt + 60 * SECOND, { type: 'prospectNoAnswer' });
    expect(fail.request).toMatchObject({ state: 'FAILED', outcome: 'prospect-no-answer', reason: 'prospect did not answer on attempt 2 (after 1 retry)', noAnswers: 2 });
    expect(fail.actions.map((a) => a.type)).toEqual(['announce', 'hangupAgent', 'notify']);
  });

  it('busy while waiting for the retry → waits for free, then grace (held by the retry time)', () => {
    const s = connecting();
    s.do(T0 + 16 * MINUTE, { type: 'prospectNoAnswer' });
    const busy = s.busy(T0 + 20 * MINUTE);
    expect(busy.request).toMatchObject({ state: 'WAITING', waitingFor: 'prospect-busy', wakeAt: EXPIRES });
    expect(busy.request.reason).toBe('prospect line busy since 09:50; retry after no answer on attempt 1 until 09:55:10');
    const free = s.free(T0 + 21 * MINUTE);
    expect(free.request).toMatchObject({ state: 'GRACE', graceUntil: T0 + 26 * MINUTE, waitingFor: 'grace', wakeAt: T0 + 26 * MINUTE });
    const freeEarly = connecting();
    freeEarly.do(T0 + 16 * MINUTE, { type: 'prospectNoAnswer' });
    freeEarly.busy(T0 + 17 * MINUTE);
    expect(freeEarly.free(T0 + 18 * MINUTE).request).toMatchObject({
      state: 'GRACE',
      waitingFor: 'no-answer-retry',
      wakeAt: T0 + 25 * MINUTE + 10 * SECOND,
      reason: 'grace until 09:53, held until 09:55:10 by retry after no answer on attempt 1',
    });
  });

  it('noAnswerRetries 0 → FAILED on the first no-answer', () => {
    const s = new Sim({ ...defaultPolicyConfig, noAnswerRetries: 0 });
    s.free(T0 + 10 * MINUTE);
    s.wake();
    s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
    const d = s.do(T0 + 16 * MINUTE, { type: 'prospectNoAnswer' });
    expect(d.request).toMatchObject({ state: 'FAILED', outcome: 'prospect-no-answer', reason: 'prospect did not answer on attempt 1 (after 0 retries)' });
  });

  it('no answer on the last allowed attempt → FAILED max-attempts', () => {
    const s = new Sim({ ...defaultPolicyConfig, maxAttempts: 1 });
    s.free(T0 + 10 * MINUTE);
    s.wake();
    s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
    const d = s.do(T0 + 16 * MINUTE, { type: 'prospectNoAnswer' });
    expect(d.request).toMatchObject({ state: 'FAILED', outcome: 'max-attempts', reason: 'prospect did not answer on attempt 1 of 1' });
  });
});

describe('the prospect answers', () => {
  it('COMPLETED, CRM notified, no hangups (the shell keeps the bridge)', () => {
    const s = connecting();
    const d = s.do(T0 + 15 * MINUTE + 30 * SECOND, { type: 'prospectAnswered' });
    expect(d.request).toMatchObject({ state: 'COMPLETED', outcome: 'completed', reason: 'connected on attempt 1', wakeAt: null, waitingFor: null });
    expect(d.events).toEqual([
      { at: T0 + 15 * MINUTE + 30 * SECOND, type: 'prospect-answered', from: 'CONNECTING', to: 'COMPLETED', reason: 'connected on attempt 1', wakeAt: null, waitingFor: null },
    ]);
    expect(d.actions).toEqual([{ type: 'notify', event: 'completed', reason: 'connected on attempt 1' }]);
  });

  it('device-state changes caused by our own call while CONNECTING are ignored', () => {
    const s = connecting();
    const before = s.request;
    expect(s.busy(T0 + 15 * MINUTE + 12 * SECOND).request).toBe(before);
    expect(s.free(T0 + 15 * MINUTE + 14 * SECOND).request).toBe(before);
  });
});
