/**
 * The offer at the busy signal over ARI: a thin adapter around the pure machine in core/offer.ts.
 *
 * One session per channel that enters `Stasis(considerate-callback,offer,...)`. Inputs from ARI
 * (prompt finished, DTMF, hang-up) and from our timer go through `stepOffer`; the returned actions are
 * carried out in order on a per-call queue. The opt-in write is synchronous and committed before the
 * agent hears the confirmation.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Channel } from 'ari-client';
import {
  OfferAction,
  OfferContext,
  OfferInput,
  OfferPrompt,
  OfferPromptMedia,
  OfferState,
  initialOfferState,
  offerMedia,
  parseOfferArgs,
  stepOffer,
} from '../core/offer';
import { chooseLanguage, describeInput, sanitizeCallerIdName, sanitizeCallerIdNumber } from '../core/validate';
import type { Logger } from '../log';
import type { AriConnection } from './connection';
import { errorText } from './connection';
import type { AriRest } from './rest';

import type { OptInInput, OptInResult } from '../engine';
import type { ZoneSource } from '../core/policy';

export type OfferRequestInput = OptInInput;

/** What the offer may say, with the prospect's zone (service: zone from the number + engine.offerOutlook). */
export interface OfferPreparation {
  context: OfferContext;
  timeZone?: string;
  zoneSource?: ZoneSource;
  /** For the log line: queue, zone and why. */
  details?: Record<string, unknown>;
}

/** What the offer needs from the rest of the service: one synchronous, durable opt-in write. */
export interface OfferSink {
  optIn(input: OfferRequestInput): OptInResult;
  /** Optional: the promise and queue position before the offer plays (absent: a regular offer). */
  prepare?(input: OfferRequestInput): Promise<OfferPreparation>;
}

/** The machine's `stored` input for an opt-in result. */
export function storedInput(r: OptInResult): OfferInput {
  if (r.result === 'full' || r.result === 'closed') return { type: 'stored', result: r.result };
  return r.promise ? { type: 'stored', result: r.result, promise: r.promise } : { type: 'stored', result: r.result };
}

export interface OfferFlowOptions {
  keyTimeoutMs: number;
  closingTimeoutMs: number;
  languages: readonly string[];
  defaultLanguage: string;
  prompts: OfferPromptMedia;
  numbers: { minDigits: number; maxDigits: number };
}

interface Session {
  channelId: string;
  state: OfferState;
  language: string;
  input?: OfferRequestInput;
  requestId?: string;
  timer?: NodeJS.Timeout;
  playbackId?: string;
  /** performance.now() when the last key's event reached the app (bench: `#` → durable). */
  keyAt?: number;
  queue: Promise<void>;
  /** ARI actions queued or running; when 0, the next one starts at once instead of a tick later. */
  inFlight: number;
  log: Logger;
}

export class OfferFlow {
  private readonly sessions = new Map<string, Session>();
  private readonly playbacks = new Map<string, { channelId: string; prompt: OfferPrompt }>();
  /** The offer's ARI calls go through the lean REST client: they are on the agent's hot path. */
  private readonly rest: AriRest;

  constructor(
    conn: AriConnection,
    private readonly sink: OfferSink,
    private readonly opts: OfferFlowOptions,
    private readonly log: Logger,
  ) {
    this.rest = conn.rest;
    conn.onAri('ChannelDtmfReceived', (event: { digit: string; channel: { id: string } }) => {
      const s = this.sessions.get(event.channel.id);
      if (s) s.keyAt = performance.now();
      this.input(event.channel.id, { type: 'dtmf', digit: event.digit });
    });
    conn.onAri('PlaybackFinished', (event: { playback: { id: string; state?: string } }) => {
      const p = this.playbacks.get(event.playback.id);
      if (!p) return;
      this.playbacks.delete(event.playback.id);
      const log = this.sessions.get(p.channelId)?.log;
      if (event.playback.state === 'failed') {
        log?.error('prompt could not be played; check the sound files', { prompt: p.prompt, media: offerMedia(this.opts.prompts, p.prompt) });
      } else {
        log?.debug('prompt finished', { prompt: p.prompt, state: event.playback.state });
      }
      this.input(p.channelId, { type: 'promptFinished', prompt: p.prompt });
    });
    const gone = (event: { channel: { id: string } }) => this.input(event.channel.id, { type: 'hangup' });
    conn.onAri('StasisEnd', gone);
    conn.onAri('ChannelHangupRequest', gone);
    conn.onAri('ChannelDestroyed', gone);
  }

  /** Calls currently in the offer, for reconciliation and shutdown. */
  get active(): number {
    return this.sessions.size;
  }

  owns(channelId: string): boolean {
    return this.sessions.has(channelId);
  }

  /** After a reconnection: offers whose channel vanished meanwhile end as hung up. */
  reconcileGone(existing: ReadonlySet<string>): void {
    for (const id of [...this.sessions.keys()]) if (!existing.has(id)) this.input(id, { type: 'hangup' });
  }

  /** Entry from the Stasis router: `args` are the Stasis() arguments after the app name. */
  start(channel: Channel, args: string[]): void {
    const channelId = channel.id;
    const log = this.log.child({ channelId });
    const parsed = parseOfferArgs(args, this.opts.numbers);
    if (!parsed.ok) {
      log.warn('offer refused: bad input from the dialplan; no callback, call ended as busy', {
        reason: parsed.reason,
        args: args.map((a) => describeInput(a)),
      });
      this.rest.hangup(channelId, 'busy').catch((err: unknown) => {
        log.warn('hang-up after refused offer failed', { error: errorText(err) });
      });
      return;
    }
    const language = chooseLanguage(channel.language, this.opts.languages, this.opts.defaultLanguage);
    const input: OfferRequestInput = {
      agent: parsed.value.agent,
      agentCallerId: { name: sanitizeCallerIdName(channel.caller?.name), number: sanitizeCallerIdNumber(channel.caller?.number) },
      prospect: parsed.value.prospect,
      language,
      channelId,
    };
    const session: Session = {
      channelId,
      state: initialOfferState(),
      language,
      input,
      queue: Promise.resolve(),
      inFlight: 0,
      log: log.child({ agent: input.agent, prospect: input.prospect }),
    };
    this.sessions.set(channelId, session);
    const prepare = this.sink.prepare;
    if (!prepare) {
      // The answer request leaves before the log line is written: the agent is waiting for the prompt.
      this.input(channelId, { type: 'start' });
      session.log.info('busy: offering a callback', { hangupCause: parsed.value.hangupCause, language });
      return;
    }
    prepare(input).then(
      (p) => {
        input.timeZone = p.timeZone;
        input.zoneSource = p.zoneSource;
        this.input(channelId, { type: 'start', context: p.context });
        session.log.info(p.context.promise === 'declined' ? 'busy: no callback can be promised; the agent is told why' : 'busy: offering a callback', {
          event: 'offer-started',
          hangupCause: parsed.value.hangupCause,
          language,
          promise: p.context.promise,
          position: p.context.position,
          ...p.details,
        });
      },
      (err: unknown) => {
        session.log.warn('could not prepare the offer; offering as usual', { error: errorText(err) });
        this.input(channelId, { type: 'start' });
      },
    );
  }

  private input(channelId: string, input: OfferInput): void {
    const s = this.sessions.get(channelId);
    if (!s) return;
    const step = stepOffer(s.state, input, this.opts);
    const before = s.state;
    s.state = step.state;
    if (input.type === 'dtmf') s.log.debug('key pressed', { digit: input.digit, phase: before.phase });
    for (const action of step.actions) this.enqueue(s, action);
    if (s.state.phase === 'done') this.finish(s, before);
  }

  private finish(s: Session, before: OfferState): void {
    if (before.phase !== 'done') {
      s.log.info('offer ended', { outcome: s.state.outcome, key: s.state.key, requestId: s.requestId });
    }
    clearTimeout(s.timer);
    s.queue = s.queue.then(() => {
      if (s.state.phase === 'done') this.sessions.delete(s.channelId);
    });
  }

  private enqueue(s: Session, action: OfferAction): void {
    // Synchronous actions happen now, in order with the state change; ARI calls queue up per call.
    if (action.type === 'startTimer') {
      clearTimeout(s.timer);
      s.timer = setTimeout(() => this.input(s.channelId, { type: 'timeout' }), action.ms);
      return;
    }
    if (action.type === 'cancelTimer') {
      clearTimeout(s.timer);
      return;
    }
    if (action.type === 'store') {
      this.store(s);
      return;
    }
    const run = () => this.perform(s, action);
    // An idle call starts its action now (the request goes out in this tick); otherwise it waits its turn.
    const started = s.inFlight === 0 ? run() : s.queue.then(run);
    s.inFlight++;
    s.queue = started
      .finally(() => {
        s.inFlight--;
      })
      .catch((err: unknown) => {
      // After a hang-up, failing ARI calls on the vanished channel are expected.
      const level = s.state.phase === 'done' ? 'debug' : 'warn';
      s.log.log(level, 'ARI action failed', { action: action.type, error: errorText(err) });
      if (action.type === 'play') this.input(s.channelId, { type: 'promptFinished', prompt: action.prompt });
    });
  }

  private store(s: Session): void {
    const input = s.input;
    if (!input) return;
    try {
      // For `npm run bench` (`#` → durable): the commit alone, event received → committed, and the
      // wall-clock time of the commit (compared there with Asterisk's timestamp of the DTMF event).
      const t0 = performance.now();
      const r = this.sink.optIn(input);
      const t1 = performance.now();
      const commit = { commitMs: micro(t1 - t0), keyToDurableMs: s.keyAt === undefined ? undefined : micro(t1 - s.keyAt), committedAt: Date.now() };
      if (r.result === 'full') {
        s.log.warn('agent has too many pending callbacks; none added', { pending: r.pending });
        this.input(s.channelId, { type: 'stored', result: 'full' });
        return;
      }
      if (r.result === 'closed') {
        s.log.info('no callback stored: nothing could be promised any more', { event: 'offer-closed', reason: r.reason });
        this.input(s.channelId, storedInput(r));
        return;
      }
      s.requestId = r.requestId;
      s.log = s.log.child({ requestId: r.requestId });
      s.log.info(r.result === 'created' ? 'callback requested' : 'callback request refreshed', { ...commit, promise: r.promise, position: r.position });
      this.input(s.channelId, storedInput(r));
    } catch (err) {
      s.log.error('could not store the callback request; the agent is told no callback was scheduled', { error: errorText(err) });
      this.input(s.channelId, { type: 'storeFailed' });
    }
  }

  private async perform(s: Session, action: OfferAction): Promise<void> {
    const { channelId } = s;
    switch (action.type) {
      case 'answer':
        await this.rest.answer(channelId);
        return;
      case 'play': {
        if (s.state.phase === 'done') return;
        const playbackId = randomUUID();
        this.playbacks.set(playbackId, { channelId, prompt: action.prompt });
        s.playbackId = playbackId;
        const media = offerMedia(this.opts.prompts, action.prompt, action.position);
        s.log.debug('prompt playing', { prompt: action.prompt, media });
        await this.rest.play(channelId, { media, lang: s.language, playbackId });
        return;
      }
      case 'stopPlayback': {
        const playbackId = s.playbackId;
        if (!playbackId || !this.playbacks.has(playbackId)) return;
        this.playbacks.delete(playbackId);
        await this.rest.stopPlayback(playbackId).catch(() => undefined);
        return;
      }
      case 'hangup':
        await this.rest.hangup(channelId, 'normal').catch(() => undefined);
        return;
      default:
        return;
    }
  }
}

function micro(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
