/**
 * What every command shares: exit codes, the global options (--config, --set, --log-level), loading
 * the configuration, opening the store, and turning errors into a line on stderr and an exit code.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import { Config, ConfigError, LoadOptions } from '../config/load';
import { secretsFromEnv } from '../config/schema';
import { masker } from '../logging/mask';
import { loadConfig } from '../config/load';
import type { CallbackRequest } from '../core/policy';
import { Store, StoreError } from '../store/contract';
import { openStore as openConfiguredStore } from '../store';
import { InputError } from '../views/errors';

/** Exit codes, documented in --help and docs/admin-guide.md. */
export const EXIT = { ok: 0, failure: 1, usage: 2, store: 3, notFound: 4, leaseLost: 75 } as const;

export const EXIT_CODES_TEXT =
  'Exit codes: 0 ok · 1 runtime failure · 2 usage or configuration error · 3 the store cannot be opened · 4 not found.';

/** An error that carries its exit code and a message meant for the user (no stack trace). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface GlobalArgs {
  config?: string;
  set?: string[];
  'log-level'?: string;
}

/** --config, --set and --log-level: accepted by every command. */
export function withGlobals<T>(y: Argv<T>): Argv<T & GlobalArgs> {
  return y
    .option('config', {
      alias: 'c',
      type: 'string',
      global: true,
      describe: 'Configuration file, JSON or YAML (.json, .yaml, .yml)',
      default: process.env.CC_CONFIG || undefined,
      defaultDescription: '$CC_CONFIG',
    })
    .option('set', {
      type: 'string',
      array: true,
      global: true,
      requiresArg: true,
      describe: 'Override one key, e.g. --set policy.grace=10m (repeatable; wins over file and environment)',
    })
    .option('log-level', {
      type: 'string',
      global: true,
      choices: ['error', 'warn', 'info', 'debug'],
      describe: 'Override log.level',
    }) as unknown as Argv<T & GlobalArgs>;
}

/** `--set a.b=c` pairs (and --log-level) as loader overrides; a malformed pair is a usage error. */
export function overridesFrom(argv: GlobalArgs): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of argv.set ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`--set ${pair}: expected key=value, e.g. --set policy.grace=10m`, EXIT.usage);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
  }
  if (argv['log-level']) out['log.level'] = argv['log-level'];
  return out;
}

export function loadOptions(argv: GlobalArgs, extra: Partial<LoadOptions> = {}): LoadOptions {
  return { file: argv.config, overrides: overridesFrom(argv), ...extra };
}

/** The configuration for commands that do not talk to Asterisk: the ARI password may be missing. */
export function loadPartial(argv: GlobalArgs): Config {
  return loadConfig(loadOptions(argv, { partial: true }));
}

export type RequestStore = Store<CallbackRequest>;

/** Opens the configured store for the command line: every PBX's requests; read-only unless `write`. */
export function openStore(config: Config, opts: { write?: boolean } = {}): Promise<RequestStore> {
  return openConfiguredStore<CallbackRequest>(config, opts.write ? 'write' : 'read');
}

export async function withStore<T>(config: Config, opts: { write?: boolean }, fn: (store: RequestStore) => Promise<T>): Promise<T> {
  const store = await openStore(config, opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Prints the error and exits with its code: config and input 2, store 3, CliError its own, anything else 1. */
export function fail(err: unknown): never {
  // The one mask: URL credentials, secret query parameters and the secrets from the environment.
  const mask = masker(secretsFromEnv());
  if (err instanceof ConfigError || err instanceof StoreError || err instanceof CliError || err instanceof InputError) {
    const code = err instanceof ConfigError || err instanceof InputError ? EXIT.usage : err instanceof StoreError ? EXIT.store : err.code;
    process.stderr.write(mask.text(`considerate-callback: ${err.message}\n`));
    process.exit(code);
  }
  process.stderr.write(mask.text(`considerate-callback: ${(err as Error)?.stack ?? String(err)}\n`));
  process.exit(EXIT.failure);
}

/** Runs a synchronous command body, mapping errors to exit codes. */
export async function run(fn: () => void | Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    fail(err);
  }
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

export { localTime, iso, relative } from '../views/format';

/** Left-aligned columns; the last column may be cut to fit `width`. */
export function table(rows: string[][], width = process.stdout.columns || 0): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((row) => {
      let line = row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
      if (width > 40 && line.length > width) line = `${line.slice(0, width - 1)}…`;
      return line.trimEnd();
    })
    .join('\n');
}

/** The package root (where package.json, dialplan/ and sounds/ are), from src/cli or dist/cli alike. */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'considerate-callback') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '../..');
}
