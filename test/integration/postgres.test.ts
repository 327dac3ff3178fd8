/**
 * Two service instances against one PostgreSQL and the real sandbox PBX: the database's lease
 * decides which instance serves the PBX, and its fencing epoch keeps a resumed instance from acting.
 *
 *  - kill -9 of the active instance during a grace: the stand-by takes over and the agent is rung once;
 *  - SIGSTOP of the active past the lease TTL: the stand-by takes over and rings; SIGCONT: the resumed one
 *    rings nobody, logs lease.lost and stays running as a stand-by (readiness 503, standby true; no exit).
 *
 * PostgreSQL is the test cluster of testkit/pg.ts (started, and installed, when missing).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { freshDatabase, TestDatabase } from '../../testkit/pg';
import { ROOT, sandboxFrom } from '../../testkit/sandbox';
import { FAST_RECALL, optIn, ServiceProcess, TestAri, TestPhone, describePbx, secondSandboxEnv, simLine, sleep } from './harness';

describePbx('two instances on PostgreSQL (real Asterisk)', () => {
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
    db = await freshDatabase('it');
  });
  afterEach(async () => {
    for (const s of services.splice(0)) {
      if (s.pid && s.running) process.kill(s.pid, 'SIGCONT');
      await s.stop();
    }
    simLine('NOT_INUSE');
    await db.drop();
  });

  const config = (grace: string) => ({
    ...FAST_RECALL,
    policy: { ...FAST_RECALL.policy, grace },
    ari: { leaseTtl: '3s' },
    store: { url: db.url },
    pbx: { id: 'sandbox' },
  });

  /** The active instance (holds the lease, connected to ARI) and a stand-by on the same database. */
  async function pair(grace: string): Promise<[ServiceProcess, ServiceProcess]> {
    const active = new ServiceProcess(config(grace));
    services.push(active);
    await active.start();
    await active.waitLog((l) => l.event === 'lease.taken', 5000);
    const standby = new ServiceProcess(config(grace));
    services.push(standby);
    await standby.start(false);
    await standby.waitLog((l) => l.event === 'service.starting', 10000);
    await sleep(1500); // a few lease attempts of the stand-by
    expect(standby.find((l) => l.event === 'lease.taken' || l.event === 'ari.connected')).toHaveLength(0);
    return [active, standby];
  }

  it('kill -9 of the active during a grace: the stand-by takes over and the agent is rung exactly once', async () => {
    const [active, standby] = await pair('6s');
    simLine('INUSE');
    const id = await optIn(ari, active, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    await active.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 5000);
    await active.stop('SIGKILL');
    const took = await standby.waitLog((l) => l.event === 'lease.taken', 10000);
    expect(took.epoch).toBe(2);
    await standby.waitLog((l) => l.event === 'ari.connected', 15000);
    const ring = await phone.nextRing(mark, 25000);
    expect(TestPhone.caller(ring).name).toBe('Callback: 2995');
    await sleep(2000);
    expect(phone.rings(mark)).toHaveLength(1);
    await ari.hangup(TestPhone.id(ring));
    // The stand-by saw the request the first instance stored: one request, rung by the second.
    expect(standby.find((l) => l.requestId === id && l.event === 'recall.ringing_agent')).toHaveLength(1);
  }, 120000);

  it('SIGSTOP of the active past the TTL: the stand-by takes over and rings; resumed, the first rings nobody and steps down', async () => {
    const [active, standby] = await pair('8s');
    simLine('INUSE');
    const id = await optIn(ari, active, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    await active.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 5000);
    process.kill(active.pid!, 'SIGSTOP');
    await standby.waitLog((l) => l.event === 'lease.taken', 10000);
    await standby.waitLog((l) => l.event === 'ari.connected', 15000);
    const ring = await phone.nextRing(mark, 25000);
    await ari.hangup(TestPhone.id(ring));
    const activeMark = active.logs.length;
    process.kill(active.pid!, 'SIGCONT');
    await active.waitLog((l) => l.event === 'lease.lost', 15000, activeMark);
    // It stands by in the process: running, not ready, standby true, and the lease stays the other's.
    await sleep(2000);
    expect(active.running).toBe(true);
    const port = active.find((l) => l.event === 'http.listening')[0]?.port;
    const res = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, standby: true });
    expect(active.find((l) => l.event === 'lease.taken', activeMark)).toHaveLength(0);
    expect(phone.rings(mark)).toHaveLength(1);
    expect(active.find((l) => l.event === 'recall.ringing_agent')).toHaveLength(0);
    expect(standby.find((l) => l.requestId === id && l.event === 'recall.ringing_agent')).toHaveLength(1);
  }, 120000);
});

/**
 * Two PBXs (this process's sandbox and a second one on other ports: SIP +30, ARI +2, RTP after this one's
 * range + 1000; CC_SANDBOX2_DIR, CC_PBX2_RTP_START/END override) sharing one
 * PostgreSQL: one instance per PBX (pbx.id "one" and "two"), a callback on each, both fire once, and the
 * command line sees both.
 */
describePbx('two PBXs sharing one PostgreSQL (two sandboxes)', () => {
  const env2 = secondSandboxEnv();
  const second = sandboxFrom(env2);
  let db: TestDatabase;
  const services: ServiceProcess[] = [];
  const aris: TestAri[] = [];

  beforeAll(() => {
    const up = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'up'], { env: env2, encoding: 'utf8' });
    if (up.status !== 0) throw new Error(`second sandbox did not start: ${up.stdout}${up.stderr}`);
  }, 300000);
  afterAll(() => {
    spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'down'], { env: env2, encoding: 'utf8' });
  });
  beforeEach(async () => {
    db = await freshDatabase('pbxs');
  });
  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    for (const a of aris.splice(0)) await a.close();
    simLine('NOT_INUSE');
    simLine('NOT_INUSE', 'Custom:prospect2995', env2);
    await db.drop();
  });

  it('a callback on each PBX: each fires once, from the instance serving that PBX; the CLI sees both', async () => {
    const base = { ...FAST_RECALL, store: { url: db.url }, ari: { leaseTtl: '3s' } };
    const one = new ServiceProcess({ ...base, pbx: { id: 'one' } });
    const two = new ServiceProcess({ ...base, pbx: { id: 'two' }, ari: { ...second.ari, leaseTtl: '3s' } });
    services.push(one, two);
    await Promise.all([one.start(), two.start()]);
    const [ari1, ari2] = [await TestAri.connect(), await TestAri.connect(second.ari)];
    aris.push(ari1, ari2);
    const [phone1, phone2] = [await TestPhone.attach(ari1), await TestPhone.attach(ari2)];
    simLine('INUSE');
    simLine('INUSE', 'Custom:prospect2995', env2);
    const id1 = await optIn(ari1, one, '2995');
    const id2 = await optIn(ari2, two, '2995');
    const [m1, m2] = [ari1.events.length, ari2.events.length];
    simLine('NOT_INUSE');
    simLine('NOT_INUSE', 'Custom:prospect2995', env2);
    const [r1, r2] = await Promise.all([phone1.nextRing(m1, 25000), phone2.nextRing(m2, 25000)]);
    await sleep(2000);
    expect(phone1.rings(m1)).toHaveLength(1);
    expect(phone2.rings(m2)).toHaveLength(1);
    await ari1.hangup(TestPhone.id(r1));
    await ari2.hangup(TestPhone.id(r2));
    expect(one.find((l) => l.event === 'recall.ringing_agent').map((l) => l.requestId)).toEqual([id1]);
    expect(two.find((l) => l.event === 'recall.ringing_agent').map((l) => l.requestId)).toEqual([id2]);
    // The command line (store.url in the config) lists the requests of both PBXs.
    expect(one.list().map((r) => r.id).sort()).toEqual([id1, id2].sort());
  }, 300000);
});
