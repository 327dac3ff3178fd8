/** DUE: the agent must be free (plus wrap-up) and the prospect's calling hours open. */
import { type CallingHoursConfig, type PolicyConfig } from '../../../src/core/policy';
import { defaultPolicyConfig } from '../../../testkit/policy';
import { busyAgent, freeAgent, HOUR, iso, MINUTE, SECOND, Sim, T0, Z } from './helpers';

/** GRACE that ends at T0+15m. */
function inGrace(cfg?: PolicyConfig): Sim {
  const s = Sim.device({ cfg });
  s.free(T0 + 10 * MINUTE);
  return s;
}

describe('agent availability', () => {
  it('never rings a busy agent; re-checks every minute; waits the wrap-up gap after their call', () => {
    const s = inGrace();
    const d1 = s.tick(T0 + 15 * MINUTE, busyAgent(T0 + 14 * MINUTE));
    expect(d1.events).toEqual([
      { at: T0 + 15 * MINUTE, type: 'due', from: 'GRACE', to: 'DUE', reason: 'agent busy since 09:44', wakeAt: T0 + 16 * MINUTE, waitingFor: 'agent-busy' },
    ]);
    expect(d1.actions).toEqual([]);

    const d2 = s.tick(T0 + 16 * MINUTE, busyAgent(T0 + 14 * MINUTE));
    expect(d2.events).toEqual([]); // same reason: no event, just a new wake-up
    expect(d2.request).toMatchObject({ state: 'DUE', wakeAt: T0 + 17 * MINUTE, updatedAt: T0 + 16 * MINUTE });

    const d3 = s.tick(T0 + 16 * MINUTE + 30 * SECOND, freeAgent(T0 + 16 * MINUTE + 20 * SECOND));
    expect(d3.events).toEqual([
      {
        at: T0 + 16 * MINUTE + 30 * SECOND,
        type: 'waiting',
        from: 'DUE',
        to: 'DUE',
        reason: 'agent wrap-up until 09:46:50',
        wakeAt: T0 + 16 * MINUTE + 50 * SECOND,
        waitingFor: 'agent-wrap-up',
      },
    ]);
    expect(s.tick(T0 + 16 * MINUTE + 49 * SECOND, freeAgent(T0 + 16 * MINUTE + 20 * SECOND)).request).toBe(s.request);
    const d4 = s.tick(T0 + 16 * MINUTE + 50 * SECOND, freeAgent(T0 + 16 * MINUTE + 20 * SECOND));
    expect(d4.events.map((e) => [e.type, e.from, e.to])).toEqual([['ring-agent', 'DUE', 'RINGING_AGENT']]);
    expect(d4.actions.map((a) => a.type)).toEqual(['ringAgent']);
  });

  it.each<[string, number, string]>([
    ['29.999 s', 29_999, 'DUE'],
    ['30 s', 30_000, 'RINGING_AGENT'],
  ])('agent free for %s at grace end → %s', (_label, freeFor, state) => {
    const s = inGrace();
    expect(s.tick(T0 + 15 * MINUTE, freeAgent(T0 + 15 * MINUTE - freeFor)).request.state).toBe(state);
  });

  it('the shell may tick early when the agent becomes free', () => {
    const s = inGrace();
    s.tick(T0 + 15 * MINUTE, busyAgent());
    const d = s.tick(T0 + 15 * MINUTE + 20 * SECOND, freeAgent(T0 + 15 * MINUTE - 5 * MINUTE));
    expect(d.request.state).toBe('RINGING_AGENT');
  });

  it('waits are capped at the expiry', () => {
    const s = Sim.device();
    s.free(T0 + 8 * HOUR - 11 * MINUTE); // busy > 30m: 10m grace, until 1m before expiry
    const d = s.tick(T0 + 8 * HOUR - MINUTE + 30 * SECOND, busyAgent());
    expect(d.request).toMatchObject({ state: 'DUE', waitingFor: 'agent-busy', wakeAt: T0 + 8 * HOUR });
    expect(s.wake(busyAgent()).request).toMatchObject({ state: 'EXPIRED', outcome: 'expired' });
  });
});

describe('calling hours', () => {
  const FRI_19 = Z('2026-03-27T18:00:00Z'); // Fri 2026-03-27 19:00 CET; Mon 2026-03-30 is CEST
  const threeDays = { ...defaultPolicyConfig, maxAgeMs: 72 * HOUR };

  it('grace runs after hours; DUE then waits for Monday 09:00 across the DST change', () => {
    const s = Sim.device({ at: FRI_19, cfg: threeDays });
    expect(iso(s.request.expiresAt)).toBe('2026-03-30T16:00:00.000Z'); // Mon 18:00 CEST: end of the next calling day
    expect(s.request.expiresBecause).toBe('end-of-calling-day');
    s.free(FRI_19 + 10 * MINUTE);
    expect(s.request.wakeAt).toBe(FRI_19 + 15 * MINUTE); // grace runs regardless of calling hours
    const d = s.wake();
    expect(d.events).toEqual([
      {
        at: FRI_19 + 15 * MINUTE,
        type: 'due',
        from: 'GRACE',
        to: 'DUE',
        reason: 'outside calling hours, opens Mon 09:00',
        wakeAt: Z('2026-03-30T07:00:00Z'),
        waitingFor: 'calling-hours',
      },
    ]);
    const ring = s.wake();
    expect(ring.events.map((e) => [e.at, e.type])).toEqual([[Z('2026-03-30T07:00:00Z'), 'ring-agent']]);
  });

  it('skips a holiday: opens Tuesday 09:00, expiry moves with the calling day', () => {
    const cfg = { ...defaultPolicyConfig, maxAgeMs: 120 * HOUR, callingHours: { ...defaultPolicyConfig.callingHours, holidays: ['2026-03-30'] } };
    const s = Sim.device({ at: FRI_19, cfg });
    expect(iso(s.request.expiresAt)).toBe('2026-03-31T16:00:00.000Z');
    s.free(FRI_19 + 10 * MINUTE);
    const d = s.wake();
    expect(d.request).toMatchObject({ state: 'DUE', wakeAt: Z('2026-03-31T07:00:00Z'), reason: 'outside calling hours, opens Tue 09:00' });
  });

  it('a Friday-evening request is carried over to Monday (never left to expire at night unseen)', () => {
    const s = Sim.device({ at: FRI_19 });
    expect(iso(s.request.expiresAt)).toBe('2026-03-30T16:00:00.000Z'); // Mon 18:00 CEST
    expect(s.request.expiresBecause).toBe('carry-over');
    expect(s.request.carriedOver).toEqual({ opensAt: Z('2026-03-30T07:00:00Z'), calledDays: 1 });
    expect(s.request.reason).toBe('prospect line busy since 19:00; carried over to the next calling day (opens Mon 09:00 Europe/Berlin)');
    s.free(FRI_19 + 10 * MINUTE);
    const due = s.wake();
    expect(due.request).toMatchObject({ state: 'DUE', waitingFor: 'calling-hours', wakeAt: Z('2026-03-30T07:00:00Z'), reason: 'outside calling hours, opens Mon 09:00' });
    const ring = s.wake();
    expect(ring.actions[0]).toMatchObject({ type: 'ringAgent' });
    expect(ring.events.at(-1)?.at).toBe(Z('2026-03-30T07:00:00Z'));
  });

  it('America/New_York: Friday evening EDT → Monday 09:00 EST', () => {
    const ny: CallingHoursConfig = { ...defaultPolicyConfig.callingHours, timeZone: 'America/New_York' };
    const cfg = { ...defaultPolicyConfig, maxAgeMs: 96 * HOUR, callingHours: ny };
    const at = Z('2026-10-30T23:00:00Z'); // Fri 19:00 EDT
    const s = Sim.device({ at, cfg });
    expect(s.request.timeZone).toBe('America/New_York');
    expect(iso(s.request.expiresAt)).toBe('2026-11-02T23:00:00.000Z'); // Mon 18:00 EST
    expect(s.request.reason).toBe('prospect line busy since 19:00');
    s.free(at + 10 * MINUTE);
    expect(s.wake().request).toMatchObject({ wakeAt: Z('2026-11-02T14:00:00Z'), reason: 'outside calling hours, opens Mon 09:00' });
  });

  it('before opening on the same day: opens 09:00', () => {
    const at = Z('2026-03-23T06:00:00Z'); // Mon 07:00 CET
    const s = Sim.device({ at });
    expect(s.request).toMatchObject({ expiresAt: at + 8 * HOUR, expiresBecause: 'max-age' });
    s.free(at + 5 * MINUTE);
    expect(s.wake().request).toMatchObject({ state: 'DUE', wakeAt: Z('2026-03-23T08:00:00Z'), reason: 'outside calling hours, opens 09:00' });
  });

  it('a lunch break: due at 12:01 waits for 13:00', () => {
    const lunch: CallingHoursConfig = {
      timeZone: 'Europe/Berlin',
      windows: { mon: [['09:00', '12:00'], ['13:00', '18:00']] },
      holidays: [],
    };
    const at = Z('2026-03-23T10:50:00Z'); // Mon 11:50
    const s = Sim.device({ at, cfg: { ...defaultPolicyConfig, callingHours: lunch } });
    expect(s.request).toMatchObject({ expiresAt: Z('2026-03-23T17:00:00Z'), expiresBecause: 'end-of-calling-day' });
    s.free(at + 6 * MINUTE);
    expect(s.wake().request).toMatchObject({ state: 'DUE', wakeAt: Z('2026-03-23T12:00:00Z'), reason: 'outside calling hours, opens 13:00' });
  });

  it('calling hours are reported before a busy agent', () => {
    const s = Sim.device({ at: FRI_19, cfg: threeDays });
    s.free(FRI_19 + 10 * MINUTE);
    expect(s.wake(busyAgent()).request.waitingFor).toBe('calling-hours');
  });

  it('no opening within the horizon: no request can be made (nothing could be promised)', () => {
    const cfg = { ...defaultPolicyConfig, callingHours: { timeZone: 'Europe/Berlin', windows: {}, holidays: [] } };
    expect(() => Sim.device({ cfg })).toThrow('No callback can be promised: no calling hours within 14 days in Europe/Berlin');
  });
});
