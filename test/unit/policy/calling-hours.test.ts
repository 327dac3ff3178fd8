import {
  currentOrNextOpening,
  endOfCallingDay,
  isWithinCallingHours,
  localIsoDate,
  localLabel,
  nextOpening,
  openingsOn,
  validateCallingHours,
  zonedWallTime,
  type CallingHoursConfig,
  type TimeRange,
} from '../../../src/core/policy/calling-hours';

import { tz } from '@date-fns/tz';
import { format } from 'date-fns';

const Z = (iso: string): number => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) throw new Error(`bad test instant ${iso}`);
  return t;
};
const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

const BERLIN = 'Europe/Berlin';
const NEW_YORK = 'America/New_York';
const WORKDAYS: readonly TimeRange[] = [['09:00', '18:00']];
const monFri = (timeZone: string, holidays: string[] = []): CallingHoursConfig => ({
  timeZone,
  windows: { mon: WORKDAYS, tue: WORKDAYS, wed: WORKDAYS, thu: WORKDAYS, fri: WORKDAYS },
  holidays,
});
const everyDay = (timeZone: string, ranges: readonly TimeRange[]): CallingHoursConfig => ({
  timeZone,
  windows: { mon: ranges, tue: ranges, wed: ranges, thu: ranges, fri: ranges, sat: ranges, sun: ranges },
  holidays: [],
});
const sundayOnly = (timeZone: string, ranges: readonly TimeRange[]): CallingHoursConfig => ({ timeZone, windows: { sun: ranges }, holidays: [] });

describe('zonedWallTime (local wall clock → instant)', () => {
  it.each<[string, string, number, string, 'first' | 'last', string]>([
    // Europe/Berlin, spring forward 2026-03-29 02:00 CET → 03:00 CEST (01:00Z)
    [BERLIN, '2026-03-29', 1 * 60 + 30, '01:30', 'first', '2026-03-29T00:30:00.000Z'],
    [BERLIN, '2026-03-29', 2 * 60, '02:00 (gap)', 'first', '2026-03-29T01:00:00.000Z'],
    [BERLIN, '2026-03-29', 2 * 60 + 30, '02:30 (gap)', 'first', '2026-03-29T01:00:00.000Z'],
    [BERLIN, '2026-03-29', 2 * 60 + 30, '02:30 (gap)', 'last', '2026-03-29T01:00:00.000Z'],
    [BERLIN, '2026-03-29', 3 * 60, '03:00', 'first', '2026-03-29T01:00:00.000Z'],
    [BERLIN, '2026-03-29', 3 * 60 + 30, '03:30', 'first', '2026-03-29T01:30:00.000Z'],
    [BERLIN, '2026-03-29', 9 * 60, '09:00', 'first', '2026-03-29T07:00:00.000Z'],
    // Europe/Berlin, fall back 2026-10-25 03:00 CEST → 02:00 CET (01:00Z)
    [BERLIN, '2026-10-25', 1 * 60 + 30, '01:30', 'first', '2026-10-24T23:30:00.000Z'],
    [BERLIN, '2026-10-25', 2 * 60, '02:00 (twice)', 'first', '2026-10-25T00:00:00.000Z'],
    [BERLIN, '2026-10-25', 2 * 60, '02:00 (twice)', 'last', '2026-10-25T01:00:00.000Z'],
    [BERLIN, '2026-10-25', 2 * 60 + 30, '02:30 (twice)', 'first', '2026-10-25T00:30:00.000Z'],
    [BERLIN, '2026-10-25', 2 * 60 + 30, '02:30 (twice)', 'last', '2026-10-25T01:30:00.000Z'],
    [BERLIN, '2026-10-25', 3 * 60 + 30, '03:30', 'last', '2026-10-25T02:30:00.000Z'],
    [BERLIN, '2026-10-25', 9 * 60, '09:00', 'first', '2026-10-25T08:00:00.000Z'],
    // America/New_York, spring forward 2026-03-08 02:00 EST → 03:00 EDT (07:00Z)
    [NEW_YORK, '2026-03-08', 1 * 60 + 30, '01:30', 'first', '2026-03-08T06:30:00.000Z'],
    [NEW_YORK, '2026-03-08', 2 * 60 + 30, '02:30 (gap)', 'first', '2026-03-08T07:00:00.000Z'],
    [NEW_YORK, '2026-03-08', 3 * 60 + 30, '03:30', 'first', '2026-03-08T07:30:00.000Z'],
    [NEW_YORK, '2026-03-08', 9 * 60, '09:00', 'first', '2026-03-08T13:00:00.000Z'],
    // America/New_York, fall back 2026-11-01 02:00 EDT → 01:00 EST (06:00Z)
    [NEW_YORK, '2026-11-01', 0 * 60 + 30, '00:30', 'first', '2026-11-01T04:30:00.000Z'],
    [NEW_YORK, '2026-11-01', 1 * 60 + 30, '01:30 (twice)', 'first', '2026-11-01T05:30:00.000Z'],
    [NEW_YORK, '2026-11-01', 1 * 60 + 30, '01:30 (twice)', 'last', '2026-11-01T06:30:00.000Z'],
    [NEW_YORK, '2026-11-01', 3 * 60 + 30, '03:30', 'first', '2026-11-01T08:30:00.000Z'],
    [NEW_YORK, '2026-11-01', 9 * 60, '09:00', 'first', '2026-11-01T14:00:00.000Z'],
    // 24:00 is the next day's midnight
    [BERLIN, '2026-03-28', 24 * 60, '24:00', 'last', '2026-03-28T23:00:00.000Z'],
    [BERLIN, '2026-03-29', 24 * 60, '24:00', 'last', '2026-03-29T22:00:00.000Z'],
  ])('%s %s %s (%s) → %s', (zone, date, minute, _label, pick, expected) => {
    const [y, m, d] = date.split('-').map(Number);
    expect(iso(zonedWallTime(zone, y, m - 1, d, minute, pick))).toBe(expected);
  });

  it('asked again (the answers are remembered), it gives the same instants: per zone, date, minute and pick', () => {
    for (let round = 0; round < 3; round++) {
      expect(iso(zonedWallTime(BERLIN, 2026, 9, 25, 2 * 60, 'first'))).toBe('2026-10-25T00:00:00.000Z');
      expect(iso(zonedWallTime(BERLIN, 2026, 9, 25, 2 * 60, 'last'))).toBe('2026-10-25T01:00:00.000Z');
      expect(iso(zonedWallTime(NEW_YORK, 2026, 9, 25, 2 * 60, 'first'))).toBe('2026-10-25T06:00:00.000Z');
      expect(iso(zonedWallTime(BERLIN, 2026, 9, 26, 2 * 60, 'first'))).toBe('2026-10-26T01:00:00.000Z');
      // an unknown zone is never remembered as an answer: it throws every time
      expect(() => zonedWallTime('Mars/Olympus', 2026, 0, 1, 0)).toThrow('Unknown time zone "Mars/Olympus"');
    }
  });

  it('throws for an unknown zone', () => {
    expect(() => zonedWallTime('Mars/Olympus', 2026, 0, 1, 0)).toThrow('Unknown time zone "Mars/Olympus"');
  });
});

describe('a window 01:30–03:30 local on a DST transition day', () => {
  it.each<[string, string, string, string, number]>([
    [BERLIN, '2026-03-29', '2026-03-29T00:30:00.000Z', '2026-03-29T01:30:00.000Z', 1],
    [BERLIN, '2026-10-25', '2026-10-24T23:30:00.000Z', '2026-10-25T02:30:00.000Z', 3],
    [NEW_YORK, '2026-03-08', '2026-03-08T06:30:00.000Z', '2026-03-08T07:30:00.000Z', 1],
    [NEW_YORK, '2026-11-01', '2026-11-01T05:30:00.000Z', '2026-11-01T08:30:00.000Z', 3],
  ])('%s %s opens %s, closes %s (%d h long)', (zone, date, start, end, hours) => {
    const cfg = sundayOnly(zone, [['01:30', '03:30']]);
    const [o] = openingsOn(cfg, date);
    expect({ date: o.date, start: iso(o.start), end: iso(o.end) }).toEqual({ date, start, end });
    expect(o.end - o.start).toBe(hours * 3_600_000);
    expect(isWithinCallingHours(cfg, Z(start) - 1)).toBe(false);
    expect(isWithinCallingHours(cfg, Z(start))).toBe(true);
    expect(isWithinCallingHours(cfg, Z(end) - 1)).toBe(true);
    expect(isWithinCallingHours(cfg, Z(end))).toBe(false);
    // every instant in between is inside (checked every 5 minutes)
    for (let t = Z(start); t < Z(end); t += 5 * 60_000) expect(isWithinCallingHours(cfg, t)).toBe(true);
    expect(iso(nextOpening(cfg, Z(start) - 3_600_000))).toBe(start);
    expect(iso(endOfCallingDay(cfg, Z(start)))).toBe(end);
  });

  it('Berlin 2026-03-29: the non-existent 02:xx hour is skipped — 03:05 CEST is inside, 03:30 CEST is not', () => {
    const cfg = sundayOnly(BERLIN, [['01:30', '03:30']]);
    expect(isWithinCallingHours(cfg, Z('2026-03-29T01:05:00Z'))).toBe(true); // 03:05 CEST
    expect(isWithinCallingHours(cfg, Z('2026-03-29T01:30:00Z'))).toBe(false); // 03:30 CEST
  });

  it('Berlin 2026-10-25: both 02:45 CEST and 02:45 CET are inside', () => {
    const cfg = sundayOnly(BERLIN, [['01:30', '03:30']]);
    expect(isWithinCallingHours(cfg, Z('2026-10-25T00:45:00Z'))).toBe(true);
    expect(isWithinCallingHours(cfg, Z('2026-10-25T01:45:00Z'))).toBe(true);
  });

  it('a window starting inside the spring-forward gap opens at the jump (Berlin 02:30–04:00 → 03:00–04:00 CEST)', () => {
    const [o] = openingsOn(sundayOnly(BERLIN, [['02:30', '04:00']]), '2026-03-29');
    expect([iso(o.start), iso(o.end)]).toEqual(['2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z']);
  });

  it('a window ending at a repeated time closes at its second occurrence (New York 00:00–01:30 on 2026-11-01)', () => {
    const cfg = sundayOnly(NEW_YORK, [['00:00', '01:30']]);
    const [o] = openingsOn(cfg, '2026-11-01');
    expect([iso(o.start), iso(o.end)]).toEqual(['2026-11-01T04:00:00.000Z', '2026-11-01T06:30:00.000Z']);
    expect(isWithinCallingHours(cfg, Z('2026-11-01T06:15:00Z'))).toBe(true); // 01:15 EST (second pass)
  });
});

describe('windows at 09:00 across the DST change keep their wall-clock time', () => {
  it.each<[string, string, string]>([
    [BERLIN, '2026-03-28', '2026-03-28T08:00:00.000Z'],
    [BERLIN, '2026-03-29', '2026-03-29T07:00:00.000Z'],
    [BERLIN, '2026-10-24', '2026-10-24T07:00:00.000Z'],
    [BERLIN, '2026-10-25', '2026-10-25T08:00:00.000Z'],
    [NEW_YORK, '2026-03-07', '2026-03-07T14:00:00.000Z'],
    [NEW_YORK, '2026-03-08', '2026-03-08T13:00:00.000Z'],
    [NEW_YORK, '2026-10-31', '2026-10-31T13:00:00.000Z'],
    [NEW_YORK, '2026-11-01', '2026-11-01T14:00:00.000Z'],
  ])('%s %s 09:00 = %s', (zone, date, expected) => {
    const cfg = everyDay(zone, WORKDAYS);
    const [o] = openingsOn(cfg, date);
    expect(iso(o.start)).toBe(expected);
    expect(o.end - o.start).toBe(9 * 3_600_000);
  });

  it.each<[string, string, string]>([
    // from the evening before the change to the morning after it
    [BERLIN, '2026-03-28T17:00:00Z', '2026-03-29T07:00:00.000Z'],
    [BERLIN, '2026-10-24T16:00:00Z', '2026-10-25T08:00:00.000Z'],
    [NEW_YORK, '2026-03-07T23:00:00Z', '2026-03-08T13:00:00.000Z'],
    [NEW_YORK, '2026-10-31T22:00:00Z', '2026-11-01T14:00:00.000Z'],
  ])('%s: nextOpening from %s is %s', (zone, from, expected) => {
    const cfg = everyDay(zone, WORKDAYS);
    expect(isWithinCallingHours(cfg, Z(from))).toBe(false);
    expect(iso(nextOpening(cfg, Z(from)))).toBe(expected);
  });
});

describe('nextOpening across a weekend, a holiday and a DST change (Mon–Fri 09:00–18:00)', () => {
  it.each<[string, string, string[], string, string]>([
    [BERLIN, 'Fri 18:00 CET → Mon 09:00 CEST', [], '2026-03-27T17:00:00Z', '2026-03-30T07:00:00.000Z'],
    [BERLIN, 'Fri 18:00 CET → Tue 09:00 CEST (Mon holiday)', ['2026-03-30'], '2026-03-27T17:00:00Z', '2026-03-31T07:00:00.000Z'],
    [BERLIN, 'Fri 18:30 CEST → Mon 09:00 CET', [], '2026-10-23T16:30:00Z', '2026-10-26T08:00:00.000Z'],
    [BERLIN, 'Easter: Thu 18:00 → Tue 09:00 (Good Friday + Easter Monday)', ['2026-04-03', '2026-04-06'], '2026-04-02T16:00:00Z', '2026-04-07T07:00:00.000Z'],
    [NEW_YORK, 'Fri 18:00 EST → Mon 09:00 EDT', [], '2026-03-06T23:00:00Z', '2026-03-09T13:00:00.000Z'],
    [NEW_YORK, 'Fri 19:00 EDT → Mon 09:00 EST', [], '2026-10-30T23:00:00Z', '2026-11-02T14:00:00.000Z'],
    [NEW_YORK, 'Fri 19:00 EDT → Tue 09:00 EST (Mon holiday)', ['2026-11-02'], '2026-10-30T23:00:00Z', '2026-11-03T14:00:00.000Z'],
    [NEW_YORK, 'Sun during the fall-back night → Mon 09:00 EST', [], '2026-11-01T06:30:00Z', '2026-11-02T14:00:00.000Z'],
  ])('%s: %s', (zone, _label, holidays, from, expected) => {
    const cfg = monFri(zone, holidays);
    expect(isWithinCallingHours(cfg, Z(from))).toBe(false);
    expect(iso(nextOpening(cfg, Z(from)))).toBe(expected);
  });

  it('is now when open; today 09:00 when before opening; closes exactly at 18:00', () => {
    const cfg = monFri(BERLIN);
    expect(iso(nextOpening(cfg, Z('2026-03-23T09:30:00Z')))).toBe('2026-03-23T09:30:00.000Z');
    expect(iso(nextOpening(cfg, Z('2026-03-23T06:00:00Z')))).toBe('2026-03-23T08:00:00.000Z');
    expect(isWithinCallingHours(cfg, Z('2026-03-23T16:59:59.999Z'))).toBe(true);
    expect(isWithinCallingHours(cfg, Z('2026-03-23T17:00:00Z'))).toBe(false);
    expect(iso(nextOpening(cfg, Z('2026-03-23T17:00:00Z')))).toBe('2026-03-24T08:00:00.000Z');
  });

  it('holidays are local dates in the configured zone', () => {
    // 2026-03-24 00:30 Berlin is still 2026-03-23 in UTC: the holiday applies by Berlin's date
    const cfg: CallingHoursConfig = { ...everyDay(BERLIN, [['00:00', '24:00']]), holidays: ['2026-03-24'] };
    expect(isWithinCallingHours(cfg, Z('2026-03-23T22:59:59Z'))).toBe(true);
    expect(isWithinCallingHours(cfg, Z('2026-03-23T23:30:00Z'))).toBe(false);
    expect(iso(nextOpening(cfg, Z('2026-03-23T23:30:00Z')))).toBe('2026-03-24T23:00:00.000Z');
  });

  it('returns null when nothing opens within the horizon', () => {
    expect(nextOpening({ timeZone: BERLIN, windows: {}, holidays: [] }, Z('2026-03-23T10:00:00Z'))).toBeNull();
    const mondaysOnly: CallingHoursConfig = {
      timeZone: BERLIN,
      windows: { mon: WORKDAYS },
      holidays: ['2026-03-30', '2026-04-06', '2026-04-13'],
    };
    const from = Z('2026-03-23T18:00:00Z'); // Mon evening
    expect(nextOpening(mondaysOnly, from)).toBeNull(); // default horizon: 14 days
    expect(endOfCallingDay(mondaysOnly, from)).toBeNull();
    expect(iso(nextOpening(mondaysOnly, from, 30))).toBe('2026-04-20T07:00:00.000Z');
    expect(iso(nextOpening(mondaysOnly, from, 28))).toBe('2026-04-20T07:00:00.000Z');
    expect(nextOpening(mondaysOnly, from, 27)).toBeNull();
  });
});

describe('several ranges per day', () => {
  const lunch: CallingHoursConfig = {
    timeZone: BERLIN,
    windows: {
      mon: [
        ['13:00', '18:00'], // deliberately unsorted
        ['09:00', '12:00'],
      ],
      tue: [['10:00', '11:00']],
    },
    holidays: [],
  };
  it.each<[string, string, boolean, string | null, string | null]>([
    ['Mon 08:00', '2026-03-23T07:00:00Z', false, '2026-03-23T08:00:00.000Z', '2026-03-23T17:00:00.000Z'],
    ['Mon 11:59', '2026-03-23T10:59:00Z', true, '2026-03-23T10:59:00.000Z', '2026-03-23T17:00:00.000Z'],
    ['Mon 12:00', '2026-03-23T11:00:00Z', false, '2026-03-23T12:00:00.000Z', '2026-03-23T17:00:00.000Z'],
    ['Mon 12:30', '2026-03-23T11:30:00Z', false, '2026-03-23T12:00:00.000Z', '2026-03-23T17:00:00.000Z'],
    ['Mon 13:00', '2026-03-23T12:00:00Z', true, '2026-03-23T12:00:00.000Z', '2026-03-23T17:00:00.000Z'],
    ['Mon 18:00', '2026-03-23T17:00:00Z', false, '2026-03-24T09:00:00.000Z', '2026-03-24T10:00:00.000Z'],
    ['Tue 11:00', '2026-03-24T10:00:00Z', false, '2026-03-30T07:00:00.000Z', '2026-03-30T16:00:00.000Z'],
  ])('%s: open=%s, next opening %s, end of calling day %s', (_label, at, open, next, end) => {
    expect(isWithinCallingHours(lunch, Z(at))).toBe(open);
    expect(iso(nextOpening(lunch, Z(at)))).toBe(next);
    expect(iso(endOfCallingDay(lunch, Z(at)))).toBe(end);
  });

  it('currentOrNextOpening names the local date', () => {
    expect(currentOrNextOpening(lunch, Z('2026-03-23T17:00:00Z'))).toEqual({
      date: '2026-03-24',
      start: Z('2026-03-24T09:00:00Z'),
      end: Z('2026-03-24T10:00:00Z'),
    });
  });
});

describe('endOfCallingDay', () => {
  it.each<[string, string, string, string]>([
    [BERLIN, 'inside hours → today 18:00', '2026-03-23T09:00:00Z', '2026-03-23T17:00:00.000Z'],
    [BERLIN, 'before opening → today 18:00', '2026-03-23T05:00:00Z', '2026-03-23T17:00:00.000Z'],
    [BERLIN, 'after closing → tomorrow 18:00', '2026-03-23T18:00:00Z', '2026-03-24T17:00:00.000Z'],
    [BERLIN, 'Fri evening CET → Mon 18:00 CEST', '2026-03-27T18:00:00Z', '2026-03-30T16:00:00.000Z'],
    [BERLIN, 'Sat → Mon 18:00', '2026-03-21T12:00:00Z', '2026-03-23T17:00:00.000Z'],
    [BERLIN, 'Fri evening CEST → Mon 18:00 CET', '2026-10-23T18:00:00Z', '2026-10-26T17:00:00.000Z'],
    [NEW_YORK, 'Fri 19:00 EDT → Mon 18:00 EST', '2026-10-30T23:00:00Z', '2026-11-02T23:00:00.000Z'],
    [NEW_YORK, 'Fri 18:00 EST → Mon 18:00 EDT', '2026-03-06T23:00:00Z', '2026-03-09T22:00:00.000Z'],
  ])('%s: %s', (zone, _label, at, expected) => {
    expect(iso(endOfCallingDay(monFri(zone), Z(at)))).toBe(expected);
  });
});

describe('endOfCallingDay: hours that run on past midnight continue the day', () => {
  const roundTheClock = everyDay('UTC', [['00:00', '24:00']]);
  const nightShift: CallingHoursConfig = {
    timeZone: BERLIN,
    windows: { fri: [['18:00', '24:00']], sat: [['00:00', '02:00'], ['10:00', '12:00']] },
    holidays: [],
  };
  it('round the clock: 23:59:50 is not the end of a day (the chain runs to the horizon, or to the cap)', () => {
    const at = Z('2026-12-07T23:59:50Z');
    expect(iso(endOfCallingDay(roundTheClock, at))).toBe('2026-12-22T00:00:00.000Z'); // 14 more local dates
    expect(iso(endOfCallingDay(roundTheClock, at, 14, at + 8 * 3_600_000))).toBe('2026-12-09T00:00:00.000Z');
  });
  it('a night shift Fri 18:00–24:00 + Sat 00:00–02:00 is one calling day; the Saturday morning window after a gap is not', () => {
    // Fri 2026-03-20 23:30 CET → the day ends Sat 02:00 CET, not Fri 24:00; the gap ends it there.
    expect(iso(endOfCallingDay(nightShift, Z('2026-03-20T22:30:00Z')))).toBe('2026-03-21T01:00:00.000Z');
    // Sat 03:00: the Saturday morning window is a calling day of its own.
    expect(iso(endOfCallingDay(nightShift, Z('2026-03-21T02:00:00Z')))).toBe('2026-03-21T11:00:00.000Z');
  });
  it('a gap of one minute at midnight ends the day', () => {
    const almost = everyDay('UTC', [['00:01', '24:00']]);
    expect(iso(endOfCallingDay(almost, Z('2026-12-07T23:59:50Z')))).toBe('2026-12-08T00:00:00.000Z');
  });
  it.each([
    ['falls back at midnight (Sat 2026-04-04 24:00 -03 → 23:00 -04)', '2026-04-04T12:00:00Z', '2026-04-08T04:00:00.000Z'],
    ['springs forward at midnight (Sun 2026-09-06 00:00 -04 → 01:00 -03)', '2026-09-05T12:00:00Z', '2026-09-09T03:00:00.000Z'],
  ])('DST at midnight in America/Santiago %s: 24:00 and the next 00:00 still join', (_label, at, end) => {
    const cfg = everyDay('America/Santiago', [['00:00', '24:00']]);
    expect(iso(endOfCallingDay(cfg, Z(at), 3))).toBe(end);
  });
});

describe('validateCallingHours', () => {
  it('accepts a good config', () => {
    expect(validateCallingHours(monFri(BERLIN, ['2026-12-24']))).toEqual([]);
    expect(validateCallingHours(everyDay(NEW_YORK, [['00:00', '24:00']]))).toEqual([]);
    expect(validateCallingHours({ timeZone: BERLIN, windows: { mon: [['09:00', '12:00'], ['12:00', '13:00']] }, holidays: [] })).toEqual([]);
  });
  it('lists every problem', () => {
    const bad = {
      timeZone: 'Europe/Atlantis',
      windows: {
        mon: [['9:00', '18:00']],
        tue: [['24:00', '24:00']],
        wed: [['18:00', '09:00']],
        thu: [['09:00', '13:00'], ['12:00', '18:00']],
        fri: [['09:00', '25:00']],
        sat: [['09:00']],
        funday: [],
      },
      holidays: ['2026-02-30', '2026-2-3'],
    } as unknown as CallingHoursConfig;
    expect(validateCallingHours(bad)).toEqual([
      'callingHours.timeZone: unknown time zone "Europe/Atlantis"',
      'callingHours.windows.mon[0]: invalid start "9:00" (expected HH:MM, 00:00–23:59)',
      'callingHours.windows.tue[0]: invalid start "24:00" (expected HH:MM, 00:00–23:59)',
      'callingHours.windows.wed[0]: start 18:00 is not before end 09:00',
      'callingHours.windows.thu: ranges overlap (09:00–13:00 and 12:00–18:00)',
      'callingHours.windows.fri[0]: invalid end "25:00" (expected HH:MM, 00:00–24:00)',
      'callingHours.windows.sat[0]: expected [\'HH:MM\', \'HH:MM\'], got ["09:00"]',
      'callingHours.windows: unknown weekday "funday" (use sun, mon, tue, wed, thu, fri, sat)',
      'callingHours.holidays[0]: invalid date "2026-02-30" (expected YYYY-MM-DD)',
      'callingHours.holidays[1]: invalid date "2026-2-3" (expected YYYY-MM-DD)',
    ]);
  });
  it('rejects structurally wrong windows and holidays', () => {
    const bad = { timeZone: BERLIN, windows: { mon: '09:00-18:00' }, holidays: '2026-12-24' } as unknown as CallingHoursConfig;
    expect(validateCallingHours(bad)).toEqual([
      "callingHours.windows.mon: expected a list of ['HH:MM', 'HH:MM'] ranges",
      'callingHours.holidays: expected a list of YYYY-MM-DD dates',
    ]);
  });
  it('refuses to compute with an unvalidated, broken range', () => {
    const broken = { timeZone: BERLIN, windows: { mon: [['18:00', '09:00']] }, holidays: [] } as CallingHoursConfig;
    expect(() => isWithinCallingHours(broken, Z('2026-03-23T10:00:00Z'))).toThrow(
      'Invalid calling-hours range ["18:00", "09:00"] (see validateCallingHours)',
    );
  });
  it('rejects an invalid instant', () => {
    expect(() => isWithinCallingHours(monFri(BERLIN), NaN)).toThrow('Invalid instant NaN: expected epoch milliseconds');
  });
  it('openingsOn rejects a bad date', () => {
    expect(() => openingsOn(monFri(BERLIN), '2026-02-30')).toThrow('Invalid date "2026-02-30": expected YYYY-MM-DD');
  });
});

describe('local labels and dates', () => {
  const now = Z('2026-03-27T09:00:00Z'); // Fri 10:00 CET
  it.each<[string, string]>([
    ['2026-03-27T09:45:00Z', '10:45'],
    ['2026-03-27T09:45:30Z', '10:45:30'],
    ['2026-03-30T07:00:00Z', 'Mon 09:00'], // after the DST change
    ['2026-04-02T07:00:00Z', 'Thu 09:00'],
    ['2026-04-03T07:00:00Z', '2026-04-03 09:00'],
    ['2026-03-26T09:00:00Z', '2026-03-26 10:00'],
  ])('%s → %s', (at, label) => {
    expect(localLabel(BERLIN, Z(at), now)).toBe(label);
  });
  it('localIsoDate uses the zone', () => {
    expect(localIsoDate(BERLIN, Z('2026-03-28T23:30:00Z'))).toBe('2026-03-29');
    expect(localIsoDate(NEW_YORK, Z('2026-03-28T23:30:00Z'))).toBe('2026-03-28');
  });
  it('localIsoDate (one offset look-up) agrees with Intl around midnight and DST changes, in zones with odd offsets', () => {
    const zones = [BERLIN, NEW_YORK, 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Pacific/Kiritimati', 'America/St_Johns', 'UTC'];
    const starts = ['2026-03-08T00:00:00Z', '2026-03-29T00:00:00Z', '2026-04-05T00:00:00Z', '2026-10-04T00:00:00Z', '2026-10-25T00:00:00Z', '2026-11-01T00:00:00Z', '2026-12-31T00:00:00Z'];
    for (const timeZone of zones) {
      const intl = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
      for (const start of starts) {
        // Every 15 minutes over two days, and the minute either side of each step.
        for (let t = Z(start) - 86_400_000; t < Z(start) + 86_400_000; t += 15 * 60_000) {
          for (const at of [t - 60_000, t, t + 60_000 - 1]) expect([timeZone, at, localIsoDate(timeZone, at)]).toEqual([timeZone, at, intl.format(at)]);
        }
      }
    }
  });
  it("localLabel writes what date-fns format writes in the zone (HH:mm, HH:mm:ss, EEE, yyyy-MM-dd), around DST changes", () => {
    const zones = [BERLIN, NEW_YORK, 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns', 'UTC'];
    const nows = ['2026-03-27T09:00:00Z', '2026-03-29T00:30:00Z', '2026-10-25T01:15:00Z', '2026-11-01T05:59:00Z', '2026-04-05T15:00:00Z'];
    for (const timeZone of zones) {
      const inZone = { in: tz(timeZone) };
      for (const nowIso of nows) {
        const now = Z(nowIso);
        for (let k = -3 * 96; k < 10 * 96; k += 7) {
          for (const at of [now + k * 15 * 60_000, now + k * 15 * 60_000 + 30_000]) {
            const time = at % 60000 === 0 ? 'HH:mm' : 'HH:mm:ss';
            const dayDiff = Math.round((Date.parse(localIsoDate(timeZone, at)) - Date.parse(localIsoDate(timeZone, now))) / 86_400_000);
            const expected = dayDiff === 0 ? format(at, time, inZone) : dayDiff > 0 && dayDiff < 7 ? format(at, `EEE ${time}`, inZone) : format(at, `yyyy-MM-dd ${time}`, inZone);
            expect([timeZone, nowIso, at, localLabel(timeZone, at, now)]).toEqual([timeZone, nowIso, at, expected]);
          }
        }
      }
    }
  });
  it('the offsets remembered per minute: around a change, to the millisecond and asked twice, what date-fns writes (a change in the middle of a minute too)', () => {
    // [zone, the instant of a change]: New York and Berlin's DST, Lord Howe's half hour, Monrovia's -0:44:30 → 0:00
    // (1972-01-07, in the middle of the minute 00:44)
    const changes: Array<[string, number]> = [
      [NEW_YORK, Z('2026-03-08T07:00:00Z')],
      [BERLIN, Z('2026-10-25T01:00:00Z')],
      ['Australia/Lord_Howe', Z('2026-04-04T15:00:00Z')],
      ['Africa/Monrovia', Z('1972-01-07T00:44:30Z')],
    ];
    for (const [timeZone, change] of changes) {
      const inZone = { in: tz(timeZone) };
      const minute = Math.floor(change / 60_000) * 60_000;
      const ats = [minute - 60_000, minute - 1, minute, change - 1, change, change + 1, minute + 59_999, minute + 60_000, change + 3_600_000];
      for (let round = 0; round < 2; round++) {
        for (const at of ats) {
          const expected = format(at, 'yyyy-MM-dd HH:mm:ss', inZone);
          expect([timeZone, round, at, localLabel(timeZone, at, Z('2030-01-01T00:00:00Z'))]).toEqual([timeZone, round, at, at % 60000 === 0 ? expected.slice(0, -3) : expected]);
        }
      }
    }
  });
  it('localIsoDate refuses an unknown zone and a non-finite instant', () => {
    expect(() => localIsoDate('Europe/Nowhere', Z('2026-03-28T23:30:00Z'))).toThrow(/Unknown time zone "Europe\/Nowhere"/);
    expect(() => localIsoDate(BERLIN, Number.NaN)).toThrow(/Invalid instant/);
  });
});

describe('independence from the host time zone', () => {
  const saved = process.env.TZ;
  afterEach(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });

  function snapshot(): unknown {
    const sun = sundayOnly(NEW_YORK, [['01:30', '03:30']]);
    return {
      nyFall: openingsOn(sun, '2026-11-01'),
      nySpring: openingsOn(sun, '2026-03-08'),
      berlinFall: openingsOn(sundayOnly(BERLIN, [['01:30', '03:30']]), '2026-10-25'),
      next: nextOpening(monFri(BERLIN, ['2026-03-30']), Z('2026-03-27T17:00:00Z')),
      end: endOfCallingDay(monFri(NEW_YORK), Z('2026-10-30T23:00:00Z')),
      label: localLabel(BERLIN, Z('2026-03-30T07:00:00Z'), Z('2026-03-27T09:00:00Z')),
    };
  }

  it('gives the same answers whatever process.env.TZ says', () => {
    process.env.TZ = 'UTC';
    const reference = snapshot();
    for (const hostZone of ['America/Los_Angeles', 'Asia/Kolkata', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe']) {
      process.env.TZ = hostZone;
      expect(snapshot()).toEqual(reference);
    }
  });
});
