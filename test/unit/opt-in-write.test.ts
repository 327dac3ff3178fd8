/**
 * The opt-in's write (src/store/sql.ts createOrRefresh) close to the disk: a new request is one script — on
 * PostgreSQL one round trip from the group's SAVEPOINT to the agent's place in the queue, its values inlined as
 * escaped literals; on SQLite prepared statements only, none prepared again per opt-in (the opt-in's
 * busy_timeout pragmas included). The attack: every value the script inlines, written to break out of its literal.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { GroupCommit } from '../../src/store/group';
import { RequestRecord, RequestWrite } from '../../src/store/contract';
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
      // Warm: both paths once.
      expect(await optIn(0, true)).toMatchObject({ result: 'created', position: 1 });
      expect(await optIn(1, false)).toMatchObject({ result: 'created', position: 2 });
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

  it('a new request in a group: one query between BEGIN and COMMIT (savepoint, locks, the rows, the place in the queue)', async () => {
    const store = await open('site-a');
    const sent: string[] = [];
    const query = jest.spyOn(pg.Client.prototype, 'query');
    let atCommit = -1;
    const gc = new GroupCommit({ open: (o) => store.group(o), beforeCommit: () => void (atCommit = query.mock.calls.length) });
    const before = query.mock.calls.length;
    const r = await gc.run(() => store.createOrRefresh('PJSIP/1001', '2001', 10, rows(rec('a', 'PJSIP/1001', '2001')), undefined, 100), { quick: true });
    for (const c of query.mock.calls.slice(before)) sent.push(String(c[0]).slice(0, 80));
    expect(r).toMatchObject({ result: 'created', position: 1 });
    // BEGIN (with the fence and timeouts), the opt-in, COMMIT.
    expect(atCommit - before).toBe(2);
    expect(query.mock.calls.length - before).toBe(3);
    expect(sent[1]).toMatch(/^SAVEPOINT d1; SAVEPOINT t1; SELECT pg_advisory_xact_lock/);
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

  it('a value the script cannot inline is refused before anything is sent', async () => {
    const store = await open('site-a');
    const bad = { ...rec('n', 'PJSIP/1', '2'), createdAt: Number.NaN };
    await expect(store.createOrRefresh('PJSIP/1', '2', 10, rows(bad), undefined)).rejects.toThrow(/not a finite number/);
    expect(await store.list()).toEqual([]);
  });
});
