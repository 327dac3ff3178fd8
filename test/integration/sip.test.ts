/**
 * "Busy → press #" with real SIP phones: SIPp as agent 1001's handset (UAC, RFC 4733 DTMF) and as
 * prospect 2001 (UAS registered from its own port), through the demo dialplan on the sandbox Asterisk,
 * with the service spawned from the built CLI. Scenarios and ports: testkit/scenarios/README.md.
 */
import { ServiceProcess, describePbx, expectOnlyWaitingRequest, sleep } from './harness';
import {
  PORTS,
  SippResult,
  callerView,
  describeSipp,
  expectSippOk,
  findMessage,
  ladder,
  register,
  runSipp,
  sippAvailable,
  startSipp,
  stopAllSipp,
  unregister,
} from './sipp';

const AGENT = { user: '1001', password: 'agent1001' };
const PROSPECT = { user: '2001', password: 'prospect2001' };

/** Prospect 2001 answers the next INVITE with `scenario` (uas-486.xml, uas-603.xml). */
async function prospectAnswers(scenario: string) {
  return startSipp({ scenario, port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media, remote: null, timeoutMs: 45000 }).ready();
}

/** Agent 1001's handset dials 2001 with `scenario` (uac-busy-pound.xml, uac-expect-busy.xml). */
function agentCalls2001(scenario: string, timeoutMs: number): Promise<SippResult> {
  return runSipp({
    scenario,
    port: PORTS.agentUac.sip,
    mediaPort: PORTS.agentUac.media,
    service: PROSPECT.user,
    keys: { agent: AGENT.user },
    auth: AGENT,
    timeoutMs,
  });
}

describePbx('busy → press # with a real SIP handset (SIPp)', () => {
  beforeAll(async () => {
    if (!sippAvailable()) throw new Error('sipp is not installed (Debian: apt-get install sip-tester); the SIP acceptance tests need it');
    // SIPp on the prospect port becomes 2001's contact (max_contacts=1, remove_existing=yes).
    await register(PROSPECT.user, PROSPECT.password, PORTS.prospectUas.sip);
  });

  afterEach(stopAllSipp);

  afterAll(async () => {
    await stopAllSipp();
    // Leave 2001 unregistered (device UNAVAILABLE) for the next suite.
    await unregister(PROSPECT.user, PROSPECT.password, PORTS.prospectUas.sip);
  });

  describe('with the service running', () => {
    let svc: ServiceProcess;

    beforeAll(async () => {
      svc = await new ServiceProcess({ offer: { keyTimeout: '3s' } }).start();
    });

    afterAll(async () => {
      await svc?.stop();
    });

    it('486 Busy Here → the agent is offered a callback, presses # (RFC 4733) → one WAITING request', async () => {
      const mark = svc.logs.length;
      const prospect = await prospectAnswers('uas-486.xml');
      const agent = expectSippOk(await agentCalls2001('uac-busy-pound.xml', 60000));
      const uas = expectSippOk(await prospect.done());

      // The prospect's phone rang with the agent's caller ID and said busy.
      const invite = findMessage(uas.messages, { direction: 'received', method: 'INVITE' });
      expect(invite).toBeDefined();
      expect(callerView(invite!).from).toMatchObject({ display: 'Agent 1001', user: '1001' });
      expect(findMessage(uas.messages, { direction: 'sent', status: 486 })).toBeDefined();

      // The agent's call was answered by the app (the offer), and the app ended it after the confirmation.
      expect(ladder(agent.messages)).toEqual(expect.arrayContaining(['received 200 OK', 'received BYE']));
      expect(findMessage(agent.messages, { direction: 'received', status: 486 })).toBeUndefined();

      const offered = await svc.waitLog((l) => l.event === 'offer.started', 5000, mark);
      expect(offered).toMatchObject({ agent: 'PJSIP/1001', prospect: '2001', hangupCause: 17, language: 'en' });
      await svc.waitLog((l) => l.event === 'offer.key' && l.digit === '#', 5000, mark);
      const requested = await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 5000, mark);
      const ended = await svc.waitLog((l) => l.event === 'offer.ended', 5000, mark);
      expect(ended).toMatchObject({ outcome: 'requested', requestId: requested.requestId });

      expectOnlyWaitingRequest(svc, requested.requestId, '2001');
    });

    it('603 Decline → no offer: the agent gets 486 Busy Here, nothing is stored', async () => {
      const before = svc.list();
      const mark = svc.logs.length;
      const prospect = await prospectAnswers('uas-603.xml');
      const agent = expectSippOk(await agentCalls2001('uac-expect-busy.xml', 30000));
      const uas = expectSippOk(await prospect.done());

      // The decline really came from 2001's phone …
      expect(findMessage(uas.messages, { direction: 'received', method: 'INVITE' })).toBeDefined();
      expect(findMessage(uas.messages, { direction: 'sent', status: 603 })).toBeDefined();
      // … and the agent heard busy, never an answered call.
      // The Reason header carries 17 (busy) or the prospect's own 21 (rejected), depending on which hang-up
      // cause Asterisk settles on first; both are a busy signal to the agent.
      const busy = findMessage(agent.messages, { direction: 'received', status: 486 });
      expect(busy?.header('Reason')).toMatch(/^Q\.850;cause=(17|21)$/);
      expect(agent.messages.some((m) => m.direction === 'received' && m.status === 200 && m.cseqMethod === 'INVITE')).toBe(false);

      await sleep(500);
      expect(svc.logs.slice(mark).filter((l) => l.event === 'offer.started')).toEqual([]);
      expect(svc.list()).toEqual(before);
    });
  });

  describe('with the app not running', () => {
    it('486 Busy Here → the handset gets 486 at once (no offer, no dead end)', async () => {
      // GET /ari/applications is no help here: an app whose client left stays listed (inactive) while
      // channels or bridges still belong to it, and Stasis() into it fails as if it did not exist.
      const prospect = await prospectAnswers('uas-486.xml');
      const agent = await agentCalls2001('uac-expect-busy.xml', 30000);
      if (agent.messages.some((m) => m.direction === 'received' && m.status === 200 && m.cseqMethod === 'INVITE')) {
        throw new Error(`the call was answered (an offer?): is a client connected as "considerate-callback" (another test run)?\n${describeSipp(agent)}`);
      }
      expectSippOk(agent);
      expectSippOk(await prospect.done());
      // The Reason header carries 17 (busy) or the prospect's own 21 (rejected), depending on which hang-up
      // cause Asterisk settles on first; both are a busy signal to the agent.
      const busy = findMessage(agent.messages, { direction: 'received', status: 486 });
      expect(busy?.header('Reason')).toMatch(/^Q\.850;cause=(17|21)$/);
      // Busy() on an unanswered channel sends the 486 right away, not after CC_BUSY_SECONDS.
      expect(agent.durationMs).toBeLessThan(8000);
    });
  });
});
