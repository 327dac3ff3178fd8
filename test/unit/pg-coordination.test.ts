/**
 * PostgreSQL as the coordinator (a real server, testkit/pg.ts): versioned migrations, the lease per
 * (PBX, app) with its fencing epoch, writes from a stale epoch refused by the database, and several PBXs
 * in one database. Each test performs the attack (two store clients, one of them stale) and checks what
 * the database holds afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { FencedError, RequestRecord } from '../../src/store/contract';
import { LATEST_VERSION, MIGRATIONS } from '../../src/store/migrations/postgres';
import { PgStore } from '../../src/store/postgres';
import { PgLease } from '../../src/coordination/lease';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

type Rec = RequestRecord;

function rec(id: string, agent = 'PJSIP/1001', prospect = '2001', now = 1000): Rec {
  return { id, agent, prospect, state: 'WAITING', createdAt: now, updatedAt: now, wakeAt: now + 300000 };
}
const create = (r: Rec) => () => ({ request: r, events: [{ requestId: r.id, at: r.createdAt, type: 'requested' }] });
const refresh = () => (e: Rec) => ({ request: e, events: [] });

let db: TestDatabase;
const opened: { close(): Promise<void> }[] = [];
async function open(pbx = 'site-a', allPbx = false): Promise<PgStore<Rec>> {
  const s = await PgStore.open<Rec>(db.url, { pbx, allPbx });
  opened.push(s);
  return s;
}

beforeEach(async () => {
  db = await freshDatabase('coord');
});
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  await db.drop();
});

describe('migrations', () => {
  it('run once at start, versioned; two instances starting together migrate once', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    expect((await a.migrations()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect((await b.migrations()).length).toBe(MIGRATIONS.length);
    // A third start finds nothing to do.
    const c = await open();
    expect((await c.migrations()).length).toBe(MIGRATIONS.length);
  });

  it('a database migrated by a newer build is refused with a clear error', async () => {
    const a = await open();
    await a.query('INSERT INTO schema_migrations(version, name) VALUES ($1, $2)', [LATEST_VERSION + 1, 'from the future']);
    await expect(PgStore.open(db.url)).rejects.toThrow(`schema version ${LATEST_VERSION + 1}, this build understands up to ${LATEST_VERSION}`);
  });

  it('a server that is not there is a StoreError naming the URL without its password', async () => {
    await expect(PgStore.open('postgres://cc:s3cret@127.0.0.1:1/none')).rejects.toThrow(/cannot open callback store postgres:\/\/cc:\*\*\*@127\.0\.0\.1:1\/none/);
    await expect(PgStore.open('postgres://cc:s3cret@127.0.0.1:1/none')).rejects.not.toThrow(/s3cret/);
  });
});

describe('lease with a fencing epoch', () => {
  const opts = (holder: string, ttlMs = 60_000) => ({ pbx: 'site-a', app: 'considerate-callback', holder, ttlMs });

  it('one holder at a time; the epoch grows on every take-over, not on renewals', async () => {
    const s = await open();
    const a = new PgLease(s, opts('A', 300));
    const b = new PgLease(s, opts('B', 300));
    expect(await a.acquire()).toBe(1);
    expect(await b.acquire()).toBeUndefined();
    expect(await a.renew()).toBe(1);
    expect(await a.acquire()).toBe(1);
    // A stops renewing; once the TTL has passed (by the database's clock) B takes over with epoch 2.
    let took: number | undefined;
    while ((took = await b.acquire()) === undefined) await sleep(50);
    expect(took).toBe(2);
    expect(await a.renew()).toBeUndefined();
    expect(a.epoch).toBeUndefined();
    expect(await b.current()).toMatchObject({ holder: 'B', epoch: 2 });
    // A clean release lets the other take over at once.
    await b.release();
    expect(await a.acquire()).toBe(3);
  });

  it('a write from a stale epoch is refused by the database and writes nothing; the current holder writes', async () => {
    const active = await open();
    const standby = await open();
    const leaseA = new PgLease(active, opts('A', 300));
    const leaseB = new PgLease(standby, opts('B', 300));
    const epochA = (await leaseA.acquire())!;
    active.setFence({ app: 'considerate-callback', holder: 'A', epoch: epochA });
    await active.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('r1')), refresh());
    const seen = (await active.get('r1'))!;
    // A is paused past its TTL (SIGSTOP); B takes over.
    let epochB: number | undefined;
    while ((epochB = await leaseB.acquire()) === undefined) await sleep(50);
    expect(epochB).toBe(epochA + 1);
    standby.setFence({ app: 'considerate-callback', holder: 'B', epoch: epochB });
    // A wakes up and tries to ring the agent: its write is refused, nothing is recorded.
    await expect(active.transition({ ...seen.request, state: 'RINGING_AGENT' }, seen.version, [{ requestId: 'r1', at: 2, type: 'ring' }])).rejects.toBeInstanceOf(
      FencedError,
    );
    await expect(active.createOrRefresh('PJSIP/1001', '2002', 10, create(rec('r2', 'PJSIP/1001', '2002')), refresh())).rejects.toThrow(/stale lease epoch/);
    expect((await standby.get('r1'))!).toEqual(seen);
    expect(await standby.get('r2')).toBeUndefined();
    expect((await standby.events('r1')).map((e) => e.type)).toEqual(['requested']);
    // B, the current holder, writes.
    expect(await standby.transition({ ...seen.request, state: 'RINGING_AGENT' }, seen.version, [{ requestId: 'r1', at: 3, type: 'ring' }])).toBe(2);
    // Even with the right epoch number, another holder's name is refused (a lease of another PBX or app).
    standby.setFence({ app: 'considerate-callback', holder: 'A', epoch: epochB });
    const now = (await standby.get('r1'))!;
    await expect(standby.transition({ ...now.request, state: 'CONNECTING' }, now.version, [])).rejects.toBeInstanceOf(FencedError);
  });

  it('an expired lease nobody took over still fences: the paused holder must renew (and cannot once taken)', async () => {
    const s = await open();
    const lease = new PgLease(s, opts('A', 150));
    const epoch = (await lease.acquire())!;
    s.setFence({ app: 'considerate-callback', holder: 'A', epoch });
    await s.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('r1')), refresh());
    await sleep(300);
    const v = (await s.get('r1'))!;
    await expect(s.transition({ ...v.request, state: 'DUE' }, v.version, [])).rejects.toBeInstanceOf(FencedError);
    // Renewing an expired lease is refused too: it is acquired again, with a new epoch.
    expect(await lease.renew()).toBeUndefined();
    const again = (await lease.acquire())!;
    expect(again).toBe(epoch + 1);
    s.setFence({ app: 'considerate-callback', holder: 'A', epoch: again });
    expect(await s.transition({ ...v.request, state: 'DUE' }, v.version, [])).toBe(2);
  });

  it('a take-over waits for a write in flight of the old epoch; no old-epoch write commits after it', async () => {
    const a = await open();
    const b = await open();
    const lA = new PgLease(a, opts('A', 300));
    const epoch = (await lA.acquire())!;
    // A's write is in flight: its transaction has passed the fence (the lease row is held FOR SHARE) but
    // has not committed yet.
    const raw = new pg.Client({ connectionString: db.url });
    await raw.connect();
    await raw.query('BEGIN');
    await raw.query("SELECT set_config('cc.app', 'considerate-callback', true), set_config('cc.holder', 'A', true), set_config('cc.epoch', $1, true)", [String(epoch)]);
    await raw.query(
      `INSERT INTO requests(id, pbx, agent, prospect, state, created_at, updated_at, wake_at, data) VALUES ('r1', 'site-a', 'A', '1', 'WAITING', 1, 1, 1, '{}')`,
    );
    await sleep(400); // the lease has expired meanwhile
    const order: string[] = [];
    const lB = new PgLease(b, opts('B', 60_000));
    const takeOver = lB.acquire().then((e) => {
      order.push(`take-over ${e}`);
      return e;
    });
    await sleep(200);
    order.push('commit');
    await raw.query('COMMIT');
    await raw.end();
    expect(await takeOver).toBe(epoch + 1);
    // The take-over could not pass the write in flight: it happened after the commit.
    expect(order).toEqual(['commit', `take-over ${epoch + 1}`]);
    // And after it, A's epoch writes nothing.
    a.setFence({ app: 'considerate-callback', holder: 'A', epoch });
    const v = (await a.get('r1'))!;
    await expect(a.transition({ ...v.request, id: 'r1', state: 'RINGING_AGENT' } as Rec, v.version, [])).rejects.toBeInstanceOf(FencedError);
  });

  it('unfenced writers (the command line) are ordered by the version guard only', async () => {
    const engine = await open();
    const cli = await open('site-a', true);
    const lease = new PgLease(engine, opts('A'));
    engine.setFence({ app: 'considerate-callback', holder: 'A', epoch: (await lease.acquire())! });
    await engine.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('r1')), refresh());
    const v = (await cli.get('r1'))!;
    expect(await cli.transition({ ...v.request, state: 'CANCELLED', wakeAt: null }, v.version, [{ requestId: 'r1', at: 9, type: 'cancelled' }])).toBe(2);
    expect(await engine.transition({ ...v.request, state: 'DUE' }, v.version, [])).toBeUndefined();
  });
});

describe('several PBXs in one database', () => {
  it('each instance sees its own PBX pending work; the command line sees all; leases are per PBX', async () => {
    const siteA = await open('site-a');
    const siteB = await open('site-b');
    const cli = await open('site-a', true);
    // The same agent name and prospect on two PBXs are two requests.
    await siteA.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('a1')), refresh());
    await siteB.createOrRefresh('PJSIP/1001', '2002', 10, create(rec('b1', 'PJSIP/1001', '2002', 2000)), refresh());
    expect((await siteA.pending()).map((v) => v.request.id)).toEqual(['a1']);
    expect((await siteB.due(10_000_000)).map((v) => v.request.id)).toEqual(['b1']);
    expect(await siteA.countPending('PJSIP/1001')).toBe(1);
    expect((await cli.list()).map((r) => r.id)).toEqual(['a1', 'b1']);
    expect((await cli.list({ pbx: 'site-b' })).map((r) => r.id)).toEqual(['b1']);
    const la = new PgLease(siteA, { pbx: 'site-a', app: 'cc', holder: 'X', ttlMs: 60_000 });
    const lb = new PgLease(siteB, { pbx: 'site-b', app: 'cc', holder: 'X', ttlMs: 60_000 });
    expect(await la.acquire()).toBe(1);
    expect(await lb.acquire()).toBe(1);
    // A's lease does not let it write B's requests.
    siteB.setFence({ app: 'cc', holder: 'Y', epoch: 1 });
    const b1 = (await siteB.get('b1'))!;
    await expect(siteB.transition({ ...b1.request, state: 'DUE' }, b1.version, [])).rejects.toBeInstanceOf(FencedError);
  });
});

describe('one prospect, several agents (ready for the one-recall-per-prospect rule)', () => {
  it('the queue in opt-in order across PBXs; one recall per prospect number; the last conversation of another agent', async () => {
    const a = await open('site-a');
    const b = await open('site-b');
    await a.createOrRefresh('PJSIP/1001', '2001', 10, create(rec('q1', 'PJSIP/1001', '2001', 1000)), refresh());
    await b.createOrRefresh('PJSIP/1002', '2001', 10, create(rec('q2', 'PJSIP/1002', '2001', 2000)), refresh());
    expect((await a.prospectQueue('2001')).map((q) => [q.id, q.agent, q.createdAt])).toEqual([
      ['q1', 'PJSIP/1001', 1000],
      ['q2', 'PJSIP/1002', 2000],
    ]);
    const q1 = (await a.get('q1'))!;
    const q2 = (await b.get('q2'))!;
    expect(await a.transition({ ...q1.request, state: 'RINGING_AGENT' }, q1.version, [])).toBe(2);
    // A second recall for the same number is refused like a lost claim (the partial unique index).
    expect(await b.transition({ ...q2.request, state: 'RINGING_AGENT' }, q2.version, [])).toBeUndefined();
    expect(b.recallConflicts).toBe(1);
    const ringing = (await a.get('q1'))!;
    expect(await a.transition({ ...ringing.request, state: 'COMPLETED', updatedAt: 5000 }, ringing.version, [])).toBe(3);
    expect(await b.lastConversation('2001', 'PJSIP/1002')).toEqual({ connectedAt: 5000, endedAt: null, samePbx: false });
    expect(await a.lastConversation('2001', 'PJSIP/1002')).toEqual({ connectedAt: 5000, endedAt: null, samePbx: true });
    await a.appendEvents([{ requestId: 'q1', at: 9000, type: 'conversation-ended' }]);
    expect(await b.lastConversation('2001', 'PJSIP/1002')).toEqual({ connectedAt: 5000, endedAt: 9000, samePbx: false });
    expect(await b.lastConversation('2001', 'PJSIP/1001')).toBeNull();
  });
});
