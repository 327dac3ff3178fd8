/**
 * The considerate recall on the real Asterisk sandbox: line-free detection and grace, the agent first
 * with a clear label, the menu (1 connect · 2 snooze · 3 cancel), back-off, agent availability,
 * calling hours and restarts. The agent's handset is a Local channel into the test's own ARI app; the
 * prospect is the simulated line 2995 (Custom:prospect2995) or the simulator numbers 2991/2992.
 */
import { FAST_RECALL, optIn, runCli, ServiceProcess, TEST_AGENT, TEST_APP, TestAri, TestPhone, describePbx, simLine, sleep } from './harness';

function request(svc: ServiceProcess, id: string): Record<string, unknown> {
  const r = svc.list().find((x) => x.id === id);
  if (!r) throw new Error(`request ${id} not found`);
  return r;
}

function events(svc: ServiceProcess, id: string): string[] {
  return svc.logs.filter((l) => l.requestId === id && l.event === 'request.transition').map((l) => String(l.transition));
}

describePbx('the considerate recall (real Asterisk)', () => {
  let ari: TestAri;
  let phone: TestPhone;
  let svc: ServiceProcess | undefined;

  beforeAll(async () => {
    ari = await TestAri.connect();
    phone = await TestPhone.attach(ari);
    // A call to the test phone left over from an interrupted run would make the agent look busy.
    await ari.hangupStale('cc-test-phone');
  });

  afterEach(async () => {
    await svc?.stop();
    svc = undefined;
    simLine('NOT_INUSE');
    await ari.hangupStale('cc-test-phone');
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
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 5000);
    expect(request(svc, id)).toMatchObject({ state: 'GRACE', waitingFor: 'grace' });

    const ring = await phone.nextRing(ringsBefore, 20000);
    const rangAfter = Date.now() - freedAt;
    expect(rangAfter).toBeGreaterThanOrEqual(2900); // grace is 3 s
    expect(TestPhone.caller(ring)).toEqual({ name: 'Callback: 2995', number: '9000' });
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(1000);
    await ari.press(TestPhone.id(ring), '1');

    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.prospect_answered', 15000);
    const done = await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 10000);
    expect(done).toMatchObject({ state: 'COMPLETED', outcome: 'completed' });

    // The prospect saw the agent's own caller ID, and the two are bridged.
    const channels = await ari.client.channels.list();
    const prospectSide = channels.find((c) => c.id === `ccb-${id}-1-p;2`);
    expect(prospectSide?.caller).toEqual({ name: 'Agent 1001', number: '1001' });
    const bridges = await ari.client.bridges.list();
    const bridge = bridges.find((b) => b.id === `ccb-${id}-1-b`);
    expect(([] as string[]).concat(bridge?.channels ?? []).sort()).toEqual([`ccb-${id}-1`, `ccb-${id}-1-p`].sort());

    // The heads-up (default 1m, longer than the 3 s grace) starts as soon as the line frees.
    expect(events(svc, id)).toEqual(['created', 'prospect-free', 'heads-up', 'due', 'ring-agent', 'agent-answered', 'agent-accepted', 'prospect-answered']);
    await ari.hangup(TestPhone.id(ring));
  });

  it('prospect busy again during grace → grace restarts: no recall in the first grace window', async () => {
    svc = await new ServiceProcess(FAST_RECALL).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 5000);
    await sleep(1500);
    simLine('INUSE'); // a new call, 1.5 s into the 3 s grace
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-busy', 5000);
    expect(request(svc, id)).toMatchObject({ state: 'WAITING', waitingFor: 'prospect-busy' });
    await sleep(3000); // the first grace window would have ended by now
    expect(phone.rings(mark)).toHaveLength(0);
    simLine('NOT_INUSE');
    const freedAgain = Date.now();
    const ring = await phone.nextRing(mark, 15000);
    expect(Date.now() - freedAgain).toBeGreaterThanOrEqual(2900);
    // Each time the line frees, a heads-up for the new due time (default 1m, longer than the grace) comes first.
    const seen = events(svc, id);
    expect(seen.filter((e) => e !== 'heads-up').slice(0, 5)).toEqual(['created', 'prospect-free', 'prospect-busy', 'prospect-free', 'due']);
    expect(seen.indexOf('heads-up')).toBe(2);
    expect(seen.lastIndexOf('heads-up')).toBeLessThan(seen.indexOf('due'));
    await ari.hangup(TestPhone.id(ring));
  });

  it('agent on another call when due → no ring until the agent is free + wrap-up', async () => {
    svc = await new ServiceProcess(FAST_RECALL).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    // The agent starts another call (the handset answers it).
    const before = ari.events.length;
    await ari.client.channels.originate({ endpoint: TEST_AGENT, app: TEST_APP, appArgs: 'other-call', channelId: `busy-${id}` });
    const otherCall = await phone.nextRing(before, 10000);
    await phone.answer(otherCall);
    await svc.waitLog((l) => l.event === 'presence.device_state' && l.device === TEST_AGENT && l.state === 'INUSE', 10000);
    const mark = ari.events.length;
    simLine('NOT_INUSE'); // grace 3 s, then due while the agent talks
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'due', 10000);
    expect(request(svc, id)).toMatchObject({ state: 'DUE', waitingFor: 'agent-busy' });
    await sleep(3000);
    expect(phone.rings(mark)).toHaveLength(0);
    await ari.hangup(`busy-${id}`);
    const freeAt = Date.now();
    const ring = await phone.nextRing(mark, 15000);
    expect(Date.now() - freeAt).toBeGreaterThanOrEqual(1900); // wrap-up gap 2 s
    expect(TestPhone.caller(ring).name).toBe('Callback: 2995');
    await ari.hangup(TestPhone.id(ring));
  });

  it('prospect busy at every recall → "still busy", back-off, FAILED after the last attempt', async () => {
    svc = await new ServiceProcess({ ...FAST_RECALL, policy: { ...FAST_RECALL.policy, maxAttempts: 2, firstProbeDelay: '6s', backoff: ['8s'] } }).start();
    let mark = ari.events.length;
    const id = await optIn(ari, svc, '2991'); // external: timed probes; 2991 is always busy
    expect(request(svc, id)).toMatchObject({ mode: 'timed', waitingFor: 'probe' });
    for (const attempt of [1, 2]) {
      const ring = await phone.nextRing(mark, 30000);
      mark = ari.events.length;
      await phone.answer(ring);
      await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
      await sleep(800);
      await ari.press(TestPhone.id(ring), '1');
      await svc.waitLog((l) => l.requestId === id && l.event === 'recall.prospect_busy' && svc!.logs.filter((x) => x.requestId === id && x.event === 'recall.prospect_busy').length === attempt, 15000);
      if (attempt === 1) {
        // As decided (the back-off is 2 s: the store, read through the CLI, may already show it DUE again).
        const backoff = await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'attempt-busy', 10000);
        expect(backoff).toMatchObject({ to: 'WAITING', wakeAt: expect.any(String) });
        expect(request(svc, id)).toMatchObject({ attempts: 1 });
      }
      await ari.gone(TestPhone.id(ring), 20000); // "still busy, we will try again later", then hang-up
    }
    const done = await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 10000);
    expect(done).toMatchObject({ state: 'FAILED', outcome: 'max-attempts' });
    expect(request(svc, id)).toMatchObject({ state: 'FAILED', attempts: 2 });
    expect(events(svc, id).filter((e) => e === 'attempt-busy')).toHaveLength(2);
  });

  it('2 → snoozed and rung again later; 3 → CANCELLED', async () => {
    // 2995 as an external number (its line is not watched): busy at the offer, free for the recall.
    svc = await new ServiceProcess({ ...FAST_RECALL, prospects: { internal: [] } }).start();
    simLine('INUSE');
    let mark = ari.events.length;
    const id = await optIn(ari, svc, '2995');
    simLine('NOT_INUSE');
    expect(request(svc, id)).toMatchObject({ mode: 'timed' });
    let ring = await phone.nextRing(mark, 20000);
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(800);
    await ari.press(TestPhone.id(ring), '2');
    // The snooze as decided (the transition's own line): the store is read after the snooze's 3 s may have passed
    // on a busy machine (the CLI's start), when the request is DUE again.
    const snoozed = await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-snoozed', 10000);
    expect(snoozed).toMatchObject({ to: 'WAITING', wakeAt: expect.any(String) });
    expect(Date.parse(String(snoozed.wakeAt)) - Date.parse(String(snoozed.timestamp))).toBeGreaterThan(2000); // policy.snooze 3s
    expect(request(svc, id)).toMatchObject({ snoozes: 1 });
    await ari.gone(TestPhone.id(ring), 20000);
    mark = ari.events.length;
    ring = await phone.nextRing(mark, 20000); // snooze is 3 s
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered' && svc!.logs.filter((x) => x.requestId === id && x.event === 'recall.agent_answered').length === 2, 10000);
    await sleep(800);
    await ari.press(TestPhone.id(ring), '3');
    const done = await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 10000);
    expect(done).toMatchObject({ state: 'CANCELLED', outcome: 'cancelled' });
    await ari.gone(TestPhone.id(ring), 20000);
    expect(request(svc, id).state).toBe('CANCELLED');
  });

  it('due outside calling hours → waits for the window that opens a little later', async () => {
    // Windows have minute resolution: open at the next full minute at least 12 s away.
    let opensAt = Math.ceil((Date.now() + 12000) / 60000) * 60000;
    if (new Date(opensAt).getUTCHours() === 0 && new Date(opensAt).getUTCMinutes() === 0) opensAt += 60000;
    const hhmm = new Date(opensAt).toISOString().slice(11, 16);
    const windows = Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [[hhmm, '24:00']]]));
    svc = await new ServiceProcess({ ...FAST_RECALL, callingHours: { timeZone: 'UTC', windows } }).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'due', 10000);
    const waiting = request(svc, id);
    expect(waiting).toMatchObject({ state: 'DUE', waitingFor: 'calling-hours' });
    // Due when the window opens; the wake-up may come earlier, at policy.headsUp (1 min) before it, when the opening
    // was more than that away at the decision (the test picks an opening 12–72 s ahead).
    expect(waiting.dueAt).toBe(new Date(opensAt).toISOString());
    const wake = Date.parse(String(waiting.wakeAt));
    expect(wake).toBeGreaterThanOrEqual(opensAt - 60_000);
    expect(wake).toBeLessThanOrEqual(opensAt);
    const ring = await phone.nextRing(mark, opensAt - Date.now() + 15000);
    expect(Date.now()).toBeGreaterThanOrEqual(opensAt);
    expect(phone.rings(mark)).toHaveLength(1);
    await ari.hangup(TestPhone.id(ring));
  }, 120000);

  it('service killed while the request is in grace → after a restart it still fires once, on time', async () => {
    svc = await new ServiceProcess({ ...FAST_RECALL, policy: { ...FAST_RECALL.policy, grace: '6s' } }).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    const freedAt = Date.now();
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 5000);
    await svc.stop('SIGKILL');
    const restarted = new ServiceProcess(svc.config, svc.dir);
    svc = restarted;
    await restarted.start();
    const ring = await phone.nextRing(mark, 20000);
    expect(Date.now() - freedAt).toBeGreaterThanOrEqual(5900);
    await sleep(2000);
    expect(phone.rings(mark)).toHaveLength(1);
    expect(TestPhone.caller(ring).name).toBe('Callback: 2995');
    await ari.hangup(TestPhone.id(ring));
  });

  /** Opt in to 2995 as an external number (timed), then let its line ring without answer for the recall. */
  async function ringingProspect(config: Record<string, unknown>): Promise<{ id: string; mark: number }> {
    svc = await new ServiceProcess({ ...FAST_RECALL, prospects: { internal: [] }, ...config }).start();
    simLine('INUSE');
    const mark = ari.events.length;
    const id = await optIn(ari, svc, '2995');
    simLine('RINGING');
    return { id, mark };
  }

  async function acceptRing(id: string, mark: number, nth = 1): Promise<string> {
    const ring = await phone.nextRing(mark, 20000);
    await phone.answer(ring);
    await svc!.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered' && svc!.logs.filter((x) => x.requestId === id && x.event === 'recall.agent_answered').length === nth, 10000);
    await sleep(800);
    await ari.press(TestPhone.id(ring), '1');
    await svc!.waitLog((l) => l.requestId === id && l.event === 'recall.dialling_prospect' && svc!.logs.filter((x) => x.requestId === id && x.event === 'recall.dialling_prospect').length === nth, 10000);
    return TestPhone.id(ring);
  }

  it('agent hangs up while the prospect rings → the prospect leg is cancelled and the callback snoozed', async () => {
    const { id, mark } = await ringingProspect({ policy: { ...FAST_RECALL.policy, prospectRingTimeout: '30s', snooze: '1m' } });
    const agentSide = await acceptRing(id, mark);
    await sleep(1500);
    const prospectLeg = (await ari.client.channels.list()).find((c) => c.id === `ccb-${id}-1-p`);
    expect(prospectLeg).toBeDefined(); // ringing
    await ari.hangup(agentSide);
    await svc!.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-hung-up', 10000);
    expect(request(svc!, id)).toMatchObject({ state: 'WAITING', waitingFor: 'snooze', snoozes: 1, attempts: 1 });
    await svc!.waitLog((l) => l.event === 'presence.device_state' && l.device === 'Local/1001@cc-test-phone' && l.state === 'NOT_INUSE', 10000).catch(() => undefined);
    const left = (await ari.client.channels.list()).filter((c) => c.id.startsWith(`ccb-${id}-1-p`));
    expect(left).toEqual([]);
  });

  it('prospect does not answer → one later retry, then FAILED', async () => {
    const { id, mark } = await ringingProspect({ policy: { ...FAST_RECALL.policy, prospectRingTimeout: '3s', backoff: ['10s'], noAnswerRetries: 1 } });
    const first = await acceptRing(id, mark, 1);
    await svc!.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'attempt-no-answer', 15000);
    expect(request(svc!, id)).toMatchObject({ state: 'WAITING', waitingFor: 'no-answer-retry', attempts: 1 });
    await ari.gone(first, 20000);
    await acceptRing(id, ari.events.length, 2);
    const done = await svc!.waitLog((l) => l.requestId === id && l.event === 'request.finished', 20000);
    expect(done).toMatchObject({ state: 'FAILED', outcome: 'prospect-no-answer' });
  });

  it('agent does not answer the recall → snoozed and rung again', async () => {
    svc = await new ServiceProcess({ ...FAST_RECALL, policy: { ...FAST_RECALL.policy, agentRingTimeout: '3s', snooze: '3s' } }).start();
    simLine('INUSE');
    const mark = ari.events.length;
    const id = await optIn(ari, svc, '2995');
    simLine('NOT_INUSE');
    const ring1 = await phone.nextRing(mark, 15000); // not answered
    // As decided (the snooze is 3 s: the store, read through the CLI, may already show it DUE again).
    const missed = await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-no-answer', 15000);
    expect(missed).toMatchObject({ to: 'WAITING', wakeAt: expect.any(String) });
    expect(request(svc, id)).toMatchObject({ snoozes: 1, attempts: 0 });
    const ring2 = await phone.nextRing(ari.events.indexOf(ring1) + 1, 20000);
    expect(TestPhone.id(ring2)).toBe(`ccb-${id}-2;2`); // a new, never reused channel id
    await ari.hangup(TestPhone.id(ring2));
  });

  it('cancelled from the CLI while the agent listens to the menu → the next key ends the call, nothing is dialled', async () => {
    svc = await new ServiceProcess(FAST_RECALL).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    const mark = ari.events.length;
    simLine('NOT_INUSE');
    const ring = await phone.nextRing(mark, 20000);
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    const cancel = runCli(['cancel', id, '--config', svc.configFile]);
    expect(cancel.status).toBe(0);
    expect(request(svc, id).state).toBe('CANCELLED');
    await ari.press(TestPhone.id(ring), '1');
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.abandoned', 10000);
    await ari.gone(TestPhone.id(ring), 20000);
    expect(svc.find((l) => l.requestId === id && l.event === 'recall.dialling_prospect')).toHaveLength(0);
  });
});
