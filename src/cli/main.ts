#!/usr/bin/env node
/**
 * considerate-callback — the command line. `--help` on every command explains it.
 *
 * Exit codes: 0 ok · 1 runtime failure · 2 usage or configuration error · 3 store cannot be opened · 4 not found.
 */
import { ENV_VARS as CONFIG_ENV_VARS } from '../config/schema';
import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { pauseCommands } from './pause-cmd';
import { Config, loadConfig } from '../config/load';
import { createLogger } from '../logging/log';
import { emit } from '../logging/events';
import { securityRefusals, securityWarnings } from '../config/security';
import { Service } from '../app/service';
import { CliError, EXIT, EXIT_CODES_TEXT, GlobalArgs, fail, loadOptions, withGlobals } from './common';
import { configCommands } from './config-cmd';
import { dialplanCommand } from './dialplan';
import { explainCommand } from './explain-cmd';
import { maintenanceCommands } from './maintenance';

/** Every environment variable the configuration reads, from the schema (so the help never goes stale). */
const ENV_VARS = CONFIG_ENV_VARS.join(', ');
import { requestCommands } from './requests';

export { EXIT } from './common';

async function runService(argv: GlobalArgs): Promise<void> {
  const config = loadConfig(loadOptions(argv));
  const log = createLogger({ level: config.log.level, format: config.log.format, secrets: runSecrets(config) });
  for (const warning of securityWarnings(config)) emit(log, 'warn', 'security.warning', `configuration leaves something open: ${warning}`, { warning, refused: false });
  const refusals = securityRefusals(config);
  for (const warning of refusals) emit(log, 'error', 'security.warning', `not starting: ${warning}`, { warning, refused: true });
  if (refusals.length > 0) throw new CliError(`not starting: ${refusals.join('; ')} (set http.allowOpen=true to start anyway; see \`config check\`)`, EXIT.usage);
  let service: Service;
  try {
    // An instance that loses its PostgreSQL lease stops acting at once and stands by in the process.
    service = await Service.open({ config, log });
  } catch (err) {
    log.error('cannot start', { error: (err as Error).message });
    throw err;
  }
  service.start();
  try {
    await service.startAgi();
  } catch (err) {
    log.error('cannot start the FastAGI server (agi.bind / agi.port)', { error: (err as Error).message });
    await service.stop().catch(() => undefined);
    throw new CliError(`FastAGI server: ${(err as Error).message}`, EXIT.failure);
  }
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

/** Values no log line may contain: the ARI password, the webhook secret, credentials in the webhook URL. */
export function runSecrets(config: Config): string[] {
  const secrets = [config.ari.password, config.webhook.secret, config.http.token];
  try {
    const u = config.webhook.url ? new URL(config.webhook.url) : undefined;
    if (u?.password) secrets.push(decodeURIComponent(u.password));
  } catch {
    // validated by the loader
  }
  return secrets.filter((s) => s !== '');
}

export function buildCli(args: string[]): Argv {
  let y = withGlobals(yargs(args))
    .scriptName('considerate-callback')
    .usage(
      '$0 <command> [options]\n\nA considerate "callback when busy" for Asterisk: the agent opts in with # at the busy signal,\n' +
        'the prospect gets a grace period, and the agent is rung first, clearly labelled.',
    )
    .command(
      'run',
      'Run the service: attach to Asterisk over ARI and handle busy calls and callbacks.',
      (c) =>
        c
          .example('$0 run --config /etc/considerate-callback.yaml', 'Start with a config file')
          .example('CC_ARI_PASSWORD=secret $0 run -c cc.json', 'Keep the ARI password out of the file')
          .example('$0 run -c cc.json --log-level debug --set policy.grace=10m', 'Override keys for this run')
          .epilogue(
            'Stops cleanly on SIGINT/SIGTERM. Exit code 2 when the configuration is wrong, 3 when the SQLite store cannot be opened; ' +
              'a PostgreSQL store or ARI that cannot be reached is waited for (readiness false); an instance that loses the PostgreSQL lease stands by until it can take it again.',
          ),
      (argv) => runService(argv as GlobalArgs).catch(fail),
    ) as Argv;
  y = requestCommands(y);
  y = pauseCommands(y);
  y = configCommands(y);
  y = explainCommand(y);
  y = dialplanCommand(y);
  y = maintenanceCommands(y);
  return y
    .example('$0 list --pending', 'What is waiting')
    .example('$0 show <id>', "A request's timeline")
    .example('$0 explain --busy-until 10:40 --agent-busy 10:44-10:50', 'When would a callback fire?')
    .demandCommand(1, 'Name a command; see --help.')
    .strict()
    .recommendCommands()
    .epilogue(
      `${EXIT_CODES_TEXT}\n` +
        `Configuration: --config FILE (or CC_CONFIG), then environment (${ENV_VARS}), then --set key=value. See \`$0 config keys\`.`,
    )
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(120, process.stdout.columns || 120));
}

if (require.main === module) {
  void buildCli(hideBin(process.argv))
    .fail((msg, err) => {
      if (err) fail(err);
      const command = hideBin(process.argv).filter((a) => !a.startsWith('-')).slice(0, 2).join(' ');
      process.stderr.write(`considerate-callback: ${msg}\nSee: considerate-callback ${command ? `${command} ` : ''}--help\n`);
      process.exit(EXIT.usage);
    })
    .parseAsync();
}
