/**
 * The opt-in's door on PostgreSQL: a table locked by another session (a maintenance job, a stuck
 * migration, an admin's open transaction) makes the opt-in fail with a StoreError that names the lock
 * wait (lock_timeout), not hang until the statement timeout or longer; the engine's reads fail the same
 * way after the pool's longer lock wait; and once the lock is gone the next opt-in is stored. SQLite's counterpart is in store-door.test.ts.
 */
import pg from 'pg';
import { type CallbackRequest } from '../../src/core/policy';
import type { Engine } from '../../src/engine';
import { StoreError } from '../../src/store/contract';
import { PgStore } from '../../src/store/postgres';
import { engineWorld } from '../../testkit/engine';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('door');
});
afterAll(async () => {
  await db?.drop();
});

const optIn = (engine: Engine, agent: string, prospect: string) =>
  engine.optIn({ agent, agentCallerId: { name: 'A', number: '1001' }, prospect, language: 'en', channelId: `c-${prospect}` });

it('a table locked by another session: the opt-in and the reads fail on the lock wait with a StoreError, then succeed once the lock is gone', async () => {
  const store = await PgStore.open<CallbackRequest>(db.url, { pbx: 'door' });
  const { engine } = await engineWorld({ store, clock: Date.now, prospectDevice: () => undefined, started: false });
  const other = new pg.Client({ connectionString: db.url });
  await other.connect();
  try {
    // The attack: another session holds the requests table in ACCESS EXCLUSIVE mode and never lets go.
    await other.query('BEGIN');
    await other.query('LOCK TABLE requests IN ACCESS EXCLUSIVE MODE');
    const failed = await optIn(engine, 'PJSIP/1001', '2001').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(StoreError);
    // It gave up on the lock (55P03, lock_timeout) instead of waiting for it to be released.
    expect(String((failed as Error).message)).toMatch(/lock timeout/);
    expect(((failed as StoreError).cause as { code?: string }).code).toBe('55P03');
    // Every other statement has its own, longer lock wait: the engine's reads fail and are retried, not hung.
    await expect(store.due(Date.now())).rejects.toThrow(/lock timeout/);

    await other.query('ROLLBACK');
    expect(await store.due(Date.now() + 86_400_000)).toEqual([]);
    const stored = await optIn(engine, 'PJSIP/1001', '2001');
    expect(stored.result).toBe('created');
    expect((await store.list()).map((r) => r.prospect)).toEqual(['2001']);
  } finally {
    await other.end();
    engine.stop();
    await store.close();
  }
});
