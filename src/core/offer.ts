/**
 * The offer at the busy signal, as a pure state machine.
 *
 * The ARI adapter feeds it what happens on the agent's channel (the call entered the app, a prompt
 * finished, a key was pressed, the timer fired, the agent hung up, the store answered) and carries
 * out the actions it returns. Strictly opt-in: only `#` leads to a stored request; any other key,
 * silence or a hang-up stores nothing.
 */
import { NumberRules, Validation, validateAgentDevice, validateProspectNumber } from './validate';

export type OfferPrompt = 'offer' | 'confirm' | 'goodbye' | 'full' | 'error';

export type OfferPhase = 'new' | 'offering' | 'storing' | 'closing' | 'done';

export type OfferOutcome = 'requested' | 'refreshed' | 'full' | 'declined' | 'timeout' | 'hangup' | 'store-failed';

export interface OfferState {
  phase: OfferPhase;
  /** Set once the outcome is known; `undefined` while the agent is still deciding. */
  outcome?: OfferOutcome;
  /** The key that ended the offer, if any. */
  key?: string;
  /** The agent hung up while the request was being stored. */
  hungUp?: boolean;
}

export type OfferInput =
  | { type: 'start' }
  | { type: 'promptFinished'; prompt: OfferPrompt }
  | { type: 'dtmf'; digit: string }
  | { type: 'timeout' }
  | { type: 'hangup' }
  | { type: 'stored'; result: 'created' | 'refreshed' | 'full' }
  | { type: 'storeFailed' };

export type OfferAction =
  | { type: 'answer' }
  | { type: 'play'; prompt: OfferPrompt }
  | { type: 'stopPlayback' }
  | { type: 'startTimer'; ms: number }
  | { type: 'cancelTimer' }
  | { type: 'store' }
  | { type: 'hangup' };

export interface OfferTimings {
  /** How long to wait for a key after the offer prompt has finished. */
  keyTimeoutMs: number;
  /** Longest a closing prompt may take before we hang up regardless. */
  closingTimeoutMs: number;
}

export interface OfferStep {
  state: OfferState;
  actions: OfferAction[];
}

export const OPT_IN_KEY = '#';

export function initialOfferState(): OfferState {
  return { phase: 'new' };
}

function close(prompt: OfferPrompt, outcome: OfferOutcome, t: OfferTimings, key?: string): OfferStep {
  return {
    state: { phase: 'closing', outcome, key },
    actions: [{ type: 'cancelTimer' }, { type: 'play', prompt }, { type: 'startTimer', ms: t.closingTimeoutMs }],
  };
}

export function stepOffer(state: OfferState, input: OfferInput, t: OfferTimings): OfferStep {
  const same: OfferStep = { state, actions: [] };
  if (input.type === 'hangup') {
    if (state.phase === 'done') return same;
    // A hang-up while storing does not undo the store: the agent pressed # and the write is under way.
    if (state.phase === 'storing') return { state: { ...state, hungUp: true }, actions: [{ type: 'cancelTimer' }] };
    return { state: { ...state, phase: 'done', outcome: state.outcome ?? 'hangup' }, actions: [{ type: 'cancelTimer' }] };
  }
  switch (state.phase) {
    case 'new':
      if (input.type !== 'start') return same;
      return { state: { phase: 'offering' }, actions: [{ type: 'answer' }, { type: 'play', prompt: 'offer' }] };
    case 'offering':
      if (input.type === 'dtmf') {
        if (input.digit === OPT_IN_KEY) {
          return {
            state: { phase: 'storing', key: input.digit },
            actions: [{ type: 'cancelTimer' }, { type: 'stopPlayback' }, { type: 'store' }],
          };
        }
        const step = close('goodbye', 'declined', t, input.digit);
        return { state: step.state, actions: [{ type: 'stopPlayback' }, ...step.actions] };
      }
      if (input.type === 'promptFinished' && input.prompt === 'offer') {
        return { state, actions: [{ type: 'startTimer', ms: t.keyTimeoutMs }] };
      }
      if (input.type === 'timeout') return close('goodbye', 'timeout', t);
      return same;
    case 'storing':
      if (input.type === 'stored') {
        const outcome: OfferOutcome = input.result === 'created' ? 'requested' : input.result;
        if (state.hungUp) return { state: { ...state, phase: 'done', outcome }, actions: [] };
        return close(input.result === 'full' ? 'full' : 'confirm', outcome, t, state.key);
      }
      if (input.type === 'storeFailed') {
        if (state.hungUp) return { state: { ...state, phase: 'done', outcome: 'store-failed' }, actions: [] };
        return close('error', 'store-failed', t, state.key);
      }
      return same;
    case 'closing':
      if ((input.type === 'promptFinished' && input.prompt !== 'offer') || input.type === 'timeout') {
        return { state: { ...state, phase: 'done' }, actions: [{ type: 'cancelTimer' }, { type: 'hangup' }] };
      }
      return same;
    case 'done':
      return same;
  }
}

/** What the dialplan hands to `Stasis(considerate-callback,offer,<prospect>,<agent device>,<cause>)`. */
export interface OfferArgs {
  prospect: string;
  agent: string;
  hangupCause?: number;
}

export function parseOfferArgs(args: readonly string[], rules: NumberRules): Validation<OfferArgs> {
  const [verb, prospect, agent, cause] = args;
  if (verb !== 'offer') {
    return { ok: false, reason: `unknown Stasis verb ${JSON.stringify(verb ?? '')}; expected "offer"` };
  }
  const number = validateProspectNumber(prospect, rules);
  if (!number.ok) return number;
  const device = validateAgentDevice(agent);
  if (!device.ok) return device;
  const parsedCause = cause !== undefined && /^[0-9]{1,3}$/.test(cause) ? Number(cause) : undefined;
  return { ok: true, value: { prospect: number.value, agent: device.value, hangupCause: parsedCause } };
}
