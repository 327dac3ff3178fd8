/**
 * # The request state machine, as a table
 *
 * Rules of this file (after python-hyper/h11 `h11/_state.py`):
 *   - This table is the whole list of state changes a callback request can make. A row reads
 *     `FROM: { event: [TO, …] }`: in state FROM, the history event `event` moves the request to one of the TO
 *     states (which one, the policy's rules in machine.ts decide: e.g. a snooze over the limit is FAILED).
 *     `START` is "no request yet".
 *   - The machine (machine.ts) consults it for every event it records: an event that is not in the table for
 *     the request's state, or that leads elsewhere, is a bug in the policy and throws — it is never written.
 *   - Terminal states (COMPLETED, CANCELLED, EXPIRED, FAILED) have no row: they ignore every observation.
 *   - One decision may record several events in a row (e.g. `prospect-free` WAITING → DUE, then `ring-agent`
 *     DUE → RINGING_AGENT); each is one step of this table.
 *   - The state diagram of docs/architecture.md ("How it works") is checked against this table by
 *     test/unit/policy/transitions.test.ts: every arrow there is a row here, and every row here is an arrow there.
 *     Change both together.
 */
import type { CallbackState, PolicyEventType } from './types';

export const START = 'START' as const;
export type FromState = CallbackState | typeof START;

export type TransitionTable = {
  readonly [From in FromState]?: { readonly [E in PolicyEventType]?: readonly CallbackState[] };
};

const SNOOZE = ['WAITING', 'FAILED'] as const; // a snooze, or FAILED when no snooze or attempt is left
// The service's own failure cut a recall short: back to waiting (recovery delay) or, with no delay, due at once —
// never a snooze. From CONNECTING the prospect was dialled, so its attempt stays counted: FAILED when it was the last.
const RECOVER = ['WAITING', 'DUE'] as const;
const RECOVER_CONNECTING = ['WAITING', 'DUE', 'FAILED'] as const;

export const TRANSITIONS: TransitionTable = {
  START: {
    created: ['WAITING'],
  },
  WAITING: {
    'prospect-free': ['GRACE', 'DUE'],
    'prospect-busy': ['WAITING'],
    due: ['DUE'],
    'agent-snoozed': SNOOZE, // snoozed from the web page
    'agent-returned': ['RINGING_AGENT'], // the agent called the service number
    'heads-up': ['WAITING'], // the heads-up before a foreseen due time (snooze, back-off, probe …)
    refreshed: ['WAITING', 'DUE'],
    cancelled: ['CANCELLED'],
    expired: ['EXPIRED'],
  },
  GRACE: {
    'prospect-busy': ['WAITING'],
    due: ['DUE'],
    'agent-snoozed': SNOOZE,
    'agent-returned': ['RINGING_AGENT'],
    'heads-up': ['GRACE'],
    refreshed: ['WAITING'], // GRACE is device mode only, and a refreshed device-mode request waits for a free line
    cancelled: ['CANCELLED'],
    expired: ['EXPIRED'],
  },
  DUE: {
    'prospect-busy': ['WAITING'],
    waiting: ['DUE'],
    'heads-up': ['DUE'], // due, waiting for a calling-hours opening or the agent's wrap-up gap
    'agent-snoozed': SNOOZE,
    'ring-agent': ['RINGING_AGENT'],
    'agent-returned': ['RINGING_AGENT'],
    failed: ['FAILED'],
    refreshed: ['WAITING', 'DUE'],
    cancelled: ['CANCELLED'],
    expired: ['EXPIRED'],
  },
  RINGING_AGENT: {
    'agent-answered': ['RINGING_AGENT'],
    'menu-timeout': ['RINGING_AGENT', ...SNOOZE],
    'agent-accepted': ['CONNECTING'],
    'agent-snoozed': SNOOZE,
    'agent-no-answer': SNOOZE,
    'agent-hung-up': SNOOZE,
    'recall-failed': SNOOZE,
    'recall-timeout': RECOVER,
    'recall-interrupted': RECOVER,
    'prospect-busy': ['WAITING'],
    refreshed: ['WAITING', 'DUE'],
    cancelled: ['CANCELLED'],
  },
  CONNECTING: {
    'prospect-answered': ['COMPLETED'],
    'attempt-busy': ['WAITING', 'DUE', 'FAILED'],
    'attempt-no-answer': ['WAITING', 'DUE', 'FAILED'],
    'agent-hung-up': SNOOZE,
    'recall-failed': SNOOZE,
    'recall-timeout': RECOVER_CONNECTING,
    'recall-interrupted': RECOVER_CONNECTING,
    cancelled: ['CANCELLED'],
  },
};

/** Every (from, event, to) of the table, in table order. */
export function transitionList(table: TransitionTable = TRANSITIONS): Array<{ from: FromState; event: PolicyEventType; to: CallbackState }> {
  return Object.entries(table).flatMap(([from, events]) =>
    Object.entries(events ?? {}).flatMap(([event, tos]) => (tos ?? []).map((to) => ({ from: from as FromState, event: event as PolicyEventType, to }))),
  );
}

/** Whether the table allows `event` to move a request from `from` to `to`. */
export function isTransition(from: CallbackState | null, event: PolicyEventType, to: CallbackState): boolean {
  return TRANSITIONS[from ?? START]?.[event]?.includes(to) ?? false;
}

/** Throws unless the table allows the step: the machine records no event the table does not know. */
export function checkTransition(from: CallbackState | null, event: PolicyEventType, to: CallbackState): void {
  if (!isTransition(from, event, to)) {
    throw new Error(`policy bug: ${from ?? START} --${event}--> ${to} is not in the state table (src/core/policy/transitions.ts)`);
  }
}
