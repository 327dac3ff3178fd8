/** Creation input, expiry (8 h cap and end of calling day), refresh and cancel. */
import { expiryFor, newRequest } from '../../../src/core/policy';
import { defaultPolicyConfig } from '../../../testkit/policy';
import { HOUR, input, iso, MINUTE, SECOND, Sim, T0, Z } from './helpers';

describe('expiry', () => {
  it.each<[string, string, number, string, 'max-age' | 'end-of-calling-day']>([
    ['Mon 09:30: 8 h cap (17:30) before the 18:00 close', '2026-03-23T08:30:00Z', 8, '2026-03-23T16:30:00.000Z', 'max-age'],
    ['Mon 10:00: the cap and the close coincide', '2026-03-23T09:00:00Z', 8, '2026-03-23T17:00:00.000Z', 'max-age'],
    ['Mon 11:00: end of the calling day', '2026-03-23T10:00:00Z', 8, '2026-03-23T17:00:00.000Z', 'end-of-calling-day'],
    ['Mon 19:00 (after hours): 8 h cap, Tue 03:00', '2026-03-23T18:00:00Z', 8, '2026-03-24T02:00:00.000Z', 'max-age'],
    ['Mon 19:00 with a 24 h cap: end of the next calling day', '2026-03-23T18:00:00Z', 24, '2026-03-24T17:00:00.000Z', 'end-of-calling-day'],
    ['Sat with a 72 h cap: end of Monday', '2026-03-21T10:00:00Z', 72, '2026-03-23T17:00:00.000Z', 'end-of-calling-day'],
    ['Fri 17:59 CET: one minute left', '2026-03-27T16:59:00Z', 8, '2026-03-27T17:00:00.000Z', 'end-of-calling-day'],
  ])('%s', (_label, at, capHours, expected, because) => {
    const e = expiryFor({ ...defaultPolicyConfig, maxAgeMs: capHours * HOUR }, Z(at));
    expect({ expiresAt: iso(e.expiresAt), expiresBecause: e.expiresBecause }).toEqual({ expiresAt: expected, expiresBecause: because });
  });

  it('WAITING → EXPIRED at the 8 h cap, with reason and CRM notification', () => {
    const s = Sim.device();
    expect(s.tick(T0 + 8 * HOUR - 1).events).toEqual([]);
    const d = s.tick(T0 + 8 * HOUR);
    const reason = 'expired: maximum age 8h reached at 17:30';
    expect(d.request).toMatchObject({ state: 'EXPIRED', outcome: 'expired', reason, wakeAt: null, waitingFor: null });
    expect(d.events).toEqual([{ at: T0 + 8 * HOUR, type: 'expired', from: 'WAITING', to: 'EXPIRED', reason, wakeAt: null, waitingFor: null }]);
    expect(d.actions).toEqual([{ type: 'notify', event: 'expired', reason }]);
  });

  it('GRACE → EXPIRED at the end of the calling day (the grace wake-up is capped)', () => {
    const at = Z('2026-03-23T10:00:00Z'); // Mon 11:00
    const s = Sim.device({ at });
    const close = Z('2026-03-23T17:00:00Z');
    s.free(close - 4 * MINUTE); // long busy: 10 min grace would end at 18:06
    expect(s.request).toMatchObject({ state: 'GRACE', graceUntil: close + 6 * MINUTE, wakeAt: close });
    const d = s.wake();
    expect(d.events.map((e) => [e.type, e.from, e.to, e.reason])).toEqual([
      ['expired', 'GRACE', 'EXPIRED', "expired: end of the prospect's calling day (18:00)"],
    ]);
  });

  it('a snooze that ends after expiry simply ends in EXPIRED at expiry', () => {
    const at = Z('2026-03-23T10:00:00Z');
    const close = Z('2026-03-23T17:00:00Z');
    const s = Sim.device({ at });
    s.free(close - 20 * MINUTE);
    s.wake(); // ring at close - 10m
    s.key(close - 9 * MINUTE, '2');
    expect(s.request).toMatchObject({ state: 'WAITING', notBefore: close + 6 * MINUTE, wakeAt: close });
    expect(s.wake().request.state).toBe('EXPIRED');
  });

  it('a valid observation arriving after the expiry instant (before its tick) expires the request', () => {
    const s = Sim.device();
    const d = s.free(T0 + 8 * HOUR + SECOND);
    expect(d.events.map((e) => [e.type, e.from, e.to])).toEqual([['expired', 'WAITING', 'EXPIRED']]);
  });

  it('cancel and refresh still win after the expiry instant', () => {
    const a = Sim.device();
    expect(a.do(T0 + 8 * HOUR + SECOND, { type: 'cancel', by: 'cli' }).request.state).toBe('CANCELLED');
    const b = Sim.device();
    expect(b.do(T0 + 8 * HOUR + SECOND, { type: 'refresh' }).request).toMatchObject({ state: 'WAITING', refreshes: 1 });
  });
});

describe('refresh (# pressed again while pending)', () => {
  it('resets to WAITING as if just created: same id and createdAt, fresh counters and expiry, rings kept', () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    s.wake(); // ring 1 at T0+15m
    s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
    s.do(T0 + 15 * MINUTE + 20 * SECOND, { type: 'prospectBusy' });
    s.free(T0 + 17 * MINUTE); // GRACE held by back-off
    const at = T0 + 20 * MINUTE; // 09:50
    const d = s.do(at, { type: 'refresh' });
    expect(d.request).toMatchObject({
      id: 'r1',
      state: 'WAITING',
      createdAt: T0,
      refreshedAt: at,
      refreshes: 1,
      updatedAt: at,
      expiresAt: at + 8 * HOUR,
      expiresBecause: 'max-age',
      wakeAt: at + 8 * HOUR,
      waitingFor: 'prospect-busy',
      reason: 'prospect line busy since 09:50',
      attempts: 0,
      noAnswers: 0,
      snoozes: 0,
      rings: 1,
      lineBusy: true,
      busySince: at,
      freeSince: null,
      graceUntil: null,
      notBefore: null,
      notBeforeKind: null,
      lastAttemptAt: null,
    });
    expect(d.events).toEqual([
      {
        at,
        type: 'refreshed',
        from: 'GRACE',
        to: 'WAITING',
        reason: 'agent pressed # again; restarted as if new; prospect line busy since 09:50',
        wakeAt: at + 8 * HOUR,
        waitingFor: 'prospect-busy',
      },
    ]);
    expect(d.actions).toEqual([]);
  });

  it('is recorded even when the state does not change', () => {
    const s = Sim.device();
    const d = s.do(T0 + MINUTE, { type: 'refresh' });
    expect(d.events.map((e) => [e.type, e.from, e.to])).toEqual([['refreshed', 'WAITING', 'WAITING']]);
    expect(d.request.busySince).toBe(T0 + MINUTE);
  });

  it('the refresh counts as a busy observation for adaptive grace', () => {
    const s = Sim.device();
    s.do(T0 + 25 * MINUTE, { type: 'refresh' });
    expect(s.free(T0 + 40 * MINUTE).request.graceUntil).toBe(T0 + 45 * MINUTE); // 15 min busy, not 40
  });

  it('timed mode: the first probe moves to 10 minutes after the refresh', () => {
    const s = Sim.timed();
    const d = s.do(T0 + 8 * MINUTE, { type: 'refresh' });
    expect(d.request).toMatchObject({ state: 'WAITING', waitingFor: 'probe', notBefore: T0 + 18 * MINUTE, wakeAt: T0 + 18 * MINUTE });
  });

  it('while the agent is being rung: the ring is withdrawn', () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    s.wake();
    const d = s.do(T0 + 15 * MINUTE + 5 * SECOND, { type: 'refresh' });
    expect(d.actions).toEqual([{ type: 'hangupAgent', channelId: 'ccb-r1-1' }]);
    expect(d.request).toMatchObject({ state: 'WAITING', recallStartedAt: null, rings: 1 });
  });

  it('the refreshed expiry can be the end of the calling day', () => {
    const s = Sim.device();
    const at = Z('2026-03-23T12:00:00Z'); // 13:00 → 21:00 capped at 18:00
    expect(s.do(at, { type: 'refresh' }).request).toMatchObject({ expiresAt: Z('2026-03-23T17:00:00Z'), expiresBecause: 'end-of-calling-day' });
  });
});

describe('cancel', () => {
  it.each<[string, (s: Sim) => void, string[]]>([
    ['WAITING', () => undefined, ['notify']],
    ['GRACE', (s) => s.free(T0 + 10 * MINUTE), ['notify']],
    [
      'DUE',
      (s) => {
        s.free(T0 + 10 * MINUTE);
        s.agent = { busy: true, since: T0 };
        s.wake();
      },
      ['notify'],
    ],
    [
      'RINGING_AGENT',
      (s) => {
        s.free(T0 + 10 * MINUTE);
        s.wake();
      },
      ['hangupAgent', 'notify'],
    ],
    [
      'CONNECTING',
      (s) => {
        s.free(T0 + 10 * MINUTE);
        s.wake();
        s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
      },
      ['hangupProspect', 'hangupAgent', 'notify'],
    ],
  ])('from %s → CANCELLED with the canceller recorded', (state, setup, actionTypes) => {
    const s = Sim.device();
    setup(s);
    expect(s.state).toBe(state);
    const at = T0 + 16 * MINUTE;
    const d = s.do(at, { type: 'cancel', by: 'cli:alice' });
    expect(d.request).toMatchObject({ state: 'CANCELLED', outcome: 'cancelled', reason: 'cancelled by cli:alice', wakeAt: null, waitingFor: null, updatedAt: at });
    expect(d.events).toEqual([{ at, type: 'cancelled', from: state, to: 'CANCELLED', reason: 'cancelled by cli:alice', wakeAt: null, waitingFor: null }]);
    expect(d.actions.map((a) => a.type)).toEqual(actionTypes);
    expect(d.actions[d.actions.length - 1]).toEqual({ type: 'notify', event: 'cancelled', reason: 'cancelled by cli:alice' });
  });

  it('an empty canceller is reported as unknown', () => {
    expect(Sim.device().do(T0 + MINUTE, { type: 'cancel', by: '' }).request.reason).toBe('cancelled by unknown');
  });
});

describe('newRequest input', () => {
  it('rejects bad input with one error listing every problem', () => {
    const bad = { id: 'a b', agent: ' ', agentCallerId: null, prospect: '030-123', language: '', mode: 'sip' } as unknown as Parameters<typeof newRequest>[0];
    expect(() => newRequest(bad, defaultPolicyConfig, T0)).toThrow(
      'Invalid callback request: id "a b" must be letters, digits, \'.\', \'_\', \'-\'; agent must be a non-empty string; ' +
        'prospect "030-123" must be digits; mode "sip" must be \'device\' or \'timed\'; language must be a non-empty string; ' +
        'agentCallerId must be { name, number }',
    );
    expect(() => newRequest(input(), defaultPolicyConfig, NaN)).toThrow('Invalid callback request: now: expected epoch ms, got NaN');
  });

  it('accepts an international number and does not alias the caller ID object', () => {
    const i = { ...input(), prospect: '+4930123456' };
    const d = newRequest(i, defaultPolicyConfig, T0);
    expect(d.request.prospect).toBe('+4930123456');
    expect(d.request.agentCallerId).not.toBe(i.agentCallerId);
    expect(d.request.agentCallerId).toEqual(i.agentCallerId);
  });
});
