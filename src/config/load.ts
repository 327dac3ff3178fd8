/**
 * Loads the configuration: defaults, then the file (JSON), then environment variables, then
 * command-line overrides. Anything unknown or malformed is refused with a message that names the key
 * and what is expected; the service refuses to start rather than guess.
 */
import fs from 'node:fs';
import { PolicyConfig, makePolicyConfig } from '../core/policy';
import { parseDuration } from '../core/policy/duration';
import { validateWatchDevice } from '../core/validate';
import { Field, schema } from './schema';

export interface InternalProspectRule {
  pattern: RegExp;
  device: string;
}

export interface Config {
  ari: { url: string; username: string; password: string; app: string; reconnectMaxMs: number };
  store: { path: string };
  log: { level: 'error' | 'warn' | 'info' | 'debug'; format: 'auto' | 'json' | 'pretty' };
  offer: {
    keyTimeoutMs: number;
    closingTimeoutMs: number;
    maxPendingPerAgent: number;
    languages: string[];
    defaultLanguage: string;
  };
  prompts: {
    offer: string;
    confirm: string;
    goodbye: string;
    full: string;
    error: string;
    recallIntro: string;
    recallMenu: string;
    connecting: string;
    stillBusy: string;
    noAnswer: string;
    snoozed: string;
    cancelled: string;
  };
  numbers: { minDigits: number; maxDigits: number };
  policy: PolicyConfig;
  prospects: { internal: InternalProspectRule[] };
  recall: { alertInfo: string; outboundContext: string };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[], readonly source: string) {
    super(`invalid configuration (${source}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Flat = Record<string, unknown>;

function flatten(value: unknown, prefix: string, out: Flat, problems: string[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    out[prefix] = value;
    return;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  // A section key (e.g. "ari") whose value is an object is walked into; a leaf key that is an object
  // is only allowed for json fields.
  if (prefix && prefix in schema && (schema as Record<string, Field>)[prefix].type === 'json') {
    out[prefix] = value;
    return;
  }
  if (entries.length === 0 && prefix) {
    problems.push(`${prefix}: empty section`);
  }
  for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out, problems);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function coerce(key: string, field: Field, value: unknown, fromText: boolean): { value?: unknown; problem?: string } {
  const want = (what: string) => ({ problem: `${key}: expected ${what}, got ${describe(value)}` });
  switch (field.type) {
    case 'string':
    case 'secret': {
      if (typeof value === 'string' && value === '' && field.allowEmpty) return { value };
      if (typeof value !== 'string' || value === '') return want('a non-empty string');
      if (field.enum && !field.enum.includes(value)) return want(`one of ${field.enum.join(', ')}`);
      return { value };
    }
    case 'url': {
      if (typeof value !== 'string') return want('a URL such as http://127.0.0.1:8088');
      try {
        const u = new URL(value);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') return want('an http:// or https:// URL');
        return { value: value.replace(/\/+$/, '') };
      } catch {
        return want('a URL such as http://127.0.0.1:8088');
      }
    }
    case 'integer': {
      const n = fromText && typeof value === 'string' && /^-?[0-9]+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) return want('a whole number');
      if ((field.min !== undefined && n < field.min) || (field.max !== undefined && n > field.max)) {
        return want(`a whole number from ${field.min} to ${field.max}`);
      }
      return { value: n };
    }
    case 'boolean': {
      if (typeof value === 'boolean') return { value };
      if (fromText && (value === 'true' || value === 'false')) return { value: value === 'true' };
      return want('true or false');
    }
    case 'duration': {
      if (typeof value !== 'string') return want('a duration such as "30s", "5m" or "1h30m"');
      try {
        return { value: parseDuration(value) };
      } catch {
        return want('a duration such as "30s", "5m" or "1h30m"');
      }
    }
    case 'durationList': {
      const list = fromText && typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
      if (!Array.isArray(list) || list.length === 0) return want('a non-empty list of durations such as ["10m", "30m", "1h"]');
      try {
        return { value: list.map((d) => parseDuration(d as string)) };
      } catch {
        return want('a non-empty list of durations such as ["10m", "30m", "1h"]');
      }
    }
    case 'stringList': {
      const list = fromText && typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
      if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) {
        return want('a non-empty list of strings');
      }
      return { value: list };
    }
    case 'json':
      // Checked as a whole below, where the meaning of each json field is known.
      return { value: fromText && typeof value === 'string' ? safeJson(value) : value };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flat overrides such as `{ 'log.level': 'debug' }` from the command line. */
  overrides?: Record<string, unknown>;
  /** For commands that do not talk to Asterisk (list, show): required secrets may be missing. */
  partial?: boolean;
}

/** Reads and validates; returns the effective configuration or throws ConfigError. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const source = opts.file ?? '(no file)';
  const flat: Flat = {};
  if (opts.file) {
    let text: string;
    try {
      text = fs.readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new ConfigError([`cannot read ${opts.file}: ${(err as Error).message}`], source);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError([`${opts.file} is not valid JSON: ${(err as Error).message}`], source);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError([`${opts.file} must contain a JSON object`], source);
    }
    flatten(parsed, '', flat, problems);
  }
  const fields = schema as Record<string, Field>;
  for (const key of Object.keys(flat)) {
    if (!(key in fields)) {
      const near = Object.keys(fields).filter((k) => k.split('.')[0] === key.split('.')[0]);
      problems.push(`${key}: unknown key${near.length ? ` (known in this section: ${near.join(', ')})` : ''}`);
    }
  }
  const values: Flat = {};
  for (const [key, field] of Object.entries(fields)) {
    let raw: unknown;
    let fromText = false;
    if (opts.overrides && opts.overrides[key] !== undefined) {
      raw = opts.overrides[key];
      fromText = typeof raw === 'string';
    } else if (field.env && env[field.env] !== undefined && env[field.env] !== '') {
      raw = env[field.env];
      fromText = true;
    } else if (key in flat) {
      raw = flat[key];
    } else if (field.default !== undefined) {
      raw = field.default;
    } else if (opts.partial) {
      values[key] = '';
      continue;
    } else {
      problems.push(`${key}: required${field.env ? ` (set it in the file or with ${field.env})` : ''}`);
      continue;
    }
    const r = coerce(key, field, raw, fromText);
    if (r.problem) problems.push(r.problem);
    else values[key] = r.value;
  }
  if (problems.length === 0 && (values['numbers.minDigits'] as number) > (values['numbers.maxDigits'] as number)) {
    problems.push('numbers.minDigits: must not be larger than numbers.maxDigits');
  }
  if (problems.length === 0 && !(values['offer.languages'] as string[]).includes(values['offer.defaultLanguage'] as string)) {
    problems.push('offer.defaultLanguage: must be one of offer.languages');
  }
  const v = (k: string) => values[k] as never;
  const internal = problems.length === 0 ? internalRules(values['prospects.internal'], problems) : [];
  let policy: PolicyConfig | undefined;
  if (problems.length === 0) {
    try {
      policy = makePolicyConfig({
        graceMs: v('policy.grace'),
        longBusyThresholdMs: v('policy.longBusyThreshold'),
        longBusyExtraGraceMs: v('policy.longBusyExtraGrace'),
        firstProbeDelayMs: v('policy.firstProbeDelay'),
        backoffMs: v('policy.backoff'),
        maxAttempts: v('policy.maxAttempts'),
        noAnswerRetries: v('policy.noAnswerRetries'),
        snoozeMs: v('policy.snooze'),
        maxSnoozes: v('policy.maxSnoozes'),
        agentWrapUpMs: v('policy.agentWrapUp'),
        agentBusyRecheckMs: v('policy.agentBusyRecheck'),
        agentRingTimeoutMs: v('policy.agentRingTimeout'),
        menuTimeoutMs: v('policy.menuTimeout'),
        menuRepeats: v('policy.menuRepeats'),
        prospectRingTimeoutMs: v('policy.prospectRingTimeout'),
        recallSafetyMarginMs: v('policy.recallSafetyMargin'),
        maxAgeMs: v('policy.maxAge'),
        callingHours: { timeZone: v('callingHours.timeZone'), windows: v('callingHours.windows'), holidays: v('callingHours.holidays') },
        recallCallerIdName: v('recall.callerIdName'),
        recallCallerIdNumber: v('recall.callerIdNumber'),
      });
    } catch (err) {
      // The policy names its own fields (graceMs, callingHours.windows.mon[0], …); map them to config keys.
      for (const line of (err as Error).message.split('\n').slice(1)) problems.push(policyProblem(line.replace(/^\s*-\s*/, '')));
    }
  }
  if (problems.length > 0 || !policy) throw new ConfigError(problems, source);
  return {
    ari: { url: v('ari.url'), username: v('ari.username'), password: v('ari.password'), app: v('ari.app'), reconnectMaxMs: v('ari.reconnectMax') },
    store: { path: v('store.path') },
    log: { level: v('log.level'), format: v('log.format') },
    offer: {
      keyTimeoutMs: v('offer.keyTimeout'),
      closingTimeoutMs: v('offer.closingTimeout'),
      maxPendingPerAgent: v('offer.maxPendingPerAgent'),
      languages: v('offer.languages'),
      defaultLanguage: v('offer.defaultLanguage'),
    },
    prompts: {
      offer: v('prompts.offer'),
      confirm: v('prompts.confirm'),
      goodbye: v('prompts.goodbye'),
      full: v('prompts.full'),
      error: v('prompts.error'),
      recallIntro: v('prompts.recallIntro'),
      recallMenu: v('prompts.recallMenu'),
      connecting: v('prompts.connecting'),
      stillBusy: v('prompts.stillBusy'),
      noAnswer: v('prompts.noAnswer'),
      snoozed: v('prompts.snoozed'),
      cancelled: v('prompts.cancelled'),
    },
    numbers: { minDigits: v('numbers.minDigits'), maxDigits: v('numbers.maxDigits') },
    policy,
    prospects: { internal },
    recall: { alertInfo: v('recall.alertInfo'), outboundContext: v('recall.outboundContext') },
  };
}

const POLICY_KEYS: Record<string, string> = {
  graceMs: 'policy.grace',
  longBusyThresholdMs: 'policy.longBusyThreshold',
  longBusyExtraGraceMs: 'policy.longBusyExtraGrace',
  firstProbeDelayMs: 'policy.firstProbeDelay',
  backoffMs: 'policy.backoff',
  snoozeMs: 'policy.snooze',
  agentWrapUpMs: 'policy.agentWrapUp',
  agentBusyRecheckMs: 'policy.agentBusyRecheck',
  agentRingTimeoutMs: 'policy.agentRingTimeout',
  menuTimeoutMs: 'policy.menuTimeout',
  prospectRingTimeoutMs: 'policy.prospectRingTimeout',
  recallSafetyMarginMs: 'policy.recallSafetyMargin',
  maxAgeMs: 'policy.maxAge',
  recallCallerIdName: 'recall.callerIdName',
  recallCallerIdNumber: 'recall.callerIdNumber',
};

function policyProblem(line: string): string {
  const m = /^([A-Za-z]+)(.*)$/.exec(line);
  if (!m) return line;
  const key = POLICY_KEYS[m[1]] ?? (m[1] === 'callingHours' ? 'callingHours' : `policy.${m[1]}`);
  return `${key}${m[2]}`;
}

function internalRules(value: unknown, problems: string[]): InternalProspectRule[] {
  const key = 'prospects.internal';
  if (!Array.isArray(value)) {
    problems.push(`${key}: expected a list of {"pattern": "^2\\d{3}$", "device": "PJSIP/\${number}"}`);
    return [];
  }
  const rules: InternalProspectRule[] = [];
  value.forEach((item, i) => {
    const where = `${key}[${i}]`;
    const rule = item as { pattern?: unknown; device?: unknown };
    if (!rule || typeof rule !== 'object' || typeof rule.pattern !== 'string' || typeof rule.device !== 'string') {
      problems.push(`${where}: expected {"pattern": "<regular expression>", "device": "PJSIP/\${number}"}`);
      return;
    }
    const extra = Object.keys(rule).filter((k) => k !== 'pattern' && k !== 'device');
    if (extra.length > 0) problems.push(`${where}: unknown key ${extra.join(', ')}`);
    let pattern: RegExp;
    try {
      pattern = new RegExp(rule.pattern);
    } catch (err) {
      problems.push(`${where}.pattern: not a valid regular expression: ${(err as Error).message}`);
      return;
    }
    if (!rule.device.includes('${number}')) {
      problems.push(`${where}.device: must contain \${number}, e.g. "PJSIP/\${number}"`);
      return;
    }
    // A device made from a harmless number must be a plain device: no '&', ',' or options sneak in via the template.
    const sample = validateWatchDevice(rule.device.split('${number}').join('2001'));
    if (!sample.ok) {
      problems.push(`${where}.device: ${sample.reason}`);
      return;
    }
    rules.push({ pattern, device: rule.device });
  });
  return rules;
}

/** The device of an internal prospect, or undefined for external numbers. The number must be validated already. */
export function prospectDevice(rules: readonly InternalProspectRule[], prospect: string): string | undefined {
  for (const rule of rules) {
    if (rule.pattern.test(prospect)) {
      const device = rule.device.split('${number}').join(prospect);
      return validateWatchDevice(device).ok ? device : undefined;
    }
  }
  return undefined;
}

/** The effective configuration with secrets masked, for `config check` and the start-up log line. */
export function maskSecrets(config: Config): Config {
  return { ...config, ari: { ...config.ari, password: '********' } };
}
