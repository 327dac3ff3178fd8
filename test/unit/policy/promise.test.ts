/**
 * Never promise what will not happen: at the busy signal the policy says whether a callback could fire before the
 * request would expire, and what happens otherwise (carry over to the next calling day, or no offer).
 */
import { decide, HOUR, MINUTE, newRequest, offerPromise, type PolicyConfig } from '../../../src/core/policy';
import { defaultPolicyConfig } from '../../../testkit/policy';
import { freeAgent, input, Sim, Z } from './helpers';

const cfg = defaultPolicyConfig; // Mon–Fri 09–18 Europe/Berlin, grace 5m, first probe 10m, max age 8h, carry-over 1 day
const decline: PolicyConfig = { ...cfg, afterHours: 'decline' };
const twoDays: PolicyConfig = { ...cfg, carryOverDays: 2 };
const easter: PolicyConfig = { ...cfg, callingHours: { ...cfg.callingHours, holidays: ['2026-04-03', '2026-04-06'] } };

/** A compact verdict: 'regular until <expiry>' / 'next <opens> until <expiry>' / 'declined <why> (<opens>)'. */
function verdict(c: PolicyConfig, at: string, mode: 'device' | 'timed' = 'device', timeZone?: string): string {
  const p = offerPromise(c, Z(at), { mode, timeZone });
  const i = (t: number | null) => (t === null ? 'none' : new Date(t).toISOString().slice(0, 16));
  if (p.kind === 'regular') return `regular until ${i(p.expiresAt)}`;
  if (p.kind === 'next-calling-day') return `next ${i(p.opensAt)} until ${i(p.expiresAt)} (${p.calledDays}d)`;
  return `declined ${p.why} (${i(p.opensAt)})`;
}

describe('offerPromise (Europe/Berlin, Mon–Fri 09–18)', () => {
  it.each([
    // [case, instant, mode, carry-over verdict, decline verdict]
    ['Mon 10:00', '2026-03-23T09:00:00Z', 'device', 'regular until 2026-03-23T17:00', 'regular until 2026-03-23T17:00'],
    ['Mon 07:00, before opening, expiry 15:00 (8 h)', '2026-03-23T06:00:00Z', 'device', 'regular until 2026-03-23T14:00', 'regular until 2026-03-23T14:00'],
    ['Mon 00:30: 8 h end before 09:00 → this morning', '2026-03-22T23:30:00Z', 'device', 'next 2026-03-23T08:00 until 2026-03-23T17:00 (1d)', 'declined after-hours (2026-03-23T08:00)'],
    ['Mon 17:54: grace ends 17:59, still open', '2026-03-23T16:54:00Z', 'device', 'regular until 2026-03-23T17:00', 'regular until 2026-03-23T17:00'],
    ['Mon 17:55: grace ends at the close → tomorrow', '2026-03-23T16:55:00Z', 'device', 'next 2026-03-24T08:00 until 2026-03-24T17:00 (1d)', 'declined after-hours (2026-03-24T08:00)'],
    ['Mon 17:49 timed: first probe 17:59', '2026-03-23T16:49:00Z', 'timed', 'regular until 2026-03-23T17:00', 'regular until 2026-03-23T17:00'],
    ['Mon 17:50 timed: first probe at the close → tomorrow', '2026-03-23T16:50:00Z', 'timed', 'next 2026-03-24T08:00 until 2026-03-24T17:00 (1d)', 'declined after-hours (2026-03-24T08:00)'],
    ['Mon 19:00', '2026-03-23T18:00:00Z', 'device', 'next 2026-03-24T08:00 until 2026-03-24T17:00 (1d)', 'declined after-hours (2026-03-24T08:00)'],
    ['Fri 17:58', '2026-03-27T16:58:00Z', 'device', 'next 2026-03-30T07:00 until 2026-03-30T16:00 (1d)', 'declined after-hours (2026-03-30T07:00)'],
    ['Fri 19:00 (DST starts Sun 29 Mar: Monday is CEST)', '2026-03-27T18:00:00Z', 'device', 'next 2026-03-30T07:00 until 2026-03-30T16:00 (1d)', 'declined after-hours (2026-03-30T07:00)'],
    ['Sat 11:00', '2026-03-28T10:00:00Z', 'timed', 'next 2026-03-30T07:00 until 2026-03-30T16:00 (1d)', 'declined after-hours (2026-03-30T07:00)'],
    ['Sun 23:30 CEST', '2026-03-29T21:30:00Z', 'device', 'next 2026-03-30T07:00 until 2026-03-30T16:00 (1d)', 'declined after-hours (2026-03-30T07:00)'],
    ['Fri 19:00 CEST (DST ends Sun 25 Oct: Monday is CET)', '2026-10-23T17:00:00Z', 'device', 'next 2026-10-26T08:00 until 2026-10-26T17:00 (1d)', 'declined after-hours (2026-10-26T08:00)'],
    ['Sun 02:30 CET on the fall-back night', '2026-10-25T01:30:00Z', 'device', 'next 2026-10-26T08:00 until 2026-10-26T17:00 (1d)', 'declined after-hours (2026-10-26T08:00)'],
  ] as const)('%s', (_name, at, mode, carry, dec) => {
    expect(verdict(cfg, at, mode)).toBe(carry);
    expect(verdict(decline, at, mode)).toBe(dec);
  });

  it('holidays: Thursday evening before Easter (Good Friday, Easter Monday closed) → Tuesday', () => {
    expect(verdict(easter, '2026-04-02T17:00:00Z')).toBe('next 2026-04-07T07:00 until 2026-04-07T16:00 (1d)');
    expect(verdict({ ...easter, afterHours: 'decline' }, '2026-04-02T17:00:00Z')).toBe('declined after-hours (2026-04-07T07:00)');
  });

  it('carryOverDays: 2 keeps a Friday-evening request through Tuesday; holidays are not calling days', () => {
    expect(verdict(twoDays, '2026-03-27T18:00:00Z')).toBe('next 2026-03-30T07:00 until 2026-03-31T16:00 (2d)');
    expect(verdict({ ...easter, carryOverDays: 2 }, '2026-04-02T17:00:00Z')).toBe('next 2026-04-07T07:00 until 2026-04-08T16:00 (2d)');
  });

  it('carryOverDays counts calling days, not calendar days', () => {
    const mondays: PolicyConfig = { ...cfg, carryOverDays: 3, openingHorizonDays: 7, callingHours: { ...cfg.callingHours, windows: { mon: [['09:00', '18:00']] } } };
    expect(verdict(mondays, '2026-03-23T18:00:00Z')).toBe('next 2026-03-30T07:00 until 2026-04-13T16:00 (3d)');
  });

  it('carry-over stops at the last calling day found within the horizon', () => {
    const c: PolicyConfig = { ...cfg, carryOverDays: 3, openingHorizonDays: 7, callingHours: { ...cfg.callingHours, windows: { mon: [['09:00', '18:00']] }, holidays: ['2026-04-06', '2026-04-13'] } };
    // After Mon 30 Mar the next Mondays are holidays: no further calling day within 7 days of it.
    expect(verdict(c, '2026-03-23T18:00:00Z')).toBe('next 2026-03-30T07:00 until 2026-03-30T16:00 (1d)');
  });

  it('no calling hours within the horizon: declined either way', () => {
    const closed: PolicyConfig = { ...cfg, callingHours: { ...cfg.callingHours, windows: {} } };
    expect(verdict(closed, '2026-03-23T09:00:00Z')).toBe('declined no-calling-day (none)');
    expect(verdict({ ...closed, afterHours: 'decline' }, '2026-03-23T09:00:00Z')).toBe('declined no-calling-day (none)');
  });

  it('the reason names the zone and the next window', () => {
    const p = offerPromise(decline, Z('2026-03-27T18:00:00Z'), { mode: 'device' });
    expect(p).toMatchObject({ kind: 'declined', reason: 'outside calling hours in Europe/Berlin (next window Mon 09:00); policy.afterHours is "decline"' });
  });
});

describe("offerPromise in the prospect's zone", () => {
  it('Berlin 15:30 Monday is 09:30 in New York: regular there', () => {
    expect(verdict(cfg, '2026-03-23T14:30:00Z', 'device', 'America/New_York')).toBe('regular until 2026-03-23T22:00');
  });

  it('Berlin 10:00 is 04:00 in New York (before opening): regular, the window opens within 8 h', () => {
    expect(verdict(cfg, '2026-01-12T09:00:00Z', 'device', 'America/New_York')).toBe('regular until 2026-01-12T17:00');
  });

  it('Berlin 19:00 Friday is 14:00 in New York (EDT since 8 Mar, Berlin still CET): regular', () => {
    expect(verdict(cfg, '2026-03-27T18:00:00Z', 'device', 'America/New_York')).toBe('regular until 2026-03-27T22:00');
  });

  it('New York Friday 19:00 EST before the US DST start → Monday 09:00 EDT (13:00Z)', () => {
    expect(verdict(cfg, '2026-03-07T00:00:00Z', 'device', 'America/New_York')).toBe('next 2026-03-09T13:00 until 2026-03-09T22:00 (1d)');
  });

  it('New York Friday 19:00 EDT before the US DST end → Monday 09:00 EST (14:00Z)', () => {
    expect(verdict(cfg, '2026-10-30T23:00:00Z', 'device', 'America/New_York')).toBe('next 2026-11-02T14:00 until 2026-11-02T23:00 (1d)');
  });

  it('Tokyo (no DST): Berlin Monday 10:00 is 18:00 in Tokyo → Tuesday 09:00 JST', () => {
    expect(verdict(cfg, '2026-03-23T09:00:00Z', 'device', 'Asia/Tokyo')).toBe('next 2026-03-24T00:00 until 2026-03-24T09:00 (1d)');
  });
});

describe('carried-over and declined requests in the machine', () => {
  it('a carried-over request says so, waits for the opening and rings then', () => {
    const s = Sim.timed({ at: Z('2026-03-28T10:00:00Z') }); // Sat 11:00
    expect(s.request).toMatchObject({
      expiresBecause: 'carry-over',
      carriedOver: { opensAt: Z('2026-03-30T07:00:00Z'), calledDays: 1 },
      reason: 'first probe of the external line at 11:10; carried over to the next calling day (opens Mon 09:00 Europe/Berlin)',
    });
    expect(s.wake().request).toMatchObject({ state: 'DUE', waitingFor: 'calling-hours', wakeAt: Z('2026-03-30T07:00:00Z') });
    expect(s.wake().actions.map((a) => a.type)).toEqual(['ringAgent']);
  });

  it('a carried-over request that is not reached expires at the end of that calling day, saying why', () => {
    const s = Sim.device({ at: Z('2026-03-27T18:00:00Z') });
    s.tick(Z('2026-03-30T16:00:00Z'));
    expect(s.request).toMatchObject({ state: 'EXPIRED', reason: 'expired: end of the calling day it was carried over to (18:00)' });
  });

  it('round the clock: a # at 23:59 is a regular promise that expires after policy.maxAge, not at midnight or the next day', () => {
    const allDay: PolicyConfig = {
      ...cfg,
      callingHours: { timeZone: 'UTC', windows: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])), holidays: [] },
    };
    expect(verdict(allDay, '2026-12-07T23:59:00Z')).toBe('regular until 2026-12-08T07:59');
    expect(verdict(allDay, '2026-12-07T23:59:00Z', 'timed')).toBe('regular until 2026-12-08T07:59');
    const r = newRequest(input('device'), allDay, Z('2026-12-07T23:59:00Z')).request;
    expect(r).toMatchObject({ expiresAt: Z('2026-12-08T07:59:00Z'), expiresBecause: 'max-age' });
    expect(r.carriedOver).toBeNull();
  });

  it('newRequest refuses when nothing may be promised (the shell must not have offered)', () => {
    expect(() => newRequest(input('device'), decline, Z('2026-03-27T18:00:00Z'))).toThrow(/No callback can be promised: outside calling hours/);
  });

  it('a refresh (# again) after hours with afterHours=decline keeps the request as it was', () => {
    const s = Sim.device({ at: Z('2026-03-23T16:00:00Z'), cfg: decline }); // Mon 17:00
    const before = s.request;
    const d = decide(before, { type: 'refresh' }, { now: Z('2026-03-23T18:30:00Z'), cfg: decline, agent: freeAgent() });
    expect(d.request).toBe(before);
    expect(d.events).toEqual([]);
  });

  it('a refresh after hours with carry-over carries the request over', () => {
    const s = Sim.device({ at: Z('2026-03-23T16:00:00Z') }); // Mon 17:00
    const d = s.do(Z('2026-03-23T18:30:00Z'), { type: 'refresh' });
    expect(d.request).toMatchObject({ expiresAt: Z('2026-03-24T17:00:00Z'), expiresBecause: 'carry-over' });
    expect(d.events[0].reason).toContain('carried over to the next calling day (opens Tue 09:00 Europe/Berlin)');
  });

  it('a request never expires unseen: every carry-over verdict lets a callback fire before expiry (sweep over a year)', () => {
    for (const c of [cfg, easter, twoDays, { ...cfg, maxAgeMs: HOUR }]) {
      for (let t = Z('2026-01-01T00:00:00Z'); t < Z('2027-01-01T00:00:00Z'); t += 97 * MINUTE) {
        for (const mode of ['device', 'timed'] as const) {
          const p = offerPromise(c, t, { mode });
          if (p.kind === 'declined') throw new Error(`declined at ${new Date(t).toISOString()}`);
          const earliest = p.kind === 'regular' ? p.earliestAt : p.opensAt;
          expect(earliest < p.expiresAt).toBe(true);
          expect(earliest >= t + (mode === 'device' ? c.graceMs : c.firstProbeDelayMs)).toBe(true);
        }
      }
    }
  });
});

describe("calling hours in the request's zone", () => {
  it('a New York prospect is rung at 09:00 New York time, not Berlin time', () => {
    const s = Sim.timed({ at: Z('2026-03-23T12:00:00Z'), timeZone: 'America/New_York' }); // Mon 13:00 Berlin, 08:00 NY
    expect(s.request).toMatchObject({ timeZone: 'America/New_York', zoneSource: 'number' });
    const due = s.wake(); // probe 08:10 NY
    expect(due.request).toMatchObject({ state: 'DUE', waitingFor: 'calling-hours', wakeAt: Z('2026-03-23T13:00:00Z'), reason: 'outside calling hours, opens 09:00' });
    expect(s.wake().actions.map((a) => a.type)).toEqual(['ringAgent']);
  });
});

describe('one prospect, many agents (DecideContext.colleagues)', () => {
  it('a DUE request waits while a colleague opted in earlier, and rings once it is first', () => {
    const s = Sim.device();
    s.colleagues = { ahead: 1, lastConnectedAt: null };
    s.free(Z('2026-03-23T08:40:00Z'));
    const held = s.wake();
    expect(held.actions).toEqual([]);
    expect(held.request).toMatchObject({ state: 'DUE', waitingFor: 'colleague', reason: 'a colleague opted in earlier for this number (queue position 2)', wakeAt: Z('2026-03-23T08:46:00Z') });
    s.colleagues = { ahead: 2, lastConnectedAt: null };
    expect(s.wake().request.reason).toBe('2 colleagues opted in earlier for this number (queue position 3)');
    s.colleagues = { ahead: 0, lastConnectedAt: null };
    expect(s.wake().actions.map((a) => a.type)).toEqual(['ringAgent']);
  });

  it("after a colleague's call reached the prospect, the prospect gets the grace again", () => {
    const s = Sim.timed();
    s.colleagues = { ahead: 0, lastConnectedAt: Z('2026-03-23T08:39:00Z') };
    const d = s.wake(); // probe at 09:40
    expect(d.request).toMatchObject({ state: 'DUE', waitingFor: 'grace', wakeAt: Z('2026-03-23T08:49:00Z'), reason: "grace after a colleague's call with the prospect, until 09:49" });
    expect(s.wake().actions.map((a) => a.type)).toEqual(['ringAgent']);
  });

  it("while a colleague's call with the prospect goes on, the next agent waits; the grace counts from its end", () => {
    const s = Sim.timed();
    s.colleagues = { ahead: 0, lastConnectedAt: Z('2026-03-23T08:35:00Z'), lastCallEndedAt: null };
    expect(s.wake().request).toMatchObject({ state: 'DUE', waitingFor: 'colleague', reason: 'the prospect is on the phone with a colleague (since 09:35)' });
    s.colleagues = { ahead: 0, lastConnectedAt: Z('2026-03-23T08:35:00Z'), lastCallEndedAt: Z('2026-03-23T08:50:00Z') };
    expect(s.tick(Z('2026-03-23T08:50:00Z')).request).toMatchObject({ waitingFor: 'grace', wakeAt: Z('2026-03-23T09:00:00Z'), reason: "grace after a colleague's call with the prospect, until 10:00" });
    expect(s.wake().actions.map((a) => a.type)).toEqual(['ringAgent']);
  });

  it('an end never reported (a crash mid-call) holds the next agent for at most an hour after the connection', () => {
    const s = Sim.timed();
    s.colleagues = { ahead: 0, lastConnectedAt: Z('2026-03-23T07:35:00Z'), lastCallEndedAt: null }; // 08:35, over an hour ago at 09:40
    expect(s.wake().actions.map((a) => a.type)).toEqual(['ringAgent']);
  });

  it('calling hours are reported before the colleague (the longer wait)', () => {
    const s = Sim.device({ at: Z('2026-03-27T18:00:00Z') });
    s.colleagues = { ahead: 1, lastConnectedAt: null };
    s.free(Z('2026-03-27T18:10:00Z'));
    expect(s.wake().request.waitingFor).toBe('calling-hours');
    expect(s.wake().request.waitingFor).toBe('colleague');
  });
});
