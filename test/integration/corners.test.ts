/**
 * Considerate in the corners, on the real Asterisk sandbox with SIPp phones:
 *  - one prospect, two agents: one recall at a time, in opt-in order; the second agent hears that a colleague
 *    waits ("you are second") and is served only after the first conversation ended, with the grace again;
 *    the prospect's phone (SIPp) never has two calls from us at once;
 *  - `#` outside calling hours, for each admin choice (carry over to the next calling day / no offer);
 *  - a prospect number in another zone (New York) is offered by New York's clock.
 */
import { FAST_RECALL, runCli, ServiceProcess, TEST_AGENT, TestAri, TestPhone, describePbx, sleep } from './harness';
import { PORTS, expectSippOk, findMessage, ladder, register, runSipp, sippAvailable, startSipp, stopAllSipp, unregister } from './sipp';

const AGENT = { user: '1001', password: 'agent1001' };
const PROSPECT = { user: '2001', password: 'prospect2001' };
const AGENT_2 = 'Local/1002@cc-test-phone';
const ALL_WEEK = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** Calling hours (every day) from an hour before to two hours after now, read in a zone `offsetHours` from UTC. */
function windowAroundNowIn(offsetHours: number): Record<string, [string, string][]> {
  const h = (new Date().getUTCHours() + offsetHours + 24) % 24;
  const from = Math.max(0, h - 1);
  const to = Math.min(24, h + 2);
  const hh = (x: number) => `${String(x).padStart(2, '0')}:00`;
  return Object.fromEntries(ALL_WEEK.map((d) => [d, [[hh(from), hh(to)]]]));
}

/** Calling hours that are closed right now in UTC: only a window on the weekday after tomorrow. */
function closedNowUtc(): Record<string, [string, string][]> {
  const day = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][(new Date().getUTCDay() + 2) % 7];
  return { [day]: [['09:00', '18:00']] };
}

/** Agent 1001's SIPp handset dials `number`, hears whatever the app says, presses # after 1.5 s, gets the BYE. */
async function agentDials(number: string) {
  return runSipp({
    scenario: 'uac-busy-pound.xml',
    port: PORTS.agentUac.sip,
    mediaPort: PORTS.agentUac.media,
    service: number,
    keys: { agent: AGENT.user },
    auth: AGENT,
    timeoutMs: 60000,
  });
}

describePbx('considerate in the corners (real Asterisk, SIPp phones)', () => {
  let svc: ServiceProcess | undefined;

  beforeAll(async () => {
    if (!sippAvailable()) throw new Error('sipp is not installed (Debian: apt-get install sip-tester)');
    await register(PROSPECT.user, PROSPECT.password, PORTS.prospectUas.sip);
  });

  afterEach(async () => {
    await stopAllSipp();
    await svc?.stop();
    svc = undefined;
  });

  afterAll(async () => {
    await stopAllSipp();
    await unregister(PROSPECT.user, PROSPECT.password, PORTS.prospectUas.sip);
  });

  describe('one prospect, two agents', () => {
    let ari: TestAri;
    let phone: TestPhone;

    beforeAll(async () => {
      ari = await TestAri.connect();
      phone = await TestPhone.attach(ari);
      await ari.hangupStale('cc-test-phone');
    });

    afterAll(async () => {
      await ari.hangupStale('cc-test-phone');
      await ari?.close();
    });

    it('one recall at a time, in opt-in order; the second agent is told and served after the first conversation', async () => {
      svc = await new ServiceProcess({
        ...FAST_RECALL,
        policy: { ...FAST_RECALL.policy, grace: '10s' },
        prospects: { internal: [{ pattern: '^2001$', device: 'PJSIP/${number}' }] },
      }).start();
      const s = svc;
      // Prospect 2001 (SIPp) is busy for each agent's call.
      const optIn = async (agent: string) => {
        const busy = await startSipp({ scenario: 'uas-486.xml', port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media, remote: null, timeoutMs: 45000 }).ready();
        const mark = s.logs.length;
        const leg = await ari.agentDials('2001', { agent });
        await ari.answered(leg);
        const offered = await s.waitLog((l) => l.event === 'offer.started', 15000, mark);
        await ari.press(leg, '#');
        const stored = await s.waitLog((l) => (l.event === 'offer.opted_in' && l.result === 'created'), 10000, mark);
        await ari.gone(leg);
        expectSippOk(await busy.done());
        return { offered, stored, mark };
      };
      const a = await optIn(TEST_AGENT);
      const b = await optIn(AGENT_2);

      // The first agent was first; the second heard "a colleague is already waiting for this number; you are second".
      expect(a.offered).toMatchObject({ event: 'offer.started', promise: 'regular', position: 1, queue: [] });
      expect(b.offered).toMatchObject({ event: 'offer.started', promise: 'regular', position: 2, queue: [TEST_AGENT] });
      expect(s.logs.slice(b.mark).find((l) => l.event === 'offer.prompt_playing')).toMatchObject({ prompt: 'queue', media: 'sound:cc-queue-2' });
      expect(s.logs.slice(a.mark, b.mark).find((l) => l.event === 'offer.prompt_playing')).toMatchObject({ prompt: 'offer' });
      expect(b.stored).toMatchObject({ position: 2, promise: 'regular' });
      const idA = String(a.stored.requestId);
      const idB = String(b.stored.requestId);
      const queue = s.list().filter((r) => r.prospect === '2001').map((r) => [r.agent, r.queue]);
      expect(queue).toEqual([
        [TEST_AGENT, { position: 1, of: 2 }],
        [AGENT_2, { position: 2, of: 2 }],
      ]);

      // From now on the prospect answers (two calls at most), echoing media.
      const answering = await startSipp({
        scenario: 'uas-answer-reinvite.xml',
        port: PORTS.prospectUas.sip,
        mediaPort: PORTS.prospectUas.media,
        remote: null,
        calls: 2,
        timeoutMs: 240000,
        extraArgs: ['-rtp_echo'],
      }).ready();

      // Agent 1 is rung first (and only agent 1), presses 1, the prospect answers: connected.
      const ring1 = await phone.nextRing(ari.events.length, 40000);
      expect((ring1.args as string[])[1]).toBe('1001');
      await phone.answer(ring1);
      await s.waitLog((l) => l.requestId === idA && l.event === 'recall.agent_answered', 10000);
      await sleep(500);
      await ari.press(TestPhone.id(ring1), '1');
      await s.waitLog((l) => l.requestId === idA && l.event === 'request.finished' && l.state === 'COMPLETED', 20000);

      // While agent 1 talks to the prospect, agent 2 is not rung (well past the grace).
      await sleep(12000);
      expect(phone.rings().map((r) => (r.args as string[])[1])).toEqual(['1001']);
      const waiting = s.list().find((r) => r.id === idB)!;
      expect(['WAITING', 'GRACE', 'DUE']).toContain(waiting.state);
      expect(String(waiting.reason)).toMatch(/prospect line busy|on the phone with a colleague/);

      // Agent 1 hangs up: the conversation ends; after the grace, agent 2 is rung, presses 1, connected.
      const endMark = s.logs.length;
      const eventMark = ari.events.length;
      await ari.hangup(TestPhone.id(ring1));
      await s.waitLog((l) => l.requestId === idA && l.event === 'recall.conversation_ended', 10000, endMark);
      const ring2 = await phone.nextRing(eventMark, 40000);
      expect((ring2.args as string[])[1]).toBe('1002');
      const ringLog = await s.waitLog((l) => l.requestId === idB && l.event === 'request.transition' && l.transition === 'ring-agent', 5000, endMark);
      expect(s.logs.indexOf(ringLog)).toBeGreaterThan(s.logs.findIndex((l, i) => i >= endMark && l.event === 'recall.conversation_ended'));
      await phone.answer(ring2);
      await s.waitLog((l) => l.requestId === idB && l.event === 'recall.agent_answered', 10000);
      await sleep(500);
      await ari.press(TestPhone.id(ring2), '1');
      await s.waitLog((l) => l.requestId === idB && l.event === 'request.finished' && l.state === 'COMPLETED', 20000);
      await sleep(1000);
      await ari.hangup(TestPhone.id(ring2));
      const uas = expectSippOk(await answering.done());

      // The prospect's phone saw two calls from us (two dialogs; re-INVITEs within a call update the connected
      // line), never at the same time: the second call's INVITE came after the first call's BYE.
      const msgs = uas.messages;
      const calls = [...new Set(msgs.filter((m) => m.direction === 'received' && m.method === 'INVITE').map((m) => m.header('Call-ID')))];
      expect(calls).toHaveLength(2);
      const firstInvite = (callId: string | undefined) => msgs.findIndex((m) => m.method === 'INVITE' && m.header('Call-ID') === callId);
      const bye = (callId: string | undefined) => msgs.findIndex((m) => m.method === 'BYE' && m.header('Call-ID') === callId);
      expect(bye(calls[0])).toBeGreaterThan(firstInvite(calls[0]));
      expect(firstInvite(calls[1])).toBeGreaterThan(bye(calls[0]));
      // Both agents connected, each once, the second having waited for the colleague.
      expect(s.list().filter((r) => r.prospect === '2001').map((r) => [r.agent, r.state])).toEqual([
        [TEST_AGENT, 'COMPLETED'],
        [AGENT_2, 'COMPLETED'],
      ]);
      // Agent 2's ring came only after agent 1's request had ended and the conversation was over.
      const ringB = s.logs.findIndex((l) => l.requestId === idB && l.event === 'request.transition' && l.transition === 'ring-agent');
      const doneA = s.logs.findIndex((l) => l.requestId === idA && l.event === 'request.finished');
      expect(ringB).toBeGreaterThan(doneA);
    });
  });

  describe('# outside calling hours', () => {
    const closed = { ...FAST_RECALL, callingHours: { timeZone: 'UTC', windows: closedNowUtc() } };

    it('carry-over (default): a distinct offer and confirmation; stored as carried over, and list says so', async () => {
      svc = await new ServiceProcess(closed).start();
      const mark = svc.logs.length;
      const prospect = await startSipp({ scenario: 'uas-486.xml', port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media, remote: null, timeoutMs: 45000 }).ready();
      const agent = expectSippOk(await agentDials('2001'));
      expectSippOk(await prospect.done());
      expect(ladder(agent.messages)).toEqual(expect.arrayContaining(['received 200 OK', 'received BYE']));
      expect(await svc.waitLog((l) => l.event === 'offer.started', 5000, mark)).toMatchObject({ promise: 'next-calling-day', position: 1 });
      const stored = await svc.waitLog((l) => (l.event === 'offer.opted_in' && l.result === 'created'), 5000, mark);
      expect(stored).toMatchObject({ promise: 'next-calling-day' });
      await svc.waitLog((l) => l.event === 'offer.prompt_finished' && l.prompt === 'confirmNextDay', 10000, mark);
      const [row] = svc.list();
      expect(row).toMatchObject({ id: stored.requestId, promise: 'next-calling-day', mode: 'timed' });
      expect(['WAITING', 'DUE']).toContain(row.state);
      expect(Date.parse(String(row.carriedOverTo))).toBeGreaterThan(Date.now());
      expect(Date.parse(String(row.expiresAt))).toBeGreaterThan(Date.parse(String(row.carriedOverTo)));
    });

    it('decline: no offer, a short reason, the call ends; nothing stored', async () => {
      svc = await new ServiceProcess({ ...closed, policy: { ...closed.policy, afterHours: 'decline' } }).start();
      const mark = svc.logs.length;
      const prospect = await startSipp({ scenario: 'uas-486.xml', port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media, remote: null, timeoutMs: 45000 }).ready();
      const agent = expectSippOk(await agentDials('2001'));
      expectSippOk(await prospect.done());
      // The app answered, said why and hung up (the agent's # went nowhere).
      expect(ladder(agent.messages)).toEqual(expect.arrayContaining(['received 200 OK', 'received BYE']));
      expect(await svc.waitLog((l) => l.event === 'offer.started', 5000, mark)).toMatchObject({ promise: 'declined' });
      expect(await svc.waitLog((l) => l.event === 'offer.closed', 5000, mark)).toMatchObject({ agent: 'PJSIP/1001', prospect: '2001', timeZone: 'UTC' });
      await svc.waitLog((l) => l.event === 'offer.prompt_finished' && l.prompt === 'closed', 10000, mark);
      expect(await svc.waitLog((l) => l.event === 'offer.ended', 10000, mark)).toMatchObject({ outcome: 'closed' });
      expect(svc.logs.slice(mark).some((l) => (l.event === 'offer.opted_in' && l.result === 'created'))).toBe(false);
      expect(svc.list()).toEqual([]);
    });
  });

  it("a prospect in another zone: New York's calling hours apply to +1 212 …, the configured zone to a national number", async () => {
    // Open around now in New York (UTC-5 in winter, UTC-4 in summer: take the offset of today), closed now in UTC.
    const nyOffset = Number(new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', timeZoneName: 'shortOffset' }).formatToParts(new Date()).find((p) => p.type === 'timeZoneName')!.value.replace('GMT', ''));
    svc = await new ServiceProcess({
      ...FAST_RECALL,
      policy: { ...FAST_RECALL.policy, afterHours: 'decline' },
      callingHours: { timeZone: 'UTC', windows: windowAroundNowIn(nyOffset) },
    }).start();
    const mark = svc.logs.length;
    const agent = expectSippOk(await agentDials('0012125551234'));
    expect(ladder(agent.messages)).toEqual(expect.arrayContaining(['received 200 OK', 'received BYE']));
    expect(await svc.waitLog((l) => l.event === 'offer.started', 5000, mark)).toMatchObject({
      promise: 'regular',
      timeZone: 'America/New_York',
      zoneSource: 'number',
    });
    const stored = await svc.waitLog((l) => (l.event === 'offer.opted_in' && l.result === 'created'), 5000, mark);
    const row = svc.list().find((r) => r.id === stored.requestId);
    expect(row).toMatchObject({ prospect: '0012125551234', timeZone: 'America/New_York', zoneSource: 'number', promise: 'regular' });
    const show = runCli(['show', String(stored.requestId), '--config', svc.configFile]);
    expect(show.stdout).toContain("Prospect's time zone: America/New_York (from the number's country and area code)");

    // The same hours read in the configured zone (UTC) are closed now: a national number gets no offer.
    const mark2 = svc.logs.length;
    const prospect = await startSipp({ scenario: 'uas-486.xml', port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media, remote: null, timeoutMs: 45000 }).ready();
    expectSippOk(await agentDials('2001'));
    expectSippOk(await prospect.done());
    expect(await svc.waitLog((l) => l.event === 'offer.started', 5000, mark2)).toMatchObject({ promise: 'declined', timeZone: 'UTC', zoneSource: 'default' });
    expect(findMessage(agent.messages, { direction: 'received', status: 486 })).toBeUndefined();
  });
});
