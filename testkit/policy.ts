/**
 * The policy configuration for tests of decisions: the schema's defaults (src/config/policy.ts) with the heads-up off.
 * The tests written before the heads-up assert exact event and wake-up sequences, which a heads-up's extra wake-up
 * and `heads-up` event would change; the heads-up has its own tests (test/unit/policy/heads-up.test.ts,
 * test/unit/heads-up-pause.test.ts), which set `headsUpMs` themselves. test/unit/policy/config.test.ts checks the real
 * defaults against the schema.
 */
import { makePolicyConfig as make, type PolicyConfigInput } from '../src/config/policy';
import type { PolicyConfig } from '../src/core/policy';

export type { PolicyConfigInput };

/** Defaults + overrides, checked as `run` checks them; the heads-up off unless the overrides set it. */
export function makePolicyConfig(overrides: PolicyConfigInput = {}): PolicyConfig {
  return make({ headsUpMs: 0, ...overrides });
}

/** The schema's defaults with the heads-up off. */
export const defaultPolicyConfig: PolicyConfig = makePolicyConfig();
