/**
 * Group commit on PostgreSQL (src/store/postgres.ts `group`), on the test cluster: opt-ins staged in one
 * transaction on the writer connection; the page's reads (the pool) see committed rows only while a decision
 * of the group sees the group's staged rows. Performed failures: a COMMIT refused by the database (a deferred
 * constraint, so the refusal comes at COMMIT), and a lease lost in the middle of a group (nothing of the group
 * is written).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallbackRequest } from '../../src/core/policy';
import { FencedError } from '../../src/store/contract';
import { GroupCommit } from '../../src/store/group';
import { PgStore } from '../../src/store/postgres';
import { engineWorld } from '../../testkit/engine';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

let db: TestDatabase;
let store: PgStore<CallbackRequest>;
beforeEach(async () => {
  db = await freshDatabase('group');
  store = await PgStore.open<CallbackRequest>(db.url, { pbx: 'site-a' });
});
afterEach(async () => {
  await store.close();
  await db.drop();
});

const AGENTS = Array.from({ length: 6 }, (_, i) => `PJSIP/10${String(i).padStart(2, '0')}`);
const count = async (table: string) => Number((await store.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${table}`)).rows[0].n);

function request(id: string, agent: string, prospect: string): CallbackRequest {
  return { id, agent, prospect, state: 'PENDING', createdAt: 1, updatedAt: 1, wakeAt: null } as unknown as CallbackRequest;
}

describe('group commit on PostgreSQL', () => {
  it('opt-ins arriving together share one commit; the pool sees nothing of them before it, the callers hear back after it', async () => {
    const seen: { size: number; requests: number; dispatched: number }[] = [];
    const w = await engineWorld({
      store,
      policy: { graceMs: 0 },
      beforeCommit: async (size) => {
        seen.push({ size, requests: await count('requests'), dispatched: w.dispatched.length });
      },
    });
    try {
      const r = await Promise.all(AGENTS.map((a, i) => w.when.optIn(a, `200${i}`)));
      expect(r.map((x) => x.result)).toEqual(AGENTS.map(() => 'created'));
      expect(seen).toEqual([{ size: 6, requests: 0, dispatched: 0 }]);
      expect(await count('requests')).toBe(6);
      // Their lines free together: one group rings all six, after it is durable.
      seen.length = 0;
      await Promise.all(AGENTS.map((_, i) => w.when.lineFrees(`200${i}`)));
      expect(seen).toEqual([{ size: 6, requests: 6, dispatched: 0 }]);
      expect(w.then.rings().sort()).toEqual(AGENTS);
    } finally {
      await w.close();
    }
  });

  it('a decision reads the rows the one before it staged; a read from the pool meanwhile sees only committed rows', async () => {
    let outside: number | undefined;
    const gc = new GroupCommit({ open: (o) => store.group(o), beforeCommit: async () => void (outside = await count('requests')) });
    const r1 = request('r1', AGENTS[0], '2001');
    const write = gc.run(() => store.createOrRefresh(AGENTS[0], '2001', 5, () => ({ request: r1, events: [] }), () => ({ request: r1, events: [] })));
    const read = gc.run(async () => (await store.get('r1'))?.request.state);
    expect(await write).toMatchObject({ result: 'created' });
    expect(await read).toBe('PENDING');
    expect(outside).toBe(0);
    expect(await count('requests')).toBe(1);
  });

  it('a COMMIT the database refuses: every caller gets the error, nobody is rung, nothing is in the store', async () => {
    // A deferred constraint: checked at COMMIT, so the statements of the group all succeed and the COMMIT fails.
    await store.query(`CREATE FUNCTION no_2666() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.prospect = '2666' THEN RAISE EXCEPTION 'prospect 2666 refused at commit'; END IF; RETURN NEW; END $$`);
    await store.query(`CREATE CONSTRAINT TRIGGER no_2666 AFTER INSERT OR UPDATE ON requests DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION no_2666()`);
    const w = await engineWorld({ store, policy: { graceMs: 0 } });
    try {
      const results = await Promise.allSettled(['2001', '2666', '2002'].map((p, i) => w.when.optIn(AGENTS[i], p)));
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(results.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(['2001', '2666', '2002'].map(() => expect.stringContaining('prospect 2666 refused at commit')));
      expect(await count('requests')).toBe(0);
      expect(await count('events')).toBe(0);
      expect(w.watched).toEqual([]);
      // A group that rings: stored requests whose lines free together with the one that cannot commit.
      const ids = await Promise.all(['2001', '2002'].map((p, i) => w.given.optedIn(AGENTS[i], p)));
      const before = await Promise.all(ids.map((id) => w.then.stateOf(id)));
      // Queued at once (an observation as the line's device state brings it: lineFrees reads the line's watchers from the
      // pool first, so its decision would queue after a round trip, and an opt-in alone commits as soon as no decision waits).
      const free = (id: string) => w.when.observed(id, { type: 'prospectState', busy: false });
      const freed = await Promise.allSettled([free(ids[0]), w.when.optIn(AGENTS[5], '2666'), free(ids[1])]);
      expect(freed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(w.dispatched).toEqual([]);
      expect(await Promise.all(ids.map((id) => w.then.stateOf(id)))).toEqual(before);
      expect(w.engine.decisions.stats.failedCommits).toBe(2);
    } finally {
      await w.close();
    }
  });

  it('a lease lost in the middle of a group: the later write is refused and nothing of the group is written', async () => {
    await store.query(`INSERT INTO leases(pbx, app, holder, epoch, expires_at) VALUES ('site-a', 'cc', 'me', 7, clock_timestamp() + interval '400 milliseconds')`);
    store.setFence({ app: 'cc', holder: 'me', epoch: 7 });
    const gc = new GroupCommit({ open: (o) => store.group(o) });
    const rows = AGENTS.slice(0, 3).map((a, i) => request(`r${i}`, a, `200${i}`));
    const opt = (i: number) => store.createOrRefresh(rows[i].agent, rows[i].prospect, 5, () => ({ request: rows[i], events: [] }), () => ({ request: rows[i], events: [] }));
    const first = gc.run(() => opt(0));
    // The second decision of the group writes after the lease expired (the instance was paused, say).
    const second = gc.run(async () => {
      await sleep(600);
      return opt(1);
    });
    const third = gc.run(() => opt(2));
    const settled = await Promise.allSettled([first, second, third]);
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of settled) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(FencedError);
    expect(await count('requests')).toBe(0);
  });

  it('a lease that expires after the last write but before the COMMIT: the group is refused at its commit', async () => {
    await store.query(`INSERT INTO leases(pbx, app, holder, epoch, expires_at) VALUES ('site-a', 'cc', 'me', 7, clock_timestamp() + interval '400 milliseconds')`);
    store.setFence({ app: 'cc', holder: 'me', epoch: 7 });
    const gc = new GroupCommit({ open: (o) => store.group(o), beforeCommit: () => sleep(600) });
    const rows = AGENTS.slice(0, 2).map((a, i) => request(`r${i}`, a, `200${i}`));
    const settled = await Promise.allSettled(
      rows.map((r) => gc.run(() => store.createOrRefresh(r.agent, r.prospect, 5, () => ({ request: r, events: [] }), () => ({ request: r, events: [] })))),
    );
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of settled) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(FencedError);
    expect(await count('requests')).toBe(0);
    // With a live lease the same group commits.
    await store.query(`UPDATE leases SET expires_at = clock_timestamp() + interval '1 minute'`);
    const ok = new GroupCommit({ open: (o) => store.group(o) });
    await Promise.all(rows.map((r) => ok.run(() => store.createOrRefresh(r.agent, r.prospect, 5, () => ({ request: r, events: [] }), () => ({ request: r, events: [] })))));
    expect(await count('requests')).toBe(2);
  });

  it('a group whose decisions sent no statement (its BEGIN never went): with a fence its side effects still wait for the lease check, which a lost lease fails', async () => {
    // No fence: nothing is sent at all, and the decision's side effect runs.
    const effects: string[] = [];
    const plain = new GroupCommit({ open: (o) => store.group(o) });
    await expect(plain.run(async () => (plain.afterCommit(() => effects.push('unfenced')), 'done'))).resolves.toBe('done');
    expect(effects).toEqual(['unfenced']);
    // A lease no longer this holder's: the decision wrote nothing, yet its caller hears FencedError and its side effect never runs.
    await store.query(`INSERT INTO leases(pbx, app, holder, epoch, expires_at) VALUES ('site-a', 'cc', 'other', 8, clock_timestamp() + interval '1 minute')`);
    store.setFence({ app: 'cc', holder: 'me', epoch: 7 });
    const gc = new GroupCommit({ open: (o) => store.group(o) });
    await expect(gc.run(async () => (gc.afterCommit(() => effects.push('stale')), 'done'))).rejects.toBeInstanceOf(FencedError);
    expect(effects).toEqual(['unfenced']);
    // The lease this holder's again: the same decision is confirmed, its side effect runs.
    await store.query(`UPDATE leases SET holder = 'me', epoch = 7`);
    await expect(gc.run(async () => (gc.afterCommit(() => effects.push('fenced')), 'done'))).resolves.toBe('done');
    expect(effects).toEqual(['unfenced', 'fenced']);
  });

  it('values staged in a group go out as escaped literals: quotes, backslashes, dollar quotes and ? come back as they were, nothing else runs', async () => {
    // The attack: a CRM name, an agent and a prospect written to break out of an inlined literal (a statement of
    // a staged decision goes out with its savepoint as one simple-protocol query, its parameters inlined).
    const hostile = [
      "O'Brien'); DROP TABLE requests; --",
      'back\\slash \\\' OR 1=1 --',
      '$$; DROP TABLE events; $$',
      "what? a ?-mark ? '?'",
      'E\'\\x27\'; SELECT pg_sleep(5); --',
    ];
    const gc = new GroupCommit({ open: (o) => store.group(o) });
    const rows = hostile.map((h, i) => ({ ...request(`r${i}`, `${AGENTS[i]}${h}`, `${h}200${i}`), contact: { name: h, company: h } }) as unknown as CallbackRequest);
    const written = await Promise.all(
      rows.map((r) => gc.run(() => store.createOrRefresh(r.agent, r.prospect, 5, () => ({ request: r, events: [] }), () => ({ request: r, events: [] })))),
    );
    expect(written.map((w) => w.result)).toEqual(hostile.map(() => 'created'));
    // Read back inside a group (inlined again) and from the pool (bound parameters): the same values.
    const staged = await Promise.all(rows.map((r) => gc.run(async () => (await store.get(r.id))?.request)));
    for (const [i, r] of rows.entries()) {
      expect(staged[i]).toMatchObject({ agent: r.agent, prospect: r.prospect, contact: { name: hostile[i], company: hostile[i] } });
      expect((await store.get(r.id))?.request).toMatchObject({ agent: r.agent, prospect: r.prospect });
    }
    const byColumn = await store.query<{ agent: string; prospect: string }>('SELECT agent, prospect FROM requests ORDER BY id');
    expect(byColumn.rows).toEqual(rows.map((r) => ({ agent: r.agent, prospect: r.prospect })));
    expect(await count('requests')).toBe(hostile.length);
    expect(await count('events')).toBe(0);
  });
});
