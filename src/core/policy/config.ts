/**
 * What the policy checks of a complete configuration: value types (whole numbers of ms, a non-empty back-off list,
 * valid calling hours) and the rules that relate several settings. Defaults and per-setting bounds are not here: they
 * are the schema's (src/config/schema.ts), and `makePolicyConfig` (src/config/policy.ts) builds a configuration from
 * them and calls this.
 */
import { validateCallingHours } from './calling-hours';
import type { PolicyConfig } from './types';

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

/** Problems with a config, as human-readable strings naming the setting (empty when valid). */
export function validatePolicyConfig(cfg: PolicyConfig): string[] {
  const problems: string[] = [];
  for (const key of DURATION_KEYS) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      problems.push(`${key}: expected a non-negative whole number of ms, got ${JSON.stringify(v)}`);
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
  const counts: Array<keyof PolicyConfig> = ['maxAttempts', 'noAnswerRetries', 'maxSnoozes', 'menuRepeats', 'openingHorizonDays', 'carryOverDays'];
  for (const key of counts) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      problems.push(`${key}: expected a non-negative whole number, got ${JSON.stringify(v)}`);
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
