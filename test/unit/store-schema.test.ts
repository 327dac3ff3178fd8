/**
 * The SQLite file's schema, version 3 (src/store/sqlite.ts): what an opt-in's COMMIT writes into the WAL, page by
 * page (no sqlite_sequence page, no index the new request does not enter), the upgrade of a version-1 file with rows
 * in it, and the index the statement that lost `requests_prospect` now reads through.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TERMINAL_STATES } from '../../src/core/policy/types';
import { CallbackRequest } from '../../src/core/policy';
import { SqliteStore, SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite';
import { engineWorld } from '../../testkit/engine';

const TERMINAL_SQL = TERMINAL_STATES.map((s) => `'${s}'`).join(',');

/** Version 1's schema as main b88b60f created it (a fixture: the file an upgrade starts from). */
const SCHEMA_V1 = `
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
-- The prospect's queue in opt-in order (created_at, then rowid): the agent's place counted inside the opt-in.
CREATE INDEX IF NOT EXISTS requests_prospect_queue ON requests(prospect, created_at) WHERE state NOT IN (${TERMINAL_SQL});
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

/** Version 2's schema as main 130c95b created it (the file the upgrade to version 3 starts from). */
const SCHEMA_V2 = `
CREATE TABLE requests (
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
CREATE UNIQUE INDEX requests_one_pending
  ON requests(agent, prospect) WHERE state NOT IN (${TERMINAL_SQL});
CREATE UNIQUE INDEX requests_one_recall_per_prospect
  ON requests(prospect) WHERE state IN ('RINGING_AGENT', 'CONNECTING');
CREATE INDEX requests_wake ON requests(wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX requests_agent_state ON requests(agent, state);
CREATE INDEX requests_prospect_queue ON requests(prospect, created_at) WHERE state NOT IN (${TERMINAL_SQL});
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE agent_pauses (
  agent       TEXT PRIMARY KEY,
  since       INTEGER NOT NULL,
  until_at    INTEGER,
  by_whom     TEXT NOT NULL
);
CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  request_id  TEXT NOT NULL REFERENCES requests(id),
  at          INTEGER NOT NULL,
  type        TEXT NOT NULL,
  from_state  TEXT,
  to_state    TEXT,
  reason      TEXT,
  data        TEXT
);
CREATE TABLE outbox (
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
CREATE INDEX requests_prospect_done ON requests(prospect, updated_at) WHERE state = 'COMPLETED';
CREATE INDEX events_request ON events(request_id, id);
CREATE INDEX outbox_due ON outbox(next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
`;

const FRAME = 24 + 4096;

function tmpFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-schema-')), 'callbacks.db');
}

const walSize = (file: string): number => (fs.existsSync(`${file}-wal`) ? fs.statSync(`${file}-wal`).size : 0);

/** The b-trees (tables, indexes) whose pages the WAL frames in [from, to) hold, with their frame counts. */
function treesWritten(file: string, from: number, to: number): Map<string, number> {
  const db = new Database(file, { readonly: true });
  const owner = new Map<number, string>();
  for (const r of db.prepare('SELECT name, pageno FROM dbstat').all() as { name: string; pageno: number }[]) owner.set(r.pageno, r.name);
  db.close();
  const fd = fs.openSync(`${file}-wal`, 'r');
  const head = Buffer.alloc(4);
  const trees = new Map<string, number>();
  for (let at = Math.max(from, 32); at < to; at += FRAME) {
    fs.readSync(fd, head, 0, 4, at);
    const page = head.readUInt32BE(0);
    const name = page === 1 ? '(page 1)' : (owner.get(page) ?? '(other)');
    trees.set(name, (trees.get(name) ?? 0) + 1);
  }
  fs.closeSync(fd);
  return trees;
}

/** The writer's own connection (to hold checkpoints off while frames are counted). */
const writerOf = (store: SqliteStore<CallbackRequest>) => (store as unknown as { db: { db: Database.Database } }).db.db;

function v1File(): { file: string; db: Database.Database } {
  const file = tmpFile();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA_V1);
  db.prepare("INSERT INTO meta(key, value) VALUES ('schema', '1')").run();
  return { file, db };
}

describe('SQLite schema version 3', () => {
  it('an opt-in COMMIT writes pages of the requests table, the indexes its new request enters, and its history: no sqlite_sequence, no index of finished requests', async () => {
    const file = tmpFile();
    const outbox = (d: { request: CallbackRequest }, at: number) => [{ key: `${d.request.id}:requested`, requestId: d.request.id, event: 'callback.requested', createdAt: at, body: '{}' }];
    const store = SqliteStore.open<CallbackRequest>(file, { checkpoint: 'commit' });
    const w = await engineWorld({ store, outbox: outbox as never, maxPendingPerAgent: 1000 });
    for (let i = 0; i < 300; i++) await w.when.optIn(`PJSIP/a${i}`, `+4930100${String(i).padStart(4, '0')}`);
    // No checkpoint from here on: every frame the next opt-ins append stays in the WAL to be read.
    writerOf(store).pragma('wal_checkpoint(TRUNCATE)');
    writerOf(store).pragma('wal_autocheckpoint = 0');
    const from = walSize(file);
    const n = 50;
    for (let i = 0; i < n; i++) {
      const r = await w.when.optIn(`PJSIP/b${i}`, `+4930200${String(i).padStart(4, '0')}`);
      expect(r.result).toBe('created');
    }
    const trees = treesWritten(file, from, walSize(file));
    expect([...trees.keys()]).toEqual(
      expect.arrayContaining(['events', 'outbox', 'outbox_due', 'requests', 'requests_one_pending', 'requests_prospect_queue', 'requests_wake', 'sqlite_autoindex_outbox_1', 'sqlite_autoindex_requests_1']),
    );
    // Version 2 also wrote events_request (the history is clustered by request now) and requests_agent_state (gone;
    // a request enters requests_agent_done when it finishes).
    expect(trees.has('events_request')).toBe(false);
    expect(trees.has('requests_agent_state')).toBe(false);
    expect(trees.has('requests_agent_done')).toBe(false);
    // Version 1 wrote sqlite_sequence (AUTOINCREMENT of events and outbox) and requests_prospect on every opt-in.
    expect(trees.has('sqlite_sequence')).toBe(false);
    expect(trees.has('requests_prospect')).toBe(false);
    expect(trees.has('requests_prospect_done')).toBe(false);
    expect(trees.has('requests_one_recall_per_prospect')).toBe(false);
    // One leaf per b-tree and opt-in, a few splits, page 1 when the file grows (version 1: 16 per opt-in with an outbox row).
    const frames = [...trees.values()].reduce((a, b) => a + b, 0) / n;
    expect(frames).toBeLessThan(15);
    await w.close();
    await store.close();
  });

  it('a version-1 file with rows is upgraded in place to version 3: every request, history row and outbox row kept with its id, AUTOINCREMENT and requests_prospect gone, the store works on it', async () => {
    const { file, db: v1 } = v1File();
    const req = (id: string, agent: string, prospect: string, state: string, updated: number) =>
      v1
        .prepare('INSERT INTO requests(id, agent, prospect, state, created_at, updated_at, wake_at, version, data) VALUES (?, ?, ?, ?, ?, ?, NULL, 3, ?)')
        .run(id, agent, prospect, state, 1000, updated, JSON.stringify({ id, agent, prospect, state, createdAt: 1000, updatedAt: updated, wakeAt: null }));
    req('r1', 'PJSIP/1001', '2001', 'COMPLETED', 5000);
    req('r2', 'PJSIP/1002', '2001', 'COMPLETED', 7000);
    req('r3', 'PJSIP/1001', '2002', 'WAITING', 2000);
    const ev = v1.prepare('INSERT INTO events(request_id, at, type, from_state, to_state, reason, data) VALUES (?, ?, ?, NULL, NULL, NULL, NULL)');
    for (let i = 0; i < 5; i++) ev.run('r1', 1000 + i, 'created');
    ev.run('r2', 7500, 'conversation-ended');
    // The newest history rows deleted: AUTOINCREMENT's counter (8) is ahead of the largest id left (7).
    ev.run('r3', 2000, 'created');
    ev.run('r3', 2001, 'created');
    v1.prepare('DELETE FROM events WHERE id > 7').run();
    ev.run('r3', 2002, 'created'); // id 9 under AUTOINCREMENT
    const ob = v1.prepare('INSERT INTO outbox(key, request_id, event, created_at, body, next_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    ob.run('k1', 'r1', 'callback.requested', 1000, '{"a":1}', 1000, 1100);
    ob.run('k2', 'r3', 'callback.requested', 2000, '{"a":2}', 2000, null);
    const eventsBefore = v1.prepare('SELECT * FROM events ORDER BY id').all();
    const outboxBefore = v1.prepare('SELECT * FROM outbox ORDER BY id').all();
    expect((eventsBefore as { id: number }[]).map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 9]);
    v1.close();

    const store = SqliteStore.open<CallbackRequest>(file, { checkpoint: 'commit' });
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").get()).toEqual({ value: SQLITE_SCHEMA_VERSION });
    expect(SQLITE_SCHEMA_VERSION).toBe('3');
    const sqlOf = (name: string) => (db.prepare('SELECT sql FROM sqlite_schema WHERE name = ?').get(name) as { sql: string } | undefined)?.sql;
    expect(sqlOf('events')).not.toMatch(/AUTOINCREMENT/i);
    expect(sqlOf('outbox')).not.toMatch(/AUTOINCREMENT/i);
    expect(sqlOf('events')).toMatch(/REFERENCES requests\(id\)/);
    expect(sqlOf('requests_prospect')).toBeUndefined();
    expect(sqlOf('requests_prospect_done')).toMatch(/WHERE state = 'COMPLETED'/);
    expect(sqlOf('events')).toMatch(/WITHOUT ROWID/);
    expect(sqlOf('events_request')).toBeUndefined();
    expect(sqlOf('requests_agent_state')).toBeUndefined();
    expect(sqlOf('requests_agent_done')).toBeDefined();
    expect(sqlOf('outbox_due')).toBeDefined();
    expect(sqlOf('events_v2')).toBeUndefined();
    expect(sqlOf('events_v3')).toBeUndefined();
    expect(sqlOf('outbox_v2')).toBeUndefined();
    expect(db.prepare('SELECT * FROM events ORDER BY id').all()).toEqual(eventsBefore);
    expect(db.prepare('SELECT * FROM outbox ORDER BY id').all()).toEqual(outboxBefore);
    expect(db.prepare('SELECT COUNT(*) AS n FROM requests').get()).toEqual({ n: 3 });
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();

    // The store reads and writes the upgraded file.
    expect((await store.get('r3'))?.version).toBe(3);
    expect(await store.lastConversation('2001', 'PJSIP/1001')).toEqual({ connectedAt: 7000, endedAt: 7500, samePbx: true });
    expect((await store.events('r3')).map((e) => e.at)).toEqual([2000, 2002]);
    await store.appendEvents([{ id: 0, requestId: 'r3', at: 3000, type: 'created', from: null, to: null, reason: null, data: null }]);
    const ids = (await store.events('r3')).map((e) => e.id);
    // After the request's largest id (9): version 3 numbers a request's history rows after its highest.
    expect(ids).toEqual([7, 9, 10]);
    expect((await store.outboxDue(5000)).map((r) => r.key)).toEqual(['k2']);
    await store.enqueueOutbox([{ key: 'k3', requestId: 'r3', event: 'callback.cancelled', createdAt: 3000, body: '{}' }]);
    expect((await store.outbox()).map((r) => [r.id, r.key])).toEqual([
      [1, 'k1'],
      [2, 'k2'],
      [3, 'k3'],
    ]);
    await store.close();

    // Opened again: already version 3, nothing to do.
    const again = SqliteStore.open<CallbackRequest>(file, { checkpoint: 'commit' });
    expect((await again.outbox()).length).toBe(3);
    await again.close();
  });

  it('a version-1 file from a build before the outbox and the pauses (version 1 created them at open) is upgraded too', async () => {
    const file = tmpFile();
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    // version 1 without the tables later builds added to it
    db.exec(SCHEMA_V1.replace(/CREATE TABLE IF NOT EXISTS outbox[\s\S]*?\);\nCREATE INDEX IF NOT EXISTS outbox_due[^\n]*\n/, '').replace(/CREATE TABLE IF NOT EXISTS agent_pauses[\s\S]*?\);\n/, ''));
    db.prepare("INSERT INTO meta(key, value) VALUES ('schema', '1')").run();
    const names = () => (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    expect(names()).not.toContain('outbox');
    expect(names()).not.toContain('agent_pauses');
    db.close();
    const store = SqliteStore.open<CallbackRequest>(file);
    expect(await store.countByState()).toEqual({});
    await store.close();
    const check = new Database(file, { readonly: true });
    expect(check.prepare("SELECT value FROM meta WHERE key = 'schema'").get()).toEqual({ value: SQLITE_SCHEMA_VERSION });
    const tables = (check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['agent_pauses', 'events', 'meta', 'outbox', 'requests']));
    check.close();
  });

  it('a version-1 file opened read-only (the command line beside a service not yet upgraded) is read, not migrated', async () => {
    const { file, db } = v1File();
    db.close();
    const ro = SqliteStore.open<CallbackRequest>(file, { readonly: true });
    expect(await ro.countByState()).toEqual({});
    await ro.close();
    const check = new Database(file, { readonly: true });
    expect(check.prepare("SELECT value FROM meta WHERE key = 'schema'").get()).toEqual({ value: '1' });
    check.close();
  });

  it('a version-2 file with rows is upgraded to version 3: the history clustered by request with every id kept, requests_agent_state replaced by requests_agent_done; the store reads and writes it', async () => {
    const file = tmpFile();
    const v2 = new Database(file);
    v2.pragma('journal_mode = WAL');
    v2.exec(SCHEMA_V2);
    v2.prepare("INSERT INTO meta(key, value) VALUES ('schema', '2')").run();
    const req = v2.prepare('INSERT INTO requests(id, agent, prospect, state, created_at, updated_at, wake_at, version, data) VALUES (?, ?, ?, ?, 1000, ?, NULL, 2, ?)');
    const add = (id: string, agent: string, prospect: string, state: string, updated: number) =>
      req.run(id, agent, prospect, state, updated, JSON.stringify({ id, agent, prospect, state, createdAt: 1000, updatedAt: updated, wakeAt: null }));
    add('r1', 'PJSIP/1001', '2001', 'COMPLETED', 5000);
    add('r2', 'PJSIP/1001', '2002', 'WAITING', 2000);
    const ev = v2.prepare('INSERT INTO events(request_id, at, type, from_state, to_state, reason, data) VALUES (?, ?, ?, NULL, NULL, NULL, NULL)');
    ev.run('r1', 1000, 'created');
    ev.run('r2', 1001, 'created');
    ev.run('r1', 4000, 'conversation-ended');
    const eventsBefore = v2.prepare('SELECT * FROM events ORDER BY id').all();
    v2.close();

    // Read-only (the command line of this build beside a service not yet upgraded): read, not migrated.
    const ro = SqliteStore.open<CallbackRequest>(file, { readonly: true });
    expect((await ro.list({ agent: 'PJSIP/1001' })).map((r) => r.id)).toEqual(['r1', 'r2']);
    expect((await ro.events('r1')).map((e) => e.type)).toEqual(['created', 'conversation-ended']);
    await ro.close();
    const meta = (f: string) => {
      const d = new Database(f, { readonly: true });
      const v = d.prepare("SELECT value FROM meta WHERE key = 'schema'").get();
      d.close();
      return v;
    };
    expect(meta(file)).toEqual({ value: '2' });

    const store = SqliteStore.open<CallbackRequest>(file, { checkpoint: 'commit' });
    expect(meta(file)).toEqual({ value: '3' });
    const db = new Database(file, { readonly: true });
    const sqlOf = (name: string) => (db.prepare('SELECT sql FROM sqlite_schema WHERE name = ?').get(name) as { sql: string } | undefined)?.sql;
    expect(sqlOf('events')).toMatch(/PRIMARY KEY \(request_id, id\)\s*\) WITHOUT ROWID/);
    expect(sqlOf('events_request')).toBeUndefined();
    expect(sqlOf('requests_agent_state')).toBeUndefined();
    expect(sqlOf('requests_agent_done')).toMatch(/WHERE state IN/);
    expect(db.prepare('SELECT * FROM events ORDER BY id').all()).toEqual(eventsBefore);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    expect((await store.events('r1')).map((e) => [e.id, e.type])).toEqual([
      [1, 'created'],
      [3, 'conversation-ended'],
    ]);
    // Two rows of one request and one of another in one statement: numbered after each request's highest, in order.
    const row = (requestId: string, at: number, type: string) => ({ id: 0, requestId, at, type, from: null, to: null, reason: null, data: null });
    await store.appendEvents([row('r1', 6000, 'a'), row('r2', 6001, 'b'), row('r1', 6002, 'c')]);
    expect((await store.events('r1')).map((e) => [e.id, e.type])).toEqual([
      [1, 'created'],
      [3, 'conversation-ended'],
      [4, 'a'],
      [6, 'c'],
    ]);
    expect((await store.events('r2')).map((e) => [e.id, e.type])).toEqual([
      [2, 'created'],
      [4, 'b'],
    ]);
    expect(await store.lastConversation('2001', 'PJSIP/1002')).toEqual({ connectedAt: 5000, endedAt: 4000, samePbx: true });
    expect((await store.list({ agent: 'PJSIP/1001', states: ['COMPLETED'] })).map((r) => r.id)).toEqual(['r1']);
    expect(await store.countPending('PJSIP/1001')).toBe(1);
    await store.prune(10_000);
    expect(await store.events('r1')).toEqual([]);
    expect((await store.events('r2')).length).toBe(2);
    await store.close();
  });

  it("every statement the store prepares reads through an index where version 2's did; the agent's requests through requests_one_pending and requests_agent_done", async () => {
    const file = tmpFile();
    const seen = new Set<string>();
    // Every statement text the store prepares (spyOn calls through).
    const spied = jest.spyOn(Database.prototype, 'prepare');
    const store = SqliteStore.open<CallbackRequest>(file, { checkpoint: 'commit' });
    const w = await engineWorld({ store, maxPendingPerAgent: 1000 });
    await w.when.optIn('PJSIP/1', '+4930100');
    await w.when.optIn('PJSIP/1', '+4930100');
    await store.list({ agent: 'PJSIP/1' });
    await store.list({ agent: 'PJSIP/1', states: ['RINGING_AGENT', 'CONNECTING'] });
    await store.list({ agent: 'PJSIP/1', states: ['COMPLETED', 'CANCELLED'] });
    await store.list({ agent: 'PJSIP/1', states: ['DUE', 'COMPLETED'], limit: 2 });
    await store.idsInState('DUE', 'PJSIP/1');
    await store.idsInState('COMPLETED', 'PJSIP/1');
    await store.countPending('PJSIP/1');
    await store.pendingDependencies();
    await store.countByState();
    await store.events('any');
    await store.prune(0, { dryRun: true });
    await store.prune(0);
    for (const call of spied.mock.calls) seen.add(call[0] as string);
    spied.mockRestore();
    await w.close();
    await store.close();
    const db = new Database(file, { readonly: true });
    const planOf = (sql: string) => {
      const st = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
      for (let k = 0; k < 40; k++) {
        try {
          return (st.all(...Array<null>(k).fill(null)) as { detail: string }[]).map((r) => r.detail).join(' ; ');
        } catch (err) {
          if (!/parameter/i.test((err as Error).message)) throw err;
        }
      }
      throw new Error(`no plan for ${sql}`);
    };
    const plans = new Map([...seen].filter((sql) => /^\s*(SELECT|INSERT|UPDATE|DELETE)/i.test(sql) && /\b(requests|events)\b/.test(sql)).map((sql) => [sql.replace(/\s+/g, ' '), planOf(sql)]));
    db.close();
    const planWith = (re: RegExp) => [...plans.entries()].filter(([sql]) => re.test(sql)).map(([, plan]) => plan);
    // No statement reads a whole table, but the one that did in version 2 too (idsInState without an agent: the DUE
    // requests of every agent, the engine's queues).
    const scansInV2 = /^SELECT id FROM requests WHERE state = \? ORDER BY/;
    for (const [sql, plan] of plans) if (!scansInV2.test(sql)) expect(`${sql} -> ${plan}`).not.toMatch(/-> .*\bSCAN (requests|events)\b(?! USING)/);
    // The agent's requests: the pending ones through requests_one_pending, the finished ones through requests_agent_done.
    expect(planWith(/WHERE agent = \? AND state IN \(\?,\?\) AND state NOT IN/).join()).toMatch(/USING INDEX requests_one_pending \(agent=\?\)/);
    expect(planWith(/WHERE agent = \? AND state IN \(\?,\?\) AND state IN \('COMPLETED'/).join()).toMatch(/USING INDEX requests_agent_done \(agent=\? AND state=\?\)/);
    expect(planWith(/UNION ALL/).join()).toMatch(/requests_one_pending \(agent=\?\).*requests_agent_done \(agent=\?/);
    expect(planWith(/SELECT COUNT\(\*\) AS n FROM requests WHERE agent = \?/).join()).toMatch(/requests_one_pending \(agent=\?\)/);
    // A history row's number: a look-up in the history's primary key.
    expect(planWith(/^INSERT INTO events/).join()).toMatch(/SEARCH e USING PRIMARY KEY \(request_id=\?\)/);
    expect(planWith(/FROM events WHERE request_id = \? ORDER BY id/).join()).toMatch(/USING PRIMARY KEY \(request_id=\?\)/);
  });

  it('a file of a newer schema version is refused with a line naming both versions; a requests table without a version is refused', () => {
    const file = tmpFile();
    const db = new Database(file);
    db.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema', '4')");
    db.close();
    expect(() => SqliteStore.open(file)).toThrow(`schema version 4, this build understands ${SQLITE_SCHEMA_VERSION}`);
    const other = tmpFile();
    const o = new Database(other);
    o.exec('CREATE TABLE requests (id TEXT PRIMARY KEY)');
    o.close();
    expect(() => SqliteStore.open(other)).toThrow('it has a requests table but no schema version');
  });

  it("the prospect's last conversation reads through requests_prospect_done (the index of COMPLETED requests), not through the table", async () => {
    const file = tmpFile();
    const store = SqliteStore.open(file, { checkpoint: 'commit' });
    await store.close();
    const db = new Database(file, { readonly: true });
    const plan = (
      db
        .prepare(`EXPLAIN QUERY PLAN SELECT r.updated_at FROM requests r WHERE r.prospect = ? AND r.state = 'COMPLETED' AND r.agent <> ? ORDER BY r.updated_at DESC LIMIT 1`)
        .all('p', 'a') as { detail: string }[]
    ).map((r) => r.detail);
    expect(plan.join(' ; ')).toMatch(/USING INDEX requests_prospect_done \(prospect=\?\)/);
    expect(plan.join(' ; ')).not.toMatch(/TEMP B-TREE/);
    db.close();
  });
});
