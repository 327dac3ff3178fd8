/** The `snooze` observation (the web page's snooze button): a counted, explicit snooze through the policy. */
import { defaultPolicyConfig } from '../../../testkit/policy';
import { MINUTE, Sim, T0 } from './helpers';

describe('snooze observation', () => {
  it('postpones a WAITING request by policy.snooze and records who did it', () => {
    const s = Sim.device();
    const d = s.do(T0 + MINUTE, { type: 'snooze', by: 'web' });
    expect(d.request.snoozes).toBe(1);
    expect(d.request.notBefore).toBe(T0 + MINUTE + defaultPolicyConfig.snoozeMs);
    expect(d.events.map((e) => e.type)).toContain('agent-snoozed');
    expect(d.events.at(-1)?.reason).toContain('snoozed by web');
    expect(['WAITING', 'GRACE', 'DUE']).toContain(d.request.state);
  });

  it('in GRACE: the grace is replaced by the snooze', () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    expect(s.state).toBe('GRACE');
    const d = s.do(T0 + 11 * MINUTE, { type: 'snooze', by: 'web' });
    expect(d.request.graceUntil).toBeNull();
    expect(d.request.wakeAt).toBeGreaterThanOrEqual(T0 + 11 * MINUTE + defaultPolicyConfig.snoozeMs);
  });

  it("while the agent's phone rings: the ring is hung up and the request snoozed", () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    s.wake();
    expect(s.state).toBe('RINGING_AGENT');
    const d = s.do(s.request.updatedAt + 1000, { type: 'snooze', by: 'web' });
    expect(d.actions.map((a) => a.type)).toContain('hangupAgent');
    expect(d.request.snoozes).toBe(1);
    expect(d.request.state).not.toBe('RINGING_AGENT');
  });

  it('over the snooze limit the request ends FAILED (snooze-limit)', () => {
    const s = Sim.device();
    for (let i = 0; i < defaultPolicyConfig.maxSnoozes; i++) s.do(T0 + (i + 1) * MINUTE, { type: 'snooze', by: 'web' });
    const d = s.do(T0 + 60 * MINUTE, { type: 'snooze', by: 'web' });
    expect(d.request.state).toBe('FAILED');
    expect(d.request.outcome).toBe('snooze-limit');
  });

  it('does nothing to a finished request', () => {
    const s = Sim.device();
    s.do(T0 + MINUTE, { type: 'cancel', by: 'cli' });
    const before = s.request;
    const d = s.do(T0 + 2 * MINUTE, { type: 'snooze', by: 'web' });
    expect(d.request).toBe(before);
  });
});
