/**
 * Faults cost the agent nothing (issue 25): two service instances on one PostgreSQL and the real sandbox PBX.
 *
 *  - kill -9 of the lease holder while the agent listens to the recall menu: the stand-by takes the lease, hangs the
 *    orphaned call up, records `recall-interrupted` at once (no snooze, no attempt) and rings the agent again after
 *    policy.recoveryDelay; the agent connects. The dead air the agent hears (kill → the call hung up) is printed.
 *  - PostgreSQL stopped for longer than the lease TTL while both run: the holder loses its lease and stands by in the
 *    process (lease.unreachable and lease.lost once each, /readyz 503 with standby true, still running — no exit);
 *    when the database is back exactly one instance takes the lease (epoch 2), the other stays stand-by, and the
 *    waiting callback rings once, the prospect is dialled once and the request completes once.
 *  - ARI cut (a relay in front of Asterisk's HTTP port) at start-up and for ARI_DOWN_S while running, with a callback
 *    falling due meanwhile: one line when it goes (ari.unavailable at start, ari.disconnected while running), none
 *    per attempt, /readyz 503 meanwhile, one ari.connected when it is back; the callback then rings once.
 *  - PostgreSQL down at start-up for a minute (CC_FAULTS_STARTUP_DOWN_S, default 60): the instance waits (one
 *    store.unavailable line, /readyz 503, still running), then starts by itself when the database is back.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { freshDatabase, PG_SCRIPT, pgEnv, type TestDatabase } from '../../testkit/pg';
import { PgStore } from '../../src/store/postgres';
import type { CallbackRequest } from '../../src/core/policy';
import { ARI, FAST_RECALL, optIn, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep, type AriEvent } from './harness';

const STARTUP_DOWN_S = Number(process.env.CC_FAULTS_STARTUP_DOWN_S ?? 60);
/** How long ARI is cut while the service runs (default 50 s: past ari-client's own ~43 s of reconnections). */
const ARI_DOWN_S = Number(process.env.CC_FAULTS_ARI_DOWN_S ?? 50);

/**
 * A TCP relay in front of the sandbox's ARI (HTTP and WebSocket): `cut()` drops every connection and refuses new
 * ones — to the service, Asterisk is gone — and `restore()` lets them through again. Asterisk itself runs on.
 */
class AriGate {
  private blocked = false;
  private readonly pairs = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    if (this.blocked) {
      socket.destroy();
      return;
    }
    const target = new URL(ARI.url);
    const up = net.connect(Number(target.port), target.hostname);
    this.pairs.add(socket).add(up);
    const drop = () => {
      socket.destroy();
      up.destroy();
      this.pairs.delete(socket);
      this.pairs.delete(up);
    };
    socket.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
    socket.pipe(up).pipe(socket);
  });
  url = '';
  async open(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this;
  }
  cut(): void {
    this.blocked = true;
    for (const s of [...this.pairs]) s.destroy();
  }
  restore(): void {
    this.blocked = false;
  }
  close(): void {
    this.cut();
    this.server.close();
  }
}

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

  it('PostgreSQL stopped for longer than the lease TTL: the holder stands by in the process (no exit), and afterwards one instance serves: the prospect dialled once, the request completed once', async () => {
    const [active, standby] = await pair();
    simLine('INUSE');
    const id = await optIn(ari, active, '2995');
    const mark = ari.events.length;
    const activeMark = active.logs.length;
    const standbyMark = standby.logs.length;
    pg('down');
    const downAt = Date.now();
    const unreachable = await active.waitLog((l) => l.event === 'lease.unreachable', 20000, activeMark);
    expect(unreachable.active).toBe(true);
    const lost = await active.waitLog((l) => l.event === 'lease.lost', 20000, activeMark);
    expect(lost.reason).toMatch(/not renewed within its TTL/);
    await active.waitLog((l) => l.event === 'ari.disconnected', 10000, activeMark);
    // Stand-by in the process: running, not ready, standby true — not an exit.
    const down = await readyz(active);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ ready: false, standby: true });
    expect(standby.running).toBe(true);
    while (Date.now() - downAt < 10000) {
      await sleep(500); // well past the 3 s TTL
      expect(active.running).toBe(true);
    }
    // One line per change, not per attempt, on both.
    expect(active.find((l) => l.event === 'lease.unreachable')).toHaveLength(1);
    expect(active.find((l) => l.event === 'lease.lost')).toHaveLength(1);
    expect(standby.find((l) => l.event === 'lease.unreachable', standbyMark)).toHaveLength(1);
    expect(standby.find((l) => l.event === 'lease.taken')).toHaveLength(0);
    expect(phone.rings(mark)).toHaveLength(0);

    pg('up');
    await active.waitLog((l) => l.event === 'lease.reachable', 30000, activeMark);
    await standby.waitLog((l) => l.event === 'lease.reachable', 30000, standbyMark);
    // Exactly one of the two takes the lease (epoch 2); the other stays stand-by.
    const serving = await Promise.race([
      standby.waitLog((l) => l.event === 'lease.taken', 30000).then(() => standby),
      active.waitLog((l) => l.event === 'lease.taken', 30000, activeMark).then(() => active),
    ]);
    const other = serving === active ? standby : active;
    const taken = serving.find((l) => l.event === 'lease.taken').at(-1)!;
    expect(taken.epoch).toBe(2);
    await serving.waitLog((l) => l.event === 'ari.connected', 30000, serving === active ? activeMark : 0);

    // The callback that waited rings now, once; the agent takes it and the prospect is dialled once.
    simLine('NOT_INUSE');
    const ring = await phone.nextRing(mark, 30000);
    await phone.answer(ring);
    await serving.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-answered', 10000);
    await sleep(500);
    await ari.press(TestPhone.id(ring), '1');
    await serving.waitLog((l) => l.requestId === id && l.event === 'request.finished', 30000);
    await ari.hangup(TestPhone.id(ring));
    await sleep(2000);
    expect(phone.rings(mark)).toHaveLength(1);
    const both = (event: string) => [...active.find((l) => l.event === event), ...standby.find((l) => l.event === event)].map((l) => l.requestId);
    expect(both('recall.ringing_agent')).toEqual([id]);
    expect(both('recall.dialling_prospect')).toEqual([id]);
    expect(both('request.finished')).toEqual([id]);
    const store = await PgStore.open<CallbackRequest>(db.url, { allPbx: true });
    try {
      expect((await store.get(id))!.request).toMatchObject({ state: 'COMPLETED', attempts: 1, rings: 1, snoozes: 0 });
      expect((await store.events(id)).filter((e) => e.to === 'COMPLETED' && e.from !== 'COMPLETED')).toHaveLength(1);
    } finally {
      await store.close();
    }
    // The old holder is still running: it serves again, or it stands by (ready false, standby true).
    expect(active.running).toBe(true);
    expect(active.exitCode).toBeNull();
    expect((await readyz(serving)).status).toBe(200);
    const otherReady = await readyz(other);
    expect(otherReady).toMatchObject({ status: 503, body: { ready: false, standby: true } });
    expect(other.find((l) => l.event === 'ari.connected', other === active ? activeMark : 0)).toHaveLength(0);
    process.stderr.write(`[faults] PostgreSQL down past the TTL: the lease went to ${serving === active ? 'the old holder again' : 'the other instance'}; the other stands by\n`);
  }, 180000);

  it(`ARI cut at start-up and for ${ARI_DOWN_S} s while running: one line per change, readiness false meanwhile, the callback due meanwhile rings once afterwards`, async () => {
    const gate = await new AriGate().open();
    try {
      gate.cut();
      const svc = new ServiceProcess(config({ ari: { url: gate.url, leaseTtl: '3s', reconnectMax: '1s' }, policy: { ...FAST_RECALL.policy, grace: '6s', recoveryDelay: '2s' } }));
      services.push(svc);
      await svc.start(false);
      // At start-up: one ari.unavailable (not one per attempt), not ready, still running.
      const unavailable = await svc.waitLog((l) => l.event === 'ari.unavailable', 20000);
      expect(unavailable).toMatchObject({ auth: false, reminder: false, level: 'warn' });
      await svc.waitLog((l) => l.event === 'http.listening', 10000);
      await sleep(5000);
      expect(svc.running).toBe(true);
      expect(svc.find((l) => l.event === 'ari.unavailable')).toHaveLength(1);
      expect(svc.find((l) => l.event === 'ari.connect_failed' || l.event === 'ari.timeout').length).toBeGreaterThan(0);
      expect(svc.find((l) => (l.event === 'ari.connect_failed' || l.event === 'ari.timeout') && l.level !== 'debug')).toEqual([]);
      const startDown = await readyz(svc);
      expect(startDown).toMatchObject({ status: 503, body: { ready: false, checks: { ari: { ok: false } } } });
      gate.restore();
      const up = await svc.waitLog((l) => l.event === 'ari.connected', 20000);
      expect(up.outageMs).toBeGreaterThanOrEqual(5000);
      expect(Number(up.attempts)).toBeGreaterThanOrEqual(1);
      for (let i = 0; i < 50 && (await readyz(svc)).status !== 200; i++) await sleep(200);
      expect((await readyz(svc)).status).toBe(200);

      // While running: a callback in its grace, then ARI goes away for ARI_DOWN_S; the grace ends meanwhile.
      simLine('INUSE');
      const id = await optIn(ari, svc, '2995');
      const mark = ari.events.length;
      const svcMark = svc.logs.length;
      simLine('NOT_INUSE');
      await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 10000, svcMark);
      gate.cut();
      const cutAt = Date.now();
      await svc.waitLog((l) => l.event === 'ari.disconnected', 20000, svcMark);
      const down = await readyz(svc);
      expect(down).toMatchObject({ status: 503, body: { ready: false, checks: { ari: { ok: false } } } });
      while (Date.now() - cutAt < ARI_DOWN_S * 1000) {
        await sleep(1000);
        expect(svc.running).toBe(true);
      }
      expect((await readyz(svc)).status).toBe(503);
      expect(phone.rings(mark)).toHaveLength(0);
      // The grace has ended: the callback is due, held back while the PBX is away (the agent cannot be seen).
      const store = await PgStore.open<CallbackRequest>(db.url, { allPbx: true });
      try {
        expect(['DUE', 'WAITING']).toContain((await store.get(id))!.request.state);
      } finally {
        await store.close();
      }
      // One line for the outage (the socket went away), none per attempt, no second "unavailable".
      const outageWarnings = svc.logs.slice(svcMark).filter((l) => String(l.event ?? '').startsWith('ari.') && l.level !== 'debug');
      expect(outageWarnings.map((l) => l.event)).toEqual(['ari.disconnected']);

      gate.restore();
      const back = await svc.waitLog((l) => l.event === 'ari.connected', 30000, svcMark);
      expect(back.outageMs).toBeGreaterThanOrEqual(ARI_DOWN_S * 1000 - 1000);
      expect(svc.find((l) => l.event === 'ari.connected', svcMark)).toHaveLength(1);
      for (let i = 0; i < 50 && (await readyz(svc)).status !== 200; i++) await sleep(200);
      expect((await readyz(svc)).status).toBe(200);
      // The callback that fell due meanwhile rings now, once; the agent takes it.
      const ring = await phone.nextRing(mark, 30000);
      expect(TestPhone.caller(ring).name).toBe('Callback: 2995');
      await phone.answer(ring);
      await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-answered', 10000);
      await sleep(500);
      await ari.press(TestPhone.id(ring), '1');
      await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 30000);
      await ari.hangup(TestPhone.id(ring));
      await sleep(1500);
      expect(phone.rings(mark)).toHaveLength(1);
      expect(svc.find((l) => l.event === 'recall.ringing_agent').map((l) => l.requestId)).toEqual([id]);
      expect(svc.find((l) => l.event === 'recall.dialling_prospect').map((l) => l.requestId)).toEqual([id]);
      process.stderr.write(`[faults] ARI cut for ${ARI_DOWN_S} s: back after ${String(back.outageMs)} ms, ${String(back.attempts)} failed attempts (debug lines), 1 warning\n`);
    } finally {
      gate.close();
    }
  }, 120000 + ARI_DOWN_S * 1000);

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
