/**
 * The offer at the busy signal, written once for both entries (Stasis over ARI, FastAGI).
 *
 * A driver around the pure machine in core/offer.ts: it refuses bad input from the dialplan, chooses the
 * language, builds the request, feeds the machine what happens on the call (through a {@link CallPort})
 * and carries out the actions it returns. The opt-in write is synchronous and committed before the agent
 * hears the confirmation. Before the first prompt the sink may `prepare` the offer (the prospect's zone, what
 * may be promised, the agent's place in the queue for the number): the machine then plays the queue notice,
 * the next-calling-day offer, or the closed notice instead of the plain offer.
 *
 *   answer          → port.answer() (sent before the preparation, awaited here)
 *   play <prompt>   → port.play([media]) started, not awaited: the machine's timer runs beside it
 *                     (the offer, next-day offer and queue prompts stop on any key; closing prompts play to
 *                     their end); media from offerMedia (the queue prompt by position)
 *   stopPlayback    → port.stop() (a stop key has already stopped the prompt; this is a no-op then)
 *   startTimer ms   → a deadline; with nothing playing the driver waits for a key until it
 *   cancelTimer     → clears the deadline
 *   store           → sink.optIn (awaited: committed before the confirmation plays)
 *   hangup          → port.hangup()
 */
import { performance } from 'node:perf_hooks';
import {
  OfferAction,
  OfferContext,
  OfferInput,
  OfferOutcome,
  OfferPrompt,
  OfferPromptMedia,
  OfferState,
  initialOfferState,
  offerMedia,
  parseOfferArgs,
  stepOffer,
} from '../core/offer';
import { chooseProfile, type Profiles, type ZoneSource } from '../core/policy';
import { chooseLanguage, describeInput, sanitizeCallerIdName, sanitizeCallerIdNumber } from '../core/validate';
import { loopTurns, promisesMade, type OptInInput, type OptInMarks, type OptInResult } from '../engine';
import { DialPolicyError } from '../core/dial-policy';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { CallPort, KeyOutcome, PlayOutcome } from '../telephony/port';

export type OfferRequestInput = OptInInput;

/** What the offer may say, with the prospect's zone (service: zone from the number + engine.offerOutlook). */
export interface OfferPreparation {
  context: OfferContext;
  timeZone?: string;
  zoneSource?: ZoneSource;
  /** For the `offer.started` line: the agents waiting (the first few, and how many), the zone's note and why. */
  details?: { queue?: string[]; waiting?: number; zoneNote?: string; why?: string };
}

/** What the offer needs from the rest of the service: one durable opt-in write. */
export interface OfferSink {
  optIn(input: OfferRequestInput): OptInResult | Promise<OptInResult>;
  /** Optional: the promise and the queue position before the offer plays (absent: a regular offer, first in line). */
  prepare?(input: OfferRequestInput): Promise<OfferPreparation>;
}

/** The machine's `stored` input for an opt-in result. */
export function storedInput(r: OptInResult): OfferInput {
  if (r.result === 'full' || r.result === 'closed') return { type: 'stored', result: r.result };
  return r.promise ? { type: 'stored', result: r.result, promise: r.promise } : { type: 'stored', result: r.result };
}

/** Prompts during which a key decides (the offer and the queue notice before it). */
const OFFERING: readonly OfferPrompt[] = ['queue', 'offer', 'offerNextDay'];

export interface OfferOptions {
  keyTimeoutMs: number;
  closingTimeoutMs: number;
  languages: readonly string[];
  defaultLanguage: string;
  prompts: OfferPromptMedia;
  numbers: { minDigits: number; maxDigits: number };
  /** Team profiles (config `profiles`): a call's profile may set its language. */
  profiles?: Profiles;
}

export type OfferEntry = 'ari' | 'agi';

/** Keys that interrupt the offer prompt: any key decides (only # opts in). */
export const OFFER_KEYS = '#0123456789*';

function micro(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class OfferDriver {
  constructor(
    private readonly sink: OfferSink,
    private readonly opts: OfferOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Runs one offer on a call. `args` as Stasis() passes them: ['offer', <prospect>, <agent device>, <cause>].
   * Resolves when the offer is over (never rejects); with the outcome, or undefined when refused.
   */
  async run(port: CallPort, args: readonly string[], entry: OfferEntry): Promise<OfferOutcome | undefined> {
    let log = this.log.child({ channelId: port.channelId });
    const parsed = parseOfferArgs(args, this.opts.numbers);
    if (!parsed.ok) {
      emit(log, 'warn', 'offer.refused', 'offer refused: bad input from the dialplan; no callback, the caller hears busy', {
        reason: parsed.reason,
        args: args.map((a) => describeInput(a)),
        entry,
      });
      await port.refuse().catch((err: unknown) => log.warn('declining the refused call failed', { error: errorText(err) }));
      return undefined;
    }
    const profile = chooseProfile(this.opts.profiles ?? {}, parsed.value.profile);
    const language = chooseLanguage(profile.overrides?.language ?? port.language, this.opts.languages, this.opts.defaultLanguage);
    const input: OfferRequestInput = {
      agent: parsed.value.agent,
      agentCallerId: { name: sanitizeCallerIdName(port.caller.name), number: sanitizeCallerIdNumber(port.caller.number) },
      prospect: parsed.value.prospect,
      language,
      channelId: port.channelId,
      ...(profile.profile ? { profile: profile.profile } : {}),
    };
    log = log.child({ agent: input.agent, prospect: input.prospect });
    if (profile.problem) {
      emit(log, 'warn', 'profile.unknown', 'the call named a profile the configuration does not know; the default policy applies', {
        profile: describeInput(parsed.value.profile ?? ''),
        reason: profile.problem,
      });
    }
    // The channel's language is set and the call answered while the service prepares the offer (the prospect's
    // zone, the promise, the queue) before the prompt is chosen: the agent waits for the prompt, so they overlap.
    // Every offer starts with the answer (core/offer.ts); its action below waits for this request.
    const languageSet = port.setLanguage(language).catch(() => undefined);
    const answering = port.answer();
    answering.catch(() => undefined); // awaited (and its error handled) by the answer action
    let prepared: OfferPreparation | undefined;
    if (this.sink.prepare) {
      try {
        prepared = await this.sink.prepare(input);
        input.timeZone = prepared.timeZone;
        input.zoneSource = prepared.zoneSource;
      } catch (err) {
        emit(log, 'warn', 'offer.prepare_failed', 'could not prepare the offer; offering as usual', { error: errorText(err) });
      }
    }
    await languageSet;

    let state: OfferState = initialOfferState();
    let deadline: number | undefined;
    let playing: { prompt: OfferPrompt; outcome: Promise<PlayOutcome> } | undefined;
    let requestId: string | undefined;
    let keyAt: number | undefined;
    /** The opt-in's steps (performance.now()), logged as offer.timing once the confirmation is requested. */
    let timing: { key?: number; keyTurns?: number; keyPromises?: number; store: number; returned?: number; marks: OptInMarks } | undefined;
    let keyTurns: number | undefined;
    let keyPromises: number | undefined;
    const inputs: OfferInput[] = [];

    const store = async (): Promise<void> => {
      try {
        const t0 = performance.now();
        const marks: OptInMarks = {};
        timing = { key: keyAt, keyTurns, keyPromises, store: t0, marks };
        const r = await this.sink.optIn({ ...input, marks });
        const t1 = performance.now();
        timing.returned = t1;
        if (r.result === 'full') {
          emit(log, 'warn', 'offer.full', 'agent has too many pending callbacks; none added', { pending: r.pending });
          inputs.push({ type: 'stored', result: 'full' });
          return;
        }
        if (r.result === 'closed') {
          // Nothing may be promised any more (the calling day ended while the offer played); the engine logged
          // `offer.closed` and queued the CRM's not-offered event. The agent hears the reason.
          inputs.push(storedInput(r));
          return;
        }
        requestId = r.requestId;
        log = log.child({ requestId });
        // The moment the opt-in became durable, as the group stamped it (its commit and the WAL's sync done); what came
        // after it (the side effects, the hand-back) is `afterDurableMs` here and its own steps in offer.timing.
        const durable = marks.committed ?? t1;
        emit(log, 'info', 'offer.opted_in', r.result === 'created' ? 'callback requested' : 'callback request refreshed', {
          requestId,
          result: r.result,
          entry,
          commitMs: micro(durable - t0),
          keyToDurableMs: keyAt === undefined ? undefined : micro(durable - keyAt),
          afterDurableMs: micro(t1 - durable),
          // Wall clock of the durable moment (the bench's end to end: minus Asterisk's DTMF timestamp).
          committedAt: micro(Date.now() - (performance.now() - durable)),
          promise: r.promise,
          position: r.position,
        });
        inputs.push(storedInput(r));
      } catch (err) {
        // Refused by the dial policy: the engine logged dial.refused; the agent hears the error prompt.
        if (err instanceof DialPolicyError) {
          inputs.push({ type: 'storeFailed' });
          return;
        }
        emit(log, 'error', 'offer.store_failed', 'could not store the callback request; the agent is told no callback was scheduled', {
          error: errorText(err),
        });
        inputs.push({ type: 'storeFailed' });
      }
    };

    /** Carries out one action: a promise to wait for when it has one (the answer, a stop, the store, the hang-up). */
    const perform = (action: OfferAction): Promise<unknown> | undefined => {
      switch (action.type) {
        case 'answer': {
          const answered = answering;
          // The answer request went out before the preparation; the line is written while it is on its way.
          emit(log, 'info', 'offer.started', prepared?.context.promise === 'declined' ? 'busy: no callback can be promised; the agent is told why' : 'busy: offering a callback', {
            hangupCause: parsed.value.hangupCause,
            language,
            entry,
            ...(prepared
              ? {
                  promise: prepared.context.promise,
                  position: prepared.context.position,
                  queue: prepared.details?.queue,
                  waiting: prepared.details?.waiting,
                  timeZone: prepared.timeZone,
                  zoneSource: prepared.zoneSource,
                  zoneNote: prepared.details?.zoneNote,
                  why: prepared.details?.why,
                }
              : {}),
          });
          return answered;
        }
        case 'play': {
          const media = offerMedia(this.opts.prompts, action.prompt, action.position);
          emit(log, 'debug', 'offer.prompt_playing', 'prompt playing', { prompt: action.prompt, media });
          playing = {
            prompt: action.prompt,
            outcome: port.play([media], { stopKeys: OFFERING.includes(action.prompt) ? OFFER_KEYS : '', guardMs: 5 * 60_000 }),
          };
          if (timing?.returned !== undefined) {
            emit(log, 'info', 'offer.timing', 'opt-in steps timed', { prompt: action.prompt, ...optInSteps(timing, performance.now()) });
            timing = undefined;
          }
          return;
        }
        case 'stopPlayback':
          return port.stop();
        case 'startTimer':
          deadline = Date.now() + action.ms;
          return;
        case 'cancelTimer':
          deadline = undefined;
          return;
        case 'store':
          return store();
        case 'hangup':
          return port.hangup('normal').catch(() => undefined);
      }
    };

    const fromKey = (r: KeyOutcome | PlayOutcome): OfferInput | undefined => {
      if (r.type === 'key') {
        keyAt = r.at;
        keyTurns = loopTurns();
        keyPromises = promisesMade();
        emit(log, 'debug', 'offer.key', 'key pressed', { digit: r.digit, phase: state.phase });
        return { type: 'dtmf', digit: r.digit };
      }
      if (r.type === 'hangup') return { type: 'hangup' };
      return undefined;
    };

    /** Waits for what comes next: the prompt's end, a key, the deadline or the hang-up. */
    const next = async (): Promise<OfferInput | undefined> => {
      if (playing) {
        const current = playing;
        let timer: NodeJS.Timeout | undefined;
        const deadlineHit = new Promise<'deadline' | undefined>((resolve) => {
          if (deadline === undefined) return;
          timer = setTimeout(() => resolve('deadline'), Math.max(0, deadline - Date.now()));
        });
        const r = await Promise.race([current.outcome, deadlineHit]);
        clearTimeout(timer);
        if (r === 'deadline' || r === undefined) {
          deadline = undefined;
          return { type: 'timeout' };
        }
        playing = undefined;
        const input = fromKey(r);
        if (input) return input;
        if (r.type === 'finished' && r.failed) {
          emit(log, 'error', 'offer.prompt_failed', 'prompt could not be played; check the sound files', {
            prompt: current.prompt,
            media: r.failed.media,
            error: r.failed.error,
          });
        }
        emit(log, 'debug', 'offer.prompt_finished', 'prompt finished', { prompt: current.prompt, state: r.type === 'finished' && r.failed ? 'failed' : 'done' });
        return { type: 'promptFinished', prompt: current.prompt };
      }
      if (deadline === undefined) return undefined;
      const r = await port.waitKey(Math.max(0, deadline - Date.now()));
      if (r.type === 'timeout') {
        deadline = undefined;
        return { type: 'timeout' };
      }
      return fromKey(r);
    };

    const step = async (event: OfferInput): Promise<void> => {
      const s = stepOffer(state, event, this.opts);
      state = s.state;
      // One after the other; an action without anything to wait for goes on at once (no turn of the microtask queue).
      for (const action of s.actions) {
        const pending = perform(action);
        if (pending) await pending;
      }
    };

    try {
      inputs.push(prepared ? { type: 'start', context: prepared.context } : { type: 'start' });
      while (state.phase !== 'done') {
        const event = inputs.shift() ?? (await next());
        if (!event) {
          // The machine never waits without a timer or a prompt; be safe anyway.
          log.warn('offer stalled without a timer; ending it', { phase: state.phase });
          break;
        }
        await step(event);
      }
    } catch (err) {
      if (!port.gone) emit(log, 'warn', 'offer.call_failed', 'a call action failed during the offer; ending it', { error: errorText(err), phase: state.phase });
      // A hang-up (or a broken connection) while storing does not undo the store: the write is synchronous.
      // The call is left to its transport (ARI hangs it up, AGI returns it to the dialplan).
      state = stepOffer(state, { type: 'hangup' }, this.opts).state;
    }
    const outcome = state.outcome ?? 'hangup';
    emit(log, 'info', 'offer.ended', 'offer ended', { outcome, key: state.key, requestId, entry });
    return outcome;
  }
}

/**
 * The opt-in's steps in ms (offer.timing): key event routed → flow's store action (`keyToStore`: the state
 * machine's step), store action → the engine's turn (`queued`), the reads before the transaction (`read`),
 * the decision (`decide`, inside the transaction), the rows written and committed (`writeCommit`), the queue
 * position read (`position`), the engine → the flow (`handBack`), and the flow → confirmation requested (`confirm`).
 */
export function optInSteps(t: { key?: number; keyTurns?: number; keyPromises?: number; store: number; returned?: number; marks: OptInMarks }, confirmAt: number): Record<string, number | undefined> {
  const m = t.marks;
  const d = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : micro(b - a));
  return {
    keyToStore: d(t.key, t.store),
    queued: d(t.store, m.started),
    read: d(m.started, m.read),
    decide: d(m.read, m.decided),
    writeCommit: d(m.decided, m.committed),
    write: d(m.decided, m.staged),
    groupCommit: d(m.staged, m.committed),
    position: d(m.committed, m.positioned),
    handBack: d(m.positioned ?? m.committed, t.returned),
    confirm: d(t.returned, confirmAt),
    keyToConfirm: d(t.key, confirmAt),
    // Only under a bench's preload that counts them (bench/turns-preload.ts): the loop's turns, key event → durable.
    ...(t.keyTurns !== undefined && m.turns !== undefined ? { turns: m.turns - t.keyTurns } : {}),
    ...(t.keyPromises !== undefined && m.promises !== undefined ? { promises: m.promises - t.keyPromises } : {}),
  };
}
