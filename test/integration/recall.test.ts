/**
 * The considerate recall on the real Asterisk sandbox: line-free detection and grace, the agent first
 * with a clear label, the menu (1 connect · 2 snooze · 3 cancel), back-off, agent availability,
 * calling hours and restarts. The agent's handset is a Local channel into the test's own ARI app; the
 * prospect is the simulated line 2995 (Custom:prospect2995) or the simulator numbers 2991/2992.
 */
import { FAST_RECALL, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep } from './harness';

const AGENT = 'Local/1001@cc-test-phone';

async function optIn(ari: TestAri, svc: ServiceProcess, number: string, agent = AGENT): Promise<string> {
  const mark = svc.logs.length;
  const leg = await ari.agentDials(number, { agent });
  await ari.answered(leg);
  await svc.waitLog((l) => l.message === 'busy: offering a callback', 15000, mark);
  await ari.press(leg, '#');
  const line = await svc.waitLog((l) => l.message === 'callback requested' || l.message === 'callback request refreshed', 10000, mark);
  await ari.gone(leg);
  return String(line.requestId);
}

function request(svc: ServiceProcess, id: string): Record<string, unknown> {
  const r = svc.list().find((x) => x.id === id);
  if (!r) throw new Error(`request ${id} not found`);
  return r;
}

function events(svc: ServiceProcess, id: string): string[] {
  return svc.logs.filter((l) => l.requestId === id && typeof l.message === 'string' && l.message.startsWith('callback ') && l.to !== undefined).map((l) => String(l.message).slice('callback '.length));
}

describePbx('the considerate recall (real Asterisk)', () => {
  let ari: TestAri;
  let phone: TestPhone;
  let svc: ServiceProcess | undefined;

  beforeAll(async () => {
    ari = await TestAri.connect();
    phone = await TestPhone.attach(ari);
  });

  afterEach(async () => {
    await svc?.stop();
    svc = undefined;
    simLine('NOT_INUSE');
  });

  afterAll(async () => {
    await ari?.close();
  });

  it('internal prospect: busy → # → line frees → nothing during grace → agent rung with the label → 1 → bridged → COMPLETED', async () => {
    svc = await new ServiceProcess(FAST_RECALL).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    expect(request(svc, id)).toMatchObject({ state: 'WAITING', mode: 'device', waitingFor: 'prospect-busy' });

    const ringsBefore = ari.events.length;
    await sleep(1500);
    simLine('NOT_INUSE');
    const freedAt = Date.now();
    await svc.waitLog((l) => l.requestId === id && l.message === 'callback prospect-free', 5000);
    expect(request(svc, id)).toMatchObject({ state: 'GRACE', waitingFor: 'grace' });

    const ring = await phone.nextRing(ringsBefore, 20000);
    const rangAfter = Date.now() - freedAt;
    expect(rangAfter).toBeGreaterThanOrEqual(2900); // grace is 3 s
    expect(TestPhone.caller(ring)).toEqual({ name: 'Callback: 2995', number: '9000' });
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.message === 'agent answered the recall', 10000);
    await sleep(1000);
    await ari.press(TestPhone.id(ring), '1');

    await svc.waitLog((l) => l.requestId === id && l.message === 'prospect answered; connecting', 15000);
    const done = await svc.waitLog((l) => l.requestId === id && l.message === 'callback finished', 10000);
    expect(done).toMatchObject({ state: 'COMPLETED', outcome: 'completed' });

    // The prospect saw the agent's own caller ID, and the two are bridged.
    const channels = await ari.client.channels.list();
    const prospectSide = channels.find((c) => c.id === `ccb-${id}-1-p;2`);
    expect(prospectSide?.caller).toEqual({ name: 'Agent 1001', number: '1001' });
    const bridges = await ari.client.bridges.list();
    const bridge = bridges.find((b) => b.id === `ccb-${id}-1-b`);
    expect(([] as string[]).concat(bridge?.channels ?? []).sort()).toEqual([`ccb-${id}-1`, `ccb-${id}-1-p`].sort());

    expect(events(svc, id)).toEqual(['created', 'prospect-free', 'due', 'ring-agent', 'agent-answered', 'agent-accepted', 'prospect-answered']);
    await ari.hangup(TestPhone.id(ring));
  });
});
