/**
 * Policy configuration: defaults, validation, and building a config from user input (durations as ms or strings).
 */
import { validateCallingHours, type CallingHoursConfig } from './calling-hours';
import { HOUR, MINUTE, SECOND, toDurationMs, type DurationMs } from './duration';
import type { PolicyConfig } from './types';
import { DEFAULT_RECALL_LABEL } from '../label';

const WEEKDAY_9_TO_18 = [['09:00', '18:00']] as const;

export const defaultCallingHours: CallingHoursConfig = deepFreeze({
  timeZone: 'Europe/Berlin',
  windows: {
    mon: WEEKDAY_9_TO_18,
    tue: WEEKDAY_9_TO_18,
    wed: WEEKDAY_9_TO_18,
    thu: WEEKDAY_9_TO_18,
    fri: WEEKDAY_9_TO_18,
  },
  holidays: [],
});

export const defaultPolicyConfig: PolicyConfig = deepFreeze({
  graceMs: 5 * MINUTE,
  longBusyThresholdMs: 30 * MINUTE,
  longBusyExtraGraceMs: 5 * MINUTE,
  firstProbeDelayMs: 10 * MINUTE,
  backoffMs: [10 * MINUTE, 30 * MINUTE, 60 * MINUTE],
  maxAttempts: 3,
  noAnswerRetries: 1,
  snoozeMs: 15 * MINUTE,
  maxSnoozes: 3,
  headsUpMs: 0,
  agentWrapUpMs: 30 * SECOND,
  agentBusyRecheckMs: 1 * MINUTE,
  agentRingTimeoutMs: 30 * SECOND,
  menuTimeoutMs: 10 * SECOND,
  menuRepeats: 2,
  prospectRingTimeoutMs: 45 * SECOND,
  recallSafetyMarginMs: 2 * MINUTE,
  recoveryDelayMs: 10 * SECOND,
  maxAgeMs: 8 * HOUR,
  callingHours: defaultCallingHours,
  afterHours: 'carry-over',
  carryOverDays: 1,
  openingHorizonDays: 14,
  recallCallerIdName: '${prefix}${number}',
  recallCallerIdNumber: '',
  recallLabel: DEFAULT_RECALL_LABEL,
});

const DURATION_KEYS = [
  'graceMs',
  'longBusyThresholdMs',
  'longBusyExtraGraceMs',
  'firstProbeDelayMs',
  'snoozeMs',
  'headsUpMs',
  'agentWrapUpMs',
  'agentBusyRecheckMs',
  'agentRingTimeoutMs',
  'menuTimeoutMs',
  'prospectRingTimeoutMs',
  'recallSafetyMarginMs',
  'recoveryDelayMs',
  'maxAgeMs',
] as const;
type DurationKey = (typeof DURATION_KEYS)[number];

/** Durations that must be > 0 (a zero would make the scheduler spin or a request die at birth). */
const POSITIVE_KEYS: readonly DurationKey[] = [
  'agentBusyRecheckMs',
  'agentRingTimeoutMs',
  'menuTimeoutMs',
  'prospectRingTimeoutMs',
  'recallSafetyMarginMs',
  'maxAgeMs',
  'snoozeMs',
];

/** Overrides as a user writes them: durations as ms numbers or strings like '5m'. */
export type PolicyConfigInput = Partial<
  Omit<PolicyConfig, DurationKey | 'backoffMs'> &
    Record<DurationKey, DurationMs | string> & { backoffMs: ReadonlyArray<DurationMs | string> }
>;

/** Problems with a config, as human-readable strings naming the setting (empty when valid). */
export function validatePolicyConfig(cfg: PolicyConfig): string[] {
  const problems: string[] = [];
  for (const key of DURATION_KEYS) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      problems.push(`${key}: expected a non-negative whole number of ms, got ${JSON.stringify(v)}`);
    } else if (v === 0 && POSITIVE_KEYS.includes(key)) {
      problems.push(`${key}: must be greater than 0`);
    }
  }
  if (!Array.isArray(cfg.backoffMs) || cfg.backoffMs.length === 0) {
    problems.push('backoffMs: expected a non-empty list of durations');
  } else {
    cfg.backoffMs.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
        problems.push(`backoffMs[${i}]: expected a non-negative whole number of ms, got ${JSON.stringify(v)}`);
      }
    });
  }
  const counts: Array<[keyof PolicyConfig, number]> = [
    ['maxAttempts', 1],
    ['noAnswerRetries', 0],
    ['maxSnoozes', 0],
    ['menuRepeats', 1],
    ['openingHorizonDays', 1],
    ['carryOverDays', 1],
  ];
  for (const [key, min] of counts) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      problems.push(`${key}: expected a whole number ≥ ${min}, got ${JSON.stringify(v)}`);
    }
  }
  if (cfg.afterHours !== 'carry-over' && cfg.afterHours !== 'decline') {
    problems.push(`afterHours: expected "carry-over" or "decline", got ${JSON.stringify(cfg.afterHours)}`);
  }
  if (typeof cfg.carryOverDays === 'number' && typeof cfg.openingHorizonDays === 'number' && cfg.carryOverDays > cfg.openingHorizonDays) {
    problems.push(`carryOverDays: must not exceed openingHorizonDays (${cfg.openingHorizonDays})`);
  }
  if (typeof cfg.recallCallerIdName !== 'string' || (!cfg.recallCallerIdName.includes('${prospect}') && !cfg.recallCallerIdName.includes('${number}'))) {
    problems.push('recallCallerIdName: expected a text containing ${number} (or ${prospect}), e.g. "${prefix}${number}"');
  } else if (/["<>\\\p{Cc}]/u.test(cfg.recallCallerIdName)) {
    problems.push('recallCallerIdName: must not contain quotes, angle brackets, backslashes or control characters');
  }
  if (typeof cfg.recallCallerIdNumber !== 'string' || !/^(\+?[0-9]{1,20})?$/.test(cfg.recallCallerIdNumber)) {
    problems.push(`recallCallerIdNumber: expected digits with an optional leading + (or empty), got ${JSON.stringify(cfg.recallCallerIdNumber)}`);
  }
  if (typeof cfg.callingHours !== 'object' || cfg.callingHours === null) {
    problems.push('callingHours: missing');
  } else {
    problems.push(...validateCallingHours(cfg.callingHours));
  }
  return problems;
}

/**
 * Defaults + overrides → a validated, frozen config. Throws one Error listing every problem.
 */
export function makePolicyConfig(overrides: PolicyConfigInput = {}): PolicyConfig {
  const merged: Record<string, unknown> = { ...defaultPolicyConfig, ...overrides };
  const errors: string[] = [];
  for (const key of DURATION_KEYS) {
    try {
      merged[key] = toDurationMs(merged[key] as DurationMs | string, key);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (Array.isArray(merged.backoffMs)) {
    merged.backoffMs = (merged.backoffMs as Array<DurationMs | string>).map((v, i) => {
      try {
        return toDurationMs(v, `backoffMs[${i}]`);
      } catch (err) {
        errors.push((err as Error).message);
        return v;
      }
    });
  }
  const cfg = merged as unknown as PolicyConfig;
  if (errors.length === 0) errors.push(...validatePolicyConfig(cfg));
  if (errors.length > 0) throw new Error(`Invalid callback policy config:\n  - ${errors.join('\n  - ')}`);
  return deepFreeze(structuredClone(cfg));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
