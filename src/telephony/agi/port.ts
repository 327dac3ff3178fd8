/**
 * The CallPort over FastAGI: one {@link AgiSession} (one call) mapped onto AGI's blocking commands.
 *
 *   answer          → ANSWER
 *   setLanguage     → SET VARIABLE CHANNEL(language) <lang>   (only when it differs from agi_language)
 *   play [media]    → STREAM FILE <sound> "<stop keys>" per item (`digits:<n>`: SAY DIGITS <n> "<stop keys>");
 *                     result 0 = played, >0 = the key's ASCII code (35 = '#'), -1 = hung up or the file
 *                     could not be opened (CHANNEL STATUS tells the two apart)
 *   stop            → nothing (STREAM FILE has already stopped at the key)
 *   waitKey ms      → WAIT FOR DIGIT <ms>   (0 = timeout, >0 = a key, -1 = hung up)
 *   hangup          → HANGUP
 *   refuse          → SET VARIABLE CC_OFFER_OUTCOME refused (the dialplan continues: busy)
 */
import { performance } from 'node:perf_hooks';
import { AgiHangup, AgiSession } from './server';
import { agiQuote, resultDigit } from './protocol';
import type { CallPort, KeyOutcome, PlayOptions, PlayOutcome } from '../port';

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

/** Asterisk's "no caller ID" is the word unknown. */
function callerValue(v: string | undefined): string | undefined {
  return v === undefined || v === 'unknown' ? undefined : v;
}

/**
 * The offer's arguments as Stasis() passes them, from `AGI(agi://…/offer,<prospect>[,<agent device>[,<cause>[,<profile>]]])`;
 * a missing agent device is derived from the channel name.
 */
export function offerArgsFromAgi(session: AgiSession): string[] {
  const { vars, args } = session.env;
  const [prospect, agentArg, cause, profile] = args;
  const agent = agentArg !== undefined && agentArg !== '' ? agentArg : deviceFromChannel(vars.agi_channel);
  return ['offer', prospect ?? '', agent ?? '', ...(cause !== undefined || profile !== undefined ? [cause ?? ''] : []), ...(profile !== undefined ? [profile] : [])];
}

/**
 * An agent feature code's arguments as Stasis() passes them (`['pending', <agent device>]`,
 * `['pause', <agent device>]`), from `AGI(agi://…/<code>[,<agent device>])`; a missing agent device is derived
 * from the channel name, as for the offer.
 */
export function featureArgsFromAgi(code: 'pending' | 'pause', session: AgiSession): string[] {
  const { vars, args } = session.env;
  const agent = args[0] !== undefined && args[0] !== '' ? args[0] : deviceFromChannel(vars.agi_channel);
  return [code, agent ?? ''];
}

/** A blocking prompt may take this long before the AGI command is given up. */
const STREAM_TIMEOUT_MS = 5 * 60_000;

export class AgiCallPort implements CallPort {
  readonly channelId: string;
  readonly language: string | undefined;
  readonly caller: { name?: string; number?: string };

  constructor(private readonly session: AgiSession) {
    const vars = session.env.vars;
    this.channelId = vars.agi_uniqueid ?? '';
    this.language = vars.agi_language;
    this.caller = { name: callerValue(vars.agi_calleridname), number: callerValue(vars.agi_callerid) };
  }

  get gone(): boolean {
    return this.session.hungUp;
  }

  async answer(): Promise<void> {
    await this.session.command('ANSWER');
  }

  async setLanguage(language: string): Promise<void> {
    if (language !== this.language) await this.session.command(`SET VARIABLE CHANNEL(language) ${language}`);
  }

  async play(media: readonly string[], opts: PlayOptions = {}): Promise<PlayOutcome> {
    const keys = agiQuote(opts.stopKeys ?? '');
    let failed: { media: string; error?: string } | undefined;
    try {
      for (const item of media) {
        const command = item.startsWith('digits:') ? `SAY DIGITS ${item.slice('digits:'.length)} ${keys}` : `STREAM FILE ${soundName(item)} ${keys}`;
        const reply = await this.session.command(command, opts.guardMs ?? STREAM_TIMEOUT_MS);
        const digit = resultDigit(reply.result);
        if (digit) return { type: 'key', digit, at: performance.now() };
        if (reply.result < 0) {
          // -1: hung up, or the file could not be opened (then the channel is alive).
          const alive = await this.session.command('CHANNEL STATUS').then(
            (r) => r.result >= 0,
            () => false,
          );
          if (!alive) return { type: 'hangup' };
          failed ??= { media: item };
        }
      }
    } catch (err) {
      if (err instanceof AgiHangup) return { type: 'hangup' };
      throw err;
    }
    return { type: 'finished', failed };
  }

  async stop(): Promise<void> {
    // STREAM FILE stops at its escape keys on its own.
  }

  async waitKey(ms: number, keys?: string): Promise<KeyOutcome> {
    const end = Date.now() + ms;
    try {
      for (;;) {
        const left = Math.max(0, end - Date.now());
        const reply = await this.session.command(`WAIT FOR DIGIT ${left}`, left + 10_000);
        if (reply.result < 0) return { type: 'hangup' };
        const digit = resultDigit(reply.result);
        if (!digit) return { type: 'timeout' };
        if (keys === undefined || keys.includes(digit)) return { type: 'key', digit, at: performance.now() };
        if (Date.now() >= end) return { type: 'timeout' };
      }
    } catch (err) {
      if (err instanceof AgiHangup) return { type: 'hangup' };
      throw err;
    }
  }

  async hangup(): Promise<void> {
    await this.session.command('HANGUP');
  }

  async refuse(): Promise<void> {
    await this.session.command('SET VARIABLE CC_OFFER_OUTCOME refused');
  }

  onGone(fn: () => void): void {
    this.session.onHangup(fn);
  }
}
