/**
 * The durable store in PostgreSQL (node-postgres), for several instances and several PBXs sharing one
 * database. Same contract as the SQLite store (src/store/contract.ts), plus:
 *
 *  - Every request belongs to a PBX (`pbx`, the config's `pbx.id`). A store opened for a PBX reads that
 *    PBX's pending work (due, pending, watchers…); `allPbx` (the command line) sees every PBX.
 *  - Fencing: `setFence({ app, holder, epoch })` makes every write of this client declare the lease it
 *    holds; the database (trigger `cc_fence`, migration 2) refuses the write when that lease is no longer
 *    current and the store throws `FencedError`. See src/coordination/lease.ts.
 *  - Outbox claims with `FOR UPDATE SKIP LOCKED`: several senders drain one outbox, each row once.
 *
 * Schema migrations (src/store/migrations/postgres.ts) run at `open`.
 */
import pg from 'pg';
import { FencedError, LastConversation, ListFilter, PendingDependencies, ProspectQueueEntry, PruneResult, Store, StoreError } from './contract';
import { LATEST_VERSION, MIGRATIONS } from './migrations/postgres';
import { TERMINAL_STATES, outboxRowFrom } from './sqlite';
import type { AgentPauseRow, CreateResult, OutboxInsert, OutboxRow, RequestRecord, RequestWrite, StoredEvent, Versioned } from './sqlite';

const TERMINAL_SQL = `(${TERMINAL_STATES.map((s) => `'${s}'`).join(',')})`;

/**
 * The opt-in's transaction waits at most this long for a lock another writer holds (lock_timeout), and
 * its statements at most OPT_IN_STATEMENT_TIMEOUT_MS (statement_timeout); then it fails with a StoreError
 * and the caller hears the error prompt. node-postgres never blocks the event loop, so other calls go on
 * meanwhile either way; the limit keeps this caller from waiting for minutes.
 */
export const OPT_IN_LOCK_TIMEOUT_MS = 1000;
export const OPT_IN_STATEMENT_TIMEOUT_MS = 5000;
/**
 * Every other statement of a session: a lock held elsewhere (an admin's open transaction, a maintenance
 * job) makes a read or write fail after QUERY_LOCK_TIMEOUT_MS with a StoreError the caller logs and retries,
 * instead of a tick that waits forever; a statement runs at most QUERY_STATEMENT_TIMEOUT_MS; and a session
 * left idle inside a transaction (a paused or partitioned instance) loses it, and its locks, after
 * IDLE_IN_TRANSACTION_TIMEOUT_MS. Migrations lift the first two (they may wait for another instance's).
 */
export const QUERY_LOCK_TIMEOUT_MS = 5000;
export const QUERY_STATEMENT_TIMEOUT_MS = 60_000;
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

/** BIGINT and COUNT(*) as JS numbers (our values are milliseconds and counts, far below 2^53). */
const TYPES = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export interface PgStoreOptions {
  /** The PBX this instance serves and writes new requests for (config `pbx.id`). Default 'default'. */
  pbx?: string;
  /** Read every PBX's requests (the command line, the web page). Default: only `pbx`'s. */
  allPbx?: boolean;
  /** Connections in the pool. Default 4. */
  poolSize?: number;
  /** Run migrations (default true); false refuses a database that is not at this build's version. */
  migrate?: boolean;
  /** Called with errors of idle pooled connections (a restarted server); they are never thrown. */
  onIdleError?: (err: Error) => void;
}

export interface Fence {
  app: string;
  holder: string;
  epoch: number;
}

interface Row {
  id: string;
  version: number;
  data: unknown;
}

/** The URL without its password, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export function isPostgresUrl(url: string | undefined): url is string {
  return typeof url === 'string' && /^postgres(ql)?:\/\//i.test(url);
}

export class PgStore<R extends RequestRecord> implements Store<R> {
  readonly kind = 'postgres' as const;
  private fenceValue: Fence | undefined;
  /** Transitions refused because the prospect number already had a recall in progress. */
  recallConflicts = 0;

  private constructor(
    private readonly pool: pg.Pool,
    readonly where: string,
    readonly pbx: string,
    private readonly allPbx: boolean,
  ) {}

  /** Connects, migrates (under an advisory lock) and checks the schema version. Failures are StoreErrors. */
  static async open<R extends RequestRecord>(url: string, opts: PgStoreOptions = {}): Promise<PgStore<R>> {
    const store = PgStore.lazy<R>(url, opts);
    try {
      await store.prepare();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /**
   * The store without touching the database yet (the pool connects on first use): the service is built at once and
   * waits for the database with {@link prepare} (src/service.ts), instead of exiting while it is down.
   */
  static lazy<R extends RequestRecord>(url: string, opts: PgStoreOptions = {}): PgStore<R> {
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.poolSize ?? 4,
      types: TYPES,
      connectionTimeoutMillis: 10_000,
      lock_timeout: QUERY_LOCK_TIMEOUT_MS,
      statement_timeout: QUERY_STATEMENT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    });
    pool.on('error', (err) => opts.onIdleError?.(err));
    const store = new PgStore<R>(pool, redactUrl(url), opts.pbx ?? 'default', opts.allPbx ?? false);
    store.migrateOnPrepare = opts.migrate ?? true;
    return store;
  }

  private migrateOnPrepare = true;
  /** True once {@link prepare} succeeded: the schema is at this build's version. */
  prepared = false;

  /** Connects, migrates (under an advisory lock) and checks the schema version; a StoreError when it cannot. */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    try {
      await PgStore.migrate(this.pool, this.migrateOnPrepare);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot open callback store ${this.where}: ${(err as Error).message}`, err);
    }
    this.prepared = true;
  }

  private static async migrate(pool: pg.Pool, apply: boolean): Promise<void> {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query("SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)");
      // One migrating instance at a time (the key is arbitrary but fixed: "cc-mig").
      await c.query('SELECT pg_advisory_xact_lock(4242424201)');
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
      );
      const applied = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      const newest = Math.max(0, ...applied);
      if (newest > LATEST_VERSION) {
        throw new StoreError(`schema version ${newest}, this build understands up to ${LATEST_VERSION} (upgrade this instance)`);
      }
      const missing = MIGRATIONS.filter((m) => !applied.has(m.version));
      if (missing.length > 0 && !apply) throw new StoreError(`schema is at version ${newest}, this build needs ${LATEST_VERSION} (start the service once to migrate)`);
      for (const m of missing) {
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations(version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /** Applied migrations, oldest first. */
  async migrations(): Promise<{ version: number; name: string }[]> {
    return (await this.pool.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')).rows;
  }

  /** Declares the lease this client writes under (or none). Every later write is fenced by it. */
  setFence(fence: Fence | undefined): void {
    this.fenceValue = fence ? { ...fence } : undefined;
  }

  get fence(): Fence | undefined {
    return this.fenceValue;
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  /** For the coordination module (leases) and tests: one query on the pool. */
  query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
    return this.pool.query<T>(sql, params);
  }

  private translate(err: unknown, fence: Fence | undefined): unknown {
    const e = err as { code?: string; message?: string };
    if (e?.code === 'CCF01') {
      const f = fence ?? { app: '', holder: '', epoch: 0 };
      return new FencedError(`write refused: ${e.message ?? 'stale lease epoch'}`, { pbx: this.pbx, ...f });
    }
    if (err instanceof StoreError) return err;
    return new StoreError(`callback store ${this.where}: ${(err as Error)?.message ?? String(err)}`, err);
  }

  /** One transaction, with this client's fence declared. Errors become StoreError / FencedError. */
  private async tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const fence = this.fenceValue;
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw this.translate(err, fence);
    }
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      if (fence) {
        await c.query("SELECT set_config('cc.app', $1, true), set_config('cc.holder', $2, true), set_config('cc.epoch', $3, true)", [
          fence.app,
          fence.holder,
          String(fence.epoch),
        ]);
      }
      const result = await f(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch((e: Error) => {
        broken = e;
      });
      throw this.translate(err, fence);
    } finally {
      c.release(broken);
    }
  }

  private async read<T extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<T[]> {
    try {
      return (await this.pool.query<T>(sql, params)).rows;
    } catch (err) {
      throw this.translate(err, undefined);
    }
  }

  private decode(row: Row): Versioned<R> {
    return { request: row.data as R, version: row.version };
  }

  /** `AND pbx = $n` when this store reads one PBX; pushes the parameter. */
  private scope(params: unknown[]): string {
    if (this.allPbx) return '';
    params.push(this.pbx);
    return ` AND pbx = $${params.length}`;
  }

  async get(id: string): Promise<Versioned<R> | undefined> {
    const rows = await this.read<Row>('SELECT id, version, data FROM requests WHERE id = $1', [id]);
    return rows[0] ? this.decode(rows[0]) : undefined;
  }

  async findPending(agent: string, prospect: string): Promise<Versioned<R> | undefined> {
    const params: unknown[] = [agent, prospect];
    const rows = await this.read<Row>(
      `SELECT id, version, data FROM requests WHERE agent = $1 AND prospect = $2 AND state NOT IN ${TERMINAL_SQL}${this.scope(params)}`,
      params,
    );
    return rows[0] ? this.decode(rows[0]) : undefined;
  }

  async countPending(agent: string): Promise<number> {
    const params: unknown[] = [agent];
    const rows = await this.read<{ n: number }>(`SELECT COUNT(*) AS n FROM requests WHERE agent = $1 AND state NOT IN ${TERMINAL_SQL}${this.scope(params)}`, params);
    return rows[0].n;
  }

  async list(filter: ListFilter = {}): Promise<R[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.agent) {
      params.push(filter.agent);
      where.push(`agent = $${params.length}`);
    }
    if (filter.states && filter.states.length > 0) {
      params.push([...filter.states]);
      where.push(`state = ANY($${params.length})`);
    }
    if (filter.pbx) {
      params.push(filter.pbx);
      where.push(`pbx = $${params.length}`);
    } else if (!this.allPbx) {
      params.push(this.pbx);
      where.push(`pbx = $${params.length}`);
    }
    let limit = '';
    if (filter.limit) {
      params.push(filter.limit);
      limit = ` LIMIT $${params.length}`;
    }
    const rows = await this.read<Row>(
      `SELECT id, version, data FROM requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, seq${limit}`,
      params,
    );
    return rows.map((r) => this.decode(r).request);
  }

  async pendingDependencies(): Promise<PendingDependencies> {
    const p1: unknown[] = [];
    const s1 = this.scope(p1);
    const agents = (await this.read<{ agent: string }>(`SELECT DISTINCT agent FROM requests WHERE state NOT IN ${TERMINAL_SQL}${s1}`, p1)).map((r) => r.agent);
    const lineProspects = (
      await this.read<{ prospect: string }>(`SELECT DISTINCT prospect FROM requests WHERE state NOT IN ${TERMINAL_SQL} AND data->>'mode' = 'device'${s1}`, p1)
    ).map((r) => r.prospect);
    const count = (await this.read<{ n: number }>(`SELECT COUNT(*) AS n FROM requests WHERE state NOT IN ${TERMINAL_SQL}${s1}`, p1))[0].n;
    return { agents, lineProspects, count };
  }

  async pendingLineWatchers(prospects: readonly string[]): Promise<string[]> {
    if (prospects.length === 0) return [];
    const params: unknown[] = [[...prospects]];
    const rows = await this.read<{ id: string }>(
      `SELECT id FROM requests WHERE prospect = ANY($1) AND state NOT IN ${TERMINAL_SQL} AND data->>'mode' = 'device'${this.scope(params)}
       ORDER BY created_at, seq`,
      params,
    );
    return rows.map((r) => r.id);
  }

  async idsInState(state: string, agent?: string): Promise<string[]> {
    const params: unknown[] = [state];
    let sql = 'SELECT id FROM requests WHERE state = $1';
    if (agent) {
      params.push(agent);
      sql += ' AND agent = $2';
    }
    sql += `${this.scope(params)} ORDER BY wake_at NULLS LAST, seq`;
    return (await this.read<{ id: string }>(sql, params)).map((r) => r.id);
  }

  async pending(): Promise<Versioned<R>[]> {
    const params: unknown[] = [];
    const rows = await this.read<Row>(
      `SELECT id, version, data FROM requests WHERE state NOT IN ${TERMINAL_SQL}${this.scope(params)} ORDER BY wake_at NULLS LAST, seq`,
      params,
    );
    return rows.map((r) => this.decode(r));
  }

  async nextWake(): Promise<number | null> {
    const params: unknown[] = [];
    const rows = await this.read<{ w: number | null }>(
      `SELECT MIN(wake_at) AS w FROM requests WHERE wake_at IS NOT NULL AND state NOT IN ${TERMINAL_SQL}${this.scope(params)}`,
      params,
    );
    return rows[0].w;
  }

  async due(now: number, limit = 100): Promise<Versioned<R>[]> {
    const params: unknown[] = [now];
    const s = this.scope(params);
    params.push(limit);
    const rows = await this.read<Row>(
      `SELECT id, version, data FROM requests WHERE wake_at IS NOT NULL AND wake_at <= $1 AND state NOT IN ${TERMINAL_SQL}${s}
       ORDER BY wake_at, seq LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => this.decode(r));
  }

  async events(requestId: string): Promise<StoredEvent[]> {
    const rows = await this.read<{
      id: number;
      request_id: string;
      at: number;
      type: string;
      from_state: string | null;
      to_state: string | null;
      reason: string | null;
      data: Record<string, unknown> | null;
    }>('SELECT id, request_id, at, type, from_state, to_state, reason, data FROM events WHERE request_id = $1 ORDER BY id', [requestId]);
    return rows.map((r) => ({
      id: r.id,
      requestId: r.request_id,
      at: r.at,
      type: r.type,
      from: r.from_state,
      to: r.to_state,
      reason: r.reason,
      data: r.data,
    }));
  }

  /**
   * The queue for a prospect number, across PBXs (one person): its non-terminal requests in opt-in order.
   */
  async prospectQueue(prospect: string): Promise<ProspectQueueEntry[]> {
    return this.read<ProspectQueueEntry>(
      `SELECT id, pbx = $2 AS "samePbx", agent, state, created_at AS "createdAt" FROM requests WHERE prospect = $1 AND state NOT IN ${TERMINAL_SQL} ORDER BY created_at, seq`,
      [prospect, this.pbx],
    );
  }

  /** The latest recall of another agent that reached this prospect (COMPLETED), on any PBX; see the contract. */
  async lastConversation(prospect: string, exceptAgent: string): Promise<LastConversation | null> {
    const rows = await this.read<LastConversation>(
      `SELECT r.updated_at AS "connectedAt",
         (SELECT MAX(e.at) FROM events e WHERE e.request_id = r.id AND e.type = 'conversation-ended') AS "endedAt",
         r.pbx = $3 AS "samePbx"
       FROM requests r WHERE r.prospect = $1 AND r.state = 'COMPLETED' AND r.agent <> $2 ORDER BY r.updated_at DESC LIMIT 1`,
      [prospect, exceptAgent, this.pbx],
    );
    return rows[0] ?? null;
  }

  /** Appends history to a request without changing it (facts the policy does not decide). */
  async appendEvents(events: readonly StoredEvent[]): Promise<void> {
    await this.tx((c) => PgStore.insertEvents(c, events));
  }

  async pauses(): Promise<AgentPauseRow[]> {
    const params: unknown[] = [];
    const rows = await this.read<{ agent: string; since: string; until_at: string | null; by_whom: string }>(
      `SELECT agent, since, until_at, by_whom FROM agent_pauses WHERE TRUE${this.scope(params)} ORDER BY agent`,
      params,
    );
    return rows.map((r) => ({ agent: r.agent, since: Number(r.since), until: r.until_at === null ? null : Number(r.until_at), by: r.by_whom }));
  }

  async setPause(agent: string, pause: Omit<AgentPauseRow, 'agent'> | null): Promise<void> {
    if (pause === null) {
      await this.tx((c) => c.query('DELETE FROM agent_pauses WHERE pbx = $1 AND agent = $2', [this.pbx, agent]));
      return;
    }
    await this.tx((c) =>
      c.query(
        `INSERT INTO agent_pauses(pbx, agent, since, until_at, by_whom) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (pbx, agent) DO UPDATE SET since = EXCLUDED.since, until_at = EXCLUDED.until_at, by_whom = EXCLUDED.by_whom`,
        [this.pbx, agent, pause.since, pause.until, pause.by],
      ),
    );
  }

  async countByState(): Promise<Record<string, number>> {
    const params: unknown[] = [];
    const rows = await this.read<{ state: string; n: number }>(
      `SELECT state, COUNT(*) AS n FROM requests WHERE state NOT IN ${TERMINAL_SQL}${this.scope(params)} GROUP BY state`,
      params,
    );
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /** Readiness: the server answers and this session may write (not a read-only standby replica). */
  async writable(): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const rows = await this.read<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro", []);
      return rows[0].ro === 'off' ? { ok: true } : { ok: false, reason: 'the PostgreSQL server is read-only (a standby replica?)' };
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
  }

  private static async insertEvents(c: pg.PoolClient, events: readonly StoredEvent[]): Promise<void> {
    for (const e of events) {
      await c.query('INSERT INTO events(request_id, at, type, from_state, to_state, reason, data) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        e.requestId,
        e.at,
        e.type,
        e.from ?? null,
        e.to ?? null,
        e.reason ?? null,
        e.data ? JSON.stringify(e.data) : null,
      ]);
    }
  }

  private static async insertOutbox(c: pg.PoolClient, rows: readonly OutboxInsert[]): Promise<void> {
    for (const r of rows) {
      await c.query(
        'INSERT INTO outbox(key, request_id, event, created_at, body, next_at) VALUES ($1, $2, $3, $4, $5, $4) ON CONFLICT (key) DO NOTHING',
        [r.key, r.requestId, r.event, r.createdAt, r.body],
      );
    }
  }

  private static async writeRequest(c: pg.PoolClient, request: RequestRecord, expectedVersion: number): Promise<boolean> {
    const res = await c.query(
      'UPDATE requests SET state = $1, updated_at = $2, wake_at = $3, data = $4, version = version + 1 WHERE id = $5 AND version = $6',
      [request.state, request.updatedAt, request.wakeAt, JSON.stringify(request), request.id, expectedVersion],
    );
    return res.rowCount === 1;
  }

  async createOrRefresh(
    agent: string,
    prospect: string,
    maxPending: number,
    create: () => RequestWrite<R>,
    refresh: (existing: R) => RequestWrite<R>,
    maxPendingTotal?: number,
  ): Promise<CreateResult<R>> {
    return this.tx(async (c) => {
      await c.query("SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)", [
        String(OPT_IN_LOCK_TIMEOUT_MS),
        String(OPT_IN_STATEMENT_TIMEOUT_MS),
      ]);
      // With a total cap, one opt-in per PBX at a time (taken before the agent's lock: one order, no deadlock).
      if (maxPendingTotal !== undefined) await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cc-optin-total:${this.pbx}`]);
      // One opt-in per (PBX, agent) at a time across instances: the cap and the one-pending rule hold.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cc-optin:${this.pbx}:${agent}`]);
      const found = await c.query<Row>(
        `SELECT id, version, data FROM requests WHERE pbx = $1 AND agent = $2 AND prospect = $3 AND state NOT IN ${TERMINAL_SQL} FOR UPDATE`,
        [this.pbx, agent, prospect],
      );
      if (found.rows[0]) {
        const existing = this.decode(found.rows[0]);
        const next = refresh(existing.request);
        if (!(await PgStore.writeRequest(c, next.request, existing.version))) throw new StoreError('pending request changed while locked');
        await PgStore.insertEvents(c, next.events);
        await PgStore.insertOutbox(c, next.outbox ?? []);
        return { result: 'refreshed', request: next.request, previous: existing.request };
      }
      const pending = (
        await c.query<{ n: number }>(`SELECT COUNT(*) AS n FROM requests WHERE pbx = $1 AND agent = $2 AND state NOT IN ${TERMINAL_SQL}`, [this.pbx, agent])
      ).rows[0].n;
      if (pending >= maxPending) return { result: 'full', pending };
      if (maxPendingTotal !== undefined) {
        const total = (await c.query<{ n: number }>(`SELECT COUNT(*) AS n FROM requests WHERE pbx = $1 AND state NOT IN ${TERMINAL_SQL}`, [this.pbx])).rows[0].n;
        if (total >= maxPendingTotal) return { result: 'full', pending: total };
      }
      const made = create();
      const r = made.request;
      await c.query(
        `INSERT INTO requests(id, pbx, agent, prospect, state, created_at, updated_at, wake_at, version, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)`,
        [r.id, this.pbx, r.agent, r.prospect, r.state, r.createdAt, r.updatedAt, r.wakeAt, JSON.stringify(r)],
      );
      await PgStore.insertEvents(c, made.events);
      await PgStore.insertOutbox(c, made.outbox ?? []);
      return { result: 'created', request: r };
    });
  }

  async transition(request: R, expectedVersion: number, events: readonly StoredEvent[], outbox: readonly OutboxInsert[] = []): Promise<number | undefined> {
    try {
      return await this.tx(async (c) => {
        if (!(await PgStore.writeRequest(c, request, expectedVersion))) return undefined;
        await PgStore.insertEvents(c, events);
        await PgStore.insertOutbox(c, outbox);
        return expectedVersion + 1;
      });
    } catch (err) {
      const cause = (err as StoreError).cause as { code?: string; constraint?: string } | undefined;
      if (cause?.code === '23505' && cause.constraint === 'requests_one_recall_per_prospect') {
        // A second recall for the same prospect number: the claim is lost, as with a stale version.
        this.recallConflicts++;
        return undefined;
      }
      throw err;
    }
  }

  // ------------------------------------------------------------------ outbox (CRM webhook)

  async enqueueOutbox(rows: readonly OutboxInsert[]): Promise<void> {
    await this.tx((c) => PgStore.insertOutbox(c, rows));
  }

  async outboxDue(now: number, limit = 50): Promise<OutboxRow[]> {
    const rows = await this.read<Record<string, unknown>>(
      'SELECT * FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= $1 ORDER BY next_at, id LIMIT $2',
      [now, limit],
    );
    return rows.map((r) => outboxRowFrom(r));
  }

  async outboxNextAt(): Promise<number | null> {
    return (await this.read<{ n: number | null }>('SELECT MIN(next_at) AS n FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL', []))[0].n;
  }

  async outboxClaim(id: number, seenNextAt: number, until: number): Promise<boolean> {
    const rows = await this.read(
      'UPDATE outbox SET next_at = $1 WHERE id = $2 AND next_at = $3 AND sent_at IS NULL AND failed_at IS NULL RETURNING id',
      [until, id, seenNextAt],
    );
    return rows.length === 1;
  }

  async outboxClaimDue(now: number, until: number, limit = 20): Promise<OutboxRow[]> {
    const rows = await this.read<Record<string, unknown>>(
      `UPDATE outbox SET next_at = $2 WHERE id IN (
         SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= $1
         ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [now, until, limit],
    );
    return rows.map((r) => outboxRowFrom(r)).sort((a, b) => a.id - b.id);
  }

  async outboxSent(id: number, at: number): Promise<void> {
    await this.read('UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2', [at, id]);
  }

  async outboxFailed(id: number, error: string, nextAt: number | null, at: number): Promise<void> {
    if (nextAt === null) {
      await this.read('UPDATE outbox SET attempts = attempts + 1, last_error = $1, failed_at = $2 WHERE id = $3', [error, at, id]);
    } else {
      await this.read('UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_at = $2 WHERE id = $3', [error, nextAt, id]);
    }
  }

  async outbox(): Promise<OutboxRow[]> {
    return (await this.read<Record<string, unknown>>('SELECT * FROM outbox ORDER BY id', [])).map((r) => outboxRowFrom(r));
  }

  async outboxGivenUp(): Promise<OutboxRow[]> {
    return (await this.read<Record<string, unknown>>('SELECT * FROM outbox WHERE failed_at IS NOT NULL AND sent_at IS NULL ORDER BY id', [])).map((r) =>
      outboxRowFrom(r),
    );
  }

  async outboxRetry(ids: readonly number[] | 'all', now: number): Promise<number[]> {
    const all = ids === 'all';
    const rows = await this.read<{ id: number }>(
      `UPDATE outbox SET failed_at = NULL, attempts = 0, next_at = $1
       WHERE failed_at IS NOT NULL AND sent_at IS NULL AND ($2 OR id = ANY($3::BIGINT[])) RETURNING id`,
      [now, all, all ? [] : [...ids]],
    );
    return rows.map((r) => r.id).sort((a, b) => a - b);
  }

  // ------------------------------------------------------------------ retention

  async prune(before: number, opts: { dryRun?: boolean } = {}): Promise<PruneResult> {
    const params: unknown[] = [before];
    const finished = `SELECT id FROM requests WHERE state IN ${TERMINAL_SQL} AND updated_at < $1${this.scope(params)}`;
    if (opts.dryRun) {
      const [r] = await this.read<PruneResult>(
        `SELECT (SELECT COUNT(*) FROM (${finished}) f) AS requests,
                (SELECT COUNT(*) FROM events WHERE request_id IN (${finished})) AS events,
                (SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1) AS outbox`,
        params,
      );
      return r;
    }
    // Deleting finished rows is not fenced (the trigger guards inserts and updates): any instance may prune.
    return this.tx(async (c) => {
      const events = (await c.query(`DELETE FROM events WHERE request_id IN (${finished})`, params)).rowCount ?? 0;
      const requests = (await c.query(`DELETE FROM requests WHERE id IN (${finished})`, params)).rowCount ?? 0;
      const outbox = (await c.query('DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1', [before])).rowCount ?? 0;
      return { requests, events, outbox };
    });
  }
}

export { FencedError, StoreError };
