/**
 * The dry run of the policy (the `explain` command and the page's explain view). A made-up timeline ("busy at 10:00, free at 10:40, agent busy
 * 10:44–10:50") is fed to the pure core with a fake clock, the way the engine would feed it: the opt-in
 * (`newRequest`), the prospect's line (`prospectState`), the agent's status, a tick at every `wakeAt`,
 * and the recall's outcome (by default the agent presses 1 and the prospect answers). No PBX, no store.
 */
import { scheduled as schedulerSays } from '../core/scheduler';
import {
  AgentKey,
  AgentStatus,
  CallbackRequest,
  Decision,
  Observation,
  PolicyConfig,
  PolicyEvent,
  formatDuration,
  isTerminal,
  localIsoDate,
  zonedWallTime,
  decide,
  newRequest,
  offerPromise,
  recallCallerId,
} from '../core/policy';
import { InputError } from './errors';
import { localTime } from './format';
import { NumberRules, defaultNumberRules, validateProspectNumber } from '../core/validate';
import type { ZoneChoice } from '../core/zones';

export type RecallChoice = AgentKey | 'no-answer';

export interface Scenario {
  /** Local date YYYY-MM-DD in the calling-hours zone. */
  date: string;
  /** The opt-in: the agent hit the busy line and pressed #. HH:MM[:SS]. */
  at: string;
  /** The prospect's line frees at this time (undefined: it stays busy). */
  busyUntil?: string;
  /** Later busy spells of the prospect's line: [from, to?]. */
  busyAgain: Array<[string, string | undefined]>;
  /** The agent's other calls: [from, to]. */
  agentBusy: Array<[string, string]>;
  /** External number: no line state, timed probes; a dial during a busy spell finds the line busy. */
  external: boolean;
  /** What the agent does on the 1st, 2nd, … ring (default: presses 1 every time). */
  keys: RecallChoice[];
  prospect: string;
  agent: string;
  /** The prospect's time zone (from the number, an override or the configured zone); default callingHours.timeZone. */
  timeZone?: string;
}

export interface TimelineEntry {
  at: number;
  kind: 'input' | 'event';
  type: string;
  from?: string | null;
  to?: string;
  text: string;
}

export interface SimulationResult {
  request: CallbackRequest;
  timeline: TimelineEntry[];
  /** When the agent's phone rings for the first time (the callback "fires"), or null. */
  firstRingAt: number | null;
  rings: number[];
  truncated: boolean;
}

const TIME_RE = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/;

/** "10:44" on the scenario's date in the zone → epoch ms (DST-correct). */
export function wallTime(timeZone: string, date: string, time: string, what: string): number {
  const t = TIME_RE.exec(time.trim());
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!d) throw new InputError(`--date ${date}: expected YYYY-MM-DD`);
  if (!t || Number(t[1]) > 24 || Number(t[2]) > 59 || Number(t[3] ?? 0) > 59) {
    throw new InputError(`${what} ${JSON.stringify(time)}: expected a time such as 10:40 or 10:40:30`);
  }
  const base = zonedWallTime(timeZone, Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(t[1]) * 60 + Number(t[2]));
  return base + Number(t[3] ?? 0) * 1000;
}

const T = String.raw`(\d{1,2}:\d{2}(?::\d{2})?)`;
const RANGE = String.raw`${T}\s*(?:-|–|—|to|until)\s*${T}`;
const KEYS: Record<string, RecallChoice> = { '1': '1', '2': '2', '3': '3', nothing: 'none', none: 'none' };

/**
 * Reads a timeline such as "busy at 10:00, free at 10:40, agent busy 10:44–10:50" into the scenario.
 * Phrases are separated by commas, semicolons or "then"; an unknown phrase is a usage error that names it.
 */
export function parseTimeline(text: string, into: Partial<Scenario>): void {
  const phrases = text
    .split(/[,;]|\bthen\b/i)
    .map((p) => p.trim().toLowerCase().replace(/^and\s+/, '').replace(/\s+/g, ' '))
    .filter(Boolean);
  let m: RegExpExecArray | null;
  for (const p of phrases) {
    const x = (re: string) => (m = new RegExp(`^${re}$`).exec(p));
    if (x(String.raw`(?:on |date )?(\d{4}-\d{2}-\d{2})`)) into.date = m![1];
    else if (x(String.raw`external(?: number| prospect)?`)) into.external = true;
    else if (x(String.raw`(?:prospect |line |the line |prospect's line )?busy again (?:at |from )?${RANGE}`)) (into.busyAgain ??= []).push([m![1], m![2]]);
    else if (x(String.raw`(?:prospect |line |the line |prospect's line )?busy again (?:at |from )?${T}`)) (into.busyAgain ??= []).push([m![1], undefined]);
    else if (x(String.raw`(?:prospect |line |the line |prospect's line )?busy (?:at |from |since )?${RANGE}`)) {
      into.at = m![1];
      into.busyUntil = m![2];
    } else if (x(String.raw`(?:prospect |line |the line |prospect's line )?busy (?:at |from |since )?${T}`)) into.at = m![1];
    else if (x(String.raw`(?:opt-in|opt in|opted in|# pressed|pressed #|#) (?:at )?${T}`)) into.at = m![1];
    else if (x(String.raw`(?:prospect |line |the line |prospect's line )?(?:is |becomes |goes )?(?:free|frees|hangs up) (?:again )?(?:at )?${T}`)) {
      const open = (into.busyAgain ?? []).find((b) => b[1] === undefined);
      if (open) open[1] = m![1];
      else into.busyUntil = m![1];
    } else if (x(String.raw`agent (?:busy|on a call|on the phone) (?:from )?${RANGE}`)) (into.agentBusy ??= []).push([m![1], m![2]]);
    else if (x(String.raw`agent (?:presses|press|keys) (1|2|3|nothing|none)`)) (into.keys ??= []).push(KEYS[m![1]]);
    else if (x(String.raw`agent (?:does not|doesn't|did not) answer`)) (into.keys ??= []).push('no-answer');
    else {
      throw new InputError(
        `--timeline: cannot read "${p}". Phrases: "busy at 10:00", "free at 10:40", "busy again 10:42-10:43", ` +
          '"agent busy 10:44-10:50", "agent presses 2", "agent does not answer", "external", "on 2026-03-10"');
    }
  }
}

interface Input {
  at: number;
  order: number;
  text: string;
  apply: () => Observation | 'agent' | null;
}

/** Runs the scenario through the pure policy with a fake clock. */
export function simulate(s: Scenario, cfg: PolicyConfig, maxSteps = 10_000): SimulationResult {
  const zone = s.timeZone ?? cfg.callingHours.timeZone;
  const at = (time: string, what: string) => wallTime(zone, s.date, time, what);
  const start = at(s.at, '--at');
  const timeline: TimelineEntry[] = [];
  const device = !s.external;
  let agent: AgentStatus = { busy: false, since: start };
  const busySpells: Array<[number, number]> = [];
  const inputs: Input[] = [];
  let order = 0;
  const add = (t: number, text: string, apply: Input['apply']) => inputs.push({ at: t, order: order++, text, apply });

  if (s.busyUntil !== undefined) {
    const free = at(s.busyUntil, '--busy-until');
    if (free < start) throw new InputError(`--busy-until ${s.busyUntil} is before the opt-in at ${s.at}`);
    busySpells.push([start, free]);
    if (device) add(free, "prospect's line is free", () => ({ type: 'prospectState', busy: false }));
  } else {
    busySpells.push([start, device ? Infinity : start]);
  }
  for (const [from, to] of s.busyAgain) {
    const a = at(from, '--busy-again');
    const b = to === undefined ? Infinity : at(to, '--busy-again');
    if (b < a) throw new InputError(`--busy-again ${from}-${to}: ends before it starts`);
    busySpells.push([a, b]);
    if (device) {
      add(a, "prospect's line is busy again", () => ({ type: 'prospectState', busy: true }));
      if (b !== Infinity) add(b, "prospect's line is free again", () => ({ type: 'prospectState', busy: false }));
    }
  }
  for (const [from, to] of s.agentBusy) {
    const a = at(from, '--agent-busy');
    const b = at(to, '--agent-busy');
    if (b < a) throw new InputError(`--agent-busy ${from}-${to}: ends before it starts`);
    add(a, `agent ${s.agent} starts another call`, () => {
      agent = { busy: true, since: a };
      return 'agent';
    });
    add(b, `agent ${s.agent} ends that call`, () => {
      agent = { busy: false, since: b };
      return 'agent';
    });
  }
  const lineBusyAt = (t: number) => busySpells.some(([a, b]) => t >= a && t < b);

  // The agent's other calls that started before the opt-in already count.
  inputs.sort((a, b) => a.at - b.at || a.order - b.order);
  while (inputs.length > 0 && inputs[0].at < start) {
    const i = inputs.shift() as Input;
    i.apply();
    timeline.push({ at: i.at, kind: 'input', type: 'input', text: i.text });
  }

  let now = start;
  let req: CallbackRequest;
  const scheduled: Array<{ at: number; order: number; observation: Observation; text: string }> = [];
  const rings: number[] = [];
  let ringKey: RecallChoice = '1';

  const record = (d: Decision) => {
    for (const e of d.events) timeline.push(eventEntry(e));
    req = d.request;
    for (const a of d.actions) {
      if (a.type === 'ringAgent') {
        ringKey = s.keys[rings.length] ?? s.keys[s.keys.length - 1] ?? '1';
        rings.push(now);
        if (ringKey === 'no-answer') {
          schedule(now + cfg.agentRingTimeoutMs, { type: 'agentNoAnswer' }, `agent does not answer (rang ${formatDuration(cfg.agentRingTimeoutMs)})`);
        } else if (ringKey === 'none') {
          schedule(now, { type: 'agentAnswered' }, 'agent answers and hears the menu');
        } else {
          schedule(now, { type: 'agentKey', key: ringKey }, `agent answers and presses ${ringKey}`);
        }
      } else if (a.type === 'announce' && a.prompt === 'menu' && ringKey === 'none') {
        schedule(now + cfg.menuTimeoutMs, { type: 'agentKey', key: 'none' }, `no key within ${formatDuration(cfg.menuTimeoutMs)}`);
      } else if (a.type === 'dialProspect') {
        if (lineBusyAt(now)) schedule(now, { type: 'prospectBusy' }, 'prospect dialled: busy');
        else schedule(now, { type: 'prospectAnswered' }, 'prospect dialled: answers');
      }
    }
  };
  const schedule = (t: number, observation: Observation, text: string) => scheduled.push({ at: t, order: order++, observation, text });
  const ctx = () => ({ now, cfg, agent });

  record(
    newRequest(
      {
        id: 'dry-run',
        agent: s.agent,
        agentCallerId: { name: 'Agent', number: s.agent.split('/').pop() ?? '' },
        prospect: s.prospect,
        language: 'en',
        mode: device ? 'device' : 'timed',
        ...(s.timeZone ? { timeZone: s.timeZone } : {}),
      },
      cfg,
      start,
    ),
  );

  let steps = 0;
  req = req!;
  while (!isTerminal(req.state) && steps++ < maxSteps) {
    scheduled.sort((a, b) => a.at - b.at || a.order - b.order);
    const nextScheduled = scheduled[0];
    const nextInput = inputs[0];
    const wake = req.wakeAt ?? Infinity;
    const candidates = [
      nextScheduled ? { at: nextScheduled.at, rank: 0 } : null,
      nextInput ? { at: nextInput.at, rank: 1 } : null,
      { at: wake, rank: 2 },
    ].filter((c): c is { at: number; rank: number } => c !== null && c.at !== Infinity);
    if (candidates.length === 0) break;
    candidates.sort((a, b) => a.at - b.at || a.rank - b.rank);
    const next = candidates[0];
    now = Math.max(now, next.at);
    if (next.rank === 0) {
      const sc = scheduled.shift()!;
      timeline.push({ at: now, kind: 'input', type: 'recall', text: sc.text });
      record(decide(req, sc.observation, ctx()));
    } else if (next.rank === 1) {
      const input = inputs.shift()!;
      timeline.push({ at: now, kind: 'input', type: 'input', text: input.text });
      const o = input.apply();
      if (o === 'agent') {
        // The engine re-evaluates DUE requests at once when their agent becomes free.
        if (!agent.busy) for (const s of schedulerSays(now, [req], { kind: 'agentFree', agent: req.agent })) record(decide(req, s.observation, ctx()));
      } else if (o) {
        record(decide(req, o, ctx()));
      }
    } else {
      for (const s of schedulerSays(now, [req], { kind: 'wake' })) record(decide(req, s.observation, ctx()));
    }
  }
  return { request: req, timeline, firstRingAt: rings[0] ?? null, rings, truncated: !isTerminal(req.state) };
}

function eventEntry(e: PolicyEvent): TimelineEntry {
  return { at: e.at, kind: 'event', type: e.type, from: e.from, to: e.to, text: e.reason };
}

const OUTCOME_TEXT: Record<string, string> = {
  completed: 'the prospect answered and was connected to the agent (COMPLETED)',
  cancelled: 'the callback was cancelled (CANCELLED)',
  expired: 'the request expired before the agent could be rung (EXPIRED)',
  'max-attempts': 'the prospect was dialled the maximum number of times without success (FAILED)',
  'prospect-no-answer': 'the prospect did not answer (FAILED)',
  'agent-unavailable': 'the agent did not take the recall and the snooze limit was reached (FAILED)',
  'snooze-limit': 'the agent snoozed too often (FAILED)',
};

/** The scenario as flags (the `explain` command) or as the page's form gives it. */
export interface ScenarioArgs {
  timeline?: string;
  date?: string;
  at?: string;
  'busy-until'?: string;
  'busy-again'?: string[];
  'agent-busy'?: string[];
  external?: boolean;
  keys?: string[];
  prospect?: string;
  agent?: string;
}

function rangeArg(flag: string, value: string): [string, string | undefined] {
  const m = new RegExp(`^${RANGE}$`).exec(value.trim()) ?? new RegExp(`^${T}$`).exec(value.trim());
  if (!m) throw new InputError(`${flag} ${JSON.stringify(value)}: expected a time range such as 10:44-10:50`);
  return [m[1], m[2]];
}

/** Flags and --timeline merged into a scenario (flags win for single values; lists are joined). */
export function scenarioFrom(argv: ScenarioArgs, timeZone: string, today: number): Scenario {
  const fromText: Partial<Scenario> = {};
  if (argv.timeline) parseTimeline(argv.timeline, fromText);
  const keys = (argv.keys ?? []).flatMap((k) => k.split(',')).map((k) => k.trim().toLowerCase()).filter(Boolean);
  for (const k of keys) {
    if (!['1', '2', '3', 'none', 'no-answer'].includes(k)) throw new InputError(`--keys ${k}: expected 1, 2, 3, none or no-answer`);
  }
  const agentBusy = (argv['agent-busy'] ?? []).map((v) => {
    const [a, b] = rangeArg('--agent-busy', v);
    if (b === undefined) throw new InputError(`--agent-busy ${JSON.stringify(v)}: expected a time range such as 10:44-10:50`);
    return [a, b] as [string, string];
  });
  return {
    date: argv.date ?? fromText.date ?? localIsoDate(timeZone, today),
    at: argv.at ?? fromText.at ?? '10:00',
    busyUntil: argv['busy-until'] ?? fromText.busyUntil,
    busyAgain: [...(fromText.busyAgain ?? []), ...(argv['busy-again'] ?? []).map((v) => rangeArg('--busy-again', v))],
    agentBusy: [...(fromText.agentBusy ?? []), ...agentBusy],
    external: argv.external ?? fromText.external ?? false,
    keys: [...(fromText.keys ?? []), ...(keys as RecallChoice[])],
    prospect: argv.prospect ?? '2001',
    agent: argv.agent ?? 'PJSIP/1001',
  };
}

/**
 * The dry run of one scenario as `explain` prints it: text lines and the `--json` document (also the web page's
 * explain view). `choice` is the prospect's zone as resolved from the number (default: callingHours.timeZone); a
 * scenario after hours that would not be offered (policy.afterHours = decline) has no simulation (`result` null).
 */
export function explainScenario(
  s: Scenario,
  cfg: PolicyConfig,
  numbers: NumberRules = defaultNumberRules,
  choice?: ZoneChoice,
): { lines: string[]; json: Record<string, unknown>; result: SimulationResult | null } {
  const zone = s.timeZone ?? choice?.timeZone ?? cfg.callingHours.timeZone;
  const number = validateProspectNumber(s.prospect, numbers);
  if (!number.ok) throw new InputError(`--prospect: ${number.reason}`);
  const promise = offerPromise(cfg, wallTime(zone, s.date, s.at, '--at'), { mode: s.external ? 'timed' : 'device', timeZone: zone });
  if (promise.kind === 'declined') {
    return {
      lines: [`No callback would be offered at ${s.at} on ${s.date} (${zone}): ${promise.reason}. The agent hears "Busy. Outside calling hours, no callback."`],
      json: { scenario: s, timeZone: zone, offered: false, reason: promise.reason },
      result: null,
    };
  }
  const result = simulate(s, cfg);
  const day = s.date;
  const label = (t: number) => (localIsoDate(zone, t) === day ? localTime(zone, t, 'HH:mm:ss') : localTime(zone, t, 'EEE yyyy-MM-dd HH:mm:ss'));
  const r = result.request;
  const json = {
    scenario: s,
    timeZone: zone,
    zoneSource: choice?.source ?? 'default',
    zoneNote: choice?.note ?? null,
    firstRingAt: result.firstRingAt === null ? null : new Date(result.firstRingAt).toISOString(),
    firstRingLocal: result.firstRingAt === null ? null : localTime(zone, result.firstRingAt),
    rings: result.rings.map((t) => localTime(zone, t)),
    state: r.state,
    outcome: r.outcome,
    reason: r.reason,
    timeline: result.timeline.map((e) => ({ ...e, at: new Date(e.at).toISOString(), local: localTime(zone, e.at) })),
  };
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  const mode = s.external ? `external prospect ${s.prospect} (no line state: timed probes)` : `internal prospect ${s.prospect} (line state watched)`;
  out(`Dry run on ${localTime(zone, wallTime(zone, s.date, '12:00', '--date'), 'EEE yyyy-MM-dd')}, local times in ${zone}: agent ${s.agent}, ${mode}.`);
  out(`Prospect's time zone: ${zone} (${choice?.source === 'default' || !choice ? `callingHours.timeZone; ${choice?.note ?? 'default'}` : choice.note}).`);
  out(
    `Policy: grace ${formatDuration(cfg.graceMs)} (+${formatDuration(cfg.longBusyExtraGraceMs)} after more than ${formatDuration(cfg.longBusyThresholdMs)} busy), ` +
      `agent wrap-up ${formatDuration(cfg.agentWrapUpMs)}, back-off ${cfg.backoffMs.map(formatDuration).join('/')}, snooze ${formatDuration(cfg.snoozeMs)}.`,
  );
  out('');
  const width = Math.max(...result.timeline.map((e) => (e.kind === 'input' ? 5 : e.type.length)));
  for (const e of result.timeline) {
    if (e.kind === 'input') {
      out(`  ${label(e.at)}  ${'>'.padEnd(width)}  ${e.text}`);
    } else {
      const arrow = e.from === null || e.from === undefined ? `→ ${e.to}` : e.from === e.to ? `${e.to}` : `${e.from} → ${e.to}`;
      out(`  ${label(e.at)}  ${e.type.padEnd(width)}  ${arrow}: ${e.text}`);
    }
  }
  out('');
  if (result.firstRingAt !== null) {
    const after = formatDuration(Math.round((result.firstRingAt - wallTime(zone, s.date, s.at, '--at')) / 1000) * 1000);
    out(`The callback fires at ${label(result.firstRingAt)}: the agent's phone rings, labelled "${recallCallerId(cfg, s.prospect, 'en').name}" (${after} after the opt-in).`);
    if (result.rings.length > 1) out(`The agent is rung ${result.rings.length} times: ${result.rings.map(label).join(', ')}.`);
  } else {
    out('The callback never fires: the agent is not rung in this scenario.');
  }
  if (result.truncated) out(`The simulation stopped with the request still ${r.state}: ${r.reason}.`);
  else out(`Outcome: ${OUTCOME_TEXT[r.outcome ?? ''] ?? r.state}${r.outcome === 'completed' ? '' : ` — ${r.reason}`}.`);
  if (promise.kind === 'next-calling-day') out(`Promise: after hours, the agent heard "we will call you back on the next calling day" (opens ${label(promise.opensAt)}).`);
  out('(> marks the made-up inputs; the other lines are the policy\'s own events and reasons.)');
  return { lines, json, result };
}
