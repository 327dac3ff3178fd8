/**
 * The engine: the imperative shell around the pure policy (src/core/policy).
 *
 * - The store is the truth. Every decision goes through the ledger (src/ledger.ts): `decide(request,
 *   observation)` → persisted in one transaction, guarded by the request's version (a lost claim is
 *   dropped and re-read) → only then are the actions carried out. Restarting the process at any point
 *   therefore neither loses a request nor rings an agent twice for one attempt (channel ids are
 *   deterministic, see the policy).
 * - One timer, armed for the earliest `wakeAt` in the store (capped at an hour so that long waits
 *   never overflow setTimeout's 24.8-day limit), re-armed after every change and at start.
 * - The store is asynchronous (src/store/contract.ts: SQLite or PostgreSQL). Decisions are serialised
 *   in this process (one at a time, `exclusive`), as they were by construction with a synchronous store,
 *   and share durable commits (group commit, src/store/group.ts): the next decision starts once this one's
 *   writes are staged, and a decision's caller hears back and its actions run (`afterCommit`) only once its
 *   group is durable;
 *   the agent's status counts any other request of the same agent that is ringing or connecting as
 *   "busy", so two due callbacks of one agent never ring together. A long tick yields between requests,
 *   so an opt-in never waits behind a whole batch.
 * - Its parts, one job each, wired here by constructor: the opt-in and the offer's outlook (opt-in.ts), presence
 *   and the agent's status as the policy sees it (presence.ts), the agents' pauses (pauses.ts), who goes next
 *   outside the timer (queues.ts) and the recalls an earlier run left (recovery.ts). This class keeps the timer,
 *   the serial queue of decisions, the dispatch of their actions and the decision listeners.
 * - With PostgreSQL and a lease (src/coordination), `canAct` says whether this instance still serves
 *   the PBX: a decision written, the actions run only while it does (and the database refuses the
 *   writes of a stale lease epoch, see src/store/postgres.ts).
 */
import { RECALL_STATES, isTerminal, type Decision, type Observation } from '../core/policy';
import { checkDial } from '../core/dial-policy';
import { scheduled } from '../core/scheduler';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import { ApplyResult, Guard, Ledger } from '../ledger';
import { OptIns, type OfferOutlook, type OptInInput, type OptInResult } from './opt-in';
import { iso, type AppliedDecision, type EngineOptions, type RequestStore } from './options';
import { Pauses } from './pauses';
import { Presence } from './presence';
import { Queues } from './queues';
import { reconcileRecalls } from './recovery';
import { GroupCommit } from '../store/group';

export class Engine {
  private timer?: NodeJS.Timeout;
  private armedFor: number | null = null;
  /** Each request's telephony actions, one after the other. */
  private readonly actionChains = new Map<string, Promise<void>>();
  private stopped = true;
  private readonly clock: () => number;
  private readonly log: Logger;
  /** Listeners told of every persisted decision (metrics, the lamp); a throwing one is logged, never fatal. */
  private readonly decisionListeners: ((applied: AppliedDecision) => void)[] = [];

  /** The one place that applies a decision (decide → events → outbox → version-guarded write). */
  readonly ledger: Ledger;
  /** The agents' pauses ("hold my callbacks"): the feature code, the page, the pause lamp. */
  readonly pauses: Pauses;
  /** Agent and line status, PBX reachability: the agent's status as the policy sees it. */
  readonly presence: Presence;
  /** The opt-in, the offer's outlook, the not-offered event, the CRM name. */
  readonly optIns: OptIns;
  /** Who goes next outside the timer; the number's colleagues. */
  private readonly queues: Queues;
  private readonly contract: RequestStore;
  /** The queue of decisions: one at a time in this process, committed in groups (src/store/group.ts). */
  readonly decisions: GroupCommit;
  /** When this process last started serving (start()): recalls that began before it are not this process's calls. */
  private startedAt = 0;

  constructor(private readonly opts: EngineOptions) {
    this.clock = opts.clock ?? Date.now;
    this.log = opts.log;
    this.contract = opts.store;
    const store = opts.store;
    this.decisions = new GroupCommit({
      open: store.group ? (o) => store.group!(o) : undefined,
      maxGroup: opts.maxGroup,
      beforeCommit: opts.beforeCommit,
      onEffectError: (err) => this.log.error('a side effect of a committed decision failed', { error: (err as Error)?.message ?? String(err) }),
    });
    const stopped = () => this.stopped;
    const observe = (requestId: string, observation: Observation) => this.observe(requestId, observation);
    this.ledger = new Ledger({
      store: this.contract,
      policy: opts.policy,
      clock: this.clock,
      outbox: opts.outbox,
      agentStatus: (r) => this.presence.agentFor(r),
      colleagues: (r) => this.queues.colleaguesOf(r),
    });
    this.queues = new Queues({ store: this.contract, ledger: this.ledger, log: this.log, clock: this.clock, stopped, observe, servingSince: () => this.presence.servingSince });
    this.pauses = new Pauses({ store: this.contract, log: this.log, clock: this.clock, stopped, release: (agent) => this.queues.kickDue(agent) });
    this.presence = new Presence({
      store: this.contract,
      clock: this.clock,
      prospectDevice: opts.prospectDevice,
      pauseOf: (agent) => this.pauses.pauseOf(agent),
      kickDue: (agent) => this.queues.kickDue(agent),
      observe,
    });
    this.optIns = new OptIns({
      opts,
      store: this.contract,
      ledger: this.ledger,
      log: this.log,
      clock: this.clock,
      stopped,
      exclusive: (f, o) => this.exclusive(f, o),
      afterCommit: (fn) => this.afterCommit(fn),
      perform: (decision) => this.perform(decision),
      applied: (applied) => this.applied(applied),
      arm: () => this.arm(),
      presence: this.presence,
    });
  }

  get store(): RequestStore {
    return this.contract;
  }

  /**
   * Runs `f` when the decisions before it are staged; decisions never interleave in one process. Resolves once
   * `f`'s writes are durable (its group committed), after its `afterCommit` effects ran.
   */
  private exclusive<T>(f: () => Promise<T>, opts: { quick?: boolean } = {}): Promise<T> {
    return this.decisions.run(f, opts);
  }

  /** A side effect of the decision being staged (actions, listeners, timers): only once it is durable; see group.ts. */
  private afterCommit(fn: (durableAt: number) => void): void {
    this.decisions.afterCommit(fn);
  }

  onDecision(listener: (applied: AppliedDecision) => void): void {
    this.decisionListeners.push(listener);
  }

  private applied(applied: AppliedDecision): void {
    for (const l of this.decisionListeners) {
      try {
        l(applied);
      } catch (err) {
        this.log.error('decision listener failed', { requestId: applied.decision.request.id, error: (err as Error).message });
      }
    }
  }

  /** Loads the store, watches the devices pending requests depend on, arms the timer. */
  async start(): Promise<void> {
    this.stopped = false;
    this.startedAt = this.clock();
    await this.pauses.start();
    this.pauses.watch(this.opts.pauseWatchMs ?? 5000);
    const deps = await this.store.pendingDependencies();
    for (const device of await this.presence.devicesToWatch(deps)) this.opts.watch?.(device);
    this.log.info('scheduler started', { pending: deps.count, nextWake: iso(await this.store.nextWake()) });
    await this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.pauses.unwatch();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The engine's clock (for read models that must agree with the policy, e.g. whether a heads-up runs). */
  now(): number {
    return this.clock();
  }

  // --- the parts' doors, as the service and the flows call them -------------------------------------------------

  /** The opt-in (# at the busy signal): durable before the promise resolves (opt-in.ts). */
  optIn(input: OptInInput): Promise<OptInResult> {
    return this.optIns.optIn(input);
  }

  /** What the offer may say to this agent for this prospect right now (opt-in.ts). Read-only. */
  offerOutlook(agent: string, prospect: string, timeZone?: string, profile?: string): Promise<OfferOutlook> {
    return this.optIns.offerOutlook(agent, prospect, timeZone, profile);
  }

  /** A device changed state (from presence; presence.ts). */
  deviceState(device: string, state: { busy: boolean } | undefined): Promise<void> {
    return this.presence.deviceState(device, state);
  }

  /** The PBX is reachable (reconciled) or not (presence.ts): due callbacks wait while it is not. */
  setPbxUp(up: boolean): void {
    this.presence.setPbxUp(up);
  }

  /** A connected recall's conversation ended (recall flow): recorded in its history; the next colleague may follow. */
  conversationEnded(requestId: string): Promise<void> {
    return this.queues.conversationEnded(requestId);
  }

  /** After the PBX was reconciled: the recalls an earlier run left are recorded as interrupted (recovery.ts). */
  reconcileRecalls(runs: (requestId: string) => boolean): Promise<number> {
    return reconcileRecalls({ store: this.store, log: this.log, stopped: () => this.stopped, startedAt: () => this.startedAt, observe: (id, o) => this.observe(id, o) }, runs);
  }

  // --- the decisions ----------------------------------------------------------------------------------------------

  /**
   * Feeds one observation to one request: decide, persist (version-guarded), then act. Returns the
   * decision that was applied, or undefined when nothing changed or the claim was lost.
   */
  observe(requestId: string, observation: Observation): Promise<Decision | undefined> {
    return this.exclusive(async () => {
      const r = await this.observeNow(requestId, observation);
      return r.status === 'applied' ? r.decision : undefined;
    });
  }

  /**
   * An operator's observation (the page's cancel or snooze) under named guards (ledger.ts `guards`), checked
   * on every read inside the version-guarded write; the whole result, so the caller can say why nothing changed.
   */
  act(requestId: string, observation: Observation, guard: Guard): Promise<ApplyResult> {
    return this.exclusive(() => this.observeNow(requestId, observation, guard));
  }

  private async observeNow(requestId: string, observation: Observation, guard?: Guard): Promise<ApplyResult> {
    const r = await this.ledger.apply(requestId, observation, { guard });
    switch (r.status) {
      case 'applied': {
        this.afterCommit(() => {
          this.perform(r.decision);
          this.applied({ before: r.before, decision: r.decision, observation, at: r.at });
          void this.arm();
          // The request left its recall or ended: the next agent waiting for the same number may go.
          const prev = r.before.state;
          const wasRecall = (RECALL_STATES as readonly string[]).includes(prev);
          if (wasRecall || (isTerminal(r.decision.request.state) && !isTerminal(prev))) this.queues.kickProspect(r.decision.request.prospect, requestId);
        });
        return r;
      }
      case 'not-found':
        this.log.warn('observation for an unknown request', { requestId, observation: observation.type });
        return r;
      case 'conflict':
        this.log.error('could not apply an observation: the request kept changing', { requestId, observation: observation.type });
        return r;
      default:
        return r;
    }
  }

  cancel(requestId: string, by: string): Promise<Decision | undefined> {
    return this.observe(requestId, { type: 'cancel', by });
  }

  /** Processes every request whose wake-up time has come. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    await this.pauses.load();
    const now = this.clock();
    for (;;) {
      const due = await this.store.due(now, 200);
      if (due.length === 0) break;
      let progressed = 0;
      for (const s of scheduled(now, due.map((v) => v.request), { kind: 'wake' })) {
        if (this.stopped) return;
        if (await this.observe(s.id, s.observation)) progressed++;
      }
      if (progressed === 0 || due.length < 200) break;
    }
    await this.arm();
  }

  private perform(decision: Decision): void {
    const request = decision.request;
    const log = this.log.child({ requestId: request.id });
    // The CRM could not name the prospect at the opt-in (down, slow, unknown then): ask again as the recall comes
    // near — the line is free, the heads-up, due — so the agent's label has the name if the CRM has it now. Not
    // awaited, never in the recall's way; the look-up's cache, breaker and one-at-a-time per number bound the cost.
    if (!request.contact && decision.events.some((e) => e.type === 'heads-up' || (e.to !== e.from && (e.to === 'GRACE' || e.to === 'DUE')))) {
      this.optIns.lookUp(request.id, request.prospect);
    }
    for (const e of decision.events) {
      emit(log, 'info', 'request.transition', `callback ${e.type}`, { transition: e.type, from: e.from, to: e.to, reason: e.reason, wakeAt: iso(e.wakeAt) });
      if (e.type === 'heads-up' && request.headsUpFor != null) {
        emit(log, 'info', 'recall.heads_up', 'heads-up: a recall is due soon', {
          agent: request.agent,
          prospect: request.prospect,
          dueAt: iso(request.headsUpFor),
          leadMs: request.headsUpFor - e.at,
        });
      }
    }
    for (const action of decision.actions) {
      if (action.type === 'notify') {
        try {
          this.opts.notify?.(request, action);
        } catch (err) {
          log.error('notification failed', { webhookEvent: action.event, error: (err as Error).message });
        }
        continue;
      }
      if (this.opts.canAct && !this.opts.canAct()) {
        emit(log, 'warn', 'lease.action_skipped', 'this instance no longer serves the PBX (lease lost); action skipped', { action: action.type });
        continue;
      }
      // The dial policy again, just before the call: the configuration may have become stricter since
      // the opt-in (a restart with new settings), or the request came from an older store.
      if ((action.type === 'ringAgent' || action.type === 'dialProspect') && this.opts.dialPolicy) {
        const allowed = checkDial(this.opts.dialPolicy, request.agent, request.prospect);
        if (!allowed.ok) {
          emit(log, 'warn', 'dial.refused', 'call refused by the dial policy; the request is cancelled', { stage: action.type, agent: request.agent, reason: allowed.reason });
          // After this decision's other actions: the cancel is a decision of its own.
          setImmediate(() => {
            this.observe(request.id, { type: 'cancel', by: 'dial-policy' }).catch((err: Error) =>
              log.error('could not cancel a request the dial policy refused', { error: err.message }),
            );
          });
          continue;
        }
      }
      const t = this.opts.telephony;
      if (!t) {
        log.warn('no telephony attached; action skipped', { action: action.type });
        continue;
      }
      const prev = this.actionChains.get(request.id) ?? Promise.resolve();
      const next = prev
        .then(() => t.execute(request, action))
        .catch((err: unknown) => {
          log.error('telephony action failed', { action: action.type, error: (err as Error)?.message ?? String(err) });
        });
      this.actionChains.set(request.id, next);
      void next.then(() => {
        if (this.actionChains.get(request.id) === next) this.actionChains.delete(request.id);
      });
    }
    if (isTerminal(request.state)) emit(log, 'info', 'request.finished', 'callback finished', { state: request.state, outcome: request.outcome, reason: request.reason });
  }

  /** Arms the single timer for the earliest wake-up. Never rejects: a store error is logged and retried. */
  async arm(): Promise<void> {
    if (this.stopped) return;
    let next: number | null;
    try {
      next = await this.store.nextWake();
    } catch (err) {
      this.log.error('scheduler could not read the next wake-up; retrying in 5 s', { error: (err as Error).message });
      clearTimeout(this.timer);
      this.armedFor = null;
      this.timer = setTimeout(() => void this.arm(), 5000);
      return;
    }
    if (this.stopped) return;
    if (next === null) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.armedFor = null;
      return;
    }
    if (this.timer && this.armedFor === next) return;
    clearTimeout(this.timer);
    const delay = Math.max(0, Math.min(next - this.clock(), this.opts.maxTimerMs ?? 3_600_000));
    this.armedFor = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.armedFor = null;
      this.tick().catch((err: unknown) => {
        this.log.error('scheduler tick failed; retrying in 5 s', { error: (err as Error)?.message ?? String(err) });
        clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.arm(), 5000);
      });
    }, delay);
  }
}
