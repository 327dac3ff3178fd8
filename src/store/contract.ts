/**
 * The store contract: what the engine, the ledger, the command line, the webhook sender and the service
 * may ask of the durable store, whichever database holds it. The contract owns its types; one
 * implementation (src/store/sql.ts) writes every algorithm once over a small database port
 * (src/store/db.ts) with two drivers:
 *
 *  - SQLite (src/store/sqlite.ts, better-sqlite3): the embedded default, one instance per PBX.
 *  - PostgreSQL (src/store/postgres.ts, node-postgres): several instances and several PBXs sharing one
 *    database; the database is then also the coordinator (leases with a fencing epoch, see
 *    src/coordination/lease.ts).
 *
 * The contract is asynchronous only. It is split by client: `RequestStore` (the engine, the ledger, the
 * page), `OutboxStore` (the webhook sender), `MaintenanceStore` (retention and the given-up webhook
 * events, for the command line and the service's prune timer); `Store` is all three. One contract test
 * suite (test/unit/store-contract.test.ts) runs against both databases.
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

/** The fields the store indexes; the full request is kept as JSON next to them. */
export interface RequestRecord {
  id: string;
  agent: string;
  prospect: string;
  state: string;
  createdAt: number;
  updatedAt: number;
  wakeAt: number | null;
}

export interface StoredEvent {
  id?: number;
  requestId: string;
  at: number;
  type: string;
  from?: string | null;
  to?: string | null;
  reason?: string | null;
  data?: Record<string, unknown> | null;
}

/** A notification to enqueue in the outbox (see `transition`, `createOrRefresh`). */
export interface OutboxInsert {
  /** Idempotency key: a second insert with the same key is ignored. */
  key: string;
  requestId: string;
  event: string;
  createdAt: number;
  /** The exact body to POST (signed as is, byte for byte, on every attempt). */
  body: string;
}

export interface OutboxRow extends OutboxInsert {
  id: number;
  attempts: number;
  nextAt: number;
  sentAt: number | null;
  failedAt: number | null;
  lastError: string | null;
}

export interface Versioned<R> {
  request: R;
  version: number;
}

/** What an opt-in writes in its transaction: the request, its history, and its CRM outbox rows. */
export interface RequestWrite<R> {
  request: R;
  events: StoredEvent[];
  outbox?: readonly OutboxInsert[];
}

/**
 * What the opt-in's write did. `position`: the request's place in its prospect's queue (1 = first), as
 * `prospectQueue` orders it, counted in the same transaction. `exists`: the agent already has a pending request for
 * the prospect and no `refresh` was given (nothing was written; the caller reads what a refresh needs and asks again).
 */
export type CreateResult<R> =
  | { result: 'created'; request: R; position: number }
  | { result: 'refreshed'; request: R; previous: R; position: number }
  | { result: 'exists'; request: R }
  | { result: 'full'; pending: number };

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

/** An agent's place in the queue for a number (see `prospectPlace`). */
export interface ProspectPlace {
  position: number;
  queued: boolean;
  waiting: number;
  others: string[];
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

/** A store that cannot be opened, read or written; the message names the store and what is wrong. */
export class StoreError extends Error {
  constructor(message: string, readonly cause?: unknown) {
    super(message);
    this.name = 'StoreError';
  }
}

/**
 * A statement that failed cleanly: it was undone where it failed and left nothing behind (PostgreSQL's opt-in
 * function, migration 5), so the decision's savepoint need not be rolled back for it (src/store/postgres.ts group).
 */
export class AtomicStoreError extends StoreError {
  readonly atomic = true;
  constructor(message: string, cause?: unknown) {
    super(message, cause);
    this.name = 'StoreError';
  }
}

/** A write refused because the writer's lease epoch is no longer current (another instance took over). */
export class FencedError extends StoreError {
  readonly code = 'fenced';
  constructor(message: string, readonly fence: { pbx: string; app: string; holder: string; epoch: number }) {
    super(message);
    this.name = 'FencedError';
  }
}

/** An agent's pause of their callbacks ("hold my callbacks"). */
export interface AgentPauseRow {
  agent: string;
  since: number;
  /** Ends by itself then; null: until resumed. */
  until: number | null;
  /** Who paused: 'phone' (feature code), 'web'. */
  by: string;
}

/** Requests and their history: the engine, the ledger, the command line and the page. */
export interface RequestStore<R extends RequestRecord> {
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
   * An agent's place in the queue for a number, as `prospectQueue` orders it, without reading the whole queue (the
   * offer asks at every busy signal): `position` 1 = first (a newcomer goes last), `queued` whether the agent waits
   * already, `waiting` how many colleagues wait, `others` the first `limit` of them (their agents, in order).
   */
  prospectPlace(prospect: string, agent: string, limit: number): Promise<ProspectPlace>;
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
  /** Agents who paused their callbacks ("hold my callbacks"), of this store's PBX. */
  pauses(): Promise<AgentPauseRow[]>;
  /** Pauses (a row) or resumes (null) an agent's callbacks; durable. */
  setPause(agent: string, pause: Omit<AgentPauseRow, 'agent'> | null): Promise<void>;

  /**
   * The opt-in write: create, refresh the pending one, or refuse at `maxPending` (this agent's pending
   * requests) or `maxPendingTotal` (all agents'; unset: no total cap), in one transaction. It waits only
   * briefly for another writer's lock (SQLite: BUSY_OPT_IN_MS; PostgreSQL: OPT_IN_LOCK_TIMEOUT_MS) and
   * then fails with a StoreError, so the caller hears the error prompt instead of waiting. `create` is pure and may
   * be called although its rows are not written (a refresh, the caps). Without `refresh`, an existing pending request
   * is answered with `exists` and nothing is written. A new request costs one round trip on PostgreSQL. `refresh` runs
   * inside the transaction with the pending request as stored; it may read through this store when the opt-in is a
   * decision staged in a group (the engine's: its reads go to the group's connection and see what it staged), and
   * its write is the refresh's.
   */
  createOrRefresh(
    agent: string,
    prospect: string,
    maxPending: number,
    create: () => RequestWrite<R>,
    refresh: ((existing: R) => RequestWrite<R> | Promise<RequestWrite<R>>) | undefined,
    maxPendingTotal?: number,
  ): Promise<CreateResult<R>>;
  /** Version-guarded write of a request with its events and outbox rows; the new version or undefined. */
  transition(request: R, expectedVersion: number, events: readonly StoredEvent[], outbox?: readonly OutboxInsert[]): Promise<number | undefined>;
}

/** The CRM webhook's queue: the sender claims due rows and records each attempt. */
export interface OutboxStore {
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
}

/** Retention, readiness and the given-up webhook events: the command line and the service's timers. */
export interface MaintenanceStore {
  /** Readiness: a write could start now (nothing is written). */
  writable(): Promise<{ ok: true } | { ok: false; reason: string }>;
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

export interface Store<R extends RequestRecord> extends RequestStore<R>, OutboxStore, MaintenanceStore {
  /** 'sqlite' or 'postgres'. */
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives, for logs: a file path, or the PostgreSQL URL without its password. */
  readonly where: string;
  /**
   * Makes the store usable: PostgreSQL connects, migrates and checks the schema version (a StoreError when it
   * cannot; call again to retry); SQLite is ready when opened. Idempotent. A store from `openStore(…, 'service')`
   * may not be prepared yet (the service waits for the database); every other store is.
   */
  prepare(): Promise<void>;
  /** True once `prepare` succeeded (always for SQLite). */
  readonly prepared: boolean;
  close(): Promise<void>;
}
