/**
 * The durable store: callback requests and their event history in SQLite (better-sqlite3, synchronous).
 *
 * The store is the truth. Every change of a request is written together with the events that explain
 * it, in one transaction, guarded by a version number so that two writers (or a writer and a restart)
 * can never both apply a transition: the loser gets `false` and must reload.
 *
 * Durability: WAL journal with `synchronous=FULL`, so a request is on disk before the agent hears
 * "we'll call you back".
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

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

/** An outbox row as both stores read it (the same columns in SQLite and PostgreSQL). */
export function outboxRowFrom(r: Record<string, unknown>): OutboxRow {
  return {
    id: r.id as number,
    key: r.key as string,
    requestId: r.request_id as string,
    event: r.event as string,
    createdAt: r.created_at as number,
    body: r.body as string,
    attempts: r.attempts as number,
    nextAt: r.next_at as number,
    sentAt: (r.sent_at as number | null) ?? null,
    failedAt: (r.failed_at as number | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
  };
}

export class StoreError extends Error {
  constructor(message: string, readonly cause?: unknown) {
    super(message);
    this.name = 'StoreError';
  }
}

/** Longest a write waits for another process's lock (the event loop waits with it). */
export const BUSY_TIMEOUT_MS = 1000;
/** The opt-in fails fast instead: the agent hears the error prompt at once, other calls go on. */
export const BUSY_OPT_IN_MS = 100;

/** States in which a request is finished and no longer counts as pending. */
export const TERMINAL_STATES = ['COMPLETED', 'CANCELLED', 'EXPIRED', 'FAILED'] as const;
const TERMINAL_SQL = TERMINAL_STATES.map((s) => `'${s}'`).join(',');

/** An agent's pause of their callbacks ("hold my callbacks"). */
export interface AgentPauseRow {
  agent: string;
  since: number;
  /** Ends by itself then; null: until resumed. */
  until: number | null;
  /** Who paused: 'phone' (feature code), 'web', 'cli'. */
  by: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS requests (
  id          TEXT PRIMARY KEY,
  agent       TEXT NOT NULL,
  prospect    TEXT NOT NULL,
  state       TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  wake_at     INTEGER,
  version     INTEGER NOT NULL DEFAULT 1,
  data        TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS requests_one_pending
  ON requests(agent, prospect) WHERE state NOT IN (${TERMINAL_SQL});
-- One prospect, many agents: at most one recall (agent rung or prospect dialled) per prospect number at any
-- time, whoever writes. A transition that would start a second one fails in its own transaction.
CREATE UNIQUE INDEX IF NOT EXISTS requests_one_recall_per_prospect
  ON requests(prospect) WHERE state IN ('RINGING_AGENT', 'CONNECTING');
CREATE INDEX IF NOT EXISTS requests_wake ON requests(wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS requests_agent_state ON requests(agent, state);
CREATE INDEX IF NOT EXISTS requests_prospect ON requests(prospect);
CREATE TABLE IF NOT EXISTS events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id  TEXT NOT NULL REFERENCES requests(id),
  at          INTEGER NOT NULL,
  type        TEXT NOT NULL,
  from_state  TEXT,
  to_state    TEXT,
  reason      TEXT,
  data        TEXT
);
CREATE INDEX IF NOT EXISTS events_request ON events(request_id, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Outbox of notifications for the CRM webhook: written in the same transaction as the transition that
-- produced them, sent by the webhook sender, marked sent once accepted. \`key\` is the idempotency key.
CREATE TABLE IF NOT EXISTS outbox (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  key         TEXT NOT NULL UNIQUE,
  request_id  TEXT NOT NULL,
  event       TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  body        TEXT NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  next_at     INTEGER NOT NULL,
  sent_at     INTEGER,
  failed_at   INTEGER,
  last_error  TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
-- "Hold my callbacks": agents who paused their callbacks (feature code or page), until resumed or until_at.
CREATE TABLE IF NOT EXISTS agent_pauses (
  agent       TEXT PRIMARY KEY,
  since       INTEGER NOT NULL,
  until_at    INTEGER,
  by_whom     TEXT NOT NULL
);
`;

const SCHEMA_VERSION = '1';

interface Row {
  id: string;
  version: number;
  data: string;
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

export type CreateResult<R> =
  | { result: 'created'; request: R }
  | { result: 'refreshed'; request: R; previous: R }
  | { result: 'full'; pending: number };

function isOneRecallConflict(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' && /constraint failed: requests\.prospect$/.test(e.message ?? '');
}

export class SqliteStore<R extends RequestRecord> {
  private readonly db: Database.Database;

  private constructor(db: Database.Database, readonly file: string) {
    this.db = db;
  }

  /**
   * Opens (and creates or migrates) the store. Every failure becomes a StoreError whose message says
   * which file and what is wrong with it, so the service can refuse to start with a clear line.
   */
  static open<R extends RequestRecord>(file: string, opts: { readonly?: boolean } = {}): SqliteStore<R> {
    const where = file === ':memory:' ? 'in memory' : path.resolve(file);
    if (file !== ':memory:' && !opts.readonly) {
      const dir = path.dirname(path.resolve(file));
      try {
        // The store holds names and numbers: its directory (when we create it) and files are the
        // service user's only. SQLite gives -wal and -shm the main file's mode.
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fs.accessSync(dir, fs.constants.W_OK);
        fs.closeSync(fs.openSync(file, 'a', 0o600));
        for (const f of [file, `${file}-wal`, `${file}-shm`]) {
          try {
            if ((fs.statSync(f).mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
          } catch {
            // absent, or not ours to change
          }
        }
      } catch (err) {
        throw new StoreError(`callback store directory ${dir} is not writable: ${(err as Error).message}`, err);
      }
    }
    if (opts.readonly && file !== ':memory:' && !fs.existsSync(file)) {
      throw new StoreError(`callback store ${where} does not exist (has the service run yet?)`);
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
      // Another process holding the write lock (a CLI command, a backup) must not freeze the event loop:
      // writes wait at most this long (better-sqlite3 is synchronous), the opt-in even less (BUSY_OPT_IN_MS).
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('foreign_keys = ON');
      }
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`);
      if (!opts.readonly) {
        db.exec(SCHEMA);
        db.prepare('INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)').run('schema', SCHEMA_VERSION);
      }
      const schema = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined;
      if (schema && schema.value !== SCHEMA_VERSION) {
        throw new Error(`schema version ${schema.value}, this build understands ${SCHEMA_VERSION}`);
      }
    } catch (err) {
      db?.close();
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot open callback store ${where}: ${(err as Error).message}`, err);
    }
    return new SqliteStore<R>(db, where);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Non-terminal requests per state (metrics): one grouped query, cheap at 100k pending. */
  /** Agents who paused their callbacks (an `until` in the past has ended by itself; the policy ignores it). */
  pauses(): AgentPauseRow[] {
    const rows = this.db.prepare('SELECT agent, since, until_at, by_whom FROM agent_pauses ORDER BY agent').all() as {
      agent: string;
      since: number;
      until_at: number | null;
      by_whom: string;
    }[];
    return rows.map((r) => ({ agent: r.agent, since: r.since, until: r.until_at, by: r.by_whom }));
  }

  /** Pauses (row) or resumes (null) an agent's callbacks. */
  setPause(agent: string, pause: Omit<AgentPauseRow, 'agent'> | null): void {
    if (pause === null) {
      this.db.prepare('DELETE FROM agent_pauses WHERE agent = ?').run(agent);
      return;
    }
    this.db
      .prepare('INSERT INTO agent_pauses(agent, since, until_at, by_whom) VALUES (?, ?, ?, ?) ON CONFLICT(agent) DO UPDATE SET since = excluded.since, until_at = excluded.until_at, by_whom = excluded.by_whom')
      .run(agent, pause.since, pause.until, pause.by);
  }

  countByState(): Record<string, number> {
    const rows = this.db
      .prepare(`SELECT state, COUNT(*) AS n FROM requests WHERE state NOT IN (${TERMINAL_SQL}) GROUP BY state`)
      .all() as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /**
   * Readiness: the store is open and a write could start now (the file and its directory are writable
   * and the write lock can be taken). Nothing is written: the transaction is rolled back at once.
   */
  writable(): { ok: true } | { ok: false; reason: string } {
    if (!this.db.open) return { ok: false, reason: 'store closed' };
    if (this.db.readonly) return { ok: false, reason: 'store opened read-only' };
    try {
      if (!this.db.memory) {
        fs.accessSync(this.file, fs.constants.W_OK);
        fs.accessSync(path.dirname(this.file), fs.constants.W_OK);
      }
      this.db.exec('BEGIN IMMEDIATE');
      this.db.exec('ROLLBACK');
      return { ok: true };
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      return { ok: false, reason: (err as Error).message };
    }
  }

  private decode(row: Row): Versioned<R> {
    return { request: JSON.parse(row.data) as R, version: row.version };
  }

  get(id: string): Versioned<R> | undefined {
    const row = this.db.prepare('SELECT id, version, data FROM requests WHERE id = ?').get(id) as Row | undefined;
    return row ? this.decode(row) : undefined;
  }

  /** The pending (non-terminal) request of this agent for this prospect, if any. */
  findPending(agent: string, prospect: string): Versioned<R> | undefined {
    const row = this.db
      .prepare(`SELECT id, version, data FROM requests WHERE agent = ? AND prospect = ? AND state NOT IN (${TERMINAL_SQL})`)
      .get(agent, prospect) as Row | undefined;
    return row ? this.decode(row) : undefined;
  }

  /**
   * The queue for a prospect number: its non-terminal requests in opt-in order (created_at, then insertion), with their
   * agents and states. Agents are served in this order, one recall at a time.
   */
  prospectQueue(prospect: string): { id: string; samePbx: boolean; agent: string; state: string; createdAt: number }[] {
    const rows = this.db
      .prepare(
        `SELECT id, agent, state, created_at AS createdAt FROM requests WHERE prospect = ? AND state NOT IN (${TERMINAL_SQL})
         ORDER BY created_at, rowid`,
      )
      .all(prospect) as { id: string; agent: string; state: string; createdAt: number }[];
    // One PBX per SQLite store.
    return rows.map((r) => ({ ...r, samePbx: true }));
  }

  /**
   * The latest recall of another agent that reached this prospect (COMPLETED): when it connected, and when the
   * conversation ended (its 'conversation-ended' event), or null while it may still go on. Null if none.
   */
  lastConversation(prospect: string, exceptAgent: string): { connectedAt: number; endedAt: number | null; samePbx: boolean } | null {
    const row = this.db
      .prepare(
        `SELECT r.updated_at AS connectedAt,
           (SELECT MAX(e.at) FROM events e WHERE e.request_id = r.id AND e.type = 'conversation-ended') AS endedAt
         FROM requests r WHERE r.prospect = ? AND r.state = 'COMPLETED' AND r.agent <> ? ORDER BY r.updated_at DESC LIMIT 1`,
      )
      .get(prospect, exceptAgent) as { connectedAt: number; endedAt: number | null } | undefined;
    // One SQLite file serves one PBX.
    return row ? { ...row, samePbx: true } : null;
  }

  /** Appends history to a request without changing it (facts the policy does not decide, e.g. 'conversation-ended'). */
  appendEvents(events: readonly StoredEvent[]): void {
    this.db.transaction(() => this.insertEvents(events)).immediate();
  }

  countPending(agent: string): number {
    const row = this.db
      .prepare(`SELECT COUNT(*) AS n FROM requests WHERE agent = ? AND state NOT IN (${TERMINAL_SQL})`)
      .get(agent) as { n: number };
    return row.n;
  }

  list(filter: { agent?: string; states?: readonly string[]; limit?: number } = {}): R[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.agent) {
      where.push('agent = ?');
      params.push(filter.agent);
    }
    if (filter.states && filter.states.length > 0) {
      where.push(`state IN (${filter.states.map(() => '?').join(',')})`);
      params.push(...filter.states);
    }
    const sql = `SELECT id, version, data FROM requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at, id ${filter.limit ? 'LIMIT ?' : ''}`;
    if (filter.limit) params.push(filter.limit);
    return (this.db.prepare(sql).all(...params) as Row[]).map((r) => this.decode(r).request);
  }

  /**
   * What the pending requests depend on, without loading them: their agents, and the prospects of
   * those that watch a line (`mode` = 'device' in the request JSON). Cheap at 100k pending.
   */
  pendingDependencies(): { agents: string[]; lineProspects: string[]; count: number } {
    const agents = (this.db.prepare(`SELECT DISTINCT agent FROM requests WHERE state NOT IN (${TERMINAL_SQL})`).all() as { agent: string }[]).map((r) => r.agent);
    const lineProspects = (
      this.db
        .prepare(`SELECT DISTINCT prospect FROM requests WHERE state NOT IN (${TERMINAL_SQL}) AND json_extract(data, '$.mode') = 'device'`)
        .all() as { prospect: string }[]
    ).map((r) => r.prospect);
    const count = (this.db.prepare(`SELECT COUNT(*) AS n FROM requests WHERE state NOT IN (${TERMINAL_SQL})`).get() as { n: number }).n;
    return { agents, lineProspects, count };
  }

  /** Ids of pending requests for these prospects that watch the prospect's line. */
  pendingLineWatchers(prospects: readonly string[]): string[] {
    if (prospects.length === 0) return [];
    const rows = this.db
      .prepare(
        `SELECT id FROM requests WHERE prospect IN (${prospects.map(() => '?').join(',')})
         AND state NOT IN (${TERMINAL_SQL}) AND json_extract(data, '$.mode') = 'device' ORDER BY created_at, id`,
      )
      .all(...prospects) as { id: string }[];
    return rows.map((r) => r.id);
  }

  /** Ids of requests in `state`, optionally of one agent. */
  idsInState(state: string, agent?: string): string[] {
    const rows = (
      agent
        ? this.db.prepare('SELECT id FROM requests WHERE state = ? AND agent = ? ORDER BY wake_at').all(state, agent)
        : this.db.prepare('SELECT id FROM requests WHERE state = ? ORDER BY wake_at').all(state)
    ) as { id: string }[];
    return rows.map((r) => r.id);
  }

  /** Non-terminal requests with their versions, for the scheduler's reload at start. */
  pending(): Versioned<R>[] {
    const rows = this.db
      .prepare(`SELECT id, version, data FROM requests WHERE state NOT IN (${TERMINAL_SQL}) ORDER BY wake_at`)
      .all() as Row[];
    return rows.map((r) => this.decode(r));
  }

  /** The earliest wake-up among pending requests. */
  nextWake(): number | null {
    const row = this.db
      .prepare(`SELECT MIN(wake_at) AS w FROM requests WHERE wake_at IS NOT NULL AND state NOT IN (${TERMINAL_SQL})`)
      .get() as { w: number | null };
    return row.w;
  }

  /** Pending requests whose wake-up time has come, earliest first. */
  due(now: number, limit = 100): Versioned<R>[] {
    const rows = this.db
      .prepare(
        `SELECT id, version, data FROM requests WHERE wake_at IS NOT NULL AND wake_at <= ? AND state NOT IN (${TERMINAL_SQL})
         ORDER BY wake_at LIMIT ?`,
      )
      .all(now, limit) as Row[];
    return rows.map((r) => this.decode(r));
  }

  events(requestId: string): StoredEvent[] {
    const rows = this.db
      .prepare('SELECT id, request_id, at, type, from_state, to_state, reason, data FROM events WHERE request_id = ? ORDER BY id')
      .all(requestId) as {
      id: number;
      request_id: string;
      at: number;
      type: string;
      from_state: string | null;
      to_state: string | null;
      reason: string | null;
      data: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id,
      requestId: r.request_id,
      at: r.at,
      type: r.type,
      from: r.from_state,
      to: r.to_state,
      reason: r.reason,
      data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null,
    }));
  }

  private insertEvents(events: readonly StoredEvent[]): void {
    const stmt = this.db.prepare(
      'INSERT INTO events(request_id, at, type, from_state, to_state, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    for (const e of events) {
      stmt.run(e.requestId, e.at, e.type, e.from ?? null, e.to ?? null, e.reason ?? null, e.data ? JSON.stringify(e.data) : null);
    }
  }

  /**
   * The opt-in write: creates a request, or refreshes the pending one of the same agent and prospect,
   * or refuses because the agent has `maxPending` requests already. One transaction.
   */
  createOrRefresh(
    agent: string,
    prospect: string,
    maxPending: number,
    create: () => RequestWrite<R>,
    refresh: (existing: R) => RequestWrite<R>,
    /** Pending requests over all agents (offer.maxPendingTotal); a new one beyond it is 'full'. */
    maxPendingTotal?: number,
  ): CreateResult<R> {
    const tx = this.db.transaction((): CreateResult<R> => {
      const existing = this.findPending(agent, prospect);
      if (existing) {
        const next = refresh(existing.request);
        this.writeRequest(next.request, existing.version);
        this.insertEvents(next.events);
        this.insertOutbox(next.outbox ?? []);
        return { result: 'refreshed', request: next.request, previous: existing.request };
      }
      const pending = this.countPending(agent);
      if (pending >= maxPending) return { result: 'full', pending };
      if (maxPendingTotal !== undefined) {
        const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM requests WHERE state NOT IN (${TERMINAL_SQL})`).get() as { n: number }).n;
        if (total >= maxPendingTotal) return { result: 'full', pending: total };
      }
      const made = create();
      this.db
        .prepare(
          `INSERT INTO requests(id, agent, prospect, state, created_at, updated_at, wake_at, version, data)
           VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`,
        )
        .run(
          made.request.id,
          made.request.agent,
          made.request.prospect,
          made.request.state,
          made.request.createdAt,
          made.request.updatedAt,
          made.request.wakeAt,
          JSON.stringify(made.request),
        );
      this.insertEvents(made.events);
      this.insertOutbox(made.outbox ?? []);
      return { result: 'created', request: made.request };
    });
    // Fails fast (SQLITE_BUSY → StoreError) while another process holds the write lock.
    this.db.pragma(`busy_timeout = ${BUSY_OPT_IN_MS}`);
    try {
      return tx.immediate();
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
        throw new StoreError(`callback store ${this.file} is locked by another process (${code}); the opt-in was not stored`, err);
      }
      throw err;
    } finally {
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  /**
   * Deletes finished requests (and their history) last changed before `before`, and webhook events sent
   * before it. Given-up webhook events stay (see `webhook list`). Returns what was deleted.
   */
  prune(before: number, opts: { dryRun?: boolean } = {}): { requests: number; events: number; outbox: number } {
    const finished = `SELECT id FROM requests WHERE state IN (${TERMINAL_SQL}) AND updated_at < ?`;
    const count = (sql: string) => (this.db.prepare(sql).get(before) as { n: number }).n;
    const plan = {
      requests: count(`SELECT COUNT(*) AS n FROM requests WHERE state IN (${TERMINAL_SQL}) AND updated_at < ?`),
      events: count(`SELECT COUNT(*) AS n FROM events WHERE request_id IN (${finished})`),
      outbox: count('SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?'),
    };
    if (opts.dryRun) return plan;
    return this.db.transaction(() => {
      const events = this.db.prepare(`DELETE FROM events WHERE request_id IN (${finished})`).run(before).changes;
      const requests = this.db.prepare(`DELETE FROM requests WHERE state IN (${TERMINAL_SQL}) AND updated_at < ?`).run(before).changes;
      const outbox = this.db.prepare('DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?').run(before).changes;
      return { requests, events, outbox };
    })();
  }

  private writeRequest(request: R, expectedVersion: number): boolean {
    const info = this.db
      .prepare(
        `UPDATE requests SET state = ?, updated_at = ?, wake_at = ?, data = ?, version = version + 1
         WHERE id = ? AND version = ?`,
      )
      .run(request.state, request.updatedAt, request.wakeAt, JSON.stringify(request), request.id, expectedVersion);
    return info.changes === 1;
  }

  /**
   * Applies a transition if nobody else has changed the request since `expectedVersion` was read.
   * Returns the new version, or `undefined` when the claim was lost (reload and decide again).
   */
  transition(request: R, expectedVersion: number, events: readonly StoredEvent[], outbox: readonly OutboxInsert[] = []): number | undefined {
    const tx = this.db.transaction((): number | undefined => {
      if (!this.writeRequest(request, expectedVersion)) return undefined;
      this.insertEvents(events);
      this.insertOutbox(outbox);
      return expectedVersion + 1;
    });
    try {
      return tx.immediate();
    } catch (err) {
      // A second recall for the same prospect number (requests_one_recall_per_prospect): the claim is lost, as
      // with a stale version; the caller re-reads and decides again (and then sees the colleague's recall).
      if (isOneRecallConflict(err)) {
        this.recallConflicts++;
        return undefined;
      }
      throw err;
    }
  }

  /** Transitions refused because the prospect number already had a recall in progress (diagnostics, tests). */
  recallConflicts = 0;

  // ------------------------------------------------------------------ outbox (CRM webhook)

  private insertOutbox(rows: readonly OutboxInsert[]): void {
    if (rows.length === 0) return;
    const stmt = this.db.prepare(
      'INSERT OR IGNORE INTO outbox(key, request_id, event, created_at, body, next_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    for (const r of rows) stmt.run(r.key, r.requestId, r.event, r.createdAt, r.body, r.createdAt);
  }

  /** Enqueues notifications outside a transition (tests, tools). Duplicate keys are ignored. */
  enqueueOutbox(rows: readonly OutboxInsert[]): void {
    this.db.transaction(() => this.insertOutbox(rows)).immediate();
  }

  /** Unsent, not given-up notifications due at `now`, oldest first. */
  outboxDue(now: number, limit = 50): OutboxRow[] {
    const rows = this.db
      .prepare('SELECT * FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?')
      .all(now, limit) as Record<string, unknown>[];
    return rows.map((r) => outboxRowFrom(r));
  }

  /** The earliest next attempt among unsent notifications, or null. */
  outboxNextAt(): number | null {
    const row = this.db.prepare('SELECT MIN(next_at) AS n FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL').get() as { n: number | null };
    return row.n;
  }

  /**
   * Claims a due notification for one attempt: pushes its next_at to `until` if nobody else has (a
   * second process on the same store, or a crash mid-send, retries after `until`). False if lost.
   */
  outboxClaim(id: number, seenNextAt: number, until: number): boolean {
    return (
      this.db.prepare('UPDATE outbox SET next_at = ? WHERE id = ? AND next_at = ? AND sent_at IS NULL AND failed_at IS NULL').run(until, id, seenNextAt)
        .changes === 1
    );
  }

  outboxSent(id: number, at: number): void {
    this.db.prepare('UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?').run(at, id);
  }

  /** A failed attempt: retry at `nextAt`, or give up (`nextAt` null). */
  outboxFailed(id: number, error: string, nextAt: number | null, at: number): void {
    if (nextAt === null) {
      this.db.prepare('UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed_at = ? WHERE id = ?').run(error, at, id);
    } else {
      this.db.prepare('UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?').run(error, nextAt, id);
    }
  }

  /** Every outbox row, oldest first (for tests and diagnostics). */
  outbox(): OutboxRow[] {
    return (this.db.prepare('SELECT * FROM outbox ORDER BY id').all() as Record<string, unknown>[]).map((r) => outboxRowFrom(r));
  }

  /** Webhook events that were given up on (retries exhausted), oldest first. */
  outboxGivenUp(): OutboxRow[] {
    return (this.db.prepare('SELECT * FROM outbox WHERE failed_at IS NOT NULL AND sent_at IS NULL ORDER BY id').all() as Record<string, unknown>[]).map((r) =>
      outboxRowFrom(r),
    );
  }

  /**
   * Puts given-up webhook events back in the queue, due at `now` with a fresh retry budget: the ones with
   * these ids, or all of them. Returns the ids re-queued.
   */
  outboxRetry(ids: readonly number[] | 'all', now: number): number[] {
    const rows = this.outboxGivenUp().filter((r) => ids === 'all' || ids.includes(r.id));
    const update = this.db.prepare('UPDATE outbox SET failed_at = NULL, attempts = 0, next_at = ? WHERE id = ? AND failed_at IS NOT NULL AND sent_at IS NULL');
    this.db.transaction(() => rows.forEach((r) => update.run(now, r.id)))();
    return rows.map((r) => r.id);
  }
}
