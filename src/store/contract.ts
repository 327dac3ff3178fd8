/**
 * The store contract: what the engine, the ledger, the command line, the webhook sender and the service
 * may ask of the durable store, whichever backend holds it.
 *
 *  - SQLite (src/store/sqlite.ts, better-sqlite3): the embedded default, one instance per PBX.
 *  - PostgreSQL (src/store/postgres.ts, node-postgres): several instances and several PBXs sharing one
 *    database; the database is then also the coordinator (leases with a fencing epoch, see
 *    src/coordination/lease.ts).
 *
 * The contract is asynchronous because node-postgres is; the SQLite backend answers through the same
 * promises (`sqliteContract`). One contract test suite (test/integration/store-contract.test.ts) runs
 * against both backends.
 *
 * Guarantees every backend gives:
 *  - a request's change, its history rows and its outbox rows are written in one transaction;
 *  - `transition` is guarded by the version the writer read: a stale version writes nothing and answers
 *    `undefined` (reload and decide again);
 *  - at most one pending request per (agent, prospect); `createOrRefresh` is atomic with the agent's cap
 *    and the total cap (offer.maxPendingTotal; PostgreSQL: pending requests of the store's PBX);
 *  - an outbox row is handed to one sender at a time (`outboxClaim`, `outboxClaimDue`);
 *  - a fenced writer (PostgreSQL with a lease) whose epoch is no longer the lease's current one is
 *    refused with a `FencedError` and nothing is written.
 */
import {
  AgentPauseRow,
  CreateResult,
  OutboxInsert,
  OutboxRow,
  RequestRecord,
  RequestWrite,
  SqliteStore,
  StoreError,
  StoredEvent,
  Versioned,
} from './sqlite';

export type { AgentPauseRow, CreateResult, OutboxInsert, OutboxRow, RequestRecord, RequestWrite, StoredEvent, Versioned };
export { StoreError };

export interface ListFilter {
  agent?: string;
  states?: readonly string[];
  limit?: number;
  /** PostgreSQL with several PBXs: only this PBX's requests (default: the store's own scope, or all). */
  pbx?: string;
}

/** One request in the queue for a prospect number (see `prospectQueue`). */
export interface ProspectQueueEntry {
  id: string;
  /** False for a request of another PBX (PostgreSQL with several PBXs): its own PBX's instance serves it. */
  samePbx: boolean;
  agent: string;
  state: string;
  createdAt: number;
}

/**
 * A colleague's last recall that reached a prospect: when it connected, when its conversation ended (null while it
 * may still go on), and whether it was on this store's PBX (a restart's reconciliation ends only those calls).
 */
export interface LastConversation {
  connectedAt: number;
  endedAt: number | null;
  samePbx: boolean;
}

/** What `prune` deleted (or, with dryRun, would delete). */
export interface PruneResult {
  requests: number;
  events: number;
  outbox: number;
}

export interface PendingDependencies {
  agents: string[];
  lineProspects: string[];
  count: number;
}

/** A write refused because the writer's lease epoch is no longer current (another instance took over). */
export class FencedError extends StoreError {
  readonly code = 'fenced';
  constructor(message: string, readonly fence: { pbx: string; app: string; holder: string; epoch: number }) {
    super(message);
    this.name = 'FencedError';
  }
}

export interface Store<R extends RequestRecord> {
  /** 'sqlite' or 'postgres'. */
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives, for logs: a file path, or the PostgreSQL URL without its password. */
  readonly where: string;
  close(): Promise<void>;

  get(id: string): Promise<Versioned<R> | undefined>;
  /** The pending (non-terminal) request of this agent for this prospect, if any. */
  findPending(agent: string, prospect: string): Promise<Versioned<R> | undefined>;
  countPending(agent: string): Promise<number>;
  list(filter?: ListFilter): Promise<R[]>;
  /** The agents of pending requests and the prospects of those watching a line; cheap at 100k pending. */
  pendingDependencies(): Promise<PendingDependencies>;
  /** Ids of pending requests for these prospects that watch the prospect's line. */
  pendingLineWatchers(prospects: readonly string[]): Promise<string[]>;
  /** Ids of requests in `state`, optionally of one agent, earliest wake-up first. */
  idsInState(state: string, agent?: string): Promise<string[]>;
  /** Non-terminal requests with their versions. */
  pending(): Promise<Versioned<R>[]>;
  /** The earliest wake-up among pending requests. */
  nextWake(): Promise<number | null>;
  /** Pending requests whose wake-up time has come, earliest first. */
  due(now: number, limit?: number): Promise<Versioned<R>[]>;
  events(requestId: string): Promise<StoredEvent[]>;
  /**
   * The queue for a prospect number (across PBXs: one person): its non-terminal requests in opt-in order, with
   * their agents and states. Agents are served in this order, one recall at a time.
   */
  prospectQueue(prospect: string): Promise<ProspectQueueEntry[]>;
  /**
   * The latest recall of another agent that reached this prospect (COMPLETED), on any PBX: when it connected, when
   * the conversation ended (its 'conversation-ended' event) or null while it may still go on, and whether it was
   * on this store's PBX. Null if none.
   */
  lastConversation(prospect: string, exceptAgent: string): Promise<LastConversation | null>;
  /** Appends history to a request without changing it (facts the policy does not decide, e.g. 'conversation-ended'). */
  appendEvents(events: readonly StoredEvent[]): Promise<void>;
  /** Non-terminal requests per state (metrics). */
  countByState(): Promise<Record<string, number>>;
  /** Agents who paused their callbacks ("hold my callbacks"), of this PBX. */
  pauses(): Promise<AgentPauseRow[]>;
  /** Pauses (row) or resumes (null) an agent's callbacks; durable. */
  setPause(agent: string, pause: Omit<AgentPauseRow, 'agent'> | null): Promise<void>;
  /** Readiness: a write could start now (nothing is written). */
  writable(): Promise<{ ok: true } | { ok: false; reason: string }>;

  /**
   * The opt-in write: create, refresh the pending one, or refuse at `maxPending` (this agent's pending
   * requests) or `maxPendingTotal` (all agents'; unset: no total cap), in one transaction. It waits only
   * briefly for another writer's lock (SQLite: BUSY_OPT_IN_MS; PostgreSQL: OPT_IN_LOCK_TIMEOUT_MS) and
   * then fails with a StoreError, so the caller hears the error prompt instead of waiting.
   */
  createOrRefresh(
    agent: string,
    prospect: string,
    maxPending: number,
    create: () => RequestWrite<R>,
    refresh: (existing: R) => RequestWrite<R>,
    maxPendingTotal?: number,
  ): Promise<CreateResult<R>>;
  /** Version-guarded write of a request with its events and outbox rows; the new version or undefined. */
  transition(request: R, expectedVersion: number, events: readonly StoredEvent[], outbox?: readonly OutboxInsert[]): Promise<number | undefined>;

  enqueueOutbox(rows: readonly OutboxInsert[]): Promise<void>;
  outboxDue(now: number, limit?: number): Promise<OutboxRow[]>;
  outboxNextAt(): Promise<number | null>;
  /** Claims one due row for an attempt (next_at moved to `until`) if nobody else has; false if lost. */
  outboxClaim(id: number, seenNextAt: number, until: number): Promise<boolean>;
  /** Claims up to `limit` due rows at once; concurrent callers get disjoint sets (SKIP LOCKED on PostgreSQL). */
  outboxClaimDue(now: number, until: number, limit?: number): Promise<OutboxRow[]>;
  outboxSent(id: number, at: number): Promise<void>;
  outboxFailed(id: number, error: string, nextAt: number | null, at: number): Promise<void>;
  outbox(): Promise<OutboxRow[]>;
  /** Webhook events that were given up on (retries exhausted, not sent), oldest first. */
  outboxGivenUp(): Promise<OutboxRow[]>;
  /** Re-queues given-up events (these ids, or all), due at `now` with a fresh retry budget; the ids re-queued. */
  outboxRetry(ids: readonly number[] | 'all', now: number): Promise<number[]>;

  /**
   * Retention: deletes finished requests last changed before `before` with their history, and webhook
   * events sent before it (given-up ones stay). With dryRun only counts. PostgreSQL: the store's PBX, or
   * every PBX for a store opened with allPbx (the command line).
   */
  prune(before: number, opts?: { dryRun?: boolean }): Promise<PruneResult>;
}

/**
 * The SQLite store behind the contract. better-sqlite3 is synchronous: each answer is computed at once
 * and handed back as a settled promise, so the semantics (one immediate transaction per write) are those
 * of SqliteStore itself.
 */
export class SqliteContractStore<R extends RequestRecord> implements Store<R> {
  readonly kind = 'sqlite' as const;

  constructor(readonly sync: SqliteStore<R>) {}

  static open<R extends RequestRecord>(file: string, opts: { readonly?: boolean } = {}): SqliteContractStore<R> {
    return new SqliteContractStore<R>(SqliteStore.open<R>(file, opts));
  }

  get where(): string {
    return this.sync.file;
  }

  private static run<T>(f: () => T): Promise<T> {
    try {
      return Promise.resolve(f());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  close(): Promise<void> {
    return SqliteContractStore.run(() => this.sync.close());
  }
  get(id: string): Promise<Versioned<R> | undefined> {
    return SqliteContractStore.run(() => this.sync.get(id));
  }
  findPending(agent: string, prospect: string): Promise<Versioned<R> | undefined> {
    return SqliteContractStore.run(() => this.sync.findPending(agent, prospect));
  }
  countPending(agent: string): Promise<number> {
    return SqliteContractStore.run(() => this.sync.countPending(agent));
  }
  list(filter: ListFilter = {}): Promise<R[]> {
    return SqliteContractStore.run(() => this.sync.list(filter));
  }
  pendingDependencies(): Promise<PendingDependencies> {
    return SqliteContractStore.run(() => this.sync.pendingDependencies());
  }
  pendingLineWatchers(prospects: readonly string[]): Promise<string[]> {
    return SqliteContractStore.run(() => this.sync.pendingLineWatchers(prospects));
  }
  idsInState(state: string, agent?: string): Promise<string[]> {
    return SqliteContractStore.run(() => this.sync.idsInState(state, agent));
  }
  pending(): Promise<Versioned<R>[]> {
    return SqliteContractStore.run(() => this.sync.pending());
  }
  nextWake(): Promise<number | null> {
    return SqliteContractStore.run(() => this.sync.nextWake());
  }
  due(now: number, limit?: number): Promise<Versioned<R>[]> {
    return SqliteContractStore.run(() => this.sync.due(now, limit));
  }
  events(requestId: string): Promise<StoredEvent[]> {
    return SqliteContractStore.run(() => this.sync.events(requestId));
  }
  prospectQueue(prospect: string): Promise<ProspectQueueEntry[]> {
    return SqliteContractStore.run(() => this.sync.prospectQueue(prospect));
  }
  lastConversation(prospect: string, exceptAgent: string): Promise<LastConversation | null> {
    return SqliteContractStore.run(() => this.sync.lastConversation(prospect, exceptAgent));
  }
  appendEvents(events: readonly StoredEvent[]): Promise<void> {
    return SqliteContractStore.run(() => this.sync.appendEvents(events));
  }
  countByState(): Promise<Record<string, number>> {
    return SqliteContractStore.run(() => this.sync.countByState());
  }
  pauses(): Promise<AgentPauseRow[]> {
    return SqliteContractStore.run(() => this.sync.pauses());
  }
  setPause(agent: string, pause: Omit<AgentPauseRow, 'agent'> | null): Promise<void> {
    return SqliteContractStore.run(() => this.sync.setPause(agent, pause));
  }
  writable(): Promise<{ ok: true } | { ok: false; reason: string }> {
    return SqliteContractStore.run(() => this.sync.writable());
  }
  createOrRefresh(
    agent: string,
    prospect: string,
    maxPending: number,
    create: () => RequestWrite<R>,
    refresh: (existing: R) => RequestWrite<R>,
    maxPendingTotal?: number,
  ): Promise<CreateResult<R>> {
    return SqliteContractStore.run(() => this.sync.createOrRefresh(agent, prospect, maxPending, create, refresh, maxPendingTotal));
  }
  transition(request: R, expectedVersion: number, events: readonly StoredEvent[], outbox: readonly OutboxInsert[] = []): Promise<number | undefined> {
    return SqliteContractStore.run(() => this.sync.transition(request, expectedVersion, events, outbox));
  }
  enqueueOutbox(rows: readonly OutboxInsert[]): Promise<void> {
    return SqliteContractStore.run(() => this.sync.enqueueOutbox(rows));
  }
  outboxDue(now: number, limit?: number): Promise<OutboxRow[]> {
    return SqliteContractStore.run(() => this.sync.outboxDue(now, limit));
  }
  outboxNextAt(): Promise<number | null> {
    return SqliteContractStore.run(() => this.sync.outboxNextAt());
  }
  outboxClaim(id: number, seenNextAt: number, until: number): Promise<boolean> {
    return SqliteContractStore.run(() => this.sync.outboxClaim(id, seenNextAt, until));
  }
  outboxClaimDue(now: number, until: number, limit = 20): Promise<OutboxRow[]> {
    // One process at a time writes a SQLite file; claiming row by row is already exclusive.
    return SqliteContractStore.run(() =>
      this.sync.outboxDue(now, limit).flatMap((row) => (this.sync.outboxClaim(row.id, row.nextAt, until) ? [{ ...row, nextAt: until }] : [])),
    );
  }
  outboxSent(id: number, at: number): Promise<void> {
    return SqliteContractStore.run(() => this.sync.outboxSent(id, at));
  }
  outboxFailed(id: number, error: string, nextAt: number | null, at: number): Promise<void> {
    return SqliteContractStore.run(() => this.sync.outboxFailed(id, error, nextAt, at));
  }
  outbox(): Promise<OutboxRow[]> {
    return SqliteContractStore.run(() => this.sync.outbox());
  }
  outboxGivenUp(): Promise<OutboxRow[]> {
    return SqliteContractStore.run(() => this.sync.outboxGivenUp());
  }
  outboxRetry(ids: readonly number[] | 'all', now: number): Promise<number[]> {
    return SqliteContractStore.run(() => this.sync.outboxRetry(ids, now));
  }
  prune(before: number, opts: { dryRun?: boolean } = {}): Promise<PruneResult> {
    return SqliteContractStore.run(() => this.sync.prune(before, opts));
  }
}
