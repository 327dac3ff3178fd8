/**
 * The input of a pause ("hold my callbacks") as an admin or the page gives it: the agent device and the optional
 * `until`. One validation for the callbacks page (`POST /callbacks/api/pause`) and the command line
 * (`considerate-callback pause`), so both refuse the same things with the same words.
 */
import { parseDuration } from '../core/policy/duration';
import { InputError } from './errors';

/** A pause from the page or the command line lasts at most this long (a forgotten pause must end by itself). */
export const MAX_PAUSE_MS = 24 * 60 * 60 * 1000;

const AGENT_RE = /^[A-Za-z][A-Za-z0-9]*\/[A-Za-z0-9._@-]{1,60}$/;

/** The agent device of a pause or resume (e.g. PJSIP/1001); throws {@link InputError} naming what was wrong. */
export function pauseAgent(input: unknown): string {
  const agent = typeof input === 'string' ? input.trim() : '';
  if (!AGENT_RE.test(agent)) throw new InputError('agent: expected a device such as PJSIP/1001');
  return agent;
}

/**
 * When the pause ends by itself: null (until resumed) for nothing given; an ISO time, or (with `durations`, the
 * command line) a duration from now such as 30m or 1h30m. It must lie ahead and at most {@link MAX_PAUSE_MS} away.
 */
export function pauseUntil(input: unknown, now: number, opts: { durations?: boolean } = {}): number | null {
  if (input === undefined || input === null || input === '') return null;
  let t = NaN;
  if (typeof input === 'string' && input.length <= 40) {
    const text = input.trim();
    if (opts.durations && /^\d/.test(text) && !/[-:T]/.test(text)) {
      try {
        t = now + parseDuration(text);
      } catch {
        t = NaN;
      }
    } else {
      t = Date.parse(text);
    }
  }
  if (Number.isNaN(t)) {
    throw new InputError(opts.durations ? 'until: expected an ISO time such as 2026-03-23T12:00:00Z or a duration such as 30m or 2h' : 'until: expected an ISO time such as 2026-03-23T12:00:00Z');
  }
  if (t <= now) throw new InputError('until: must lie ahead');
  if (t - now > MAX_PAUSE_MS) throw new InputError(`until: at most ${MAX_PAUSE_MS / 3_600_000} hours ahead`);
  return t;
}
