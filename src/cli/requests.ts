/**
 * Commands on stored callback requests: list, show, cancel. They work on the SQLite store directly, so
 * they run next to the service (WAL: readers never block it; cancel is a version-guarded transition,
 * exactly like the service's own, and retried when the service changed the request meanwhile).
 */
import type { Argv } from 'yargs';
import {
  CALLBACK_STATES,
  PENDING_STATES,
  RECALL_STATES,
  isTerminal,
  localLabel,
} from '../core/policy';
import { Ledger, guards } from '../ledger';
import { outboxRowsFor } from '../webhook/payload';
import {
  CliError,
  EXIT,
  GlobalArgs,
  RequestStore,
  iso,
  loadPartial,
  localTime,
  out,
  printJson,
  relative,
  run,
  table,
  withStore,
} from './common';
import { headsUpText, pauseText, prospectText, requestJson, showText, toPolicyEvent } from '../views/requests';

/** A request's place in the queue for its prospect number ('1/2': first of two), or '' when alone or finished. */
function queueLabel(queue: readonly { id: string }[], id: string): string {
  const i = queue.findIndex((q) => q.id === id);
  return i < 0 || queue.length < 2 ? '' : `${i + 1}/${queue.length}`;
}

function parseStates(states: string[] | undefined, pending: boolean | undefined): string[] | undefined {
  const wanted = (states ?? []).flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter(Boolean);
  for (const s of wanted) {
    if (!(CALLBACK_STATES as readonly string[]).includes(s)) {
      throw new CliError(`--state ${s}: unknown state; one of ${CALLBACK_STATES.join(', ')}`, EXIT.usage);
    }
  }
  if (pending) wanted.push(...PENDING_STATES, ...RECALL_STATES);
  return wanted.length > 0 ? [...new Set(wanted)] : undefined;
}

interface ListArgs extends GlobalArgs {
  json?: boolean;
  agent?: string;
  state?: string[];
  pending?: boolean;
  limit?: number;
}

async function list(argv: ListArgs): Promise<void> {
  const config = loadPartial(argv);
  const states = parseStates(argv.state, argv.pending);
  const { rows, queues, pauses } = await withStore(config, {}, async (store) => {
    const found = await store.list({ agent: argv.agent, states, limit: argv.limit });
    const byProspect = new Map<string, { id: string; agent: string }[]>();
    for (const p of new Set(found.map((r) => r.prospect))) byProspect.set(p, await store.prospectQueue(p));
    return { rows: found, queues: byProspect, pauses: (await store.pauses()).filter((p) => !argv.agent || p.agent === argv.agent) };
  });
  if (argv.json) {
    return printJson(
      rows.map((r) => {
        const q = queues.get(r.prospect) ?? [];
        const i = q.findIndex((x) => x.id === r.id);
        return { ...requestJson(r), queue: i < 0 ? null : { position: i + 1, of: q.length } };
      }),
    );
  }
  const now = Date.now();
  // Paused agents ("hold my callbacks"): said whether or not they have requests listed.
  const pausedLines = pauses.map((p) => `Paused: ${pauseText(p, rows[0]?.timeZone ?? config.policy.callingHours.timeZone, now)}`);
  if (rows.length === 0) {
    out('No callback requests match.');
    for (const l of pausedLines) out(l);
    return;
  }
  const zones = [...new Set(rows.map((r) => r.timeZone))];
  // The PROFILE column only when a listed request has one (team profiles in use); HEADS-UP when one is foreseen.
  const profiled = rows.some((r) => r.profile);
  const headsUps = new Map(rows.map((r) => [r.id, headsUpText(r, now)]));
  const announced = [...headsUps.values()].some(Boolean);
  const body = [['ID', 'AGENT', 'PROSPECT', ...(profiled ? ['PROFILE'] : []), 'QUEUE', 'STATE', 'CREATED', 'NEXT WAKE-UP', ...(announced ? ['HEADS-UP'] : []), 'WHY']].concat(
    rows.map((r) => [
      r.id,
      r.agent,
      prospectText(r),
      ...(profiled ? [r.profile ?? '-'] : []),
      queueLabel(queues.get(r.prospect) ?? [], r.id) || '-',
      r.state,
      localLabelPast(r.timeZone, r.createdAt, now),
      r.wakeAt === null ? '-' : `${localLabel(r.timeZone, r.wakeAt, now)} (${relative(r.wakeAt, now)})`,
      ...(announced ? [headsUps.get(r.id) ?? '-'] : []),
      r.reason,
    ]),
  );
  out(table(body));
  for (const l of pausedLines) out(l);
  const pending = rows.filter((r) => !isTerminal(r.state)).length;
  out(`${rows.length} request${rows.length === 1 ? '' : 's'}, ${pending} pending · local times in ${zones.join(', ')} · details: considerate-callback show <id>`);
}

/** localLabel for past instants: 'HH:mm' today, else the date. */
function localLabelPast(timeZone: string, at: number, now: number): string {
  return localTime(timeZone, at, 'yyyy-MM-dd') === localTime(timeZone, now, 'yyyy-MM-dd') ? localTime(timeZone, at, 'HH:mm:ss') : localTime(timeZone, at, 'yyyy-MM-dd HH:mm');
}

function notFound(id: string): CliError {
  return new CliError(`no callback request with id ${id} (see: considerate-callback list)`, EXIT.notFound);
}

async function getOrNotFound(store: RequestStore, id: string) {
  const found = await store.get(id);
  if (!found) throw notFound(id);
  return found;
}

interface ShowArgs extends GlobalArgs {
  id: string;
  json?: boolean;
}

async function show(argv: ShowArgs): Promise<void> {
  const config = loadPartial(argv);
  const { request: r, events, queue, pause } = await withStore(config, {}, async (store) => {
    const request = (await getOrNotFound(store, argv.id)).request;
    const paused = (await store.pauses()).find((p) => p.agent === request.agent) ?? null;
    return { request, events: await store.events(argv.id), queue: await store.prospectQueue(request.prospect), pause: paused };
  });
  const now = Date.now();
  const policyEvents = events.map(toPolicyEvent);
  if (argv.json) {
    return printJson({
      request: requestJson(r),
      timeZone: r.timeZone,
      queue: queue.map((q, i) => ({ position: i + 1, id: q.id, agent: q.agent, state: q.state, createdAt: iso(q.createdAt) })),
      next: r.wakeAt === null ? null : { wakeAt: iso(r.wakeAt), local: localTime(r.timeZone, r.wakeAt), waitingFor: r.waitingFor, reason: r.reason },
      events: events.map((e) => ({
        at: iso(e.at),
        local: localTime(r.timeZone, e.at),
        type: e.type,
        from: e.from ?? null,
        to: e.to ?? null,
        reason: e.reason ?? '',
        wakeAt: iso(toPolicyEvent(e).wakeAt),
        waitingFor: toPolicyEvent(e).waitingFor,
        data: e.data ?? null,
      })),
    });
  }
  out(showText(r, policyEvents, now, queue, pause));
}

interface CancelArgs extends GlobalArgs {
  id?: string;
  agent?: string;
  prospect?: string;
  force?: boolean;
  by?: string;
  json?: boolean;
  'dry-run'?: boolean;
}

interface CancelOutcome {
  id: string;
  agent: string;
  prospect: string;
  from: string;
  state: string;
  cancelled: boolean;
  reason: string;
  note?: string;
}

const RINGING_NOTE =
  "the agent's phone is being rung for this callback right now; the command line cannot hang it up. The ring ends on its own (or the agent hangs up), and pressing 1 will no longer dial the prospect.";

/**
 * Cancels one request through the ledger (src/ledger.ts), exactly as the service applies its own decisions:
 * the policy decides, history and outbox rows are written with the request in one version-guarded
 * transaction, and the whole is read and decided afresh when the service changed the request meanwhile.
 */
export async function cancelOne(
  store: RequestStore,
  id: string,
  by: string,
  opts: { force?: boolean; dryRun?: boolean; now: number; cfg: ReturnType<typeof loadPartial>['policy']; outbox?: typeof outboxRowsFor },
): Promise<CancelOutcome> {
  const ledger = new Ledger({ store, policy: opts.cfg, clock: () => opts.now, outbox: opts.outbox });
  const r = await ledger.apply(
    id,
    { type: 'cancel', by },
    {
      dryRun: opts.dryRun,
      maxTries: 10,
      guard: opts.force
        ? guards.notFinished('cancel')
        : guards.all(guards.notFinished('cancel'), guards.notDialling('cancel', ', so the call may connect; use --force to mark it cancelled anyway')),
    },
  );
  switch (r.status) {
    case 'not-found':
      throw notFound(id);
    case 'conflict':
    case 'stale':
      throw new CliError(`could not cancel ${id}: the request kept changing (is the service busy with it?); try again`, EXIT.failure);
    default:
      break;
  }
  const before = r.before;
  const base = { id, agent: before.agent, prospect: before.prospect, from: before.state };
  switch (r.status) {
    case 'refused':
    case 'unchanged':
      return { ...base, state: before.state, cancelled: false, reason: before.reason, ...(r.status === 'refused' ? { note: r.reason } : {}) };
    case 'dry-run':
      return { ...base, state: r.decision.request.state, cancelled: false, reason: r.decision.request.reason, note: 'dry run: would be cancelled' };
    case 'applied': {
      // The `cancelled` notification for the CRM webhook was queued in the same transaction; the service sends it.
      const note = (RECALL_STATES as readonly string[]).includes(before.state) ? RINGING_NOTE : undefined;
      return { ...base, state: r.decision.request.state, cancelled: true, reason: r.decision.request.reason, ...(note ? { note } : {}) };
    }
  }
}

async function cancel(argv: CancelArgs): Promise<void> {
  if (!argv.id && !argv.agent) throw new CliError('cancel: name a request id or --agent (see --help)', EXIT.usage);
  if (argv.id && (argv.agent || argv.prospect)) throw new CliError('cancel: give either a request id or --agent/--prospect, not both', EXIT.usage);
  const config = loadPartial(argv);
  const by = argv.by ? `cli (${argv.by})` : 'cli';
  const results = await withStore(config, { write: !argv['dry-run'] }, async (store) => {
    const now = Date.now();
    const ids = argv.id
      ? [argv.id]
      : (await store.list({ agent: argv.agent, states: [...PENDING_STATES, ...RECALL_STATES] }))
          .filter((r) => !argv.prospect || r.prospect === argv.prospect)
          .map((r) => r.id);
    const outbox = config.webhook.url ? outboxRowsFor : undefined;
    const done: CancelOutcome[] = [];
    for (const id of ids) done.push(await cancelOne(store, id, by, { force: argv.force, dryRun: argv['dry-run'], now, cfg: config.policy, outbox }));
    return done;
  });
  if (argv.json) return printJson(results);
  if (results.length === 0) {
    return out(`No pending callbacks for ${argv.agent}${argv.prospect ? ` → ${argv.prospect}` : ''}; nothing cancelled.`);
  }
  for (const r of results) {
    const head = r.cancelled ? `Cancelled ${r.id}` : `Not cancelled ${r.id}`;
    out(`${head}: ${r.agent} → ${r.prospect} (was ${r.from})${r.cancelled ? ` — ${r.reason}` : ''}`);
    if (r.note) out(`  ${r.note}`);
  }
  const n = results.filter((r) => r.cancelled).length;
  if (results.length > 1) out(`${n} of ${results.length} cancelled.`);
  if (n > 0) out('The running service picks this up by itself; no restart needed.');
}

export function requestCommands<T>(y: Argv<T>): Argv<T> {
  return y
    .command(
      'list',
      'List callback requests: a readable table, or JSON with --json.',
      (c) =>
        c
          .option('json', { type: 'boolean', describe: 'Print a JSON array (id, agent, prospect, state, createdAt, wakeAt, reason, …)' })
          .option('agent', { type: 'string', describe: 'Only this agent device, e.g. PJSIP/1001' })
          .option('state', {
            type: 'string',
            array: true,
            describe: `Only these states (${CALLBACK_STATES.join(', ')}), e.g. --state WAITING GRACE`,
          })
          .option('pending', { type: 'boolean', describe: `Only requests that are not finished (${[...PENDING_STATES, ...RECALL_STATES].join(', ')})` })
          .option('limit', { type: 'number', describe: 'At most this many, oldest first' })
          .example('$0 list -c cc.yaml', 'Every request, oldest first')
          .example('$0 list --agent PJSIP/1001 --pending', 'What agent 1001 is still waiting for')
          .example('$0 list --state WAITING GRACE --json', 'As JSON, for scripts'),
      (argv) => run(() => list(argv as unknown as ListArgs)),
    )
    .command(
      'show <id>',
      "One request's timeline: every event with its local time and reason, and the next wake-up and why.",
      (c) =>
        c
          .positional('id', { type: 'string', describe: 'Request id (from list)', demandOption: true })
          .option('json', { type: 'boolean', describe: 'Print {request, timeZone, next, events[]} as JSON' })
          .example('$0 show 3f9a0c12de -c cc.yaml', 'Why is this callback waiting, and until when?')
          .epilogue('Exit code 4 when there is no request with that id.'),
      (argv) => run(() => show(argv as unknown as ShowArgs)),
    )
    .command(
      'cancel [id]',
      'Cancel a pending callback by id, or all pending callbacks of an agent.',
      (c) =>
        c
          .positional('id', { type: 'string', describe: 'Request id (from list)' })
          .option('agent', { type: 'string', describe: 'Cancel every pending callback of this agent device, e.g. PJSIP/1001' })
          .option('prospect', { type: 'string', describe: 'With --agent: only callbacks to this number' })
          .option('force', { type: 'boolean', describe: 'Also mark a request cancelled while its prospect is being dialled' })
          .option('by', { type: 'string', describe: 'Who cancels, recorded in the history ("cancelled by cli (NAME)")' })
          .option('dry-run', { type: 'boolean', describe: 'Say what would be cancelled, change nothing' })
          .option('json', { type: 'boolean', describe: 'Print [{id, agent, prospect, from, state, cancelled, reason, note}]' })
          .example('$0 cancel 3f9a0c12de', 'Cancel one request')
          .example('$0 cancel --agent PJSIP/1001', 'Cancel all pending callbacks of agent 1001')
          .example('$0 cancel --agent PJSIP/1001 --prospect 2001 --by alice', 'Only the one to 2001, recording who did it')
          .epilogue(
            'Safe while the service runs: each cancel is a version-guarded write, retried if the service changed the request ' +
              'meanwhile. A callback whose agent is being rung at that moment is cancelled, but the command line cannot hang ' +
              'up that ring; one whose prospect is being dialled is left alone unless --force. ' +
              'Exit code 4 when there is no request with that id; cancelling nothing for --agent is not an error.',
          ),
      (argv) => run(() => cancel(argv as unknown as CancelArgs)),
    );
}
