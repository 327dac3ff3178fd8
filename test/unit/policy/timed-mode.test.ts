/** External prospects: no device state, honest time-based probes with back-off. */
import { backoffFor } from '../../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../../testkit/policy';
import { HOUR, MINUTE, SECOND, Sim, T0 } from './helpers';

describe('timed mode', () => {
  it('first probe 10 minutes after creation, no grace', () => {
    const s = Sim.timed();
    expect(s.request).toMatchObject({
      state: 'WAITING',
      waitingFor: 'probe',
      wakeAt: T0 + 10 * MINUTE,
      notBefore: T0 + 10 * MINUTE,
      notBeforeKind: 'probe',
      lineBusy: null,
      busySince: null,
      reason: 'first probe of the external line at 09:40',
    });
    expect(s.last.events).toEqual([
      { at: T0, type: 'created', from: null, to: 'WAITING', reason: 'first probe of the external line at 09:40', wakeAt: T0 + 10 * MINUTE, waitingFor: 'probe' },
    ]);
    expect(s.tick(T0 + 10 * MINUTE - 1).events).toEqual([]);
    const d = s.tick(T0 + 10 * MINUTE);
    expect(d.events.map((e) => [e.type, e.from, e.to, e.reason])).toEqual([
      ['due', 'WAITING', 'DUE', 'probe time reached'],
      ['ring-agent', 'DUE', 'RINGING_AGENT', 'ringing the agent on ccb-r1-1 (attempt 1 of 3)'],
    ]);
    expect(d.actions.map((a) => a.type)).toEqual(['ringAgent']);
  });

  it('back-off 10m, 30m after busy attempts, then FAILED after the third', () => {
    const s = Sim.timed();
    s.wake(); // T0+10m
    s.key(T0 + 10 * MINUTE + 10 * SECOND, '1');
    const b1 = s.do(T0 + 10 * MINUTE + 20 * SECOND, { type: 'prospectBusy' });
    expect(b1.request).toMatchObject({
      state: 'WAITING',
      waitingFor: 'backoff',
      notBefore: T0 + 20 * MINUTE + 10 * SECOND,
      wakeAt: T0 + 20 * MINUTE + 10 * SECOND,
      lineBusy: null,
      reason: 'back-off after busy attempt 1 until 09:50:10',
    });
    expect(b1.events.map((e) => e.reason)).toEqual(['prospect busy on attempt 1 of 3; back-off after busy attempt 1 until 09:50:10']);
    expect(s.wake().events.map((e) => [e.type, e.reason])).toEqual([
      ['due', 'back-off over'],
      ['ring-agent', 'ringing the agent on ccb-r1-2 (attempt 2 of 3)'],
    ]);
    s.key(T0 + 20 * MINUTE + 20 * SECOND, '1');
    const b2 = s.do(T0 + 20 * MINUTE + 30 * SECOND, { type: 'prospectBusy' });
    expect(b2.request).toMatchObject({ notBefore: T0 + 50 * MINUTE + 20 * SECOND, wakeAt: T0 + 50 * MINUTE + 20 * SECOND, reason: 'back-off after busy attempt 2 until 10:20:20' });
    s.wake();
    s.key(T0 + 50 * MINUTE + 30 * SECOND, '1');
    const b3 = s.do(T0 + 50 * MINUTE + 40 * SECOND, { type: 'prospectBusy' });
    expect(b3.request).toMatchObject({ state: 'FAILED', outcome: 'max-attempts', attempts: 3, reason: 'prospect busy on attempt 3 of 3' });
  });

  it('the last back-off value repeats (maxAttempts 5: 10m, 30m, 60m, 60m)', () => {
    const s = Sim.timed({ cfg: { ...defaultPolicyConfig, maxAttempts: 5 } });
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      s.wake();
      const accepted = (s.request.wakeAt as number) - 2 * MINUTE - 30 * SECOND + 5 * SECOND; // 5 s after the ring
      s.key(accepted, '1');
      s.do(accepted + 5 * SECOND, { type: 'prospectBusy' });
      waits.push((s.request.notBefore as number) - accepted);
    }
    expect(waits).toEqual([10 * MINUTE, 30 * MINUTE, 60 * MINUTE, 60 * MINUTE]);
    expect(s.request.attempts).toBe(4);
  });

  it('backoffFor indexes by attempt number, clamping to the list', () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffFor(defaultPolicyConfig, n))).toEqual([
      10 * MINUTE,
      10 * MINUTE,
      30 * MINUTE,
      60 * MINUTE,
      60 * MINUTE,
      60 * MINUTE,
    ]);
  });

  it('honours a configured first probe and back-off list', () => {
    const cfg = makePolicyConfig({ firstProbeDelayMs: '2m', backoffMs: ['1m', '90s'] });
    const s = Sim.timed({ cfg });
    expect(s.request.wakeAt).toBe(T0 + 2 * MINUTE);
    s.wake();
    s.key(T0 + 2 * MINUTE + 5 * SECOND, '1');
    s.do(T0 + 2 * MINUTE + 10 * SECOND, { type: 'prospectBusy' });
    expect(s.request.wakeAt).toBe(T0 + 3 * MINUTE + 5 * SECOND);
  });

  it('device states are meaningless for external numbers and ignored in every state', () => {
    const s = Sim.timed();
    for (const busy of [true, false]) expect(s.do(T0 + MINUTE, { type: 'prospectState', busy }).request).toBe(s.request);
    s.wake();
    expect(s.state).toBe('RINGING_AGENT');
    for (const busy of [true, false]) expect(s.do(T0 + 10 * MINUTE + SECOND, { type: 'prospectState', busy }).events).toEqual([]);
    expect(s.state).toBe('RINGING_AGENT');
  });

  it('a snooze waits its 15 minutes, then goes straight to DUE', () => {
    const s = Sim.timed();
    s.wake();
    s.key(T0 + 10 * MINUTE + 5 * SECOND, '2');
    expect(s.request).toMatchObject({ state: 'WAITING', waitingFor: 'snooze', wakeAt: T0 + 25 * MINUTE + 5 * SECOND, reason: 'snooze 1 of 3 until 09:55:05' });
    expect(s.wake().events.map((e) => [e.type, e.reason])).toEqual([
      ['due', 'snooze over'],
      ['ring-agent', 'ringing the agent on ccb-r1-2 (attempt 1 of 3)'],
    ]);
  });

  it('a request made 8 h before closing expires by age', () => {
    const s = Sim.timed();
    expect(s.request.expiresAt).toBe(T0 + 8 * HOUR);
  });
});
