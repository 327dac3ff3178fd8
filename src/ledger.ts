/**
 * The ledger: the one place that applies a decision to a stored request.
 *
 *   apply(id, observation) = read (request, version)
 *                          → decide (the pure policy, src/core/policy)
 *                          → events (the request's history) and outbox rows (the CRM webhook)
 *                          → one version-guarded write of all three in one transaction
 *
 * Whoever changes a request goes through here: the engine (timers, device states, the recall's outcomes,
 * `*82`) and the command line's `cancel` alike, so history, webhook outbox and the version guard are never
 * skipped nor written two ways. A write whose version is stale (someone else changed the request since it
 * was read) is refused by the store; `apply` then reads again and decides afresh (up to `maxTries`), unless
 * the caller pinned the version it saw (`expectedVersion`), in which case it reports `stale`.
 *
 * The ledger carries out no actions (ringing, notifications): it returns the applied decision, and the
 * caller acts on it only after the write, so a crash never leaves an action without its record.
 */
import { AgentStatus, CallbackRequest, Colleagues, Decision, Observation, PolicyConfig, PolicyEvent, decide, isTerminal, policyFor } from './core/policy';
import type { CreateResult, OutboxInsert, OutboxStore, RequestStore, StoredEvent, Versioned } from './store/contract';

/** The ledger reads and writes through the store contract (SQLite or PostgreSQL; asynchronous). */
export type LedgerStore = Pick<RequestStore<CallbackRequest>, 'get' | 'transition' | 'createOrRefresh' | 'appendEvents'> & Pick<OutboxStore, 'enqueueOutbox'>;

export interface LedgerOptions {
  store: LedgerStore;
  policy: PolicyConfig;
  clock?: () => number;
  /** Outbox rows for a decision's notify actions (src/webhook/payload.ts `outboxRowsFor`); unset: none are queued. */
  outbox?: (decision: Decision, at: number) => OutboxInsert[];
  /**
   * The agent's status as the policy should see it. The engine knows device states and its own recalls;
   * the command line does not (and needs not: a cancel does not depend on the agent). Default: free.
   */
  agentStatus?: (request: CallbackRequest) => AgentStatus | Promise<AgentStatus>;
  /**
   * Other agents' requests for the same number (one prospect, many agents), consulted for a request that waits
   * (DUE, GRACE, WAITING). Default: none.
   */
  colleagues?: (request: CallbackRequest) => Colleagues | Promise<Colleagues>;
}

export interface ApplyOptions {
  /** Refuse (status `stale`) unless the stored version is this one: no re-read, no retry. */
  expectedVersion?: number;
  /**
   * Checked on every (re-)read before deciding: a reason not to apply the observation to this request as it
   * now is (e.g. "already COMPLETED"); the request is then left alone and the reason returned.
   */
  guard?: Guard;
  /** Decide but write nothing (the command line's --dry-run). */
  dryRun?: boolean;
  /** Reads and decides afresh this often when the write loses the version race. Default 3. */
  maxTries?: number;
}

/** A reason not to apply an observation to a request as it now is (see ApplyOptions.guard). */
export type Guard = (current: Versioned<CallbackRequest>) => string | undefined;

/**
 * The guards of an operator's cancel or snooze, shared by the command line and the callbacks page. They are
 * checked by `apply` on every (re-)read, inside the version-guarded loop, never as a separate pre-read.
 */
export const guards = {
  /** A finished request has nothing left to cancel or snooze. */
  notFinished:
    (verb: 'cancel' | 'snooze'): Guard =>
    ({ request }) =>
      isTerminal(request.state) ? `already ${request.state}; nothing to ${verb}` : undefined,
  /** While the prospect is being dialled the call may connect: hands off (the CLI's --force overrides it). */
  notDialling:
    (verb: 'cancel' | 'snooze', hint = ''): Guard =>
    ({ request }) =>
      request.state === 'CONNECTING' ? `not ${verb === 'cancel' ? 'cancelled' : 'snoozed'}: the prospect is being dialled right now${hint}` : undefined,
  /** The first reason of these guards, in order. */
  all:
    (...list: readonly Guard[]): Guard =>
    (current) => {
      for (const g of list) {
        const reason = g(current);
        if (reason !== undefined) return reason;
      }
      return undefined;
    },
};

export type ApplyResult =
  /** Decided and written; the caller may now carry out `decision.actions`. */
  | { status: 'applied'; before: CallbackRequest; decision: Decision; version: number; at: number }
  /** The policy had nothing to change. */
  | { status: 'unchanged'; before: CallbackRequest; version: number }
  /** `dryRun`: what would have been written. */
  | { status: 'dry-run'; before: CallbackRequest; decision: Decision; version: number }
  /** The guard said no. */
  | { status: 'refused'; before: CallbackRequest; version: number; reason: string }
  | { status: 'not-found' }
  /** `expectedVersion` was given and the request has moved on (or the write lost the race). */
  | { status: 'stale'; version: number }
  /** The request kept changing under us for `maxTries` attempts. */
  | { status: 'conflict' };

/** A decision's policy events as the store's history rows. */
export function toStoredEvents(requestId: string, events: readonly PolicyEvent[]): StoredEvent[] {
  return events.map((e) => ({
    requestId,
    at: e.at,
    type: e.type,
    from: e.from,
    to: e.to,
    reason: e.reason,
    data: { wakeAt: e.wakeAt, waitingFor: e.waitingFor },
  }));
}

const AGENT_FREE_LONG_AGO: AgentStatus = { busy: false, since: 0 };

export class Ledger {
  private readonly clock: () => number;
  private readonly store: LedgerStore;

  constructor(private readonly opts: LedgerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.store = opts.store;
  }

  /**
   * The opt-in's write: a new request (`create`) or the refresh of the agent's pending one for this prospect
   * (`refresh`, decided inside the store's transaction, so there is no version race), with history and outbox
   * rows, or 'full' at the caps; one transaction (the store's createOrRefresh). `firstEvent` is added to the
   * data of a new request's first history row (the channel, the watched line).
   */
  async optIn(args: {
    agent: string;
    prospect: string;
    maxPending: number;
    maxPendingTotal?: number;
    at: number;
    create: () => Decision;
    /**
     * Absent: an existing pending request is answered with `exists`, nothing written (see the store's createOrRefresh).
     * Called inside the store's transaction with the request as stored (it may read through the store when the
     * opt-in is a staged decision, see there).
     */
    refresh?: (existing: CallbackRequest) => Decision | Promise<Decision>;
    firstEvent?: Record<string, unknown>;
  }): Promise<{ stored: CreateResult<CallbackRequest>; decision?: Decision; before?: CallbackRequest }> {
    const refresh = args.refresh;
    let decision: Decision | undefined;
    let before: CallbackRequest | undefined;
    const stored = await this.store.createOrRefresh(
      args.agent,
      args.prospect,
      args.maxPending,
      () => {
        decision = args.create();
        const rows = this.rows(decision, args.at);
        if (args.firstEvent) rows.events[0].data = { ...rows.events[0].data, ...args.firstEvent };
        return rows;
      },
      refresh
        ? async (existing) => {
            before = existing;
            decision = await refresh(existing);
            return this.rows(decision, args.at);
          }
        : undefined,
      args.maxPendingTotal,
    );
    return stored.result === 'full' || stored.result === 'exists' ? { stored } : { stored, decision, before: stored.result === 'refreshed' ? before : undefined };
  }

  /** A busy signal at which nothing was offered: its CRM row (no request exists to carry it). */
  async notOffered(row: OutboxInsert): Promise<void> {
    await this.store.enqueueOutbox([row]);
  }

  /**
   * A fact the policy does not decide, appended to a request's history without changing it: the end of a
   * connected recall's conversation. The request as it was, or undefined when it does not exist.
   */
  async conversationEnded(requestId: string, at: number): Promise<CallbackRequest | undefined> {
    const current = (await this.store.get(requestId))?.request;
    if (!current) return undefined;
    await this.store.appendEvents([{ requestId, at, type: 'conversation-ended', from: current.state, to: current.state, reason: 'the conversation with the prospect ended' }]);
    return current;
  }

  /** What one decision writes: the new request, its history rows and its outbox rows. */
  rows(decision: Decision, at: number): { request: CallbackRequest; events: StoredEvent[]; outbox: OutboxInsert[] | undefined } {
    return { request: decision.request, events: toStoredEvents(decision.request.id, decision.events), outbox: this.opts.outbox?.(decision, at) };
  }

  /** The agent's status for a decision on this request (the engine's view, or free). */
  agentOf(request: CallbackRequest): AgentStatus | Promise<AgentStatus> {
    return (this.opts.agentStatus ?? (() => AGENT_FREE_LONG_AGO))(request);
  }

  /** The colleagues waiting for the same number, for a request that waits (DUE, GRACE, WAITING); else undefined. */
  async colleaguesOf(request: CallbackRequest): Promise<Colleagues | undefined> {
    const waits = request.state === 'DUE' || request.state === 'GRACE' || request.state === 'WAITING';
    return waits && this.opts.colleagues ? await this.opts.colleagues(request) : undefined;
  }

  /** The pure decision for a request as it is now (nothing written), with the agent's status and colleagues as given. */
  decide(request: CallbackRequest, observation: Observation, now = this.clock(), agent: AgentStatus = AGENT_FREE_LONG_AGO, colleagues?: Colleagues): Decision {
    return decide(request, observation, { now, cfg: policyFor(this.opts.policy, request), agent, ...(colleagues ? { colleagues } : {}) });
  }

  /**
   * Writes a decision made on `version` of its request, version-guarded. Returns the new version, or
   * undefined when the stored request is no longer at `version` (nothing is written then).
   */
  commit(decision: Decision, version: number, at: number): Promise<number | undefined> {
    const r = this.rows(decision, at);
    return this.store.transition(r.request, version, r.events, r.outbox);
  }

  /**
   * Writes a fact about a request that is not a decision (the CRM's name for the prospect): `patch` returns the
   * request with the fact, or undefined to leave it alone. Version-guarded like a decision (re-read on a lost race);
   * no history row, no outbox row, no action. Returns the request written, or undefined.
   */
  async annotate(id: string, patch: (current: CallbackRequest) => CallbackRequest | undefined, maxTries = 3): Promise<CallbackRequest | undefined> {
    for (let i = 0; i < maxTries; i++) {
      const current = await this.store.get(id);
      if (!current) return undefined;
      const next = patch(current.request);
      if (!next) return undefined;
      if ((await this.store.transition(next, current.version, [])) !== undefined) return next;
    }
    return undefined;
  }

  /** decide → events → outbox → version-guarded write; see the file comment. */
  async apply(id: string, observation: Observation, options: ApplyOptions = {}): Promise<ApplyResult> {
    const tries = options.expectedVersion !== undefined ? 1 : (options.maxTries ?? 3);
    for (let i = 0; i < tries; i++) {
      const current = await this.store.get(id);
      if (!current) return { status: 'not-found' };
      if (options.expectedVersion !== undefined && current.version !== options.expectedVersion) return { status: 'stale', version: current.version };
      const before = current.request;
      const reason = options.guard?.(current);
      if (reason !== undefined) return { status: 'refused', before, version: current.version, reason };
      const now = this.clock();
      const decision = this.decide(before, observation, now, await this.agentOf(before), await this.colleaguesOf(before));
      if (decision.request === before) return { status: 'unchanged', before, version: current.version };
      if (options.dryRun) return { status: 'dry-run', before, decision, version: current.version };
      const version = await this.commit(decision, current.version, now);
      if (version !== undefined) return { status: 'applied', before, decision, version, at: now };
      if (options.expectedVersion !== undefined) return { status: 'stale', version: (await this.store.get(id))?.version ?? current.version };
      // Lost the race: someone changed the request between our read and our write. Read again.
    }
    return { status: 'conflict' };
  }
}
