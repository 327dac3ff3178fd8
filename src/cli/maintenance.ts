/**
 * Maintenance commands: `prune` deletes what store.retention no longer keeps, `webhook list`
 * shows the CRM events that were given up on, `webhook retry` puts them back in the queue (the running
 * service picks them up within half a minute).
 */
import type { Argv } from 'yargs';
import { formatDuration, parseDuration } from '../core/policy/duration';
import { CliError, EXIT, GlobalArgs, iso, loadPartial, out, printJson, run, table, withStore } from './common';

interface PruneArgs extends GlobalArgs {
  olderThan?: string;
  dryRun?: boolean;
  json?: boolean;
}

async function prune(argv: PruneArgs): Promise<void> {
  const config = loadPartial(argv);
  let ageMs = config.retentionMs;
  if (argv.olderThan !== undefined) {
    try {
      ageMs = parseDuration(argv.olderThan);
    } catch (err) {
      throw new CliError(`--older-than: ${(err as Error).message}`, EXIT.usage);
    }
  }
  const before = Date.now() - ageMs;
  const result = await withStore(config, { write: !argv.dryRun }, (store) => store.prune(before, { dryRun: argv.dryRun }));
  if (argv.json) return printJson({ dryRun: Boolean(argv.dryRun), before: iso(before), ...result });
  const verb = argv.dryRun ? 'would delete' : 'deleted';
  out(`${verb} ${result.requests} finished request(s) older than ${formatDuration(ageMs)} with ${result.events} history event(s), and ${result.outbox} sent webhook event(s)`);
}

async function webhookList(argv: GlobalArgs & { json?: boolean }): Promise<void> {
  const rows = await withStore(loadPartial(argv), {}, (store) => store.outboxGivenUp());
  if (argv.json) return printJson(rows.map((r) => ({ id: r.id, requestId: r.requestId, event: r.event, attempts: r.attempts, givenUpAt: iso(r.failedAt), lastError: r.lastError })));
  if (rows.length === 0) return out('no webhook events were given up on');
  out(table([['ID', 'REQUEST', 'EVENT', 'ATTEMPTS', 'GIVEN UP', 'LAST ERROR']].concat(rows.map((r) => [String(r.id), r.requestId, r.event, String(r.attempts), iso(r.failedAt) ?? '', r.lastError ?? ''])), 0));
}

async function webhookRetry(argv: GlobalArgs & { ids?: (string | number)[]; all?: boolean; json?: boolean }): Promise<void> {
  const ids = (argv.ids ?? []).map((x) => Number(x));
  if (!argv.all && ids.length === 0) throw new CliError('name the event ids to retry (see `webhook list`), or --all', EXIT.usage);
  if (ids.some((n) => !Number.isInteger(n) || n <= 0)) throw new CliError('event ids are whole numbers (see `webhook list`)', EXIT.usage);
  const done = await withStore(loadPartial(argv), { write: true }, (store) => store.outboxRetry(argv.all ? 'all' : ids, Date.now()));
  const missing = argv.all ? [] : ids.filter((id) => !done.includes(id));
  if (argv.json) printJson({ requeued: done, notGivenUp: missing });
  else out(`re-queued ${done.length} webhook event(s)${done.length ? `: ${done.join(', ')}` : ''}; the running service sends them within 30 s`);
  if (missing.length > 0) {
    if (!argv.json) process.stderr.write(`not given-up events (unknown or already queued/sent): ${missing.join(', ')}\n`);
    process.exitCode = EXIT.notFound;
  }
}

export function maintenanceCommands<T>(y: Argv<T>): Argv<T> {
  return y
    .command(
      'prune',
      'Delete finished requests, their history and sent webhook events older than store.retention.',
      (c) =>
        c
          .option('older-than', { type: 'string', describe: 'Age instead of store.retention, e.g. 30d' })
          .option('dry-run', { type: 'boolean', describe: 'Only count what would be deleted' })
          .option('json', { type: 'boolean', describe: 'Print {dryRun, before, requests, events, outbox}' })
          .example('$0 prune --dry-run', 'How much would go?')
          .epilogue('The running service also prunes every hour. Pending requests and given-up webhook events are never pruned.'),
      (argv) => run(() => prune(argv as unknown as PruneArgs)),
    )
    .command('webhook', 'CRM webhook events that were given up on: list them, send them again.', (c) =>
      c
        .command(
          'list',
          'Webhook events given up on after webhook.retries.',
          (cc) => cc.option('json', { type: 'boolean', describe: 'Print a JSON list' }),
          (argv) => run(() => webhookList(argv as unknown as GlobalArgs & { json?: boolean })),
        )
        .command(
          'retry [ids..]',
          'Queue given-up webhook events again, with a fresh retry budget.',
          (cc) =>
            cc
              .positional('ids', { type: 'string', array: true, describe: 'Event ids from `webhook list`' })
              .option('all', { type: 'boolean', describe: 'Every given-up event' })
              .option('json', { type: 'boolean', describe: 'Print {requeued, notGivenUp}' })
              .example('$0 webhook retry --all', 'After the CRM is back'),
          (argv) => run(() => webhookRetry(argv as unknown as GlobalArgs & { ids?: string[]; all?: boolean; json?: boolean })),
        )
        .demandCommand(1, 'Name a webhook command: list or retry.'),
    ) as unknown as Argv<T>;
}
