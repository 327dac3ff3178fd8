import { defaultCallingHours, defaultPolicyConfig, makePolicyConfig, validatePolicyConfig, type PolicyConfig } from '../../../src/core/policy';

describe('defaultPolicyConfig', () => {
  it('has the documented defaults', () => {
    expect(defaultPolicyConfig).toEqual({
      graceMs: 300_000,
      headsUpMs: 0,
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
      agentRingTimeoutMs: 30_000,
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
        '  - snoozeMs: invalid duration -1: expected a non-negative whole number of ms or a string like "5m"\n' +
        '  - backoffMs[1]: Invalid duration "soon": expected whole numbers with units d, h, m, s, ms, largest first, each at most once, e.g. "5m", "30s", "1h30m", "250ms"',
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
        '  - agentRingTimeoutMs: must be greater than 0\n' +
        '  - backoffMs: expected a non-empty list of durations\n' +
        '  - maxAttempts: expected a whole number ≥ 1, got 0\n' +
        '  - menuRepeats: expected a whole number ≥ 1, got 1.5\n' +
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
