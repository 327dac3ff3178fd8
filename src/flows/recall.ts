/**
 * The recall: ring the agent first, clearly labelled; on "1" dial the prospect and bridge.
 *
 * The policy decides, this flow only carries out its actions (engine `Telephony`) and reports what the
 * PBX did, over a {@link Switchboard} (ARI in service, a fake in unit tests):
 * - `ringAgent`: originate to the agent's device on the policy's deterministic channel id, caller ID
 *   "Callback: <prospect>" with the configured service number, optional Alert-Info header. The agent's
 *   channel enters the app (`recall,<request>`) when answered.
 * - `announce menu`: "Callback to <digits>. Press 1 …, 2 …, 3 …" through the one prompt helper;
 *   a key stops everything still queued (the digits too), so "1" dials the prospect at once; no key
 *   within the menu timeout after the menu is reported as `agentKey none` (the policy asks again or snoozes).
 * - `dialProspect`: a bridge with the agent in it and ringback playing, then
 *   `Local/<prospect>@<outbound context>` with the agent's own caller ID; answered → bridged.
 * - Outcomes come from the Dial status of the dialled channels and their ends.
 */
import type { Config } from '../config/load';
import { isTerminal, type Action, type CallbackRequest, type CallbackState, type Observation } from '../core/policy';
import type { Telephony } from '../engine';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { Switchboard, SwitchboardPort } from '../telephony/port';

export type RecallPrompts = Pick<Config['prompts'], 'recallIntro' | 'recallMenu' | 'connecting' | 'stillBusy' | 'noAnswer' | 'snoozed' | 'cancelled'>;

export interface RecallOptions {
  outboundContext: string;
  alertInfo: string;
  menuTimeoutMs: number;
  prompts: RecallPrompts;
  /** Longest a single announcement may take before the next action runs anyway. */
  announceTimeoutMs?: number;
}

/** Where the recall reports what the PBX did: the engine's public methods. */
export interface RecallSink {
  /** Lets the policy decide on an observation; false when there was nothing to decide. */
  observe(requestId: string, observation: Observation): boolean | Promise<boolean>;
  /** The request's state now (undefined: unknown). */
  stateOf(requestId: string): CallbackState | undefined | Promise<CallbackState | undefined>;
}

interface Call {
  requestId: string;
  prospect: string;
  language: string;
  agentChannelId: string;
  agent: SwitchboardPort;
  agentAnswered: boolean;
  agentGone: boolean;
  prospectChannelId?: string;
  prospectPort?: SwitchboardPort;
  prospectAnswered: boolean;
  /** The bridged conversation has ended (reported once). */
  conversationOver?: boolean;
  prospectGone: boolean;
  bridgeId?: string;
  ringback?: Promise<unknown>;
  /** A menu is running (played or waiting for its key); a new one or an abandon ends it. */
  menu?: { cancelled: boolean };
  log: Logger;
}

const MENU_KEYS = '123';

const ANNOUNCE: Record<Exclude<Extract<Action, { type: 'announce' }>['prompt'], 'menu'>, keyof RecallPrompts> = {
  connecting: 'connecting',
  'still-busy': 'stillBusy',
  'no-answer': 'noAnswer',
  snoozed: 'snoozed',
  cancelled: 'cancelled',
};

/** Escapes a caller-ID name for `"name" <number>`. */
export function callerIdString(id: { name: string; number: string }): string {
  const name = id.name.replace(/["\\<>]/g, '');
  return `"${name}" <${id.number}>`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The agent as a CDR accountcode: PJSIP/1001 → 1001. */
function cdrAccount(agent: string): string {
  return agent.slice(agent.indexOf('/') + 1).replace(/[^A-Za-z0-9._-]/g, '_');
}

export class RecallFlow implements Telephony {
  private readonly calls = new Map<string, Call>();
  private readonly byChannel = new Map<string, Call>();

  constructor(
    private readonly pbx: Switchboard,
    private readonly sink: RecallSink,
    private readonly opts: RecallOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Reports an observation. Nothing to decide and the request has ended meanwhile (cancelled from the CLI
   * or *82 while the agent's phone rang): the call that is still up has no purpose any more.
   */
  private report(requestId: string, observation: Observation): void {
    void (async () => {
      if (await this.sink.observe(requestId, observation)) return;
      const state = await this.sink.stateOf(requestId);
      if (state && isTerminal(state)) await this.abandon(requestId, state);
    })().catch((err: unknown) => this.log.error('could not report the recall\'s observation', { requestId, error: (err as Error)?.message ?? String(err) }));
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
    emit(call.log, 'info', 'recall.abandoned', 'the request ended elsewhere; ending its recall call', { state });
    if (call.menu) call.menu.cancelled = true;
    call.menu = undefined;
    await call.agent.stop();
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
  onStasisStart(channelId: string, args: readonly string[]): void {
    const call = this.byChannel.get(channelId);
    if (!call) {
      emit(this.log.child({ channelId }), 'warn', 'recall.unknown_channel', 'a recall channel entered the app but no recall is known for it (restarted?); hanging up', {
        args: [...args],
      });
      void this.pbx.hangupChannel(channelId).catch(() => undefined);
      return;
    }
    if (channelId === call.agentChannelId) {
      call.agentAnswered = true;
      emit(call.log, 'info', 'recall.agent_answered', 'agent answered the recall', {});
      this.report(call.requestId, { type: 'agentAnswered' });
      return;
    }
    if (channelId === call.prospectChannelId) {
      call.prospectAnswered = true;
      emit(call.log, 'info', 'recall.prospect_answered', 'prospect answered; connecting', {});
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
    const agent = this.pbx.port(action.channelId, { language: request.language });
    const call: Call = {
      requestId: request.id,
      prospect: request.prospect,
      language: request.language,
      agentChannelId: action.channelId,
      agent,
      agentAnswered: false,
      agentGone: false,
      prospectAnswered: false,
      prospectGone: false,
      log,
    };
    this.calls.set(request.id, call);
    this.byChannel.set(action.channelId, call);
    agent.onGone((cause) => this.onGone(action.channelId, cause));
    const variables: Record<string, string> = { 'CHANNEL(language)': request.language };
    if (this.opts.alertInfo) variables['PJSIP_HEADER(add,Alert-Info)'] = this.opts.alertInfo;
    // Honest call records (docs/admin-guide.md, "Call records"): the ring to the agent is the agent's, marked as a callback.
    Object.assign(variables, { 'CHANNEL(accountcode)': cdrAccount(request.agent), 'CDR(userfield)': `cc-callback-ring:${request.id}` });
    const callerId = callerIdString(action.callerId);
    emit(log, 'info', 'recall.ringing_agent', 'ringing the agent', { agent: request.agent, callerId, attempt: action.attempt });
    try {
      await this.pbx.originate({
        endpoint: request.agent,
        channelId: action.channelId,
        appArgs: `recall,${request.id}`,
        callerId,
        timeoutSec: Math.max(1, Math.round(action.timeoutMs / 1000)),
        variables,
      });
    } catch (err) {
      emit(log, 'warn', 'recall.ring_failed', 'could not ring the agent', { error: errorText(err) });
      this.forget(call);
      this.report(request.id, { type: 'recallFailed', reason: `originate to ${request.agent} failed: ${errorText(err)}` });
    }
  }

  private async announce(channelId: string, prompt: Extract<Action, { type: 'announce' }>['prompt']): Promise<void> {
    const call = this.byChannel.get(channelId);
    if (!call || call.agentGone) return;
    if (prompt === 'menu') {
      // The menu runs on its own: the engine's queue for this request is not held while the agent listens.
      void this.menu(call);
      return;
    }
    const r = await call.agent.play([this.opts.prompts[ANNOUNCE[prompt]]], { guardMs: this.opts.announceTimeoutMs ?? 15000 });
    if (r.type === 'finished' && r.failed) call.log.debug('announcement not played', { prompt, error: r.failed.error });
  }

  private async menu(call: Call): Promise<void> {
    if (call.menu) call.menu.cancelled = true;
    const menu = { cancelled: false };
    call.menu = menu;
    const digits = call.prospect.replace(/^\+/, '');
    const played = await call.agent.play([this.opts.prompts.recallIntro, `digits:${digits}`, this.opts.prompts.recallMenu], {
      stopKeys: MENU_KEYS,
      guardMs: 60_000,
    });
    if (menu.cancelled || played.type === 'hangup') return;
    if (played.type === 'finished' && played.failed) call.log.warn('menu prompt failed', { error: played.failed.error, media: played.failed.media });
    const key = played.type === 'key' ? played : await call.agent.waitKey(this.opts.menuTimeoutMs, MENU_KEYS);
    if (menu.cancelled || call.agentGone || key.type === 'hangup') return;
    call.menu = undefined;
    if (key.type === 'timeout') {
      emit(call.log, 'info', 'recall.menu_timeout', 'no key pressed in the recall menu', {});
      this.report(call.requestId, { type: 'agentKey', key: 'none' });
      return;
    }
    const digit = key.digit as '1' | '2' | '3';
    emit(call.log, 'info', 'recall.agent_key', 'agent chose in the recall menu', { key: digit });
    this.report(call.requestId, { type: 'agentKey', key: digit });
  }

  private async dialProspect(request: CallbackRequest, action: Extract<Action, { type: 'dialProspect' }>): Promise<void> {
    const call = this.calls.get(request.id) ?? this.byChannel.get(action.agentChannelId);
    if (!call || call.agentGone) {
      this.report(request.id, { type: 'recallFailed', reason: 'the agent channel is gone' });
      return;
    }
    call.prospectChannelId = action.channelId;
    const prospect = this.pbx.port(action.channelId);
    call.prospectPort = prospect;
    this.byChannel.set(action.channelId, call);
    prospect.onGone((cause) => this.onGone(action.channelId, cause));
    const log = call.log.child({ prospectChannelId: action.channelId });
    const callerId = callerIdString(action.callerId);
    try {
      const bridgeId = `${action.agentChannelId}-b`;
      await this.pbx.createBridge(bridgeId, `callback ${request.id}`);
      call.bridgeId = bridgeId;
      await this.pbx.addToBridge(bridgeId, action.agentChannelId);
      // Ringback until the prospect answers or the attempt ends (stopped by the port's stop()).
      call.ringback = call.agent.play(['tone:ring'], { guardMs: action.timeoutMs + 60_000 });
      emit(log, 'info', 'recall.dialling_prospect', 'dialling the prospect', {
        prospect: request.prospect,
        callerId,
        attempt: action.attempt,
        prospectChannelId: action.channelId,
      });
      await this.pbx.originate({
        endpoint: `Local/${request.prospect}@${this.opts.outboundContext}`,
        channelId: action.channelId,
        appArgs: `prospect,${request.id}`,
        callerId,
        timeoutSec: Math.max(1, Math.round(action.timeoutMs / 1000)),
        // Honest call records: the dialplan routine considerate-callback-recall (dialplan/) reads these.
        variables: {
          CC_CALLBACK: request.id,
          CC_CALLBACK_AGENT: cdrAccount(request.agent),
          CC_CALLBACK_CID_NAME: action.callerId.name,
          CC_CALLBACK_CID_NUM: action.callerId.number,
          'CHANNEL(accountcode)': cdrAccount(request.agent),
          CONNECTED_LINE_SEND_SUB: 'considerate-callback-recall-cid,s,1',
          'CDR_PROP(disable)': '1',
        },
      });
    } catch (err) {
      emit(log, 'warn', 'recall.dial_failed', 'could not dial the prospect', { error: errorText(err) });
      call.prospectGone = true;
      this.report(request.id, { type: 'recallFailed', reason: `dialling ${request.prospect} failed: ${errorText(err)}` });
    }
  }

  private async bridgeProspect(call: Call): Promise<void> {
    if (!call.bridgeId || !call.prospectChannelId) return;
    await call.agent.stop();
    try {
      await this.pbx.addToBridge(call.bridgeId, call.prospectChannelId);
      this.report(call.requestId, { type: 'prospectAnswered' });
    } catch (err) {
      emit(call.log, 'error', 'recall.bridge_failed', 'could not bridge the prospect', { error: errorText(err) });
      this.report(call.requestId, { type: 'recallFailed', reason: `bridging failed: ${errorText(err)}` });
    }
  }

  private onGone(channelId: string, cause: number | undefined): void {
    const call = this.byChannel.get(channelId);
    if (!call) return;
    if (channelId === call.agentChannelId && !call.agentGone) {
      call.agentGone = true;
      if (call.menu) call.menu.cancelled = true;
      call.menu = undefined;
      if (!call.agentAnswered) {
        emit(call.log, 'info', 'recall.agent_no_answer', 'agent did not answer the recall', { dialStatus: call.agent.dialStatus, cause });
        this.report(call.requestId, { type: 'agentNoAnswer' });
      } else if (call.prospectAnswered) {
        // A completed call ends: the other side goes too.
        if (call.prospectChannelId && !call.prospectGone) void this.hangup(call.prospectChannelId);
      } else {
        emit(call.log, 'info', 'recall.agent_hung_up', 'agent hung up during the recall', {});
        this.report(call.requestId, { type: 'agentHungUp' });
      }
    } else if (channelId === call.prospectChannelId && !call.prospectGone) {
      call.prospectGone = true;
      if (call.prospectAnswered) {
        if (!call.agentGone) void this.hangup(call.agentChannelId);
      } else if (!call.agentGone) {
        const dialStatus = call.prospectPort?.dialStatus;
        const busy = dialStatus === 'BUSY';
        if (busy) emit(call.log, 'info', 'recall.prospect_busy', 'prospect busy at the recall', { dialStatus, cause });
        else emit(call.log, 'info', 'recall.prospect_no_answer', 'prospect did not answer', { dialStatus, cause });
        void call.agent.stop();
        this.report(call.requestId, { type: busy ? 'prospectBusy' : 'prospectNoAnswer' });
      }
    }
    if (call.prospectAnswered && !call.conversationOver && (call.agentGone || call.prospectGone)) {
      // Agent and prospect were talking and one of them hung up: the prospect is off the phone with us now.
      call.conversationOver = true;
      emit(call.log, 'info', 'recall.conversation_ended', 'the conversation with the prospect ended', {});
      this.onConversationEnded?.(call.requestId);
    }
    if (call.agentGone && (call.prospectGone || !call.prospectChannelId)) this.forget(call);
  }

  /** Called once when a connected recall's conversation ends (the next colleague's recall may follow). */
  onConversationEnded?: (requestId: string) => void;

  private forget(call: Call): void {
    if (call.menu) call.menu.cancelled = true;
    call.agent.release();
    call.prospectPort?.release();
    this.byChannel.delete(call.agentChannelId);
    if (call.prospectChannelId) this.byChannel.delete(call.prospectChannelId);
    if (this.calls.get(call.requestId) === call) this.calls.delete(call.requestId);
    if (call.bridgeId) void this.pbx.destroyBridge(call.bridgeId).catch(() => undefined);
  }

  private async hangup(channelId: string): Promise<void> {
    await this.pbx.hangupChannel(channelId).catch(() => undefined);
  }
}
