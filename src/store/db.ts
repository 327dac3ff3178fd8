/**
 * The database port under the store (src/store/sql.ts): four calls and a table of what truly differs
 * between the two databases. Statements are written once with `?` placeholders; a driver turns them into
 * its own (`$1, $2, …` for PostgreSQL).
 *
 *  - `one`, `all`: a row or the rows of a query; `run`: a statement, the number of rows it changed.
 *  - `tx`: one transaction; every statement of the transaction goes through the handle it is given.
 *    `quick` is the opt-in's transaction, which waits only briefly for another writer's lock and fails
 *    with a StoreError instead (SQLite: BUSY_OPT_IN_MS; PostgreSQL: OPT_IN_LOCK_TIMEOUT_MS).
 *
 *  - `group`: group commit (src/store/group.ts). One transaction on the writer connection holds several
 *    decisions, each `stage`d in its own SAVEPOINT (a failing one rolls back alone); while a decision is
 *    staged, every statement it makes through this Db — its reads, and its `tx`, which becomes a nested
 *    SAVEPOINT — goes to the group's connection and sees the group's staged rows. Everyone else (the page,
 *    the command line, reads outside a decision) sees committed rows only. `commit` makes the whole group
 *    durable at once (one fsync); when it fails, nothing of the group is written.
 *
 * Drivers: src/store/sqlite.ts (better-sqlite3; a transaction holds the connection, so statements outside
 * it wait until it ends) and src/store/postgres.ts (node-postgres; every transaction declares the
 * writer's fence).
 */

export interface Queries {
  one<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** The number of rows changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** One statement of a script (TxQueries.script): `?` placeholders and their values. */
export interface Statement {
  sql: string;
  params?: readonly unknown[];
}

/** The statements of a transaction (Db.tx): the queries, and several statements at once. */
export interface TxQueries extends Queries {
  /**
   * Runs the statements in order, each seeing what the ones before it wrote, and returns each one's rows (empty for
   * a statement without rows). PostgreSQL: one round trip (one simple-protocol query, the values inlined as escaped
   * literals; an error in one statement stops the rest and fails the call); SQLite: one prepared statement after
   * the other. Inside a transaction only.
   */
  script(statements: readonly Statement[]): Promise<unknown[][]>;
  /**
   * PostgreSQL only: one statement that is atomic — it leaves nothing behind when it fails (it catches its errors in
   * a block of its own and returns them, see migration 5's cc_opt_in) — and returns its rows. In a group (db.ts
   * `group`) the group may send it in one message together with other decisions' atomic statements (GroupTx.batch).
   * `last`: whatever it returns, what it wrote is all its decision writes before its caller hears back — the decision
   * sends nothing after it, or only statements that may go in a transaction of their own after it (the opt-in that
   * finds the agent's pending request wrote nothing, and its refresh comes after), and nothing after it fails the
   * decision (its rows would be durable while its caller hears an error) — so the group may commit with it, in the
   * same message (GroupBatch.flush).
   */
  atomic?(statement: Statement, opts?: { last?: boolean }): Promise<unknown[]>;
}

export interface Db extends Queries {
  readonly dialect: Dialect;
  /** Where the data lives, for logs: a file path, or the PostgreSQL URL without its password. */
  readonly where: string;
  tx<T>(fn: (q: TxQueries) => Promise<T>, opts?: { quick?: boolean }): Promise<T>;
  /** Opens a group transaction on the writer connection (see GroupTx); `quick` as for `tx`. One at a time. */
  group(opts?: { quick?: boolean }): Promise<GroupTx>;
  /** Readiness: a write could start now (nothing is written). */
  writable(): Promise<{ ok: true } | { ok: false; reason: string }>;
  close(): Promise<void>;
}

/** What truly differs between SQLite and PostgreSQL for the store's statements. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** The column that orders rows by insertion (ties of created_at / wake_at). */
  readonly seq: string;
  /** After `ORDER BY wake_at`: where requests without a wake-up go. */
  readonly nullsLast: string;
  /** A text field of the request's JSON column. */
  jsonField(column: string, field: string): string;
  /** The JSON columns as the driver returns them (text in SQLite, parsed in PostgreSQL). */
  fromJson(value: unknown): unknown;
  /** Row locks of a read inside a transaction (PostgreSQL); SQLite's transaction already holds the file. */
  readonly forUpdate: string;
  /** Row locks that skip rows another claimer holds (PostgreSQL); nothing to skip in SQLite. */
  readonly skipLocked: string;
  /** Serialises opt-ins on these keys across instances (PostgreSQL advisory locks); SQLite: nothing. */
  lockKeys(q: Queries, keys: readonly string[]): Promise<void>;
  /** The same as a statement for a script (TxQueries.script); undefined when there is nothing to lock. */
  lockStatement(keys: readonly string[]): Statement | undefined;
  /** The write hit requests_one_recall_per_prospect: a second recall for one prospect number. */
  isRecallConflict(err: unknown): boolean;
  /**
   * The INSERT of `rows` history rows, 7 parameters each (request_id, at, type, from_state, to_state, reason, data),
   * when the history's ids are not the database's own (SQLite: numbered per request, see src/store/sqlite.ts);
   * undefined: a multi-row INSERT, the database numbers them.
   */
  eventsInsert?(rows: number): string;
}

/** An open group transaction (Db.group): decisions staged one after the other, then committed together. */
export interface GroupTx {
  /**
   * Whether the group waits one turn of the event loop for more decisions before its COMMIT once the queue has
   * drained. PostgreSQL: yes (its COMMIT is a round trip anyway). SQLite: no — its statements never yield, so only
   * the turn could gather more, and measured under ten concurrent calls (docs/performance.md) the turn (every other
   * call's pending events handled first) cost more than the COMMIT's fsync on the loop.
   */
  readonly linger: boolean;
  /**
   * Runs one decision in its own SAVEPOINT of the group: its statements through the Db go to the group's
   * connection. When `fn` throws, its savepoint is rolled back (the decisions staged before stay) and the error
   * is thrown; a lost fence (FencedError) or a broken connection fails the whole group instead.
   */
  stage<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Commits every staged decision in one durable commit; when it throws, nothing of the group was written. Durable
   * when it resolves, unless it resolves with `durable` (SQLite's sync off the event loop, src/store/wal-sync.ts):
   * then the COMMIT is done (the next group may begin) and the group is durable once `durable` resolves, with
   * performance.now() at that moment; when `durable` rejects, the group must be reported failed.
   */
  commit(): Promise<{ durable: Promise<number> } | void>;
  /** Rolls the whole group back (nothing of it is written). */
  rollback(): Promise<void>;
  /** Several decisions' atomic statements in one round trip (PostgreSQL); absent: every statement goes at once. */
  readonly batch?: GroupBatch;
}

/**
 * Batching of a group (GroupCommit drives it): while the pump listens (`listen`), a staged decision's atomic
 * statement (TxQueries.atomic) is held instead of sent, and the decision waits; a later decision's other statement
 * is held too while earlier ones are (a barrier: it goes only after them, and after their decisions went on). The
 * pump stages the next decision, and when none joins `flush`es the held atomic statements as one message and hands
 * each decision its rows in order (`deliver`), letting each run to its end (or to its next held statement) before
 * the next hears back: a decision still reads what the ones before it wrote. When no decision waits any more (and
 * none arrived while the group's previous message was on its way, see GroupCommit `busy`) and every held statement
 * is `last`, the COMMIT goes in that message too (one round trip for an opt-in alone, instead of
 * two): the decisions that send nothing after it are answered then, and one that does (a refresh) goes on in a new
 * transaction of the group, committed at its end.
 */
export interface GroupBatch {
  /** Resolves when the decision now running holds a statement: 'atomic' (may share a message) or 'barrier'. */
  listen(): Promise<'atomic' | 'barrier'>;
  /** Stops listening: statements go at once again. */
  quiet(): void;
  /**
   * Sends the held atomic statements in one message; then `deliver(i)` hands the i-th its rows (or error). With
   * `commit`, when every held statement is `last` (see `committable`), the group's transaction is committed in the
   * same message (its fence checked first): `committed` then says that everything staged so far is durable, and a
   * statement sent after it (`sent` counts them) begins a new transaction of the group. `error`: why the message
   * failed (the group has failed).
   */
  flush(commit?: boolean): Promise<{ count: number; deliver: (i: number) => void; committed: boolean; error?: unknown }>;
  /** Whether `flush(true)` would commit: every held statement is `last`, and the group has not failed. */
  committable(): boolean;
  /** Messages sent on the group's connection so far. */
  sent(): number;
  /** The group can no longer commit (a test seam threw before a COMMIT): the held statements fail with `err`. */
  fail(err: unknown): void;
  /** Lets the held barrier statement go (after flush and deliveries). */
  release(): void;
}
