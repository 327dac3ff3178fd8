/**
 * What the offer may promise at the busy signal. Pure: config, zone and `now` in, a verdict out.
 *
 * A request created at `now` expires at `expiryFor(now)` (the end of the prospect's calling day, at most
 * `maxAgeMs`). Its callback can fire at the earliest at the first calling-hours instant after the shortest wait
 * the policy imposes (the grace after the line frees for a watched line, the first probe for an external number).
 * If that instant is not before the expiry, an ordinary request would expire unseen: a promise that cannot be
 * kept. Then `afterHours` decides:
 *  - 'carry-over': the request waits for the next calling window and stays pending through at most
 *    `carryOverDays` calling days (the first being the day of that window); the agent hears "we will call you
 *    back on the next calling day";
 *  - 'decline': no offer; the agent hears a short reason instead.
 * When no calling window opens within `openingHorizonDays` at all, there is nothing to promise either way.
 */
import { currentOrNextOpening, endOfCallingDay, localLabel, nextOpening, type CallingHoursConfig } from './calling-hours';
import type { PolicyConfig, ProspectMode } from './types';

export type OfferPromise =
  /** A callback can fire before the request expires: the usual offer. */
  | { kind: 'regular'; earliestAt: number; expiresAt: number; expiresBecause: 'max-age' | 'end-of-calling-day'; timeZone: string }
  /** Too late for today: carried over to the calling window opening at `opensAt`, pending until `expiresAt`. */
  | { kind: 'next-calling-day'; opensAt: number; expiresAt: number; expiresBecause: 'carry-over'; calledDays: number; timeZone: string }
  /** No offer: 'after-hours' (policy.afterHours = decline) or 'no-calling-day' (nothing opens within the horizon). */
  | { kind: 'declined'; why: 'after-hours' | 'no-calling-day'; opensAt: number | null; reason: string; timeZone: string };

export type OfferPromiseKind = OfferPromise['kind'];

/** The calling hours of a prospect in `timeZone` (the configured windows and holidays, read in that zone). */
export function callingHoursIn(cfg: PolicyConfig, timeZone: string | undefined): CallingHoursConfig {
  const h = cfg.callingHours;
  return timeZone === undefined || timeZone === h.timeZone ? h : { ...h, timeZone };
}

/** When a request created (or refreshed) at `at` for a prospect in `timeZone` expires, and why (no carry-over). */
export function expiryIn(
  cfg: PolicyConfig,
  at: number,
  timeZone?: string,
): { expiresAt: number; expiresBecause: 'max-age' | 'end-of-calling-day' } {
  const byAge = at + cfg.maxAgeMs;
  const byDay = endOfCallingDay(callingHoursIn(cfg, timeZone), at, cfg.openingHorizonDays, byAge);
  return byDay !== null && byDay < byAge
    ? { expiresAt: byDay, expiresBecause: 'end-of-calling-day' }
    : { expiresAt: byAge, expiresBecause: 'max-age' };
}

/** The verdict for an opt-in at `now` for a prospect in `timeZone` (default: the configured zone). */
export function offerPromise(cfg: PolicyConfig, now: number, opts: { mode: ProspectMode; timeZone?: string }): OfferPromise {
  const timeZone = opts.timeZone ?? cfg.callingHours.timeZone;
  const hours = callingHoursIn(cfg, timeZone);
  const L = (at: number) => localLabel(timeZone, at, now);
  const minWait = opts.mode === 'device' ? cfg.graceMs : cfg.firstProbeDelayMs;
  const earliest = nextOpening(hours, now + minWait, cfg.openingHorizonDays);
  const regular = expiryIn(cfg, now, timeZone);
  if (earliest !== null && earliest < regular.expiresAt) {
    return { kind: 'regular', earliestAt: earliest, ...regular, timeZone };
  }
  if (earliest === null) {
    return {
      kind: 'declined',
      why: 'no-calling-day',
      opensAt: null,
      reason: `no calling hours within ${cfg.openingHorizonDays} days in ${timeZone}`,
      timeZone,
    };
  }
  if (cfg.afterHours === 'decline') {
    return {
      kind: 'declined',
      why: 'after-hours',
      opensAt: earliest,
      reason: `outside calling hours in ${timeZone} (next window ${L(earliest)}); policy.afterHours is "decline"`,
      timeZone,
    };
  }
  // Carry over: pending through the calling day of `earliest` and up to carryOverDays - 1 more calling days.
  let end = endOfCallingDay(hours, earliest, cfg.openingHorizonDays) as number; // an opening exists at `earliest`
  let days = 1;
  while (days < cfg.carryOverDays) {
    const next = currentOrNextOpening(hours, end, cfg.openingHorizonDays);
    if (next === null) break;
    const nextEnd = endOfCallingDay(hours, next.start, cfg.openingHorizonDays);
    if (nextEnd === null) break;
    end = nextEnd;
    days++;
  }
  return { kind: 'next-calling-day', opensAt: earliest, expiresAt: end, expiresBecause: 'carry-over', calledDays: days, timeZone };
}
