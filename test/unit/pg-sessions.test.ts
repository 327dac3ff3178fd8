/**
 * The PostgreSQL pool's sessions (src/store/postgres.ts: PgStoreOptions.sessions, warmSql), on the test cluster:
 * opened and warmed when the store is prepared (cc_opt_in compiled and planned, cc_fence_check compiled) so that no
 * call pays for a new session or a cold function; kept while idle; a session opened later (the server ended one) is
 * warmed before its first use. The warm-up writes nothing and leaves no transaction open; a lost lease still fails a
 * group after it. Observed through the server (pg_stat_activity from a connection of the test's own) and the store.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { CallbackRequest } from '../../src/core/policy';
import { pgBenchSeams } from '../../src/store';
import { FencedError } from '../../src/store/contract';
import { PgStore, WARM_MARK } from '../../src/store/postgres';
import { engineWorld } from '../../testkit/engine';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

let db: TestDatabase;
let admin: pg.Client;
const stores: PgStore<CallbackRequest>[] = [];
beforeEach(async () => {
  db = await freshDatabase('sessions');
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  await admin.end();
  await db.drop();
});

async function open(opts: Parameters<typeof PgStore.open>[1] = {}): Promise<PgStore<CallbackRequest>> {
  const s = await PgStore.open<CallbackRequest>(db.url, { pbx: 'site-a', ...opts });
  stores.push(s);
  return s;
}

/** The store's sessions as the server sees them (every backend on the test's database but the test's own). */
async function sessions(): Promise<{ pid: number; state: string; query: string }[]> {
  return (
    await admin.query<{ pid: number; state: string; query: string }>(
      'SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid',
    )
  ).rows;
}
const warmedSessions = async () => (await sessions()).filter((s) => s.query.includes(WARM_MARK));
const count = async (table: string) => Number((await admin.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${table}`)).rows[0].n);

describe("the PostgreSQL pool's sessions", () => {
  it('are all opened and warmed when the store is prepared, writing nothing and leaving no transaction open', async () => {
    const store = await open({ poolSize: 3 });
    const all = await sessions();
    expect(all).toHaveLength(3);
    expect(all.every((s) => s.query.includes(WARM_MARK) && s.state === 'idle')).toBe(true);
    expect(store.sessionsWarmed).toBe(3);
    expect(await count('requests')).toBe(0);
    expect(await count('events')).toBe(0);
    expect(await count('outbox')).toBe(0);
  });

  it("'cold' (the command line, the bench's A/B) opens sessions on demand and does not warm them", async () => {
    const store = await open({ poolSize: 3, sessions: 'cold' });
    expect(await warmedSessions()).toEqual([]);
    expect(store.sessionsWarmed).toBe(0);
    expect((await sessions()).length).toBeLessThanOrEqual(1);
  });

  it('are kept while idle, past node-postgres’s default of 10 s', async () => {
    await open({ poolSize: 2 });
    const before = (await sessions()).map((s) => s.pid);
    await sleep(11_000);
    expect((await sessions()).map((s) => s.pid)).toEqual(before);
  }, 30_000);

  it('a session the server ended is replaced by one warmed before its first transaction, and opt-ins go on', async () => {
    const errors: Error[] = [];
    const store = await open({ poolSize: 2, onIdleError: (e) => errors.push(e) });
    expect(store.sessionsWarmed).toBe(2);
    const old = (await sessions()).map((s) => s.pid);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    while (errors.length < old.length) await sleep(20);
    const w = await engineWorld({ store, policy: { graceMs: 0 } });
    try {
      expect((await w.when.optIn('PJSIP/1001', '2001')).result).toBe('created');
    } finally {
      await w.close();
    }
    // The opt-in's group opened a new session and warmed it before its first statement.
    expect(store.sessionsWarmed).toBe(3);
    expect((await sessions()).some((s) => old.includes(s.pid))).toBe(false);
    // The opt-in's rows are there, the warm-up's are not.
    expect((await admin.query<{ agent: string }>('SELECT agent FROM requests')).rows).toEqual([{ agent: 'PJSIP/1001' }]);
    expect(await count('events')).toBeGreaterThan(0);
  });

  it('a lost lease still fails a group on a warmed session: FencedError, nothing written, no side effect', async () => {
    const store = await open({ poolSize: 2 });
    await admin.query("INSERT INTO leases(pbx, app, holder, epoch, expires_at) VALUES ('site-a', 'cc', 'me', 1, now() + interval '1 hour')");
    store.setFence({ app: 'cc', holder: 'me', epoch: 1 });
    const w = await engineWorld({ store, policy: { graceMs: 0 } });
    try {
      expect((await w.when.optIn('PJSIP/1001', '2001')).result).toBe('created');
      // Another instance took the lease over.
      await admin.query("UPDATE leases SET holder = 'other', epoch = 2 WHERE pbx = 'site-a'");
      await expect(w.when.optIn('PJSIP/1002', '2002')).rejects.toBeInstanceOf(FencedError);
      expect(await count('requests')).toBe(1);
      expect(w.dispatched.filter((d) => JSON.stringify(d).includes('2002'))).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it('CC_PG_SESSIONS and CC_PG_COMMIT pick the A/Bs of the service’s store; a wrong value is refused', () => {
    expect(pgBenchSeams({})).toEqual({});
    expect(pgBenchSeams({ CC_PG_SESSIONS: 'cold' })).toEqual({ sessions: 'cold' });
    expect(pgBenchSeams({ CC_PG_SESSIONS: 'warm' })).toEqual({ sessions: 'warm' });
    expect(() => pgBenchSeams({ CC_PG_SESSIONS: 'hot' })).toThrow(/CC_PG_SESSIONS=hot: expected one of warm, cold/);
    expect(pgBenchSeams({ CC_PG_COMMIT: 'apart' })).toEqual({ commit: 'apart' });
    expect(pgBenchSeams({ CC_PG_COMMIT: 'with', CC_PG_SESSIONS: 'cold' })).toEqual({ commit: 'with', sessions: 'cold' });
    expect(() => pgBenchSeams({ CC_PG_COMMIT: 'alone' })).toThrow(/CC_PG_COMMIT=alone: expected one of with, apart/);
  });
});
