/**
 * Loads the configuration: defaults, then the file (JSON), then environment variables, then
 * command-line overrides. Anything unknown or malformed is refused with a message that names the key
 * and what is expected; the service refuses to start rather than guess.
 */
import fs from 'node:fs';
import { parseDuration } from '../core/policy/duration';
import { Field, schema } from './schema';

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
  prompts: { offer: string; confirm: string; goodbye: string; full: string; error: string };
  numbers: { minDigits: number; maxDigits: number };
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
    case 'stringList': {
      const list = fromText && typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
      if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) {
        return want('a non-empty list of strings');
      }
      return { value: list };
    }
    case 'json': {
      const parsed = fromText && typeof value === 'string' ? safeJson(value) : value;
      const problem = field.check?.(parsed);
      return problem ? { problem: `${key}: ${problem}` } : { value: parsed };
    }
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
  if (problems.length > 0) throw new ConfigError(problems, source);
  const v = (k: string) => values[k] as never;
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
    prompts: { offer: v('prompts.offer'), confirm: v('prompts.confirm'), goodbye: v('prompts.goodbye'), full: v('prompts.full'), error: v('prompts.error') },
    numbers: { minDigits: v('numbers.minDigits'), maxDigits: v('numbers.maxDigits') },
  };
}

/** The effective configuration with secrets masked, for `config check` and the start-up log line. */
export function maskSecrets(config: Config): Config {
  return { ...config, ari: { ...config.ari, password: '********' } };
}
