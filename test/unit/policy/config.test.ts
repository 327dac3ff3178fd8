import { validatePolicyConfig, type PolicyConfig } from '../../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig, defaultCallingHours } from '../../../src/config/policy';
import { ConfigError, loadConfig, resolveConfig } from '../../../src/config/load';
import { boundsOf, schema, type Field } from '../../../src/config/schema';
import { DEFAULT_RECALL_LABEL } from '../../../src/core/label';

describe('defaultPolicyConfig', () => {
  it('has the documented defaults', () => {
    expect(defaultPolicyConfig).toEqual({
      graceMs: 300_000,
      headsUpMs: 60_000,
      afterHours: 'carry-over',
      carryOverDays: 1,
      longBusyThresholdMs: 1_800_000,
      longBusyExtraGraceMs: 300_000,
      firstProbeDelayMs: 600_000,
      backoffMs: [600_000, 1_800_000, 3_600_000],
      maxAttempts: 3,
      noAnswerRetries: 1,
      snoozeMs: 900_000,
      maxSnoozes: 3,
      agentWrapUpMs: 30_000,
      agentBusyRecheckMs: 60_000,
      agentRingTimeoutMs: 25_000,
      menuTimeoutMs: 10_000,
      menuRepeats: 2,
      prospectRingTimeoutMs: 45_000,
      recallSafetyMarginMs: 120_000,
      recoveryDelayMs: 10_000,
      maxAgeMs: 28_800_000,
      callingHours: {
        timeZone: 'Europe/Berlin',
        windows: {
          mon: [['09:00', '18:00']],
          tue: [['09:00', '18:00']],
          wed: [['09:00', '18:00']],
          thu: [['09:00', '18:00']],
          fri: [['09:00', '18:00']],
        },
        holidays: [],
      },
      openingHorizonDays: 14,
      recallCallerIdName: '${prefix}${number}',
      recallLabel: { prefixes: { en: ['Callback: ', 'CB '], de: ['Rückruf: ', 'RR '] }, width: 16, country: 'DE', internationalPrefix: '00' },
      recallCallerIdNumber: '',
    });
    expect(defaultPolicyConfig.callingHours).toBe(defaultCallingHours);
  });

  it('is valid and deeply frozen', () => {
    expect(validatePolicyConfig(defaultPolicyConfig)).toEqual([]);
    expect(Object.isFrozen(defaultPolicyConfig)).toBe(true);
    expect(Object.isFrozen(defaultPolicyConfig.backoffMs)).toBe(true);
    expect(Object.isFrozen(defaultPolicyConfig.callingHours.windows.mon)).toBe(true);
  });
});

describe('makePolicyConfig', () => {
  it('merges overrides, parsing duration strings', () => {
    const holidays = ['2026-12-24'];
    const cfg = makePolicyConfig({
      graceMs: '2m',
      maxAgeMs: '4h30m',
      agentWrapUpMs: 15_000,
      backoffMs: ['1m', 90_000],
      maxAttempts: 5,
      callingHours: { ...defaultCallingHours, holidays },
    });
    expect(cfg).toMatchObject({ graceMs: 120_000, maxAgeMs: 16_200_000, agentWrapUpMs: 15_000, backoffMs: [60_000, 90_000], maxAttempts: 5, snoozeMs: 900_000 });
    expect(cfg.callingHours.holidays).toEqual(['2026-12-24']);
    expect(Object.isFrozen(cfg)).toBe(true);
    holidays.push('2026-12-25');
    expect(cfg.callingHours.holidays).toEqual(['2026-12-24']); // copied, not aliased
  });

  it('returns the defaults for no overrides', () => {
    expect(makePolicyConfig()).toEqual(defaultPolicyConfig);
  });

  it('reports every bad duration, naming the setting', () => {
    expect(() => makePolicyConfig({ graceMs: '2 min', snoozeMs: -1, backoffMs: ['10m', 'soon'] })).toThrow(
      'Invalid callback policy config:\n' +
        '  - graceMs: Invalid duration "2 min": expected whole numbers with units d, h, m, s, ms, largest first, each at most once, e.g. "5m", "30s", "1h30m", "250ms"\n' +
        '  - backoffMs[1]: Invalid duration "soon": expected whole numbers with units d, h, m, s, ms, largest first, each at most once, e.g. "5m", "30s", "1h30m", "250ms"\n' +
        '  - snoozeMs: invalid duration -1: expected a non-negative whole number of ms or a string like "5m"',
    );
  });

  it('reports every invalid value', () => {
    expect(() =>
      makePolicyConfig({
        maxAttempts: 0,
        menuRepeats: 1.5,
        backoffMs: [],
        agentRingTimeoutMs: 0,
        callingHours: { timeZone: 'Nowhere/Land', windows: { mon: [['18:00', '09:00']] }, holidays: [] },
      }),
    ).toThrow(
      'Invalid callback policy config:\n' +
        // The bounds are the schema's (src/config/schema.ts), named with the configuration key.
        '  - maxAttempts: expected 1 to 20 (policy.maxAttempts), got 0\n' +
        '  - agentRingTimeoutMs: expected 1ms to 24d20h31m23s647ms (policy.agentRingTimeout), got 0s\n' +
        '  - backoffMs: expected a non-empty list of durations\n' +
        '  - menuRepeats: expected a non-negative whole number, got 1.5\n' +
        '  - callingHours.timeZone: unknown time zone "Nowhere/Land"\n' +
        '  - callingHours.windows.mon[0]: start 18:00 is not before end 09:00',
    );
  });
});

describe('validatePolicyConfig', () => {
  it('flags non-integer durations and a missing calling-hours block', () => {
    const bad = { ...defaultPolicyConfig, graceMs: 1.5, backoffMs: [60_000, -1], callingHours: null } as unknown as PolicyConfig;
    expect(validatePolicyConfig(bad)).toEqual([
      'graceMs: expected a non-negative whole number of ms, got 1.5',
      'backoffMs[1]: expected a non-negative whole number of ms, got -1',
      'callingHours: missing',
    ]);
  });
});

describe('defaults and bounds are the schema\'s only', () => {
  it('the policy the unit tests build with is the one `run` uses when nothing is configured', () => {
    expect(defaultPolicyConfig).toEqual(loadConfig({ env: {}, partial: true }).policy);
    // The recall label's fallback in the core (a request stored before the label existed) is the schema's too.
    expect(DEFAULT_RECALL_LABEL).toEqual(defaultPolicyConfig.recallLabel);
  });

  const BOUNDED = Object.entries(schema as Record<string, Field>).flatMap(([key, field]) => {
    const name = (field.at ?? key).split('.').slice(1).join('.');
    const b = boundsOf(field);
    return (field.at ?? key).startsWith('policy.') && !name.includes('.') && b ? [{ key, name, ...b }] : [];
  });

  it('every bounded policy key is checked', () => {
    expect(BOUNDED.map((b) => b.name)).toEqual(expect.arrayContaining(['graceMs', 'agentRingTimeoutMs', 'maxAttempts', 'menuRepeats', 'carryOverDays']));
  });

  it.each(BOUNDED)('$key: makePolicyConfig and the configuration refuse and accept the same values', ({ key, name, min, max }) => {
    const duration = name.endsWith('Ms');
    const asConfig = (n: number) => (duration ? `${n}ms` : n);
    // The rules relating keys (carryOverDays within openingHorizonDays) are the policy's, not bounds: give them room.
    const companions = name === 'carryOverDays' ? { openingHorizonDays: max } : {};
    for (const v of [min, max]) expect(() => makePolicyConfig({ ...companions, [name]: v })).not.toThrow();
    for (const v of [min - 1, max + 1].filter((n) => n >= 0)) {
      expect(() => makePolicyConfig({ ...companions, [name]: v })).toThrow(`${name}: `);
      expect(() => resolveConfig({ env: {}, partial: true, overrides: { [key]: asConfig(v) } })).toThrow(ConfigError);
    }
  });
});
