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
 * - With PostgreSQL and a lease (src/coordination), `canAct` says whether this instance still serves
 *   the PBX: a decision written, the actions run only while it does (and the database refuses the
 *   writes of a stale lease epoch, see src/store/postgres.ts).
 */
import {
  Action,
  AgentPause,
  AgentStatus,
  CallbackRequest,
  Decision,
  Observation,
  PolicyConfig,
  RECALL_STATES,
  isPaused,
  isTerminal,
  newRequest,
  offerPromise,
  resolveProfile,
  type Colleagues,
  type Contact,
  type Profiles,
  type ZoneSource,
} from './core/policy';
import type { OfferContext } from './core/offer';
import { DialPolicy, DialPolicyError, checkDial } from './core/dial-policy';
import { colleaguesFrom, placeOf, scheduled } from './core/scheduler';
import { emit } from './logging/events';
import type { Logger } from './logging/log';
import { newRequestId } from './ids';
import { ApplyResult, Guard, Ledger } from './ledger';
import type { OutboxInsert, OutboxStore, RequestStore as RequestContract } from './store/contract';
import type { GroupTx } from './store/db';
import { GroupCommit } from './store/group';

/**
 * The store as the engine uses it: the requests of the contract (SQLite or PostgreSQL), the outbox's enqueue and
 * group commit (src/store/group.ts; a store without it commits each decision on its own).
 */
export type RequestStore = RequestContract<CallbackRequest> & Pick<OutboxStore, 'enqueueOutbox'> & { group?(opts?: { quick?: boolean }): Promise<GroupTx> };

export interface OptInInput {
  agent: string;
  agentCallerId: { name: string; number: string };
  prospect: string;
  language: string;
  channelId: string;
  /** The prospect's time zone (from the number); default: the configured calling-hours zone. */
  timeZone?: string;
  zoneSource?: ZoneSource;
  /** The team profile the dialplan named (CC_PROFILE); unknown or absent: the default policy. */
  profile?: string;
  /**
   * Where the opt-in's time goes (`npm run bench`): the engine stamps performance.now() at each step —
   * `started` (its turn among the serialised decisions), `read` (the reads before the transaction done),
   * `decided` (the decision made, inside the transaction), `staged` (its rows written in the group's open
   * transaction), `committed` (the group committed: durable),
   * `positioned` (the agent's place in the queue read). Cheap: a few numbers per opt-in.
   */
  marks?: OptInMarks;
}

/** See OptInInput.marks (performance.now() values). */
export interface OptInMarks {
  started?: number;
  read?: number;
  decided?: number;
  /** The opt-in's rows written in the group's open transaction (the next decision may start). */
  staged?: number;
  committed?: number;
  positioned?: number;
}

export type OptInResult =
  | { result: 'created' | 'refreshed'; requestId: string; promise?: 'regular' | 'next-calling-day'; position?: number }
  | { result: 'full'; pending: number }
  /** Nothing may be promised now (policy.afterHours = decline, or no calling day within the horizon): no request. */
  | { result: 'closed'; reason: string };

/** What the offer at the busy signal may say (see core/offer.ts OfferContext), and why. */
export interface OfferOutlook extends OfferContext {
  position: number;
  /** The agents already waiting for this number, in opt-in order (without this agent). */
  queue: string[];
  timeZone: string;
  reason: string;
}

/** A decision the engine persisted and carried out (for metrics and the agent's lamp). */
export interface AppliedDecision {
  /** The request before the decision; undefined for a new request. */
  before?: CallbackRequest;
  decision: Decision;
  /** `annotate`: a fact written beside the policy (the CRM's name), no state change. */
  observation: Observation | { type: 'optIn' } | { type: 'annotate' };
  at: number;
}

/** Carries out the policy's telephony actions (the ARI recall flow implements it). */
export interface Telephony {
  execute(request: CallbackRequest, action: Exclude<Action, { type: 'notify' }>): Promise<void>;
}

/** Receives the policy's notifications (a CRM webhook, or just the log). */
export type Notifier = (request: CallbackRequest, action: Extract<Action, { type: 'notify' }>) => void;

export interface EngineOptions {
  store: RequestStore;
  policy: PolicyConfig;
  log: Logger;
  clock?: () => number;
  maxPendingPerAgent: number;
  /** The PBX device of an internal prospect (its line state is watched), or undefined for external numbers. */
  prospectDevice: (prospect: string) => string | undefined;
  /** Longest single timer delay; long waits are re-armed. */
  maxTimerMs?: number;
  /**
   * Outbox rows (CRM webhook) for a decision's notify actions, written in the same transaction as the
   * transition (src/webhook/payload.ts `outboxRowsFor`). Unset: notifications are not queued.
   */
  outbox?: (decision: Decision, at: number) => OutboxInsert[];
  /** The CRM row for a busy signal at which nothing was offered (src/webhook/payload.ts `notOfferedRow`). */
  notOffered?: (agent: string, prospect: string, timeZone: string, reason: string, at: number) => OutboxInsert;
  /**
   * Which agent devices may be rung and which numbers dialled (src/core/dial-policy.ts): checked at the
   * opt-in and again before every ringAgent / dialProspect. Unset: no restriction (unit tests).
   */
  dialPolicy?: DialPolicy;
  /** Pending requests over all agents; an opt-in beyond it gets 'full'. Unset: no global cap. */
  maxPendingTotal?: number;
  /** False while this instance may not act for its PBX (a lost lease); actions are then skipped. */
  canAct?: () => boolean;
  /** Team profiles (config `profiles`), chosen per call by the dialplan. Unset: none. */
  profiles?: Profiles;
  /**
   * The CRM look-up (src/webhook/lookup.ts): `cached` answers at once from what is known, `lookup` asks the CRM
   * (never rejects). Started after the opt-in is stored; the name is written to the request when it arrives.
   */
  contacts?: { cached(prospect: string): Contact | null | undefined; lookup(prospect: string): Promise<{ found: true; contact: Contact } | { found: false } | undefined> };
  /** Carries out the telephony actions (the recall flow). Unset: they are logged and skipped (tests of decisions only). */
  telephony?: Telephony;
  /** Receives the notify actions (the service logs them and kicks the webhook sender). */
  notify?: Notifier;
  /** A device to watch: a pending request's agent or internal prospect line (presence subscribes to it). */
  watch?: (device: string) => void;
  /** An outbox row was queued outside a decision (the not-offered event): the webhook sender may send it now. */
  outboxQueued?: () => void;
  /** Most decisions sharing one commit (group commit, src/store/group.ts). Default 16. */
  maxGroup?: number;
  /** Test seam: before a group's COMMIT (src/store/group.ts GroupCommitOptions.beforeCommit). */
  beforeCommit?: (size: number) => Promise<void> | void;
}

const AGENT_FREE_LONG_AGO: AgentStatus = { busy: false, since: 0 };

export class Engine {
  private timer?: NodeJS.Timeout;
  private armedFor: number | null = null;
  private readonly agentStatus = new Map<string, AgentStatus>();
  /** Agents who paused their callbacks ("hold my callbacks"): loaded from the store at start, kept in step by pause/resume. */
  private readonly pauses = new Map<string, AgentPause & { by: string }>();
  /** Told when an agent's pause begins or ends (the pause lamp, the page). */
  private readonly pauseListeners: ((agent: string, pause: AgentPause | null) => void)[] = [];
  private readonly queues = new Map<string, Promise<void>>();
  private stopped = true;
  /** False while the PBX is unreachable: due callbacks wait instead of failing to ring. */
  private pbxUp = false;
  private readonly clock: () => number;
  private readonly log: Logger;
  /**
   * The prospect lines that pending device-mode requests watch: device → prospect numbers. Filled at
   * start and by opt-ins; it only grows while running (a stale entry costs one indexed query). With it,
   * a device-state event reads only the requests of that line, never all pending ones.
   */
  private readonly lineProspects = new Map<string, Set<string>>();
  private linesLoaded = false;
  /** Listeners told of every persisted decision (metrics, the lamp); a throwing one is logged, never fatal. */
  private readonly decisionListeners: ((applied: AppliedDecision) => void)[] = [];

  /** The one place that applies a decision (decide → events → outbox → version-guarded write). */
  readonly ledger: Ledger;
  private readonly contract: RequestStore;
  /** The queue of decisions: one at a time in this process, committed in groups (src/store/group.ts). */
  readonly decisions: GroupCommit;

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
    this.ledger = new Ledger({
      store: this.contract,
      policy: opts.policy,
      clock: this.clock,
      outbox: opts.outbox,
      agentStatus: (r) => this.agentFor(r),
      colleagues: (r) => this.colleaguesOf(r),
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
  private afterCommit(fn: () => void): void {
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

  /** When this process last started serving (start()): recalls that began before it are not this process's calls. */
  private startedAt = 0;

  /** Loads the store, watches the devices pending requests depend on, arms the timer. */
  async start(): Promise<void> {
    this.stopped = false;
    this.startedAt = this.clock();
    await this.loadPauses();
    for (const [agent, p] of this.pauses) if (p.until !== null) this.armPauseEnd(agent, p.until);
    const deps = await this.store.pendingDependencies();
    for (const device of await this.devicesToWatch(deps)) this.opts.watch?.(device);
    this.log.info('scheduler started', { pending: deps.count, nextWake: iso(await this.store.nextWake()) });
    await this.arm();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Devices whose state matters now: every pending request's agent and (internal) prospect line. */
  async devicesToWatch(given?: { agents: string[]; lineProspects: string[] }): Promise<string[]> {
    const deps = given ?? (await this.store.pendingDependencies());
    const set = new Set<string>(deps.agents);
    for (const prospect of deps.lineProspects) {
      const d = this.opts.prospectDevice(prospect);
      if (!d) continue;
      set.add(d);
      this.rememberLine(d, prospect);
    }
    this.linesLoaded = true;
    return [...set];
  }

  private rememberLine(device: string, prospect: string): void {
    const prospects = this.lineProspects.get(device) ?? new Set<string>();
    prospects.add(prospect);
    this.lineProspects.set(device, prospects);
  }

  setPbxUp(up: boolean): void {
    if (this.pbxUp === up) return;
    this.pbxUp = up;
    // The service reports the PBX up only after reconciling: every recall channel an earlier run (or another
    // instance) left on the PBX has then been hung up, so no conversation older than this can still go on.
    if (up && this.servingSince === undefined) this.servingSince = this.clock();
    if (up) void this.kickDue();
  }

  /**
   * After the PBX was reconciled (every recall channel this process does not run has been hung up): a recall in the
   * store that began before this process started serving and that no call of this process carries was cut short by a
   * failure — an earlier run died, the instance that held the lease died or lost it. It is recorded at once as
   * `recall-interrupted` (never a snooze; rung again after policy.recoveryDelay) instead of waiting for its safety
   * deadline. (The recall's start is the earlier instance's clock: with a clock far ahead of ours the safety deadline
   * still recovers it, the same way.)
   */
  async reconcileRecalls(runs: (requestId: string) => boolean): Promise<number> {
    if (this.stopped) return 0;
    let list: CallbackRequest[];
    try {
      list = await this.store.list({ states: RECALL_STATES });
    } catch (err) {
      this.log.error('could not read the recalls to reconcile; their safety deadline recovers them', { error: (err as Error).message });
      return 0;
    }
    let n = 0;
    for (const r of list) {
      if (this.stopped) break;
      if (runs(r.id) || r.recallStartedAt === null || r.recallStartedAt >= this.startedAt) continue;
      const reason = 'the instance that rang the agent is gone (crash, restart or lost lease); its channel was hung up';
      emit(this.log.child({ requestId: r.id }), 'warn', 'recall.interrupted', 'a recall of an earlier run was cut short; ringing again after the recovery delay', {
        how: 'orphaned',
        startedAt: iso(r.recallStartedAt),
        reason,
      });
      if (await this.observe(r.id, { type: 'recallInterrupted', reason })) n++;
    }
    return n;
  }

  /** When this process first served the PBX (reconciled and up); see setPbxUp. */
  private servingSince?: number;

  /** The opt-in (# at the busy signal): durable before the promise resolves. */
  async optIn(input: OptInInput): Promise<OptInResult> {
    const r = await this.exclusive(() => this.optInNow(input), { quick: true });
    if (r.result !== 'created' && r.result !== 'refreshed') return r;
    // The agent's place in the queue for the confirmation, read after this decision let go of the engine:
    // it is information for the prompt, not part of the decision, and the next caller's opt-in need not wait
    // for it (under ten concurrent opt-ins this read held the queue of decisions; bench: offer.timing `position`).
    const queue = await this.store.prospectQueue(input.prospect);
    const position = Math.max(1, queue.findIndex((q) => q.id === r.requestId) + 1);
    if (input.marks) input.marks.positioned = performance.now();
    return { ...r, position };
  }

  private async optInNow(input: OptInInput): Promise<OptInResult> {
    const marks = input.marks;
    if (marks) marks.started = performance.now();
    const now = this.clock();
    if (this.opts.dialPolicy) {
      const allowed = checkDial(this.opts.dialPolicy, input.agent, input.prospect);
      if (!allowed.ok) {
        emit(this.log, 'warn', 'dial.refused', 'opt-in refused by the dial policy', { stage: 'opt-in', agent: input.agent, reason: allowed.reason });
        throw new DialPolicyError(allowed.reason);
      }
    }
    // The agent's other recalls, for a refresh's decision (read before the store's transaction).
    const recalls = await this.store.list({ agent: input.agent, states: RECALL_STATES });
    const device = this.opts.prospectDevice(input.prospect);
    const chosen = resolveProfile(this.opts.policy, this.opts.profiles ?? {}, input.profile);
    const promise = offerPromise(chosen.policy, now, { mode: device ? 'device' : 'timed', timeZone: input.timeZone });
    const pendingBefore = await this.store.findPending(input.agent, input.prospect);
    if (promise.kind === 'declined' && !pendingBefore) {
      await this.noOffer(input.agent, input.prospect, promise.timeZone, promise.reason);
      return { result: 'closed', reason: promise.reason };
    }
    // The colleagues for a refresh's decision, read before the store's transaction (decisions in this process
    // are serialised, so the pending request read here is the one the transaction refreshes).
    const colleaguesBefore = pendingBefore ? await this.ledger.colleaguesOf(pendingBefore.request) : undefined;
    if (marks) marks.read = performance.now();
    const { stored: r, decision, before } = await this.ledger.optIn({
      agent: input.agent,
      prospect: input.prospect,
      maxPending: this.opts.maxPendingPerAgent,
      maxPendingTotal: this.opts.maxPendingTotal,
      at: now,
      firstEvent: { channelId: input.channelId, prospectDevice: device ?? null },
      create: () => {
        const made = newRequest(
          {
            id: newRequestId(),
            agent: input.agent,
            agentCallerId: input.agentCallerId,
            prospect: input.prospect,
            language: input.language,
            mode: device ? 'device' : 'timed',
            ...(input.timeZone ? { timeZone: input.timeZone, zoneSource: input.zoneSource ?? 'number' } : {}),
            profile: chosen.profile,
            policy: chosen.snapshot,
            contact: this.opts.contacts?.cached(input.prospect) ?? null,
          },
          chosen.policy,
          now,
        );
        if (marks) marks.decided = performance.now();
        return made;
      },
      refresh: (existing) => {
        // Inside the store's transaction (the pending request was read there), so no version race.
        const colleagues = existing.id === pendingBefore?.request.id ? colleaguesBefore : undefined;
        const decided = this.ledger.decide(existing, { type: 'refresh' }, now, this.agentGiven(existing, recalls), colleagues);
        if (marks) marks.decided = performance.now();
        return decided;
      },
    });
    if (marks) marks.staged = performance.now();
    if (r.result === 'full') return r;
    // Everything else once the group is durable; the caller hears back after these.
    this.afterCommit(() => {
      if (marks) marks.committed = performance.now();
      if (device) this.rememberLine(device, input.prospect);
      if (decision) this.perform(decision);
      if (decision) this.applied({ before, decision, observation: { type: 'optIn' }, at: now });
      if (device) this.opts.watch?.(device);
      this.opts.watch?.(input.agent);
      void this.arm();
      if (!r.request.contact) this.lookUp(r.request.id, input.prospect);
    });
    return { result: r.result, requestId: r.request.id, promise: r.request.carriedOver ? 'next-calling-day' : 'regular' };
  }

  /**
   * Asks the CRM for the prospect's name, off the opt-in's path (not awaited): when it arrives, it is written to the
   * request (if it is still pending) and shows on its next recall, the page, list/show and later webhooks.
   */
  private lookUp(requestId: string, prospect: string): void {
    const contacts = this.opts.contacts;
    if (!contacts) return;
    void contacts.lookup(prospect).then(async (r) => {
      if (this.stopped || !r?.found) return;
      await this.setContact(requestId, r.contact);
    });
  }

  /** Stores the prospect's name with a request that is not finished (version-guarded, no history row). */
  setContact(requestId: string, contact: Contact): Promise<CallbackRequest | undefined> {
    return this.exclusive(async () => {
      try {
        const written = await this.ledger.annotate(requestId, (current) =>
          isTerminal(current.state) || (current.contact?.name === contact.name && current.contact?.company === contact.company) ? undefined : { ...current, contact: { ...contact } },
        );
        if (written) {
          this.afterCommit(() => {
            emit(this.log.child({ requestId }), 'info', 'lookup.stored', "the prospect's name from the CRM is stored with the request", { requestId, name: contact.name });
            this.applied({ before: written, decision: { request: written, events: [], actions: [] }, observation: { type: 'annotate' }, at: this.clock() });
          });
        }
        return written;
      } catch (err) {
        this.log.error("could not store the prospect's name from the CRM", { requestId, error: (err as Error).message });
        return undefined;
      }
    });
  }

  /** Records a busy signal at which nothing could be promised: a log line and, with a CRM webhook, a 'not-offered' event. */
  async noOffer(agent: string, prospect: string, timeZone: string, reason: string): Promise<void> {
    const now = this.clock();
    emit(this.log, 'info', 'offer.closed', 'no callback offered: nothing could be promised', { agent, prospect, timeZone, reason });
    const row = this.opts.notOffered?.(agent, prospect, timeZone, reason, now);
    if (!row) return;
    try {
      await this.ledger.notOffered(row);
      this.afterCommit(() => this.opts.outboxQueued?.());
    } catch (err) {
      this.log.error('could not queue the not-offered event for the CRM', { error: (err as Error).message });
    }
  }

  /**
   * What the offer may say to this agent for this prospect right now: the promise (regular, next calling day, or
   * none) and the agent's place in the queue for the number. Read-only.
   */
  async offerOutlook(agent: string, prospect: string, timeZone?: string, profile?: string): Promise<OfferOutlook> {
    const now = this.clock();
    const device = this.opts.prospectDevice(prospect);
    const p = offerPromise(resolveProfile(this.opts.policy, this.opts.profiles ?? {}, profile).policy, now, { mode: device ? 'device' : 'timed', timeZone });
    const place = placeOf(await this.store.prospectQueue(prospect), agent);
    // A pending request of this agent keeps its promise (a refresh never withdraws one).
    const kind = p.kind === 'declined' && place.queued ? 'regular' : p.kind;
    const reason = p.kind === 'declined' ? p.reason : p.kind === 'next-calling-day' ? 'carried over to the next calling day' : 'a callback can fire today';
    return { promise: kind, position: place.position, queue: place.others, timeZone: p.timeZone, reason };
  }

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
          if (wasRecall || (isTerminal(r.decision.request.state) && !isTerminal(prev))) this.kickProspect(r.decision.request.prospect, requestId);
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

  /** A device changed state (from presence). */
  async deviceState(device: string, state: { busy: boolean } | undefined): Promise<void> {
    const now = this.clock();
    // Agents
    if (state) {
      const before = this.agentStatus.get(device);
      if (!before || before.busy !== state.busy) {
        this.agentStatus.set(device, { busy: state.busy, since: before ? now : state.busy ? now : 0 });
        if (before && !state.busy) await this.kickDue(device);
      }
    } else {
      this.agentStatus.delete(device);
    }
    // Prospects whose line is this device
    if (!state) return;
    if (!this.linesLoaded) await this.devicesToWatch();
    const prospects = this.lineProspects.get(device);
    if (!prospects) return;
    for (const id of await this.store.pendingLineWatchers([...prospects])) {
      await this.observe(id, { type: 'prospectState', busy: state.busy });
    }
  }

  /** Processes every request whose wake-up time has come. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    await this.loadPauses();
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

  /** A request of this prospect ended or left its recall: the next agent in the queue may go (soon, not nested). */
  private kickProspect(prospect: string, except: string): void {
    if (this.stopped) return;
    // Not awaited by the caller: it runs after the current decision (observe waits its turn in `exclusive`).
    setImmediate(() => {
      void (async () => {
        if (this.stopped) return;
        try {
          const queue = (await this.store.prospectQueue(prospect)).map((q) => ({ ...q, prospect }));
          for (const s of scheduled(this.clock(), queue, { kind: 'numberFreed', prospect, except })) {
            if (this.stopped) return;
            await this.observe(s.id, s.observation);
          }
        } catch (err) {
          this.log.error('could not wake the next agent for the number', { prospect, error: (err as Error).message });
        }
      })();
    });
  }

  /** Re-evaluates DUE requests now (an agent became free, the PBX came back). */
  private async kickDue(agent?: string): Promise<void> {
    if (this.stopped) return;
    try {
      // One agent's due requests in opt-in order (a pause held them: the earliest goes first when it ends).
      const ids = agent
        ? (await this.store.list({ agent, states: ['DUE'] })).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map((r) => r.id)
        : await this.store.idsInState('DUE');
      for (const id of ids) await this.observe(id, { type: 'tick' });
    } catch (err) {
      this.log.error('could not re-evaluate due callbacks', { agent, error: (err as Error).message });
    }
  }

  /** Other agents' requests for the same number, for the ledger's decision context (core/scheduler.ts `colleaguesFrom`). */
  async colleaguesOf(request: CallbackRequest): Promise<Colleagues> {
    const queue = await this.store.prospectQueue(request.prospect);
    return colleaguesFrom(queue, request, await this.store.lastConversation(request.prospect, request.agent), this.servingSince);
  }

  /** A connected recall's conversation ended (recall flow): recorded in its history; the next colleague may follow. */
  async conversationEnded(requestId: string): Promise<void> {
    let prospect: string;
    try {
      const current = await this.ledger.conversationEnded(requestId, this.clock());
      if (!current) return;
      prospect = current.prospect;
    } catch (err) {
      this.log.error('could not record the end of the conversation', { requestId, error: (err as Error).message });
      return;
    }
    this.kickProspect(prospect, requestId);
  }

  /** The agent's status as the policy sees it: device state, PBX reachability and our own other recalls. */
  async agentFor(request: CallbackRequest): Promise<AgentStatus> {
    if (!this.pbxUp) return { busy: true, since: this.clock() };
    return this.agentGiven(request, await this.store.list({ agent: request.agent, states: RECALL_STATES }));
  }

  /** agentFor with the agent's requests in a recall state already read. */
  private agentGiven(request: CallbackRequest, recalls: readonly CallbackRequest[]): AgentStatus {
    const now = this.clock();
    const paused = this.pauseOf(request.agent);
    const status = (s: AgentStatus): AgentStatus => (paused ? { ...s, paused } : s);
    if (!this.pbxUp) return status({ busy: true, since: now });
    if (recalls.some((r) => r.id !== request.id)) return status({ busy: true, since: now });
    return status(this.agentStatus.get(request.agent) ?? AGENT_FREE_LONG_AGO);
  }

  // --- "hold my callbacks": the agent's pause ------------------------------------------------------------------

  /** Reads the pauses from the store (at start, and on every tick: another process may have changed them). */
  private async loadPauses(): Promise<void> {
    try {
      const rows = await this.store.pauses();
      this.pauses.clear();
      for (const r of rows) this.pauses.set(r.agent, { since: r.since, until: r.until, by: r.by });
      // Tell of every pause that began or ended (also one whose `until` passed) since the last look.
      for (const agent of new Set([...this.announcedPauses, ...this.pauses.keys()])) this.pauseChanged(agent, this.pauseOf(agent));
    } catch (err) {
      this.log.error('could not read the agents\' pauses; keeping the last known ones', { error: (err as Error).message });
    }
  }

  onPauseChange(listener: (agent: string, pause: AgentPause | null) => void): void {
    this.pauseListeners.push(listener);
  }

  /** Agents last announced as paused (pauseChanged tells only of changes). */
  private readonly announcedPauses = new Set<string>();

  private pauseChanged(agent: string, pause: AgentPause | null, force = false): void {
    if (!force && (pause !== null) === this.announcedPauses.has(agent)) return;
    if (pause) this.announcedPauses.add(agent);
    else this.announcedPauses.delete(agent);
    for (const l of this.pauseListeners) {
      try {
        l(agent, pause);
      } catch (err) {
        this.log.error('pause listener failed', { agent, error: (err as Error).message });
      }
    }
  }

  /** The engine's clock (for read models that must agree with the policy, e.g. whether a heads-up runs). */
  now(): number {
    return this.clock();
  }

  /** The agent's pause in force now, or null (a pause whose `until` has passed has ended by itself). */
  pauseOf(agent: string): AgentPause | null {
    const p = this.pauses.get(agent);
    if (!p || !isPaused(p, this.clock())) return null;
    return { since: p.since, until: p.until };
  }

  /** Every agent's pause in force now (for the page and `list`). */
  pausedAgents(): { agent: string; since: number; until: number | null; by: string }[] {
    const now = this.clock();
    return [...this.pauses].filter(([, p]) => isPaused(p, now)).map(([agent, p]) => ({ agent, ...p }));
  }

  /**
   * Pauses the agent's callbacks (durable): nothing rings them until resumed or `until`; due requests wait in order.
   * `until` must lie ahead.
   */
  async pause(agent: string, opts: { until: number | null; by: string }): Promise<AgentPause> {
    const now = this.clock();
    if (opts.until !== null && !(opts.until > now)) throw new Error('pause until: must be a time ahead');
    const pause = { since: now, until: opts.until };
    await this.store.setPause(agent, { ...pause, by: opts.by });
    this.pauses.set(agent, { ...pause, by: opts.by });
    emit(this.log, 'info', 'agent.paused', 'the agent paused their callbacks', { agent, until: iso(opts.until), by: opts.by });
    if (opts.until !== null) this.armPauseEnd(agent, opts.until);
    this.pauseChanged(agent, pause, true);
    await this.kickDue(agent);
    return pause;
  }

  /** A pause until a time ends by itself: then its lamp goes off and the agent's due requests ring (in order). */
  private armPauseEnd(agent: string, until: number): void {
    const t = setTimeout(
      () => {
        if (this.stopped) return;
        void this.loadPauses().then(() => this.kickDue(agent));
      },
      Math.max(0, Math.min(until - this.clock(), 2_147_483_647)),
    );
    t.unref();
  }

  /** Resumes the agent's callbacks: due requests ring again, the earliest opt-in first. */
  async resume(agent: string, by: string): Promise<void> {
    await this.store.setPause(agent, null);
    const had = this.pauses.delete(agent);
    emit(this.log, 'info', 'agent.resumed', 'the agent resumed their callbacks', { agent, by, wasPaused: had });
    this.pauseChanged(agent, null);
    await this.kickDue(agent);
  }

  /** The feature code: pause when not paused, else resume. */
  async togglePause(agent: string, by: string): Promise<{ paused: boolean }> {
    if (this.pauseOf(agent)) {
      await this.resume(agent, by);
      return { paused: false };
    }
    await this.pause(agent, { until: null, by });
    return { paused: true };
  }

  private perform(decision: Decision): void {
    const request = decision.request;
    const log = this.log.child({ requestId: request.id });
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
      const prev = this.queues.get(request.id) ?? Promise.resolve();
      const next = prev
        .then(() => t.execute(request, action))
        .catch((err: unknown) => {
          log.error('telephony action failed', { action: action.type, error: (err as Error)?.message ?? String(err) });
        });
      this.queues.set(request.id, next);
      void next.then(() => {
        if (this.queues.get(request.id) === next) this.queues.delete(request.id);
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

function iso(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}
