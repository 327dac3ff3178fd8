/**
 * The store, written once over the database port (src/store/db.ts): every algorithm of the contract
 * (src/store/contract.ts) for both databases. What differs between them is in the driver's dialect.
 *
 * A store opened for a PBX (PostgreSQL, `pbx`) writes new requests for it and reads only its pending work
 * (due, pending, watchers…) unless opened with `allPbx` (the command line); the prospect's queue and its
 * last conversation are read across PBXs (one person). A SQLite file serves one PBX: no `pbx` column.
 */
import { TERMINAL_STATES } from '../core/policy/types';
import {
  CreateResult,
  LastConversation,
  ListFilter,
  OutboxInsert,
  OutboxRow,
  PendingDependencies,
  ProspectPlace,
  ProspectQueueEntry,
  AgentPauseRow,
  PruneResult,
  RequestRecord,
  RequestWrite,
  Store,
  AtomicStoreError,
  StoreError,
  StoredEvent,
  Versioned,
} from './contract';
import { Db, Dialect, GroupTx, Queries, Statement, TxQueries } from './db';

const TERMINAL_SQL = `(${TERMINAL_STATES.map((s) => `'${s}'`).join(',')})`;
const PENDING = `state NOT IN ${TERMINAL_SQL}`;

interface Row {
  id: string;
  version: number;
  data: unknown;
}

interface EventRow {
  id: number;
  request_id: string;
  at: number;
  type: string;
  from_state: string | null;
  to_state: string | null;
  reason: string | null;
  data: unknown;
}

/** An outbox row as both databases return it (the same columns). */
function outboxRow(r: Record<string, unknown>): OutboxRow {
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

const isTerminal = (state: string) => (TERMINAL_STATES as readonly string[]).includes(state);

/** What `states` implies, as the partial indexes state it: pending, or finished; undefined: both kinds (or every state). */
function statesCondition(states: readonly string[] | undefined): string | undefined {
  if (!states || states.length === 0) return undefined;
  if (!states.some(isTerminal)) return PENDING;
  if (states.every(isTerminal)) return `state IN ${TERMINAL_SQL}`;
  return undefined;
}

const marks = (n: number) => Array.from({ length: n }, () => '?').join(',');

/** The statements of the new request's script (SqlStore.createOrRefresh on SQLite). */
interface OptInSql {
  insert: string;
  outcome: string;
}

export interface SqlScope {
  /** The PBX this store writes new requests for (PostgreSQL); undefined for a SQLite file. */
  pbx?: string;
  /** Read every PBX's requests (the command line, the page). */
  allPbx?: boolean;
}

export class SqlStore<R extends RequestRecord> implements Store<R> {
  readonly kind: 'sqlite' | 'postgres';
  /** Transitions refused because the prospect number already had a recall in progress (diagnostics, tests). */
  recallConflicts = 0;
  private readonly d: Dialect;

  constructor(
    protected readonly db: Db,
    private readonly scopeOf: SqlScope = {},
  ) {
    this.d = db.dialect;
    this.kind = db.dialect.name;
  }

  get where(): string {
    return this.db.where;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** Ready when opened; the PostgreSQL driver connects and migrates here (src/store/postgres.ts). */
  async prepare(): Promise<void> {}

  get prepared(): boolean {
    return true;
  }

  writable(): Promise<{ ok: true } | { ok: false; reason: string }> {
    return this.db.writable();
  }

  /** Group commit (src/store/group.ts): the engine's decisions staged in one transaction, committed together. */
  group(opts?: { quick?: boolean }): Promise<GroupTx> {
    return this.db.group(opts);
  }

  private decode(row: Row): Versioned<R> {
    return { request: this.d.fromJson(row.data) as R, version: row.version };
  }

  /** `AND pbx = ?` when this store reads one PBX; pushes the parameter. */
  private scope(params: unknown[]): string {
    if (this.scopeOf.pbx === undefined || this.scopeOf.allPbx) return '';
    params.push(this.scopeOf.pbx);
    return ' AND pbx = ?';
  }

  /** `AND pbx = ?` for the store's own PBX (the opt-in's caps), whatever it reads. */
  private own(params: unknown[]): string {
    if (this.scopeOf.pbx === undefined) return '';
    params.push(this.scopeOf.pbx);
    return ' AND pbx = ?';
  }

  async get(id: string): Promise<Versioned<R> | undefined> {
    const row = await this.db.one<Row>('SELECT id, version, data FROM requests WHERE id = ?', [id]);
    return row ? this.decode(row) : undefined;
  }

  async findPending(agent: string, prospect: string): Promise<Versioned<R> | undefined> {
    const params: unknown[] = [agent, prospect];
    const row = await this.db.one<Row>(`SELECT id, version, data FROM requests WHERE agent = ? AND prospect = ? AND ${PENDING}${this.scope(params)}`, params);
    return row ? this.decode(row) : undefined;
  }

  async countPending(agent: string): Promise<number> {
    const params: unknown[] = [agent];
    return (await this.db.one<{ n: number }>(`SELECT COUNT(*) AS n FROM requests WHERE agent = ? AND ${PENDING}${this.scope(params)}`, params))!.n;
  }

  async list(filter: ListFilter = {}): Promise<R[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.agent) {
      where.push('agent = ?');
      params.push(filter.agent);
    }
    if (filter.states && filter.states.length > 0) {
      where.push(`state IN (${marks(filter.states.length)})`);
      params.push(...filter.states);
    }
    if (filter.pbx && this.scopeOf.pbx !== undefined) {
      where.push('pbx = ?');
      params.push(filter.pbx);
    } else if (this.scopeOf.pbx !== undefined && !this.scopeOf.allPbx) {
      where.push('pbx = ?');
      params.push(this.scopeOf.pbx);
    }
    // An agent's requests: through the partial index that holds them, its condition named (SQLite's planner reads
    // through a partial index only when the statement's text implies its condition): requests_one_pending while
    // pending, requests_agent_done once finished (src/store/sqlite.ts); both, one after the other, when the states
    // asked for are of both kinds.
    const kind = statesCondition(filter.states);
    const limit = filter.limit ? ' LIMIT ?' : '';
    let rows: Row[];
    if (filter.agent && kind === undefined) {
      const part = (condition: string) => `SELECT id, version, data, created_at, ${this.d.seq} AS ord FROM requests WHERE ${[...where, condition].join(' AND ')}`;
      rows = await this.db.all<Row>(
        `SELECT id, version, data FROM (${part(PENDING)} UNION ALL ${part(`state IN ${TERMINAL_SQL}`)}) agent_requests ORDER BY created_at, ord${limit}`,
        [...params, ...params, ...(filter.limit ? [filter.limit] : [])],
      );
    } else {
      if (filter.agent && kind !== undefined) where.push(kind);
      if (filter.limit) params.push(filter.limit);
      rows = await this.db.all<Row>(`SELECT id, version, data FROM requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, ${this.d.seq}${limit}`, params);
    }
    return rows.map((r) => this.decode(r).request);
  }

  async pendingDependencies(): Promise<PendingDependencies> {
    const params: unknown[] = [];
    const s = this.scope(params);
    const agents = (await this.db.all<{ agent: string }>(`SELECT DISTINCT agent FROM requests WHERE ${PENDING}${s}`, params)).map((r) => r.agent);
    const lineProspects = (
      await this.db.all<{ prospect: string }>(`SELECT DISTINCT prospect FROM requests WHERE ${PENDING} AND ${this.d.jsonField('data', 'mode')} = 'device'${s}`, params)
    ).map((r) => r.prospect);
    const count = (await this.db.one<{ n: number }>(`SELECT COUNT(*) AS n FROM requests WHERE ${PENDING}${s}`, params))!.n;
    return { agents, lineProspects, count };
  }

  async pendingLineWatchers(prospects: readonly string[]): Promise<string[]> {
    if (prospects.length === 0) return [];
    const params: unknown[] = [...prospects];
    const rows = await this.db.all<{ id: string }>(
      `SELECT id FROM requests WHERE prospect IN (${marks(prospects.length)}) AND ${PENDING} AND ${this.d.jsonField('data', 'mode')} = 'device'${this.scope(params)}
       ORDER BY created_at, ${this.d.seq}`,
      params,
    );
    return rows.map((r) => r.id);
  }

  async idsInState(state: string, agent?: string): Promise<string[]> {
    const params: unknown[] = [state];
    let sql = 'SELECT id FROM requests WHERE state = ?';
    if (agent) {
      params.push(agent);
      // Through the partial index that holds the agent's requests in that state (see list).
      sql += ` AND agent = ? AND ${statesCondition([state])!}`;
    }
    sql += `${this.scope(params)} ORDER BY wake_at${this.d.nullsLast}, ${this.d.seq}`;
    return (await this.db.all<{ id: string }>(sql, params)).map((r) => r.id);
  }

  async pending(): Promise<Versioned<R>[]> {
    const params: unknown[] = [];
    const rows = await this.db.all<Row>(`SELECT id, version, data FROM requests WHERE ${PENDING}${this.scope(params)} ORDER BY wake_at${this.d.nullsLast}, ${this.d.seq}`, params);
    return rows.map((r) => this.decode(r));
  }

  async nextWake(): Promise<number | null> {
    const params: unknown[] = [];
    return (await this.db.one<{ w: number | null }>(`SELECT MIN(wake_at) AS w FROM requests WHERE wake_at IS NOT NULL AND ${PENDING}${this.scope(params)}`, params))!.w;
  }

  async due(now: number, limit = 100): Promise<Versioned<R>[]> {
    const params: unknown[] = [now];
    const s = this.scope(params);
    params.push(limit);
    const rows = await this.db.all<Row>(
      `SELECT id, version, data FROM requests WHERE wake_at IS NOT NULL AND wake_at <= ? AND ${PENDING}${s} ORDER BY wake_at, ${this.d.seq} LIMIT ?`,
      params,
    );
    return rows.map((r) => this.decode(r));
  }

  async events(requestId: string): Promise<StoredEvent[]> {
    const rows = await this.db.all<EventRow>('SELECT id, request_id, at, type, from_state, to_state, reason, data FROM events WHERE request_id = ? ORDER BY id', [requestId]);
    return rows.map((r) => ({
      id: r.id,
      requestId: r.request_id,
      at: r.at,
      type: r.type,
      from: r.from_state,
      to: r.to_state,
      reason: r.reason,
      data: r.data === null || r.data === undefined ? null : (this.d.fromJson(r.data) as Record<string, unknown>),
    }));
  }

  async prospectQueue(prospect: string): Promise<ProspectQueueEntry[]> {
    const params: unknown[] = [];
    // A SQLite file serves one PBX.
    const samePbx = this.scopeOf.pbx === undefined ? '1' : (params.push(this.scopeOf.pbx), 'pbx = ?');
    params.push(prospect);
    const rows = await this.db.all<Omit<ProspectQueueEntry, 'samePbx'> & { samePbx: unknown }>(
      `SELECT id, ${samePbx} AS "samePbx", agent, state, created_at AS "createdAt" FROM requests WHERE prospect = ? AND ${PENDING} ORDER BY created_at, ${this.d.seq}`,
      params,
    );
    return rows.map((r) => ({ ...r, samePbx: Boolean(r.samePbx) }));
  }

  async prospectPlace(prospect: string, agent: string, limit: number): Promise<ProspectPlace> {
    // Every PBX's requests (one person), as prospectQueue; the agent compared by name, as placeOf does.
    // The counts from the indexes alone (the number's pending requests; the agent's for it), not row by row.
    // One statement: the agent's own (earliest) pending request for the number, left-joined, and the requests ahead
    // of it counted beside (0 rows ahead when it has none; then its place is after every other agent's).
    this.placeSql ??= `SELECT (SELECT COUNT(*) FROM requests WHERE prospect = ? AND ${PENDING}) AS total,
         (SELECT COUNT(*) FROM requests WHERE agent = ? AND prospect = ? AND ${PENDING}) AS mine,
         me.id AS own,
         (SELECT COUNT(*) FROM requests q WHERE q.prospect = me.prospect AND q.${PENDING} AND (q.created_at, q.${this.d.seq}) < (me.created_at, me.ord)) AS ahead
       FROM (SELECT 1 AS one) one LEFT JOIN
         (SELECT id, prospect, created_at, ${this.d.seq} AS ord FROM requests WHERE agent = ? AND prospect = ? AND ${PENDING} ORDER BY created_at, ${this.d.seq} LIMIT 1) me ON 1 = 1`;
    const row = (await this.db.one<{ total: number | string; mine: number | string; own: string | null; ahead: number | string }>(this.placeSql, [
      prospect,
      agent,
      prospect,
      agent,
      prospect,
    ]))!;
    const waiting = Number(row.total) - Number(row.mine);
    const queued = row.own !== null && row.own !== undefined;
    const ahead = queued ? Number(row.ahead) : waiting;
    const others =
      limit > 0 && waiting > 0
        ? (
            await this.db.all<{ agent: string }>(
              `SELECT agent FROM requests WHERE prospect = ? AND ${PENDING} AND agent <> ? ORDER BY created_at, ${this.d.seq} LIMIT ?`,
              [prospect, agent, limit],
            )
          ).map((r) => r.agent)
        : [];
    return { position: ahead + 1, queued, waiting, others };
  }

  async lastConversation(prospect: string, exceptAgent: string): Promise<LastConversation | null> {
    const params: unknown[] = [];
    // A SQLite file serves one PBX.
    const samePbx = this.scopeOf.pbx === undefined ? '1' : (params.push(this.scopeOf.pbx), 'r.pbx = ?');
    params.push(prospect, exceptAgent);
    const row = await this.db.one<{ connectedAt: number; endedAt: number | null; samePbx: unknown }>(
      `SELECT r.updated_at AS "connectedAt",
         (SELECT MAX(e.at) FROM events e WHERE e.request_id = r.id AND e.type = 'conversation-ended') AS "endedAt",
         ${samePbx} AS "samePbx"
       FROM requests r WHERE r.prospect = ? AND r.state = 'COMPLETED' AND r.agent <> ? ORDER BY r.updated_at DESC LIMIT 1`,
      params,
    );
    return row ? { connectedAt: row.connectedAt, endedAt: row.endedAt ?? null, samePbx: Boolean(row.samePbx) } : null;
  }

  async appendEvents(events: readonly StoredEvent[]): Promise<void> {
    await this.db.tx((q) => insertEvents(q, events, this.d));
  }

  async countByState(): Promise<Record<string, number>> {
    const params: unknown[] = [];
    const rows = await this.db.all<{ state: string; n: number }>(`SELECT state, COUNT(*) AS n FROM requests WHERE ${PENDING}${this.scope(params)} GROUP BY state`, params);
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  async pauses(): Promise<AgentPauseRow[]> {
    const params: unknown[] = [];
    const rows = await this.db.all<{ agent: string; since: number | string; until_at: number | string | null; by_whom: string }>(
      `SELECT agent, since, until_at, by_whom FROM agent_pauses WHERE 1 = 1${this.scope(params)} ORDER BY agent`,
      params,
    );
    return rows.map((r) => ({ agent: r.agent, since: Number(r.since), until: r.until_at === null ? null : Number(r.until_at), by: r.by_whom }));
  }

  async setPause(agent: string, pause: Omit<AgentPauseRow, 'agent'> | null): Promise<void> {
    // SQLite serves one PBX (no pbx column); PostgreSQL keys the pause by this store's PBX.
    const pbx = this.scopeOf.pbx;
    if (pause === null) {
      const params: unknown[] = [agent];
      await this.db.tx((q) => q.run(`DELETE FROM agent_pauses WHERE agent = ?${this.own(params)}`, params));
      return;
    }
    const [cols, marks, key] = pbx === undefined ? ['agent', '?', 'agent'] : ['pbx, agent', '?, ?', 'pbx, agent'];
    const params = [...(pbx === undefined ? [] : [pbx]), agent, pause.since, pause.until, pause.by];
    await this.db.tx((q) =>
      q.run(
        `INSERT INTO agent_pauses(${cols}, since, until_at, by_whom) VALUES (${marks}, ?, ?, ?)
         ON CONFLICT (${key}) DO UPDATE SET since = excluded.since, until_at = excluded.until_at, by_whom = excluded.by_whom`,
        params,
      ),
    );
  }

  async createOrRefresh(
    agent: string,
    prospect: string,
    maxPending: number,
    create: () => RequestWrite<R>,
    refresh: ((existing: R) => RequestWrite<R> | Promise<RequestWrite<R>>) | undefined,
    maxPendingTotal?: number,
  ): Promise<CreateResult<R>> {
    const pbx = this.scopeOf.pbx ?? '';
    const withPbx = this.scopeOf.pbx !== undefined;
    return this.db.tx(
      async (q) => {
        // The common case, a new request (SQLite; PostgreSQL's is one call of cc_opt_in): the locks, the request
        // inserted only if this agent has no pending request for the prospect and the caps allow, returning its place
        // in the queue, then its history and outbox rows; only when nothing was inserted, one more statement says
        // why. `create` is pure (the policy's new request), so it runs before we know whether its rows are wanted.
        const made = create();
        const r = made.request;
        if (q.atomic) return this.optInCall(q, q.atomic, made, maxPending, maxPendingTotal, refresh);
        const total = maxPendingTotal !== undefined;
        const sql = this.optInSql(total);
        const own = withPbx ? [pbx] : [];
        const mine = [agent, prospect, ...own];
        const capsParams = [agent, ...own];
        // With a total cap, one opt-in per PBX at a time (taken before the agent's lock: one order, no
        // deadlock); one opt-in per (PBX, agent) at a time across instances: the cap and the one-pending rule hold.
        // (PostgreSQL: a statement of its own, so that the statements after it read with the locks held.)
        const lock = this.d.lockStatement([...(total ? [`cc-optin-total:${pbx}`] : []), `cc-optin:${pbx}:${agent}`]);
        const statements: Statement[] = [
          ...(lock ? [lock] : []),
          {
            sql: sql.insert,
            params: [
              ...[r.id, ...own, r.agent, r.prospect, r.state, r.createdAt, r.updatedAt, r.wakeAt, JSON.stringify(r)],
              ...mine,
              ...capsParams,
              maxPending,
              ...(total ? [...own, maxPendingTotal] : []),
            ],
          },
        ];
        const results = await q.script(statements);
        const inserted = results[results.length - 1][0] as { ahead: number | string } | undefined;
        if (inserted) {
          // In, with its place (counted by the INSERT's RETURNING): its history and outbox rows follow.
          await insertEvents(q, made.events, this.d);
          await insertOutbox(q, made.outbox ?? []);
          return { result: 'created', request: r, position: 1 + Number(inserted.ahead) };
        }
        // Not inserted: why (nothing was written).
        const outcome = (await q.one<{
          taken: number | string;
          existing_id: string | null;
          existing_version: number;
          existing: unknown;
          n: number | string;
          total: number | string | null;
        }>(sql.outcome, [r.id, ...capsParams, ...(total ? own : []), ...mine, r.id]))!;
        // A request has its id: `create` reused an id: refused, and the transaction with it.
        if (Number(outcome.taken) > 0) throw new StoreError(`the opt-in's new request ${r.id} has the id of a stored request; nothing was written`);
        if (outcome.existing_id !== null && outcome.existing_id !== undefined) {
          // The pending request as this transaction read it (the file is locked from BEGIN IMMEDIATE): refreshed
          // without reading it again.
          const found: Row = { id: outcome.existing_id, version: outcome.existing_version, data: outcome.existing };
          if (!refresh) return { result: 'exists', request: this.decode(found).request };
          return this.refreshIn(q, agent, prospect, refresh, found);
        }
        const pending = Number(outcome.n);
        if (pending >= maxPending || !total) return { result: 'full', pending };
        return { result: 'full', pending: Number(outcome.total) };
      },
      { quick: true },
    );
  }

  /** The new request's script's statements (createOrRefresh, SQLite), with and without a total cap; made once. */
  private readonly optInSqls: { [total: string]: OptInSql } = {};

  private optInSql(total: boolean): OptInSql {
    const key = String(total);
    const cached = this.optInSqls[key];
    if (cached) return cached;
    const withPbx = this.scopeOf.pbx !== undefined;
    const own = withPbx ? ' AND pbx = ?' : '';
    // Parameters: agent, prospect[, pbx].
    const minePending = `SELECT 1 FROM requests WHERE agent = ? AND prospect = ? AND ${PENDING}${own}`;
    // Parameters: agent[, pbx].
    const agentCount = `SELECT COUNT(*) FROM requests WHERE agent = ? AND ${PENDING}${own}`;
    // Parameters: [pbx].
    const totalCount = total ? `SELECT COUNT(*) FROM requests WHERE ${PENDING}${own}` : undefined;
    const sql: OptInSql = {
      // RETURNING the new request's place: the pending requests of the number ahead of it in opt-in order (as aheadSql).
      insert: `INSERT INTO requests(id, ${withPbx ? 'pbx, ' : ''}agent, prospect, state, created_at, updated_at, wake_at, version, data)
              SELECT ?, ${withPbx ? '?, ' : ''}?, ?, ?, ?, ?, ?, 1, ?
              WHERE NOT EXISTS (${minePending}) AND (${agentCount}) < ?${totalCount ? ` AND (${totalCount}) < ?` : ''}
              RETURNING id, (SELECT COUNT(*) FROM requests q WHERE q.prospect = requests.prospect AND q.${PENDING}
                AND (q.created_at, q.${this.d.seq}) < (requests.created_at, requests.${this.d.seq})) AS ahead`,
      // When nothing was inserted: the agent's pending request for the prospect (a refresh is wanted), in one look-up
      // of the index with its id, version and data (left-joined: one row whatever it finds), and the counts at the caps.
      // Parameters: the new id; agent[, pbx]; [pbx]; agent, prospect[, pbx]; the new id.
      outcome: `SELECT (SELECT COUNT(*) FROM requests WHERE id = ?) AS taken,
                e.id AS existing_id, e.version AS existing_version, e.data AS existing,
                (${agentCount}) AS n, ${totalCount ? `(${totalCount})` : 'NULL'} AS total
              FROM (SELECT 1 AS one) one LEFT JOIN requests e ON e.agent = ? AND e.prospect = ? AND e.${PENDING}${withPbx ? ' AND e.pbx = ?' : ''} AND e.id <> ?`,
    };
    this.optInSqls[key] = sql;
    return sql;
  }

  /**
   * PostgreSQL: the new request's opt-in as one call of `cc_opt_in` (migration 5): the same locks, conditions, rows
   * and counts as the script above, planned once per session and atomic (an error inside it is undone there and
   * returned as err_code), so that the group may send it in one message with other decisions' calls.
   */
  private async optInCall(
    q: TxQueries,
    atomic: NonNullable<TxQueries['atomic']>,
    made: RequestWrite<R>,
    maxPending: number,
    maxPendingTotal: number | undefined,
    refresh: ((existing: R) => RequestWrite<R> | Promise<RequestWrite<R>>) | undefined,
  ): Promise<CreateResult<R>> {
    const r = made.request;
    const events = made.events.map((e) => [e.at, e.type, e.from ?? null, e.to ?? null, e.reason ?? null, e.data ?? null]);
    const outbox = (made.outbox ?? []).map((o) => [o.key, o.event, o.createdAt, o.body, o.createdAt]);
    const row = (
      await atomic(
        {
          sql: 'SELECT created, taken, existing, n, total, ahead, err_code, err_message FROM cc_opt_in(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          params: [
            r.id,
            this.scopeOf.pbx ?? '',
            r.agent,
            r.prospect,
            r.state,
            r.createdAt,
            r.updatedAt,
            r.wakeAt,
            JSON.stringify(r),
            maxPending,
            maxPendingTotal ?? null,
            JSON.stringify(events),
            JSON.stringify(outbox),
          ],
        },
        // What it wrote is all its decision writes: a new request (or a refusal: nothing written); when it finds the
        // agent's pending request it wrote nothing, and the refresh (with its reads) may go on in a transaction of the
        // group after it. So the group may commit with it (TxQueries.atomic `last`), whether or not `refresh` is given:
        // the engine always gives one, and the common case, a new request, is then one round trip.
        { last: true },
      )
    )[0] as { created: boolean; taken: boolean; existing: unknown; n: number | string; total: number | string | null; ahead: number | string; err_code: string | null; err_message: string | null };
    if (row.err_code) {
      // Undone inside the call; the decision fails alone (the error's code kept for the caller, as the driver's errors).
      throw new AtomicStoreError(`callback store ${this.db.where}: ${row.err_message ?? row.err_code}`, { code: row.err_code, message: row.err_message });
    }
    if (row.created) return { result: 'created', request: r, position: 1 + Number(row.ahead) };
    if (row.taken) throw new AtomicStoreError(`the opt-in's new request ${r.id} has the id of a stored request; nothing was written`);
    if (row.existing !== null && row.existing !== undefined) {
      const existing = this.d.fromJson(row.existing) as R;
      if (!refresh) return { result: 'exists', request: existing };
      return this.refreshIn(q, r.agent, r.prospect, refresh);
    }
    const pending = Number(row.n);
    if (pending >= maxPending || maxPendingTotal === undefined) return { result: 'full', pending };
    return { result: 'full', pending: Number(row.total) };
  }

  /**
   * The agent's place in the prospect's queue, less one: the pending requests of that number (every PBX's: one
   * person) ahead of this one in opt-in order (created_at, then insertion), as prospectQueue orders them; 0 when
   * this one is not pending. One parameter: the request's id.
   */
  private get aheadSql(): string {
    const pending = (t: string) => `${t}.state NOT IN ${TERMINAL_SQL}`;
    this.ahead ??= `SELECT COUNT(*) FROM requests me, requests q WHERE me.id = ? AND ${pending('me')} AND q.prospect = me.prospect AND ${pending('q')}
      AND (q.created_at, q.${this.d.seq}) < (me.created_at, me.${this.d.seq})`;
    return this.ahead;
  }

  private ahead: string | undefined;
  /** prospectPlace's statement, made once. */
  private placeSql: string | undefined;

  /** The refresh of the agent's pending request for the prospect, in the opt-in's transaction (its locks held). */
  private async refreshIn(
    q: TxQueries,
    agent: string,
    prospect: string,
    refresh: (existing: R) => RequestWrite<R> | Promise<RequestWrite<R>>,
    read?: Row,
  ): Promise<CreateResult<R>> {
    const p1: unknown[] = [agent, prospect];
    // Read with its row lock (PostgreSQL), unless this transaction's script has just read it (SQLite: the file is locked).
    const found = read ?? (await q.one<Row>(`SELECT id, version, data FROM requests WHERE agent = ? AND prospect = ? AND ${PENDING}${this.own(p1)}${this.d.forUpdate}`, p1));
    if (!found) throw new StoreError('pending request vanished while locked');
    const existing = this.decode(found);
    const next = await refresh(existing.request);
    if (!(await writeRequest(q, next.request, existing.version))) throw new StoreError('pending request changed while locked');
    await insertEvents(q, next.events, this.d);
    await insertOutbox(q, next.outbox ?? []);
    const ahead = (await q.one<{ n: number | string }>(`SELECT (${this.aheadSql}) AS n`, [next.request.id]))!.n;
    return { result: 'refreshed', request: next.request, previous: existing.request, position: 1 + Number(ahead) };
  }

  async transition(request: R, expectedVersion: number, events: readonly StoredEvent[], outbox: readonly OutboxInsert[] = []): Promise<number | undefined> {
    try {
      return await this.db.tx(async (q) => {
        if (!(await writeRequest(q, request, expectedVersion))) return undefined;
        await insertEvents(q, events, this.d);
        await insertOutbox(q, outbox);
        return expectedVersion + 1;
      });
    } catch (err) {
      // A second recall for the same prospect number (requests_one_recall_per_prospect): the claim is lost, as
      // with a stale version; the caller re-reads and decides again (and then sees the colleague's recall).
      if (this.d.isRecallConflict(err)) {
        this.recallConflicts++;
        return undefined;
      }
      throw err;
    }
  }

  // ------------------------------------------------------------------ outbox (CRM webhook)

  async enqueueOutbox(rows: readonly OutboxInsert[]): Promise<void> {
    await this.db.tx((q) => insertOutbox(q, rows));
  }

  async outboxDue(now: number, limit = 50): Promise<OutboxRow[]> {
    const rows = await this.db.all<Record<string, unknown>>(
      'SELECT * FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?',
      [now, limit],
    );
    return rows.map(outboxRow);
  }

  async outboxNextAt(): Promise<number | null> {
    return (await this.db.one<{ n: number | null }>('SELECT MIN(next_at) AS n FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL'))!.n;
  }

  async outboxClaim(id: number, seenNextAt: number, until: number): Promise<boolean> {
    return (await this.db.run('UPDATE outbox SET next_at = ? WHERE id = ? AND next_at = ? AND sent_at IS NULL AND failed_at IS NULL', [until, id, seenNextAt])) === 1;
  }

  async outboxClaimDue(now: number, until: number, limit = 20): Promise<OutboxRow[]> {
    const rows = await this.db.all<Record<string, unknown>>(
      `UPDATE outbox SET next_at = ? WHERE id IN (
         SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_at <= ?
         ORDER BY next_at, id LIMIT ?${this.d.skipLocked})
       RETURNING *`,
      [until, now, limit],
    );
    return rows.map(outboxRow).sort((a, b) => a.id - b.id);
  }

  async outboxSent(id: number, at: number): Promise<void> {
    await this.db.run('UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?', [at, id]);
  }

  async outboxFailed(id: number, error: string, nextAt: number | null, at: number): Promise<void> {
    if (nextAt === null) {
      await this.db.run('UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed_at = ? WHERE id = ?', [error, at, id]);
    } else {
      await this.db.run('UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?', [error, nextAt, id]);
    }
  }

  async outbox(): Promise<OutboxRow[]> {
    return (await this.db.all<Record<string, unknown>>('SELECT * FROM outbox ORDER BY id')).map(outboxRow);
  }

  async outboxGivenUp(): Promise<OutboxRow[]> {
    return (await this.db.all<Record<string, unknown>>('SELECT * FROM outbox WHERE failed_at IS NOT NULL AND sent_at IS NULL ORDER BY id')).map(outboxRow);
  }

  async outboxRetry(ids: readonly number[] | 'all', now: number): Promise<number[]> {
    if (ids !== 'all' && ids.length === 0) return [];
    const rows = await this.db.all<{ id: number }>(
      `UPDATE outbox SET failed_at = NULL, attempts = 0, next_at = ?
       WHERE failed_at IS NOT NULL AND sent_at IS NULL${ids === 'all' ? '' : ` AND id IN (${marks(ids.length)})`} RETURNING id`,
      [now, ...(ids === 'all' ? [] : ids)],
    );
    return rows.map((r) => r.id).sort((a, b) => a - b);
  }

  // ------------------------------------------------------------------ retention

  async prune(before: number, opts: { dryRun?: boolean } = {}): Promise<PruneResult> {
    const params: unknown[] = [before];
    const finished = `SELECT id FROM requests WHERE state IN ${TERMINAL_SQL} AND updated_at < ?${this.scope(params)}`;
    const count = async (q: Queries, sql: string, p: readonly unknown[]) => (await q.one<{ n: number }>(sql, p))!.n;
    if (opts.dryRun) {
      return {
        requests: await count(this.db, `SELECT COUNT(*) AS n FROM (${finished}) f`, params),
        events: await count(this.db, `SELECT COUNT(*) AS n FROM events WHERE request_id IN (${finished})`, params),
        outbox: await count(this.db, 'SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?', [before]),
      };
    }
    // Deleting finished rows is not fenced (the trigger guards inserts and updates): any instance may prune.
    return this.db.tx(async (q) => ({
      events: await q.run(`DELETE FROM events WHERE request_id IN (${finished})`, params),
      requests: await q.run(`DELETE FROM requests WHERE id IN (${finished})`, params),
      outbox: await q.run('DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?', [before]),
    }));
  }
}

/** A history row's values: request_id, at, type, from_state, to_state, reason, data. */
function eventValues(e: StoredEvent): unknown[] {
  return [e.requestId, e.at, e.type, e.from ?? null, e.to ?? null, e.reason ?? null, e.data ? JSON.stringify(e.data) : null];
}

/** An outbox row's values: key, request_id, event, created_at, body, next_at (due at once). */
function outboxValues(r: OutboxInsert): unknown[] {
  return [r.key, r.requestId, r.event, r.createdAt, r.body, r.createdAt];
}

/** The history rows in one statement (one round trip on PostgreSQL; a statement prepared once per row count). */
async function insertEvents(q: Queries, events: readonly StoredEvent[], d: Dialect): Promise<void> {
  if (events.length === 0) return;
  const params: unknown[] = [];
  for (const e of events) params.push(...eventValues(e));
  await q.run(d.eventsInsert?.(events.length) ?? `INSERT INTO events(request_id, at, type, from_state, to_state, reason, data) VALUES ${rowsOf(events.length, 7)}`, params);
}

/** The outbox rows in one statement, likewise. */
async function insertOutbox(q: Queries, rows: readonly OutboxInsert[]): Promise<void> {
  if (rows.length === 0) return;
  const params: unknown[] = [];
  for (const r of rows) params.push(...outboxValues(r));
  await q.run(`INSERT INTO outbox(key, request_id, event, created_at, body, next_at) VALUES ${rowsOf(rows.length, 6)} ON CONFLICT (key) DO NOTHING`, params);
}

const rowsOfCache = new Map<string, string>();
/** `(?, ?, …), (?, ?, …)`: n rows of k values (multi-row VALUES keep the insertion order of ids). */
function rowsOf(n: number, k: number): string {
  const key = `${n}x${k}`;
  let out = rowsOfCache.get(key);
  if (out === undefined) {
    const row = `(${marks(k)})`;
    out = Array.from({ length: n }, () => row).join(', ');
    rowsOfCache.set(key, out);
  }
  return out;
}

async function writeRequest(q: Queries, request: RequestRecord, expectedVersion: number): Promise<boolean> {
  const changed = await q.run('UPDATE requests SET state = ?, updated_at = ?, wake_at = ?, data = ?, version = version + 1 WHERE id = ? AND version = ?', [
    request.state,
    request.updatedAt,
    request.wakeAt,
    JSON.stringify(request),
    request.id,
    expectedVersion,
  ]);
  return changed === 1;
}
