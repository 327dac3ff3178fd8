/**
 * Loads the configuration: defaults, then the file (JSON or YAML), then environment variables, then
 * command-line overrides. Anything unknown or malformed is refused with a message that names the key
 * and what is expected; the service refuses to start rather than guess.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isPair, isScalar, parse as parseYaml, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { PolicyConfig, profilePolicy, validatePolicyConfig, type Profiles } from '../core/policy';
import { labelProblems } from '../core/label';
import { makePolicyConfig } from './policy';
import { validateWatchDevice } from '../core/validate';
import { MASK, maskUrls, masker } from '../logging/mask';
import { Config, ConfigKey, Field, InternalProspectRule, crossChecks, schema } from './schema';

export type { Config, InternalProspectRule } from './schema';
export { maskSecrets } from '../logging/mask';

/** The configuration is invalid: `problems` name each key and what was wrong (exit 2 on the command line). */
export class ConfigError extends Error {
  readonly code = 'config-invalid' as const;

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

/** Text from the environment or `--set` read as the key's type ("4573" → 4573, "en, de" → ["en", "de"]). */
function readText(field: Field, value: string): unknown {
  switch (field.type) {
    case 'integer':
      return /^-?[0-9]+$/.test(value) ? Number(value) : value;
    case 'boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    case 'durationList':
    case 'stringList':
      return value.split(',').map((s) => s.trim());
    case 'json':
      return safeJson(value);
    default:
      return value;
  }
}

function issuePath(p: readonly PropertyKey[]): string {
  return p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
}

function coerce(key: string, field: Field, value: unknown, text: boolean): { value?: unknown; problem?: string } {
  if (text && field.type === 'json' && typeof value === 'string') {
    // JSON from the environment or --set: a key written twice is refused as in a file.
    const dup = duplicateJsonKeys(value)[0];
    if (dup) return { problem: `${key}: ${dup.replace(/ \(line \d+ column (\d+)\)/, ' (at character $1)')}` };
  }
  const r = field.parse.safeParse(text && typeof value === 'string' ? readText(field, value) : value);
  if (r.success) return { value: r.data };
  const issue = (r.error as z.ZodError).issues[0];
  if (issue.path.length > 0 && issue.code === 'custom') return { problem: `${key}${issuePath(issue.path)}: ${issue.message}` };
  if (!issue.message.startsWith('expected')) return { problem: `${key}: ${issue.message}` };
  // A secret's wrong value is never echoed: it may be the real password in the wrong place.
  const got =
    field.type === 'secret'
      ? typeof value === 'string'
        ? 'an empty string'
        : `a ${Array.isArray(value) ? 'list' : typeof value}`
      : field.type === 'url' && typeof value === 'string'
        ? describe(maskUrls(value))
        : describe(value);
  return { problem: `${key}: ${issue.message}, got ${got}` };
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
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
  const duplicates = duplicateJsonKeys(text);
  if (duplicates.length > 0) throw new ConfigError(duplicates.map((d) => `${file}: ${d}`), file);
  return parsed;
}

/**
 * JSON.parse keeps the last of two equal keys without a word; a file that says `"grace"` twice says two
 * things, so it is refused. YAML 1.2 reads JSON, and the yaml library (already the YAML reader) reports
 * duplicate keys with their position: "duplicate key ari.password (line 3 column 5)".
 */
export function duplicateJsonKeys(text: string): string[] {
  const doc = parseDocument(text, { uniqueKeys: true });
  const found: string[] = [];
  for (const e of doc.errors) {
    if (e.code !== 'DUPLICATE_KEY') continue;
    let name = '';
    visit(doc, {
      Pair(_, pair, ancestors) {
        if (isScalar(pair.key) && pair.key.range?.[0] === e.pos[0]) {
          const names = ancestors.filter(isPair).map((p) => (isScalar(p.key) ? String(p.key.value) : '?'));
          name = [...names, String(pair.key.value)].join('.');
          return visit.BREAK;
        }
        return undefined;
      },
    });
    const where = e.linePos ? ` (line ${e.linePos[0].line} column ${e.linePos[0].col})` : '';
    found.push(`duplicate key ${name || '(unnamed)'}${where}: each key may appear once`);
  }
  return found;
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
  if (problems.length === 0) {
    for (const check of crossChecks) {
      const problem = check(values as Record<ConfigKey, unknown>);
      if (problem) problems.push(problem);
    }
  }
  // Each parsed value to its place in the Config object (the schema's `at`).
  const tree: Record<string, unknown> = {};
  if (problems.length === 0) {
    for (const [key, field] of Object.entries(fields)) {
      const parts = (field.at ?? key).split('.');
      let node = tree;
      for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
      node[parts[parts.length - 1]] = values[key];
    }
  }
  let policy: PolicyConfig | undefined;
  if (problems.length === 0) {
    try {
      // The recall's label reads "0049…" as international with the same prefix as the zones do.
      const label = (tree.policy as { recallLabel?: Record<string, unknown> }).recallLabel;
      if (label) label.internationalPrefix = (tree.zones as { internationalPrefix?: string } | undefined)?.internationalPrefix ?? '00';
      policy = makePolicyConfig(tree.policy as Parameters<typeof makePolicyConfig>[0]);
    } catch (err) {
      // The policy names its own fields (graceMs, callingHours.windows.mon[0], …); map them to config keys.
      for (const line of (err as Error).message.split('\n').slice(1)) problems.push(policyProblem(line.replace(/^\s*-\s*/, '')));
    }
  }
  if (problems.length === 0 && policy) problems.push(...profileProblems(policy, tree));
  if (problems.length > 0 || !policy) {
    // No secret ever appears in a message, even one written into the wrong key.
    const secrets = Object.entries(fields)
      .filter(([, f]) => f.type === 'secret')
      .flatMap(([k, f]) => [flat[k], f.env ? env[f.env] : undefined, opts.overrides?.[k]])
      .filter((x): x is string => typeof x === 'string');
    const mask = masker(secrets);
    throw new ConfigError(problems.map((p) => mask.text(p)), source);
  }
  const config = { ...tree, policy } as Config;
  return { config, entries };
}

/**
 * Each profile over the configured policy must make a valid policy (the policy's own check, its fields named as
 * `profiles.<name>.<key>`), a label that fits the display, and speak a language prompts exist for.
 */
function profileProblems(policy: PolicyConfig, tree: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const profiles = (tree.profiles ?? {}) as Profiles;
  const languages = ((tree.offer as { languages?: string[] } | undefined)?.languages ?? []) as string[];
  for (const [name, o] of Object.entries(profiles)) {
    const merged = profilePolicy(policy, o);
    for (const p of validatePolicyConfig(merged)) problems.push(`profiles.${name}: ${p}`);
    const label = labelProblems(merged.recallCallerIdName, merged.recallLabel)[0];
    if (label) problems.push(`profiles.${name}: ${label}`);
    if (o.language !== undefined && !languages.includes(o.language)) problems.push(`profiles.${name}.language: must be one of offer.languages (${languages.join(', ')}), got ${JSON.stringify(o.language)}`);
  }
  return problems;
}

/** The config key of a policy field ("graceMs" → "policy.grace", "callingHours.windows…" → "callingHours.windows…"), from the schema's `at`. */
const POLICY_KEYS: Record<string, string> = Object.fromEntries(
  Object.entries(schema as Record<string, Field>)
    .filter(([, f]) => f.at?.startsWith('policy.') && f.at.split('.').length === 2)
    .map(([key, f]) => [(f.at as string).slice('policy.'.length), key]),
);

function policyProblem(line: string): string {
  const m = /^([A-Za-z]+)(.*)$/.exec(line);
  if (!m) return line;
  const key = POLICY_KEYS[m[1]] ?? (m[1] === 'callingHours' ? 'callingHours' : `policy.${m[1]}`);
  return `${key}${m[2]}`;
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
