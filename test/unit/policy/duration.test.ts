import { DAY, formatDuration, HOUR, MINUTE, parseDuration, SECOND, toDurationMs } from '../../../src/core/policy/duration';

describe('parseDuration', () => {
  it.each<[string, number]>([
    ['5m', 5 * MINUTE],
    ['30s', 30 * SECOND],
    ['1h30m', HOUR + 30 * MINUTE],
    ['250ms', 250],
    ['1d', DAY],
    ['0s', 0],
    ['0ms', 0],
    ['90s', 90 * SECOND],
    ['2h', 2 * HOUR],
    ['1m1ms', MINUTE + 1],
    ['1d2h3m4s5ms', DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND + 5],
    ['10m', 600_000],
    ['007s', 7000],
  ])('%s → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([
    '',
    ' ',
    '5',
    '5x',
    'm',
    '5 m',
    ' 5m',
    '5m ',
    '1.5h',
    '-5m',
    '+5m',
    '5M',
    '30sec',
    '5min',
    '1m1h', // wrong order
    '5m5m', // repeated unit
    '1s1m',
    '5ms5s',
    'h1',
    '1h30',
    'abc',
    '1e3ms',
    '99999999999999999999d',
  ])('rejects %j with an Error naming the input', (input) => {
    expect(() => parseDuration(input)).toThrow(new RegExp(`^Invalid duration ${escapeRe(JSON.stringify(input))}`));
  });

  it('rejects non-strings with a clear message', () => {
    expect(() => parseDuration(300 as unknown as string)).toThrow('Invalid duration 300: not a string');
    expect(() => parseDuration(undefined as unknown as string)).toThrow('Invalid duration undefined: not a string');
    expect(() => parseDuration({ m: 5 } as unknown as string)).toThrow('Invalid duration {"m":5}: not a string');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => parseDuration(circular as unknown as string)).toThrow('Invalid duration [object Object]: not a string');
    expect(() => parseDuration(Symbol('x') as unknown as string)).toThrow(/Invalid duration .*: not a string/);
  });
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0s'],
    [250, '250ms'],
    [30 * SECOND, '30s'],
    [5 * MINUTE, '5m'],
    [HOUR + 30 * MINUTE, '1h30m'],
    [8 * HOUR, '8h'],
    [DAY + 1, '1d1ms'],
    [90 * SECOND, '1m30s'],
    [DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND + 5, '1d2h3m4s5ms'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips with parseDuration', () => {
    for (const ms of [0, 1, 999, 1000, 59_999, 60_000, 3_599_999, 86_400_001, 123_456_789]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  it.each([-1, 1.5, NaN, Infinity])('rejects %p', (ms) => {
    expect(() => formatDuration(ms)).toThrow(/^Cannot format duration/);
  });
});

describe('toDurationMs', () => {
  it('accepts ms numbers and strings', () => {
    expect(toDurationMs(1500, 'graceMs')).toBe(1500);
    expect(toDurationMs('5m', 'graceMs')).toBe(300_000);
  });
  it('names the setting in errors', () => {
    expect(() => toDurationMs('5 min', 'graceMs')).toThrow(/^graceMs: Invalid duration "5 min"/);
    expect(() => toDurationMs(-5, 'snoozeMs')).toThrow(/^snoozeMs: invalid duration -5/);
    expect(() => toDurationMs(1.5, 'snoozeMs')).toThrow(/^snoozeMs: invalid duration 1.5/);
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
