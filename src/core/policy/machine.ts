/**
 * The callback state machine: `newRequest` and `decide`. Pure: no I/O, no clock, no randomness, inputs never mutated.
 * See index.ts for the model and the rules.
 */
import { isWithinCallingHours, localLabel, nextOpening } from './calling-hours';
import { callingHoursIn, expiryIn, offerPromise } from './promise';
import { formatDuration } from './duration';
import type {
  Action,
  AgentKey,
  AgentStatus,
  CallbackRequest,
  CallbackState,
  Decision,
  NewRequestInput,
  NotBeforeKind,
  NotifyEvent,
  Observation,
  Outcome,
  PolicyConfig,
  PolicyEventType,
  WaitingFor,
} from './types';
import { MAX_NUMBER_DIGITS, validateProspectNumber } from '../validate';
import { checkTransition } from './transitions';
import { isTerminal } from './types';
import { DEFAULT_RECALL_LABEL, namedRecallLabel, recallLabel, type RecallLabelConfig } from '../label';

export interface DecideContext {
  now: number;
  cfg: PolicyConfig;
  /** The agent's device status right now (only consulted when the request is DUE). */
  agent: AgentStatus;
  /**
   * Other agents' requests for the same prospect number (only consulted when the request is DUE). Absent: none.
   * `ahead`: pending or recalling requests of other agents that opted in earlier (served first); `lastConnectedAt`:
   * when a colleague's recall last reached the prospect (they were on the phone with us: grace again).
   */
  colleagues?: Colleagues;
}

/** How long a colleague's connected call may keep the next agent waiting when its end is never reported (a crash). */
export const CALL_IN_PROGRESS_CAP_MS = 60 * 60 * 1000;

export interface Colleagues {
  ahead: number;
  lastConnectedAt: number | null;
  /**
   * When that colleague's conversation with the prospect ended: a number once it has; null while it may still go
   * on (the prospect is on the phone with us; we wait, for at most CALL_IN_PROGRESS_CAP_MS after it connected); undefined when
   * the shell does not know (the grace then counts from the connection).
   */
  lastCallEndedAt?: number | null;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Deterministic channel id of the n-th ring of the agent (n ≥ 1). */
export function agentChannelId(requestId: string, ring: number): string {
  return `ccb-${requestId}-${ring}`;
}

/** Deterministic channel id of the prospect leg of the n-th ring. */
export function prospectChannelId(requestId: string, ring: number): string {
  return `${agentChannelId(requestId, ring)}-p`;
}

/**
 * Caller ID shown on the agent's phone for a recall: the label says it is a callback, and the number is the PBX's
 * service number — never the prospect's, or the phone would show the prospect's contact as if they were calling.
 */
export function recallCallerId(
  cfg: Pick<PolicyConfig, 'recallCallerIdName' | 'recallCallerIdNumber'> & { recallLabel?: RecallLabelConfig },
  prospect: string,
  language = 'en',
  contactName?: string | null,
): { name: string; number: string } {
  const labelCfg = cfg.recallLabel ?? DEFAULT_RECALL_LABEL;
  const named = contactName ? namedRecallLabel(cfg.recallCallerIdName, labelCfg, contactName, language) : null;
  return { name: named ?? recallLabel(cfg.recallCallerIdName, labelCfg, prospect, language), number: cfg.recallCallerIdNumber };
}

/** The wait after the n-th failed attempt (n ≥ 1): backoffMs[n-1], the last value repeating. */
export function backoffFor(cfg: PolicyConfig, attempt: number): number {
  const list = cfg.backoffMs;
  return list[Math.min(Math.max(attempt, 1), list.length) - 1];
}

/** When a request created (or refreshed) at `at` expires, and why (the regular case; see promise.ts for carry-over). */
export function expiryFor(cfg: PolicyConfig, at: number, timeZone?: string): { expiresAt: number; expiresBecause: 'max-age' | 'end-of-calling-day' } {
  return expiryIn(cfg, at, timeZone);
}

/**
 * Expiry and carry-over of a request (re)started at `now`, from the offer's promise. Throws for a declined promise:
 * the shell must not store a request the agent was not offered (it asks {@link offerPromise} first).
 */
function lifeSpan(cfg: PolicyConfig, now: number, mode: 'device' | 'timed', timeZone: string) {
  const p = offerPromise(cfg, now, { mode, timeZone });
  if (p.kind === 'declined') throw new Error(`No callback can be promised: ${p.reason}`);
  if (p.kind === 'regular') return { expiresAt: p.expiresAt, expiresBecause: p.expiresBecause, carriedOver: null };
  return { expiresAt: p.expiresAt, expiresBecause: p.expiresBecause, carriedOver: { opensAt: p.opensAt, calledDays: p.calledDays } };
}

/**
 * The counters and facts of a request's life at its start (creation) or restart (refresh): the line was
 * busy just now (device mode) or the first probe is scheduled (timed mode). `rings` is not part of it:
 * channel ids must never be reused across a refresh.
 */
function freshLife(cfg: PolicyConfig, now: number, device: boolean) {
  return {
    attempts: 0,
    noAnswers: 0,
    snoozes: 0,
    menuTimeouts: 0,
    lineBusy: device ? true : null,
    busySince: device ? now : null,
    freeSince: null,
    lastBusySpellMs: null,
    graceUntil: null,
    notBefore: device ? null : now + cfg.firstProbeDelayMs,
    notBeforeKind: device ? null : ('probe' as const),
    lastAttemptAt: null,
    recallStartedAt: null,
    agentAnsweredAt: null,
  } satisfies Partial<CallbackRequest>;
}

/** Create a request in WAITING (the prospect's line was busy when the agent pressed #). Throws on invalid input. */
export function newRequest(input: NewRequestInput, cfg: PolicyConfig, now: number): Decision {
  const problems = validateInput(input);
  if (!Number.isFinite(now)) problems.push(`now: expected epoch ms, got ${String(now)}`);
  if (problems.length > 0) throw new Error(`Invalid callback request: ${problems.join('; ')}`);
  const device = input.mode === 'device';
  const timeZone = input.timeZone ?? cfg.callingHours.timeZone;
  const r: CallbackRequest = {
    id: input.id,
    agent: input.agent,
    agentCallerId: { name: input.agentCallerId.name, number: input.agentCallerId.number },
    prospect: input.prospect,
    language: input.language,
    mode: input.mode,
    timeZone,
    zoneSource: input.zoneSource ?? (input.timeZone === undefined ? 'default' : 'number'),
    ...(input.profile !== undefined ? { profile: input.profile } : {}),
    ...(input.policy !== undefined ? { policy: input.policy } : {}),
    ...(input.contact ? { contact: { ...input.contact } } : {}),
    state: 'WAITING',
    createdAt: now,
    refreshedAt: null,
    refreshes: 0,
    updatedAt: now,
    wakeAt: null,
    ...lifeSpan(cfg, now, input.mode, timeZone),
    waitingFor: null,
    reason: '',
    outcome: null,
    rings: 0,
    ...freshLife(cfg, now, device),
  };
  if (device) {
    const t = pendingTarget(r, now, cfg);
    Object.assign(r, { state: t.state, waitingFor: t.waitingFor, wakeAt: t.wakeAt, reason: `${t.reason}${carriedNote(r, now)}` });
  } else {
    // Spelled out (not pendingTarget) so that a zero probe delay still starts in WAITING, waking right away.
    const probeAt = Math.min(now + cfg.firstProbeDelayMs, r.expiresAt);
    Object.assign(r, {
      waitingFor: 'probe',
      wakeAt: probeAt,
      reason: `first probe of the external line at ${localLabel(r.timeZone, probeAt, now)}${carriedNote(r, now)}`,
    });
  }
  checkTransition(null, 'created', r.state);
  return {
    request: r,
    events: [{ at: now, type: 'created', from: null, to: r.state, reason: r.reason, wakeAt: r.wakeAt, waitingFor: r.waitingFor }],
    actions: [{ type: 'notify', event: 'requested', reason: r.reason }],
  };
}

/** '; carried over to the next calling day (opens Mon 09:00)' for a carried-over request, else ''. */
function carriedNote(r: CallbackRequest, now: number): string {
  if (!r.carriedOver) return '';
  return `; carried over to the next calling day (opens ${localLabel(r.timeZone, r.carriedOver.opensAt, now)} ${r.timeZone})`;
}

/**
 * Apply one observation at `ctx.now`. Returns the next request, the events to persist and the actions to execute
 * (after persisting). Observations that make no sense in the current state return the request unchanged, no events,
 * no actions.
 */
export function decide(request: CallbackRequest, observation: Observation, ctx: DecideContext): Decision {
  const s = new Step(request, ctx);
  if (!isTerminal(request.state)) dispatch(s, observation);
  return s.result();
}

// ---------------------------------------------------------------------------------------------------------------

class Step {
  readonly r: CallbackRequest;
  readonly events: Decision['events'] = [];
  readonly actions: Action[] = [];
  readonly now: number;
  readonly cfg: PolicyConfig;
  readonly agent: AgentStatus;
  readonly colleagues: Colleagues;

  constructor(
    readonly original: CallbackRequest,
    ctx: DecideContext,
  ) {
    this.r = { ...original, agentCallerId: { ...original.agentCallerId } };
    this.now = ctx.now;
    this.cfg = ctx.cfg;
    this.agent = ctx.agent;
    this.colleagues = ctx.colleagues ?? { ahead: 0, lastConnectedAt: null };
  }

  label(at: number): string {
    return localLabel(this.r.timeZone, at, this.now);
  }

  emit(type: PolicyEventType, from: CallbackState, note?: string): void {
    const r = this.r;
    const reason = note ? `${note}; ${r.reason}` : r.reason;
    checkTransition(from, type, r.state); // the state table (transitions.ts) has the last word
    this.events.push({ at: this.now, type, from, to: r.state, reason, wakeAt: r.wakeAt, waitingFor: r.waitingFor });
  }

  act(action: Action): void {
    this.actions.push(action);
  }

  get agentChannel(): string {
    return agentChannelId(this.r.id, this.r.rings);
  }

  get prospectChannel(): string {
    return prospectChannelId(this.r.id, this.r.rings);
  }

  result(): Decision {
    const unchanged =
      this.events.length === 0 &&
      this.actions.length === 0 &&
      JSON.stringify({ ...this.r, updatedAt: this.original.updatedAt }) === JSON.stringify(this.original);
    if (unchanged) return { request: this.original, events: [], actions: [] };
    return { request: { ...this.r, updatedAt: this.now }, events: this.events, actions: this.actions };
  }
}

function dispatch(s: Step, o: Observation): void {
  const { r } = s;
  const pending = r.state === 'WAITING' || r.state === 'GRACE' || r.state === 'DUE';
  switch (o.type) {
    case 'tick':
      if (pending) return settle(s, 'tick');
      if (r.wakeAt !== null && s.now >= r.wakeAt) return recoverStaleRecall(s);
      return;
    case 'prospectState':
      return onProspectState(s, o.busy);
    case 'refresh':
      if (pending || r.state === 'RINGING_AGENT') return refresh(s);
      return;
    case 'cancel':
      return cancel(s, o.by);
    case 'snooze':
      if (pending) return snooze(s, 'agent-snoozed', { explicit: true, why: `snoozed by ${o.by}`, force: true });
      if (r.state === 'RINGING_AGENT') {
        s.act({ type: 'hangupAgent', channelId: s.agentChannel });
        return snooze(s, 'agent-snoozed', { explicit: true, why: `snoozed by ${o.by} while the agent's phone rang` });
      }
      return;
    case 'agentAnswered':
      if (r.state === 'RINGING_AGENT' && r.agentAnsweredAt === null) return agentAnswered(s);
      return;
    case 'agentReturned':
      if (pending) return agentReturned(s);
      return;
    case 'agentNoAnswer':
      if (r.state === 'RINGING_AGENT' && r.agentAnsweredAt === null) {
        return snooze(s, 'agent-no-answer', { explicit: false, why: 'agent did not answer' });
      }
      return;
    case 'agentKey':
      if (r.state === 'RINGING_AGENT') return agentKey(s, o.key);
      return;
    case 'agentHungUp':
      if (r.state === 'RINGING_AGENT') {
        const why = r.agentAnsweredAt === null ? 'agent rejected the call' : 'agent hung up during the menu';
        return snooze(s, 'agent-hung-up', { explicit: false, why });
      }
      if (r.state === 'CONNECTING') {
        s.act({ type: 'hangupProspect', channelId: s.prospectChannel });
        markLineFree(s); // it was only "busy" because we were ringing it
        return snooze(s, 'agent-hung-up', { explicit: false, why: `agent hung up while the prospect was ringing (attempt ${r.attempts})` });
      }
      return;
    case 'recallFailed':
      if (r.state === 'RINGING_AGENT') {
        return snooze(s, 'recall-failed', { explicit: false, why: `could not ring the agent: ${o.reason}` });
      }
      if (r.state === 'CONNECTING') {
        s.act({ type: 'hangupAgent', channelId: s.agentChannel });
        return snooze(s, 'recall-failed', { explicit: false, why: `could not dial the prospect (attempt ${r.attempts}): ${o.reason}` });
      }
      return;
    case 'recallInterrupted':
      if (r.state === 'RINGING_AGENT' || r.state === 'CONNECTING') {
        return recover(s, 'recall-interrupted', `recall interrupted by a service failure (${o.reason}); not a snooze`);
      }
      return;
    case 'prospectAnswered':
      if (r.state === 'CONNECTING') {
        return finish(s, 'COMPLETED', 'completed', 'prospect-answered', `connected on attempt ${r.attempts}`, 'completed');
      }
      return;
    case 'prospectBusy':
      if (r.state === 'CONNECTING') return attemptBusy(s);
      return;
    case 'prospectNoAnswer':
      if (r.state === 'CONNECTING') return attemptNoAnswer(s);
      return;
  }
}

// --- pending states: WAITING / GRACE / DUE ------------------------------------------------------------------------

interface Target {
  state: 'WAITING' | 'GRACE' | 'DUE';
  waitingFor: WaitingFor | null;
  wakeAt: number;
  reason: string;
}

/** Where the prospect side of a pending request stands, from its facts alone (DUE is provisional: see dueWait). */
function pendingTarget(r: CallbackRequest, now: number, cfg: PolicyConfig): Target {
  const L = (at: number) => localLabel(r.timeZone, at, now);
  const cap = (at: number) => Math.min(at, r.expiresAt);
  const nb = r.notBefore !== null && r.notBefore > now ? r.notBefore : null;
  if (r.mode === 'device' && r.lineBusy === true) {
    const since = r.busySince ?? r.updatedAt;
    const extra = nb === null ? '' : `; ${notBeforePhrase(r, cfg)} until ${L(nb)}`;
    return { state: 'WAITING', waitingFor: 'prospect-busy', wakeAt: r.expiresAt, reason: `prospect line busy since ${L(since)}${extra}` };
  }
  if (r.mode === 'device' && r.graceUntil !== null) {
    const end = Math.max(r.graceUntil, nb ?? -Infinity);
    if (now < end) {
      const spell = r.lastBusySpellMs;
      const extended =
        spell !== null && spell > cfg.longBusyThresholdMs && cfg.longBusyExtraGraceMs > 0
          ? ` (extended by ${formatDuration(cfg.longBusyExtraGraceMs)} after ${formatDuration(roundToSecond(spell))} busy)`
          : '';
      if (nb === null || r.graceUntil >= nb) {
        return { state: 'GRACE', waitingFor: 'grace', wakeAt: cap(end), reason: `grace until ${L(r.graceUntil)}${extended}` };
      }
      return {
        state: 'GRACE',
        waitingFor: r.notBeforeKind ?? 'backoff',
        wakeAt: cap(end),
        reason: `grace until ${L(r.graceUntil)}${extended}, held until ${L(nb)} by ${notBeforePhrase(r, cfg)}`,
      };
    }
    const heldBy = r.notBefore !== null && r.notBefore > r.graceUntil ? r.notBeforeKind : null;
    return { state: 'DUE', waitingFor: null, wakeAt: now, reason: heldBy === null ? 'grace over' : OVER[heldBy] };
  }
  if (nb !== null) {
    const kind = r.notBeforeKind ?? 'backoff';
    const phrase =
      kind === 'probe'
        ? `first probe of the external line at ${L(nb)}`
        : `${notBeforePhrase(r, cfg)} until ${L(nb)}`;
    return { state: 'WAITING', waitingFor: kind, wakeAt: cap(nb), reason: phrase };
  }
  return { state: 'DUE', waitingFor: null, wakeAt: now, reason: r.notBeforeKind === null ? 'prospect line free' : OVER[r.notBeforeKind] };
}

const OVER: Record<NotBeforeKind, string> = {
  probe: 'probe time reached',
  backoff: 'back-off over',
  snooze: 'snooze over',
  'no-answer-retry': 'retry time reached',
  recovery: 'recovery delay over',
};

function notBeforePhrase(r: CallbackRequest, cfg: PolicyConfig): string {
  switch (r.notBeforeKind) {
    case 'snooze':
      return `snooze ${r.snoozes} of ${cfg.maxSnoozes}`;
    case 'no-answer-retry':
      return `retry after no answer on attempt ${r.attempts}`;
    case 'probe':
      return 'first probe';
    case 'recovery':
      return 'recovery after an interrupted recall';
    default:
      return `back-off after busy attempt ${r.attempts}`;
  }
}

/** Why a DUE request cannot ring the agent yet (null: go). Calling hours first: they usually mean the longer wait. */
function dueWait(s: Step): { waitingFor: WaitingFor; wakeAt: number; reason: string } | null {
  const { r, now, cfg, agent, colleagues } = s;
  const hours = callingHoursIn(cfg, r.timeZone);
  if (!isWithinCallingHours(hours, now)) {
    const open = nextOpening(hours, now, cfg.openingHorizonDays);
    if (open === null) {
      return {
        waitingFor: 'calling-hours',
        wakeAt: r.expiresAt,
        reason: `outside calling hours, no opening within ${cfg.openingHorizonDays} days`,
      };
    }
    const late = open >= r.expiresAt ? ` (after expiry at ${s.label(r.expiresAt)})` : '';
    return { waitingFor: 'calling-hours', wakeAt: Math.min(open, r.expiresAt), reason: `outside calling hours, opens ${s.label(open)}${late}` };
  }
  // One prospect, many agents: served in opt-in order, one recall at a time (the store enforces the latter).
  if (colleagues.ahead > 0) {
    const position = colleagues.ahead + 1;
    return {
      waitingFor: 'colleague',
      wakeAt: Math.min(now + cfg.agentBusyRecheckMs, r.expiresAt),
      reason: `${colleagues.ahead === 1 ? 'a colleague' : `${colleagues.ahead} colleagues`} opted in earlier for this number (queue position ${position})`,
    };
  }
  if (colleagues.lastConnectedAt !== null) {
    const since = colleagues.lastConnectedAt;
    if (colleagues.lastCallEndedAt === null && now < since + CALL_IN_PROGRESS_CAP_MS) {
      return {
        waitingFor: 'colleague',
        wakeAt: Math.min(now + cfg.agentBusyRecheckMs, r.expiresAt),
        reason: `the prospect is on the phone with a colleague (since ${s.label(since)})`,
      };
    }
    // The prospect was on the phone with a colleague: the same break as after any other call.
    const from = typeof colleagues.lastCallEndedAt === 'number' ? colleagues.lastCallEndedAt : since;
    const breakEnd = from + (r.mode === 'device' ? cfg.graceMs : cfg.firstProbeDelayMs);
    if (now < breakEnd) {
      return { waitingFor: 'grace', wakeAt: Math.min(breakEnd, r.expiresAt), reason: `grace after a colleague's call with the prospect, until ${s.label(breakEnd)}` };
    }
  }
  if (agent.busy) {
    return {
      waitingFor: 'agent-busy',
      wakeAt: Math.min(now + cfg.agentBusyRecheckMs, r.expiresAt),
      reason: `agent busy since ${s.label(agent.since)}`,
    };
  }
  const wrapUpEnd = agent.since + cfg.agentWrapUpMs;
  if (now < wrapUpEnd) {
    return { waitingFor: 'agent-wrap-up', wakeAt: Math.min(wrapUpEnd, r.expiresAt), reason: `agent wrap-up until ${s.label(wrapUpEnd)}` };
  }
  return null;
}

/**
 * Re-evaluate a request whose facts changed (or whose time came) and that is, or now goes back to, a pending state.
 * `cause` names the event; 'tick' becomes 'due' (→ DUE) or 'waiting' (DUE → DUE with a new reason).
 */
function settle(s: Step, cause: PolicyEventType | 'tick', opts: { note?: string; force?: boolean; from?: CallbackState } = {}): void {
  const { r, now } = s;
  const from = opts.from ?? r.state;
  const prevWaitingFor = r.waitingFor;
  const t = pendingTarget(r, now, s.cfg);
  if (now >= r.expiresAt) {
    if (from === 'RINGING_AGENT' || from === 'CONNECTING') {
      // Show the way back to waiting before expiring, so the history reads naturally.
      apply(r, t.state === 'DUE' ? { ...t, state: 'WAITING' } : t);
      s.emit(cause === 'tick' ? 'waiting' : cause, from, opts.note);
      return expire(s, r.state);
    }
    return expire(s, from);
  }
  if (t.state !== 'DUE') {
    apply(r, t);
    if (opts.force || from !== r.state || prevWaitingFor !== r.waitingFor) s.emit(cause === 'tick' ? 'waiting' : cause, from, opts.note);
    return;
  }
  const wait = dueWait(s);
  apply(r, wait === null ? { ...t, waitingFor: null, wakeAt: now } : { ...t, ...wait });
  if (from !== 'DUE' || opts.force) {
    s.emit(cause === 'tick' ? 'due' : cause, from, opts.note);
  } else if (wait !== null && prevWaitingFor !== r.waitingFor) {
    s.emit(cause === 'tick' ? 'waiting' : cause, from, opts.note);
  }
  if (wait === null) startRing(s);
}

function apply(r: CallbackRequest, t: { state: CallbackState; waitingFor: WaitingFor | null; wakeAt: number | null; reason: string }): void {
  r.state = t.state;
  r.waitingFor = t.waitingFor;
  r.wakeAt = t.wakeAt;
  r.reason = t.reason;
}

function onProspectState(s: Step, busy: boolean): void {
  const { r } = s;
  if (r.mode !== 'device') return; // no device to watch: nothing we can learn
  switch (r.state) {
    case 'WAITING':
      if (busy === (r.lineBusy === true)) return; // no change
      if (busy) {
        markLineBusy(s);
        return settle(s, 'prospect-busy');
      }
      markLineFreeWithGrace(s);
      return settle(s, 'prospect-free');
    case 'GRACE':
    case 'DUE':
      if (!busy) return;
      markLineBusy(s);
      return settle(s, 'prospect-busy', { note: 'prospect busy again' });
    case 'RINGING_AGENT': {
      if (!busy) return;
      // Considerate: do not offer the agent a line that just became busy. Not an attempt, not a snooze.
      if (r.agentAnsweredAt !== null) s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'still-busy' });
      s.act({ type: 'hangupAgent', channelId: s.agentChannel });
      clearRecall(r);
      markLineBusy(s);
      return settle(s, 'prospect-busy', { note: 'prospect busy again while ringing the agent; recall withdrawn' });
    }
    default:
      // CONNECTING: we are dialling the prospect ourselves; their device state reflects our own call.
      return;
  }
}

function markLineBusy(s: Step): void {
  const r = s.r;
  r.lineBusy = true;
  r.busySince = s.now;
  r.freeSince = null;
  r.graceUntil = null;
}

function markLineFree(s: Step): void {
  const r = s.r;
  if (r.mode !== 'device') return;
  r.lineBusy = false;
  r.busySince = null;
  r.freeSince = s.now;
  r.graceUntil = null;
}

function markLineFreeWithGrace(s: Step): void {
  const { r, now, cfg } = s;
  const spell = now - (r.busySince ?? now);
  const extra = spell > cfg.longBusyThresholdMs ? cfg.longBusyExtraGraceMs : 0;
  r.lineBusy = false;
  r.busySince = null;
  r.freeSince = now;
  r.lastBusySpellMs = spell;
  r.graceUntil = now + cfg.graceMs + extra;
}

function refresh(s: Step): void {
  const { r, now, cfg } = s;
  const from = r.state;
  const promise = offerPromise(cfg, now, { mode: r.mode, timeZone: r.timeZone });
  // Nothing new can be promised now (policy.afterHours = decline): the request keeps the promise it was made with.
  if (promise.kind === 'declined') return;
  if (from === 'RINGING_AGENT') s.act({ type: 'hangupAgent', channelId: s.agentChannel });
  const device = r.mode === 'device';
  Object.assign(r, {
    refreshedAt: now,
    refreshes: r.refreshes + 1,
    ...lifeSpan(cfg, now, r.mode, r.timeZone),
    ...freshLife(cfg, now, device),
  } satisfies Partial<CallbackRequest>);
  const carried = r.carriedOver ? `; ${carriedNote(r, now).slice(2)}` : '';
  settle(s, 'refreshed', { force: true, from, note: `agent pressed # again; restarted as if new${carried}` });
}

// --- recall: RINGING_AGENT / CONNECTING ---------------------------------------------------------------------------

/** A recall begins (a ring, or the agent's own call to the service number): a new ring, the menu from the start. */
function enterRecall(r: Step['r'], now: number, agentAnsweredAt: number | null): void {
  r.rings += 1;
  r.state = 'RINGING_AGENT';
  r.recallStartedAt = now;
  r.agentAnsweredAt = agentAnsweredAt;
  r.menuTimeouts = 0;
  r.graceUntil = null;
  r.notBefore = null;
  r.notBeforeKind = null;
  r.waitingFor = 'agent';
}

function startRing(s: Step): void {
  const { r, now, cfg } = s;
  if (r.attempts >= cfg.maxAttempts) {
    // Only reachable when maxAttempts was lowered while the request waited.
    return finish(s, 'FAILED', 'max-attempts', 'failed', `no attempts left (${r.attempts} of ${cfg.maxAttempts})`, 'failed');
  }
  enterRecall(r, now, null);
  r.wakeAt = now + cfg.agentRingTimeoutMs + cfg.recallSafetyMarginMs;
  r.reason = `ringing the agent on ${s.agentChannel} (attempt ${r.attempts + 1} of ${cfg.maxAttempts})`;
  s.act({
    type: 'ringAgent',
    attempt: r.attempts + 1,
    channelId: s.agentChannel,
    callerId: recallCallerId(cfg, r.prospect, r.language, r.contact?.name),
    timeoutMs: cfg.agentRingTimeoutMs,
  });
  s.emit('ring-agent', 'DUE');
}

/**
 * The agent called the service number and hears this request: a ring of the agent that is already answered,
 * on the agent's own call (the shell holds it as channel `agentChannel`). Neither an attempt nor a snooze;
 * the menu decides as after a ring.
 */
function agentReturned(s: Step): void {
  const { r, now, cfg } = s;
  const from = r.state;
  enterRecall(r, now, now);
  r.wakeAt = now + cfg.menuTimeoutMs * cfg.menuRepeats + cfg.recallSafetyMarginMs;
  r.reason = `the agent called back (attempt ${r.attempts + 1} of ${cfg.maxAttempts}); menu: 1 connect · 2 snooze · 3 cancel`;
  s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'menu' });
  s.emit('agent-returned', from);
}

function agentAnswered(s: Step): void {
  const { r, now, cfg } = s;
  r.agentAnsweredAt = now;
  r.wakeAt = now + cfg.menuTimeoutMs * cfg.menuRepeats + cfg.recallSafetyMarginMs;
  r.reason = 'agent answered; menu: 1 connect · 2 snooze · 3 cancel';
  s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'menu' });
  s.emit('agent-answered', 'RINGING_AGENT');
}

function agentKey(s: Step, key: AgentKey): void {
  const { r, now, cfg } = s;
  if (r.agentAnsweredAt === null) r.agentAnsweredAt = now; // a key implies the agent answered
  switch (key) {
    case '1': {
      r.attempts += 1;
      r.lastAttemptAt = now;
      r.state = 'CONNECTING';
      r.waitingFor = 'prospect-answer';
      r.wakeAt = now + cfg.prospectRingTimeoutMs + cfg.recallSafetyMarginMs;
      r.reason = `dialling the prospect (attempt ${r.attempts} of ${cfg.maxAttempts})`;
      s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'connecting' });
      s.act({
        type: 'dialProspect',
        attempt: r.attempts,
        channelId: s.prospectChannel,
        agentChannelId: s.agentChannel,
        callerId: { ...r.agentCallerId },
        timeoutMs: cfg.prospectRingTimeoutMs,
      });
      return s.emit('agent-accepted', 'RINGING_AGENT');
    }
    case '2': {
      // If this snooze cannot be granted (limits), the request ends: tell the agent 'cancelled', not 'snoozed'.
      const granted = r.attempts < cfg.maxAttempts && r.snoozes < cfg.maxSnoozes;
      s.act({ type: 'announce', channelId: s.agentChannel, prompt: granted ? 'snoozed' : 'cancelled' });
      s.act({ type: 'hangupAgent', channelId: s.agentChannel });
      return snooze(s, 'agent-snoozed', { explicit: true, why: 'agent pressed 2 (snooze)' });
    }
    case '3':
      s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'cancelled' });
      s.act({ type: 'hangupAgent', channelId: s.agentChannel });
      return finish(s, 'CANCELLED', 'cancelled', 'cancelled', 'cancelled by the agent (pressed 3)', 'cancelled');
    case 'none': {
      r.menuTimeouts += 1;
      if (r.menuTimeouts < cfg.menuRepeats) {
        r.wakeAt = now + cfg.menuTimeoutMs * (cfg.menuRepeats - r.menuTimeouts) + cfg.recallSafetyMarginMs;
        r.reason = `no key pressed (${r.menuTimeouts} of ${cfg.menuRepeats}); repeating the menu`;
        s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'menu' });
        return s.emit('menu-timeout', 'RINGING_AGENT');
      }
      s.act({ type: 'hangupAgent', channelId: s.agentChannel });
      return snooze(s, 'menu-timeout', { explicit: false, why: `agent pressed no key (${r.menuTimeouts} prompts)` });
    }
  }
}

function attemptBusy(s: Step): void {
  const { r, cfg } = s;
  s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'still-busy' });
  s.act({ type: 'hangupAgent', channelId: s.agentChannel });
  if (r.attempts >= cfg.maxAttempts) {
    return finish(s, 'FAILED', 'max-attempts', 'attempt-busy', `prospect busy on attempt ${r.attempts} of ${cfg.maxAttempts}`, 'failed');
  }
  clearRecall(r);
  if (r.mode === 'device') markLineBusy(s);
  r.notBefore = (r.lastAttemptAt ?? s.now) + backoffFor(cfg, r.attempts);
  r.notBeforeKind = 'backoff';
  settle(s, 'attempt-busy', { note: `prospect busy on attempt ${r.attempts} of ${cfg.maxAttempts}` });
}

function attemptNoAnswer(s: Step): void {
  const { r, cfg } = s;
  s.act({ type: 'announce', channelId: s.agentChannel, prompt: 'no-answer' });
  s.act({ type: 'hangupAgent', channelId: s.agentChannel });
  r.noAnswers += 1;
  if (r.noAnswers > cfg.noAnswerRetries) {
    const retries = cfg.noAnswerRetries === 1 ? '1 retry' : `${cfg.noAnswerRetries} retries`;
    return finish(s, 'FAILED', 'prospect-no-answer', 'attempt-no-answer', `prospect did not answer on attempt ${r.attempts} (after ${retries})`, 'failed');
  }
  if (r.attempts >= cfg.maxAttempts) {
    return finish(s, 'FAILED', 'max-attempts', 'attempt-no-answer', `prospect did not answer on attempt ${r.attempts} of ${cfg.maxAttempts}`, 'failed');
  }
  clearRecall(r);
  markLineFree(s);
  r.notBefore = (r.lastAttemptAt ?? s.now) + backoffFor(cfg, r.attempts);
  r.notBeforeKind = 'no-answer-retry';
  settle(s, 'attempt-no-answer', { note: 'prospect did not answer' });
}

/**
 * Postpone after the agent could not or would not take the recall. Counts as a snooze; over the limit → FAILED.
 * After an attempt has been made, no attempts left → FAILED 'max-attempts'.
 */
function snooze(s: Step, cause: PolicyEventType, opts: { explicit: boolean; why: string; force?: boolean }): void {
  const { r, now, cfg } = s;
  if (r.attempts >= cfg.maxAttempts) {
    return finish(s, 'FAILED', 'max-attempts', cause, `${opts.why}; no attempts left (${r.attempts} of ${cfg.maxAttempts})`, 'failed');
  }
  if (r.snoozes >= cfg.maxSnoozes) {
    const outcome: Outcome = opts.explicit ? 'snooze-limit' : 'agent-unavailable';
    return finish(s, 'FAILED', outcome, cause, `${opts.why}; snooze limit (${cfg.maxSnoozes}) reached`, 'failed');
  }
  clearRecall(r);
  r.snoozes += 1;
  r.graceUntil = null;
  r.notBefore = now + cfg.snoozeMs;
  r.notBeforeKind = 'snooze';
  settle(s, cause, { note: opts.why, force: opts.force });
}

/**
 * A tick past the safety deadline of a recall: the PBX never told us how it ended (crash, lost connection). Hang up
 * whatever may be left and recover it like an interrupted recall: the service failed, not the agent (no snooze).
 */
function recoverStaleRecall(s: Step): void {
  const { r } = s;
  const why = `no outcome from the PBX by ${s.label(r.wakeAt ?? s.now)} (recall stalled, service restart?); not a snooze`;
  if (r.state === 'CONNECTING') s.act({ type: 'hangupProspect', channelId: s.prospectChannel });
  s.act({ type: 'hangupAgent', channelId: s.agentChannel });
  recover(s, 'recall-timeout', why);
}

/**
 * A recall cut short by the service's own failure: no snooze and no attempt is charged for it (from CONNECTING the
 * prospect was dialled, and that dial stays counted: maxAttempts protects the prospect). The agent is rung again
 * after recoveryDelayMs, through the usual pending rules (grace, wrap-up, calling hours, expiry).
 */
function recover(s: Step, cause: 'recall-timeout' | 'recall-interrupted', why: string): void {
  const { r, now, cfg } = s;
  const from = r.state;
  if (from === 'CONNECTING') {
    markLineFree(s); // it was only "busy" because we were ringing it
    if (r.attempts >= cfg.maxAttempts) {
      return finish(s, 'FAILED', 'max-attempts', cause, `${why}; no attempts left (${r.attempts} of ${cfg.maxAttempts})`, 'failed');
    }
  }
  clearRecall(r);
  r.graceUntil = null;
  r.notBefore = now + cfg.recoveryDelayMs;
  r.notBeforeKind = 'recovery';
  settle(s, cause, { note: why, force: true });
}

function clearRecall(r: CallbackRequest): void {
  r.recallStartedAt = null;
  r.agentAnsweredAt = null;
  r.menuTimeouts = 0;
}

// --- terminal ---------------------------------------------------------------------------------------------------

function cancel(s: Step, by: string): void {
  const { r } = s;
  if (r.state === 'CONNECTING') s.act({ type: 'hangupProspect', channelId: s.prospectChannel });
  if (r.state === 'RINGING_AGENT' || r.state === 'CONNECTING') s.act({ type: 'hangupAgent', channelId: s.agentChannel });
  finish(s, 'CANCELLED', 'cancelled', 'cancelled', `cancelled by ${by || 'unknown'}`, 'cancelled');
}

function expire(s: Step, from: CallbackState): void {
  const { r } = s;
  const reason =
    r.expiresBecause === 'max-age'
      ? `expired: maximum age ${formatDuration(r.expiresAt - (r.refreshedAt ?? r.createdAt))} reached at ${s.label(r.expiresAt)}`
      : r.expiresBecause === 'carry-over'
        ? `expired: end of the calling day it was carried over to (${s.label(r.expiresAt)})`
        : `expired: end of the prospect's calling day (${s.label(r.expiresAt)})`;
  finish(s, 'EXPIRED', 'expired', 'expired', reason, 'expired', from);
}

function finish(
  s: Step,
  state: CallbackState,
  outcome: Outcome,
  type: PolicyEventType,
  reason: string,
  notify: NotifyEvent,
  from: CallbackState = s.r.state,
): void {
  const r = s.r;
  clearRecall(r);
  r.state = state;
  r.outcome = outcome;
  r.wakeAt = null;
  r.waitingFor = null;
  r.reason = reason;
  s.emit(type, from);
  s.act({ type: 'notify', event: notify, reason });
}

function roundToSecond(ms: number): number {
  return Math.round(ms / 1000) * 1000;
}

function validateInput(input: NewRequestInput): string[] {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null) return ['expected an object'];
  if (typeof input.id !== 'string' || !ID_RE.test(input.id)) problems.push(`id ${JSON.stringify(input.id)} must be letters, digits, '.', '_', '-'`);
  if (typeof input.agent !== 'string' || input.agent.trim() === '') problems.push('agent must be a non-empty string');
  // The number rule lives in validate.ts; here only its syntax and the widest bound (the shell applied the configured one).
  const number = validateProspectNumber(input.prospect, { minDigits: 1, maxDigits: MAX_NUMBER_DIGITS });
  if (!number.ok || number.value !== input.prospect) problems.push(`prospect ${JSON.stringify(input.prospect)} must be digits`);
  if (input.mode !== 'device' && input.mode !== 'timed') problems.push(`mode ${JSON.stringify(input.mode)} must be 'device' or 'timed'`);
  if (typeof input.language !== 'string' || input.language === '') problems.push('language must be a non-empty string');
  const cid = input.agentCallerId;
  if (typeof cid !== 'object' || cid === null || typeof cid.name !== 'string' || typeof cid.number !== 'string') {
    problems.push('agentCallerId must be { name, number }');
  }
  return problems;
}
