#!/usr/bin/env node
/**
 * considerate-callback — the command line. `--help` on every command explains it.
 *
 * Exit codes: 0 success · 1 runtime failure · 2 usage or configuration error · 3 store cannot be opened.
 */
import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, loadConfig } from '../config/load';
import { createLogger } from '../log';
import { Service } from '../service';
import { StoreError } from '../store/sqlite';
import type { CallbackRequest } from '../core/policy';
import { SqliteStore } from '../store/sqlite';

export const EXIT = { ok: 0, failure: 1, usage: 2, store: 3 } as const;

interface Common {
  config?: string;
}

function withConfig<T>(y: Argv<T>): Argv<T & Common> {
  return y.option('config', {
    alias: 'c',
    type: 'string',
    describe: 'Configuration file (JSON). Environment variables such as CC_ARI_PASSWORD override it.',
    default: process.env.CC_CONFIG,
  }) as Argv<T & Common>;
}

function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`considerate-callback: ${err.message}\n`);
    process.exit(EXIT.usage);
  }
  if (err instanceof StoreError) {
    process.stderr.write(`considerate-callback: ${err.message}\n`);
    process.exit(EXIT.store);
  }
  process.stderr.write(`considerate-callback: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(EXIT.failure);
}

async function runService(argv: Common & { 'log-level'?: string }): Promise<void> {
  const overrides: Record<string, unknown> = {};
  if (argv['log-level']) overrides['log.level'] = argv['log-level'];
  const config = loadConfig({ file: argv.config, overrides });
  const log = createLogger({ level: config.log.level, format: config.log.format, secrets: [config.ari.password] });
  let service: Service;
  try {
    service = new Service({ config, log });
  } catch (err) {
    log.error('cannot start', { error: (err as Error).message });
    throw err;
  }
  service.start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    service.stop().then(
      () => process.exit(EXIT.ok),
      () => process.exit(EXIT.failure),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('uncaughtException', (err) => log.error('uncaught exception; carrying on', { error: err.message, stack: err.stack }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection; carrying on', { error: String(err) }));
}

function listRequests(argv: Common & { json?: boolean; agent?: string; state?: string[] }): void {
  const config = loadConfig({ file: argv.config, partial: true });
  const store = SqliteStore.open<CallbackRequest>(config.store.path, { readonly: true });
  try {
    const rows = store.list({ agent: argv.agent, states: argv.state });
    if (argv.json) {
      process.stdout.write(
        `${JSON.stringify(
          rows.map((r) => ({
            id: r.id,
            agent: r.agent,
            agentCallerId: r.agentCallerId,
            prospect: r.prospect,
            state: r.state,
            mode: r.mode,
            language: r.language,
            waitingFor: r.waitingFor,
            reason: r.reason,
            outcome: r.outcome,
            attempts: r.attempts,
            snoozes: r.snoozes,
            createdAt: new Date(r.createdAt).toISOString(),
            updatedAt: new Date(r.updatedAt).toISOString(),
            wakeAt: r.wakeAt === null ? null : new Date(r.wakeAt).toISOString(),
            expiresAt: new Date(r.expiresAt).toISOString(),
          })),
          null,
          2,
        )}\n`,
      );
      return;
    }
    if (rows.length === 0) {
      process.stdout.write('No callback requests.\n');
      return;
    }
    const table = [['ID', 'AGENT', 'PROSPECT', 'STATE', 'CREATED', 'NEXT WAKE-UP', 'WHY']].concat(
      rows.map((r) => [
        r.id,
        r.agent,
        r.prospect,
        r.state,
        new Date(r.createdAt).toISOString().replace('T', ' ').slice(0, 19),
        r.wakeAt === null ? '-' : new Date(r.wakeAt).toISOString().replace('T', ' ').slice(0, 19),
        r.reason,
      ]),
    );
    const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
    for (const row of table) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
  } finally {
    store.close();
  }
}

export function buildCli(args: string[]): Argv {
  return yargs(args)
    .scriptName('considerate-callback')
    .usage('$0 <command> [options]\n\nA considerate "callback when busy" for Asterisk: the agent opts in with # at the busy signal,\nthe prospect gets a grace period, and the agent is rung first, clearly labelled.')
    .command(
      'run',
      'Run the service: attach to Asterisk over ARI and handle busy calls and callbacks.',
      (y) =>
        withConfig(y)
          .option('log-level', { type: 'string', choices: ['error', 'warn', 'info', 'debug'], describe: 'Override log.level' })
          .example('$0 run --config /etc/considerate-callback.json', 'Start with a config file')
          .example('CC_ARI_PASSWORD=secret $0 run -c cc.json', 'Keep the ARI password out of the file'),
      (argv) => runService(argv).catch(fail),
    )
    .command(
      'list',
      'List callback requests (readable table, or JSON with --json).',
      (y) =>
        withConfig(y)
          .option('json', { type: 'boolean', describe: 'Print a JSON array (id, agent, prospect, state, createdAt, …)' })
          .option('agent', { type: 'string', describe: 'Only this agent device, e.g. PJSIP/1001' })
          .option('state', { type: 'array', string: true, describe: 'Only these states, e.g. --state WAITING GRACE' })
          .example('$0 list --json -c cc.json', 'All requests as JSON')
          .example('$0 list --agent PJSIP/1001 --state WAITING', 'What agent 1001 is waiting for'),
      (argv) => {
        try {
          listRequests(argv as Common & { json?: boolean; agent?: string; state?: string[] });
        } catch (err) {
          fail(err);
        }
      },
    )
    .demandCommand(1, 'Name a command; see --help.')
    .strict()
    .recommendCommands()
    .epilogue(
      'Exit codes: 0 ok · 1 runtime failure · 2 usage or configuration error · 3 the store cannot be opened.\nEnvironment: CC_CONFIG, CC_ARI_URL, CC_ARI_USERNAME, CC_ARI_PASSWORD, CC_STORE_PATH, CC_LOG_LEVEL, CC_LOG_FORMAT.',
    )
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100));
}

if (require.main === module) {
  void buildCli(hideBin(process.argv)).fail((msg, err, y) => {
    if (err) fail(err);
    process.stderr.write(`${y.help().toString?.() ?? ''}\n${msg}\n`);
    process.exit(EXIT.usage);
  }).parseAsync();
}
