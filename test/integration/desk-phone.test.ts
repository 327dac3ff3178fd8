/**
 * What a person at a desk phone meets (issue 21), with a real SIP phone: Debian's baresip registered as
 * agent 1001 (testkit/baresip.ts; G.722 first, RFC 4733 keys), beside SIPp where a phone must do what
 * baresip cannot (SIP INFO keys).
 * - the recall's label as the phone shows it, for a 12-digit external number: `CB 030 123456`;
 * - the wide-band codec the phone and the demo endpoints agree on (G.722);
 * - the external number's timed path on the demo's simulated carrier: probe, busy (attempt 1), back-off,
 *   the next ring, 1, answered;
 * - a missed recall returned from the phone (it calls the service number 9000): the menu on that call, 1,
 *   connected; the request's history tells it; nothing pending: "no callbacks";
 * - a key sent as SIP INFO in the recall menu (SIPp).
 */
import { Baresip, baresipAvailable, realPhonePorts } from '../../testkit/baresip';
import { FAST_RECALL, ServiceProcess, TestAri, describePbx, optIn, pbxCli, simLine, sleep } from './harness';
import { PORTS, expectSippOk, register, startSipp, stopAllSipp, unregister } from './sipp';

const AGENT = { user: '1001', password: 'agent1001' };
const DEVICE = 'PJSIP/1001';

/**
 * The request's history, without `waiting` (the agent's wrap-up gap after a call, which timing decides) and without
 * `heads-up` (the default 1m heads-up comes with each foreseen due time, the wrap-up gap's too, so timing decides how
 * many; test/integration/heads-up.test.ts covers it).
 */
function transitions(svc: ServiceProcess, id: string): string[] {
  return svc.logs.filter((l) => l.requestId === id && l.event === 'request.transition' && l.transition !== 'waiting' && l.transition !== 'heads-up').map((l) => String(l.transition));
}

function request(svc: ServiceProcess, id: string): Record<string, unknown> {
  const r = svc.list().find((x) => x.id === id);
  if (!r) throw new Error(`request ${id} not found`);
  return r;
}

describePbx('on a real desk phone (baresip as agent 1001)', () => {
  let ari: TestAri;
  let phone: Baresip | undefined;
  let svc: ServiceProcess | undefined;

  beforeAll(async () => {
    if (!baresipAvailable()) throw new Error('baresip is not installed (Debian: apt-get install baresip-core; scripts/pbx.sh up installs it)');
    ari = await TestAri.connect();
  });

  beforeEach(async () => {
    pbxCli('database deltree cc-carrier');
    phone = await Baresip.start({ ...AGENT, slot: realPhonePorts().agent });
  });

  afterEach(async () => {
    await svc?.stop();
    svc = undefined;
    await phone?.stop();
    phone = undefined;
    simLine('NOT_INUSE');
  });

  afterAll(async () => {
    await ari?.close();
    // Leave 1001 without a registration (device UNAVAILABLE), as the other suites expect.
    await unregister(AGENT.user, AGENT.password, PORTS.agentUas.sip).catch(() => undefined);
  });

  it('a 12-digit external number: labelled "CB 030 123456" from 9000, G.722, 1 (RFC 4733); the carrier is busy, back-off, the next ring connects', async () => {
    svc = await new ServiceProcess(FAST_RECALL).start();
    const id = await optIn(ari, svc, '004930123456', DEVICE);
    expect(request(svc, id)).toMatchObject({ mode: 'timed', prospect: '004930123456' });

    // The first probe rings the agent's phone: what it shows.
    const ring = await phone!.waitEvent('the recall ringing', (e) => e.type === 'CALL_INCOMING', 20000);
    expect(ring.peerdisplayname).toBe('CB 030 123456');
    expect(ring.peeruri).toMatch(/^sip:9000@/);
    await phone!.accept();
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    // The phone and the PBX agreed on G.722 (wide-band) for the agent's leg.
    const format = await ari.client.channels.getChannelVar({ channelId: `ccb-${id}-1`, variable: 'CHANNEL(audionativeformat)' });
    expect(format.value).toMatch(/g722/);
    await sleep(500);
    await phone!.press('1');
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_key' && l.key === '1', 10000);
    // The simulated carrier is busy at the first attempt: still busy, back-off, WAITING.
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.prospect_busy', 15000);
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'attempt-busy', 10000);
    expect(request(svc, id)).toMatchObject({ attempts: 1 });
    await phone!.waitEvent('the first recall closed', (e) => e.type === 'CALL_CLOSED', 15000);

    // After the back-off the phone rings again; 1; the carrier answers.
    const mark = phone!.events.length;
    const again = await phone!.waitEvent('the second recall ringing', (e) => e.type === 'CALL_INCOMING', 20000, mark);
    expect(again.peerdisplayname).toBe('CB 030 123456');
    await phone!.accept();
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered' && l.channelId === `ccb-${id}-2`, 10000);
    await sleep(500);
    await phone!.press('1');
    const done = await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 20000);
    expect(done).toMatchObject({ state: 'COMPLETED', outcome: 'completed' });
    expect(request(svc, id)).toMatchObject({ attempts: 2 });
    expect(transitions(svc, id)).toEqual(['created', 'due', 'ring-agent', 'agent-answered', 'agent-accepted', 'attempt-busy', 'due', 'ring-agent', 'agent-answered', 'agent-accepted', 'prospect-answered']);
    await phone!.hangup();
  }, 120000);

  it('a missed recall is returned from the phone: it calls 9000, hears the menu, 1 → connected; history and counters stay right', async () => {
    // A long snooze: the missed recall must not ring again by itself during the test.
    svc = await new ServiceProcess({ ...FAST_RECALL, policy: { ...FAST_RECALL.policy, snooze: '5m', agentRingTimeout: '4s' } }).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995', DEVICE);
    simLine('NOT_INUSE');
    const ring = await phone!.waitEvent('the recall ringing', (e) => e.type === 'CALL_INCOMING', 20000);
    expect(ring.peerdisplayname).toBe('Callback: 2995');
    // Nobody answers: a missed call in the phone's list, from 9000.
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_no_answer', 15000);
    await phone!.waitEvent('the missed recall closed', (e) => e.type === 'CALL_CLOSED', 10000);
    // The service holds an agent's no-answer back a moment (a PBX restart would make it an interruption), then records it.
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'agent-no-answer', 10000);
    expect(request(svc, id)).toMatchObject({ state: 'WAITING', waitingFor: 'snooze', attempts: 0, snoozes: 1 });

    // The agent returns the missed call: dials the number it came from.
    const mark = svc.logs.length;
    await phone!.dial(String(ring.peeruri).replace(/^sip:([^@]+)@.*$/, '$1'));
    await phone!.waitEvent('the service number answering', (e) => e.type === 'CALL_ESTABLISHED', 10000);
    const asked = await svc.waitLog((l) => l.event === 'return.asked', 10000, mark);
    expect(asked).toMatchObject({ agent: DEVICE, pending: 1, first: id, firstProspect: '2995' });
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.returned', 5000, mark);
    expect(request(svc, id)).toMatchObject({ state: 'RINGING_AGENT', waitingFor: 'agent' });
    await sleep(800);
    await phone!.press('1');
    const done = await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 20000, mark);
    expect(done).toMatchObject({ state: 'COMPLETED', outcome: 'completed' });
    expect(request(svc, id)).toMatchObject({ attempts: 1, snoozes: 1 });
    expect(transitions(svc, id)).toEqual(['created', 'prospect-free', 'due', 'ring-agent', 'agent-no-answer', 'agent-returned', 'agent-accepted', 'prospect-answered']);
    // The agent talks to the prospect on the call they made; hanging up ends it.
    await phone!.hangup();
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.conversation_ended', 10000, mark);
    await svc.waitLog((l) => l.event === 'return.ended', 10000, mark);
  }, 90000);

  it('nothing pending: calling 9000 says "no callbacks" and hangs up', async () => {
    svc = await new ServiceProcess(FAST_RECALL).start();
    const mark = svc.logs.length;
    await phone!.dial('9000');
    await phone!.waitEvent('the service number answering', (e) => e.type === 'CALL_ESTABLISHED', 10000);
    expect(await svc.waitLog((l) => l.event === 'return.asked', 10000, mark)).toMatchObject({ agent: DEVICE, pending: 0 });
    expect(await svc.waitLog((l) => l.event === 'return.ended', 10000, mark)).toMatchObject({ offered: 0, reason: 'list done' });
    await phone!.waitEvent('the app hanging up', (e) => e.type === 'CALL_CLOSED', 10000);
  }, 40000);
});

describePbx('a key sent as SIP INFO (SIPp as agent 1001)', () => {
  let ari: TestAri;
  let svc: ServiceProcess | undefined;

  beforeAll(async () => {
    ari = await TestAri.connect();
    await register(AGENT.user, AGENT.password, PORTS.agentUas.sip);
  });

  afterAll(async () => {
    await svc?.stop();
    await stopAllSipp();
    simLine('NOT_INUSE');
    await unregister(AGENT.user, AGENT.password, PORTS.agentUas.sip);
    await ari?.close();
  });

  it('1 as application/dtmf-relay INFO in the recall menu connects, like an RFC 4733 event', async () => {
    svc = await new ServiceProcess(FAST_RECALL).start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995', DEVICE);
    const agent = await startSipp({ scenario: 'uas-agent-info-key1.xml', port: PORTS.agentUas.sip, mediaPort: PORTS.agentUas.media, remote: null, pauseMs: 1500, timeoutMs: 60000 }).ready();
    simLine('NOT_INUSE');
    const key = await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_key', 30000);
    expect(key).toMatchObject({ key: '1' });
    const done = await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 20000);
    expect(done).toMatchObject({ state: 'COMPLETED' });
    await ari.client.channels.hangup({ channelId: `ccb-${id}-1` }).catch(() => undefined);
    const uas = expectSippOk(await agent.done());
    expect(uas.messages.some((m) => m.direction === 'sent' && m.method === 'INFO')).toBe(true);
    expect(uas.messages.some((m) => m.direction === 'received' && m.status === 200 && m.cseqMethod === 'INFO')).toBe(true);
  }, 90000);
});
