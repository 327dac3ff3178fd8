/**
 * The opt-in (# at the busy signal) and what the offer may say before it: the promise and the agent's place in the
 * queue (`offerOutlook`), the durable opt-in (`optIn`, one decision among the engine's serialised ones), the busy
 * signal at which nothing was offered (`noOffer`, a CRM 'not-offered' event) and the prospect's name from the CRM,
 * looked up off the opt-in's path (`lookUp` → `setContact`).
 */
import {
  CallbackRequest,
  Decision,
  RECALL_STATES,
  isTerminal,
  newRequest,
  offerPromise,
  resolveProfile,
  type AgentStatus,
  type Contact,
  type ZoneSource,
} from '../core/policy';
import type { OfferContext } from '../core/offer';
import { DialPolicyError, checkDial } from '../core/dial-policy';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import { newRequestId } from '../ids';
import type { Ledger } from '../ledger';
import type { AppliedDecision, EngineOptions, RequestStore } from './options';

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
   * `started` (its turn among the serialised decisions), `read` (the reads for the decision done: none before a new
   * request's transaction; a refresh's inside it, once the store found the pending request),
   * `decided` (the decision made, inside the transaction), `staged` (its rows written in the group's open
   * transaction), `committed` (the group durable: its COMMIT, and on SQLite the WAL's sync after it, completed —
   * stamped once per group by src/store/group.ts, before the side effects ran),
   * `positioned` (handed back with the agent's place in the queue, which the store counts in the decision's
   * transaction). Cheap: a few numbers per opt-in.
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
  /** The event loop's turns so far when the group became durable, where a bench's preload counts them (loopTurns). */
  turns?: number;
  /** The promises made so far when the group became durable, where a bench's preload counts them (promisesMade). */
  promises?: number;
}

/** The event loop's turns so far, when a bench's preload counts them (bench/turns-preload.ts); else undefined. */
export function loopTurns(): number | undefined {
  return (globalThis as { __ccLoopTurns?: number }).__ccLoopTurns;
}

/** The promises made so far, when a bench's preload counts them (bench/turns-preload.ts); else undefined. */
export function promisesMade(): number | undefined {
  return (globalThis as { __ccPromises?: number }).__ccPromises;
}

export type OptInResult =
  | { result: 'created' | 'refreshed'; requestId: string; promise?: 'regular' | 'next-calling-day'; position?: number }
  | { result: 'full'; pending: number }
  /** Nothing may be promised now (policy.afterHours = decline, or no calling day within the horizon): no request. */
  | { result: 'closed'; reason: string };

/** What the offer at the busy signal may say (see core/offer.ts OfferContext), and why. */
export interface OfferOutlook extends OfferContext {
  position: number;
  /** The first agents already waiting for this number (at most QUEUE_NAMES), in opt-in order (without this agent). */
  queue: string[];
  /** How many agents wait for this number (without this agent). */
  waiting: number;
  timeZone: string;
  reason: string;
}

/** How many of the colleagues waiting for a number the offer names (in its `offer.started` line). */
export const QUEUE_NAMES = 10;

export interface OptInsDeps {
  opts: Pick<EngineOptions, 'policy' | 'profiles' | 'maxPendingPerAgent' | 'maxPendingTotal' | 'prospectDevice' | 'dialPolicy' | 'contacts' | 'notOffered' | 'watch' | 'outboxQueued'>;
  store: RequestStore;
  ledger: Ledger;
  log: Logger;
  clock: () => number;
  stopped: () => boolean;
  /** Runs `f` in its turn among the engine's serialised decisions. */
  exclusive: <T>(f: () => Promise<T>, opts?: { quick?: boolean }) => Promise<T>;
  /** A side effect of the decision being staged: run once its group is durable (src/store/group.ts). */
  /** `fn` runs once the decision's group is durable, given that moment (performance.now()). */
  afterCommit: (fn: (durableAt: number) => void) => void;
  /** Carries out a persisted decision's actions (the engine's dispatch). */
  perform: (decision: Decision) => void;
  /** Tells the decision listeners (metrics, the lamp, the page). */
  applied: (applied: AppliedDecision) => void;
  /** Re-arms the engine's timer. */
  arm: () => Promise<void>;
  /** Presence (src/engine/presence.ts): a line to watch, and the agent's status as the policy sees it. */
  presence: { rememberLine(device: string, prospect: string): void; agentGiven(request: CallbackRequest, recalls: readonly CallbackRequest[]): AgentStatus };
}

export class OptIns {
  // The neighbours under the names the opt-in's body used inside the engine, so that it reads (and merges) as it did.
  private readonly opts: OptInsDeps['opts'];
  private readonly store: RequestStore;
  private readonly ledger: Ledger;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly exclusive: OptInsDeps['exclusive'];
  private readonly afterCommit: OptInsDeps['afterCommit'];
  private readonly perform: OptInsDeps['perform'];
  private readonly applied: OptInsDeps['applied'];
  private readonly arm: OptInsDeps['arm'];
  private readonly rememberLine: OptInsDeps['presence']['rememberLine'];
  private readonly agentGiven: OptInsDeps['presence']['agentGiven'];

  constructor(private readonly deps: OptInsDeps) {
    this.opts = deps.opts;
    this.store = deps.store;
    this.ledger = deps.ledger;
    this.log = deps.log;
    this.clock = deps.clock;
    this.exclusive = deps.exclusive;
    this.afterCommit = deps.afterCommit;
    this.perform = deps.perform;
    this.applied = deps.applied;
    this.arm = deps.arm;
    this.rememberLine = (device, prospect) => deps.presence.rememberLine(device, prospect);
    this.agentGiven = (request, recalls) => deps.presence.agentGiven(request, recalls);
  }

  private get stopped(): boolean {
    return this.deps.stopped();
  }

  /** The opt-in (# at the busy signal): durable before the promise resolves. */
  async optIn(input: OptInInput): Promise<OptInResult> {
    const r = await this.exclusive(() => this.optInNow(input), { quick: true });
    // The agent's place in the queue came with the decision (counted in its transaction): no read afterwards.
    if (input.marks && (r.result === 'created' || r.result === 'refreshed')) input.marks.positioned = performance.now();
    return r;
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
    const device = this.opts.prospectDevice(input.prospect);
    const chosen = resolveProfile(this.opts.policy, this.opts.profiles ?? {}, input.profile);
    const promise = offerPromise(chosen.policy, now, { mode: device ? 'device' : 'timed', timeZone: input.timeZone });
    /** The agent's pending request for this prospect, when one is known to exist (a refresh). */
    let pendingBefore: CallbackRequest | undefined;
    if (promise.kind === 'declined') {
      // Nothing may be promised: only a pending request (which keeps its promise) is refreshed.
      pendingBefore = (await this.store.findPending(input.agent, input.prospect))?.request;
      if (!pendingBefore) {
        await this.noOffer(input.agent, input.prospect, promise.timeZone, promise.reason);
        return { result: 'closed', reason: promise.reason };
      }
    }
    const args = {
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
    };
    // The common case, a new request: no reads before the store's opt-in. When the agent already waits for this
    // number, the same opt-in refreshes that request: the agent's other recalls and the colleagues for its decision
    // are read inside the store's transaction (this decision is staged, so they go to the group's connection), with
    // the pending request as the store read it, so there is no version race and no second opt-in statement.
    if (marks && !pendingBefore) marks.read = performance.now();
    const out = await this.ledger.optIn({
      ...args,
      refresh: async (existing) => {
        const recalls = await this.store.list({ agent: input.agent, states: RECALL_STATES });
        const colleagues = await this.ledger.colleaguesOf(existing);
        if (marks) marks.read = performance.now();
        const decided = this.ledger.decide(existing, { type: 'refresh' }, now, this.agentGiven(existing, recalls), colleagues);
        if (marks) marks.decided = performance.now();
        return decided;
      },
    });
    if (marks) marks.staged = performance.now();
    const { stored: r, decision, before } = out;
    if (r.result === 'full') return r;
    if (r.result === 'exists') throw new Error('the store answered exists to a refresh');
    // Everything else once the group is durable; the caller hears back after these.
    this.afterCommit((durableAt) => {
      // The moment the group became durable (the sync's end), not when this effect's turn came.
      if (marks) {
        marks.committed = durableAt;
        marks.turns = loopTurns();
        marks.promises = promisesMade();
      }
      if (device) this.rememberLine(device, input.prospect);
      if (decision) this.perform(decision);
      if (decision) this.applied({ before, decision, observation: { type: 'optIn' }, at: now });
      if (device) this.opts.watch?.(device);
      this.opts.watch?.(input.agent);
      void this.arm();
      if (!r.request.contact) this.lookUp(r.request.id, input.prospect);
    });
    return { result: r.result, requestId: r.request.id, promise: r.request.carriedOver ? 'next-calling-day' : 'regular', position: r.position };
  }

  /**
   * Asks the CRM for the prospect's name, off the opt-in's path (not awaited): when it arrives, it is written to the
   * request (if it is still pending) and shows on its next recall, the page, list/show and later webhooks. The engine
   * asks again as the recall comes near (see Engine.perform), for a request the CRM could not name at the opt-in.
   */
  lookUp(requestId: string, prospect: string): void {
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
    // Counted, not read row by row: one number may have many agents waiting (the offer asks at every busy signal).
    const place = await this.store.prospectPlace(prospect, agent, QUEUE_NAMES);
    // A pending request of this agent keeps its promise (a refresh never withdraws one).
    const kind = p.kind === 'declined' && place.queued ? 'regular' : p.kind;
    const reason = p.kind === 'declined' ? p.reason : p.kind === 'next-calling-day' ? 'carried over to the next calling day' : 'a callback can fire today';
    return { promise: kind, position: place.position, queue: place.others, waiting: place.waiting, timeZone: p.timeZone, reason };
  }
}
