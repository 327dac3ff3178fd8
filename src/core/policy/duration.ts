/**
 * Durations for the callback policy.
 *
 * Inside the policy every duration is a plain number of milliseconds ({@link DurationMs}); that keeps
 * requests, events and configs trivially serialisable. Humans write durations as compact strings
 * (`'5m'`, `'30s'`, `'1h30m'`, `'250ms'`, `'1d'`), which {@link parseDuration} turns into milliseconds
 * and {@link formatDuration} turns back, so that `parseDuration(formatDuration(x)) === x`.
 */

/** A duration in milliseconds (a non-negative safe integer). */
export type DurationMs = number;

export const SECOND: DurationMs = 1000;
export const MINUTE: DurationMs = 60 * SECOND;
export const HOUR: DurationMs = 60 * MINUTE;
export const DAY: DurationMs = 24 * HOUR;

const UNITS: ReadonlyArray<readonly [suffix: string, ms: number]> = [
  ['d', DAY],
  ['h', HOUR],
  ['m', MINUTE],
  ['s', SECOND],
  ['ms', 1],
];

// Units must appear at most once, largest first; whole numbers only. `m(?!s)` keeps '5ms' from being read as '5m' + 's'.
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/;

const EXPECTED =
  'expected whole numbers with units d, h, m, s, ms, largest first, each at most once, e.g. "5m", "30s", "1h30m", "250ms"';

/**
 * Parse a compact duration string into milliseconds.
 *
 * Accepted: one or more `<digits><unit>` groups, units `d` `h` `m` `s` `ms`, largest unit first, each unit at most once,
 * no spaces, no signs, no decimals (`'1h30m'`, `'90s'`, `'0s'`). Anything else throws an Error naming the input.
 */
export function parseDuration(input: string): DurationMs {
  if (typeof input !== 'string') {
    throw new Error(`Invalid duration ${describe(input)}: not a string; ${EXPECTED}`);
  }
  const match = DURATION_RE.exec(input);
  if (input === '' || match === null) {
    throw new Error(`Invalid duration ${JSON.stringify(input)}: ${EXPECTED}`);
  }
  let total = 0;
  UNITS.forEach(([, ms], i) => {
    const digits = match[i + 1];
    if (digits !== undefined) total += Number(digits) * ms;
  });
  if (!Number.isSafeInteger(total)) {
    throw new Error(`Invalid duration ${JSON.stringify(input)}: too large`);
  }
  return total;
}

/**
 * Format milliseconds as the compact string {@link parseDuration} reads: `300000` → `'5m'`, `5400000` → `'1h30m'`,
 * `0` → `'0s'`. Throws for negative, fractional or non-finite input.
 */
export function formatDuration(ms: DurationMs): string {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
    throw new Error(`Cannot format duration ${describe(ms)}: expected a non-negative whole number of milliseconds`);
  }
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [suffix, unit] of UNITS) {
    const n = Math.floor(rest / unit);
    if (n > 0) {
      out += `${n}${suffix}`;
      rest -= n * unit;
    }
  }
  return out;
}

/**
 * Accept a duration either as milliseconds or as a string for {@link parseDuration}; `what` names the setting in errors.
 */
export function toDurationMs(value: DurationMs | string, what: string): DurationMs {
  if (typeof value === 'string') {
    try {
      return parseDuration(value);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    }
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${what}: invalid duration ${describe(value)}: expected a non-negative whole number of ms or a string like "5m"`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
