/**
 * The busy signal, end to end on the real Asterisk sandbox: the demo dialplan's Gosub routine, the
 * service (spawned from the built CLI) and a test ARI app that plays the agent's handset.
 */
import { ServiceProcess, TestAri, describePbx, expectOnlyWaitingRequest, runCli, simLine, sleep } from './harness';

describePbx('offer at the busy signal (real Asterisk)', () => {
  let svc: ServiceProcess;
  let phone: TestAri;

  beforeAll(async () => {
    svc = await new ServiceProcess({ offer: { keyTimeout: '2s' } }).start();
    phone = await TestAri.connect();
  });

  afterAll(async () => {
    await phone?.close();
    await svc?.stop();
  });

  const offerLine = (from: number) => svc.waitLog((l) => l.event === 'offer.started', 15000, from);

  it('BUSY → offer → # stores exactly one request; list --json shows it; the call ends', async () => {
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2991');
    await phone.answered(agentLeg);
    const offered = await offerLine(mark);
    expect(offered).toMatchObject({ agent: 'PJSIP/1001', prospect: '2991', hangupCause: 17, language: 'en' });
    await phone.press(agentLeg, '#');
    const requested = await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark);
    // The confirmation plays after the commit, then the app hangs up.
    await svc.waitLog((l) => l.event === 'offer.prompt_finished' && l.prompt === 'confirm' && l.state === 'done', 15000, mark);
    const destroyed = await phone.destroyed(agentLeg);
    expect(destroyed.cause).toBe(16);

    const request = expectOnlyWaitingRequest(svc, requested.requestId, '2991');
    expect(Date.parse(String(request.createdAt))).toBeGreaterThan(Date.now() - 60000);
  });

  it('BUSY → # again from a second call for the same prospect refreshes, still one request', async () => {
    const before = svc.list();
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2991');
    await phone.answered(agentLeg);
    await offerLine(mark);
    await phone.press(agentLeg, '#');
    await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'refreshed', 10000, mark);
    await phone.gone(agentLeg);
    const after = svc.list();
    expect(after).toHaveLength(before.length);
    expect(after.filter((r) => r.prospect === '2991' && r.agent === 'PJSIP/1001')).toHaveLength(1);
  });

  it('BUSY → no key → nothing stored, goodbye, the call ends', async () => {
    const before = svc.list().length;
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2991', { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
    await phone.answered(agentLeg);
    await offerLine(mark);
    await svc.waitLog((l) => l.event === 'offer.prompt_finished' && l.prompt === 'offer' && l.state === 'done', 20000, mark);
    const ended = await svc.waitLog((l) => l.event === 'offer.ended', 20000, mark);
    expect(ended.outcome).toBe('timeout');
    await phone.gone(agentLeg);
    expect(svc.list()).toHaveLength(before);
  });

  it('BUSY → 1 → nothing stored', async () => {
    const before = svc.list().length;
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2991', { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
    await phone.answered(agentLeg);
    await offerLine(mark);
    await phone.press(agentLeg, '1');
    const ended = await svc.waitLog((l) => l.event === 'offer.ended', 20000, mark);
    expect(ended).toMatchObject({ outcome: 'declined', key: '1' });
    await phone.gone(agentLeg);
    expect(svc.list()).toHaveLength(before);
  });

  it('a German-speaking agent hears the German offer', async () => {
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2991', { agent: 'PJSIP/1003', callerNumber: '1003', callerName: 'Agent 1003' });
    await phone.answered(agentLeg);
    const offered = await offerLine(mark);
    expect(offered).toMatchObject({ agent: 'PJSIP/1003', language: 'de' });
    await phone.hangup(agentLeg);
    const ended = await svc.waitLog((l) => l.event === 'offer.ended', 10000, mark);
    expect(ended.outcome).toBe('hangup');
  });

  it('prospect answers → no offer; agent and prospect are bridged', async () => {
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2992');
    await phone.answered(agentLeg);
    // Find the Local;2 half running the agent's dialplan and check it is bridged to the prospect.
    const channels = await phone.client.channels.list();
    const agentSide = channels.find((c) => c.name.includes('2992@cc-test-agent') && c.name.endsWith(';2'));
    expect(agentSide).toBeDefined();
    const peer = await phone.client.channels.getChannelVar({ channelId: agentSide!.id, variable: 'BRIDGEPEER' });
    expect(peer.value).toMatch(/^Local\/answer@cc-sim-[0-9a-f]+;1$/);
    await sleep(500);
    expect(svc.find((l) => l.event === 'offer.started' && l.prospect === '2992')).toHaveLength(0);
    expect(svc.logs.slice(mark).filter((l) => l.event === 'offer.started')).toHaveLength(0);
    await phone.hangup(agentLeg);
    await phone.gone(agentLeg);
  });

  it.each([
    ['123&PJSIP/evil', /contains "&"/],
    ['123@other', /contains "@"/],
    ['', /empty/],
    ['9'.repeat(200), /200 digits/],
  ])('malformed prospect %j from the dialplan → no request, clean hang-up, a clear log line', async (bad, reason) => {
    const before = svc.list().length;
    const mark = svc.logs.length;
    // The dialplan hands the app whatever number it was given; feed the app directly as Stasis() would.
    const channelId = `bad-${Date.now().toString(36)}`;
    await phone.client.channels.originate({
      endpoint: 'Local/answer@cc-sim',
      app: 'considerate-callback',
      appArgs: ['offer', bad, 'PJSIP/1001', '17'].join(','),
      channelId,
    });
    const refused = await svc.waitLog((l) => l.event === 'offer.refused', 10000, mark);
    expect(String(refused.reason)).toMatch(reason);
    expect(refused.channelId).toBe(channelId);
    // The channel is gone: Asterisk no longer knows it.
    await expect(
      (async () => {
        for (let i = 0; i < 50; i++) {
          const all = await phone.client.channels.list();
          if (!all.some((c) => c.id === channelId)) return 'gone';
          await sleep(100);
        }
        return 'still there';
      })(),
    ).resolves.toBe('gone');
    expect(svc.list()).toHaveLength(before);
    expect(svc.running).toBe(true);
  });

  it('an injected agent device is refused as well', async () => {
    const mark = svc.logs.length;
    const channelId = `bad-${Date.now().toString(36)}`;
    await phone.client.channels.originate({
      endpoint: 'Local/answer@cc-sim',
      app: 'considerate-callback',
      appArgs: 'offer,2001,PJSIP/1001&PJSIP/evil',
      channelId,
    });
    const refused = await svc.waitLog((l) => l.event === 'offer.refused', 10000, mark);
    expect(String(refused.reason)).toMatch(/agent device/);
    expect(svc.running).toBe(true);
  });
});

describePbx('offer limits (real Asterisk)', () => {
  it('an agent at the pending limit hears so politely and nothing is added', async () => {
    const svc = await new ServiceProcess({ offer: { keyTimeout: '2s', maxPendingPerAgent: 1 } }).start();
    const phone = await TestAri.connect();
    try {
      for (const [i, number] of ['2991', '2995'].entries()) {
        if (number === '2995') simLine('INUSE');
        const mark = svc.logs.length;
        const leg = await phone.agentDials(number, { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
        await phone.answered(leg);
        await svc.waitLog((l) => l.event === 'offer.started', 15000, mark);
        await phone.press(leg, '#');
        const ended = await svc.waitLog((l) => l.event === 'offer.ended', 20000, mark);
        expect(ended.outcome).toBe(i === 0 ? 'requested' : 'full');
        const told = await svc.waitLog((l) => l.event === 'offer.prompt_finished' && (l.prompt === 'full' || l.prompt === 'confirm'), 20000, mark);
        expect(told).toMatchObject({ prompt: i === 0 ? 'confirm' : 'full', state: 'done' });
        await phone.gone(leg);
      }
      expect(svc.list().map((r) => r.prospect)).toEqual(['2991']);
      expect(svc.find((l) => l.event === 'offer.full')).toHaveLength(1);
      // On a clean stop the service reports how late its event loop ran while it served calls.
      expect(await svc.stop()).toBe(0);
      const stopped = await svc.waitLog((l) => l.event === 'service.stopped', 5000);
      const late = stopped.eventLoopDelayMs as { p50: number; p99: number; max: number };
      expect(late).toEqual({ p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) });
      expect(late.p50).toBeGreaterThanOrEqual(0);
      expect(late.p99).toBeGreaterThanOrEqual(late.p50);
      expect(late.max).toBeGreaterThanOrEqual(late.p99);
      // The shutdown itself (closing the store, the connections) is timed apart, not counted as lateness.
      expect(stopped.stopMs).toEqual(expect.any(Number));
    } finally {
      simLine('NOT_INUSE');
      await phone.close();
      await svc.stop();
    }
  });
});

describePbx('app not running (real Asterisk)', () => {
  it('the agent hears busy and the call ends', async () => {
    // No service is connected as "considerate-callback" here: Stasis() fails and the routine plays busy.
    const phone = await TestAri.connect();
    try {
      const apps = await phone.client.applications.list();
      expect(apps.map((a) => a.name)).not.toContain('considerate-callback');
      const agentLeg = await phone.agentDials('2991');
      await phone.gone(agentLeg, 25000);
      // The agent's call ended as BUSY (what the agent's phone shows and plays) …
      const dial = phone.events.find((e) => e.type === 'Dial' && (e.peer as { id: string }).id === agentLeg && e.dialstatus !== '');
      expect(dial?.dialstatus).toBe('BUSY');
      // … and the dialplan half ended with cause 17 (user busy), never answered: no prompt was played.
      const half = phone.events.find((e) => e.type === 'ChannelDestroyed' && (e.channel as { id: string }).id === `${agentLeg};2`);
      expect(half).toMatchObject({ cause: 17, channel: { state: 'Busy' } });
      expect(phone.of(agentLeg).some((e) => e.type === 'StasisStart')).toBe(false);
    } finally {
      await phone.close();
    }
  });

  it('list on a store that was never created says so (exit 3)', () => {
    const svc = new ServiceProcess();
    // Create the store the way the service does, then list it.
    const r = runCli(['list', '--json', '--config', svc.configFile]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/does not exist/);
  });
});
