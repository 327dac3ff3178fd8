/**
 * The CallPort over ARI, with THE prompt helper every flow uses (offer, recall menu and announcements,
 * the *82 menu): play a list, stop on a key, guard timer.
 *
 * A list is played as one playback per item, queued on the channel in order (each request returns as
 * soon as Asterisk has queued it). `digits:<n>` is expanded into `sound:digits/<d>` items: Asterisk's
 * own `digits:` playback cannot be interrupted (a STOP only ends the digit being said, and the channel's
 * control queue — a bridge, the next playback — waits until all digits are read out), while each sound
 * file can. A stop key therefore stops the item that plays and cancels every item still queued, at once.
 *
 * All REST calls go through the lean client (src/telephony/ari/rest.ts); events come through the
 * {@link AriRouter}, by channel id.
 */
import { performance } from 'node:perf_hooks';
import type { AriRest } from './rest';
import { AriRestError } from './rest-error';
import type { CallPort, DeviceStates, KeyOutcome, PlayOptions, PlayOutcome, Switchboard, SwitchboardPort } from '../port';
import type { AriEventSource, AriRouter } from './router';

/** The REST calls a port needs (AriRest provides them; unit tests fake them). */
export type AriCalls = Pick<AriRest, 'answer' | 'play' | 'stopPlayback' | 'hangup'>;

const DEFAULT_GUARD_MS = 60_000;
/** How long a failed playback waits for the channel's hang-up before the prompt counts as failed (ms). */
export const FAILED_PLAYBACK_GRACE_MS = 250;

/** `digits:2001` → sound:digits/2, sound:digits/0, … (a key can stop each); other media unchanged. */
export function expandMedia(media: readonly string[]): string[] {
  const out: string[] = [];
  for (const m of media) {
    if (m.startsWith('digits:')) {
      for (const d of m.slice('digits:'.length)) if (/[0-9]/.test(d)) out.push(`sound:digits/${d}`);
    } else {
      out.push(m);
    }
  }
  return out;
}

interface Prompt {
  items: string[];
  ids: string[];
  /** Ids whose play request has been answered and whose end has not been reported. */
  playing: Set<string>;
  /** Ids not yet reported finished (issued or not). */
  remaining: Set<string>;
  stopKeys: string;
  failed?: { media: string; error?: string };
  done: boolean;
  end(outcome: PlayOutcome): void;
}

export class AriCallPort implements SwitchboardPort {
  readonly language: string | undefined;
  readonly caller: { name?: string; number?: string };
  dialStatus: string | undefined;
  private lang: string | undefined;
  private isGone = false;
  private hungUp = false;
  private readonly goneListeners: ((cause?: number) => void)[] = [];
  private prompt?: Prompt;
  private keyWaiter?: (outcome: KeyOutcome) => void;
  private keysFor?: string;
  private seq = 0;
  private readonly detach: () => void;

  constructor(
    private readonly rest: AriCalls,
    private readonly router: AriRouter,
    readonly channelId: string,
    info: { language?: string; caller?: { name?: string; number?: string } } = {},
  ) {
    this.language = info.language;
    this.lang = info.language;
    this.caller = info.caller ?? {};
    this.detach = router.attach(channelId, {
      dtmf: (digit) => this.onKey(digit, performance.now()),
      playbackFinished: (id, state) => this.onPlaybackFinished(id, state),
      gone: (cause) => this.onGoneEvent(cause),
      dial: (status) => {
        this.dialStatus = status;
      },
    });
  }

  get gone(): boolean {
    return this.isGone;
  }

  answer(): Promise<void> {
    return this.rest.answer(this.channelId);
  }

  async setLanguage(language: string): Promise<void> {
    this.lang = language;
  }

  play(media: readonly string[], opts: PlayOptions = {}): Promise<PlayOutcome> {
    if (this.isGone) return Promise.resolve({ type: 'hangup' });
    this.prompt?.end({ type: 'finished' });
    const items = expandMedia(media);
    const stamp = `${Date.now().toString(36)}${(++this.seq).toString(36)}`;
    const ids = items.map((_, i) => `${this.channelId}-p${stamp}-${i}`);
    return new Promise<PlayOutcome>((resolve) => {
      const prompt: Prompt = {
        items,
        ids,
        playing: new Set(),
        remaining: new Set(ids),
        stopKeys: opts.stopKeys ?? '',
        done: false,
        end: (outcome) => {
          if (prompt.done) return;
          prompt.done = true;
          clearTimeout(guard);
          if (this.prompt === prompt) this.prompt = undefined;
          // Everything still playing or queued stops (queued playbacks are cancelled by the same call). After a key,
          // the requests go out once what the key set off has run to its first wait (the opt-in's store: its
          // commit on SQLite, its first round trip on PostgreSQL): building and writing them is CPU the agent's
          // `#` would otherwise wait for before it is made durable, and the prompt plays a millisecond longer.
          const stopping = [...prompt.playing];
          prompt.playing.clear();
          if (outcome.type === 'key') setImmediate(() => stopping.forEach((id) => this.stopOne(id)));
          else for (const id of stopping) this.stopOne(id);
          for (const id of ids) this.router.forgetPlayback(id);
          resolve(outcome);
        },
      };
      this.prompt = prompt;
      const guard = setTimeout(() => prompt.end({ type: 'timeout' }), opts.guardMs ?? DEFAULT_GUARD_MS);
      guard.unref?.();
      if (items.length === 0) {
        prompt.end({ type: 'finished' });
        return;
      }
      void this.issue(prompt);
    });
  }

  /** Queues the list's playbacks in order; each request returns once Asterisk has queued it. */
  private async issue(prompt: Prompt): Promise<void> {
    for (const [i, media] of prompt.items.entries()) {
      if (prompt.done) return;
      const playbackId = prompt.ids[i];
      this.router.trackPlayback(playbackId, this.channelId);
      try {
        await this.rest.play(this.channelId, { media, lang: this.lang, playbackId });
        // A key came while this request was on its way: stop what it queued.
        if (prompt.done) this.stopOne(playbackId);
        else if (prompt.remaining.has(playbackId)) prompt.playing.add(playbackId);
      } catch (err) {
        this.router.forgetPlayback(playbackId);
        if (prompt.done) return;
        // 404 (no such channel) / 409 (not in our Stasis app): the caller hung up before the hang-up's event
        // reached us — a missing sound is a 2xx here and a failed PlaybackFinished later, never one of these.
        if (this.isGone || isChannelGone(err)) return prompt.end({ type: 'hangup' });
        prompt.failed ??= { media, error: err instanceof Error ? err.message : String(err) };
        this.finishedOne(prompt, playbackId);
      }
    }
  }

  private stopOne(playbackId: string): void {
    this.rest.stopPlayback(playbackId).catch(() => undefined);
  }

  private finishedOne(prompt: Prompt, playbackId: string): void {
    if (prompt.done) return;
    prompt.remaining.delete(playbackId);
    prompt.playing.delete(playbackId);
    if (prompt.remaining.size === 0) prompt.end({ type: 'finished', failed: prompt.failed });
  }

  private onPlaybackFinished(playbackId: string, state: string | undefined): void {
    const prompt = this.prompt;
    if (!prompt || !prompt.remaining.has(playbackId)) return;
    if (state === 'failed') {
      prompt.failed ??= { media: prompt.items[prompt.ids.indexOf(playbackId)] };
      // Asterisk also fails a playback that starts on a channel being hung up (the agent pressed # and hung up at
      // once), and the hang-up's events come a moment later: wait for them before calling it a failed prompt.
      const t = setTimeout(() => this.finishedOne(prompt, playbackId), FAILED_PLAYBACK_GRACE_MS);
      t.unref?.();
      return;
    }
    this.finishedOne(prompt, playbackId);
  }

  private onKey(digit: string, at: number): void {
    const prompt = this.prompt;
    if (prompt && prompt.stopKeys.includes(digit)) {
      prompt.end({ type: 'key', digit, at });
      return;
    }
    if (this.keyWaiter && (this.keysFor === undefined || this.keysFor.includes(digit))) this.keyWaiter({ type: 'key', digit, at });
  }

  private onGoneEvent(cause: number | undefined): void {
    if (this.isGone) return;
    this.isGone = true;
    this.prompt?.end({ type: 'hangup' });
    this.keyWaiter?.({ type: 'hangup' });
    for (const fn of this.goneListeners.splice(0)) fn(cause);
  }

  async stop(): Promise<void> {
    this.prompt?.end({ type: 'finished' });
  }

  /** The channel is no longer on the PBX (found out after a reconnection): the call ends as hung up. */
  vanished(): void {
    this.onGoneEvent(undefined);
  }

  waitKey(ms: number, keys?: string): Promise<KeyOutcome> {
    if (this.isGone) return Promise.resolve({ type: 'hangup' });
    this.keyWaiter?.({ type: 'timeout' });
    return new Promise<KeyOutcome>((resolve) => {
      const done = (outcome: KeyOutcome) => {
        clearTimeout(timer);
        if (this.keyWaiter === done) {
          this.keyWaiter = undefined;
          this.keysFor = undefined;
        }
        resolve(outcome);
      };
      const timer = setTimeout(() => done({ type: 'timeout' }), ms);
      this.keyWaiter = done;
      this.keysFor = keys;
    });
  }

  async hangup(reason: 'normal' | 'busy' = 'normal'): Promise<void> {
    this.hungUp = true;
    await this.rest.hangup(this.channelId, reason);
  }

  refuse(): Promise<void> {
    return this.hangup('busy');
  }

  onGone(fn: (cause?: number) => void): void {
    if (this.isGone) fn();
    else this.goneListeners.push(fn);
  }

  /**
   * The flow is done with the channel: stop routing its events here. `hangUp`: a channel still up that
   * nobody hung up is hung up (a call must never be left in the app).
   */
  release(hangUp = false): void {
    this.prompt?.end({ type: 'finished' });
    this.detach();
    if (hangUp && !this.isGone && !this.hungUp) void this.hangup('normal').catch(() => undefined);
  }
}

/** REST calls the switchboard needs beyond a port's. */
export type SwitchboardCalls = AriCalls & Pick<AriRest, 'originate' | 'createBridge' | 'addToBridge' | 'destroyBridge'>;

/** Originate, bridges and ports on owned channels, over ARI. */
export class AriSwitchboard implements Switchboard {
  constructor(
    private readonly rest: SwitchboardCalls,
    private readonly router: AriRouter,
    private readonly app: string,
  ) {}

  originate(p: Parameters<Switchboard['originate']>[0]): Promise<void> {
    return this.rest.originate({
      endpoint: p.endpoint,
      channelId: p.channelId,
      app: this.app,
      appArgs: p.appArgs,
      callerId: p.callerId,
      timeout: p.timeoutSec,
      variables: p.variables,
    });
  }

  port(channelId: string, info?: { language?: string; caller?: { name?: string; number?: string } }): AriCallPort {
    return new AriCallPort(this.rest, this.router, channelId, info);
  }

  createBridge(bridgeId: string, name: string): Promise<void> {
    return this.rest.createBridge(bridgeId, name);
  }

  addToBridge(bridgeId: string, channelId: string): Promise<void> {
    return this.rest.addToBridge(bridgeId, channelId);
  }

  destroyBridge(bridgeId: string): Promise<void> {
    return this.rest.destroyBridge(bridgeId);
  }

  hangupChannel(channelId: string): Promise<void> {
    return this.rest.hangup(channelId);
  }
}

/** Device states over ARI: subscriptions and reads through the lean client, changes from the WebSocket. */
export class AriDeviceStates implements DeviceStates {
  private listener?: (device: string, state: string) => void;

  constructor(
    private readonly rest: Pick<AriRest, 'subscribe' | 'deviceState'>,
    events: AriEventSource,
    private readonly app: string,
    private readonly isConnected: () => boolean,
  ) {
    events.onAri('DeviceStateChanged', (e: { device_state: { name: string; state: string } }) => this.listener?.(e.device_state.name, e.device_state.state));
  }

  get connected(): boolean {
    return this.isConnected();
  }

  subscribe(device: string): Promise<void> {
    return this.rest.subscribe(this.app, `deviceState:${device}`);
  }

  get(device: string): Promise<string> {
    return this.rest.deviceState(device);
  }

  onChange(fn: (device: string, state: string) => void): void {
    this.listener = fn;
  }
}

export type { CallPort };

/** A play request refused because the channel is no longer ours: Asterisk's 404 "Channel not found" or 409 "Channel not in Stasis application". */
function isChannelGone(err: unknown): boolean {
  return err instanceof AriRestError && (err.status === 404 || err.status === 409);
}
