/**
 * Types of the callback policy. Everything here is plain data (numbers, strings, booleans, null, arrays, objects):
 * requests, events and actions can be stored as JSON and compared with deep equality.
 * All instants are epoch milliseconds; all durations are milliseconds.
 */
import type { CallingHoursConfig } from './calling-hours';
import type { DurationMs } from './duration';
import type { RecallLabelConfig } from '../label';

/** The prospect's name and company from the CRM look-up (lookup.url), validated; shown where it fits. */
export interface Contact {
  readonly name: string;
  readonly company?: string;
}

export const CALLBACK_STATES = [
  'WAITING',
  'GRACE',
  'DUE',
  'RINGING_AGENT',
  'CONNECTING',
  'COMPLETED',
  'CANCELLED',
  'EXPIRED',
  'FAILED',
] as const;
export type CallbackState = (typeof CALLBACK_STATES)[number];

export const TERMINAL_STATES = ['COMPLETED', 'CANCELLED', 'EXPIRED', 'FAILED'] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];

/** States before the recall starts: the request is waiting for the prospect, the agent or the clock. */
export const PENDING_STATES = ['WAITING', 'GRACE', 'DUE'] as const;
/** States during a recall: channels exist on the PBX. */
export const RECALL_STATES = ['RINGING_AGENT', 'CONNECTING'] as const;

export function isTerminal(state: CallbackState): state is TerminalState {
  return (TERMINAL_STATES as readonly string[]).includes(state);
}

/** 'device': the prospect is on this PBX, its device state is watched. 'timed': external number, probed on a schedule. */
export type ProspectMode = 'device' | 'timed';

export interface CallerId {
  readonly name: string;
  readonly number: string;
}

/** Machine-readable "what is this request waiting for" (null in terminal states). */
export type WaitingFor =
  | 'prospect-busy' // device mode: the prospect's line is busy; waiting for it to be free
  | 'grace' // device mode: the line is free; giving the prospect a break before calling
  | 'probe' // timed mode: waiting for the first probe time
  | 'backoff' // after a busy attempt: waiting for the back-off to pass
  | 'snooze' // the agent snoozed (explicitly or by not answering)
  | 'recovery' // a recall was interrupted by the service's own failure; ringing again after policy.recoveryDelay
  | 'no-answer-retry' // the prospect did not answer; waiting for the single retry
  | 'calling-hours' // due, but outside the prospect's calling hours
  | 'agent-busy' // due, but the agent's device is in use or ringing
  | 'agent-wrap-up' // due, the agent just finished a call; giving them the wrap-up gap
  | 'agent-paused' // due, but the agent paused their callbacks ("hold my callbacks"); waits, in order
  | 'agent' // ringing the agent / agent in the menu
  | 'prospect-answer' // the prospect is being dialled
  | 'colleague'; // due, but a colleague opted in for the same number earlier (or is on a recall with it)

/** Why a {@link CallbackRequest#notBefore} exists. */
export type NotBeforeKind = 'probe' | 'backoff' | 'snooze' | 'no-answer-retry' | 'recovery';

/** Why a request ended (null while it is not terminal). */
export type Outcome =
  | 'completed'
  | 'cancelled'
  | 'expired'
  | 'max-attempts' // FAILED: the prospect was dialled maxAttempts times without success
  | 'prospect-no-answer' // FAILED: no answer, and the one retry did not answer either
  | 'agent-unavailable' // FAILED: the agent did not answer / respond, and the snooze limit was reached
  | 'snooze-limit'; // FAILED: the agent pressed 2 (snooze) with the snooze limit reached

export interface CallbackRequest {
  /** Chosen by the shell (the core does no I/O, so no random ids); letters, digits, '.', '_', '-'. */
  readonly id: string;
  /** Agent device / endpoint, e.g. 'PJSIP/1001'. */
  readonly agent: string;
  /** Shown to the prospect when dialled: the agent's own caller ID. */
  readonly agentCallerId: CallerId;
  /** Prospect's number (digits, optional leading '+'). */
  readonly prospect: string;
  /** Language for prompts, e.g. 'de'. */
  readonly language: string;
  readonly mode: ProspectMode;
  /**
   * The prospect's time zone: calling hours apply in it, and the local times in `reason` are in it. Derived from
   * the number at the opt-in (see src/core/zones.ts); the configured calling-hours zone for national numbers.
   */
  readonly timeZone: string;
  /** How `timeZone` was found: 'number' (libphonenumber data), 'override' (admin prefix), 'default' (configured zone). */
  readonly zoneSource?: ZoneSource;
  /**
   * Set when the agent opted in after the last moment a callback could fire today and the request was carried over
   * to the next calling day (policy.afterHours = 'carry-over'): the opening it waits for. The agent was told so.
   */
  readonly carriedOver?: { opensAt: number; calledDays: number } | null;
  /** The team profile chosen by the dialplan (CC_PROFILE), or null/absent for the default policy. */
  readonly profile?: string | null;
  /**
   * The promise-making part of the policy resolved at the opt-in (src/core/policy/profiles.ts): decisions on this
   * request use it over the configured policy, so an edited configuration never silently changes a stored promise.
   * Absent on requests stored before profiles existed (they follow the configuration).
   */
  readonly policy?: PolicySnapshot | null;
  /** The prospect's name from the CRM look-up, stored when it arrived (after the opt-in); null/absent: unknown. */
  contact?: Contact | null;

  state: CallbackState;
  createdAt: number;
  /** Last refresh (agent pressed # again), or null. Expiry and counters restart there. */
  refreshedAt: number | null;
  refreshes: number;
  updatedAt: number;
  /** When the scheduler must call `decide(…, {type:'tick'})` next; null only in terminal states. */
  wakeAt: number | null;
  /** The request expires (→ EXPIRED) at this instant unless a recall is in progress. */
  expiresAt: number;
  expiresBecause: 'max-age' | 'end-of-calling-day' | 'carry-over';
  waitingFor: WaitingFor | null;
  /** Human explanation of the current state, e.g. 'grace until 10:45' or 'outside calling hours, opens Mon 09:00'. */
  reason: string;
  outcome: Outcome | null;

  /** How often the prospect was dialled (in this request's current life, i.e. since creation or last refresh). */
  attempts: number;
  noAnswers: number;
  snoozes: number;
  /** How often the agent was rung, over the whole life of the request (never reset: channel ids stay unique). */
  rings: number;
  /** Unanswered menu prompts in the current ring. */
  menuTimeouts: number;

  /** Device mode: last known prospect line state (null = not observed, timed mode). */
  lineBusy: boolean | null;
  /** Start of the current busy spell (creation / refresh / first busy observation), or null while free. */
  busySince: number | null;
  /** When the line was last seen going free, or null while busy. */
  freeSince: number | null;
  /** Length of the busy spell that ended at `freeSince` (drives adaptive grace). */
  lastBusySpellMs: number | null;
  /** End of the current grace period (state GRACE), before back-off is applied. */
  graceUntil: number | null;
  /** Not before this instant (probe time, back-off, snooze, retry); see `notBeforeKind`. */
  notBefore: number | null;
  notBeforeKind: NotBeforeKind | null;
  lastAttemptAt: number | null;
  /** When the current ring of the agent started (RINGING_AGENT / CONNECTING). */
  recallStartedAt: number | null;
  /**
   * When the recall is due to ring, when the policy can foresee it (the end of a grace period, snooze, back-off,
   * probe, retry, recovery delay, wrap-up gap or a calling-hours opening); null when it cannot (line busy, agent busy,
   * paused, a colleague first). The heads-up (policy.headsUpMs) runs before it. Absent in requests stored before.
   */
  dueAt?: number | null;
  /** The due time the agent was given a heads-up for (once per due time; a new due time earns a new heads-up). */
  headsUpFor?: number | null;
  agentAnsweredAt: number | null;
}

export interface NewRequestInput {
  id: string;
  agent: string;
  agentCallerId: CallerId;
  prospect: string;
  language: string;
  mode: ProspectMode;
  /** The prospect's time zone (IANA); default: the configured calling-hours zone. */
  timeZone?: string;
  zoneSource?: ZoneSource;
  profile?: string | null;
  policy?: PolicySnapshot;
  contact?: Contact | null;
}

export type ZoneSource = 'number' | 'override' | 'default';

/** The agent's device as seen by the shell. `since`: when the current busy/free status began. */
export interface AgentStatus {
  busy: boolean;
  since: number;
  /**
   * The agent paused their callbacks ("hold my callbacks", from the phone or the page): nothing rings them, due
   * requests wait in order. `until`: the pause ends by itself then (null: until resumed). Absent: not paused.
   */
  paused?: AgentPause | null;
}

export interface AgentPause {
  since: number;
  until: number | null;
}

export type AgentKey = '1' | '2' | '3' | 'none';

export type Observation =
  /** The clock: the scheduler's timer fired (or the shell wants a re-evaluation, e.g. the agent became free). */
  | { type: 'tick' }
  /** Device mode: the prospect's device changed state (busy = in use / ringing / on hold). */
  | { type: 'prospectState'; busy: boolean }
  /** The agent pressed # again for the same prospect while this request is pending. */
  | { type: 'refresh' }
  | { type: 'cancel'; by: string }
  /** Someone (the web page) postpones a pending request by policy.snooze; counts as a snooze, like the agent's 2. */
  | { type: 'snooze'; by: string }
  /** Recall: the agent picked up. */
  | { type: 'agentAnswered' }
  /**
   * The agent called the service number (returning a missed recall) and this pending request is the one they
   * hear: the recall starts on the agent's own call, already answered, at the menu.
   */
  | { type: 'agentReturned' }
  /** Recall: the agent's phone rang out / was rejected before answering. */
  | { type: 'agentNoAnswer' }
  /** Recall: the agent's choice in the menu; 'none' = the menu timed out without a key. */
  | { type: 'agentKey'; key: AgentKey }
  | { type: 'prospectAnswered' }
  | { type: 'prospectBusy' }
  | { type: 'prospectNoAnswer' }
  /** The agent hung up (during the menu, or while the prospect was ringing). */
  | { type: 'agentHungUp' }
  /** The PBX could not set up a leg (originate error, endpoint offline, …). */
  | { type: 'recallFailed'; reason: string }
  /**
   * The recall was cut short by the service's own failure, not by anyone's choice: the instance that ran it died
   * or lost its lease, Asterisk restarted, or its channels vanished without a key or a hang-up being reported.
   * Never a snooze; the agent is rung again after `recoveryDelayMs`.
   */
  | { type: 'recallInterrupted'; reason: string };

export type ObservationType = Observation['type'];

export const OBSERVATION_TYPES: readonly ObservationType[] = [
  'tick',
  'prospectState',
  'refresh',
  'cancel',
  'snooze',
  'agentAnswered',
  'agentReturned',
  'agentNoAnswer',
  'agentKey',
  'prospectAnswered',
  'prospectBusy',
  'prospectNoAnswer',
  'agentHungUp',
  'recallFailed',
  'recallInterrupted',
];

export type Prompt = 'menu' | 'still-busy' | 'no-answer' | 'snoozed' | 'cancelled' | 'connecting';
export type NotifyEvent = 'requested' | 'completed' | 'failed' | 'expired' | 'cancelled' | 'recall.due_soon';

/** Side effects for the shell, to execute in order AFTER the decision has been persisted. */
export type Action =
  /** Originate a call to the agent with caller ID "Callback: <prospect>" on the given (never reused) channel id. */
  | { type: 'ringAgent'; attempt: number; channelId: string; callerId: CallerId; timeoutMs: DurationMs }
  /** Dial the prospect with the agent's own caller ID and bridge it with the agent's channel. */
  | { type: 'dialProspect'; attempt: number; channelId: string; agentChannelId: string; callerId: CallerId; timeoutMs: DurationMs }
  /** Play a prompt to the agent. */
  | { type: 'announce'; channelId: string; prompt: Prompt }
  | { type: 'hangupAgent'; channelId: string }
  | { type: 'hangupProspect'; channelId: string }
  /** For a CRM webhook. */
  | { type: 'notify'; event: NotifyEvent; reason: string };

export type PolicyEventType =
  | 'created'
  | 'refreshed'
  | 'cancelled'
  | 'expired'
  | 'failed'
  | 'prospect-busy'
  | 'prospect-free'
  | 'due'
  | 'waiting'
  | 'ring-agent'
  | 'agent-returned'
  | 'agent-answered'
  | 'menu-timeout'
  | 'agent-accepted'
  | 'agent-snoozed'
  | 'agent-no-answer'
  | 'agent-hung-up'
  | 'recall-failed'
  | 'recall-timeout'
  | 'recall-interrupted'
  | 'prospect-answered'
  | 'attempt-busy'
  | 'attempt-no-answer'
  /** The heads-up before a foreseen due time began (policy.headsUpMs): the state does not change. */
  | 'heads-up';

/** One persisted history entry. `from` is null only for 'created'. `wakeAt`/`waitingFor` are those after the event. */
export interface PolicyEvent {
  at: number;
  type: PolicyEventType;
  from: CallbackState | null;
  to: CallbackState;
  reason: string;
  wakeAt: number | null;
  waitingFor: WaitingFor | null;
}

export interface Decision {
  request: CallbackRequest;
  events: PolicyEvent[];
  actions: Action[];
}

export interface PolicyConfig {
  /** Break given to a prospect after their line became free. [5m] */
  graceMs: DurationMs;
  /** A busy spell longer than this earns extra grace. [30m] */
  longBusyThresholdMs: DurationMs;
  /** Extra grace after a long busy spell. [5m] */
  longBusyExtraGraceMs: DurationMs;
  /** Timed mode: first probe this long after creation. [10m] */
  firstProbeDelayMs: DurationMs;
  /** Wait after the n-th failed attempt: backoffMs[n-1], the last value repeats. [10m, 30m, 60m] */
  backoffMs: readonly DurationMs[];
  /** The prospect is dialled at most this often. [3] */
  maxAttempts: number;
  /** Retries after the prospect did not answer. [1] */
  noAnswerRetries: number;
  /** Snooze length. [15m] */
  snoozeMs: DurationMs;
  /** Snoozes allowed (explicit or implicit); the next one fails the request. [3] */
  maxSnoozes: number;
  /**
   * Heads-up: this long before a foreseen due time the agent is told (page notification, BLF lamp blinking,
   * a `recall.due_soon` webhook). Never rings a phone and never delays the recall. 0 = off. [0 here; 1m in the schema]
   */
  headsUpMs: DurationMs;
  /** Gap after the agent's last call ended before we ring them. [30s] */
  agentWrapUpMs: DurationMs;
  /** While the agent is busy, re-check this often (the shell may also tick early when the agent becomes free). [1m] */
  agentBusyRecheckMs: DurationMs;
  /** How long the agent's phone rings. [30s] */
  agentRingTimeoutMs: DurationMs;
  /** How long the menu waits for a key. [10s] */
  menuTimeoutMs: DurationMs;
  /** Menu prompts without a key before it counts as "agent unavailable" (snooze). [2] */
  menuRepeats: number;
  /** How long the prospect's phone rings. [45s] */
  prospectRingTimeoutMs: DurationMs;
  /** Extra time after a recall step should have ended before a tick recovers the request. [2m] */
  recallSafetyMarginMs: DurationMs;
  /**
   * After a recall was interrupted by the service's own failure (crash, lost lease, PBX restart): wait this long,
   * then ring the agent again (grace, wrap-up and calling hours still apply). Not a snooze. [10s]
   */
  recoveryDelayMs: DurationMs;
  /** A request never lives longer than this (since creation / refresh). [8h] */
  maxAgeMs: DurationMs;
  /** Prospect calling hours. [Mon–Fri 09:00–18:00 Europe/Berlin] */
  callingHours: CallingHoursConfig;
  /**
   * What the offer does when a callback could not fire before it would expire (the agent dials after the last
   * moment of today's calling hours, or outside them): 'carry-over' = offer a callback on the next calling day
   * (the agent hears so), 'decline' = no offer, a short reason instead. ['carry-over']
   */
  afterHours: 'carry-over' | 'decline';
  /** A carried-over request stays pending through at most this many calling days, the next one being the 1st. [1] */
  carryOverDays: number;
  /** How far ahead calling hours are searched. [14] */
  openingHorizonDays: number;
  /** Caller-ID name on the agent's phone for a recall; `${prospect}` is replaced. ['Callback: ${prospect}'] */
  recallCallerIdName: string;
  /**
   * Caller-ID number on the agent's phone for a recall: a service number of the PBX, never the prospect's number,
   * so the phone cannot match the prospect's contact and show their name as if they were calling. [''] (none)
   */
  recallCallerIdNumber: string;
  /** How the label fits the agents' displays: prefixes per language, width, home country (src/core/label.ts). */
  recallLabel: RecallLabelConfig;
}

/** The policy fields a team profile may override and a request snapshots (its promise; src/core/policy/profiles.ts). */
export const PROFILE_POLICY_KEYS = [
  'graceMs',
  'longBusyThresholdMs',
  'longBusyExtraGraceMs',
  'firstProbeDelayMs',
  'backoffMs',
  'maxAttempts',
  'noAnswerRetries',
  'snoozeMs',
  'maxSnoozes',
  'maxAgeMs',
  'callingHours',
  'afterHours',
  'recallCallerIdName',
  'recallLabel',
  'headsUpMs',
] as const satisfies ReadonlyArray<keyof PolicyConfig>;
export type ProfilePolicyKey = (typeof PROFILE_POLICY_KEYS)[number];

/** The resolved promise of a request, stored with it. */
export type PolicySnapshot = Pick<PolicyConfig, ProfilePolicyKey>;
