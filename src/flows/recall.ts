/**
 * The recall: ring the agent first, clearly labelled; on "1" dial the prospect and bridge.
 *
 * The policy decides, this flow only carries out its actions (engine `Telephony`) and reports what the
 * PBX did, over a {@link Switchboard} (ARI in service, a fake in unit tests):
 * - `ringAgent`: originate to the agent's device on the policy's deterministic channel id, caller ID
 *   "Callback: <prospect>" with the configured service number, optional Alert-Info header. The agent's
 *   channel enters the app (`recall,<request>`) when answered.
 * - `announce menu`: "Callback. Press 1 …, 2 …, 3 …. The number: <groups>. The number: <groups>" ({@link menuMedia});
 *   a key stops everything still queued (the digits too), so "1" dials the prospect at once; no key
 *   within the menu timeout after the menu is reported as `agentKey none` (the policy asks again or snoozes).
 * - `dialProspect`: a bridge with the agent in it and ringback playing, then
 *   `Local/<prospect>@<outbound context>` with the agent's own caller ID; answered → bridged.
 * - Outcomes come from the Dial status of the dialled channels and their ends.
 */
import type { Config } from '../config/load';
import { isTerminal, type Action, type CallbackRequest, type CallbackState, type Observation } from '../core/policy';
import type { Telephony } from '../engine';
import { spokenGroups } from '../core/label';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { CallPort, Switchboard, SwitchboardPort } from '../telephony/port';

export type RecallPrompts = Pick<Config['prompts'], 'recallIntro' | 'recallMenu' | 'recallNumber' | 'connecting' | 'stillBusy' | 'noAnswer' | 'snoozed' | 'cancelled'>;

export interface RecallOptions {
  outboundContext: string;
  alertInfo: string;
  menuTimeoutMs: number;
  prompts: RecallPrompts;
  /** Longest a single announcement may take before the next action runs anyway. */
  announceTimeoutMs?: number;
  /** How the prospect's number is grouped when read out (the home country, the international prefix). */
  numbers?: { country: string; internationalPrefix: string };
  /**
   * How long the end of an agent's channel (no answer, hung up) is held back before it is reported: when the
   * connection to Asterisk drops within it, the PBX went away (a restart hangs every call up just before its
   * socket closes) — an interruption, not the agent's doing. 0 (default): reported at once.
   */
  hangupConfirmMs?: number;
}

/**
 * What the agent hears when a recall is answered: what the call is and what to press first ("Callback.
 * Press 1 to connect, 2 for later, 3 to cancel."), within about a second whatever the number's length; then
 * the number, in groups, twice. A key works throughout.
 */
export function menuMedia(prompts: Pick<RecallPrompts, 'recallIntro' | 'recallMenu' | 'recallNumber'>, prospect: string, numbers = { country: 'DE', internationalPrefix: '00' }): string[] {
  const groups = spokenGroups(prospect, numbers).map((g) => `digits:${g}`);
  if (groups.length === 0) groups.push(`digits:${prospect.replace(/[^0-9]/g, '') || '0'}`);
  return [prompts.recallIntro, prompts.recallMenu, prompts.recallNumber, ...groups, prompts.recallNumber, ...groups];
}

/** Where the recall reports what the PBX did: the engine's public methods. */
export interface RecallSink {
  /** Lets the policy decide on an observation; false when there was nothing to decide. */
  observe(requestId: string, observation: Observation): boolean | Promise<boolean>;
  /** The request's state now (undefined: unknown). */
  stateOf(requestId: string): CallbackState | undefined | Promise<CallbackState | undefined>;
  /** Called once when a connected recall's conversation ends (the next colleague's recall may follow). */
  conversationEnded?(requestId: string): void;
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
  /** A returned recall: the agent's own call (they dialled the service number), handed back when the recall is done with it. */
  returned?: { done: (outcome: ReturnOutcome) => void; handedBack: boolean };
  log: Logger;
}

/**
 * How a returned recall gave the agent's call back: `released` (2, 3, still busy, no answer: the call is the
 * return flow's again), `connected` (the conversation with the prospect ended), `gone` (the agent hung up),
 * `skipped` (the request could not take the call: it changed meanwhile).
 */
export type ReturnOutcome = 'released' | 'connected' | 'gone' | 'skipped';

/** The agent's own call as the recall's agent leg: no Dial status, and released by the return flow, not here. */
function adoptedPort(port: CallPort): SwitchboardPort {
  return {
    get channelId() {
      return port.channelId;
    },
    get language() {
      return port.language;
    },
    get caller() {
      return port.caller;
    },
    get gone() {
      return port.gone;
    },
    answer: () => port.answer(),
    setLanguage: (language) => port.setLanguage(language),
    play: (media, opts) => port.play(media, opts),
    stop: () => port.stop(),
    waitKey: (ms, keys) => port.waitKey(ms, keys),
    hangup: (reason) => port.hangup(reason),
    refuse: () => port.refuse(),
    onGone: (fn) => port.onGone(fn),
    dialStatus: undefined,
    release: () => undefined,
  };
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
  /** Agents' own calls waiting for their request's decision to start a returned recall on them. */
  private readonly returning = new Map<string, { port: CallPort; done: (outcome: ReturnOutcome) => void }>();
  /** Agent hang-ups held back for opts.hangupConfirmMs (see there), by request. */
  private readonly heldBack = new Map<string, NodeJS.Timeout>();

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

  /** Whether this process runs a recall call for the request now. */
  runs(requestId: string): boolean {
    return this.calls.has(requestId);
  }

  /**
   * After a reconnection: recall channels that vanished while we could not hear about it (the PBX restarted, the
   * socket was down). A connected conversation has simply ended; any other recall was cut short by a failure, not by
   * the agent (we never heard a key or a hang-up): reported as interrupted, never as a snooze.
   */
  reconcileGone(existing: ReadonlySet<string>): void {
    for (const call of [...this.calls.values()]) {
      const agentVanished = !call.agentGone && !existing.has(call.agent.channelId);
      if (agentVanished && !call.prospectAnswered) {
        const reason = 'its channel vanished while the connection to Asterisk was down (Asterisk restarted?)';
        emit(call.log, 'warn', 'recall.interrupted', 'a recall channel vanished unreported; ringing again after the recovery delay', { how: 'vanished', startedAt: null, reason });
        call.agentGone = true;
        if (call.prospectChannelId && !call.prospectGone) {
          call.prospectGone = true;
          if (existing.has(call.prospectChannelId)) void this.hangup(call.prospectChannelId);
        }
        this.forget(call);
        this.report(call.requestId, { type: 'recallInterrupted', reason });
        continue;
      }
      if (agentVanished) this.onGone(call.agentChannelId, undefined);
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
    await this.hangupAgent(call.agentChannelId);
  }

  /** Whether a channel or bridge on the PBX belongs to a recall this process runs. */
  owns(id: string): boolean {
    if (this.byChannel.has(id)) return true;
    for (const call of this.calls.values()) if (call.bridgeId === id) return true;
    return false;
  }

  /**
   * Returning a recall: the agent called the service number, and `request` is the callback they hear. `start`
   * asks the policy (observation `agentReturned`); its decision's `announce menu` on the request's next agent
   * channel id adopts `port` as that channel, and from then on the recall runs as after a ring (menu, dial,
   * bridge, outcomes), on the agent's own call. Resolves when the recall hands the call back.
   */
  async takeOver(requestId: string, port: CallPort, start: () => Promise<boolean>): Promise<ReturnOutcome> {
    if (this.calls.has(requestId) || this.returning.has(requestId)) return 'skipped';
    const outcome = new Promise<ReturnOutcome>((resolve) => this.returning.set(requestId, { port, done: resolve }));
    let started = false;
    try {
      started = await start();
    } finally {
      const waiting = this.returning.get(requestId);
      if (waiting && !started) {
        this.returning.delete(requestId);
        waiting.done('skipped');
      }
    }
    return outcome;
  }

  private adopt(request: CallbackRequest, channelId: string): Call | undefined {
    const waiting = this.returning.get(request.id);
    if (!waiting) return undefined;
    this.returning.delete(request.id);
    const log = this.log.child({ requestId: request.id, channelId, agentCallId: waiting.port.channelId });
    const call: Call = {
      requestId: request.id,
      prospect: request.prospect,
      language: request.language,
      agentChannelId: channelId,
      agent: adoptedPort(waiting.port),
      agentAnswered: true,
      agentGone: false,
      prospectAnswered: false,
      prospectGone: false,
      returned: { done: waiting.done, handedBack: false },
      log,
    };
    this.calls.set(request.id, call);
    this.byChannel.set(channelId, call);
    waiting.port.onGone((cause) => this.onGone(channelId, cause));
    emit(log, 'info', 'recall.returned', 'the agent called back: the recall runs on their own call', { agent: request.agent, prospect: request.prospect });
    return call;
  }

  /** A returned recall gives the agent's call back to the return flow (instead of hanging it up). */
  private handBack(call: Call, outcome: ReturnOutcome): void {
    if (!call.returned || call.returned.handedBack) return;
    call.returned.handedBack = true;
    if (call.menu) call.menu.cancelled = true;
    call.menu = undefined;
    call.agentGone = true; // for this recall: the call is not its own any more
    this.forget(call);
    call.returned.done(outcome);
  }

  /** Ends the agent's side: hangs up a rung agent, hands a returned call back. */
  private async hangupAgent(channelId: string, outcome: ReturnOutcome = 'released'): Promise<void> {
    const call = this.byChannel.get(channelId);
    if (call?.returned && call.agentChannelId === channelId) return this.handBack(call, outcome);
    await this.hangup(channelId);
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
    // A returned recall: the decision's first action names the agent channel the agent's own call becomes.
    if (action.type === 'announce' && !this.byChannel.has(action.channelId)) this.adopt(request, action.channelId);
    switch (action.type) {
      case 'ringAgent':
        return this.ringAgent(request, action);
      case 'announce':
        return this.announce(action.channelId, action.prompt);
      case 'dialProspect':
        return this.dialProspect(request, action);
      case 'hangupAgent':
        return this.hangupAgent(action.channelId);
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
    const played = await call.agent.play(menuMedia(this.opts.prompts, call.prospect, this.opts.numbers), {
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
      await this.pbx.addToBridge(bridgeId, call.agent.channelId);
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
      if (call.returned && !call.returned.handedBack) {
        call.returned.handedBack = true;
        call.returned.done('gone');
      }
      if (call.menu) call.menu.cancelled = true;
      call.menu = undefined;
      if (!call.agentAnswered) {
        emit(call.log, 'info', 'recall.agent_no_answer', 'agent did not answer the recall', { dialStatus: call.agent.dialStatus, cause });
        this.reportAgentGone(call.requestId, { type: 'agentNoAnswer' });
      } else if (call.prospectAnswered) {
        // A completed call ends: the other side goes too.
        if (call.prospectChannelId && !call.prospectGone) void this.hangup(call.prospectChannelId);
      } else {
        emit(call.log, 'info', 'recall.agent_hung_up', 'agent hung up during the recall', { cause });
        this.reportAgentGone(call.requestId, { type: 'agentHungUp' });
      }
    } else if (channelId === call.prospectChannelId && !call.prospectGone) {
      call.prospectGone = true;
      if (call.prospectAnswered) {
        if (!call.agentGone) void this.hangupAgent(call.agentChannelId, 'connected');
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
      this.sink.conversationEnded?.(call.requestId);
    }
    if (call.agentGone && (call.prospectGone || !call.prospectChannelId)) this.forget(call);
  }

  /** Reports the end of the agent's channel, held back for opts.hangupConfirmMs (see there). */
  private reportAgentGone(requestId: string, observation: Observation): void {
    const ms = this.opts.hangupConfirmMs ?? 0;
    if (ms <= 0) return this.report(requestId, observation);
    clearTimeout(this.heldBack.get(requestId));
    const timer = setTimeout(() => {
      this.heldBack.delete(requestId);
      this.report(requestId, observation);
    }, ms);
    this.heldBack.set(requestId, timer);
  }

  /**
   * The connection to Asterisk dropped: agent channels that ended just before (held back, see hangupConfirmMs)
   * went with the PBX — reported as interrupted, never as the agent's hang-up or no-answer.
   */
  pbxLost(): void {
    for (const [requestId, timer] of [...this.heldBack]) {
      clearTimeout(timer);
      this.heldBack.delete(requestId);
      const reason = 'the connection to Asterisk dropped as the call ended (Asterisk restarted?)';
      emit(this.log.child({ requestId }), 'warn', 'recall.interrupted', 'the recall ended with the PBX; ringing again after the recovery delay', { how: 'vanished', startedAt: null, reason });
      this.report(requestId, { type: 'recallInterrupted', reason });
    }
  }

  /**
   * This instance no longer serves the PBX (its lease was lost): it lets go of every recall not yet connected,
   * without a word to the PBX or the policy — it may not act any more. Whoever serves next (another instance, or
   * this one with a new epoch) hangs those channels up as not its own and records the requests as
   * `recall-interrupted` (Engine.reconcileRecalls), instead of this instance going on with a menu whose key
   * presses it could not hear while it was cut off. A connected conversation is left alone, and so is an agent's
   * own returned call (the return flow holds it). Returns how many were let go.
   */
  relinquish(): number {
    for (const [requestId, timer] of [...this.heldBack]) {
      clearTimeout(timer);
      this.heldBack.delete(requestId);
    }
    let n = 0;
    for (const call of [...this.calls.values()]) {
      if (call.prospectAnswered || call.returned) continue;
      if (call.menu) call.menu.cancelled = true;
      call.agent.release();
      call.prospectPort?.release();
      this.byChannel.delete(call.agentChannelId);
      if (call.prospectChannelId) this.byChannel.delete(call.prospectChannelId);
      this.calls.delete(call.requestId);
      n++;
    }
    return n;
  }

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
