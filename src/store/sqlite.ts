/**
 * The SQLite driver of the store (better-sqlite3): the database port (src/store/db.ts) over one file,
 * and `SqliteStore`, the store (src/store/sql.ts) over it. The embedded default: one instance per PBX.
 *
 * Durability: WAL journal; a request is on disk before the agent hears "we'll call you back". By default
 * (`sync: 'commit'`) the writer runs `synchronous=FULL`: SQLite's fsync inside each COMMIT, on the event loop.
 * `sync: 'thread'` (env `CC_SQLITE_SYNC=thread`, the bench's A/B) runs `synchronous=NORMAL` and every write's
 * promise resolves only once an `fdatasync` of the WAL, started after its COMMIT in libuv's thread pool, has
 * completed (src/store/wal-sync.ts: why that is as durable as FULL, and what a failed sync does); measured on the
 * 2-core machine beside Asterisk it made the opt-in slower under concurrency (the hand-offs to and from the thread
 * pool cost more than the loop's wait for one fsync; docs/performance-log.md), so it is not the default.
 * better-sqlite3 is synchronous: every statement is done when it returns. A transaction holds the one connection from BEGIN IMMEDIATE to COMMIT; statements from
 * outside it wait until it ends, so nobody reads another writer's uncommitted rows. The WAL's checkpoints (copying
 * it into the main file) run in a worker thread, not inside a COMMIT (src/store/checkpoint.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { TERMINAL_STATES } from '../core/policy/types';
import { RequestRecord, StoreError } from './contract';
import { Db, Dialect, GroupTx, TxQueries } from './db';
import { BACKSTOP_FACTOR, CHECKPOINT_PAGES, Checkpointer, CheckpointMode } from './checkpoint';
import { asStaged, stagedOn } from './group';
import { fdatasync, SyncFn, SyncMode, WalSync } from './wal-sync';
import { SqlStore } from './sql';

/** Longest a write waits for another process's lock (the event loop waits with it). */
export const BUSY_TIMEOUT_MS = 1000;
/** The opt-in fails fast instead: the agent hears the error prompt at once, other calls go on. */
export const BUSY_OPT_IN_MS = 100;

const TERMINAL_SQL = TERMINAL_STATES.map((s) => `'${s}'`).join(',');

/**
 * Schema version 3 (what a new file gets). Every page an opt-in dirties is a WAL frame that its COMMIT writes and
 * fsyncs (docs/performance-log.md, "Pages per opt-in COMMIT"), so the tables carry only the indexes a statement of
 * src/store/sql.ts reads through, and an index that an opt-in need not touch is partial: `requests_prospect_done`
 * holds only the COMPLETED requests (lastConversation's), not every request of the number as version 1's
 * `requests_prospect` did. `events` and `outbox` have no AUTOINCREMENT: it made every insert also write the
 * sqlite_sequence page, to keep an id from being handed out again after the newest rows were deleted; nothing
 * depends on that (an event's id orders the rows of one request, whose rows are only ever deleted together; an
 * outbox row is deleted only once sent, and the sender, `outbox retry` and the page address only unsent rows).
 * Version 3 (bench/wal-pages.ts --life: 10.4 → 8.6 frames per opt-in COMMIT, 52 → 42 per request's life):
 * - `events` is clustered by request (WITHOUT ROWID, primary key (request_id, id)): a history row is one entry in
 *   one b-tree, where version 2 wrote the table's last page and `events_request`. Its id is numbered per request
 *   (the request's highest + 1, `eventsInsert`), which is all it was used for: the order of one request's rows.
 * - `requests_agent_state` (every request, rewritten at every transition, since `state` is in it) is gone: the
 *   agent's pending requests are read through `requests_one_pending` (agent, prospect), its finished ones through
 *   `requests_agent_done`, which a request enters once, when it finishes. A statement reads through them when it
 *   names their condition (src/store/sql.ts list, idsInState).
 */
const TABLES = `
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
-- The prospect's queue in opt-in order (created_at, then rowid): the agent's place counted inside the opt-in.
CREATE INDEX IF NOT EXISTS requests_prospect_queue ON requests(prospect, created_at) WHERE state NOT IN (${TERMINAL_SQL});
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- "Hold my callbacks": agents who paused their callbacks (feature code or page), until resumed or until_at.
CREATE TABLE IF NOT EXISTS agent_pauses (
  agent       TEXT PRIMARY KEY,
  since       INTEGER NOT NULL,
  until_at    INTEGER,
  by_whom     TEXT NOT NULL
);
`;

/** The history as version 2 has it (`name` lets the migration build it beside the old). */
const eventsV2 = (events: string) => `
CREATE TABLE IF NOT EXISTS ${events} (
  id          INTEGER PRIMARY KEY,
  request_id  TEXT NOT NULL REFERENCES requests(id),
  at          INTEGER NOT NULL,
  type        TEXT NOT NULL,
  from_state  TEXT,
  to_state    TEXT,
  reason      TEXT,
  data        TEXT
);
`;

/** The webhook's outbox, the same in versions 2 and 3. */
const outboxTable = (outbox: string) => `
-- Outbox of notifications for the CRM webhook: written in the same transaction as the transition that
-- produced them, sent by the webhook sender, marked sent once accepted. \`key\` is the idempotency key.
CREATE TABLE IF NOT EXISTS ${outbox} (
  id          INTEGER PRIMARY KEY,
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
`;

/** The history and the webhook's outbox as version 2 has them. */
const historyTablesV2 = (events: string, outbox: string) => eventsV2(events) + outboxTable(outbox);

/** The history as version 3 has it: clustered by request (`name` lets the migration build it beside the old). */
const eventsV3 = (events: string) => `
CREATE TABLE IF NOT EXISTS ${events} (
  id          INTEGER NOT NULL,
  request_id  TEXT NOT NULL REFERENCES requests(id),
  at          INTEGER NOT NULL,
  type        TEXT NOT NULL,
  from_state  TEXT,
  to_state    TEXT,
  reason      TEXT,
  data        TEXT,
  PRIMARY KEY (request_id, id)
) WITHOUT ROWID;
`;

const INDEXES_V2 = `
-- lastConversation: the number's latest COMPLETED request (an opt-in's new request is not in it).
CREATE INDEX IF NOT EXISTS requests_prospect_done ON requests(prospect, updated_at) WHERE state = 'COMPLETED';
CREATE INDEX IF NOT EXISTS events_request ON events(request_id, id);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
`;

const INDEXES_V3 = `
-- lastConversation: the number's latest COMPLETED request (an opt-in's new request is not in it).
CREATE INDEX IF NOT EXISTS requests_prospect_done ON requests(prospect, updated_at) WHERE state = 'COMPLETED';
-- An agent's finished requests (the page, the command line); its pending ones are in requests_one_pending.
CREATE INDEX IF NOT EXISTS requests_agent_done ON requests(agent, state) WHERE state IN (${TERMINAL_SQL});
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
`;

const SCHEMA = TABLES + eventsV3('events') + outboxTable('outbox') + INDEXES_V3;

const EVENT_COLUMNS = 'id, request_id, at, type, from_state, to_state, reason, data';
const OUTBOX_COLUMNS = 'id, key, request_id, event, created_at, body, attempts, next_at, sent_at, failed_at, last_error';

/**
 * Version 1 → 2, in one transaction: `events` and `outbox` rebuilt without AUTOINCREMENT (every row kept with its id;
 * SQLite drops their sqlite_sequence rows with the old tables), `requests_prospect` replaced by
 * `requests_prospect_done`.
 */
const MIGRATE_1_TO_2 = `
${historyTablesV2('events_v2', 'outbox_v2')}
INSERT INTO events_v2(${EVENT_COLUMNS}) SELECT ${EVENT_COLUMNS} FROM events ORDER BY id;
INSERT INTO outbox_v2(${OUTBOX_COLUMNS}) SELECT ${OUTBOX_COLUMNS} FROM outbox ORDER BY id;
DROP TABLE events;
DROP TABLE outbox;
ALTER TABLE events_v2 RENAME TO events;
ALTER TABLE outbox_v2 RENAME TO outbox;
DROP INDEX IF EXISTS requests_prospect;
${INDEXES_V2}
UPDATE meta SET value = '2' WHERE key = 'schema';
`;

/**
 * Version 2 → 3, in one transaction: `events` rebuilt clustered by request (every row kept with its id: unique, so
 * unique within its request too; the ids a request gets from now on follow its highest), `events_request` gone with
 * the old table; `requests_agent_state` replaced by `requests_agent_done`.
 */
const MIGRATE_2_TO_3 = `
${eventsV3('events_v3')}
INSERT INTO events_v3(${EVENT_COLUMNS}) SELECT ${EVENT_COLUMNS} FROM events;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
DROP INDEX IF EXISTS requests_agent_state;
${INDEXES_V3}
UPDATE meta SET value = '3' WHERE key = 'schema';
`;

export const SQLITE_SCHEMA_VERSION = '3';

/**
 * Creates the schema in a new file, or brings a version-1 or -2 file to version 3 (its rows kept), in one
 * transaction (a second process opening the file meanwhile waits for it and then finds version 3). A version this
 * build does not know is refused.
 */
function createOrMigrate(db: Database.Database): void {
  const versionOf = () => {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get();
    const row = hasMeta ? (db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined) : undefined;
    return row?.value;
  };
  db.transaction(() => {
    const version = versionOf();
    if (version === undefined) {
      const hasRequests = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'requests'").get();
      if (hasRequests) throw new Error('it has a requests table but no schema version');
      db.exec(SCHEMA);
      db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)').run('schema', SQLITE_SCHEMA_VERSION);
    } else if (version === '1' || version === '2') {
      if (version === '1') {
        // A version-1 file from a build before some of its tables (the outbox, the pauses) got them from
        // CREATE ... IF NOT EXISTS at open, as version 1 did; then its rows move to version 2.
        db.exec(TABLES + historyTablesV2('events', 'outbox'));
        db.exec(MIGRATE_1_TO_2);
      }
      db.exec(MIGRATE_2_TO_3);
    } else if (version !== SQLITE_SCHEMA_VERSION) {
      throw new Error(`schema version ${version}, this build understands ${SQLITE_SCHEMA_VERSION}`);
    }
  }).immediate();
}

const eventsInserts = new Map<number, string>();

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  seq: 'rowid',
  nullsLast: '',
  jsonField: (column, field) => `json_extract(${column}, '$.${field}')`,
  fromJson: (value) => (typeof value === 'string' ? JSON.parse(value) : value),
  forUpdate: '',
  skipLocked: '',
  // One process at a time writes a SQLite file: BEGIN IMMEDIATE already serialises the opt-ins.
  lockKeys: async () => undefined,
  lockStatement: () => undefined,
  isRecallConflict(err) {
    const e = err as { code?: string; message?: string };
    return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' && /constraint failed: requests\.prospect$/.test(e.message ?? '');
  },
  // Version 3's history is clustered by request: each row numbered after its request's highest (a look-up in the
  // primary key; the SELECT reads every highest before the first row goes in), the rows of one statement in order.
  eventsInsert: (rows) => {
    let sql = eventsInserts.get(rows);
    if (sql === undefined) {
      const values = Array.from({ length: rows }, (_, k) => `(?, ?, ?, ?, ?, ?, ?, ${k + 1})`).join(', ');
      sql = `INSERT INTO events(request_id, id, at, type, from_state, to_state, reason, data)
        SELECT v.column1, COALESCE((SELECT MAX(e.id) FROM events e WHERE e.request_id = v.column1), 0) + v.column8,
          v.column2, v.column3, v.column4, v.column5, v.column6, v.column7
        FROM (VALUES ${values}) v ORDER BY v.column8`;
      eventsInserts.set(rows, sql);
    }
    return sql;
  },
};

function settled<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/**
 * The open transaction on a file, shared by every connection to that file in this process (a second
 * client, as in the contract tests): `gate` settles when it ends. A connection that began its own
 * transaction meanwhile would wait for the file's lock with the event loop stopped (better-sqlite3 is
 * synchronous), and the transaction it waits for could never finish.
 */
interface FileGate {
  gate: Promise<void> | undefined;
}
const gates = new Map<string, FileGate>();

/** better-sqlite3 behind the database port: prepared statements cached by their text. */
class SqliteDb implements Db {
  readonly dialect = sqliteDialect;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly file: FileGate;
  private readonly direct: TxQueries = {
    one: (sql, params = []) => settled(() => this.stmt(sql).get(...params) as never),
    all: (sql, params = []) => settled(() => this.stmt(sql).all(...params) as never),
    run: (sql, params = []) => settled(() => this.stmt(sql).run(...params).changes),
    // In process: one prepared statement after the other, no round trips to save.
    script: (statements) =>
      settled(() =>
        statements.map((st) => {
          const s = this.stmt(st.sql);
          if (s.reader) return s.all(...(st.params ?? [])) as unknown[];
          s.run(...(st.params ?? []));
          return [];
        }),
      ),
  };
  /** `PRAGMA busy_timeout` for the opt-in's BEGIN and back, prepared once (db.pragma prepares a statement per call). */
  private busy: { quick: Database.Statement; normal: Database.Statement } | undefined;

  /** The WAL's checkpoints in a worker thread (src/store/checkpoint.ts); undefined: inside the COMMIT, as SQLite does. */
  readonly checkpointer: Checkpointer | undefined;
  /** Why the checkpoints went back inside the COMMIT (the worker failed), if they did. */
  checkpointFallback: string | undefined;

  /** The store's own syncs of the WAL (sync: 'thread'); undefined: SQLite syncs inside the COMMIT (FULL). */
  readonly walSync: WalSync | undefined;

  constructor(
    private readonly db: Database.Database,
    readonly where: string,
    checkpoint: CheckpointMode = 'commit',
    checkpointPages = CHECKPOINT_PAGES,
    walSync?: WalSync,
  ) {
    this.walSync = walSync;
    let file = db.memory ? undefined : gates.get(where);
    if (!file) {
      file = { gate: undefined };
      if (!db.memory) gates.set(where, file);
    }
    this.file = file;
    if (checkpoint === 'background' && !db.memory && !db.readonly) {
      const c = new Checkpointer(where, {
        exclusive: (f) => this.exclusive(f),
        inline: (reason) => {
          this.checkpointFallback = reason;
          if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
        },
      }, checkpointPages);
      // SQLite's own checkpoint inside a COMMIT only as a backstop, should the worker fall behind.
      db.pragma(`wal_autocheckpoint = ${BACKSTOP_FACTOR * c.threshold}`);
      this.checkpointer = c;
    }
  }

  /** Holds the file's gate (no transaction of this process begins) while `f` runs. */
  private async exclusive<T>(f: () => Promise<T>): Promise<T> {
    while (this.file.gate) await this.file.gate;
    let release!: () => void;
    this.file.gate = new Promise<void>((resolve) => (release = resolve));
    try {
      return await f();
    } finally {
      this.file.gate = undefined;
      release();
    }
  }

  private get gate(): Promise<void> | undefined {
    return this.file.gate;
  }

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Runs `f` once no transaction is open on the file (at once when none is: no extra turn of the loop). */
  private async whenFree<T>(f: () => Promise<T>): Promise<T> {
    while (this.file.gate) await this.file.gate;
    return f();
  }

  /**
   * A second, read-only connection to the file, opened the first time a read comes while a transaction or a group
   * holds the writer: in WAL mode it reads the last committed state at once instead of waiting for the writer's
   * COMMIT (the page, the queue position for a confirmation, the scheduler's reads). Never for ':memory:'.
   */
  private reader: { db: Database.Database; statements: Map<string, Database.Statement> } | undefined;

  /** The statement on the reader connection when `sql` only reads and the file has one; else undefined. */
  private readerStmt(sql: string): Database.Statement | undefined {
    if (this.db.memory || !this.stmt(sql).readonly) return undefined;
    if (!this.reader) {
      try {
        const db = new Database(this.where, { readonly: true, fileMustExist: true });
        db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
        this.reader = { db, statements: new Map() };
      } catch {
        return undefined;
      }
    }
    let s = this.reader.statements.get(sql);
    if (!s) {
      s = this.reader.db.prepare(sql);
      this.reader.statements.set(sql, s);
    }
    return s;
  }

  // A decision staged in this connection's group, or a statement from inside its own `tx`, reads and writes on it (it
  // holds the gate). A read from anyone else meanwhile reads the committed state on the reader connection; a write
  // from anyone else waits for the gate.
  // A write outside a transaction and outside a decision (its own autocommit) resolves once it is durable (see
  // `synced`); inside a decision it is part of the group, whose commit is synced.
  one<T>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    if (stagedOn(this)) return this.direct.one<T>(sql, params);
    if (!this.stmt(sql).readonly) return this.synced(() => this.direct.one<T>(sql, params));
    if (!this.gate) return this.direct.one<T>(sql, params);
    const r = this.readerStmt(sql);
    return r ? settled(() => r.get(...params) as T | undefined) : this.whenFree(() => this.direct.one<T>(sql, params));
  }

  all<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    if (stagedOn(this)) return this.direct.all<T>(sql, params);
    if (!this.stmt(sql).readonly) return this.synced(() => this.direct.all<T>(sql, params));
    if (!this.gate) return this.direct.all<T>(sql, params);
    const r = this.readerStmt(sql);
    return r ? settled(() => r.all(...params) as T[]) : this.whenFree(() => this.direct.all<T>(sql, params));
  }

  run(sql: string, params: readonly unknown[] = []): Promise<number> {
    if (stagedOn(this)) return this.direct.run(sql, params);
    return this.synced(() => this.direct.run(sql, params));
  }

  /**
   * A write of its own (autocommit, or `tx`'s COMMIT inside `f`): refused once a sync failed; run when no
   * transaction holds the file; resolved once a sync that started after it completed (sync: 'thread').
   */
  private async synced<T>(f: () => Promise<T>): Promise<T> {
    this.walSync?.refuseIfFailed();
    const result = await this.whenFree(f);
    if (this.walSync && !this.db.memory) await this.walSync.durable();
    return result;
  }

  /** BEGIN IMMEDIATE; the opt-in fails fast (SQLITE_BUSY → StoreError) while another process holds the write lock. */
  private begin(quick: boolean): void {
    if (quick) {
      this.busy ??= { quick: this.db.prepare(`PRAGMA busy_timeout = ${BUSY_OPT_IN_MS}`), normal: this.db.prepare(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`) };
      this.busy.quick.run();
    }
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (quick && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
        throw new StoreError(`callback store ${this.where} is locked by another process (${code}); the opt-in was not stored`, err);
      }
      throw err;
    } finally {
      if (quick) this.busy?.normal.run();
    }
  }

  /** Inside a staged decision: a SAVEPOINT of the group's transaction instead of a transaction of its own. */
  private async nested<T>(depth: { depth: number }, fn: (q: TxQueries) => Promise<T>): Promise<T> {
    const name = `t${++depth.depth}`;
    this.db.exec(`SAVEPOINT ${name}`);
    try {
      const result = await fn(this.direct);
      this.db.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      throw err;
    } finally {
      depth.depth--;
    }
  }

  async tx<T>(fn: (q: TxQueries) => Promise<T>, opts: { quick?: boolean } = {}): Promise<T> {
    const staged = stagedOn(this);
    if (staged) return this.nested(staged, fn);
    this.walSync?.refuseIfFailed();
    while (this.file.gate) await this.file.gate;
    let release!: () => void;
    this.file.gate = new Promise<void>((resolve) => (release = resolve));
    let result: T;
    try {
      this.walSync?.refuseIfFailed();
      this.begin(opts.quick ?? false);
      try {
        // Staged like a group's decision: what `fn` reads or writes through this Db meanwhile (a store call from
        // inside it, as the opt-in's refresh makes) goes to this transaction instead of waiting for its end.
        result = await asStaged(this, () => fn(this.direct));
        this.db.exec('COMMIT');
        this.checkpointer?.committed();
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      this.file.gate = undefined;
      release();
    }
    // Committed (the file's gate is free for the next writer); resolved once a sync after the COMMIT completed.
    if (this.walSync) await this.walSync.durable();
    return result;
  }

  /**
   * Group commit (db.ts GroupTx): BEGIN IMMEDIATE now, a SAVEPOINT per staged decision, one COMMIT (one sync
   * of the WAL) for all. The group holds the file's gate from BEGIN to its COMMIT, so statements from outside its
   * decisions wait and never read its staged rows. The COMMIT runs on the event loop (better-sqlite3 is
   * synchronous); with sync: 'thread' it only writes the frames, and the sync after it runs in the thread pool
   * (`durable`, wal-sync.ts) while the next group begins; with sync: 'commit' SQLite's fsync is inside it.
   */
  async group(opts: { quick?: boolean } = {}): Promise<GroupTx> {
    this.walSync?.refuseIfFailed();
    while (this.file.gate) await this.file.gate;
    let release!: () => void;
    this.file.gate = new Promise<void>((resolve) => (release = resolve));
    try {
      this.walSync?.refuseIfFailed();
      this.begin(opts.quick ?? false);
    } catch (err) {
      this.file.gate = undefined;
      release();
      throw err;
    }
    let open = true;
    let n = 0;
    const end = (sql: 'COMMIT' | 'ROLLBACK') => {
      if (!open) return;
      try {
        this.db.exec(sql);
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      } finally {
        open = false;
        this.file.gate = undefined;
        release();
      }
      if (sql === 'COMMIT') this.checkpointer?.committed();
    };
    return {
      linger: false,
      stage: async <T>(fn: () => Promise<T>): Promise<T> => {
        if (!open) throw new StoreError(`callback store ${this.where}: the group has ended`);
        const name = `d${++n}`;
        this.db.exec(`SAVEPOINT ${name}`);
        try {
          const result = await asStaged(this, fn);
          this.db.exec(`RELEASE ${name}`);
          return result;
        } catch (err) {
          if (this.db.inTransaction) this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
          throw err;
        }
      },
      // COMMIT on the loop (frames written, not synced under sync: 'thread'; the gate is free for the next group at
      // once); the group is durable when `durable` resolves (with the sync's end), see wal-sync.ts.
      commit: async () => {
        end('COMMIT');
        return this.walSync ? { durable: this.walSync.durable() } : undefined;
      },
      rollback: async () => end('ROLLBACK'),
    };
  }

  /**
   * Readiness: the store is open and a write could start now (the file and its directory are writable
   * and the write lock can be taken). Nothing is written: the transaction is rolled back at once.
   */
  async writable(): Promise<{ ok: true } | { ok: false; reason: string }> {
    while (this.file.gate) await this.file.gate;
    if (!this.db.open) return { ok: false, reason: 'store closed' };
    if (this.db.readonly) return { ok: false, reason: 'store opened read-only' };
    // A failed sync of the WAL refuses every write until a restart (wal-sync.ts): not ready.
    if (this.walSync?.failed) return { ok: false, reason: this.walSync.failed.message };
    try {
      if (!this.db.memory) {
        fs.accessSync(this.where, fs.constants.W_OK);
        fs.accessSync(path.dirname(this.where), fs.constants.W_OK);
      }
      this.db.exec('BEGIN IMMEDIATE');
      this.db.exec('ROLLBACK');
      return { ok: true };
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      return { ok: false, reason: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    while (this.file.gate) await this.file.gate;
    if (this.walSync) await this.walSync.close();
    await this.checkpointer?.close();
    if (this.reader?.db.open) this.reader.db.close();
    if (this.db.open) this.db.close();
  }
}

export interface SqliteOptions {
  readonly?: boolean;
  /**
   * Where the WAL's checkpoints run: 'background' (the default), in a worker thread with its own connection, out of
   * the COMMITs; 'commit', inside the COMMIT that takes the WAL past 1000 pages, as SQLite does by default (the bench
   * compares the two). See src/store/checkpoint.ts.
   */
  checkpoint?: CheckpointMode;
  /** The worker's checkpoint threshold in pages (tests; default CHECKPOINT_PAGES, SQLite's own default). */
  checkpointPages?: number;
  /**
   * How a commit is made durable: 'commit' (the default), synchronous=FULL, SQLite's fsync inside each COMMIT on
   * the event loop; 'thread', synchronous=NORMAL and the store's own fdatasync of the WAL in libuv's thread pool,
   * off the event loop (the bench's A/B, env CC_SQLITE_SYNC=thread; slower here, see the header). See
   * src/store/wal-sync.ts.
   */
  sync?: SyncMode;
  /** Test seam: the sync of the WAL's descriptor (default fs.fdatasync in the thread pool). */
  syncFn?: SyncFn;
  /** A sync of the WAL failed: writes are refused from now on (the service logs store.sync_failed). */
  onSyncFailed?: (err: StoreError) => void;
}

/**
 * Opens (and creates or migrates) the SQLite file. Every failure becomes a StoreError whose message says
 * which file and what is wrong with it, so the service can refuse to start with a clear line.
 */
export function openSqliteDb(file: string, opts: SqliteOptions = {}): Db {
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
    if (!opts.readonly) createOrMigrate(db);
    const schema = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined;
    // Read-only (the command line beside a service not yet upgraded): versions 1 and 2 read the same (their indexes
    // serve the same statements; the history's ids order each request's rows in every version).
    if (schema && schema.value !== SQLITE_SCHEMA_VERSION && !(opts.readonly && (schema.value === '1' || schema.value === '2'))) {
      throw new Error(`schema version ${schema.value}, this build understands ${SQLITE_SCHEMA_VERSION}`);
    }
  } catch (err) {
    db?.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot open callback store ${where}: ${(err as Error).message}`, err);
  }
  let walSync: WalSync | undefined;
  if (!opts.readonly && file !== ':memory:' && (opts.sync ?? 'commit') === 'thread') {
    // The schema above was written at FULL; from here on the store syncs the WAL itself (see wal-sync.ts).
    try {
      const wal = `${path.resolve(file)}-wal`;
      const fd = fs.openSync(wal, 'r');
      if (fs.fstatSync(fd).ino !== fs.statSync(wal).ino) throw new Error(`${wal} changed while it was opened`);
      walSync = new WalSync(fd, where, opts.syncFn ?? fdatasync, opts.onSyncFailed);
      db.pragma('synchronous = NORMAL');
    } catch (err) {
      db.close();
      throw new StoreError(`cannot open callback store ${where}: its WAL: ${(err as Error).message}`, err);
    }
  }
  return new SqliteDb(db, where, opts.checkpoint ?? 'background', opts.checkpointPages, walSync);
}

/** The store in one SQLite file. */
export class SqliteStore<R extends RequestRecord> extends SqlStore<R> {
  /** Opens (creates, checks) the file; see openSqliteDb. Synchronous: the file is ready when this returns. */
  static open<R extends RequestRecord>(file: string, opts: SqliteOptions = {}): SqliteStore<R> {
    return new SqliteStore<R>(openSqliteDb(file, opts));
  }

  /** The WAL's checkpoints in a worker thread (tests, the bench); undefined when they run inside the COMMIT. */
  get checkpointer(): Checkpointer | undefined {
    return (this.db as SqliteDb).checkpointer;
  }

  /** Why the checkpoints went back inside the COMMIT (the worker failed), if they did. */
  get checkpointFallback(): string | undefined {
    return (this.db as SqliteDb).checkpointFallback;
  }

  /** The store's own syncs of the WAL (sync: 'thread'; tests, the bench); undefined at synchronous=FULL. */
  get walSync(): WalSync | undefined {
    return (this.db as SqliteDb).walSync;
  }

  /** The file (resolved), or 'in memory'. */
  get file(): string {
    return this.where;
  }
}
