/**
 * The policy's configuration as code builds it. Its defaults and bounds are written once, in the schema
 * (src/config/schema.ts: every key whose `at` is under `policy.`); here they are read from there:
 *
 *  - `defaultPolicyConfig`: every policy key's schema default, parsed (what `run` uses when nothing is configured);
 *  - `makePolicyConfig(overrides)`: the defaults with overrides as the code writes them (milliseconds, or duration
 *    strings such as '5m'), each checked against its key's bounds in the schema, then the rules that relate several
 *    keys (the pure policy's `validatePolicyConfig`). Throws one Error listing every problem.
 *
 * The one policy setting that is not a configuration key is `openingHorizonDays` (how far ahead a calling window is
 * looked for): a fixed limit of the policy, `OPENING_HORIZON_DAYS`.
 */
import { formatDuration, toDurationMs, validatePolicyConfig, type DurationMs, type PolicyConfig } from '../core/policy';
import { boundsOf, schema, type Field } from './schema';

/** How many days ahead the policy looks for an opening calling window (not configurable). */
export const OPENING_HORIZON_DAYS = 14;

/** The policy's fields with their schema key, from the schema's `at` ("graceMs" ← "policy.grace"). */
const POLICY_FIELDS: ReadonlyArray<{ key: string; path: string[]; field: Field }> = Object.entries(schema as Record<string, Field>)
  .filter(([key, f]) => (f.at ?? key).startsWith('policy.'))
  .map(([key, field]) => ({ key, path: (field.at ?? key).split('.').slice(1), field }));

/** The schema key of a top-level policy field (graceMs → policy.grace), for messages. */
const KEY_OF = new Map(POLICY_FIELDS.filter((p) => p.path.length === 1).map((p) => [p.path[0], p]));

function schemaDefaults(): PolicyConfig {
  const tree: Record<string, unknown> = { openingHorizonDays: OPENING_HORIZON_DAYS };
  for (const { key, path, field } of POLICY_FIELDS) {
    const parsed = field.parse.safeParse(field.default);
    if (!parsed.success) throw new Error(`schema default of ${key} does not parse: ${parsed.error.message}`);
    let node = tree;
    for (const part of path.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1]] = parsed.data;
  }
  // The label reads "0049…" as international with the zones' prefix (load.ts sets the configured one).
  const zones = (schema as Record<string, Field>)['callingHours.internationalPrefix'];
  (tree.recallLabel as Record<string, unknown>).internationalPrefix = zones.default;
  return tree as unknown as PolicyConfig;
}

/** What `run` uses when nothing is configured: every policy key's default from the schema. */
export const defaultPolicyConfig: PolicyConfig = deepFreeze(schemaDefaults());

/** Overrides as code writes them: durations as ms numbers or strings like '5m'. */
export type PolicyConfigInput = Partial<
  Omit<PolicyConfig, DurationKey | 'backoffMs'> & Record<DurationKey, DurationMs | string> & { backoffMs: ReadonlyArray<DurationMs | string> }
>;
type DurationKey = { [K in keyof PolicyConfig]: K extends `${string}Ms` ? (PolicyConfig[K] extends number ? K : never) : never }[keyof PolicyConfig];

/** Defaults + overrides → a checked, frozen config (bounds from the schema, cross-key rules from the policy). */
export function makePolicyConfig(overrides: PolicyConfigInput = {}): PolicyConfig {
  const merged: Record<string, unknown> = { ...defaultPolicyConfig, ...overrides };
  const errors: string[] = [];
  const ms = (v: unknown, name: string) => {
    try {
      return toDurationMs(v as DurationMs | string, name);
    } catch (err) {
      errors.push((err as Error).message);
      return v;
    }
  };
  for (const [name, { field }] of KEY_OF) {
    if (field.type === 'duration') merged[name] = ms(merged[name], name);
    if (field.type === 'durationList' && Array.isArray(merged[name])) merged[name] = (merged[name] as unknown[]).map((v, i) => ms(v, `${name}[${i}]`));
  }
  if (errors.length === 0) {
    // Each setting within its bounds: the schema's, the same `config check` and `run` enforce.
    for (const [name, { key, field }] of KEY_OF) {
      const bounds = boundsOf(field);
      const v = merged[name];
      if (!bounds || typeof v !== 'number' || (v >= bounds.min && v <= bounds.max)) continue;
      const show = (n: number) => (field.type === 'duration' ? formatDuration(n) : String(n));
      errors.push(`${name}: expected ${show(bounds.min)} to ${show(bounds.max)} (${key}), got ${show(v)}`);
    }
    errors.push(...validatePolicyConfig(merged as unknown as PolicyConfig));
  }
  if (errors.length > 0) throw new Error(`Invalid callback policy config:\n  - ${errors.join('\n  - ')}`);
  return deepFreeze(structuredClone(merged as unknown as PolicyConfig));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** The default calling hours (the schema's callingHours.* defaults). */
export const defaultCallingHours = defaultPolicyConfig.callingHours;
