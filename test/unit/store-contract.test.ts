/**
 * The store contract (src/store/contract.ts), one suite run against both backends: SQLite (a temp file)
 * and PostgreSQL (a real server: testkit/pg.ts starts Debian's PostgreSQL in a directory of its own,
 * installing it when missing; each test gets a fresh database).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { placeOf } from '../../src/core/scheduler';
import { RequestRecord, Store } from '../../src/store/contract';
import { SqliteStore } from '../../src/store/sqlite';
import { PgStore } from '../../src/store/postgres';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

interface Rec extends RequestRecord {
  note?: string;
  mode?: 'device' | 'timed';
}

function rec(id: string, agent = 'PJSIP/1001', prospect = '2001', now = 1000, extra: Partial<Rec> = {}): Rec {
  return { id, agent, prospect, state: 'WAITING', createdAt: now, updatedAt: now, wakeAt: now + 300000, ...extra };
}

const create = (r: Rec) => () => ({
  request: r,
  events: [{ requestId: r.id, at: r.createdAt, type: 'requested', to: 'WAITING', data: { why: 'opt-in' } }],
  outbox: [{ key: `${r.id}:created`, requestId: r.id, event: 'created', createdAt: r.createdAt, body: `{"id":"${r.id}"}` }],
});
const refresh = (now: number) => (e: Rec) => ({ request: { ...e, updatedAt: now, note: 'refreshed' }, events: [{ requestId: e.id, at: now, type: 'refreshed' }] });

interface Backend {
  name: string;
  open(): Promise<Store<Rec>>;
  /** A second client on the same data (another instance). */
  second(): Promise<Store<Rec>>;
  /** A client of another PBX on the same data (PostgreSQL); undefined where a store serves one PBX (SQLite). */
  otherPbx?(): Promise<Store<Rec>>;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  let file = '';
  const opened: Store<Rec>[] = [];
  return {
    name: 'sqlite',
    async open() {
      file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-contract-')), 'callbacks.db');
      const s = SqliteStore.open<Rec>(file);
      opened.push(s);
      return s;
    },
    async second() {
      const s = SqliteStore.open<Rec>(file);
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close();
    },
  };
}

function postgresBackend(): Backend {
  let db: TestDatabase | undefined;
  const opened: Store<Rec>[] = [];
  return {
    name: 'postgres',
    async open() {
      db = await freshDatabase('contract');
      const s = await PgStore.open<Rec>(db.url, { pbx: 'site-a' });
      opened.push(s);
      return s;
    },
    async second() {
      const s = await PgStore.open<Rec>(db!.url, { pbx: 'site-a' });
      opened.push(s);
      return s;
    },
    async otherPbx() {
      const s = await PgStore.open<Rec>(db!.url, { pbx: 'site-b' });
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close();
      await db?.drop();
      db = undefined;
    },
  };
}

describe.each([sqliteBackend(), postgresBackend()])('store contract: $name', (backend) => {
  let store: Store<Rec>;
  beforeEach(async () => {
    store = await backend.open();
  });
  afterEach(() => backend.cleanup());

  it('says which backend and where', () => {
    expect(store.kind).toBe(backend.name);
    expect(store.where).toBeTruthy();
  });

  it('creates, then refreshes the pending request of the same agent and prospect; durable for a second client', async () => {
    expect(await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a')), refresh(2000))).toMatchObject({ result: 'created' });
    const second = await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('b')), refresh(2000));
    expect(second).toMatchObject({ result: 'refreshed', request: { id: 'a', updatedAt: 2000, note: 'refreshed' }, previous: { id: 'a', updatedAt: 1000 } });
    expect((await store.list()).map((r) => r.id)).toEqual(['a']);
    const events = await store.events('a');
    expect(events.map((e) => e.type)).toEqual(['requested', 'refreshed']);
    expect(events[0]).toMatchObject({ requestId: 'a', at: 1000, to: 'WAITING', from: null, data: { why: 'opt-in' } });
    const other = await backend.second();
    expect(await other.get('a')).toEqual({ version: 2, request: { ...rec('a'), updatedAt: 2000, note: 'refreshed' } });
    expect(await other.get('nope')).toBeUndefined();
  });

  it("the opt-in's place in the prospect's queue comes with it, as prospectQueue orders it (first, third, earlier, a refresh keeps its place)", async () => {
    const P = '+12125551234';
    const placeOf = async (id: string) => (await store.prospectQueue(P)).findIndex((q) => q.id === id) + 1;
    const first = await store.createOrRefresh('PJSIP/1001', P, 10, create(rec('a', 'PJSIP/1001', P, 1000)), refresh(0));
    expect(first).toMatchObject({ result: 'created', position: 1 });
    // The same created_at: insertion order decides.
    expect(await store.createOrRefresh('PJSIP/1002', P, 10, create(rec('b', 'PJSIP/1002', P, 1000)), refresh(0))).toMatchObject({ result: 'created', position: 2 });
    // Another number and a finished request do not count.
    await store.createOrRefresh('PJSIP/1009', '2001', 10, create(rec('o', 'PJSIP/1009', '2001', 10)), refresh(0));
    await store.createOrRefresh('PJSIP/1008', P, 10, create(rec('f', 'PJSIP/1008', P, 20)), refresh(0));
    const f = (await store.get('f'))!;
    await store.transition({ ...f.request, state: 'CANCELLED', wakeAt: null }, f.version, []);
    const third = await store.createOrRefresh('PJSIP/1003', P, 10, create(rec('c', 'PJSIP/1003', P, 3000)), refresh(0));
    expect(third).toMatchObject({ result: 'created', position: 3 });
    expect(await placeOf('c')).toBe(3);
    // An opt-in stamped earlier (another instance's clock) goes ahead, as in the queue.
    expect(await store.createOrRefresh('PJSIP/1004', P, 10, create(rec('d', 'PJSIP/1004', P, 500)), refresh(0))).toMatchObject({ result: 'created', position: 1 });
    // A refresh keeps its place (its opt-in time); the answer is its place in the queue now.
    const again = await store.createOrRefresh('PJSIP/1002', P, 10, create(rec('b2', 'PJSIP/1002', P, 4000)), refresh(4000));
    expect(again).toMatchObject({ result: 'refreshed', request: { id: 'b' }, position: 3 });
    expect(await placeOf('b')).toBe(3);
    expect((await store.prospectQueue(P)).map((q) => q.id)).toEqual(['d', 'a', 'b', 'c']);
  });

  it("an agent's place in a number's queue is counted as placeOf reads it from prospectQueue (random queues, finished requests among them)", async () => {
    const P = '+12125559876';
    const agents = Array.from({ length: 6 }, (_, i) => `PJSIP/20${i}`);
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 14; i++) {
      const agent = agents[rnd(agents.length)];
      // Some opt-ins share a created_at (insertion order decides), some finish (they leave the queue).
      const made = await store.createOrRefresh(agent, P, 10, create(rec(`q${i}`, agent, P, 1000 + rnd(4) * 10)), refresh(5000));
      if (made.result === 'created' && rnd(4) === 0) {
        const v = (await store.get(`q${i}`))!;
        await store.transition({ ...v.request, state: 'CANCELLED', wakeAt: null }, v.version, []);
      }
      const queue = await store.prospectQueue(P);
      for (const who of [...agents, 'PJSIP/999']) {
        const expected = placeOf(queue, who);
        expect(await store.prospectPlace(P, who, 100)).toEqual({ ...expected, waiting: expected.others.length });
        // At most `limit` names, the first ones; the counts stay whole.
        const few = await store.prospectPlace(P, who, 2);
        expect(few).toEqual({ ...expected, waiting: expected.others.length, others: expected.others.slice(0, 2) });
      }
    }
    expect(await store.prospectPlace('+10000000000', 'PJSIP/201', 10)).toEqual({ position: 1, queued: false, waiting: 0, others: [] });
  });

  it('without a refresh, an existing pending request is answered (exists) and nothing is written', async () => {
    await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a')), refresh(0));
    expect(await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('b', 'PJSIP/1001', '2001', 5000)), undefined)).toEqual({ result: 'exists', request: rec('a') });
    expect((await store.list()).map((r) => r.id)).toEqual(['a']);
    expect(await store.get('a')).toMatchObject({ version: 1 });
    expect((await store.events('a')).map((e) => e.type)).toEqual(['requested']);
    expect(await store.events('b')).toEqual([]);
    expect((await store.outbox()).map((o) => o.key)).toEqual(['a:created']);
    // At the cap an existing request is still answered (a refresh never counts against the cap).
    expect(await store.createOrRefresh('PJSIP/1001', '2001', 1, create(rec('c')), undefined, 1)).toMatchObject({ result: 'exists', request: { id: 'a' } });
    // A refused opt-in writes no history nor outbox rows either.
    expect(await store.createOrRefresh('PJSIP/1001', '2002', 1, create(rec('d', 'PJSIP/1001', '2002')), undefined)).toEqual({ result: 'full', pending: 1 });
    expect(await store.events('d')).toEqual([]);
    expect((await store.outbox()).map((o) => o.key)).toEqual(['a:created']);
  });

  it('a new request whose id is taken is refused and nothing of it is written (its rows are conditional on the id)', async () => {
    await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a')), refresh(0));
    // The id of this agent's pending request for the number (create must make a fresh id): refused.
    await expect(store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a', 'PJSIP/1001', '2001', 7000)), undefined)).rejects.toThrow(/has the id of a stored request/);
    // The id of a finished request: refused (SQLite: the primary key; PostgreSQL's cc_opt_in looks the id up first).
    const done = (await store.get('a'))!;
    await store.transition({ ...done.request, state: 'CANCELLED', wakeAt: null }, done.version, []);
    const refused = await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a', 'PJSIP/1001', '2001', 8000)), refresh(0)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String((refused as Error | undefined)?.message)).toMatch(/UNIQUE constraint failed: requests\.id|has the id of a stored request/);
    expect((await store.events('a')).map((e) => e.type)).toEqual(['requested']);
    expect((await store.outbox()).map((o) => o.key)).toEqual(['a:created']);
    expect(await store.get('a')).toMatchObject({ version: 2, request: { state: 'CANCELLED', createdAt: 1000 } });
  });

  it("another PBX's requests for the number count in the place (one person), not in this PBX's caps", async () => {
    if (!backend.otherPbx) return expect(backend.name).toBe('sqlite');
    const other = await backend.otherPbx();
    const P = '+4930555';
    // The same agent name at the other PBX, earlier: ahead in the queue, but not this agent's pending request.
    expect(await other.createOrRefresh('PJSIP/1001', P, 10, create(rec('x', 'PJSIP/1001', P, 1000)), refresh(0), 1)).toMatchObject({ result: 'created', position: 1 });
    const mine = await store.createOrRefresh('PJSIP/1001', P, 1, create(rec('a', 'PJSIP/1001', P, 2000)), undefined, 1);
    expect(mine).toMatchObject({ result: 'created', position: 2 });
    expect((await store.prospectQueue(P)).map((q) => [q.id, q.samePbx])).toEqual([
      ['x', false],
      ['a', true],
    ]);
    // The other PBX's refresh keeps its place; its next opt-in for another agent comes after both.
    expect(await other.createOrRefresh('PJSIP/1001', P, 10, create(rec('x2', 'PJSIP/1001', P, 3000)), refresh(3000))).toMatchObject({ result: 'refreshed', position: 1 });
    expect(await other.createOrRefresh('PJSIP/1005', P, 10, create(rec('y', 'PJSIP/1005', P, 3000)), refresh(0))).toMatchObject({ result: 'created', position: 3 });
    // The place the offer announces counts every PBX's requests too, as placeOf reads the queue.
    const queue = await store.prospectQueue(P);
    for (const who of ['PJSIP/1001', 'PJSIP/1005', 'PJSIP/1009']) {
      const expected = placeOf(queue, who);
      expect(await store.prospectPlace(P, who, 10)).toEqual({ ...expected, waiting: expected.others.length });
    }
  });

  it('refuses beyond maxPending per agent, counting only pending requests', async () => {
    for (const p of ['2001', '2002']) await store.createOrRefresh('PJSIP/1001', p, 2, create(rec(`r${p}`, 'PJSIP/1001', p)), refresh(0));
    expect(await store.createOrRefresh('PJSIP/1001', '2003', 2, create(rec('r2003', 'PJSIP/1001', '2003')), refresh(0))).toEqual({ result: 'full', pending: 2 });
    expect((await store.createOrRefresh('PJSIP/1002', '2003', 2, create(rec('x', 'PJSIP/1002', '2003')), refresh(0))).result).toBe('created');
    const done = (await store.get('r2001'))!;
    expect(await store.transition({ ...done.request, state: 'COMPLETED', wakeAt: null }, done.version, [])).toBe(2);
    expect((await store.createOrRefresh('PJSIP/1001', '2001', 2, create(rec('again', 'PJSIP/1001', '2001')), refresh(0))).result).toBe('created');
    expect(await store.countPending('PJSIP/1001')).toBe(2);
    expect(await store.findPending('PJSIP/1001', '2001')).toMatchObject({ request: { id: 'again' }, version: 1 });
    expect(await store.findPending('PJSIP/1001', '2009')).toBeUndefined();
  });

  it('refuses beyond maxPendingTotal over all agents; a refresh still works; concurrent opt-ins of many agents respect it', async () => {
    expect((await store.createOrRefresh('A', '1', 10, create(rec('a', 'A', '1')), refresh(0), 2)).result).toBe('created');
    expect((await store.createOrRefresh('B', '2', 10, create(rec('b', 'B', '2')), refresh(0), 2)).result).toBe('created');
    expect(await store.createOrRefresh('C', '3', 10, create(rec('c', 'C', '3')), refresh(0), 2)).toEqual({ result: 'full', pending: 2 });
    expect((await store.createOrRefresh('A', '1', 10, create(rec('a2', 'A', '1')), refresh(3000), 2)).result).toBe('refreshed');
    // Without the total cap (unset) only the agent's cap counts.
    expect((await store.createOrRefresh('C', '3', 10, create(rec('c', 'C', '3')), refresh(0))).result).toBe('created');
    const done = (await store.get('a'))!;
    await store.transition({ ...done.request, state: 'COMPLETED', wakeAt: null }, done.version, []);
    expect((await store.createOrRefresh('D', '4', 10, create(rec('d', 'D', '4')), refresh(0), 3)).result).toBe('created');
    expect((await store.createOrRefresh('E', '5', 10, create(rec('e', 'E', '5')), refresh(0), 3)).result).toBe('full');

    // Many agents at once from several clients: never more than the total cap.
    const clients = [store, await backend.second(), await backend.second()];
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => clients[i % 3].createOrRefresh(`G${i}`, `9${i}`, 10, create(rec(`g${i}`, `G${i}`, `9${i}`)), refresh(0), 6)),
    );
    expect(results.filter((r) => r.result === 'created')).toHaveLength(3);
    expect((await store.list()).filter((r) => !['COMPLETED'].includes(r.state))).toHaveLength(6);
  });

  it('prune: finished requests older than the cut with their history, and sent outbox rows; pending and given-up stay', async () => {
    const DAY = 86_400_000;
    const old = 10 * DAY;
    const cut = 20 * DAY;
    const late = 30 * DAY;
    for (const [id, at] of [
      ['old-done', old],
      ['old-pending', old],
      ['new-done', late],
    ] as const) {
      await store.createOrRefresh(`ag-${id}`, id, 10, create(rec(id, `ag-${id}`, id, at)), refresh(0));
    }
    for (const [id, at] of [
      ['old-done', old],
      ['new-done', late],
    ] as const) {
      const v = (await store.get(id))!;
      await store.transition({ ...v.request, state: 'CANCELLED', wakeAt: null, updatedAt: at }, v.version, [{ requestId: id, at, type: 'cancelled', to: 'CANCELLED' }]);
    }
    const rows = await store.outbox();
    const byReq = (id: string) => rows.find((r) => r.requestId === id)!.id;
    await store.outboxSent(byReq('old-done'), old);
    await store.outboxFailed(byReq('old-pending'), 'HTTP 500', null, old);
    await store.outboxSent(byReq('new-done'), late);

    expect(await store.prune(cut, { dryRun: true })).toEqual({ requests: 1, events: 2, outbox: 1 });
    expect(await store.list()).toHaveLength(3);
    expect(await store.prune(cut)).toEqual({ requests: 1, events: 2, outbox: 1 });
    expect(await store.get('old-done')).toBeUndefined();
    expect(await store.events('old-done')).toEqual([]);
    expect((await store.list()).map((r) => r.id).sort()).toEqual(['new-done', 'old-pending']);
    expect((await store.events('new-done')).map((e) => e.type)).toEqual(['requested', 'cancelled']);
    expect((await store.outbox()).map((r) => r.requestId).sort()).toEqual(['new-done', 'old-pending']);
    expect(await store.prune(cut)).toEqual({ requests: 0, events: 0, outbox: 0 });
  });

  it('outbox: given-up rows are listed and re-queued (by id or all) with a fresh retry budget', async () => {
    await store.enqueueOutbox(['k1', 'k2', 'k3', 'k4'].map((key, i) => ({ key, requestId: 'r', event: 'e', createdAt: 100 + i, body: key })));
    const [r1, r2, r3, r4] = await store.outbox();
    await store.outboxFailed(r1.id, 'HTTP 500', null, 200);
    await store.outboxFailed(r2.id, 'HTTP 302 redirect', null, 210);
    await store.outboxSent(r3.id, 220);
    expect((await store.outboxGivenUp()).map((r) => [r.key, r.lastError])).toEqual([
      ['k1', 'HTTP 500'],
      ['k2', 'HTTP 302 redirect'],
    ]);
    const other = await backend.second();
    expect(await other.outboxRetry([r2.id, r3.id, r4.id, 999], 5000)).toEqual([r2.id]);
    expect((await store.outboxGivenUp()).map((r) => r.key)).toEqual(['k1']);
    expect((await store.outbox()).find((r) => r.id === r2.id)).toMatchObject({ failedAt: null, attempts: 0, nextAt: 5000, sentAt: null });
    expect((await store.outboxDue(5000)).map((r) => r.key)).toEqual(['k4', 'k2']);
    expect(await store.outboxRetry('all', 6000)).toEqual([r1.id]);
    expect(await store.outboxGivenUp()).toEqual([]);
    expect(await store.outboxRetry('all', 7000)).toEqual([]);
  });

  it('a transition with a stale version is refused and writes nothing (also from a second client)', async () => {
    await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a')), refresh(0));
    const other = await backend.second();
    const v = (await store.get('a'))!;
    expect(await store.transition({ ...v.request, state: 'GRACE' }, v.version, [{ requestId: 'a', at: 5, type: 'grace' }])).toBe(2);
    expect(await other.transition({ ...v.request, state: 'DUE' }, v.version, [{ requestId: 'a', at: 6, type: 'due' }], [
      { key: 'a:due', requestId: 'a', event: 'due', createdAt: 6, body: '{}' },
    ])).toBeUndefined();
    expect((await other.get('a'))!.request.state).toBe('GRACE');
    expect((await store.events('a')).map((e) => e.type)).toEqual(['requested', 'grace']);
    expect((await store.outbox()).map((o) => o.key)).toEqual(['a:created']);
  });

  it('two clients racing the same version: exactly one wins', async () => {
    await store.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a')), refresh(0));
    const other = await backend.second();
    const v = (await store.get('a'))!;
    const results = await Promise.all([
      store.transition({ ...v.request, state: 'RINGING_AGENT' }, v.version, [{ requestId: 'a', at: 7, type: 'ring' }]),
      other.transition({ ...v.request, state: 'RINGING_AGENT' }, v.version, [{ requestId: 'a', at: 7, type: 'ring' }]),
    ]);
    expect(results.filter((r) => r === 2)).toHaveLength(1);
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect((await store.events('a')).filter((e) => e.type === 'ring')).toHaveLength(1);
  });

  it('one prospect, many agents: the queue in opt-in order; one recall per number at a time, also from a second client', async () => {
    await store.createOrRefresh('PJSIP/1002', '+12125551234', 10, create(rec('b', 'PJSIP/1002', '+12125551234', 2000)), refresh(0));
    await store.createOrRefresh('PJSIP/1001', '+12125551234', 10, create(rec('a', 'PJSIP/1001', '+12125551234', 1000)), refresh(0));
    await store.createOrRefresh('PJSIP/1003', '2001', 10, create(rec('c', 'PJSIP/1003', '2001', 500)), refresh(0));
    expect(await store.prospectQueue('+12125551234')).toEqual([
      { id: 'a', samePbx: true, agent: 'PJSIP/1001', state: 'WAITING', createdAt: 1000 },
      { id: 'b', samePbx: true, agent: 'PJSIP/1002', state: 'WAITING', createdAt: 2000 },
    ]);
    expect(await store.prospectQueue('+49301234')).toEqual([]);
    const other = await backend.second();
    const a = (await store.get('a'))!;
    const b = (await other.get('b'))!;
    const results = await Promise.all([
      store.transition({ ...a.request, state: 'RINGING_AGENT' }, a.version, [{ requestId: 'a', at: 3000, type: 'ring' }]),
      other.transition({ ...b.request, state: 'RINGING_AGENT' }, b.version, [{ requestId: 'b', at: 3000, type: 'ring' }]),
    ]);
    expect(results.filter((r) => r === 2)).toHaveLength(1);
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect((await store.prospectQueue('+12125551234')).filter((q) => q.state === 'RINGING_AGENT')).toHaveLength(1);
    // Another number is not affected.
    const c = (await store.get('c'))!;
    expect(await store.transition({ ...c.request, state: 'RINGING_AGENT' }, c.version, [])).toBe(2);
    // The recall ends (COMPLETED: it reached the prospect); the other agent's recall may start.
    const winner = results[0] === 2 ? 'a' : 'b';
    const loser = winner === 'a' ? 'b' : 'a';
    const w = (await store.get(winner))!;
    expect(await store.transition({ ...w.request, state: 'COMPLETED', updatedAt: 4000, wakeAt: null }, w.version, [])).toBe(w.version + 1);
    const l = (await store.get(loser))!;
    expect(l.version).toBe(1);
    expect(await other.transition({ ...l.request, state: 'RINGING_AGENT' }, l.version, [])).toBe(2);
    expect((await store.prospectQueue('+12125551234')).map((q) => q.id)).toEqual([loser]);
  });

  it("the last colleague's conversation with the number, and history appended without a change", async () => {
    await store.createOrRefresh('PJSIP/1001', '+12125551234', 10, create(rec('a', 'PJSIP/1001', '+12125551234', 1000)), refresh(0));
    expect(await store.lastConversation('+12125551234', 'PJSIP/1002')).toBeNull();
    const a = (await store.get('a'))!;
    await store.transition({ ...a.request, state: 'COMPLETED', updatedAt: 5000, wakeAt: null }, a.version, []);
    expect(await store.lastConversation('+12125551234', 'PJSIP/1002')).toEqual({ connectedAt: 5000, endedAt: null, samePbx: true });
    expect(await store.lastConversation('+12125551234', 'PJSIP/1001')).toBeNull(); // not a colleague's
    await store.appendEvents([{ requestId: 'a', at: 9000, type: 'conversation-ended', from: 'COMPLETED', to: 'COMPLETED', reason: 'ended' }]);
    const other = await backend.second();
    expect(await other.lastConversation('+12125551234', 'PJSIP/1002')).toEqual({ connectedAt: 5000, endedAt: 9000, samePbx: true });
    expect((await other.events('a')).map((e) => e.type)).toEqual(['requested', 'conversation-ended']);
    expect((await other.get('a'))!.version).toBe(2);
  });

  it('answers due(), nextWake(), pending(), idsInState() and list() filters', async () => {
    await store.createOrRefresh('A', '1', 10, create(rec('late', 'A', '1', 1000, { wakeAt: 9000 })), refresh(0));
    await store.createOrRefresh('A', '2', 10, create(rec('early', 'A', '2', 1001, { wakeAt: 5000 })), refresh(0));
    await store.createOrRefresh('B', '3', 10, create(rec('none', 'B', '3', 1002, { wakeAt: null })), refresh(0));
    expect(await store.nextWake()).toBe(5000);
    expect((await store.due(4999)).map((v) => v.request.id)).toEqual([]);
    expect((await store.due(9000)).map((v) => v.request.id)).toEqual(['early', 'late']);
    expect((await store.due(9000, 1)).map((v) => v.request.id)).toEqual(['early']);
    expect((await store.pending()).map((v) => v.request.id).sort()).toEqual(['early', 'late', 'none']);
    expect(await store.idsInState('WAITING', 'A')).toEqual(['early', 'late']);
    expect(await store.idsInState('DUE')).toEqual([]);
    expect((await store.list({ agent: 'A' })).map((r) => r.id)).toEqual(['late', 'early']);
    expect((await store.list({ limit: 2 })).map((r) => r.id)).toEqual(['late', 'early']);
    const e = (await store.get('early'))!;
    await store.transition({ ...e.request, state: 'CANCELLED', wakeAt: null }, e.version, []);
    expect((await store.list({ states: ['CANCELLED'] })).map((r) => r.id)).toEqual(['early']);
    expect(await store.nextWake()).toBe(9000);
    expect((await store.pending()).map((v) => v.request.id).sort()).toEqual(['late', 'none']);
  });

  it('knows what pending requests depend on: agents and watched lines', async () => {
    await store.createOrRefresh('A', '1', 10, create(rec('r1', 'A', '1', 1000, { mode: 'device' })), refresh(0));
    await store.createOrRefresh('B', '2', 10, create(rec('r2', 'B', '2', 1001, { mode: 'timed' })), refresh(0));
    await store.createOrRefresh('B', '3', 10, create(rec('r3', 'B', '3', 1002, { mode: 'device' })), refresh(0));
    const deps = await store.pendingDependencies();
    expect(deps.agents.sort()).toEqual(['A', 'B']);
    expect(deps.lineProspects.sort()).toEqual(['1', '3']);
    expect(deps.count).toBe(3);
    expect(await store.pendingLineWatchers(['1', '2', '3'])).toEqual(['r1', 'r3']);
    expect(await store.pendingLineWatchers([])).toEqual([]);
  });

  it('outbox: rows written with their transition, idempotent keys, claim once, sent and failed', async () => {
    await store.createOrRefresh('A', '1', 10, create(rec('r1', 'A', '1')), refresh(0));
    await store.enqueueOutbox([
      { key: 'r1:created', requestId: 'r1', event: 'created', createdAt: 1000, body: 'dup' },
      { key: 'k2', requestId: 'r1', event: 'x', createdAt: 1500, body: '{"b":2}' },
    ]);
    const all = await store.outbox();
    expect(all.map((o) => [o.key, o.body])).toEqual([
      ['r1:created', '{"id":"r1"}'],
      ['k2', '{"b":2}'],
    ]);
    expect(await store.outboxNextAt()).toBe(1000);
    const due = await store.outboxDue(1200);
    expect(due.map((o) => o.key)).toEqual(['r1:created']);
    const other = await backend.second();
    expect(await store.outboxClaim(due[0].id, due[0].nextAt, 60_000)).toBe(true);
    expect(await other.outboxClaim(due[0].id, due[0].nextAt, 60_000)).toBe(false);
    await store.outboxSent(due[0].id, 1300);
    await store.outboxFailed(all[1].id, 'HTTP 500', 5000, 1600);
    expect(await store.outboxDue(4999)).toEqual([]);
    await store.outboxFailed(all[1].id, 'HTTP 500 again', null, 5100);
    const after = await store.outbox();
    expect(after[0]).toMatchObject({ sentAt: 1300, attempts: 1, lastError: null });
    expect(after[1]).toMatchObject({ failedAt: 5100, attempts: 2, lastError: 'HTTP 500 again', sentAt: null });
    expect(await store.outboxNextAt()).toBeNull();
  });

  it('outbox: two senders claiming due rows at once get disjoint sets and together all of them', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, requestId: 'r', event: 'e', createdAt: 100 + i, body: String(i) }));
    await store.enqueueOutbox(rows);
    const other = await backend.second();
    const claims = await Promise.all([store.outboxClaimDue(1000, 99_000, 15), other.outboxClaimDue(1000, 99_000, 15), store.outboxClaimDue(1000, 99_000, 15)]);
    const keys = claims.flat().map((r) => r.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(40);
    expect(claims.flat().every((r) => r.nextAt === 99_000)).toBe(true);
    expect(await store.outboxClaimDue(1000, 99_000)).toEqual([]);
  });

  it('many concurrent opt-ins of one agent for one prospect make one request (and respect the cap)', async () => {
    const clients = [store, await backend.second(), await backend.second()];
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        clients[i % 3].createOrRefresh('A', String(i % 2), 1, create(rec(`c${i}`, 'A', String(i % 2), 1000 + i)), refresh(5000 + i)),
      ),
    );
    expect(results.filter((r) => r.result === 'created')).toHaveLength(1);
    expect(await store.countPending('A')).toBe(1);
  });
});
