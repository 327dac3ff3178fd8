/**
 * `pause` and `resume`: "hold my callbacks" for an agent, from the command line. The same durable pause as the
 * agent's feature code (*73) and the callbacks page: one row in the store's `agent_pauses`, validated exactly as
 * the page validates it (src/views/pauses.ts). The running service notices by itself: it re-reads the pauses on
 * every tick and every few seconds (src/engine/pauses.ts `watch`), so the pause lamp follows and a due recall waits.
 */
import type { Argv } from 'yargs';
import { pauseAgent, pauseUntil, MAX_PAUSE_MS } from '../views/pauses';
import { pauseText } from '../views/requests';
import { GlobalArgs, iso, loadPartial, out, printJson, run, withStore } from './common';

interface PauseArgs extends GlobalArgs {
  agent: string;
  until?: string;
  by?: string;
  json?: boolean;
}

function actor(by: string | undefined): string {
  const who = (by ?? '').trim().slice(0, 60);
  return who ? `cli (${who})` : 'cli';
}

export async function pauseCommand(argv: PauseArgs, now = Date.now()): Promise<{ agent: string; paused: true; since: string; until: string | null; by: string }> {
  const agent = pauseAgent(argv.agent);
  const until = pauseUntil(argv.until, now, { durations: true });
  const config = loadPartial(argv);
  const by = actor(argv.by);
  await withStore(config, { write: true }, (store) => store.setPause(agent, { since: now, until, by }));
  const result = { agent, paused: true as const, since: iso(now) as string, until: iso(until), by };
  if (argv.json) printJson(result);
  else {
    out(`Paused: ${pauseText({ agent, since: now, until, by }, config.policy.callingHours.timeZone, now)}`);
    out('Nothing rings this agent for a callback until resumed; due callbacks wait in order. The running service picks this up by itself.');
  }
  return result;
}

export async function resumeCommand(argv: PauseArgs): Promise<{ agent: string; paused: false; wasPaused: boolean }> {
  const agent = pauseAgent(argv.agent);
  const config = loadPartial(argv);
  const wasPaused = await withStore(config, { write: true }, async (store) => {
    const had = (await store.pauses()).some((p) => p.agent === agent);
    await store.setPause(agent, null);
    return had;
  });
  const result = { agent, paused: false as const, wasPaused };
  if (argv.json) printJson(result);
  else out(wasPaused ? `Resumed: ${agent}; due callbacks ring again, the earliest opt-in first. The running service picks this up by itself.` : `${agent} was not paused; nothing to resume.`);
  return result;
}

export function pauseCommands<T>(y: Argv<T>): Argv<T> {
  return y
    .command(
      'pause <agent>',
      '"Hold my callbacks" for an agent: nothing rings them for a callback until resumed (or --until); due callbacks wait in order.',
      (c) =>
        c
          .positional('agent', { type: 'string', describe: 'Agent device, e.g. PJSIP/1001', demandOption: true })
          .option('until', { type: 'string', describe: `End the pause by itself: an ISO time or a duration from now (30m, 2h); at most ${MAX_PAUSE_MS / 3_600_000} hours ahead` })
          .option('by', { type: 'string', describe: 'Who pauses, recorded with the pause ("paused by cli (NAME)")' })
          .option('json', { type: 'boolean', describe: 'Print {agent, paused, since, until, by}' })
          .example('$0 pause PJSIP/1001', 'Until resumed')
          .example('$0 pause PJSIP/1001 --until 45m --by alice', 'For 45 minutes, recording who did it')
          .epilogue('The same pause as the agent\'s *73 and the callbacks page; the lamp *731001 follows. Exit code 2 for a malformed agent or until.'),
      (argv) => run(async () => void (await pauseCommand(argv as unknown as PauseArgs))),
    )
    .command(
      'resume <agent>',
      "End an agent's pause: due callbacks ring again, the earliest opt-in first.",
      (c) =>
        c
          .positional('agent', { type: 'string', describe: 'Agent device, e.g. PJSIP/1001', demandOption: true })
          .option('by', { type: 'string', describe: 'Who resumes (for the record)' })
          .option('json', { type: 'boolean', describe: 'Print {agent, paused, wasPaused}' })
          .example('$0 resume PJSIP/1001', 'Let the callbacks ring again')
          .epilogue('Resuming an agent who is not paused is not an error. Exit code 2 for a malformed agent.'),
      (argv) => run(async () => void (await resumeCommand(argv as unknown as PauseArgs))),
    );
}
