/**
 * The offer at the busy signal over FastAGI: `AGI(agi://127.0.0.1:4573/offer,<prospect>[,<agent device>[,<cause>]])`.
 *
 * The same pure machine as the ARI path (core/offer.ts `stepOffer`, `parseOfferArgs`) and the same durable
 * write (`engine.optIn`); this file only maps its actions onto AGI's blocking commands:
 *
 *   answer          → ANSWER
 *   play <prompt>   → STREAM FILE <sound> "<keys>"  (blocks until the prompt ends or a key is pressed;
 *                     result 0 = finished, >0 = the key's ASCII code, e.g. 35 for '#', -1 = hung up)
 *   startTimer ms   → a deadline; when nothing else is left to do: WAIT FOR DIGIT <remaining ms>
 *                     (0 = timeout, >0 = a key)
 *   cancelTimer     → clears the deadline
 *   stopPlayback    → nothing (STREAM FILE already stopped at the key)
 *   store           → engine.optIn (synchronous, committed before the confirmation plays)
 *   hangup          → HANGUP
 *
 * Inputs produced while a batch of actions runs are fed to the machine after the batch, as ARI events
 * would arrive after the calls that caused them.
 */
import { OfferAction, OfferInput, OfferPrompt, OfferState, initialOfferState, offerMedia, parseOfferArgs, stepOffer } from '../core/offer';
import { chooseLanguage, describeInput, sanitizeCallerIdName, sanitizeCallerIdNumber } from '../core/validate';
import { storedInput, type OfferFlowOptions, type OfferSink, type OfferRequestInput } from '../asterisk/offer-flow';
import type { Logger } from '../log';
import { AgiHangup, AgiSession } from './server';
import { agiQuote, resultDigit } from './protocol';

/** Keys that interrupt the offer prompt: any key decides (only # opts in). */
const OFFER_KEYS = '#0123456789*';

/** The agent's device from the AGI channel name: PJSIP/1001-0000002a → PJSIP/1001 (as the dialplan routine does). */
export function deviceFromChannel(channel: string | undefined): string | undefined {
  if (!channel) return undefined;
  if (/-[0-9a-f]{8}$/.test(channel)) return channel.slice(0, -9);
  return channel.split('-')[0];
}

/** A sound name for STREAM FILE from a prompt's ARI media URI ("sound:cc-offer" → "cc-offer"). */
export function soundName(media: string): string {
  return media.startsWith('sound:') ? media.slice('sound:'.length) : media;
}

function callerValue(v: string | undefined): string {
  return v === undefined || v === 'unknown' ? '' : v;
}

export class AgiOffer {
  constructor(
    private readonly sink: OfferSink,
    private readonly opts: OfferFlowOptions,
  ) {}

  /** The FastAGI handler for the script "offer". */
  readonly handle = async (session: AgiSession): Promise<void> => {
    const { vars, args } = session.env;
    const channelId = vars.agi_uniqueid ?? '';
    let log: Logger = session.log;
    const [prospectArg, agentArg, causeArg] = args;
    const agent = agentArg !== undefined && agentArg !== '' ? agentArg : deviceFromChannel(vars.agi_channel);
    const parsed = parseOfferArgs(['offer', prospectArg ?? '', agent ?? '', ...(causeArg !== undefined ? [causeArg] : [])], this.opts.numbers);
    if (!parsed.ok) {
      log.warn('offer refused: bad input from the dialplan; no callback, the call continues in the dialplan (busy)', {
        reason: parsed.reason,
        args: args.map((a) => describeInput(a)),
        entry: 'agi',
      });
      await session.command('SET VARIABLE CC_OFFER_OUTCOME refused').catch(() => undefined);
      return;
    }
    const language = chooseLanguage(vars.agi_language, this.opts.languages, this.opts.defaultLanguage);
    const input: OfferRequestInput = {
      agent: parsed.value.agent,
      agentCallerId: { name: sanitizeCallerIdName(callerValue(vars.agi_calleridname)), number: sanitizeCallerIdNumber(callerValue(vars.agi_callerid)) },
      prospect: parsed.value.prospect,
      language,
      channelId,
    };
    log = log.child({ agent: input.agent, prospect: input.prospect });
    log.info('busy: offering a callback', { hangupCause: parsed.value.hangupCause, language, entry: 'agi' });
    if (language !== vars.agi_language) {
      await session.command(`SET VARIABLE CHANNEL(language) ${language}`).catch(() => undefined);
    }

    let state: OfferState = initialOfferState();
    let deadline: number | undefined;
    let requestId: string | undefined;
    let start: OfferInput = { type: 'start' };
    if (this.sink.prepare) {
      try {
        const p = await this.sink.prepare(input);
        input.timeZone = p.timeZone;
        input.zoneSource = p.zoneSource;
        start = { type: 'start', context: p.context };
        log.info('offer prepared', { event: 'offer-started', promise: p.context.promise, position: p.context.position, entry: 'agi', ...p.details });
      } catch (err) {
        log.warn('could not prepare the offer; offering as usual', { error: (err as Error).message, entry: 'agi' });
      }
    }
    const inputs: OfferInput[] = [start];

    const perform = async (action: OfferAction): Promise<void> => {
      switch (action.type) {
        case 'answer':
          await session.command('ANSWER');
          return;
        case 'play': {
          const keys = action.prompt === 'offer' || action.prompt === 'offerNextDay' || action.prompt === 'queue' ? OFFER_KEYS : '';
          const media = offerMedia(this.opts.prompts, action.prompt, action.position);
          const reply = await session.command(`STREAM FILE ${soundName(media)} ${agiQuote(keys)}`, 5 * 60_000);
          const digit = resultDigit(reply.result);
          if (digit) {
            inputs.push({ type: 'dtmf', digit });
            return;
          }
          if (reply.result < 0) {
            // -1: hung up, or the file could not be opened (then endpos=0 and the channel is alive).
            const alive = await session.command('CHANNEL STATUS').then(
              (r) => r.result >= 0,
              () => false,
            );
            if (!alive) throw new AgiHangup();
            log.error('prompt could not be played; check the sound files', { prompt: action.prompt, media });
          } else {
            log.debug('prompt finished', { prompt: action.prompt });
          }
          inputs.push({ type: 'promptFinished', prompt: action.prompt as OfferPrompt });
          return;
        }
        case 'startTimer':
          deadline = Date.now() + action.ms;
          return;
        case 'cancelTimer':
          deadline = undefined;
          return;
        case 'stopPlayback':
          return;
        case 'store':
          try {
            const r = this.sink.optIn(input);
            if (r.result === 'full') {
              log.warn('agent has too many pending callbacks; none added', { pending: r.pending });
              inputs.push({ type: 'stored', result: 'full' });
              return;
            }
            if (r.result === 'closed') {
              log.info('no callback stored: nothing could be promised any more', { event: 'offer-closed', reason: r.reason, entry: 'agi' });
              inputs.push(storedInput(r));
              return;
            }
            requestId = r.requestId;
            log = log.child({ requestId });
            log.info(r.result === 'created' ? 'callback requested' : 'callback request refreshed', { entry: 'agi', promise: r.promise, position: r.position });
            inputs.push(storedInput(r));
          } catch (err) {
            log.error('could not store the callback request; the agent is told no callback was scheduled', { error: (err as Error).message });
            inputs.push({ type: 'storeFailed' });
          }
          return;
        case 'hangup':
          await session.command('HANGUP').catch(() => undefined);
          return;
      }
    };

    try {
      while (state.phase !== 'done') {
        const next = inputs.shift();
        if (next) {
          const step = stepOffer(state, next, this.opts);
          state = step.state;
          if (next.type === 'dtmf') log.debug('key pressed', { digit: next.digit });
          for (const action of step.actions) await perform(action);
          continue;
        }
        if (deadline === undefined) {
          // Nothing to wait for: the machine never leaves a phase without a timer, but be safe.
          log.warn('offer stalled without a timer; ending it', { phase: state.phase });
          break;
        }
        const ms = Math.max(0, deadline - Date.now());
        const reply = await session.command(`WAIT FOR DIGIT ${ms}`, ms + 10_000);
        if (reply.result < 0) throw new AgiHangup();
        const digit = resultDigit(reply.result);
        if (digit) inputs.push({ type: 'dtmf', digit });
        else {
          deadline = undefined;
          inputs.push({ type: 'timeout' });
        }
      }
    } catch (err) {
      if (!(err instanceof AgiHangup)) log.warn('AGI command failed during the offer', { error: (err as Error).message, phase: state.phase });
      // A hang-up (or a broken connection) while storing does not undo the store: the write is synchronous.
      state = stepOffer(state, { type: 'hangup' }, this.opts).state;
    }
    log.info('offer ended', { outcome: state.outcome ?? 'hangup', key: state.key, requestId, entry: 'agi' });
  };
}
