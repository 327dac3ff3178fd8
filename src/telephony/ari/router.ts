/**
 * ARI events routed per channel: one listener per event type for the whole app, and a map
 * channel id → handler. A flow never sees another call's events, and no flow scans its sessions on
 * every event: each event costs one map look-up.
 *
 * - ChannelDtmfReceived, StasisEnd, ChannelDestroyed: by `channel.id`;
 * - Dial: by `peer.id` (the dialled channel; its `dialstatus` is the outcome);
 * - PlaybackFinished: by the playback id the port registered when it started the playback
 *   (`target_uri` `channel:<id>` as a fall-back).
 */

/** The events a channel's handler receives (all optional). */
export interface ChannelHandler {
  dtmf?(digit: string): void;
  playbackFinished?(playbackId: string, state: string | undefined): void;
  /** The channel left the app (StasisEnd) or was destroyed (ChannelDestroyed, with its cause). */
  gone?(cause: number | undefined): void;
  dial?(status: string): void;
}

/** Where ARI events come from (AriConnection.onAri: survives reconnections, catches throws). */
export interface AriEventSource {
  onAri(event: string, handler: (...args: never[]) => unknown): void;
}

interface ChannelRef {
  channel: { id: string };
}

export class AriRouter {
  private readonly channels = new Map<string, ChannelHandler>();
  private readonly playbacks = new Map<string, string>();

  constructor(events: AriEventSource) {
    events.onAri('ChannelDtmfReceived', (e: ChannelRef & { digit: string }) => this.channels.get(e.channel.id)?.dtmf?.(e.digit));
    events.onAri('PlaybackFinished', (e: { playback: { id: string; state?: string; target_uri?: string } }) => {
      const id = e.playback.id;
      const target = e.playback.target_uri ?? '';
      const channelId = this.playbacks.get(id) ?? (target.startsWith('channel:') ? target.slice('channel:'.length) : undefined);
      this.playbacks.delete(id);
      if (channelId !== undefined) this.channels.get(channelId)?.playbackFinished?.(id, e.playback.state);
    });
    events.onAri('StasisEnd', (e: ChannelRef) => this.channels.get(e.channel.id)?.gone?.(undefined));
    events.onAri('ChannelDestroyed', (e: ChannelRef & { cause?: number }) => this.channels.get(e.channel.id)?.gone?.(e.cause));
    events.onAri('Dial', (e: { peer?: { id: string }; dialstatus?: string }) => {
      if (e.peer && e.dialstatus) this.channels.get(e.peer.id)?.dial?.(e.dialstatus);
    });
  }

  /** Routes a channel's events to `handler` until the returned function is called. */
  attach(channelId: string, handler: ChannelHandler): () => void {
    this.channels.set(channelId, handler);
    return () => {
      if (this.channels.get(channelId) === handler) this.channels.delete(channelId);
    };
  }

  /** A playback started on a channel: its PlaybackFinished goes to that channel's handler. */
  trackPlayback(playbackId: string, channelId: string): void {
    this.playbacks.set(playbackId, channelId);
  }

  forgetPlayback(playbackId: string): void {
    this.playbacks.delete(playbackId);
  }

  /** Whether a channel has a handler (it belongs to a call this process runs). */
  has(channelId: string): boolean {
    return this.channels.has(channelId);
  }

  /** Channel ids with a handler (reconciliation after a reconnection). */
  ids(): string[] {
    return [...this.channels.keys()];
  }
}
