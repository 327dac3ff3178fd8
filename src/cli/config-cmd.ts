/**
 * `config check` (validate and print the effective configuration, secrets masked) and `config keys`
 * (every key with its default, environment variable and meaning; --markdown writes the rows of docs/configuration.md).
 */
import type { Argv } from 'yargs';
import { ConfigEntry, ConfigError, resolveConfig } from '../config/load';
import { Field, markdownTable, schema, secretsFromEnv } from '../config/schema';
import { maskSecrets, masker } from '../logging/mask';
import { securityRefusals, securityWarnings } from '../config/security';
import { EXIT, GlobalArgs, loadOptions, out, printJson, run, table } from './common';

/** Nested `{section: {key: value}}` in the file's own notation (durations as written), secrets masked. */
function nested(entries: readonly ConfigEntry[]): Record<string, Record<string, unknown>> {
  const tree: Record<string, Record<string, unknown>> = {};
  for (const e of entries) {
    if (e.source === 'unset') continue;
    const [section, ...rest] = e.key.split('.');
    (tree[section] ??= {})[rest.join('.')] = e.value;
  }
  return maskSecrets(tree);
}

interface CheckArgs extends GlobalArgs {
  json?: boolean;
  changed?: boolean;
}

function check(argv: CheckArgs): void {
  const env = process.env;
  const secrets = secretsFromEnv(env);
  const scrub = (text: string, known: readonly string[]) => masker(known).text(text);
  let resolved: ReturnType<typeof resolveConfig>;
  try {
    resolved = resolveConfig(loadOptions(argv));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problems = err.problems.map((p) => scrub(p, secrets));
    if (argv.json) printJson({ ok: false, file: argv.config ?? null, problems });
    process.stderr.write(scrub(`considerate-callback: configuration has ${problems.length} problem${problems.length === 1 ? '' : 's'} (${err.source}):\n  - ${problems.join('\n  - ')}\n`, secrets));
    process.exit(EXIT.usage);
  }
  secrets.push(resolved.config.ari.password);
  const entries = resolved.entries.filter((e) => !argv.changed || e.source !== 'default');
  const warnings = securityWarnings(resolved.config);
  const refusals = securityRefusals(resolved.config);
  if (argv.json) {
    const sources = Object.fromEntries(entries.map((e) => [e.key, e.source]));
    out(scrub(JSON.stringify({ ok: refusals.length === 0, file: argv.config ?? null, config: nested(entries), sources, warnings, refusals }, null, 2), secrets));
    if (refusals.length > 0) process.exit(EXIT.usage);
    return;
  }
  const rows = [['KEY', 'VALUE', 'FROM']].concat(
    entries.map((e) => [e.key, e.source === 'unset' ? '(unset)' : JSON.stringify(maskSecrets({ [e.key]: e.value })[e.key]), e.source]),
  );
  const lines = [
    `Configuration OK${argv.config ? ` (${argv.config})` : ' (no file: defaults and environment)'}. Effective values, secrets masked:`,
    table(rows, 0),
    'Precedence: --set and --log-level > environment > file > default.',
    ...warnings.map((w) => `warning: ${w}`),
    ...refusals.map((r) => `refused: ${r} — \`run\` does not start with this (set http.allowOpen=true to start anyway)`),
  ];
  out(scrub(lines.join('\n'), secrets));
  if (refusals.length > 0) process.exit(EXIT.usage);
}

function keys(argv: { markdown?: boolean; json?: boolean }): void {
  const fields = Object.entries(schema as Record<string, Field>);
  if (argv.json) {
    return printJson(fields.map(([key, f]) => ({ key, type: f.type, default: f.default ?? null, required: f.default === undefined, env: f.env ?? null, doc: f.doc })));
  }
  if (argv.markdown) {
    out(markdownTable());
    return;
  }
  const rows = [['KEY', 'TYPE', 'DEFAULT', 'ENVIRONMENT']].concat(
    fields.map(([key, f]) => [key, f.type === 'json' ? 'JSON' : f.type, f.default === undefined ? '(required)' : JSON.stringify(f.default), f.env ?? '']),
  );
  out(table(rows));
}

export function configCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('config', 'Check the configuration, or list every key it knows.', (c) =>
    c
      .command(
        'check',
        'Validate the configuration and print the effective values (secrets masked) and where each came from.',
        (cc) =>
          cc
            .option('json', { type: 'boolean', describe: 'Print {ok, file, config, sources} (or {ok: false, problems}) as JSON' })
            .option('changed', { type: 'boolean', describe: 'Only keys set by the file, the environment or flags' })
            .example('$0 config check -c /etc/considerate-callback.yaml', 'Is the file right? Exit 0 if so, 2 with the problems if not')
            .example('CC_ARI_PASSWORD=secret $0 config check -c cc.json --set policy.grace=10m', 'With the environment and a flag on top')
            .epilogue('Every problem names the key and what is expected. Secrets (ari.password and any key of type secret) are never printed.'),
        (argv) => run(() => check(argv as unknown as CheckArgs)),
      )
      .command(
        'keys',
        'Every configuration key with its type, default and environment variable.',
        (cc) =>
          cc
            .option('markdown', { type: 'boolean', describe: "Print the configuration table's rows (docs/configuration.md)" })
            .option('json', { type: 'boolean', describe: 'Print [{key, type, default, required, env, doc}]' })
            .example('$0 config keys', 'What can be configured'),
        (argv) => run(() => keys(argv)),
      )
      .demandCommand(1, 'Name a config command: check or keys.'),
  );
}
