/**
 * Group commit on SQLite (src/store/group.ts, the driver's Db.group): opt-ins arriving together share one
 * commit; each caller hears back, and each decision's telephony actions, webhooks and listeners run, only once
 * the group is durable. The failure cases are performed: a group whose COMMIT fails, one decision in a group
 * failing half-way through its writes, and a crash between staging and commit (a second process reads the file).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CallbackRequest } from '../../src/core/policy';
import type { OptInResult } from '../../src/engine';
import { StoreError } from '../../src/store/contract';
import type { Db, GroupTx } from '../../src/store/db';
import { GroupCommit } from '../../src/store/group';
import { SqlStore } from '../../src/store/sql';
import { openSqliteDb, SqliteStore } from '../../src/store/sqlite';
import { engineWorld } from '../../testkit/engine';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-group-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const AGENTS = Array.from({ length: 10 }, (_, i) => `PJSIP/10${String(i).padStart(2, '0')}`);

/** What another process sees in the file: committed rows only (what survives a crash). */
function committedElsewhere(file: string): { requests: number; events: number } {
  const script = `const D=require('better-sqlite3');const d=new D(process.argv[1],{readonly:true});
    console.log(JSON.stringify({requests:d.prepare('SELECT COUNT(*) n FROM requests').get().n,events:d.prepare('SELECT COUNT(*) n FROM events').get().n}));`;
  const r = spawnSync(process.execPath, ['-e', script, file], { encoding: 'utf8', cwd: path.join(__dirname, '../..') });
  if (r.status !== 0) throw new Error(`reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { requests: number; events: number };
}

/** A never-settled flag for a promise: did it settle yet? */
function watch<T>(p: Promise<T>): { settled: boolean; p: Promise<T> } {
  const w = { settled: false, p };
  p.then(
    () => (w.settled = true),
    () => (w.settled = true),
  );
  return w;
}

describe('group commit on SQLite', () => {
  it('ten opt-ins arriving together share one commit; nobody hears back and nothing rings before it is durable', async () => {
    const file = path.join(dir, 'cb.sqlite');
    const store = SqliteStore.open<CallbackRequest>(file);
    const seenAtCommit: { size: number; elsewhere: { requests: number; events: number }; dispatched: number; settled: number; notified: number }[] = [];
    const calls: { settled: boolean }[] = [];
    const w = await engineWorld({
      store,
      beforeCommit: (size) => {
        seenAtCommit.push({ size, elsewhere: committedElsewhere(file), dispatched: w.dispatched.length, settled: calls.filter((c) => c.settled).length, notified: w.notified.length });
      },
    });
    try {
      const results = AGENTS.map((a) => watch(w.when.optIn(a, '+4930123456')));
      calls.push(...results);
      const done = await Promise.all(results.map((r) => r.p));
      expect(done.map((r) => r.result)).toEqual(AGENTS.map(() => 'created'));
      // One group for all ten: before its COMMIT nothing was in the file for anyone else, nobody had an answer.
      expect(seenAtCommit[0]).toEqual({ size: 10, elsewhere: { requests: 0, events: 0 }, dispatched: 0, settled: 0, notified: 0 });
      expect(w.engine.decisions.stats).toMatchObject({ groups: 1, decisions: 10, largest: 10 });
      expect(committedElsewhere(file)).toEqual({ requests: 10, events: 10 });
    } finally {
      await w.close();
      await store.close();
    }
  });

  it('a group whose COMMIT fails: every caller gets the error, no action runs, nothing is in the store', async () => {
    const file = path.join(dir, 'cb.sqlite');
    const real = openSqliteDb(file);
    let failCommits = true;
    // The COMMIT fails as a full disk makes it fail: the transaction is rolled back and the driver throws.
    const failing: Db = {
      dialect: real.dialect,
      where: real.where,
      one: (sql, params) => real.one(sql, params),
      all: (sql, params) => real.all(sql, params),
      run: (sql, params) => real.run(sql, params),
      tx: (fn, o) => real.tx(fn, o),
      writable: () => real.writable(),
      close: () => real.close(),
      group: async (o?: { quick?: boolean }): Promise<GroupTx> => {
        const g = await real.group(o);
        return {
          linger: g.linger,
          stage: (fn) => g.stage(fn),
          rollback: () => g.rollback(),
          commit: async () => {
            if (!failCommits) return g.commit();
            await g.rollback();
            throw new StoreError('callback store: database or disk is full (SQLITE_FULL at COMMIT)');
          },
        };
      },
    };
    const store = new SqlStore<CallbackRequest>(failing);
    const w = await engineWorld({ store, policy: { graceMs: 0 }, outbox: (d, at) => [{ key: `${d.request.id}:${at}`, requestId: d.request.id, event: 'callback.requested', createdAt: at, body: '{}' }] });
    try {
      const results = await Promise.allSettled(AGENTS.slice(0, 5).map((a) => w.when.optIn(a, '2001')));
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
      expect(results.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(AGENTS.slice(0, 5).map(() => expect.stringContaining('SQLITE_FULL')));
      expect(w.dispatched).toEqual([]);
      expect(w.notified).toEqual([]);
      expect(w.watched).toEqual([]);
      expect(await store.list()).toEqual([]);
      expect(await store.outbox()).toEqual([]);
      expect(committedElsewhere(file)).toEqual({ requests: 0, events: 0 });
      expect(w.engine.decisions.stats.failedCommits).toBe(1);

      // Decisions that ring: three requests stored, then their lines free together (grace 0: ring at once) and
      // that group's COMMIT fails — nobody is rung, the requests are as they were.
      failCommits = false;
      const ids = await Promise.all(['2001', '2002', '2003'].map((p, i) => w.given.optedIn(AGENTS[i], p)));
      const statesBefore = await Promise.all(ids.map((id) => w.then.stateOf(id)));
      failCommits = true;
      const freed = await Promise.allSettled(['2001', '2002', '2003'].map((p) => w.when.lineFrees(p)));
      expect(freed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(w.dispatched).toEqual([]);
      expect(await Promise.all(ids.map((id) => w.then.stateOf(id)))).toEqual(statesBefore);
      expect(statesBefore).toEqual(['WAITING', 'WAITING', 'WAITING']);
      expect(w.engine.decisions.stats.failedCommits).toBe(2);
      // The same decisions once the disk is back: they ring.
      failCommits = false;
      await Promise.all(['2001', '2002', '2003'].map((p) => w.when.lineFrees(p)));
      expect(w.then.rings().sort()).toEqual(AGENTS.slice(0, 3));
    } finally {
      await w.close();
      await real.close();
    }
  });

  it('one decision failing half-way through its writes rolls back alone; the others of its group commit', async () => {
    const file = path.join(dir, 'cb.sqlite');
    const store = SqliteStore.open<CallbackRequest>(file);
    // The opt-in for 2666 fails at its outbox row (NOT NULL), after its request and history rows were written.
    const w = await engineWorld({
      store,
      outbox: (d, at) => [{ key: `${d.request.id}:${at}`, requestId: d.request.id, event: 'callback.requested', createdAt: at, body: (d.request.prospect === '2666' ? null : '{}') as string }],
    });
    try {
      const prospects = ['2001', '2002', '2666', '2003', '2004'];
      const results = await Promise.allSettled(prospects.map((p, i) => w.when.optIn(AGENTS[i], p)));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect(w.engine.decisions.stats).toMatchObject({ groups: 1, decisions: 4 });
      const stored = await store.list();
      expect(stored.map((r) => r.prospect).sort()).toEqual(['2001', '2002', '2003', '2004']);
      expect(committedElsewhere(file)).toEqual({ requests: 4, events: 4 });
      expect((await store.outbox()).map((o) => o.requestId).sort()).toEqual(stored.map((r) => r.id).sort());
      // Only the committed ones were watched (their actions ran); nothing for the failed one.
      expect(w.watched).not.toContain('PJSIP/2666');
      expect(w.watched).toEqual(expect.arrayContaining(['PJSIP/2001', 'PJSIP/2002', 'PJSIP/2003', 'PJSIP/2004']));
      expect(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<OptInResult>).value.result)).toEqual(['created', 'created', 'created', 'created']);
    } finally {
      await w.close();
      await store.close();
    }
  });

  it('a crash between staging and commit: nothing is durable, nothing rang, no caller heard a confirmation', async () => {
    const file = path.join(dir, 'cb.sqlite');
    const store = SqliteStore.open<CallbackRequest>(file);
    let crashed!: (err: Error) => void;
    let atCommit!: () => void;
    const reachedCommit = new Promise<void>((r) => (atCommit = r));
    const w = await engineWorld({
      store,
      policy: { graceMs: 0 },
      // The process dies here: the COMMIT is never sent.
      beforeCommit: () =>
        new Promise<void>((_, reject) => {
          crashed = reject;
          atCommit();
        }),
    });
    try {
      const calls = ['2001', '2002', '2003'].map((p, i) => watch(w.when.optIn(AGENTS[i], p)));
      await reachedCommit;
      // What a restarted process would find: the file's committed rows (uncommitted WAL frames are not replayed).
      expect(committedElsewhere(file)).toEqual({ requests: 0, events: 0 });
      expect(calls.map((c) => c.settled)).toEqual([false, false, false]);
      expect(w.dispatched).toEqual([]);
      expect(w.notified).toEqual([]);
      crashed(new Error('killed'));
      const after = await Promise.allSettled(calls.map((c) => c.p));
      expect(after.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      await w.close();
      await store.close();
      const reopened = SqliteStore.open<CallbackRequest>(file);
      expect(await reopened.list()).toEqual([]);
      await reopened.close();
      expect(w.dispatched).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('GroupCommit (the queue of decisions)', () => {
  it('a decision reads what the one before it staged; a read from outside meanwhile sees only committed rows, at once', async () => {
    const store = SqliteStore.open<CallbackRequest>(path.join(dir, 'cb.sqlite'));
    const outside: (string | undefined)[] = [];
    let outsideRead: Promise<void> | undefined;
    const gc = new GroupCommit({
      open: (o) => store.group(o),
      beforeCommit: async () => {
        // The page's read while the group is open: it does not wait for the group and sees nothing of it.
        outsideRead = store.get('r1').then((v) => void outside.push(v?.request.state));
        await outsideRead;
      },
    });
    const req = { id: 'r1', agent: 'PJSIP/1001', prospect: '2001', state: 'PENDING', createdAt: 1, updatedAt: 1, wakeAt: null } as unknown as CallbackRequest;
    const write = gc.run(() => store.createOrRefresh('PJSIP/1001', '2001', 5, () => ({ request: req, events: [] }), () => ({ request: req, events: [] })));
    const read = gc.run(async () => (await store.get('r1'))?.request.state);
    expect(await write).toMatchObject({ result: 'created' });
    expect(await read).toBe('PENDING');
    expect(outside).toEqual([undefined]);
    expect((await store.get('r1'))?.request.state).toBe('PENDING');
    expect(gc.stats).toMatchObject({ groups: 1, decisions: 2 });
    await store.close();
  });

  it('side effects registered by a decision run after the commit and in order; a throwing one does not stop the rest', async () => {
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const order: string[] = [];
    const errors: unknown[] = [];
    const gc = new GroupCommit({ open: (o) => store.group(o), beforeCommit: () => void order.push('commit'), onEffectError: (e) => errors.push(e) });
    const a = gc.run(async () => {
      gc.afterCommit(() => order.push('a1'));
      gc.afterCommit(() => {
        throw new Error('listener broke');
      });
      gc.afterCommit(() => order.push('a2'));
      return 'a';
    });
    const b = gc.run(async () => {
      gc.afterCommit(() => order.push('b'));
      return 'b';
    });
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect(order).toEqual(['commit', 'a1', 'a2', 'b']);
    expect(errors).toHaveLength(1);
    // Outside a decision an effect runs at once.
    gc.afterCommit(() => order.push('now'));
    expect(order.at(-1)).toBe('now');
    await store.close();
  });

  it("a decision's scope carries it for its own queue only: another queue's side effect asked for inside it runs at once", async () => {
    // The decision rides on the driver's staging scope (one AsyncLocalStorage for the process, see group.ts).
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const order: string[] = [];
    const gc = new GroupCommit({ open: (o) => store.group(o), beforeCommit: () => void order.push('commit') });
    const other = new GroupCommit({ open: (o) => store.group(o) });
    const withoutGroup = new GroupCommit();
    await gc.run(async () => {
      other.afterCommit(() => order.push('other'));
      withoutGroup.afterCommit(() => order.push('without a group'));
      gc.afterCommit(() => order.push('own'));
      order.push('decided');
      return undefined;
    });
    expect(order).toEqual(['other', 'without a group', 'decided', 'commit', 'own']);
    // A store without group commit (NO_GROUP): its decision's effects still wait for its end.
    const late: string[] = [];
    await withoutGroup.run(async () => {
      withoutGroup.afterCommit(() => late.push('effect'));
      late.push('decided');
      return undefined;
    });
    expect(late).toEqual(['decided', 'effect']);
    await store.close();
  });
});
