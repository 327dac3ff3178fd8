/**
 * `explain`: the dry run of the policy on a made-up timeline (the read model is src/views/explain.ts, shared with
 * the web page's explain view); this file is the command: flags, the prospect's zone lookup, printing.
 */
import type { Argv } from 'yargs';
import type { ZoneChoice } from '../core/zones';
import { ProspectZones, zoneRules } from '../zones/prospect-zones';
import { explainScenario, scenarioFrom, type ScenarioArgs } from '../views/explain';
import { CliError, EXIT, GlobalArgs, loadPartial, out, printJson, run } from './common';
import { describeSnapshot, resolveProfile } from '../core/policy';

export interface ExplainArgs extends GlobalArgs, ScenarioArgs {
  json?: boolean;
  profile?: string;
}

async function explainAsync(argv: ExplainArgs): Promise<void> {
  const config = loadPartial(argv);
  const prospect = argv.prospect ?? '2001';
  const choice = /^\+?\d+$/.test(prospect) ? await new ProspectZones(zoneRules(config)).resolve(prospect) : undefined;
  run(() => explain(argv, choice));
}

function explain(argv: ExplainArgs, choice?: ZoneChoice): void {
  const config = loadPartial(argv);
  // A team profile's policy over the configured one, as a call naming it gets (an unknown name is an error here).
  const resolved = resolveProfile(config.policy, config.profiles, argv.profile);
  if (resolved.problem) throw new CliError(`--profile: ${resolved.problem.replace(/: the default policy applies$/, '')}`, EXIT.usage);
  const policy = resolved.policy;
  const zone = choice?.timeZone ?? policy.callingHours.timeZone;
  const s = { ...scenarioFrom(argv, zone, Date.now()), timeZone: zone };
  const report = explainScenario(s, policy, config.numbers, choice);
  if (argv.json) return printJson({ ...report.json, profile: resolved.profile });
  if (resolved.profile) out(`Profile: ${resolved.profile} (${describeSnapshot(resolved.snapshot)})`);
  for (const line of report.lines) out(line);
}

export function explainCommand<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'explain',
    'Dry-run the policy on a made-up timeline: when would the callback fire, and why? No PBX needed.',
    (c) =>
      c
        .option('timeline', {
          type: 'string',
          describe: 'The story in words: "busy at 10:00, free at 10:40, agent busy 10:44-10:50" (flags below add to it)',
        })
        .option('at', { type: 'string', describe: 'Opt-in time: the agent hit the busy line and pressed # [10:00]' })
        .option('busy-until', { type: 'string', describe: "When the prospect's line frees (omit: it stays busy)" })
        .option('busy-again', { type: 'string', array: true, describe: "The prospect's line is busy again, e.g. 10:42-10:43 (repeatable)" })
        .option('agent-busy', { type: 'string', array: true, describe: 'The agent is on another call, e.g. 10:44-10:50 (repeatable)' })
        .option('external', { type: 'boolean', describe: 'An external number: no line state, timed probes and back-off' })
        .option('keys', {
          type: 'string',
          array: true,
          describe: 'What the agent does on each ring: 1 connect, 2 snooze, 3 cancel, none (no key), no-answer [1]',
        })
        .option('date', { type: 'string', describe: 'Local date YYYY-MM-DD in callingHours.timeZone [today]' })
        .option('prospect', { type: 'string', describe: "The prospect's number [2001]" })
        .option('agent', { type: 'string', describe: "The agent's device [PJSIP/1001]" })
        .option('json', { type: 'boolean', describe: 'Print {scenario, firstRingAt, rings, state, outcome, timeline[]} as JSON' })
        .option('profile', { type: 'string', describe: 'A team profile (config `profiles`): the policy a call with CC_PROFILE=<name> gets' })
        .example('$0 explain --at 10:00 --busy-until 10:40 --agent-busy 10:44-10:50', 'Grace, then the agent is busy: when is the agent rung?')
        .example('$0 explain --timeline "busy at 10:00, free at 10:40, agent busy 10:44–10:50"', 'The same, in words')
        .example('$0 explain --external --at 17:30 --busy-until 17:45 --date 2026-03-13', 'An external number, late on a Friday')
        .example('$0 explain -c cc.yaml --set policy.grace=10m --busy-until 10:40 --keys 2 1', 'Your config, a longer grace, the agent snoozes once')
        .epilogue(
          'Times are local to callingHours.timeZone on --date (DST-correct). Unless --keys says otherwise, the agent answers ' +
            'and presses 1 at once and the prospect answers, unless the scenario has their line busy at that moment.',
        ),
    (argv) => explainAsync(argv as unknown as ExplainArgs).catch((err: unknown) => run(() => {
      throw err;
    })),
  );
}
