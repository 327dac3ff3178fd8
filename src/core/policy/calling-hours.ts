/**
 * Calling hours: weekly windows in the prospect's time zone, minus holidays. Pure; DST-correct.
 *
 * Semantics of a range `['HH:MM', 'HH:MM']` on local date D (start inclusive, end exclusive, `'24:00'` allowed as end):
 * the window opens at the FIRST instant the local clock reads `start` on D and closes at the LAST instant the local
 * clock reads `end` on D. So on a DST change:
 *  - a wall time that does not exist (spring forward, e.g. 02:30 in Europe/Berlin on 2026-03-29) snaps to the
 *    instant of the jump (03:00 CEST): the clock "passes" 02:30 exactly then;
 *  - a wall time that occurs twice (fall back, e.g. 02:30 on 2026-10-25) opens at its first and closes at its
 *    second occurrence, so the window covers every moment the clock shows a time inside the range.
 * Windows therefore keep their wall-clock meaning (09:00 is always 09:00 local), and a 01:30–03:30 window lasts
 * 1 h on a spring-forward day and 3 h on a fall-back day.
 *
 * Wall times are resolved with `tzOffset` from @date-fns/tz (Intl data, independent of the host's TZ); local
 * calendar dates and the labels' wall clock are the instant shifted by its `tzOffset`, read in UTC (what date-fns
 * `format(..., { in: tz(zone) })` writes, with one offset look-up).
 */
import { tzOffset } from '@date-fns/tz';
import { DAY } from './duration';

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** Weekdays in `Date#getDay()` order (0 = Sunday). */
export const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** `['09:00', '18:00']`: local wall-clock start (inclusive) and end (exclusive, may be `'24:00'`). */
export type TimeRange = readonly [start: string, end: string];

export interface CallingHoursConfig {
  /** IANA zone of the prospect, e.g. 'Europe/Berlin'. */
  readonly timeZone: string;
  /** Ranges per weekday; a missing or empty day is closed. Several ranges per day are allowed (e.g. a lunch break). */
  readonly windows: Readonly<Partial<Record<Weekday, readonly TimeRange[]>>>;
  /** Closed local dates 'YYYY-MM-DD' (in `timeZone`). */
  readonly holidays: readonly string[];
}

/** One concrete opening: [start, end) in epoch ms, belonging to the local date `date` ('YYYY-MM-DD'). */
export interface Opening {
  readonly date: string;
  readonly start: number;
  readonly end: number;
}

/** How far ahead (local days) {@link nextOpening} and {@link endOfCallingDay} look before giving up. */
export const DEFAULT_HORIZON_DAYS = 14;

const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$|^24:00$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Problems with a calling-hours config, as human-readable strings (empty when valid). */
export function validateCallingHours(cfg: CallingHoursConfig): string[] {
  const problems: string[] = [];
  if (typeof cfg.timeZone !== 'string' || cfg.timeZone === '' || !isValidTimeZone(cfg.timeZone)) {
    problems.push(`callingHours.timeZone: unknown time zone ${JSON.stringify(cfg.timeZone)}`);
  }
  const windows = cfg.windows ?? {};
  for (const key of Object.keys(windows)) {
    if (!(WEEKDAYS as readonly string[]).includes(key)) {
      problems.push(`callingHours.windows: unknown weekday ${JSON.stringify(key)} (use ${WEEKDAYS.join(', ')})`);
      continue;
    }
    const ranges = windows[key as Weekday] ?? [];
    if (!Array.isArray(ranges)) {
      problems.push(`callingHours.windows.${key}: expected a list of ['HH:MM', 'HH:MM'] ranges`);
      continue;
    }
    const parsed: Array<[number, number]> = [];
    ranges.forEach((range, i) => {
      const where = `callingHours.windows.${key}[${i}]`;
      if (!Array.isArray(range) || range.length !== 2) {
        problems.push(`${where}: expected ['HH:MM', 'HH:MM'], got ${JSON.stringify(range)}`);
        return;
      }
      const [s, e] = range;
      const start = parseTimeOfDay(s);
      const end = parseTimeOfDay(e);
      if (start === null || start === 24 * 60) problems.push(`${where}: invalid start ${JSON.stringify(s)} (expected HH:MM, 00:00–23:59)`);
      if (end === null) problems.push(`${where}: invalid end ${JSON.stringify(e)} (expected HH:MM, 00:00–24:00)`);
      if (start !== null && end !== null && start !== 24 * 60) {
        if (start >= end) problems.push(`${where}: start ${s} is not before end ${e}`);
        else parsed.push([start, end]);
      }
    });
    parsed.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < parsed.length; i++) {
      if (parsed[i][0] < parsed[i - 1][1]) {
        problems.push(`callingHours.windows.${key}: ranges overlap (${fmtMin(parsed[i - 1][0])}–${fmtMin(parsed[i - 1][1])} and ${fmtMin(parsed[i][0])}–${fmtMin(parsed[i][1])})`);
      }
    }
  }
  if (!Array.isArray(cfg.holidays)) {
    problems.push('callingHours.holidays: expected a list of YYYY-MM-DD dates');
  } else {
    cfg.holidays.forEach((h, i) => {
      if (!isIsoDate(h)) problems.push(`callingHours.holidays[${i}]: invalid date ${JSON.stringify(h)} (expected YYYY-MM-DD)`);
    });
  }
  return problems;
}

/** True when `now` lies inside one of the openings of its local date. */
export function isWithinCallingHours(cfg: CallingHoursConfig, now: number): boolean {
  const { y, m, d } = localDate(cfg.timeZone, now);
  return openingsFor(cfg, y, m, d).some((o) => o.start <= now && now < o.end);
}

/**
 * The earliest instant ≥ `now` at which calling hours are open: `now` itself when open, otherwise the start of the
 * next opening. `null` when nothing opens within `horizonDays` local days.
 */
export function nextOpening(cfg: CallingHoursConfig, now: number, horizonDays = DEFAULT_HORIZON_DAYS): number | null {
  const o = currentOrNextOpening(cfg, now, horizonDays);
  return o === null ? null : Math.max(o.start, now);
}

/**
 * The end of the calling day `now` belongs to: the end of the last opening on the local date of the current opening
 * or, when closed, of the next opening (later today after a lunch break, else the next calling day). `null` when
 * nothing opens within `horizonDays`.
 *
 * Hours that run on past midnight continue the day: when the next local date's first opening starts where this
 * date's last one ends (a `'24:00'` end and a `'00:00'` start; round the clock, or a night shift), the calling day
 * runs on through the openings that follow without a gap (into the date after, if they reach its midnight too). A request made at 23:59 under round-the-clock hours
 * therefore does not expire (or get carried over) at midnight. The chain stops after `horizonDays` dates, or once
 * it reaches `notAfter` (a caller that caps the answer anyway, e.g. at the request's maximum age).
 */
export function endOfCallingDay(
  cfg: CallingHoursConfig,
  now: number,
  horizonDays = DEFAULT_HORIZON_DAYS,
  notAfter = Infinity,
): number | null {
  const o = currentOrNextOpening(cfg, now, horizonDays);
  if (o === null) return null;
  const [y, m, d] = o.date.split('-').map(Number);
  let end = Math.max(...openingsFor(cfg, y, m - 1, d).map((x) => x.end));
  for (let i = 1; i <= horizonDays && end < notAfter; i++) {
    const next = openingsFor(cfg, y, m - 1, d + i);
    // The next date's openings that run on from `end` without a gap (`<=`: a fall-back at midnight makes 24:00,
    // its last instant, later than the next date's 00:00, its first). An opening after a gap starts a new day.
    let joined = 0;
    while (joined < next.length && next[joined].start <= end) end = Math.max(end, next[joined++].end);
    if (joined < next.length || joined === 0) break;
  }
  return end;
}

/** The first opening (ordered by start) that has not ended at `now`, or null within the horizon. */
export function currentOrNextOpening(cfg: CallingHoursConfig, now: number, horizonDays = DEFAULT_HORIZON_DAYS): Opening | null {
  const { y, m, d } = localDate(cfg.timeZone, now);
  for (let i = 0; i <= horizonDays; i++) {
    for (const o of openingsFor(cfg, y, m, d + i)) {
      if (o.end > now) return o;
    }
  }
  return null;
}

/** The openings of one local date 'YYYY-MM-DD', sorted by start (empty on holidays and closed days). */
export function openingsOn(cfg: CallingHoursConfig, isoDate: string): Opening[] {
  const match = DATE_RE.exec(isoDate);
  if (!match || !isIsoDate(isoDate)) throw new Error(`Invalid date ${JSON.stringify(isoDate)}: expected YYYY-MM-DD`);
  return [...openingsFor(cfg, Number(match[1]), Number(match[2]) - 1, Number(match[3]))];
}

/**
 * Resolve a local wall-clock time on a local date to an instant (epoch ms).
 * `pick` chooses between the two instants of an ambiguous (fall-back) time; a non-existent (spring-forward) time
 * resolves to the instant of the jump. `minuteOfDay` may be 1440 (24:00 = next day 00:00). `month0` is 0-based.
 */
export function zonedWallTime(
  timeZone: string,
  year: number,
  month0: number,
  day: number,
  minuteOfDay: number,
  pick: 'first' | 'last' = 'first',
): number {
  // A pure function of its arguments (the zone data does not change while the process runs), asked for the same
  // openings by every offer of a day: remembered. Each answer costs four or more Intl look-ups (tzOffset), which
  // were a tenth of the service's CPU per call in the bench's profile (docs/performance.md).
  const key = `${timeZone}|${year}|${month0}|${day}|${minuteOfDay}|${pick}`;
  const known = wallTimes.get(key);
  if (known !== undefined) return known;
  const at = resolveWallTime(timeZone, year, month0, day, minuteOfDay, pick);
  if (wallTimes.size >= WALL_TIMES_MAX) wallTimes.clear();
  wallTimes.set(key, at);
  return at;
}

/** zonedWallTime's answers (bounded: cleared when full; a few days of openings of a few zones fit many times). */
const wallTimes = new Map<string, number>();
const WALL_TIMES_MAX = 20_000;

function resolveWallTime(timeZone: string, year: number, month0: number, day: number, minuteOfDay: number, pick: 'first' | 'last'): number {
  const naive = Date.UTC(year, month0, day, 0, minuteOfDay);
  const before = offsetMs(timeZone, naive - DAY);
  const after = offsetMs(timeZone, naive + DAY);
  const candidates = [...new Set([naive - before, naive - after])]
    .filter((t) => offsetMs(timeZone, t) === naive - t)
    .sort((a, b) => a - b);
  if (candidates.length > 0) return pick === 'first' ? candidates[0] : candidates[candidates.length - 1];
  // In a gap: the jump happens somewhere between the two guesses; find the first instant with the new offset.
  let lo = Math.min(naive - before, naive - after);
  let hi = Math.max(naive - before, naive - after);
  const target = offsetMs(timeZone, hi);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetMs(timeZone, mid) === target) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Local calendar date of an instant in a zone ('YYYY-MM-DD'). */
export function localIsoDate(timeZone: string, at: number): string {
  const { y, m, d } = localDate(timeZone, at);
  return isoDate(y, m, d);
}

/**
 * A short local label for reasons: 'HH:mm' (with ':ss' when not on a whole minute) if `at` is on the same local date
 * as `now`, 'EEE HH:mm' within the next 6 days, else 'yyyy-MM-dd HH:mm'.
 */
export function localLabel(timeZone: string, at: number, now: number): string {
  // The wall clock of `at` from its offset (one Intl look-up) rather than date-fns `format` in the zone, which
  // builds TZDates and looks the offset up several times: a recall's reason carries a label or two, and the
  // labels were 2 % of the service's CPU under load (issue 23). The same text as `format(at, 'HH:mm', { in: tz(zone) })`.
  const local = new Date(at + offsetMs(timeZone, at));
  const hhmm = `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}`;
  const time = at % 60000 === 0 ? hhmm : `${hhmm}:${pad2(local.getUTCSeconds())}`;
  const dayDiff = Math.round((Date.parse(localIsoDate(timeZone, at)) - Date.parse(localIsoDate(timeZone, now))) / DAY);
  if (dayDiff === 0) return time;
  if (dayDiff > 0 && dayDiff < 7) return `${WEEKDAYS_SHORT[local.getUTCDay()]} ${time}`;
  return `${isoDate(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate())} ${time}`;
}

const WEEKDAYS_SHORT = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

// ---------------------------------------------------------------------------------------------------------------

function openingsFor(cfg: CallingHoursConfig, year: number, month0: number, day: number): readonly Opening[] {
  // A pure function of the config and the date, asked for the same few dates by every decision (the next opening,
  // the end of the calling day and the days it runs on into): remembered per windows object, zone and date. Built
  // anew each time, the dates' strings, the ranges' parses, the wall-time keys and the sorted arrays were 15 KiB of
  // the 266 KiB the service allocated per offered call (bench/cpu-call.ts --gc, issue 23). The holidays are checked
  // at every call (a date's openings are remembered whatever the holidays; an array is cheap to search).
  const dayNumber = Date.UTC(year, month0, day) / DAY_MS;
  let byZone = openingDays.get(cfg.windows);
  if (!byZone) openingDays.set(cfg.windows, (byZone = new Map()));
  let days = byZone.get(cfg.timeZone);
  if (!days || days.size >= OPENING_DAYS_MAX) byZone.set(cfg.timeZone, (days = new Map()));
  const known = days.get(dayNumber);
  if (known !== undefined && known.ranges === cfg.windows[known.weekday]) {
    return cfg.holidays.length > 0 && cfg.holidays.includes(known.date) ? NO_OPENINGS : known.openings;
  }
  // Normalise (day may overflow the month); plain calendar arithmetic, no zone involved.
  const cal = new Date(Date.UTC(year, month0, day));
  const y = cal.getUTCFullYear();
  const m = cal.getUTCMonth();
  const d = cal.getUTCDate();
  const date = isoDate(y, m, d);
  if (cfg.holidays.includes(date)) return NO_OPENINGS;
  const weekday = WEEKDAYS[cal.getUTCDay()];
  const ranges = cfg.windows[weekday];
  const out: Opening[] = [];
  for (const [s, e] of ranges ?? []) {
    const start = parseTimeOfDay(s);
    const end = parseTimeOfDay(e);
    if (start === null || end === null || start >= end) {
      throw new Error(`Invalid calling-hours range [${JSON.stringify(s)}, ${JSON.stringify(e)}] (see validateCallingHours)`);
    }
    out.push(
      Object.freeze({
        date,
        start: zonedWallTime(cfg.timeZone, y, m, d, start, 'first'),
        end: zonedWallTime(cfg.timeZone, y, m, d, end, 'last'),
      }),
    );
  }
  const openings = Object.freeze(out.sort((a, b) => a.start - b.start));
  days.set(dayNumber, { weekday, ranges, date, openings });
  return openings;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const NO_OPENINGS: readonly Opening[] = Object.freeze([]);

/** A date's openings as openingsFor built them, with the weekday's ranges they were built from. */
interface OpeningDay {
  weekday: Weekday;
  ranges: readonly TimeRange[] | undefined;
  date: string;
  openings: readonly Opening[];
}

/** openingsFor's answers: windows object → zone → UTC day number (bounded per zone: cleared when full). */
const openingDays = new WeakMap<object, Map<string, Map<number, OpeningDay>>>();
const OPENING_DAYS_MAX = 4096;

function localDate(timeZone: string, at: number): { y: number; m: number; d: number } {
  if (!Number.isFinite(at)) throw new Error(`Invalid instant ${String(at)}: expected epoch milliseconds`);
  // One decision asks for the local date of the same `now` several times (the promise's next opening, the end
  // of its calling day, the label): the last answer per zone is remembered.
  const last = lastLocalDate.get(timeZone);
  if (last !== undefined && last.at === at) return { y: last.y, m: last.m, d: last.d };
  // The zone's offset at that instant, once (one Intl look-up), and the calendar date of the shifted instant in
  // UTC: what a TZDate reads, without the three or more look-ups its construction costs (tzOffset was 4 % of
  // the service's CPU under load, issue 23). offsetMs throws for an unknown zone.
  const local = new Date(at + offsetMs(timeZone, at));
  const date = { y: local.getUTCFullYear(), m: local.getUTCMonth(), d: local.getUTCDate() };
  if (lastLocalDate.size >= 64) lastLocalDate.clear();
  lastLocalDate.set(timeZone, { at, ...date });
  return date;
}

/** localDate's last answer per zone (a pure function of its arguments). */
const lastLocalDate = new Map<string, { at: number; y: number; m: number; d: number }>();

function offsetMs(timeZone: string, at: number): number {
  // Remembered per zone and UTC minute: every offer asks for the offsets of "now" and of the same openings, and
  // each Intl look-up was about 3 % of the service's CPU per offered call (issue 23). A minute is remembered only
  // when its first and last millisecond have the same offset, so a minute with a change in it (offsets of the
  // historic offsets changed on odd seconds, e.g. Monrovia in 1972) is looked up each time, as before.
  const minute = Math.floor(at / 60000);
  let zone = offsets.get(timeZone);
  const known = zone?.get(minute);
  if (known !== undefined) return known;
  const ms = lookUpOffsetMs(timeZone, at);
  if (lookUpOffsetMs(timeZone, minute * 60000) === ms && lookUpOffsetMs(timeZone, minute * 60000 + 59999) === ms) {
    if (!zone || zone.size >= OFFSETS_MAX) offsets.set(timeZone, (zone = new Map()));
    zone.set(minute, ms);
  }
  return ms;
}

/** offsetMs's answers: zone → UTC minute → offset (bounded per zone: cleared when full). */
const offsets = new Map<string, Map<number, number>>();
const OFFSETS_MAX = 4096;

function lookUpOffsetMs(timeZone: string, at: number): number {
  const minutes = tzOffset(timeZone, new Date(at));
  if (Number.isNaN(minutes)) throw new Error(`Unknown time zone ${JSON.stringify(timeZone)}`);
  return minutes * 60000;
}

function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

function parseTimeOfDay(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const match = TIME_RE.exec(value);
  if (!match) return null;
  if (value === '24:00') return 24 * 60;
  return Number(match[1]) * 60 + Number(match[2]);
}

function isIsoDate(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const match = DATE_RE.exec(value);
  if (!match) return false;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const cal = new Date(Date.UTC(y, m - 1, d));
  return cal.getUTCFullYear() === y && cal.getUTCMonth() === m - 1 && cal.getUTCDate() === d;
}

function isoDate(y: number, m0: number, d: number): string {
  return `${String(y).padStart(4, '0')}-${String(m0 + 1).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function fmtMin(min: number): string {
  return `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
}
