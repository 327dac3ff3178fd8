/**
 * Loads the configuration: defaults, then the file (JSON or YAML), then environment variables, then
 * command-line overrides. Anything unknown or malformed is refused with a message that names the key
 * and what is expected; the service refuses to start rather than guess.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PolicyConfig, makePolicyConfig } from '../core/policy';
import { parseDuration } from '../core/policy/duration';
import { validateWatchDevice } from '../core/validate';
import { validateZoneOverrides, type ZoneRules } from '../core/zones';
import { Field, schema } from './schema';

export interface InternalProspectRule {
  pattern: RegExp;
  device: string;
}

export interface Config {
  ari: { url: string; username: string; password: string; app: string; reconnectMaxMs: number; leaseTtlMs: number };
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
    offerNextDay: string;
    confirmNextDay: string;
    closed: string;
    queue: string;
  };
  /** The prospect's own clock (src/core/zones.ts). */
  zones: ZoneRules;
  numbers: { minDigits: number; maxDigits: number };
  policy: PolicyConfig;
  prospects: { internal: InternalProspectRule[] };
  recall: { alertInfo: string; outboundContext: string };
  agi: { enabled: boolean; bind: string; port: number };
  pending: { prompts: { count: string; menu: string } };
  webhook: { url: string; secret: string; timeoutMs: number; retries: number; backoffMs: number[] };
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
  // A secret's wrong value is never echoed: it may be the real password in the wrong place.
  const got =
    field.type === 'secret'
      ? typeof value === 'string'
        ? 'an empty string'
        : `a ${Array.isArray(value) ? 'list' : typeof value}`
      : field.type === 'url' && typeof value === 'string'
        ? describe(value.replace(/\/\/.*@/, '//********@'))
        : describe(value);
  const want = (what: string) => ({ problem: `${key}: expected ${what}, got ${got}` });
  switch (field.type) {
    case 'string':
    case 'secret': {
      if (typeof value === 'string' && value === '' && field.allowEmpty) return { value };
      if (typeof value !== 'string' || value === '') return want('a non-empty string');
      if (field.enum && !field.enum.includes(value)) return want(`one of ${field.enum.join(', ')}`);
      return { value };
    }
    case 'url': {
      if (value === '' && field.allowEmpty) return { value };
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

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
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
  /** Flat overrides such as `{ 'log.level': 'debug' }` from the command line (`--set key=value`). */
  overrides?: Record<string, unknown>;
  /** For commands that do not talk to Asterisk (list, show): required secrets may be missing. */
  partial?: boolean;
}

/** Where an effective value came from. */
export type ConfigSource = 'default' | 'file' | `env ${string}` | 'flag' | 'unset';

export interface ConfigEntry {
  key: string;
  /** The value as written (durations stay "5m"); secrets are masked. */
  value: unknown;
  source: ConfigSource;
}

const MASK = '********';

/** Parses a configuration file: YAML for .yaml/.yml, JSON for .json, otherwise JSON if it looks like JSON, else YAML. */
function isYamlFile(file: string, text: string): boolean {
  const ext = path.extname(file).toLowerCase();
  return ext === '.yaml' || ext === '.yml' || (ext !== '.json' && !/^\s*[{[]/.test(text));
}

export function parseConfigFile(file: string, text: string): unknown {
  if (isYamlFile(file, text)) {
    try {
      return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
    } catch (err) {
      // Only the first line: yaml's code frame would echo the file's text (and maybe a password).
      const first = (err as Error).message.split('\n')[0].replace(/:$/, '');
      throw new ConfigError([`${file} is not valid YAML: ${first}`], file);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8 quotes part of the text ("…" is not valid JSON): drop it, and say where instead.
    const msg = (err as Error).message.replace(/,? ".*" is not valid JSON$/s, '');
    const pos = /at position (\d+)/.exec(msg);
    let where = '';
    if (pos && !/\(line \d+/.test(msg)) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` (line ${line} column ${Number(pos[1]) - before.lastIndexOf('\n')})`;
    }
    throw new ConfigError([`${file} is not valid JSON: ${msg}${where}`], file);
  }
}

/** Reads and validates; returns the effective configuration or throws ConfigError. */
export function loadConfig(opts: LoadOptions = {}): Config {
  return resolveConfig(opts).config;
}

/**
 * Reads and validates like {@link loadConfig}, and also says for every key which value won and where it
 * came from (default, file, environment, flag), with secrets masked: for `config check`.
 */
export function resolveConfig(opts: LoadOptions = {}): { config: Config; entries: ConfigEntry[] } {
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
    const parsed = parseConfigFile(opts.file, text);
    if (parsed === null || parsed === undefined || typeof parsed !== 'object' || Array.isArray(parsed)) {
      const what = isYamlFile(opts.file, text) ? 'a YAML mapping of sections (ari:, policy:, …)' : 'a JSON object of sections ({"ari": {…}, …})';
      throw new ConfigError([`${opts.file} must contain ${what}`], source);
    }
    flatten(parsed, '', flat, problems);
  }
  const fields = schema as Record<string, Field>;
  const unknown = (key: string, where: string) => {
    const near = Object.keys(fields).filter((k) => k.split('.')[0] === key.split('.')[0]);
    const close = Object.keys(fields)
      .map((k) => ({ k, d: editDistance(k.toLowerCase(), key.toLowerCase()) }))
      .filter((c) => c.d <= 3)
      .sort((a, b) => a.d - b.d)[0];
    const known = near.length ? ` (known in this section: ${near.join(', ')})` : '';
    problems.push(`${key}: unknown key${where}${known}${close ? `; did you mean ${close.k}?` : ''}`);
  };
  for (const key of Object.keys(flat)) if (!(key in fields)) unknown(key, '');
  for (const key of Object.keys(opts.overrides ?? {})) if (!(key in fields)) unknown(key, ' (from --set)');
  const values: Flat = {};
  const entries: ConfigEntry[] = [];
  for (const [key, field] of Object.entries(fields)) {
    let raw: unknown;
    let fromText = false;
    let from: ConfigSource;
    if (opts.overrides && opts.overrides[key] !== undefined) {
      raw = opts.overrides[key];
      fromText = typeof raw === 'string';
      from = 'flag';
    } else if (field.env && env[field.env] !== undefined && env[field.env] !== '') {
      raw = env[field.env];
      fromText = true;
      from = `env ${field.env}`;
    } else if (key in flat) {
      raw = flat[key];
      from = 'file';
    } else if (field.default !== undefined) {
      raw = field.default;
      from = 'default';
    } else if (opts.partial) {
      values[key] = '';
      entries.push({ key, value: null, source: 'unset' });
      continue;
    } else {
      problems.push(`${key}: required${field.env ? ` (set it in the file or with ${field.env})` : ''}`);
      continue;
    }
    const masked = field.type === 'secret' && raw !== '' ? MASK : fromText && field.type === 'json' ? safeJson(raw as string) : raw;
    entries.push({ key, value: masked, source: from });
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
  if (problems.length === 0) problems.push(...validateZoneOverrides(values['callingHours.zoneOverrides']));
  if (problems.length === 0 && !/^[0-9]*$/.test(values['callingHours.internationalPrefix'] as string)) {
    problems.push('callingHours.internationalPrefix: expected digits, e.g. "00" or "011" (or empty)');
  }
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
        afterHours: v('policy.afterHours'),
        carryOverDays: v('policy.carryOverDays'),
        recallCallerIdName: v('recall.callerIdName'),
        recallCallerIdNumber: v('recall.callerIdNumber'),
      });
    } catch (err) {
      // The policy names its own fields (graceMs, callingHours.windows.mon[0], …); map them to config keys.
      for (const line of (err as Error).message.split('\n').slice(1)) problems.push(policyProblem(line.replace(/^\s*-\s*/, '')));
    }
  }
  if (problems.length > 0 || !policy) {
    // No secret ever appears in a message, even one written into the wrong key.
    const secrets = Object.entries(fields)
      .filter(([, f]) => f.type === 'secret')
      .flatMap(([k, f]) => [flat[k], f.env ? env[f.env] : undefined, opts.overrides?.[k]])
      .filter((x): x is string => typeof x === 'string' && x.length >= 4); // masking "x" would garble every message
    const scrub = (text: string) =>
      secrets.reduce((t, secret) => [secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)].reduce((u, form) => u.split(form).join(MASK), t), text);
    throw new ConfigError(problems.map(scrub), source);
  }
  const config: Config = {
    ari: {
      url: v('ari.url'),
      username: v('ari.username'),
      password: v('ari.password'),
      app: v('ari.app'),
      reconnectMaxMs: v('ari.reconnectMax'),
      leaseTtlMs: v('ari.leaseTtl'),
    },
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
      offerNextDay: v('prompts.offerNextDay'),
      confirmNextDay: v('prompts.confirmNextDay'),
      closed: v('prompts.closed'),
      queue: v('prompts.queue'),
    },
    zones: {
      fallback: v('callingHours.timeZone'),
      overrides: v('callingHours.zoneOverrides'),
      internationalPrefix: v('callingHours.internationalPrefix'),
      fromNumber: v('callingHours.zoneFromNumber'),
    },
    numbers: { minDigits: v('numbers.minDigits'), maxDigits: v('numbers.maxDigits') },
    policy,
    prospects: { internal },
    recall: { alertInfo: v('recall.alertInfo'), outboundContext: v('recall.outboundContext') },
    agi: { enabled: v('agi.enabled'), bind: v('agi.bind'), port: v('agi.port') },
    pending: { prompts: { count: v('prompts.pendingCount'), menu: v('prompts.pendingMenu') } },
    webhook: {
      url: v('webhook.url'),
      secret: v('webhook.secret'),
      timeoutMs: v('webhook.timeout'),
      retries: v('webhook.retries'),
      backoffMs: v('webhook.backoff'),
    },
  };
  return { config, entries };
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
export function maskSecrets<T>(config: T): T {
  return maskDeep(config, '') as T;
}

function maskDeep(value: unknown, key: string): unknown {
  if (typeof value === 'string') return value !== '' && SECRET_KEY.test(key) ? MASK : value;
  if (value instanceof RegExp) return value.source;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, key));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v, k)]));
}

/** Keys whose string values are secrets wherever they appear (ari.password, a webhook secret, a token). */
const SECRET_KEY = /password|secret|token|apikey|api_key/i;
