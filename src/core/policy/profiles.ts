/**
 * Team profiles: named sets of policy overrides (`profiles: { berlin: {...}, newyork: {...} }`), chosen per call
 * from the dialplan (CC_PROFILE → the offer's fifth argument). Pure: resolution is a function of the configured
 * policy, the profiles and the name the call brought.
 *
 * What a request keeps: the profile's name and a **snapshot** of the resolved promise-making part of the policy
 * ({@link PROFILE_POLICY_KEYS}: grace, back-off, snooze, attempts, calling hours, after-hours rule, label, heads-up). A snapshot
 * rather than a version number, because the configuration is a file, not a database table: an old version cannot be
 * looked up again after the file was edited, and a request must be decidable by any instance (another instance may
 * run another revision of the file). The operational knobs (ring and menu timeouts, safety margins, wrap-up) are not
 * part of the promise and follow the current configuration ({@link policyFor}).
 *
 * A name the configuration does not know (a typo in the dialplan, a profile removed) is not a reason to lose the
 * callback: the call gets the default policy, and the service logs `profile.unknown` naming it.
 */
import type { CallingHoursConfig } from './calling-hours';
import { PROFILE_POLICY_KEYS, type PolicyConfig, type PolicySnapshot } from './types';

export { PROFILE_POLICY_KEYS, type PolicySnapshot };

/** One profile as the configuration holds it (parsed: durations in ms). Every field optional. */
export interface ProfileOverrides {
  graceMs?: number;
  longBusyThresholdMs?: number;
  longBusyExtraGraceMs?: number;
  firstProbeDelayMs?: number;
  backoffMs?: number[];
  maxAttempts?: number;
  noAnswerRetries?: number;
  snoozeMs?: number;
  maxSnoozes?: number;
  /** policy.headsUp for this profile (0: no heads-up for this team). */
  headsUpMs?: number;
  maxAgeMs?: number;
  callingHours?: Partial<CallingHoursConfig>;
  afterHours?: 'carry-over' | 'decline';
  /** Prompt language for calls of this profile (overrides the channel's). */
  language?: string;
  /** recall.labelPrefix for this profile: prefixes per language, long to short. */
  labelPrefix?: Record<string, string[]>;
  /** recall.callerIdName for this profile. */
  callerIdName?: string;
}

export type Profiles = Readonly<Record<string, ProfileOverrides>>;

/** A profile name as the dialplan may pass it. */
export const PROFILE_NAME = /^[A-Za-z0-9_-]{1,32}$/;

export interface ResolvedProfile {
  /** The profile applied, or null for the default policy. */
  profile: string | null;
  /** The policy the call's request is decided with. */
  policy: PolicyConfig;
  /** The snapshot stored with the request. */
  snapshot: PolicySnapshot;
  /** The profile's language, if it has one. */
  language?: string;
  /** Set when the call named a profile that is not applied: why (unknown name, malformed name). */
  problem?: string;
}

/** The policy of one profile over the configured one (no validation: `config check` did that). */
export function profilePolicy(base: PolicyConfig, o: ProfileOverrides): PolicyConfig {
  const p: PolicyConfig = { ...base };
  const w = p as unknown as Record<string, unknown>;
  for (const key of ['graceMs', 'longBusyThresholdMs', 'longBusyExtraGraceMs', 'firstProbeDelayMs', 'backoffMs', 'maxAttempts', 'noAnswerRetries', 'snoozeMs', 'maxSnoozes', 'maxAgeMs', 'afterHours', 'headsUpMs'] as const) {
    if (o[key] !== undefined) w[key] = o[key];
  }
  if (o.callingHours) p.callingHours = { ...base.callingHours, ...o.callingHours };
  if (o.labelPrefix) p.recallLabel = { ...base.recallLabel, prefixes: o.labelPrefix };
  if (o.callerIdName !== undefined) p.recallCallerIdName = o.callerIdName;
  return p;
}

/** The snapshot of a policy (the fields a request keeps): a deep copy, frozen. */
export function snapshotOf(policy: PolicyConfig): PolicySnapshot {
  const s: Record<string, unknown> = {};
  for (const key of PROFILE_POLICY_KEYS) s[key] = policy[key];
  return deepFreeze(structuredClone(s)) as PolicySnapshot;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Snapshots already taken, by the policy object and the profile's overrides (the configuration's objects, which
 * do not change while the service runs): every opt-in and every offer's preparation resolves the same few
 * policies, and a snapshot (structuredClone) was 2 % of the service's CPU under load (bench profile, issue 23).
 * Frozen, so no request can change another's.
 */
const snapshots = new WeakMap<PolicyConfig, WeakMap<object, PolicySnapshot>>();
const NO_PROFILE = {};

function snapshotFor(base: PolicyConfig, overrides: ProfileOverrides | undefined, policy: () => PolicyConfig): PolicySnapshot {
  let byProfile = snapshots.get(base);
  if (!byProfile) snapshots.set(base, (byProfile = new WeakMap()));
  const key = overrides ?? NO_PROFILE;
  let snap = byProfile.get(key);
  if (!snap) byProfile.set(key, (snap = snapshotOf(policy())));
  return snap;
}

/** Which profile a call's name picks (no policy needed: the offer's language is chosen with it). */
export function chooseProfile(profiles: Profiles, name: string | undefined): { profile: string | null; overrides?: ProfileOverrides; problem?: string } {
  if (name === undefined || name === '') return { profile: null };
  if (!PROFILE_NAME.test(name)) return { profile: null, problem: 'malformed profile name (expected letters, digits, _ or -, at most 32): the default policy applies' };
  if (!Object.prototype.hasOwnProperty.call(profiles, name)) {
    const known = Object.keys(profiles);
    return { profile: null, problem: `unknown profile ${JSON.stringify(name)} (known: ${known.length ? known.join(', ') : 'none'}): the default policy applies` };
  }
  return { profile: name, overrides: profiles[name] };
}

/**
 * The profile a call named (`name`: the dialplan's argument, empty or undefined = none) → the policy of its request.
 * An unknown or malformed name gives the default policy and a `problem` to log.
 */
export function resolveProfile(base: PolicyConfig, profiles: Profiles, name: string | undefined): ResolvedProfile {
  const c = chooseProfile(profiles, name);
  if (!c.overrides) return { profile: null, policy: base, snapshot: snapshotFor(base, undefined, () => base), ...(c.problem ? { problem: c.problem } : {}) };
  const overrides = c.overrides;
  const policy = profilePolicy(base, overrides);
  return { profile: c.profile, policy, snapshot: snapshotFor(base, overrides, () => policy), ...(overrides.language ? { language: overrides.language } : {}) };
}

/** The policy a stored request is decided with: its snapshot over the configured policy (old requests: the configured one). */
export function policyFor(base: PolicyConfig, request: { policy?: PolicySnapshot | null }): PolicyConfig {
  return request.policy ? { ...base, ...request.policy } : base;
}

/** What a profile changes, in words (list/show/explain, the page): "grace 30s, snooze 1m, language de". */
export function describeSnapshot(s: PolicySnapshot | null | undefined): string {
  if (!s) return 'the configured policy';
  const d = (ms: number) => (ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return [
    `grace ${d(s.graceMs)}`,
    `back-off ${s.backoffMs.map(d).join('/')}`,
    `snooze ${d(s.snoozeMs)} (×${s.maxSnoozes})`,
    `attempts ${s.maxAttempts}`,
    `hours ${s.callingHours.timeZone}`,
    `after hours ${s.afterHours}`,
    // Snapshots stored before profiles could set the heads-up lack it (the configured one applies).
    ...(s.headsUpMs === undefined ? [] : [`heads-up ${s.headsUpMs > 0 ? d(s.headsUpMs) : 'off'}`]),
  ].join(', ');
}
