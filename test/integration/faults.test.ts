/**
 * Faults cost the agent nothing (issue 25): two service instances on one PostgreSQL and the real sandbox PBX.
 *
 *  - kill -9 of the lease holder while the agent listens to the recall menu: the stand-by takes the lease, hangs the
 *    orphaned call up, records `recall-interrupted` at once (no snooze, no attempt) and rings the agent again after
 *    policy.recoveryDelay; the agent connects. The dead air the agent hears (kill → the call hung up) is printed.
 *  - PostgreSQL stopped for longer than the lease TTL while both run: the holder loses its lease and exits 75, its
 *    "supervisor" (this test) starts it again and it waits for the database (store.unavailable, /readyz 503) instead
 *    of exiting; when the database is back one instance serves and the waiting callback rings exactly once.
 *  - PostgreSQL down at start-up for a minute (CC_FAULTS_STARTUP_DOWN_S, default 60): the instance waits (one
 *    store.unavailable line, /readyz 503, still running), then starts by itself when the database is back.
 */
import { spawnSync } from 'node:child_process';
import { freshDatabase, PG_SCRIPT, pgEnv, type TestDatabase } from '../../testkit/pg';
import { PgStore } from '../../src/store/postgres';
import type { CallbackRequest } from '../../src/core/policy';
import { FAST_RECALL, optIn, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep, type AriEvent } from './harness';

const STARTUP_DOWN_S = Number(process.env.CC_FAULTS_STARTUP_DOWN_S ?? 60);

function pg(command: 'up' | 'down'): void {
  // The test run's own cluster (its directory and port, as testkit/pg starts it), not pg.sh's default one.
  const r = spawnSync('bash', [PG_SCRIPT, command], { env: pgEnv(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/pg.sh ${command} failed (${r.status}): ${r.stdout}${r.stderr}`);
}

async function readyz(svc: ServiceProcess): Promise<{ status: number; body: Record<string, unknown> }> {
  const port = svc.find((l) => l.event === 'http.listening')[0]?.port;
  if (!port) throw new Error('the service did not log http.listening');
  const res = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describePbx('faults cost the agent nothing: two instances on PostgreSQL (real Asterisk)', () => {
  let db: TestDatabase;
  let ari: TestAri;
  let phone: TestPhone;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    ari = await TestAri.connect();
    phone = await TestPhone.attach(ari);
  });
  afterAll(async () => {
    await ari?.close();
  });
  beforeEach(async () => {
    db = await freshDatabase('faults');
  });
  afterEach(async () => {
    // The services first: a failure to bring PostgreSQL back must not leave a service process holding jest open.
    for (const s of services.splice(0)) await s.stop();
    pg('up'); // whatever a test did to it
    simLine('NOT_INUSE');
    await db.drop();
  });

  const config = (extra: Record<string, unknown> = {}) => ({
    ...FAST_RECALL,
    policy: { ...FAST_RECALL.policy, grace: '3s', recoveryDelay: '2s', menuTimeout: '8s' },
    ari: { leaseTtl: '3s' },
    store: { url: db.url, retryMax: '1s' },
    pbx: { id: 'sandbox' },
    ...extra,
  });

  async function pair(): Promise<[ServiceProcess, ServiceProcess]> {
    const active = new ServiceProcess(config());
    services.push(active);
    await active.start();
    await active.waitLog((l) => l.event === 'lease.taken', 5000);
    const standby = new ServiceProcess(config());
    services.push(standby);
    await standby.start(false);
    await standby.waitLog((l) => l.event === 'service.starting', 30000); // a busy machine starts node slowly
    await sleep(1500);
    expect(standby.find((l) => l.event === 'lease.taken')).toHaveLength(0);
    return [active, standby];
  }

  const channelEnd = (id: string) => ari.events.find((e) => (e.type === 'StasisEnd' || e.type === 'ChannelDestroyed') && (e.channel as { id: string }).id === id);

  it('kill -9 of the holder during the recall menu: recall-interrupted at once, no snooze, rung again after the recovery delay, connected', async () => {
    const [active, standby] = await pair();
    simLine('INUSE');
    const id = await optIn(ari, active, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    const first = await phone.nextRing(mark, 25000);
    await phone.answer(first);
    await active.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-answered', 10000);
    await sleep(800); // the menu is playing
    const killedAt = Date.now();
    await active.stop('SIGKILL');

    const took = await standby.waitLog((l) => l.event === 'lease.taken', 15000);
    expect(took.epoch).toBe(2);
    const interrupted = await standby.waitLog((l) => l.event === 'recall.interrupted' && l.requestId === id, 20000);
    expect(interrupted.how).toBe('orphaned');
    const transition = await standby.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'recall-interrupted', 5000);
    expect(transition).toMatchObject({ from: 'RINGING_AGENT', to: 'WAITING' });
    // The dead instance's call was hung up by the new holder: how long the agent heard its leftovers and silence.
    const firstId = TestPhone.id(first);
    for (let i = 0; i < 100 && !channelEnd(firstId); i++) await sleep(100);
    const ended = channelEnd(firstId);
    expect(ended).toBeDefined();
    const deadAirMs = Date.parse(String(ended!.timestamp)) - killedAt;

    // Rung again after the recovery delay (not after a snooze), on the next channel; this time the agent takes it.
    const againMark = ari.events.indexOf(first) + 1;
    const second = await waitForRing(againMark, firstId);
    const rerungAfterMs = Date.parse(String(second.timestamp)) - killedAt;
    expect(TestPhone.caller(second).name).toBe('Callback: 2995');
    await phone.answer(second);
    await standby.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-answered', 10000);
    await sleep(500);
    await ari.press(TestPhone.id(second), '1');
    await standby.waitLog((l) => l.requestId === id && l.event === 'request.finished', 30000);
    await ari.hangup(TestPhone.id(second));

    const store = await PgStore.open<CallbackRequest>(db.url, { allPbx: true });
    try {
      const r = (await store.get(id))!.request;
      expect(r).toMatchObject({ state: 'COMPLETED', snoozes: 0, attempts: 1, rings: 2 });
      const history = (await store.events(id)).map((e) => e.type);
      expect(history).toContain('recall-interrupted');
      expect(history.filter((t) => ['agent-snoozed', 'agent-hung-up', 'agent-no-answer', 'menu-timeout', 'recall-timeout'].includes(t))).toEqual([]);
    } finally {
      await store.close();
    }
    expect(phone.rings(mark).map((r) => TestPhone.id(r))).toEqual([firstId, TestPhone.id(second)]);
    process.stderr.write(`[faults] kill -9 in the menu: dead air ${deadAirMs} ms (kill → the orphaned call hung up; lease TTL 3 s), rung again ${rerungAfterMs} ms after the kill (recovery delay 2 s)\n`);
  }, 120000);

  async function waitForRing(after: number, not: string): Promise<AriEvent> {
    for (let i = 0; i < 300; i++) {
      const ring = phone.rings(after).find((r) => TestPhone.id(r) !== not);
      if (ring) return ring;
      await sleep(100);
    }
    throw new Error('the agent was not rung again');
  }

  it('PostgreSQL stopped for longer than the lease TTL: the holder steps down (75) and, started again, waits; afterwards one instance rings once', async () => {
    const [active, standby] = await pair();
    simLine('INUSE');
    const id = await optIn(ari, active, '2995');
    const mark = ari.events.length;
    pg('down');
    const downAt = Date.now();
    const activeMark = active.logs.length;
    await active.waitLog((l) => l.event === 'lease.lost', 20000, activeMark);
    for (let i = 0; i < 100 && active.running; i++) await sleep(100);
    expect(active.exitCode).toBe(75);
    // The supervisor (systemd: Restart=always, no start limit) starts it again: it waits for the database, no exit.
    const restarted = new ServiceProcess(config(), active.dir);
    services.push(restarted);
    await restarted.start(false);
    const unavailable = await restarted.waitLog((l) => l.event === 'store.unavailable', 20000);
    expect(unavailable.error).toBeTruthy();
    await restarted.waitLog((l) => l.event === 'http.listening', 10000);
    const notReady = await readyz(restarted);
    expect(notReady.status).toBe(503);
    expect(notReady.body).toMatchObject({ ready: false, checks: { store: { ok: false } } });
    // The stand-by rides it out too: running, not serving.
    expect(standby.running).toBe(true);
    while (Date.now() - downAt < 8000) await sleep(250); // well past the 3 s TTL
    expect(restarted.running).toBe(true);
    expect(restarted.find((l) => l.event === 'store.unavailable')).toHaveLength(1);
    expect(standby.find((l) => l.event === 'lease.taken')).toHaveLength(0);
    expect(phone.rings(mark)).toHaveLength(0);

    pg('up');
    await restarted.waitLog((l) => l.event === 'store.available', 20000);
    const serving = await Promise.race([
      standby.waitLog((l) => l.event === 'ari.connected', 30000).then(() => standby),
      restarted.waitLog((l) => l.event === 'ari.connected', 30000).then(() => restarted),
    ]);
    simLine('NOT_INUSE');
    const ring = await phone.nextRing(mark, 30000);
    await sleep(2000);
    expect(phone.rings(mark)).toHaveLength(1);
    await ari.hangup(TestPhone.id(ring));
    expect([...standby.find((l) => l.event === 'recall.ringing_agent'), ...restarted.find((l) => l.event === 'recall.ringing_agent')].map((l) => l.requestId)).toEqual([id]);
    const ready = await readyz(serving);
    expect(ready.status).toBe(200);
  }, 180000);

  it(`PostgreSQL down at start-up for ${STARTUP_DOWN_S} s: the instance waits (readiness false, one line), then starts by itself`, async () => {
    pg('down');
    const svc = new ServiceProcess(config());
    services.push(svc);
    await svc.start(false);
    await svc.waitLog((l) => l.event === 'store.unavailable', 20000);
    await svc.waitLog((l) => l.event === 'http.listening', 10000);
    expect((await readyz(svc)).status).toBe(503);
    const began = Date.now();
    while (Date.now() - began < STARTUP_DOWN_S * 1000) {
      await sleep(1000);
      expect(svc.running).toBe(true);
    }
    expect(svc.find((l) => l.event === 'store.unavailable')).toHaveLength(1);
    expect(svc.find((l) => l.event === 'lease.taken' || l.event === 'ari.connected')).toHaveLength(0);
    expect((await readyz(svc)).status).toBe(503);

    pg('up');
    const available = await svc.waitLog((l) => l.event === 'store.available', 20000);
    expect(available.waitedMs).toBeGreaterThanOrEqual(STARTUP_DOWN_S * 1000);
    await svc.waitLog((l) => l.event === 'lease.taken', 10000);
    await svc.waitLog((l) => l.event === 'ari.connected', 15000);
    for (let i = 0; i < 50 && (await readyz(svc)).status !== 200; i++) await sleep(200);
    expect((await readyz(svc)).status).toBe(200);
    // And it works: a callback opted in now rings the agent.
    simLine('INUSE');
    const mark = ari.events.length;
    const id = await optIn(ari, svc, '2995');
    simLine('NOT_INUSE');
    const ring = await phone.nextRing(mark, 25000);
    await ari.hangup(TestPhone.id(ring));
    expect(svc.find((l) => l.event === 'recall.ringing_agent').map((l) => l.requestId)).toEqual([id]);
  }, 60000 + STARTUP_DOWN_S * 1000 * 2);
});
