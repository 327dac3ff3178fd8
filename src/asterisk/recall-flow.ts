/**
 * The recall over ARI: ring the agent first, clearly labelled; on "1" dial the prospect and bridge.
 *
 * The policy decides, this adapter only carries out its actions and reports what the PBX did:
 * - `ringAgent`: originate to the agent's device on the policy's deterministic channel id, caller ID
 *   "Callback: <prospect>" with the configured service number, optional Alert-Info header. The agent's
 *   channel enters the app (`recall,<request>`) when answered.
 * - `announce menu`: "Callback to <digits>. Press 1 …, 2 …, 3 …"; a key cuts it short; no key
 *   within the menu timeout after the prompt is reported as `agentKey none` (the policy asks again or
 *   snoozes).
 * - `dialProspect`: a bridge with the agent in it and ringback playing, then
 *   `Local/<prospect>@<outbound context>` with the agent's own caller ID; answered → bridged.
 * - Outcomes come from ARI's Dial events (BUSY / NOANSWER / …) and channel ends.
 */
import type { Channel } from 'ari-client';
import type { Config } from '../config/load';
import type { Action, CallbackRequest, Observation } from '../core/policy';
import type { Telephony } from '../engine';
import type { Logger } from '../log';
import { AriConnection, errorText } from './connection';

export type RecallPrompts = Pick<Config['prompts'], 'recallIntro' | 'recallMenu' | 'connecting' | 'stillBusy' | 'noAnswer' | 'snoozed' | 'cancelled'>;

export interface RecallOptions {
  app: string;
  outboundContext: string;
  alertInfo: string;
  menuTimeoutMs: number;
  prompts: RecallPrompts;
  /** Longest a single announcement may take before the next action runs anyway. */
  announceTimeoutMs?: number;
}

type Report = (requestId: string, observation: Observation) => void;

interface Call {
  requestId: string;
  prospect: string;
  language: string;
  agentChannelId: string;
  agentAnswered: boolean;
  agentGone: boolean;
  agentDialStatus?: string;
  prospectChannelId?: string;
  prospectAnswered: boolean;
  /** The bridged conversation has ended (reported once). */
  conversationOver?: boolean;
  prospectGone: boolean;
  prospectDialStatus?: string;
  bridgeId?: string;
  ringbackId?: string;
  inMenu: boolean;
  /** The menu's parts, played one after the other; a key stops all that remain. */
  menuPlaybackIds: string[];
  menuTimer?: NodeJS.Timeout;
  log: Logger;
}

const ANNOUNCE: Record<Exclude<Extract<Action, { type: 'announce' }>['prompt'], 'menu'>, keyof RecallPrompts> = {
  connecting: 'connecting',
  'still-busy': 'stillBusy',
  'no-answer': 'noAnswer',
  snoozed: 'snoozed',
  cancelled: 'cancelled',
};

/** Escapes a caller-ID name for `"name" <number>`. */
function callerIdString(id: { name: string; number: string }): string {
  const name = id.name.replace(/["\\<>]/g, '');
  return `"${name}" <${id.number}>`;
}

export class RecallFlow implements Telephony {
  private readonly calls = new Map<string, Call>();
  private readonly byChannel = new Map<string, Call>();
  private readonly playbackWaiters = new Map<string, () => void>();

  constructor(
    private readonly conn: AriConnection,
    private readonly report: Report,
    private readonly opts: RecallOptions,
    private readonly log: Logger,
  ) {
    conn.onAri('Dial', (e: { peer: { id: string }; dialstatus: string }) => this.onDial(e.peer.id, e.dialstatus));
    conn.onAri('ChannelDestroyed', (e: { channel: { id: string }; cause: number }) => this.onGone(e.channel.id, e.cause));
    conn.onAri('StasisEnd', (e: { channel: { id: string } }) => this.onGone(e.channel.id, undefined));
    conn.onAri('ChannelDtmfReceived', (e: { channel: { id: string }; digit: string }) => this.onDtmf(e.channel.id, e.digit));
    conn.onAri('PlaybackFinished', (e: { playback: { id: string } }) => {
      const done = this.playbackWaiters.get(e.playback.id);
      if (done) {
        this.playbackWaiters.delete(e.playback.id);
        done();
      }
      for (const call of this.calls.values()) {
        // The menu timer starts when the last part of the menu has been played.
        if (call.menuPlaybackIds[call.menuPlaybackIds.length - 1] === e.playback.id) this.armMenuTimer(call);
      }
    });
  }

  /** Recalls in progress (channels we own on the PBX). */
  get active(): number {
    return this.calls.size;
  }

  /**
   * After a reconnection: recall channels that vanished while we could not hear about it (the PBX
   * restarted, the socket was down) are treated as ended, so the policy learns the outcome now.
   */
  reconcileGone(existing: ReadonlySet<string>): void {
    for (const call of [...this.calls.values()]) {
      if (!call.agentGone && !existing.has(call.agentChannelId)) this.onGone(call.agentChannelId, undefined);
      if (call.prospectChannelId && !call.prospectGone && !existing.has(call.prospectChannelId)) this.onGone(call.prospectChannelId, undefined);
    }
  }

  /**
   * Ends a recall whose request has already ended elsewhere (cancelled from the CLI while the agent
   * listened to the menu): "The callback is cancelled", then hang up. A connected call is left alone.
   */
  async abandon(requestId: string, state: string): Promise<void> {
    const call = this.calls.get(requestId);
    if (!call || call.prospectAnswered || call.agentGone) return;
    call.log.info('the request ended elsewhere; ending its recall call', { state });
    call.inMenu = false;
    clearTimeout(call.menuTimer);
    if (call.prospectChannelId && !call.prospectGone) await this.hangup(call.prospectChannelId);
    if (call.agentAnswered && state === 'CANCELLED') await this.announce(call.agentChannelId, 'cancelled');
    await this.hangup(call.agentChannelId);
  }

  /** Whether a channel or bridge on the PBX belongs to a recall this process runs. */
  owns(id: string): boolean {
    if (this.byChannel.has(id)) return true;
    for (const call of this.calls.values()) if (call.bridgeId === id) return true;
    return false;
  }

  /** StasisStart of a channel we originated: `recall,<request>` (agent) or `prospect,<request>`. */
  onStasisStart(channel: Channel, args: string[]): void {
    const call = this.byChannel.get(channel.id);
    const client = this.conn.client;
    if (!call) {
      this.log.warn('a recall channel entered the app but no recall is known for it (restarted?); hanging up', {
        channelId: channel.id,
        args,
      });
      void client?.channels.hangup({ channelId: channel.id }).catch(() => undefined);
      return;
    }
    if (channel.id === call.agentChannelId) {
      call.agentAnswered = true;
      call.log.info('agent answered the recall');
      this.report(call.requestId, { type: 'agentAnswered' });
      return;
    }
    if (channel.id === call.prospectChannelId) {
      call.prospectAnswered = true;
      call.log.info('prospect answered; connecting');
      void this.bridgeProspect(call);
    }
  }

  async execute(request: CallbackRequest, action: Exclude<Action, { type: 'notify' }>): Promise<void> {
    switch (action.type) {
      case 'ringAgent':
        return this.ringAgent(request, action);
      case 'announce':
        return this.announce(action.channelId, action.prompt);
      case 'dialProspect':
        return this.dialProspect(request, action);
      case 'hangupAgent':
      case 'hangupProspect':
        return this.hangup(action.channelId);
    }
  }

  private async ringAgent(request: CallbackRequest, action: Extract<Action, { type: 'ringAgent' }>): Promise<void> {
    const log = this.log.child({ requestId: request.id, channelId: action.channelId });
    const call: Call = {
      requestId: request.id,
      prospect: request.prospect,
      language: request.language,
      agentChannelId: action.channelId,
      agentAnswered: false,
      agentGone: false,
      prospectAnswered: false,
      prospectGone: false,
      inMenu: false,
      menuPlaybackIds: [],
      log,
    };
    this.calls.set(request.id, call);
    this.byChannel.set(action.channelId, call);
    const client = this.conn.client;
    const variables: Record<string, string> = { 'CHANNEL(language)': request.language };
    if (this.opts.alertInfo) variables['PJSIP_HEADER(add,Alert-Info)'] = this.opts.alertInfo;
    log.info('ringing the agent', { agent: request.agent, callerId: callerIdString(action.callerId), attempt: action.attempt });
    try {
      if (!client) throw new Error('ARI is not connected');
      await client.channels.originate({
        endpoint: request.agent,
        channelId: action.channelId,
        app: this.opts.app,
        appArgs: `recall,${request.id}`,
        callerId: callerIdString(action.callerId),
        timeout: Math.max(1, Math.round(action.timeoutMs / 1000)),
        variables,
      });
    } catch (err) {
      log.warn('could not ring the agent', { error: errorText(err) });
      this.forget(call);
      this.report(request.id, { type: 'recallFailed', reason: `originate to ${request.agent} failed: ${errorText(err)}` });
    }
  }

  private async announce(channelId: string, prompt: Extract<Action, { type: 'announce' }>['prompt']): Promise<void> {
    const call = this.byChannel.get(channelId);
    const client = this.conn.client;
    if (!call || call.agentGone || !client) return;
    if (prompt === 'menu') {
      call.inMenu = true;
      const digits = call.prospect.replace(/^\+/, '');
      const stamp = Date.now().toString(36);
      // Three playbacks rather than one with a media list: a key must be able to stop all of them.
      const parts = [this.opts.prompts.recallIntro, `digits:${digits}`, this.opts.prompts.recallMenu];
      call.menuPlaybackIds = parts.map((_, i) => `${channelId}-menu-${stamp}-${i}`);
      try {
        for (const [i, media] of parts.entries()) {
          if (!call.inMenu) break;
          await client.channels.play({ channelId, playbackId: call.menuPlaybackIds[i], lang: call.language, media });
        }
      } catch (err) {
        call.log.warn('menu prompt failed', { error: errorText(err) });
        this.armMenuTimer(call);
      }
      return;
    }
    const playbackId = `${channelId}-${prompt}-${Date.now().toString(36)}`;
    const finished = new Promise<void>((resolve) => {
      this.playbackWaiters.set(playbackId, resolve);
      setTimeout(resolve, this.opts.announceTimeoutMs ?? 15000).unref();
    });
    try {
      await client.channels.play({ channelId, playbackId, lang: call.language, media: this.opts.prompts[ANNOUNCE[prompt]] });
      await finished;
    } catch (err) {
      this.playbackWaiters.delete(playbackId);
      call.log.debug('announcement not played', { prompt, error: errorText(err) });
    }
  }

  private armMenuTimer(call: Call): void {
    if (!call.inMenu) return;
    clearTimeout(call.menuTimer);
    call.menuTimer = setTimeout(() => {
      if (!call.inMenu || call.agentGone) return;
      call.inMenu = false;
      call.log.info('no key pressed in the recall menu');
      this.report(call.requestId, { type: 'agentKey', key: 'none' });
    }, this.opts.menuTimeoutMs);
  }

  private onDtmf(channelId: string, digit: string): void {
    const call = this.byChannel.get(channelId);
    if (!call || channelId !== call.agentChannelId || !call.inMenu) return;
    if (digit !== '1' && digit !== '2' && digit !== '3') return;
    call.inMenu = false;
    clearTimeout(call.menuTimer);
    const playbackIds = call.menuPlaybackIds;
    call.menuPlaybackIds = [];
    for (const playbackId of playbackIds) void this.conn.client?.playbacks.stop({ playbackId }).catch(() => undefined);
    call.log.info('agent chose in the recall menu', { key: digit });
    this.report(call.requestId, { type: 'agentKey', key: digit });
  }

  private async dialProspect(request: CallbackRequest, action: Extract<Action, { type: 'dialProspect' }>): Promise<void> {
    const call = this.calls.get(request.id) ?? this.byChannel.get(action.agentChannelId);
    const client = this.conn.client;
    if (!call || call.agentGone || !client) {
      this.report(request.id, { type: 'recallFailed', reason: 'the agent channel is gone' });
      return;
    }
    call.prospectChannelId = action.channelId;
    this.byChannel.set(action.channelId, call);
    const log = call.log.child({ prospectChannelId: action.channelId });
    try {
      const bridgeId = `${action.agentChannelId}-b`;
      await client.bridges.create({ type: 'mixing', bridgeId, name: `callback ${request.id}` });
      call.bridgeId = bridgeId;
      await client.bridges.addChannel({ bridgeId, channel: action.agentChannelId });
      const ringbackId = `${action.agentChannelId}-ringback`;
      call.ringbackId = ringbackId;
      await client.channels.play({ channelId: action.agentChannelId, playbackId: ringbackId, media: 'tone:ring' }).catch(() => undefined);
      log.info('dialling the prospect', { prospect: request.prospect, callerId: callerIdString(action.callerId), attempt: action.attempt });
      await client.channels.originate({
        endpoint: `Local/${request.prospect}@${this.opts.outboundContext}`,
        channelId: action.channelId,
        app: this.opts.app,
        appArgs: `prospect,${request.id}`,
        callerId: callerIdString(action.callerId),
        timeout: Math.max(1, Math.round(action.timeoutMs / 1000)),
      });
    } catch (err) {
      log.warn('could not dial the prospect', { error: errorText(err) });
      call.prospectGone = true;
      this.report(request.id, { type: 'recallFailed', reason: `dialling ${request.prospect} failed: ${errorText(err)}` });
    }
  }

  private async bridgeProspect(call: Call): Promise<void> {
    const client = this.conn.client;
    if (!client || !call.bridgeId || !call.prospectChannelId) return;
    if (call.ringbackId) await client.playbacks.stop({ playbackId: call.ringbackId }).catch(() => undefined);
    try {
      await client.bridges.addChannel({ bridgeId: call.bridgeId, channel: call.prospectChannelId });
      this.report(call.requestId, { type: 'prospectAnswered' });
    } catch (err) {
      call.log.error('could not bridge the prospect', { error: errorText(err) });
      this.report(call.requestId, { type: 'recallFailed', reason: `bridging failed: ${errorText(err)}` });
    }
  }

  private onDial(peerId: string, status: string): void {
    const call = this.byChannel.get(peerId);
    if (!call || !status) return;
    if (peerId === call.agentChannelId) call.agentDialStatus = status;
    else if (peerId === call.prospectChannelId) call.prospectDialStatus = status;
  }

  private onGone(channelId: string, cause: number | undefined): void {
    const call = this.byChannel.get(channelId);
    if (!call) return;
    if (channelId === call.agentChannelId && !call.agentGone) {
      call.agentGone = true;
      call.inMenu = false;
      clearTimeout(call.menuTimer);
      if (!call.agentAnswered) {
        call.log.info('agent did not answer the recall', { dialStatus: call.agentDialStatus, cause });
        this.report(call.requestId, { type: 'agentNoAnswer' });
      } else if (call.prospectAnswered) {
        // A completed call ends: the other side goes too.
        if (call.prospectChannelId && !call.prospectGone) void this.hangup(call.prospectChannelId);
      } else {
        call.log.info('agent hung up during the recall');
        this.report(call.requestId, { type: 'agentHungUp' });
      }
    } else if (channelId === call.prospectChannelId && !call.prospectGone) {
      call.prospectGone = true;
      if (call.prospectAnswered) {
        if (!call.agentGone) void this.hangup(call.agentChannelId);
      } else if (!call.agentGone) {
        const busy = call.prospectDialStatus === 'BUSY';
        call.log.info(busy ? 'prospect busy at the recall' : 'prospect did not answer', { dialStatus: call.prospectDialStatus, cause });
        if (call.ringbackId) void this.conn.client?.playbacks.stop({ playbackId: call.ringbackId }).catch(() => undefined);
        this.report(call.requestId, { type: busy ? 'prospectBusy' : 'prospectNoAnswer' });
      }
    }
    if (call.prospectAnswered && !call.conversationOver && (call.agentGone || call.prospectGone)) {
      // Agent and prospect were talking and one of them hung up: the prospect is off the phone with us now.
      call.conversationOver = true;
      call.log.info('the conversation with the prospect ended', { event: 'conversation-ended' });
      this.onConversationEnded?.(call.requestId);
    }
    if (call.agentGone && (call.prospectGone || !call.prospectChannelId)) this.forget(call);
  }

  /** Called once when a connected recall's conversation ends (the next colleague's recall may follow). */
  onConversationEnded?: (requestId: string) => void;

  private forget(call: Call): void {
    clearTimeout(call.menuTimer);
    this.byChannel.delete(call.agentChannelId);
    if (call.prospectChannelId) this.byChannel.delete(call.prospectChannelId);
    if (this.calls.get(call.requestId) === call) this.calls.delete(call.requestId);
    if (call.bridgeId) void this.conn.client?.bridges.destroy({ bridgeId: call.bridgeId }).catch(() => undefined);
  }

  private async hangup(channelId: string): Promise<void> {
    await this.conn.client?.channels.hangup({ channelId }).catch(() => undefined);
  }
}
