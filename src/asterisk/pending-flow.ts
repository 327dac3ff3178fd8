/**
 * The agent's feature code (*82 in the dialplan): `Stasis(considerate-callback,pending,<agent device>)`.
 *
 * The agent hears "Callbacks pending: <count>", the next one's number, and "Press 1 to cancel the next
 * callback, 2 to cancel all, or hang up." Cancelling goes through the engine (`engine.cancel(id, 'agent')`),
 * so it is the same version-guarded transition, history entry and webhook notification as any other cancel.
 * "Next" is the pending request that would be called first (earliest wake-up).
 */
import type { Channel } from 'ari-client';
import type { CallbackRequest } from '../core/policy';
import { chooseLanguage, describeInput, validateAgentDevice } from '../core/validate';
import type { Logger } from '../log';
import type { AriClient, AriConnection } from './connection';
import { errorText } from './connection';

export interface PendingSource {
  /** Pending requests of this agent. */
  pendingOf(agent: string): CallbackRequest[] | Promise<CallbackRequest[]>;
  /** Cancels one request as the agent; true if it was cancelled. */
  cancel(requestId: string): boolean | Promise<boolean>;
}

export interface PendingFlowOptions {
  prompts: { count: string; menu: string; cancelled: string; goodbye: string };
  menuTimeoutMs: number;
  languages: readonly string[];
  defaultLanguage: string;
}

interface Session {
  channelId: string;
  client: AriClient;
  log: Logger;
  language: string;
  gone: boolean;
  playbackId?: string;
  onPlaybackDone?: () => void;
  onKey?: (digit: string) => void;
}

/** Pending requests in the order they would be called: earliest wake-up first, then oldest. */
export function orderPending(requests: readonly CallbackRequest[]): CallbackRequest[] {
  return [...requests].sort((a, b) => (a.wakeAt ?? Infinity) - (b.wakeAt ?? Infinity) || a.createdAt - b.createdAt);
}

export class PendingFlow {
  private readonly sessions = new Map<string, Session>();
  private seq = 0;

  constructor(
    conn: AriConnection,
    private readonly source: PendingSource,
    private readonly opts: PendingFlowOptions,
    private readonly log: Logger,
  ) {
    conn.onAri('ChannelDtmfReceived', (e: { digit: string; channel: { id: string } }) => this.sessions.get(e.channel.id)?.onKey?.(e.digit));
    conn.onAri('PlaybackFinished', (e: { playback: { id: string } }) => {
      for (const s of this.sessions.values()) {
        if (s.playbackId === e.playback.id) {
          s.playbackId = undefined;
          s.onPlaybackDone?.();
        }
      }
    });
    const gone = (e: { channel: { id: string } }) => {
      const s = this.sessions.get(e.channel.id);
      if (!s || s.gone) return;
      s.gone = true;
      s.onPlaybackDone?.();
      s.onKey?.('hangup');
    };
    conn.onAri('StasisEnd', gone);
    conn.onAri('ChannelDestroyed', gone);
  }

  owns(channelId: string): boolean {
    return this.sessions.has(channelId);
  }

  /** Entry from the Stasis router: args = ['pending', <agent device>]. */
  start(client: AriClient, channel: Channel, args: string[]): void {
    const channelId = channel.id;
    const log = this.log.child({ channelId });
    const device = validateAgentDevice(args[1]);
    if (!device.ok) {
      log.warn('feature code refused: bad agent device from the dialplan', { reason: device.reason, agent: describeInput(args[1]) });
      void client.channels.hangup({ channelId }).catch(() => undefined);
      return;
    }
    const s: Session = {
      channelId,
      client,
      log: log.child({ agent: device.value }),
      language: chooseLanguage(channel.language, this.opts.languages, this.opts.defaultLanguage),
      gone: false,
    };
    this.sessions.set(channelId, s);
    this.run(s, device.value)
      .catch((err: unknown) => s.log.log(s.gone ? 'debug' : 'warn', 'feature code call failed', { error: errorText(err) }))
      .finally(() => {
        this.sessions.delete(channelId);
        if (!s.gone) void client.channels.hangup({ channelId }).catch(() => undefined);
      });
  }

  private async run(s: Session, agent: string): Promise<void> {
    await s.client.channels.answer({ channelId: s.channelId });
    const pending = orderPending(await this.source.pendingOf(agent));
    const next = pending[0];
    s.log.info('agent asked for pending callbacks', { pending: pending.length, next: next?.id, nextProspect: next?.prospect });
    if (!next) {
      await this.play(s, [this.opts.prompts.count, 'digits:0'], false);
      return;
    }
    const key = await this.play(
      s,
      [this.opts.prompts.count, `digits:${pending.length}`, `digits:${next.prospect.replace(/^\+/, '')}`, this.opts.prompts.menu],
      true,
    );
    const choice = key ?? (await this.waitKey(s));
    if (s.gone) return;
    if (choice === '1' || choice === '2') {
      const targets = choice === '1' ? [next] : pending;
      let n = 0;
      for (const r of targets) {
        const ok = await this.source.cancel(r.id);
        if (ok) n++;
        s.log.info(ok ? 'callback cancelled by the agent' : 'callback could not be cancelled (it changed meanwhile)', {
          requestId: r.id,
          prospect: r.prospect,
          key: choice,
        });
      }
      if (n > 0) await this.play(s, [this.opts.prompts.cancelled], false);
      return;
    }
    s.log.info('no cancellation chosen', { key: choice ?? 'none' });
  }

  /** Plays media; with `keys`, 1 or 2 interrupts it and is returned. */
  private play(s: Session, media: string[], keys: boolean): Promise<string | undefined> {
    if (s.gone) return Promise.resolve(undefined);
    const playbackId = `${s.channelId}-pending-${++this.seq}`;
    s.playbackId = playbackId;
    return new Promise<string | undefined>((resolve) => {
      const done = (key?: string) => {
        s.onPlaybackDone = undefined;
        s.onKey = undefined;
        clearTimeout(guard);
        resolve(key);
      };
      // A playback that never reports its end must not hold the call.
      const guard = setTimeout(() => done(), 60_000);
      s.onPlaybackDone = () => done();
      s.onKey = (digit) => {
        if (digit === 'hangup') return done();
        if (!keys || (digit !== '1' && digit !== '2')) return;
        s.playbackId = undefined;
        void s.client.playbacks.stop({ playbackId }).catch(() => undefined);
        done(digit);
      };
      s.client.channels
        .play({ channelId: s.channelId, playbackId, lang: s.language, media: media as unknown as string })
        .catch((err: unknown) => {
          s.log.warn('prompt could not be played', { error: errorText(err) });
          done();
        });
    });
  }

  private waitKey(s: Session): Promise<string | undefined> {
    if (s.gone) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        s.onKey = undefined;
        resolve(undefined);
      }, this.opts.menuTimeoutMs);
      s.onKey = (digit) => {
        if (digit !== 'hangup' && digit !== '1' && digit !== '2') return;
        clearTimeout(timer);
        s.onKey = undefined;
        resolve(digit === 'hangup' ? undefined : digit);
      };
    });
  }
}
