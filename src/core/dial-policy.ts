/**
 * The dial policy: which agent devices the service may ring and which prospect numbers it may dial.
 * Pure; checked when a request is created (whatever the entry: Stasis, FastAGI) and again just before
 * every originate (src/engine/engine.ts), so that a request created under an older, looser configuration is
 * never dialled once the configuration forbids it.
 *
 * Agent devices: a list of patterns `TECH/resource-glob` where `*` matches any run of device-name
 * characters (`PJSIP/*`, `PJSIP/10??`-style globs are not supported; `PJSIP/1*` is). `Local/` channels run
 * dialplan, so they are only allowed into a named context: `Local/*@agents`; a pattern `Local/*` or
 * `Local/*@*` is refused by {@link parseDialPolicy}.
 *
 * Prospect numbers: denied when they start with a denied prefix (premium-rate ranges by default),
 * else allowed when the allow list is empty or they start with an allowed prefix. `00` and `+` are the
 * same international prefix: `+49900` also denies `0049900…`.
 */
import { validateAgentDevice, validateProspectNumber, type Validation } from './validate';

export interface DialPolicy {
  /** Agent device patterns as configured, e.g. ["PJSIP/*", "Local/*@agents"]. */
  agentDevices: readonly string[];
  /** Prospect prefixes allowed; empty = every number not denied. */
  prospectAllow: readonly string[];
  /** Prospect prefixes always refused (checked first). */
  prospectDeny: readonly string[];
}

/**
 * Premium-rate and satellite ranges refused by default: Germany 0900/0137/0180-style service numbers
 * (0900, 0137, 0190 and their +49 forms), NANP 1-900, international premium (+979) and
 * satellite/international networks (+870, +881, +882, +883), and UK premium (+449, 09).
 */
export const DEFAULT_PROSPECT_DENY = ['0900', '0137', '0190', '+49900', '+49137', '+49190', '1900', '+1900', '+979', '+870', '+881', '+882', '+883', '+449'] as const;

export const DEFAULT_AGENT_DEVICES = ['PJSIP/*', 'SIP/*'] as const;

const PATTERN = /^(PJSIP|SIP|IAX2|DAHDI|Local)\/([A-Za-z0-9_.+*-]{1,64})(?:@([A-Za-z0-9][A-Za-z0-9_-]{0,63}))?$/;
const PREFIX = /^\+?[0-9]{1,20}$/;

/** What is wrong with one agent device pattern (undefined: usable). */
export function agentPatternProblem(pattern: string): string | undefined {
  const m = PATTERN.exec(pattern);
  if (!m) return `${JSON.stringify(pattern)} is not a device pattern such as "PJSIP/*" or "Local/*@agents"`;
  if (m[1] === 'Local' && !m[3]) return `${JSON.stringify(pattern)}: a Local/ pattern must name its context, e.g. "Local/*@agents"`;
  if (m[1] !== 'Local' && m[3]) return `${JSON.stringify(pattern)}: only Local/ devices have an @context`;
  return undefined;
}

/** What is wrong with one prospect prefix (undefined: usable). */
export function prefixProblem(prefix: string): string | undefined {
  return PREFIX.test(prefix) ? undefined : `${JSON.stringify(prefix)} is not a number prefix (digits with an optional leading +)`;
}

/** Problems with a policy as configured (each names the key); empty when it is usable. */
export function checkDialPolicy(p: DialPolicy): string[] {
  const problems: string[] = [];
  p.agentDevices.forEach((pattern, i) => {
    const m = PATTERN.exec(pattern);
    if (!m) {
      problems.push(`dial.agentDevices[${i}]: ${JSON.stringify(pattern)} is not a device pattern such as "PJSIP/*" or "Local/*@agents"`);
      return;
    }
    if (m[1] === 'Local' && !m[3]) {
      problems.push(`dial.agentDevices[${i}]: ${JSON.stringify(pattern)}: a Local/ pattern must name its context, e.g. "Local/*@agents"`);
    }
    if (m[1] !== 'Local' && m[3]) problems.push(`dial.agentDevices[${i}]: ${JSON.stringify(pattern)}: only Local/ devices have an @context`);
  });
  for (const key of ['prospectAllow', 'prospectDeny'] as const) {
    p[key].forEach((prefix, i) => {
      if (!PREFIX.test(prefix)) problems.push(`dial.${key}[${i}]: ${JSON.stringify(prefix)} is not a number prefix (digits with an optional leading +)`);
    });
  }
  return problems;
}

/** Settings that leave the PBX open to toll fraud or abuse, for `config check` (warnings, not errors). */
export function dialPolicyWarnings(p: DialPolicy): string[] {
  const warnings: string[] = [];
  for (const pattern of p.agentDevices) {
    if (/^(IAX2|DAHDI)\//.test(pattern)) warnings.push(`dial.agentDevices: ${pattern} lets a callback ring trunks or remote peers; list your agents' devices instead`);
    if (/^Local\/\*@/.test(pattern)) warnings.push(`dial.agentDevices: ${pattern} rings any extension of that context; make sure the context only reaches agents`);
  }
  if (p.prospectDeny.length === 0) warnings.push('dial.prospectDeny: empty; premium-rate numbers may be dialled');
  if (p.prospectAllow.length === 0) warnings.push('dial.prospectAllow: empty; any number not denied may be dialled (international too); list your allowed prefixes');
  return warnings;
}

function normalize(number: string): string {
  return number.startsWith('00') ? `+${number.slice(2)}` : number;
}

/** The configured globs' expressions, built once each (every opt-in and every recall checks the agent's device). */
const globs = new Map<string, RegExp>();

function globMatch(glob: string, text: string): boolean {
  let re = globs.get(glob);
  if (!re) {
    re = new RegExp(`^${glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[A-Za-z0-9_.+-]*')}$`);
    if (globs.size < 1000) globs.set(glob, re);
  }
  return re.test(text);
}

/** May this agent device be rung? The device is validated as a plain device first. */
export function checkAgentDevice(p: DialPolicy, device: string): Validation<string> {
  const v = validateAgentDevice(device);
  if (!v.ok) return v;
  const [tech, rest] = [v.value.slice(0, v.value.indexOf('/')), v.value.slice(v.value.indexOf('/') + 1)];
  const [resource, context] = rest.split('@');
  for (const pattern of p.agentDevices) {
    const m = PATTERN.exec(pattern);
    if (!m || m[1] !== tech) continue;
    if (tech === 'Local' && (!m[3] || m[3] !== context)) continue;
    if (tech !== 'Local' && context !== undefined) continue;
    if (globMatch(m[2], resource)) return v;
  }
  return { ok: false, reason: `agent device ${JSON.stringify(v.value)} is not allowed by dial.agentDevices` };
}

/** May this prospect number be dialled? The number is validated (digits, optional +) first. */
export function checkProspect(p: DialPolicy, number: string, rules?: { minDigits: number; maxDigits: number }): Validation<string> {
  const v = validateProspectNumber(number, rules ?? { minDigits: 1, maxDigits: 30 });
  if (!v.ok) return v;
  const n = normalize(v.value);
  const denied = p.prospectDeny.find((prefix) => n.startsWith(normalize(prefix)));
  if (denied !== undefined) return { ok: false, reason: `prospect number ${JSON.stringify(v.value)} matches denied prefix ${denied} (dial.prospectDeny)` };
  if (p.prospectAllow.length > 0 && !p.prospectAllow.some((prefix) => n.startsWith(normalize(prefix)))) {
    return { ok: false, reason: `prospect number ${JSON.stringify(v.value)} matches no prefix of dial.prospectAllow` };
  }
  return v;
}

/** Both checks; the first refusal wins. */
export function checkDial(p: DialPolicy, agent: string, prospect: string): Validation<{ agent: string; prospect: string }> {
  const a = checkAgentDevice(p, agent);
  if (!a.ok) return a;
  const n = checkProspect(p, prospect);
  if (!n.ok) return n;
  return { ok: true, value: { agent: a.value, prospect: n.value } };
}

export class DialPolicyError extends Error {
  constructor(readonly reason: string) {
    super(`refused by the dial policy: ${reason}`);
    this.name = 'DialPolicyError';
  }
}
