/**
 * The offer at the busy signal, as a pure state machine.
 *
 * The ARI adapter feeds it what happens on the agent's channel (the call entered the app, a prompt
 * finished, a key was pressed, the timer fired, the agent hung up, the store answered) and carries
 * out the actions it returns. Strictly opt-in: only `#` leads to a stored request; any other key,
 * silence or a hang-up stores nothing.
 */
import { NumberRules, Validation, validateAgentDevice, validateProspectNumber } from './validate';

export type OfferPrompt = 'offer' | 'confirm' | 'goodbye' | 'full' | 'error' | 'queue' | 'offerNextDay' | 'confirmNextDay' | 'closed';

/** Prompts during which the agent decides (a key counts; the key timer starts when the last of them ends). */
const OFFERING_PROMPTS: readonly OfferPrompt[] = ['queue', 'offer', 'offerNextDay'];

export type OfferPhase = 'new' | 'offering' | 'storing' | 'closing' | 'done';

export type OfferOutcome = 'requested' | 'refreshed' | 'full' | 'declined' | 'timeout' | 'hangup' | 'store-failed' | 'closed';

/** What the offer may promise (see core/policy/promise.ts): the usual callback, the next calling day, or none. */
export type OfferPromiseKind = 'regular' | 'next-calling-day' | 'declined';

export interface OfferContext {
  promise: OfferPromiseKind;
  /** The agent's place in the queue for this number: 1 = nobody else waits; 2 = one colleague opted in earlier. */
  position?: number;
}

export interface OfferState {
  phase: OfferPhase;
  /** From `start`; absent: a regular offer, first in the queue. */
  context?: OfferContext;
  /** Set once the outcome is known; `undefined` while the agent is still deciding. */
  outcome?: OfferOutcome;
  /** The key that ended the offer, if any. */
  key?: string;
  /** The agent hung up while the request was being stored. */
  hungUp?: boolean;
}

export type OfferInput =
  | { type: 'start'; context?: OfferContext }
  | { type: 'promptFinished'; prompt: OfferPrompt }
  | { type: 'dtmf'; digit: string }
  | { type: 'timeout' }
  | { type: 'hangup' }
  /** `closed`: nothing may be promised any more (see OfferContext); `promise`: what the stored request promises. */
  | { type: 'stored'; result: 'created' | 'refreshed' | 'full' | 'closed'; promise?: Exclude<OfferPromiseKind, 'declined'> }
  | { type: 'storeFailed' };

export type OfferAction =
  | { type: 'answer' }
  /** `position` only with the 'queue' prompt (2 = "you are second"). */
  | { type: 'play'; prompt: OfferPrompt; position?: number }
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
    case 'new': {
      if (input.type !== 'start') return same;
      const context = input.context;
      if (context?.promise === 'declined') {
        const step = close('closed', 'closed', t);
        return { state: { ...step.state, context }, actions: [{ type: 'answer' }, ...step.actions.filter((a) => a.type !== 'cancelTimer')] };
      }
      const offer: OfferPrompt = context?.promise === 'next-calling-day' ? 'offerNextDay' : 'offer';
      const position = context?.position ?? 1;
      const first: OfferAction = position >= 2 ? { type: 'play', prompt: 'queue', position } : { type: 'play', prompt: offer };
      return { state: context ? { phase: 'offering', context } : { phase: 'offering' }, actions: [{ type: 'answer' }, first] };
    }
    case 'offering':
      if (input.type === 'dtmf') {
        if (input.digit === OPT_IN_KEY) {
          return {
            state: state.context ? { phase: 'storing', key: input.digit, context: state.context } : { phase: 'storing', key: input.digit },
            actions: [{ type: 'cancelTimer' }, { type: 'stopPlayback' }, { type: 'store' }],
          };
        }
        const step = close('goodbye', 'declined', t, input.digit);
        return { state: step.state, actions: [{ type: 'stopPlayback' }, ...step.actions] };
      }
      if (input.type === 'promptFinished' && input.prompt === 'queue') {
        return { state, actions: [{ type: 'play', prompt: state.context?.promise === 'next-calling-day' ? 'offerNextDay' : 'offer' }] };
      }
      if (input.type === 'promptFinished' && OFFERING_PROMPTS.includes(input.prompt)) {
        return { state, actions: [{ type: 'startTimer', ms: t.keyTimeoutMs }] };
      }
      if (input.type === 'timeout') return close('goodbye', 'timeout', t);
      return same;
    case 'storing':
      if (input.type === 'stored') {
        const outcome: OfferOutcome = input.result === 'created' ? 'requested' : input.result;
        if (state.hungUp) return { state: { ...state, phase: 'done', outcome }, actions: [] };
        const promise = input.promise ?? (state.context?.promise === 'next-calling-day' ? 'next-calling-day' : 'regular');
        const prompt: OfferPrompt =
          input.result === 'full' ? 'full' : input.result === 'closed' ? 'closed' : promise === 'next-calling-day' ? 'confirmNextDay' : 'confirm';
        const step = close(prompt, outcome, t, state.key);
        return state.context ? { ...step, state: { ...step.state, context: state.context } } : step;
      }
      if (input.type === 'storeFailed') {
        if (state.hungUp) return { state: { ...state, phase: 'done', outcome: 'store-failed' }, actions: [] };
        return close('error', 'store-failed', t, state.key);
      }
      return same;
    case 'closing':
      if ((input.type === 'promptFinished' && !OFFERING_PROMPTS.includes(input.prompt)) || input.type === 'timeout') {
        return { state: { ...state, phase: 'done' }, actions: [{ type: 'cancelTimer' }, { type: 'hangup' }] };
      }
      return same;
    case 'done':
      return same;
  }
}

/** Media per prompt; the prompts added for issue 12 default to the shipped sounds. */
export type OfferPromptMedia = Readonly<Record<'offer' | 'confirm' | 'goodbye' | 'full' | 'error', string> & Partial<Record<OfferPrompt, string>>>;

const DEFAULT_MEDIA = {
  queue: 'sound:cc-queue-${position}',
  offerNextDay: 'sound:cc-offer-next-day',
  confirmNextDay: 'sound:cc-confirm-next-day',
  closed: 'sound:cc-closed',
} as const;

/**
 * The media of a prompt: `prompts[prompt]`, and for 'queue' the template's `${position}` replaced by the position
 * (2…5; larger positions use 'many': "several colleagues are already waiting for this number").
 */
export function offerMedia(prompts: OfferPromptMedia, prompt: OfferPrompt, position?: number): string {
  const media = prompts[prompt] ?? DEFAULT_MEDIA[prompt as keyof typeof DEFAULT_MEDIA];
  if (prompt !== 'queue') return media;
  const p = position === undefined || position < 2 ? 2 : position;
  return media.split('${position}').join(p <= 5 ? String(p) : 'many');
}

/** What the dialplan hands to `Stasis(considerate-callback,offer,<prospect>,<agent device>,<cause>)`. */
export interface OfferArgs {
  prospect: string;
  agent: string;
  hangupCause?: number;
  /** The team profile the dialplan named (CC_PROFILE), as given; the profile resolution checks it. */
  profile?: string;
}

export function parseOfferArgs(args: readonly string[], rules: NumberRules): Validation<OfferArgs> {
  const [verb, prospect, agent, cause, profile] = args;
  if (verb !== 'offer') {
    return { ok: false, reason: `unknown Stasis verb ${JSON.stringify(verb ?? '')}; expected "offer"` };
  }
  const number = validateProspectNumber(prospect, rules);
  if (!number.ok) return number;
  const device = validateAgentDevice(agent);
  if (!device.ok) return device;
  const parsedCause = cause !== undefined && /^[0-9]{1,3}$/.test(cause) ? Number(cause) : undefined;
  // At most 64 characters reach the profile resolution (which names a bad one in its log line); empty = none.
  const named = typeof profile === 'string' && profile !== '' ? profile.slice(0, 64) : undefined;
  return { ok: true, value: { prospect: number.value, agent: device.value, hangupCause: parsedCause, ...(named !== undefined ? { profile: named } : {}) } };
}
