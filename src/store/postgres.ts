/**
 * The PostgreSQL driver of the store (node-postgres), for several instances and several PBXs sharing one
 * database: the database port (src/store/db.ts) over a pool, and `PgStore`, the store (src/store/sql.ts)
 * over it, plus:
 *
 *  - Every request belongs to a PBX (`pbx`, the config's `pbx.id`). A store opened for a PBX reads that
 *    PBX's pending work (due, pending, watchers…); `allPbx` (the command line) sees every PBX.
 *  - Fencing: `setFence({ app, holder, epoch })` makes every write transaction of this client declare the
 *    lease it holds; the database (trigger `cc_fence`, migration 2) refuses the write when that lease is
 *    no longer current and the store throws `FencedError`. See src/coordination/lease.ts.
 *  - Outbox claims with `FOR UPDATE SKIP LOCKED`: several senders drain one outbox, each row once.
 *
 * Schema migrations (src/store/migrations/postgres.ts) run at `open`, or at `prepare` for a store made with
 * `lazy` (the service's, which waits for the database instead of failing at start).
 */
import pg from 'pg';
import { FencedError, RequestRecord, StoreError } from './contract';
import { Db, Dialect, GroupBatch, GroupTx, Queries, Statement, TxQueries } from './db';
import { asStaged, newScope, stagedOn, StageScope } from './group';
import { LATEST_VERSION, MIGRATIONS } from './migrations/postgres';
import { SqlStore } from './sql';

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
/**
 * Pooled sessions are kept, never closed for being idle (node-postgres closes them after 10 s by default). A new
 * session costs a connection (7–16 ms measured: the server forks a process) and its first opt-ins more again: PL/pgSQL
 * compiles cc_opt_in and plans each of its statements for the session, custom for five calls (first call 14–31 ms,
 * calls 2–6 5–9 ms, then 2.4–4.3 ms; docs/performance-log.md) — after a quiet spell every opt-in paid it. A session
 * the server or the network ends is dropped by the pool (onIdleError) and a new one, warmed, replaces it.
 */
export const POOL_IDLE_TIMEOUT_MS = 0;
/** cc_opt_in calls of a session's warm-up (warmSql): past the five custom plans, so the session keeps generic ones. */
const WARM_CALLS = 6;

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
  /**
   * Connections in the pool. Default 4: one for the open group of decisions (group commit holds one connection
   * at a time, src/store/group.ts), and the others for the lease's renewal, the webhook sender and the reads outside
   * a decision (the offer's preparation, the page). The opt-in reads nothing outside its decision any more (its
   * place in the queue comes with it), and measured under ten concurrent opt-ins (docs/performance-log.md) 8
   * connections were slower than 4 or 2: more server processes running at once on the same cores as the group's.
   */
  poolSize?: number;
  /** Run migrations (default true); false refuses a database that is not at this build's version. */
  migrate?: boolean;
  /**
   * 'warm' (default): the pool's sessions are opened and warmed at `prepare` (warmSql), and kept while idle
   * (POOL_IDLE_TIMEOUT_MS); a session opened later is warmed before its first use. 'cold': node-postgres's defaults —
   * opened on demand, closed after 10 s idle, not warmed (the command line, which makes a few reads and exits; and the
   * bench's A/B, CC_PG_SESSIONS=cold).
   */
  sessions?: 'warm' | 'cold';
  /**
   * 'with' (default): a group's COMMIT goes in the message of its last opt-ins when nothing follows them (GroupBatch.flush:
   * one round trip for an opt-in alone, not two). 'apart': always a message of its own (the bench's A/B, CC_PG_COMMIT=apart).
   */
  commit?: 'with' | 'apart';
  /** Called with errors of idle pooled connections (a restarted server); they are never thrown. */
  onIdleError?: (err: Error) => void;
}

export interface Fence {
  app: string;
  holder: string;
  epoch: number;
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

export const postgresDialect: Dialect = {
  name: 'postgres',
  seq: 'seq',
  nullsLast: ' NULLS LAST',
  jsonField: (column, field) => `${column}->>'${field}'`,
  fromJson: (value) => value,
  forUpdate: ' FOR UPDATE',
  skipLocked: ' FOR UPDATE SKIP LOCKED',
  async lockKeys(q, keys) {
    // One round trip for all keys; they are taken left to right, so every caller's order is the same.
    const s = postgresDialect.lockStatement(keys);
    if (s) await q.one(s.sql, s.params);
  },
  lockStatement(keys) {
    return keys.length > 0 ? { sql: `SELECT ${keys.map(() => 'pg_advisory_xact_lock(hashtext(?))').join(', ')}`, params: keys } : undefined;
  },
  isRecallConflict(err) {
    const cause = ((err as StoreError)?.cause ?? err) as { code?: string; constraint?: string } | undefined;
    return cause?.code === '23505' && cause.constraint === 'requests_one_recall_per_prospect';
  },
};

/** The statements in PgDb.beginSql's text (BEGIN; SELECT set_config(…)). */
const BEGIN_STATEMENTS = 2;

/** `?` → `$1, $2, …` (the store's statements have no other question marks), cached by text. */
const numbered = new Map<string, string>();
function placeholders(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    numbered.set(sql, out);
  }
  return out;
}

/** How a group's connection routes its decisions' statements (PgDb.group, PgDb.on). */
interface GroupHooks {
  /** The savepoints waiting to be sent, as a statement text (undefined: none); they count as sent from here. */
  prefix(): string | undefined;
  /** Whether an atomic statement is held now (the pump batches). */
  holding(): boolean;
  /** Holds an atomic statement (inlined) for the next message; resolves with its rows once handed back. */
  hold(text: string, last: boolean): Promise<unknown[]>;
  /** Before any other statement: counts it, and waits behind held statements (a barrier). */
  plain(): Promise<void>;
  /** A message goes out on the group's connection now (GroupBatch.sent). */
  sending(): void;
}

/** node-postgres behind the database port; every transaction declares this client's fence. */
class PgDb implements Db {
  readonly dialect = postgresDialect;
  fence: Fence | undefined;
  readonly one: Queries['one'];
  readonly all: Queries['all'];
  readonly run: Queries['run'];

  /**
   * Sessions warmed (warmSql), and whether to warm (PgStoreOptions.sessions 'warm', once the schema is migrated): a
   * transaction or a group on a session not warmed yet warms it first (a session opened after `prepare`: a replacement,
   * the pool growing); `prepare` warms every session of the pool at once.
   */
  warming = false;
  /** PgStoreOptions.commit: whether a group may commit in the message of its last opt-ins. */
  commitWith = true;
  private readonly warm = new WeakSet<pg.ClientBase>();
  /** Sessions warmed so far (tests, the bench). */
  sessionsWarmed = 0;

  /** Warms `c` unless it was (errors are the session's: the caller's first statement will meet them). */
  async warmUp(c: pg.ClientBase): Promise<void> {
    if (!this.warming || this.warm.has(c)) return;
    this.warm.add(c);
    try {
      await c.query(warmSql());
      this.sessionsWarmed++;
    } catch {
      // A broken session: the caller's own statement fails on it and says so.
    }
  }

  /** The open group (group commit): its connection and its handle for staged decisions' statements. */
  private groupGate: Promise<void> | undefined;
  private open: { scope: TxQueries; nested: (s: StageScope, fn: (q: TxQueries) => Promise<unknown>) => Promise<unknown> } | undefined;

  constructor(
    readonly pool: pg.Pool,
    readonly where: string,
    private readonly pbx: string,
  ) {
    // A decision staged in the open group reads on the group's connection (it sees the group's staged rows);
    // every other read goes to the pool and sees committed rows only.
    const direct = this.on(pool, undefined);
    this.one = (sql, params) => (this.open && stagedOn(this) ? this.open.scope : direct).one(sql, params);
    this.all = (sql, params) => (this.open && stagedOn(this) ? this.open.scope : direct).all(sql, params);
    this.run = (sql, params) => (this.open && stagedOn(this) ? this.open.scope : direct).run(sql, params);
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

  /**
   * Statements on a pool or a client. `group` (a group's client): statements waiting to be sent (its savepoints)
   * go out with the next statement in one round trip — a simple-protocol query of several statements, the
   * parameters as escaped literals — instead of a round trip each; atomic statements may be held for a message
   * shared with other decisions' (GroupTx.batch), and other statements wait behind held ones (a barrier).
   */
  private on(c: pg.Pool | pg.PoolClient, fence: Fence | undefined, group?: GroupHooks): TxQueries {
    const query = async <T extends pg.QueryResultRow>(sql: string, params: readonly unknown[] = []): Promise<pg.QueryResult<T>> => {
      try {
        await group?.plain();
        const before = group?.prefix();
        group?.sending();
        if (before === undefined) return await c.query<T>(placeholders(sql), params as unknown[]);
        const results = (await c.query<T>(`${before}; ${inline(c as pg.PoolClient, sql, params)}`)) as unknown as pg.QueryResult<T>[];
        return results[results.length - 1];
      } catch (err) {
        throw this.translate(err, fence);
      }
    };
    // Several statements in one round trip (TxQueries.script): one simple-protocol query, every value inlined by
    // `inline` (the one escaping function), after the savepoints waiting to be sent. On the pool (no transaction,
    // no client to escape with) the statements go one after the other.
    const script = async (statements: readonly Statement[]): Promise<unknown[][]> => {
      if (statements.length === 0) return [];
      if (c instanceof pg.Pool) {
        const out: unknown[][] = [];
        for (const st of statements) out.push((await query(st.sql, st.params)).rows);
        return out;
      }
      try {
        await group?.plain();
        const before = group?.prefix();
        const text = [...(before === undefined ? [] : [before]), ...statements.map((st) => inline(c, st.sql, st.params ?? []))].join('; ');
        group?.sending();
        const r = (await c.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
        const results = Array.isArray(r) ? r : [r];
        return results.slice(results.length - statements.length).map((x) => x.rows);
      } catch (err) {
        throw this.translate(err, fence);
      }
    };
    // An atomic statement: held for the group's shared message while the group batches, else sent at once (outside
    // a group with its parameters, the extended protocol: no literals to escape).
    const atomic = async (st: Statement, opts: { last?: boolean } = {}): Promise<unknown[]> => {
      if (group?.holding() && !(c instanceof pg.Pool)) return group.hold(inline(c, st.sql, st.params ?? []), opts.last ?? false);
      for (const v of st.params ?? []) if (typeof v === 'number' && !Number.isFinite(v)) throw new StoreError(`not a finite number: ${v}`);
      return (await query(st.sql, st.params)).rows;
    };
    return {
      one: async <T>(sql: string, params?: readonly unknown[]) => (await query(sql, params)).rows[0] as T | undefined,
      all: async <T>(sql: string, params?: readonly unknown[]) => (await query(sql, params)).rows as T[],
      run: async (sql, params) => (await query(sql, params)).rowCount ?? 0,
      script,
      atomic,
    };
  }

  /** One transaction, with this client's fence declared. Errors become StoreError / FencedError. */
  async tx<T>(fn: (q: TxQueries) => Promise<T>, opts: { quick?: boolean } = {}): Promise<T> {
    const staged = this.open && stagedOn(this);
    if (staged && this.open) return (await this.open.nested(staged, fn as (q: TxQueries) => Promise<unknown>)) as T;
    const fence = this.fence;
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw this.translate(err, fence);
    }
    await this.warmUp(c);
    let broken: Error | undefined;
    try {
      // BEGIN, the writer's fence and the opt-in's timeouts in one round trip (one simple-protocol query of
      // two statements, the values as escaped literals): under load every round trip waits for the server
      // process to be scheduled, and the opt-in's transaction had three of them before its first statement.
      await c.query(this.beginSql(c, fence, opts.quick ?? false));
      const result = await fn(this.on(c, fence));
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

  private beginSql(c: pg.PoolClient, fence: Fence | undefined, quick: boolean): string {
    // synchronous_commit stays on whatever the database's default: a COMMIT returns once it is durable, which is
    // the point of committing before the agent hears the confirmation (set in the BEGIN's round trip, no extra one).
    const settings: string[] = [`set_config('synchronous_commit', 'on', true)`];
    if (fence) {
      settings.push(
        `set_config('cc.app', ${c.escapeLiteral(fence.app)}, true)`,
        `set_config('cc.holder', ${c.escapeLiteral(fence.holder)}, true)`,
        `set_config('cc.epoch', ${c.escapeLiteral(String(fence.epoch))}, true)`,
      );
    }
    if (quick) {
      settings.push(`set_config('lock_timeout', ${c.escapeLiteral(String(OPT_IN_LOCK_TIMEOUT_MS))}, true)`, `set_config('statement_timeout', ${c.escapeLiteral(String(OPT_IN_STATEMENT_TIMEOUT_MS))}, true)`);
    }
    return `BEGIN; SELECT ${settings.join(', ')}`;
  }

  /**
   * Group commit (db.ts GroupTx) on one pooled connection: BEGIN with the fence (sent with the first statement, no
   * round trip of its own), a SAVEPOINT per
   * staged decision (and per `tx` inside it; never released — they all end with the group, which saves a round
   * trip each), and at the end the fence checked once more and COMMIT in one round trip. `synchronous_commit`
   * stays on: the COMMIT returns when the group is durable. A lost fence in any decision, or at the end, fails
   * the whole group: nothing of it is written.
   */
  async group(opts: { quick?: boolean } = {}): Promise<GroupTx> {
    // One group at a time per client (a second one, e.g. of another engine on the same store, waits its turn).
    while (this.groupGate) await this.groupGate;
    let release!: () => void;
    this.groupGate = new Promise<void>((resolve) => (release = resolve));
    const free = () => {
      this.groupGate = undefined;
      release();
    };
    const fence = this.fence;
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      free();
      throw this.translate(err, fence);
    }
    await this.warmUp(c);
    // BEGIN (with the fence and the timeouts) is not sent on its own: it goes with the group's first statement, like
    // the savepoints, so that opening a group costs no round trip (a group that sends nothing never begins).
    let begin: string | undefined;
    /** Messages sent on the connection (GroupBatch.sent). */
    let messages = 0;
    try {
      begin = this.beginSql(c, fence, opts.quick ?? false);
    } catch (err) {
      c.release();
      free();
      throw this.translate(err, fence);
    }
    let ended = false;
    /** Why the group can no longer commit (a lost fence, a broken connection). */
    let failed: unknown;
    let n = 0;
    let nested = 0;
    // Savepoints are sent with the statement after them (see `on`): a decision's savepoint costs no round trip.
    const pending: { name: string; scope: StageScope }[] = [];
    /** The savepoints sent, in order, and whose they are (a rollback must not undo another decision's statements). */
    const sent: { name: string; scope: StageScope }[] = [];
    // The BEGIN when not sent yet, and only the running decision's own savepoints: another's (staged while this one
    // was held) go with its statements. `statements`: how many statements the text holds.
    const take = (): { text: string; statements: number } | undefined => {
      const scope = stagedOn(this);
      const mine = pending.filter((p) => p.scope === scope);
      const parts: string[] = [];
      let statements = 0;
      if (begin !== undefined) {
        parts.push(begin);
        statements += BEGIN_STATEMENTS;
        begin = undefined;
      }
      for (const p of mine) pending.splice(pending.indexOf(p), 1);
      sent.push(...mine);
      parts.push(...mine.map((p) => `SAVEPOINT ${p.name}`));
      statements += mine.length;
      return statements === 0 ? undefined : { text: parts.join('; '), statements };
    };
    const prefix = (): string | undefined => take()?.text;
    const unsent = (name: string) => {
      const i = pending.findIndex((p) => p.name === name);
      if (i >= 0) pending.splice(i, 1);
    };
    // Batching (GroupTx.batch): the pump's listener, the atomic statements held for the next message, the ones sent
    // and not yet handed back, and a later decision's statement waiting behind them.
    let listener: ((kind: 'atomic' | 'barrier') => void) | undefined;
    interface Held {
      text: string;
      statements: number;
      /** TxQueries.atomic's `last`: the group may commit with it. */
      last: boolean;
      /** Its decision. */
      scope: StageScope | undefined;
      resolve: (rows: unknown[]) => void;
      reject: (err: unknown) => void;
    }
    const held: Held[] = [];
    let barrier: (() => void) | undefined;
    const signal = (kind: 'atomic' | 'barrier') => {
      const l = listener;
      listener = undefined;
      l?.(kind);
    };
    const hooks: GroupHooks = {
      prefix,
      holding: () => listener !== undefined,
      hold: (text, last) =>
        new Promise<unknown[]>((resolve, reject) => {
          const before = take();
          const statements = (before?.statements ?? 0) + 1;
          held.push({ text: before === undefined ? text : `${before.text}; ${text}`, statements, last, scope: stagedOn(this), resolve, reject });
          signal('atomic');
        }),
      sending: () => {
        messages++;
      },
      plain: async () => {
        const s = stagedOn(this);
        if (s) s.plain++;
        if (held.length === 0) return;
        // A later decision's statement: it goes after the held ones, once the decisions before it went on.
        if (!listener) throw new StoreError(`callback store ${this.where}: a statement out of turn in the group`);
        await new Promise<void>((resolve) => {
          barrier = resolve;
          signal('barrier');
        });
      },
    };
    const q = this.on(c, fence, hooks);
    const rollbackTo = async (name: string, err: unknown, scope: StageScope) => {
      if (err instanceof FencedError) failed ??= err;
      const waiting = pending.findIndex((p) => p.name === name);
      if (waiting >= 0) {
        // Never sent, so nothing of this decision after it was either: nothing to roll back.
        for (let i = pending.length - 1; i >= waiting; i--) if (pending[i].scope === scope) pending.splice(i, 1);
        return;
      }
      let at = sent.length - 1;
      while (at >= 0 && sent[at].name !== name) at--;
      if (at >= 0 && sent.slice(at + 1).some((p) => p.scope !== scope)) {
        // Another decision's statements were sent after this savepoint (a batch): rolling back to it would undo
        // them too. Nothing to undo when this decision sent only atomic statements and the one that failed undid
        // itself; otherwise the whole group fails (nothing of it is written, every caller hears the error).
        if ((err as { atomic?: boolean })?.atomic === true && scope.plain === 0) return;
        failed ??= err instanceof StoreError ? err : new StoreError(`callback store ${this.where}: ${(err as Error)?.message ?? String(err)}`, err);
        return;
      }
      if (failed) return;
      await c.query(`ROLLBACK TO SAVEPOINT ${name}`).catch((e: Error) => {
        failed ??= this.translate(e, fence);
      });
      if (at >= 0) sent.length = at + 1;
    };
    this.open = {
      scope: q,
      nested: async (s, fn) => {
        if (failed) throw failed;
        // Names unique in the group: several decisions' savepoints may be sent in one message.
        const name = `t${++nested}`;
        s.depth++;
        pending.push({ name, scope: s });
        try {
          return await fn(q);
        } catch (err) {
          await rollbackTo(name, err, s);
          throw err;
        } finally {
          s.depth--;
          unsent(name);
        }
      },
    };
    const batch: GroupBatch = {
      listen: () =>
        new Promise<'atomic' | 'barrier'>((resolve) => {
          listener = resolve;
        }),
      quiet: () => {
        listener = undefined;
      },
      flush: async (commit = false) => {
        const committing = commit && batch.committable();
        const out = held.splice(0);
        let rows: unknown[][] = [];
        let error: unknown = failed;
        let committed = false;
        if (out.length > 0 && error === undefined) {
          // With the COMMIT: the fence checked once more (as at the group's end), then COMMIT; an error skips the COMMIT.
          const texts = out.map((h) => h.text);
          if (committing) texts.push(...(fence ? [fenceCheckSql(c, fence, this.pbx)] : []), 'COMMIT');
          try {
            messages++;
            const r = (await c.query(texts.join('; '))) as unknown as pg.QueryResult | pg.QueryResult[];
            const results = Array.isArray(r) ? r : [r];
            let i = 0;
            rows = out.map((h) => results[(i += h.statements) - 1].rows);
            committed = committing;
          } catch (err) {
            // The message stopped at an error the statements could not catch (a lost fence, a timeout, a broken
            // connection): the transaction is aborted, so the whole group fails.
            error = this.translate(err, fence);
            failed ??= error;
          }
        }
        if (committed) {
          // Everything sent so far is durable: the next statement begins a new transaction (BEGIN with the fence again),
          // after the savepoints of the decisions still running (held until now), so that one of them failing later
          // rolls back only what it sends from here.
          begin = this.beginSql(c, fence, opts.quick ?? false);
          const running = new Set(out.map((h) => h.scope));
          pending.unshift(...sent.filter((p) => running.has(p.scope)));
          sent.length = 0;
        }
        return { count: out.length, committed, error, deliver: (i: number) => (error === undefined ? out[i].resolve(rows[i]) : out[i].reject(error)) };
      },
      committable: () => this.commitWith && failed === undefined && held.length > 0 && held.every((h) => h.last),
      sent: () => messages,
      fail: (err) => {
        failed ??= err;
      },
      release: () => {
        const b = barrier;
        barrier = undefined;
        b?.();
      },
    };
    const end = async (commit: boolean) => {
      if (ended) return;
      ended = true;
      this.open = undefined;
      let broken: Error | undefined;
      if (begin !== undefined && !(commit && fence && !failed)) {
        // Nothing was ever sent and no fence to check: no transaction to end.
        c.release();
        free();
        if (commit && failed) throw failed;
        return;
      }
      // Nothing sent, yet a fenced group's decisions are confirmed only while the lease holds: BEGIN goes with the check.
      const head = begin === undefined ? '' : `${begin}; `;
      begin = undefined;
      try {
        if (commit) {
          if (failed) throw failed;
          // The fence once more, in the group's transaction (the lease row read FOR SHARE, as the trigger does, so
          // a take-over waits for this COMMIT), then COMMIT — one round trip; an error skips the COMMIT.
          await c.query(fence ? `${head}${fenceCheckSql(c, fence, this.pbx)}; COMMIT` : 'COMMIT');
        } else {
          await c.query('ROLLBACK');
        }
      } catch (err) {
        await c.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
        throw this.translate(err, fence);
      } finally {
        c.release(broken);
        free();
      }
    };
    return {
      linger: true,
      stage: async <T>(fn: () => Promise<T>): Promise<T> => {
        if (ended) throw new StoreError(`callback store ${this.where}: the group has ended`);
        if (failed) throw failed;
        const name = `d${++n}`;
        const scope = newScope(this);
        pending.push({ name, scope });
        try {
          return await asStaged(this, fn, scope);
        } catch (err) {
          await rollbackTo(name, err, scope);
          throw err;
        } finally {
          // A decision that sent no statement leaves no savepoint behind.
          unsent(name);
        }
      },
      commit: () => end(true),
      rollback: () => end(false),
      batch,
    };
  }

  /** Readiness: the server answers and this session may write (not a read-only standby replica). */
  async writable(): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const row = await this.one<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro");
      return row!.ro === 'off' ? { ok: true } : { ok: false, reason: 'the PostgreSQL server is read-only (a standby replica?)' };
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

/** `?` → the parameters as escaped literals, for a simple-protocol query of several statements (see PgDb.on). */
function inline(c: pg.PoolClient, sql: string, params: readonly unknown[]): string {
  let i = 0;
  return sql.replace(/\?/g, () => {
    const v = params[i++];
    if (v === null || v === undefined) return 'NULL';
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new StoreError(`not a finite number: ${v}`);
      return `'${v}'`;
    }
    if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
    if (typeof v === 'string') return c.escapeLiteral(v);
    throw new StoreError(`a parameter of type ${typeof v} cannot be inlined`);
  });
}

/**
 * The fence of a group's COMMIT: raises CCF01 (FencedError) unless the lease is still this holder's, at this epoch,
 * and live — the trigger's check (migration 2), for a group whose last writes were not to `requests`; the function
 * `cc_fence_check` (migration 6: its plan kept by the session, where a DO block was compiled on every COMMIT).
 */
function fenceCheckSql(c: pg.PoolClient, fence: Fence, pbx: string): string {
  const lit = (v: string) => c.escapeLiteral(v);
  return `SELECT cc_fence_check(${lit(pbx)}, ${lit(fence.app)}, ${lit(fence.holder)}, ${lit(String(fence.epoch))}::BIGINT)`;
}

/**
 * Warms a session before it serves a transaction: cc_opt_in compiled and its statements planned past the five custom
 * plans (WARM_CALLS calls, then an exception that rolls them back: nothing is written; each call a fresh agent and
 * number under a PBX of its own, so it takes no lock another writer wants), cc_fence_check compiled (its call fails:
 * no such lease). One statement, a DO block that catches its own errors (a database not migrated yet: nothing to warm),
 * and no value from outside in its text. Marked at its start, so tests can see which sessions ran it last
 * (pg_stat_activity.query, which keeps the first 1 kB).
 */
export const WARM_MARK = '/* cc: session warm-up */';
function warmSql(): string {
  const tag = `cc-warm-${Math.random().toString(36).slice(2, 10)}`;
  const calls = Array.from(
    { length: WARM_CALLS },
    (_, i) => `PERFORM * FROM cc_opt_in('${tag}-${i}', 'cc-warm', '${tag}-${i}', '${tag}-${i}', 'WAITING', 0, 0, NULL, '{}', 1, NULL, '[]', '[]');`,
  );
  return `${WARM_MARK} DO $cc_warm$ BEGIN
  BEGIN ${calls.join(' ')} RAISE EXCEPTION 'cc warm-up rolled back' USING ERRCODE = 'CCW01'; EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN PERFORM cc_fence_check('cc-warm', '', '', 0); EXCEPTION WHEN OTHERS THEN NULL; END;
END $cc_warm$`;
}

async function migrate(pool: pg.Pool, apply: boolean): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query("SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)");
    // One migrating instance at a time (the key is arbitrary but fixed: "cc-mig").
    await c.query('SELECT pg_advisory_xact_lock(4242424201)');
    await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
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

/** The store in PostgreSQL, with the coordination's extras (fence, raw queries, migrations). */
export class PgStore<R extends RequestRecord> extends SqlStore<R> {
  private constructor(
    private readonly pgdb: PgDb,
    readonly pbx: string,
    allPbx: boolean,
    private readonly migrateOnPrepare: boolean,
    private readonly warmSessions: boolean,
  ) {
    super(pgdb, { pbx, allPbx });
  }

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
   * waits for the database with {@link prepare} (src/app/service.ts), instead of exiting while it is down.
   */
  static lazy<R extends RequestRecord>(url: string, opts: PgStoreOptions = {}): PgStore<R> {
    const warm = (opts.sessions ?? 'warm') === 'warm';
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.poolSize ?? 4,
      types: TYPES,
      connectionTimeoutMillis: 10_000,
      lock_timeout: QUERY_LOCK_TIMEOUT_MS,
      statement_timeout: QUERY_STATEMENT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
      ...(warm
        ? {
            idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
            // Sessions are kept for long (POOL_IDLE_TIMEOUT_MS): TCP keepalive notices a peer that went away meanwhile.
            keepAlive: true,
          }
        : {}),
    });
    pool.on('error', (err) => opts.onIdleError?.(err));
    const pbx = opts.pbx ?? 'default';
    const pgdb = new PgDb(pool, redactUrl(url), pbx);
    pgdb.commitWith = (opts.commit ?? 'with') === 'with';
    return new PgStore<R>(pgdb, pbx, opts.allPbx ?? false, opts.migrate ?? true, warm);
  }

  private isPrepared = false;

  /**
   * Opens every session of the pool and warms it (warmSql), so that no call pays for a new session or a cold
   * cc_opt_in: done by `prepare`, once the schema is migrated; a session opened later is warmed by its first
   * transaction.
   */
  private async warmAll(): Promise<void> {
    this.pgdb.warming = true;
    const size = (this.pgdb.pool.options as { max?: number }).max ?? 1;
    const clients = await Promise.all(Array.from({ length: size }, () => this.pgdb.pool.connect()));
    try {
      await Promise.all(clients.map((c) => this.pgdb.warmUp(c)));
    } finally {
      for (const c of clients) c.release();
    }
  }

  /** Sessions warmed so far (PgStoreOptions.sessions). */
  get sessionsWarmed(): number {
    return this.pgdb.sessionsWarmed;
  }

  override get prepared(): boolean {
    return this.isPrepared;
  }

  /** Connects, migrates (under an advisory lock) and checks the schema version; a StoreError when it cannot. */
  override async prepare(): Promise<void> {
    if (this.isPrepared) return;
    try {
      await migrate(this.pgdb.pool, this.migrateOnPrepare);
      if (this.warmSessions) await this.warmAll();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot open callback store ${this.where}: ${(err as Error).message}`, err);
    }
    this.isPrepared = true;
  }

  /** Applied migrations, oldest first. */
  async migrations(): Promise<{ version: number; name: string }[]> {
    return (await this.pgdb.pool.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version')).rows;
  }

  /** Declares the lease this client writes under (or none). Every later write is fenced by it. */
  setFence(fence: Fence | undefined): void {
    this.pgdb.fence = fence ? { ...fence } : undefined;
  }

  get fence(): Fence | undefined {
    return this.pgdb.fence;
  }

  /** For the coordination module (leases) and tests: one query on the pool, `$n` placeholders. */
  query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
    return this.pgdb.pool.query<T>(sql, params);
  }
}

export { FencedError, StoreError };
