/**
 * The opt-in's write (src/store/sql.ts createOrRefresh) close to the disk: a new request is one script — on
 * PostgreSQL one round trip from the group's SAVEPOINT to the agent's place in the queue, its values inlined as
 * escaped literals; on SQLite prepared statements only, none prepared again per opt-in (the opt-in's
 * busy_timeout pragmas included). The attack: every value the script inlines, written to break out of its literal.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { GroupCommit } from '../../src/store/group';
import { FencedError, RequestRecord, RequestWrite } from '../../src/store/contract';
import { MIGRATIONS } from '../../src/store/migrations/postgres';
import { PgStore } from '../../src/store/postgres';
import { SqliteStore } from '../../src/store/sqlite';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

interface Rec extends RequestRecord {
  agentCallerId?: { name: string; number: string };
  contact?: { name: string; company: string } | null;
  note?: string;
}

function rec(id: string, agent: string, prospect: string, now = 1000, extra: Partial<Rec> = {}): Rec {
  return { id, agent, prospect, state: 'WAITING', createdAt: now, updatedAt: now, wakeAt: now + 300000, ...extra };
}

/** A new request's rows: two history rows and two outbox rows, every text field `h`. */
function rows(r: Rec, h = 'x'): () => RequestWrite<Rec> {
  return () => ({
    request: r,
    events: [
      { requestId: r.id, at: r.createdAt, type: `requested${h}`, to: 'WAITING', reason: h, data: { channelId: h, nested: { quote: h, list: [h] } } },
      { requestId: r.id, at: r.createdAt, type: 'noted', from: h, to: h, reason: null, data: null },
    ],
    outbox: [
      { key: `${r.id}:created${h}`, requestId: r.id, event: `created${h}`, createdAt: r.createdAt, body: JSON.stringify({ id: r.id, name: h }) },
      { key: `${r.id}:second${h}`, requestId: r.id, event: 'second', createdAt: r.createdAt + 1, body: h },
    ],
  });
}
const refresh = (now: number) => (e: Rec) => ({ request: { ...e, updatedAt: now, note: 'refreshed' }, events: [{ requestId: e.id, at: now, type: 'refreshed' }] });

describe('the opt-in on SQLite: prepared once', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-optin-'));
  });
  afterEach(() => {
    jest.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a warm store prepares no statement per opt-in, in a group or alone (the busy_timeout pragmas included)', async () => {
    const store = SqliteStore.open<Rec>(path.join(dir, 'callbacks.db'));
    const gc = new GroupCommit({ open: (o) => store.group(o) });
    try {
      const optIn = (i: number, grouped: boolean) => {
        const f = () => store.createOrRefresh(`PJSIP/${i}`, '2001', 10, rows(rec(`r${i}`, `PJSIP/${i}`, '2001')), undefined, 1000);
        return grouped ? gc.run(f, { quick: true }) : f();
      };
      // Warm: both paths once, and the statement that says why nothing was inserted.
      expect(await optIn(0, true)).toMatchObject({ result: 'created', position: 1 });
      expect(await optIn(1, false)).toMatchObject({ result: 'created', position: 2 });
      expect(await store.createOrRefresh('PJSIP/0', '2001', 10, rows(rec('r0b', 'PJSIP/0', '2001')), undefined, 1000)).toMatchObject({ result: 'exists' });
      const prepare = jest.spyOn(Database.prototype, 'prepare');
      const pragma = jest.spyOn(Database.prototype, 'pragma');
      for (let i = 2; i < 8; i++) expect(await optIn(i, i % 2 === 0)).toMatchObject({ result: 'created', position: i + 1 });
      expect(await gc.run(() => store.createOrRefresh('PJSIP/3', '2001', 10, rows(rec('r3b', 'PJSIP/3', '2001')), undefined, 1000), { quick: true })).toMatchObject({
        result: 'exists',
        request: { id: 'r3' },
      });
      expect(prepare).not.toHaveBeenCalled();
      expect(pragma).not.toHaveBeenCalled();
      expect((await store.events('r7')).map((e) => e.type)).toEqual(['requestedx', 'noted']);
      expect((await store.outbox()).filter((o) => o.requestId === 'r7').map((o) => o.event)).toEqual(['createdx', 'second']);
    } finally {
      await store.close();
    }
  });
});

describe('the opt-in on PostgreSQL: one round trip, every value an escaped literal', () => {
  let db: TestDatabase;
  const opened: PgStore<Rec>[] = [];
  const open = async (pbx: string) => {
    const s = await PgStore.open<Rec>(db.url, { pbx });
    opened.push(s);
    return s;
  };
  beforeEach(async () => {
    db = await freshDatabase('optin');
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    for (const s of opened.splice(0)) await s.close();
    await db.drop();
  });

  it('a new request in a group: one query with its COMMIT (BEGIN with the fence and timeouts, savepoints and the call of cc_opt_in: locks, the rows, the place in the queue)', async () => {
    const store = await open('site-a');
    const sent: string[] = [];
    const query = jest.spyOn(pg.Client.prototype, 'query');
    let atCommit = -1;
    const gc = new GroupCommit({ open: (o) => store.group(o), beforeCommit: () => void (atCommit = query.mock.calls.length) });
    const before = query.mock.calls.length;
    const r = await gc.run(() => store.createOrRefresh('PJSIP/1001', '2001', 10, rows(rec('a', 'PJSIP/1001', '2001')), undefined, 100), { quick: true });
    for (const c of query.mock.calls.slice(before)) sent.push(String(c[0]));
    expect(r).toMatchObject({ result: 'created', position: 1 });
    // BEGIN (with the fence and timeouts), the opt-in and the COMMIT in one message: the test seam ran before it.
    expect(atCommit - before).toBe(0);
    expect(query.mock.calls.length - before).toBe(1);
    expect(sent[0]).toMatch(/^BEGIN; SELECT set_config\('synchronous_commit', 'on', true\).*; SAVEPOINT d1; SAVEPOINT t1; SELECT created, taken, existing, n, total, ahead, err_code, err_message FROM cc_opt_in\(.*\); COMMIT$/s);
    query.mockRestore();
    expect((await store.events('a')).map((e) => e.type)).toEqual(['requestedx', 'noted']);
    expect((await store.outbox()).map((o) => o.key)).toEqual(['a:createdx', 'a:secondx']);
  });

  it('the attack: agent, prospect, PBX, caller-ID and CRM names, history and outbox rows written to break out of their literals come back as they were; nothing else runs', async () => {
    const hostile = [
      "O'Brien'); DROP TABLE requests; --",
      "back\\slash \\' OR 1=1 --",
      '$$; DROP TABLE events; $$',
      "what? a ?-mark ? '?' $1 $2",
      "E'\\x27'; SELECT pg_sleep(5); --",
      '"}], "x": 1}\'; DELETE FROM outbox; --',
    ];
    for (const [i, h] of hostile.entries()) {
      // The PBX is inlined too (the caps' scope, the advisory locks' keys): a store per hostile PBX.
      const store = await open(`site-${h}`);
      const gc = new GroupCommit({ open: (o) => store.group(o) });
      const agent = `PJSIP/10${i}${h}`;
      const prospect = `+4930${i}${h}`;
      const extra = { agentCallerId: { name: h, number: h }, contact: { name: h, company: h } };
      // In a group (after its savepoint) and in a transaction of its own (no group): both inline.
      const grouped = await gc.run(() => store.createOrRefresh(agent, prospect, 10, rows(rec(`g${i}`, agent, prospect, 1000, extra), h), undefined, 100), { quick: true });
      const alone = await store.createOrRefresh(`${agent}-2`, prospect, 10, rows(rec(`s${i}`, `${agent}-2`, prospect, 1000, extra), h), undefined, 100);
      expect([grouped, alone]).toMatchObject([
        { result: 'created', position: 1 },
        { result: 'created', position: 2 },
      ]);
      // The existing request comes back whole from the inlined script; the refresh path then writes it.
      expect(await gc.run(() => store.createOrRefresh(agent, prospect, 10, rows(rec(`z${i}`, agent, prospect), h), undefined, 100))).toEqual({
        result: 'exists',
        request: rec(`g${i}`, agent, prospect, 1000, extra),
      });
      expect(await gc.run(() => store.createOrRefresh(agent, prospect, 10, rows(rec(`z${i}`, agent, prospect), h), refresh(2000), 100))).toMatchObject({
        result: 'refreshed',
        position: 1,
      });
      for (const id of [`g${i}`, `s${i}`]) {
        const got = (await store.get(id))!.request;
        expect(got).toMatchObject({ prospect, ...extra });
        expect((await store.events(id)).slice(0, 2)).toMatchObject([
          { type: `requested${h}`, reason: h, data: { channelId: h, nested: { quote: h, list: [h] } } },
          { type: 'noted', from: h, to: h },
        ]);
      }
      const byColumn = await store.query<{ pbx: string; agent: string; prospect: string }>('SELECT pbx, agent, prospect FROM requests WHERE id = ANY($1) ORDER BY id', [[`g${i}`, `s${i}`]]);
      expect(byColumn.rows).toEqual([
        { pbx: `site-${h}`, agent, prospect },
        { pbx: `site-${h}`, agent: `${agent}-2`, prospect },
      ]);
      const outbox = (await store.outbox()).filter((o) => o.requestId === `g${i}`);
      expect(outbox.map((o) => [o.key, o.event, o.body])).toEqual([
        [`g${i}:created${h}`, `created${h}`, JSON.stringify({ id: `g${i}`, name: h })],
        [`g${i}:second${h}`, 'second', h],
      ]);
    }
    // Nothing else ran: every table is there, with exactly the rows written (2 requests, 2 + 2 + 1 history rows and
    // 4 outbox rows per hostile value; the refused z requests wrote nothing).
    const count = async (t: string) => Number((await opened[0].query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${t}`)).rows[0].n);
    expect(await count('requests')).toBe(2 * hostile.length);
    expect(await count('events')).toBe(5 * hostile.length);
    expect(await count('outbox')).toBe(4 * hostile.length);
  });

  describe('opt-ins arriving together share one round trip (GroupBatch)', () => {
    /**
     * Runs `fs` as opt-in decisions queued together; the texts the group sent (the first begins it), its COMMIT's
     * message left out when the COMMIT went alone.
     */
    async function together<T>(store: PgStore<Rec>, fs: (() => Promise<T>)[], groups = 1): Promise<{ results: PromiseSettledResult<T>[]; sent: string[] }> {
      const query = jest.spyOn(pg.Client.prototype, 'query');
      const gc = new GroupCommit({ open: (o) => store.group(o) });
      const before = query.mock.calls.length;
      const results = await Promise.allSettled(fs.map((f) => gc.run(f, { quick: true })));
      const sent = query.mock.calls
        .slice(before)
        .map((c) => String(c[0]))
        .filter((t) => t !== 'COMMIT');
      expect(sent[0]).toMatch(/^BEGIN; /);
      query.mockRestore();
      expect(gc.stats.groups).toBe(groups);
      return { results, sent };
    }
    const value = <T>(r: PromiseSettledResult<T>) => (r.status === 'fulfilled' ? r.value : { error: String((r.reason as Error).message) });

    it('ten new requests: one message (the BEGIN and the COMMIT with it); each in its own savepoint, places in order', async () => {
      const store = await open('site-a');
      const { results, sent } = await together(
        store,
        Array.from({ length: 10 }, (_, i) => () => store.createOrRefresh(`PJSIP/${i}`, '2001', 10, rows(rec(`r${i}`, `PJSIP/${i}`, '2001', 1000 + i)), undefined, 100)),
      );
      expect(results.map(value)).toEqual(Array.from({ length: 10 }, (_, i) => expect.objectContaining({ result: 'created', position: i + 1 })));
      expect(sent).toHaveLength(1);
      expect(sent[0].match(/SAVEPOINT d\d+/g)).toEqual(Array.from({ length: 10 }, (_, i) => `SAVEPOINT d${i + 1}`));
      expect(sent[0].match(/FROM cc_opt_in\(/g)).toHaveLength(10);
      expect(sent[0]).toMatch(/; COMMIT$/);
      expect((await store.prospectQueue('2001')).map((e) => e.id)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
      expect(await store.events('r9')).toHaveLength(2);
    });

    it('two opt-ins of the same agent for the same number in one message give one request (the second reads the first)', async () => {
      const store = await open('site-a');
      const { results, sent } = await together(store, [
        () => store.createOrRefresh('PJSIP/1', '2001', 10, rows(rec('a1', 'PJSIP/1', '2001')), undefined, 100),
        () => store.createOrRefresh('PJSIP/1', '2001', 10, rows(rec('a2', 'PJSIP/1', '2001')), undefined, 100),
        () => store.createOrRefresh('PJSIP/2', '2001', 10, rows(rec('b1', 'PJSIP/2', '2001')), undefined, 100),
      ]);
      expect(sent).toHaveLength(1);
      expect(results.map(value)).toEqual([
        expect.objectContaining({ result: 'created', position: 1 }),
        { result: 'exists', request: rec('a1', 'PJSIP/1', '2001') },
        expect.objectContaining({ result: 'created', position: 2 }),
      ]);
      expect((await store.list()).map((r) => r.id)).toEqual(['a1', 'b1']);
      expect(await store.events('a2')).toEqual([]);
    });

    it('the caps hold across one message: the agent at its cap is refused by the decision after the one that filled it', async () => {
      const store = await open('site-a');
      const { results } = await together(store, [
        () => store.createOrRefresh('PJSIP/1', '2001', 2, rows(rec('a1', 'PJSIP/1', '2001')), undefined, 100),
        () => store.createOrRefresh('PJSIP/1', '2002', 2, rows(rec('a2', 'PJSIP/1', '2002')), undefined, 100),
        () => store.createOrRefresh('PJSIP/1', '2003', 2, rows(rec('a3', 'PJSIP/1', '2003')), undefined, 100),
        () => store.createOrRefresh('PJSIP/2', '2003', 2, rows(rec('b1', 'PJSIP/2', '2003')), undefined, 3),
        () => store.createOrRefresh('PJSIP/3', '2003', 2, rows(rec('c1', 'PJSIP/3', '2003')), undefined, 3),
      ]);
      expect(results.map(value)).toEqual([
        expect.objectContaining({ result: 'created' }),
        expect.objectContaining({ result: 'created' }),
        { result: 'full', pending: 2 },
        expect.objectContaining({ result: 'created', position: 1 }),
        { result: 'full', pending: 3 },
      ]);
      expect((await store.list()).map((r) => r.id).sort()).toEqual(['a1', 'a2', 'b1']);
    });

    it('one failing decision in the message rolls back alone; the others are written, and so is a refresh after them', async () => {
      const store = await open('site-a');
      await store.createOrRefresh('PJSIP/9', '2009', 10, rows(rec('old', 'PJSIP/9', '2009')), undefined, 100);
      const { results, sent } = await together(store, [
        () => store.createOrRefresh('PJSIP/1', '2001', 10, rows(rec('a1', 'PJSIP/1', '2001')), undefined, 100),
        // Its id is a stored request's: refused inside cc_opt_in, nothing of it written.
        () => store.createOrRefresh('PJSIP/2', '2001', 10, rows(rec('old', 'PJSIP/2', '2001')), undefined, 100),
        // The history row's time is not a number PostgreSQL takes: cc_opt_in's own block undoes its request row.
        () =>
          store.createOrRefresh(
            'PJSIP/3',
            '2001',
            10,
            () => {
              const w = rows(rec('c1', 'PJSIP/3', '2001'))();
              return { ...w, events: [{ ...w.events[0], at: 1e300 }] };
            },
            undefined,
            100,
          ),
        () => store.createOrRefresh('PJSIP/4', '2001', 10, rows(rec('d1', 'PJSIP/4', '2001')), undefined, 100),
        // A refresh: its continuation (read, update, history) runs after the calls of the decisions before it, in a
        // transaction of the group after their COMMIT (which went with the calls): two commits in all.
        () => store.createOrRefresh('PJSIP/9', '2009', 10, rows(rec('new', 'PJSIP/9', '2009')), refresh(5000), 100),
      ], 2);
      expect(results.map(value)).toEqual([
        expect.objectContaining({ result: 'created', position: 1 }),
        { error: expect.stringMatching(/has the id of a stored request/) },
        { error: expect.stringMatching(/out of range|bigint/) },
        expect.objectContaining({ result: 'created', position: 2 }),
        expect.objectContaining({ result: 'refreshed', position: 1 }),
      ]);
      expect(sent[0].match(/FROM cc_opt_in\(/g)).toHaveLength(5);
      expect((await store.list()).map((r) => r.id).sort()).toEqual(['a1', 'd1', 'old']);
      expect(await store.events('c1')).toEqual([]);
      expect((await store.get('old'))!.request).toMatchObject({ agent: 'PJSIP/9', note: 'refreshed' });
      expect((await store.events('old')).map((e) => e.type)).toEqual(['requestedx', 'noted', 'refreshed']);
    });

    it('a decision that ends before any statement (a refusal) between held ones: the held ones still go, side effects in queue order', async () => {
      const store = await open('site-a');
      const order: string[] = [];
      const query = jest.spyOn(pg.Client.prototype, 'query');
      const gc = new GroupCommit({ open: (o) => store.group(o) });
      const before = query.mock.calls.length;
      const optIn = (id: string, agent: string) => async () => {
        const r = await store.createOrRefresh(agent, '2001', 10, rows(rec(id, agent, '2001')), undefined, 100);
        gc.afterCommit(() => order.push(id));
        return r;
      };
      const results = await Promise.allSettled<unknown>([
        gc.run(optIn('a1', 'PJSIP/1'), { quick: true }),
        gc.run(
          async () => {
            gc.afterCommit(() => order.push('refused'));
            throw new Error('refused by the dial policy');
          },
          { quick: true },
        ),
        gc.run(
          async () => {
            gc.afterCommit(() => order.push('nothing'));
            return 'nothing to write';
          },
          { quick: true },
        ),
        gc.run(optIn('b1', 'PJSIP/2'), { quick: true }),
      ]);
      const messages = query.mock.calls.slice(before).map((c) => String(c[0]));
      query.mockRestore();
      expect(results.map(value)).toEqual([
        expect.objectContaining({ result: 'created', position: 1 }),
        { error: 'refused by the dial policy' },
        'nothing to write',
        expect.objectContaining({ result: 'created', position: 2 }),
      ]);
      expect(gc.stats).toMatchObject({ groups: 1, decisions: 3 });
      expect(messages.filter((m) => m.includes('cc_opt_in('))).toHaveLength(1);
      expect(order).toEqual(['a1', 'nothing', 'b1']);
      expect((await store.list()).map((r) => r.id)).toEqual(['a1', 'b1']);
    });

    it('a decision that reads before its opt-in waits for the held ones and reads what they wrote', async () => {
      const store = await open('site-a');
      const { results } = await together<unknown>(store, [
        () => store.createOrRefresh('PJSIP/1', '2001', 10, rows(rec('a1', 'PJSIP/1', '2001')), undefined, 100),
        () => store.createOrRefresh('PJSIP/2', '2001', 10, rows(rec('b1', 'PJSIP/2', '2001')), undefined, 100),
        async () => {
          const queue = (await store.prospectQueue('2001')).map((e) => e.id);
          const r = await store.createOrRefresh('PJSIP/3', '2001', 10, rows(rec('c1', 'PJSIP/3', '2001')), undefined, 100);
          return { queue, r };
        },
      ]);
      expect(results.map(value)).toEqual([
        expect.objectContaining({ result: 'created', position: 1 }),
        expect.objectContaining({ result: 'created', position: 2 }),
        { queue: ['a1', 'b1'], r: expect.objectContaining({ result: 'created', position: 3 }) },
      ]);
    });
  });

  it.each([4, 5, 6, 7])('the upgrade from schema version %i: migration 5 adds the queue index and cc_opt_in, 6 its one-pending lookup, 7 requests_prospect_done instead of requests_prospect, 8 requests_agent_done instead of requests_agent_state; the requests stored before are seen by the opt-in', async (from) => {
    // A database as an earlier build left it: migrations 1 to `from`, requests written by that build's statements.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      for (const m of MIGRATIONS.filter((x) => x.version <= from)) {
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations(version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      const old = (id: string, agent: string, state: string, at: number) =>
        c.query("INSERT INTO requests(id, pbx, agent, prospect, state, created_at, updated_at, wake_at, data) VALUES ($1, 'site-a', $2, '2001', $3, $4, $4, NULL, $5)", [
          id,
          agent,
          state,
          at,
          JSON.stringify(rec(id, agent, '2001', at, { state })),
        ]);
      await old('p1', 'PJSIP/1', 'WAITING', 100);
      await old('p2', 'PJSIP/2', 'WAITING', 200);
      await old('f1', 'PJSIP/3', 'COMPLETED', 50);
    } finally {
      await c.end();
    }
    const store = await open('site-a');
    expect((await store.migrations()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(MIGRATIONS.at(-1)!.version).toBe(8);
    const has = async (sql: string) => Number((await store.query<{ n: string }>(sql)).rows[0].n);
    expect(await has("SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = 'requests_prospect'")).toBe(0);
    expect(await has("SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = 'requests_prospect_done' AND indexdef LIKE '%(prospect, updated_at) WHERE (state = ''COMPLETED''::text)'")).toBe(1);
    // The stored COMPLETED request is the number's last conversation for another agent (read through the new index).
    expect(await store.lastConversation('2001', 'PJSIP/9')).toMatchObject({ connectedAt: 50 });
    expect(await has("SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = 'requests_agent_state'")).toBe(0);
    expect(await has("SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = 'requests_agent_done' AND indexdef LIKE '%(pbx, agent, state) WHERE (state = ANY%'")).toBe(1);
    // The agent's requests of both kinds, and its finished ones alone.
    expect((await store.list({ agent: 'PJSIP/3' })).map((r) => r.id)).toEqual(['f1']);
    expect((await store.list({ agent: 'PJSIP/3', states: ['COMPLETED'] })).map((r) => r.id)).toEqual(['f1']);
    expect((await store.list({ agent: 'PJSIP/1', states: ['WAITING', 'COMPLETED'] })).map((r) => r.id)).toEqual(['p1']);
    expect(await has("SELECT COUNT(*) AS n FROM pg_indexes WHERE indexname = 'requests_prospect_queue'")).toBe(1);
    expect(await has("SELECT COUNT(*) AS n FROM pg_proc WHERE proname = 'cc_opt_in'")).toBe(1);
    expect(await has("SELECT COUNT(*) AS n FROM pg_proc WHERE proname = 'cc_fence_check'")).toBe(1);
    // Migration 6's lookup replaced migration 5's (one function, the new body).
    expect(await has("SELECT COUNT(*) AS n FROM pg_proc WHERE proname = 'cc_opt_in' AND prosrc LIKE '%(r.prospect || '''') = p_prospect%'")).toBe(1);
    const gc = new GroupCommit({ open: (o) => store.group(o) });
    // The stored pending request of PJSIP/1 is found (nothing written); PJSIP/4 queues behind the two stored ones.
    expect(await gc.run(() => store.createOrRefresh('PJSIP/1', '2001', 10, rows(rec('n1', 'PJSIP/1', '2001', 300)), undefined, 100), { quick: true })).toMatchObject({
      result: 'exists',
      request: { id: 'p1' },
    });
    expect(await gc.run(() => store.createOrRefresh('PJSIP/4', '2001', 10, rows(rec('n4', 'PJSIP/4', '2001', 300)), undefined, 100), { quick: true })).toMatchObject({
      result: 'created',
      position: 3,
    });
    expect(await store.createOrRefresh('PJSIP/3', '2001', 10, rows(rec('n3', 'PJSIP/3', '2001', 400)), undefined, 100)).toMatchObject({ result: 'created', position: 4 });
    expect((await store.prospectPlace('2001', 'PJSIP/3', 0)).position).toBe(4);
    // Past the fifth call a session's PL/pgSQL runs its generic plans: the stored pending request is still found, and
    // another number's request of the same agent is not taken for it.
    for (let i = 5; i < 12; i++) {
      expect(await gc.run(() => store.createOrRefresh(`PJSIP/${i}`, '2001', 10, rows(rec(`n${i}`, `PJSIP/${i}`, '2001', 300 + i)), undefined, 100), { quick: true })).toMatchObject({
        result: 'created',
        position: i - 1,
      });
    }
    expect(await gc.run(() => store.createOrRefresh('PJSIP/2', '2001', 10, rows(rec('m2', 'PJSIP/2', '2001', 500)), undefined, 100), { quick: true })).toMatchObject({
      result: 'exists',
      request: { id: 'p2' },
    });
    expect(await gc.run(() => store.createOrRefresh('PJSIP/2', '2002', 10, rows(rec('m3', 'PJSIP/2', '2002', 500)), undefined, 100), { quick: true })).toMatchObject({
      result: 'created',
      position: 1,
    });
    // Opening again migrates nothing more.
    const again = await open('site-a');
    expect((await again.migrations()).length).toBe(MIGRATIONS.length);
  });

  describe('the COMMIT in the message of the last opt-ins (GroupBatch.flush)', () => {
    /** The texts sent on the store's sessions while `f` runs. */
    async function messages<T>(f: () => Promise<T>): Promise<{ value: T; sent: string[] }> {
      const query = jest.spyOn(pg.Client.prototype, 'query');
      const before = query.mock.calls.length;
      try {
        const value = await f();
        return { value, sent: query.mock.calls.slice(before).map((c) => String(c[0])) };
      } finally {
        query.mockRestore();
      }
    }
    const lease = (store: PgStore<Rec>, ms: number) =>
      store.query(`INSERT INTO leases(pbx, app, holder, epoch, expires_at) VALUES ('site-a', 'cc', 'me', 7, clock_timestamp() + make_interval(secs => $1::float8 / 1000))`, [ms]);

    it('fenced, as the service: one message per opt-in alone — the call, the fence checked, COMMIT — and the rows are committed when it answers', async () => {
      const store = await open('site-a');
      await lease(store, 60_000);
      store.setFence({ app: 'cc', holder: 'me', epoch: 7 });
      const gc = new GroupCommit({ open: (o) => store.group(o) });
      for (let i = 0; i < 3; i++) {
        // With a refresh given, as the engine's opt-in always does (used only when the agent already waits).
        const { value, sent } = await messages(() => gc.run(() => store.createOrRefresh(`PJSIP/${i}`, '2001', 10, rows(rec(`r${i}`, `PJSIP/${i}`, '2001')), refresh(5000), 100), { quick: true }));
        expect(value).toMatchObject({ result: 'created', position: i + 1 });
        expect(sent).toHaveLength(1);
        expect(sent[0]).toMatch(/^BEGIN; .*FROM cc_opt_in\(.*; SELECT cc_fence_check\('site-a', 'cc', 'me', '7'::BIGINT\); COMMIT$/s);
        // Committed: another session sees it.
        expect(Number((await store.query<{ n: string }>('SELECT COUNT(*) AS n FROM requests')).rows[0].n)).toBe(i + 1);
      }
      expect(gc.stats).toMatchObject({ groups: 3, decisions: 3 });
    });

    it('CC_PG_COMMIT=apart (the A/B): the COMMIT goes alone, after the opt-in', async () => {
      const store = await PgStore.open<Rec>(db.url, { pbx: 'site-a', commit: 'apart' });
      opened.push(store);
      const gc = new GroupCommit({ open: (o) => store.group(o) });
      const { value, sent } = await messages(() => gc.run(() => store.createOrRefresh('PJSIP/1', '2001', 10, rows(rec('a', 'PJSIP/1', '2001')), undefined, 100), { quick: true }));
      expect(value).toMatchObject({ result: 'created' });
      expect(sent).toEqual([expect.stringMatching(/FROM cc_opt_in\(.*\)$/s), 'COMMIT']);
    });

    it('a lease lost before the message: the fence check fails it, nothing of the group is written, every caller hears FencedError', async () => {
      const store = await open('site-a');
      await lease(store, 400);
      store.setFence({ app: 'cc', holder: 'me', epoch: 7 });
      // The test seam before the COMMIT (here: in the opt-ins' message) outlasts the lease.
      const gc = new GroupCommit({ open: (o) => store.group(o), beforeCommit: () => sleep(600) });
      const settled = await Promise.allSettled(
        [0, 1, 2].map((i) => gc.run(() => store.createOrRefresh(`PJSIP/${i}`, '2001', 10, rows(rec(`r${i}`, `PJSIP/${i}`, '2001')), undefined, 100), { quick: true })),
      );
      expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const r of settled) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(FencedError);
      expect(gc.stats.failedCommits).toBe(1);
      expect(await store.list()).toEqual([]);
      expect(await store.outbox()).toEqual([]);
    });

    it('a test seam that throws before the COMMIT (a crash): nothing is sent, nothing written, every caller hears the error', async () => {
      const store = await open('site-a');
      const gc = new GroupCommit({
        open: (o) => store.group(o),
        beforeCommit: () => {
          throw new Error('killed before the COMMIT');
        },
      });
      const { value: settled, sent } = await messages(() =>
        Promise.allSettled([0, 1].map((i) => gc.run(() => store.createOrRefresh(`PJSIP/${i}`, '2001', 10, rows(rec(`r${i}`, `PJSIP/${i}`, '2001')), undefined, 100), { quick: true }))),
      );
      expect(settled.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.status))).toEqual(['killed before the COMMIT', 'killed before the COMMIT']);
      expect(sent.filter((t) => t.includes('cc_opt_in('))).toEqual([]);
      expect(await store.list()).toEqual([]);
    });

    it('decisions that arrive while a message is on its way: the next message goes without the COMMIT, and the group commits once after it', async () => {
      const store = await open('site-a');
      const gc = new GroupCommit({ open: (o) => store.group(o) });
      const optIn = (i: number) => gc.run(() => store.createOrRefresh(`PJSIP/${i}`, '2001', 10, rows(rec(`r${i}`, `PJSIP/${i}`, '2001')), undefined, 100), { quick: true });
      const original = pg.Client.prototype.query;
      const sent: string[] = [];
      const later: Promise<unknown>[] = [];
      const query = jest.spyOn(pg.Client.prototype, 'query').mockImplementation(function (this: pg.Client, ...args: unknown[]) {
        const text = String(args[0]);
        sent.push(text);
        // Two opt-ins arrive while the first one's message is on its way.
        if (text.includes('cc_opt_in(') && later.length === 0) later.push(optIn(1), optIn(2));
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof original);
      try {
        expect(await optIn(0)).toMatchObject({ result: 'created', position: 1 });
        expect(await Promise.all(later)).toEqual([expect.objectContaining({ position: 2 }), expect.objectContaining({ position: 3 })]);
        // The third alone, after a quiet moment: with its COMMIT again.
        expect(await optIn(3)).toMatchObject({ result: 'created', position: 4 });
      } finally {
        query.mockRestore();
      }
      const opts = sent.map((t) => `${(t.match(/cc_opt_in\(/g) ?? []).length}${/COMMIT$/.test(t) ? '+C' : ''}`);
      expect(opts).toEqual(['1+C', '2', '0+C', '1+C']);
      expect(sent[2]).toBe('COMMIT');
    });

    it("an opt-in that finds the agent's pending request and goes on to refresh it: the others of the message are answered at its COMMIT, the refresh is committed after, in a transaction of its own", async () => {
      const store = await open('site-a');
      await store.createOrRefresh('PJSIP/9', '2009', 10, rows(rec('old', 'PJSIP/9', '2009')), undefined, 100);
      const order: string[] = [];
      const gc = new GroupCommit({ open: (o) => store.group(o) });
      const optIn = (id: string, agent: string, prospect: string, failRefresh = false) => async () => {
        // As the engine's opt-in: one call with its refresh, which reads through the store (the agent's recalls, the
        // colleagues) before it decides, when the agent already waits.
        const r = await store.createOrRefresh(
          agent,
          prospect,
          10,
          rows(rec(id, agent, prospect)),
          async (e) => {
            const first = await store.get(e.id);
            order.push(`read ${first?.request.id}`);
            if (failRefresh) throw new Error('the refresh failed');
            return refresh(5000)(e);
          },
          100,
        );
        gc.afterCommit(() => order.push(id));
        return r.result;
      };
      const { value: results, sent } = await messages(() =>
        Promise.allSettled([gc.run(optIn('a1', 'PJSIP/1', '2001'), { quick: true }), gc.run(optIn('new', 'PJSIP/9', '2009'), { quick: true }), gc.run(optIn('b1', 'PJSIP/2', '2001'), { quick: true })]),
      );
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['created', 'refreshed', 'created']);
      // The three calls and the COMMIT in one message; the refresh's statements begin a new transaction, then its COMMIT.
      expect(sent[0].match(/FROM cc_opt_in\(/g)).toHaveLength(3);
      expect(sent[0]).toMatch(/; COMMIT$/);
      expect(sent[1]).toMatch(/^BEGIN; .*; SAVEPOINT d2; /s);
      expect(sent.at(-1)).toBe('COMMIT');
      // Each answered as soon as it ended: a1 before the refresh went on, b1 after it, the refresh at its own COMMIT.
      expect(order).toEqual(['a1', 'read old', 'b1', 'new']);
      expect(gc.stats).toMatchObject({ groups: 2, decisions: 3 });
      expect((await store.events('old')).map((e) => e.type)).toEqual(['requestedx', 'noted', 'refreshed']);
      expect((await store.list()).map((r) => r.id).sort()).toEqual(['a1', 'b1', 'old']);

      // The refresh fails after that COMMIT: it alone fails (its savepoint again in the new transaction), the others stay.
      order.length = 0;
      const again = await Promise.allSettled([gc.run(optIn('c1', 'PJSIP/3', '2001'), { quick: true }), gc.run(optIn('new2', 'PJSIP/9', '2009', true), { quick: true }), gc.run(optIn('d1', 'PJSIP/4', '2001'), { quick: true })]);
      expect(again.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['created', 'the refresh failed', 'created']);
      expect(order).toEqual(['c1', 'read old', 'd1']);
      expect((await store.list()).map((r) => r.id).sort()).toEqual(['a1', 'b1', 'c1', 'd1', 'old']);
      expect((await store.events('old')).map((e) => e.type)).toEqual(['requestedx', 'noted', 'refreshed']);
      // The group's session is clean: the next opt-in alone is one message again.
      const next = await messages(() => gc.run(optIn('e1', 'PJSIP/5', '2001'), { quick: true }));
      expect(next.value).toBe('created');
      expect(next.sent).toHaveLength(1);
    });
  });

  it('a value the script cannot inline is refused before anything is sent', async () => {
    const store = await open('site-a');
    const bad = { ...rec('n', 'PJSIP/1', '2'), createdAt: Number.NaN };
    await expect(store.createOrRefresh('PJSIP/1', '2', 10, rows(bad), undefined)).rejects.toThrow(/not a finite number/);
    expect(await store.list()).toEqual([]);
  });
});
