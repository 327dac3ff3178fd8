/**
 * Reliability against the real sandbox: the PBX restarting under the service, a second instance
 * against the same PBX, and an ARI password full of special characters.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { FAST_RECALL, optIn, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep } from './harness';
import { ROOT } from './paths';

function pbx(cmd: string): void {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pbx.sh ${cmd} failed: ${r.stdout}${r.stderr}`);
}

describePbx('reliability (real Asterisk)', () => {
  const services: ServiceProcess[] = [];
  const start = async (config: Record<string, unknown> = FAST_RECALL, dir?: string) => {
    const s = await new ServiceProcess(config, dir).start();
    services.push(s);
    return s;
  };

  afterEach(async () => {
    for (const s of services.splice(0)) await s.stop();
    simLine('NOT_INUSE');
  });

  it('Asterisk restarts while a request waits: the service reconnects, re-subscribes the line and still calls back', async () => {
    const svc = await start();
    let ari = await TestAri.connect();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    await ari.close();

    const mark = svc.logs.length;
    pbx('restart');
    await svc.waitLog((l) => l.event === 'ari.disconnected', 20000, mark);
    await svc.waitLog((l) => l.event === 'ari.connected', 60000, mark);
    // While it was away nothing was lost: the request is still waiting for the line.
    expect(svc.list().find((r) => r.id === id)).toMatchObject({ state: 'WAITING', waitingFor: 'prospect-busy' });

    ari = await TestAri.connect();
    const phone = await TestPhone.attach(ari);
    try {
      await sleep(500); // the re-subscription of Custom:prospect2995 after the reconnection
      const ringsBefore = ari.events.length;
      simLine('NOT_INUSE');
      await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 10000, mark);
      const ring = await phone.nextRing(ringsBefore, 20000);
      expect(TestPhone.caller(ring).name).toBe('Callback: 2995');
      await ari.hangup(TestPhone.id(ring));
    } finally {
      await ari.close();
    }
  }, 120000);

  it('Asterisk restarts during a recall: the lost call is noticed as an interruption (not a snooze) and the request tries again', async () => {
    const svc = await start({ ...FAST_RECALL, policy: { ...FAST_RECALL.policy, snooze: '2s', recallSafetyMargin: '5s' } });
    let ari = await TestAri.connect();
    let phone = await TestPhone.attach(ari);
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    const ring = await phone.nextRing(mark, 20000);
    await phone.answer(ring); // the agent listens to the menu …
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    ari.disconnect(); // the agent does not hang up: the PBX goes away under the call
    const logMark = svc.logs.length;
    pbx('restart'); // … and the PBX goes away under the call
    await svc.waitLog((l) => l.event === 'ari.connected', 60000, logMark);
    const ended = ['recall-interrupted', 'recall-timeout', 'agent-hung-up', 'agent-no-answer'];
    const after = await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && ended.includes(String(l.transition)), 30000, logMark);
    // The PBX went away under the call: the service's failure to keep it, not the agent's choice (issue 25).
    const story = svc.find((l) => l.requestId === id && (l.event === 'request.transition' || String(l.event).startsWith('recall.'))).map((l) => `${String(l.event)} ${String(l.transition ?? '')} ${String(l.reason ?? '')} ${String(l.cause ?? '')}`);
    expect({ after: { transition: after.transition, to: after.to }, story }).toEqual({ after: { transition: 'recall-interrupted', to: 'WAITING' }, story });
    // (Later rings of this test may go unanswered while its phone reconnects: those are snoozes, rightly.)
    ari = await TestAri.connect();
    phone = await TestPhone.attach(ari);
    try {
      const again = await phone.nextRing(0, 30000);
      // A new ring on a new channel id (ring 2 may have gone unanswered while this test reconnected).
      expect(TestPhone.id(again)).toMatch(new RegExp(`^ccb-${id}-([2-9]|\\d{2,});2$`));
      await ari.hangup(TestPhone.id(again));
    } finally {
      await ari.close();
    }
  }, 150000);

  it('a second instance against the same PBX stands by, and takes over when the first one dies', async () => {
    const first = await start({ ...FAST_RECALL, ari: { leaseTtl: '4s' } });
    const second = new ServiceProcess({ ...FAST_RECALL, ari: { leaseTtl: '4s' } });
    services.push(second);
    await second.start(false);
    await second.waitLog((l) => l.event === 'ari.standby', 15000);
    expect(second.find((l) => l.event === 'ari.connected')).toHaveLength(0);

    const ari = await TestAri.connect();
    try {
      simLine('INUSE');
      const id = await optIn(ari, first, '2995');
      expect(second.find((l) => l.event === 'offer.started')).toHaveLength(0);
      expect(first.list().map((r) => r.id)).toEqual([id]);

      await first.stop('SIGKILL');
      await second.waitLog((l) => l.event === 'ari.takeover', 20000);
      await second.waitLog((l) => l.event === 'ari.connected', 10000);
      const id2 = await optIn(ari, second, '2995', 'Local/1002@cc-test-phone');
      expect(second.list().map((r) => r.id)).toEqual([id2]);
    } finally {
      await ari.close();
    }
  }, 90000);

  it('an ARI password with @ : / + % works end to end', async () => {
    const svc = await start({ ari: { username: 'special', password: 'p@ss:w/rd+%' } });
    const ari = await TestAri.connect();
    try {
      const id = await optIn(ari, svc, '2991');
      expect(svc.list().map((r) => r.id)).toEqual([id]);
      const raw = svc.logs.map((l) => JSON.stringify(l)).join('\n');
      expect(raw).not.toContain('p@ss:w/rd+%');
      expect(raw).not.toContain(encodeURIComponent('p@ss:w/rd+%'));
    } finally {
      await ari.close();
    }
  });
});
