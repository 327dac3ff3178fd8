/**
 * Issue 22, parts 2 and 4 on the real Asterisk sandbox:
 * - the CRM look-up (testkit/fake-crm.ts) with a CRM that answers, one that is slow (5 s) and one that is dead:
 *   the offer and the recall are not held up (the delays from the busy signal to the offer prompt and from due to
 *   the agent's phone ringing are printed for each), and a real SIP phone (baresip as agent 1001) shows the name
 *   in the recall's From display name when the CRM answered, the number when it was slow or dead; a CRM dead at
 *   the opt-in and back before the line frees is asked again, and the phone shows the name;
 * - two team profiles chosen by the dialplan (CC_PROFILE) on the same PBX: two agents, different grace and
 *   language; each request follows its own profile.
 */
import { Baresip, baresipAvailable, realPhonePorts } from '../../testkit/baresip';
import { FakeCrm, type CrmMode } from '../../testkit/fake-crm';
import { FAST_RECALL, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep } from './harness';
import { PORTS, unregister } from './sipp';

const AGENT = { user: '1001', password: 'agent1001' };
const DEVICE = 'PJSIP/1001';
const SECRET = 'crm-test-secret';

describePbx('the prospect\'s name from the CRM and team profiles (real Asterisk)', () => {
  let ari: TestAri;
  let svc: ServiceProcess | undefined;
  let crm: FakeCrm | undefined;
  let phone: Baresip | undefined;
  const figures: string[] = [];

  beforeAll(async () => {
    ari = await TestAri.connect();
    await ari.hangupStale('cc-test-phone');
  });

  afterEach(async () => {
    await svc?.stop();
    svc = undefined;
    await crm?.stop();
    crm = undefined;
    await phone?.stop();
    phone = undefined;
    simLine('NOT_INUSE');
    await ari.hangupStale('cc-test-phone');
  });

  afterAll(async () => {
    await ari?.close();
    await unregister(AGENT.user, AGENT.password, PORTS.agentUas.sip).catch(() => undefined);
    if (figures.length) console.log(`look-up delays (CRM normal vs slow vs dead):\n${figures.join('\n')}`);
  });

  it.each<[CrmMode, string]>([
    ['normal', 'CB Eva Berg'],
    ['slow', 'Callback: 2995'],
    ['dead', 'Callback: 2995'],
  ])('CRM %s: the offer and the recall are not held up; the phone shows %j', async (mode, label) => {
    if (!baresipAvailable()) throw new Error('baresip is not installed (Debian: apt-get install baresip-core)');
    crm = new FakeCrm({ mode, secret: SECRET, slowMs: 5000 });
    const url = await crm.start();
    phone = await Baresip.start({ ...AGENT, slot: realPhonePorts().agent });
    svc = await new ServiceProcess({ ...FAST_RECALL, lookup: { url, secret: SECRET, timeout: '1s' } }).start();

    // The busy signal → the offer prompt.
    simLine('INUSE');
    const mark = svc.logs.length;
    const dialled = Date.now();
    const leg = await ari.agentDials('2995', { agent: DEVICE });
    await ari.answered(leg);
    const started = await svc.waitLog((l) => l.event === 'offer.started', 15000, mark);
    const busyToOffer = Date.parse(String(started.timestamp)) - dialled;
    await ari.press(leg, '#');
    const opted = await svc.waitLog((l) => l.event === 'offer.opted_in', 10000, mark);
    const id = String(opted.requestId);
    await ari.gone(leg);
    // The look-up went out, signed, after the opt-in.
    await svc.waitLog((l) => l.event === (mode === 'normal' ? 'lookup.stored' : 'lookup.failed'), 15000, mark);
    expect(crm.requests[0]).toMatchObject({ number: '2995' });
    if (mode !== 'dead') expect(crm.requests[0].signed).toBe(true);
    const stored = svc.list().find((r) => r.id === id) as Record<string, unknown>;
    expect(stored.contact).toEqual(mode === 'normal' ? { name: 'Eva Berg', company: 'Nordlicht AG' } : null);

    // The line frees; after the grace the agent's phone rings with the label.
    simLine('NOT_INUSE');
    const due = await svc.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'due', 20000);
    const ring = await phone.waitEvent('the recall ringing', (e) => e.type === 'CALL_INCOMING', 20000);
    const dueToRing = Date.now() - Date.parse(String(due.timestamp));
    expect(ring.peerdisplayname).toBe(label);
    expect(ring.peeruri).toMatch(/^sip:9000@/);
    figures.push(`  CRM ${mode.padEnd(6)}: busy → offer prompt ${busyToOffer} ms; due → agent's phone ringing ${dueToRing} ms; label "${String(ring.peerdisplayname)}"`);

    await phone.accept();
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(500);
    await phone.press('3');
    const done = await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 15000);
    expect(done).toMatchObject({ state: 'CANCELLED' });
    // The webhook-facing and page-facing shape carries the name when it was found.
    if (mode === 'normal') expect(svc.list().find((r) => r.id === id)).toMatchObject({ contact: { name: 'Eva Berg' } });
  }, 120000);

  it('CRM dead at the opt-in and back before the line frees: asked again, the phone shows the name', async () => {
    if (!baresipAvailable()) throw new Error('baresip is not installed (Debian: apt-get install baresip-core)');
    crm = new FakeCrm({ mode: 'dead', secret: SECRET });
    const url = await crm.start();
    phone = await Baresip.start({ ...AGENT, slot: realPhonePorts().agent });
    svc = await new ServiceProcess({ ...FAST_RECALL, lookup: { url, secret: SECRET, timeout: '1s' } }).start();

    simLine('INUSE');
    const mark = svc.logs.length;
    const leg = await ari.agentDials('2995', { agent: DEVICE });
    await ari.answered(leg);
    await svc.waitLog((l) => l.event === 'offer.started', 15000, mark);
    await ari.press(leg, '#');
    const id = String((await svc.waitLog((l) => l.event === 'offer.opted_in', 10000, mark)).requestId);
    await ari.gone(leg);
    await svc.waitLog((l) => l.event === 'lookup.failed', 15000, mark);
    expect((svc.list().find((r) => r.id === id) as Record<string, unknown>).contact).toBeNull();

    // The CRM is back; the line frees: the engine asks again and stores the name before the grace is over.
    crm.mode = 'normal';
    simLine('NOT_INUSE');
    const stored = await svc.waitLog((l) => l.requestId === id && l.event === 'lookup.stored', 15000, mark);
    expect(stored).toMatchObject({ name: 'Eva Berg' });
    expect(crm.requests.map((r) => r.mode)).toEqual(['dead', 'normal']);
    const ring = await phone.waitEvent('the recall ringing', (e) => e.type === 'CALL_INCOMING', 20000);
    expect(ring.peerdisplayname).toBe('CB Eva Berg');
    await phone.accept();
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(500);
    await phone.press('3');
    expect(await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 15000)).toMatchObject({ state: 'CANCELLED' });
  }, 120000);

  it('two profiles chosen by the dialplan: each request keeps its own grace and language', async () => {
    const A = 'Local/1001@cc-test-phone';
    const B = 'Local/1002@cc-test-phone';
    const testPhone = await TestPhone.attach(ari);
    svc = await new ServiceProcess({
      ...FAST_RECALL,
      profiles: {
        berlin: { grace: '2s', language: 'de' },
        newyork: { grace: '9s', language: 'en', snooze: '1m' },
      },
    }).start();
    simLine('INUSE');
    const optInAs = async (agent: string, profile: string) => {
      const mark = svc!.logs.length;
      const leg = await ari.agentDials('2995', { agent, profile });
      await ari.answered(leg);
      const started = await svc!.waitLog((l) => l.event === 'offer.started', 15000, mark);
      await ari.press(leg, '#');
      const line = await svc!.waitLog((l) => l.event === 'offer.opted_in', 10000, mark);
      await ari.gone(leg);
      return { id: String(line.requestId), language: started.language };
    };
    const a = await optInAs(A, 'berlin');
    const b = await optInAs(B, 'newyork');
    // The berlin call's prompts were German (the profile's language), the newyork call's English.
    expect([a.language, b.language]).toEqual(['de', 'en']);
    const rows = svc.list();
    expect(rows.find((r) => r.id === a.id)).toMatchObject({ profile: 'berlin', language: 'de', policy: expect.stringContaining('grace 2s') });
    expect(rows.find((r) => r.id === b.id)).toMatchObject({ profile: 'newyork', language: 'en', policy: expect.stringContaining('grace 9s, back-off 2s, snooze 1m') });
    // An unknown profile: a clear log line, the default policy (the offer goes on).
    const mark = svc.logs.length;
    const leg = await ari.agentDials('2995', { agent: 'Local/1003@cc-test-phone', profile: 'paris' });
    await ari.answered(leg);
    const unknown = await svc.waitLog((l) => l.event === 'profile.unknown', 15000, mark);
    expect(unknown).toMatchObject({ profile: '"paris"', reason: expect.stringContaining('unknown profile "paris" (known: berlin, newyork)') });
    await ari.hangup(leg);

    // The line frees: each request's grace is its profile's.
    const ringsBefore = ari.events.length;
    simLine('NOT_INUSE');
    const free = (id: string) => svc!.waitLog((l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 10000);
    const [fa, fb] = [await free(a.id), await free(b.id)];
    const graceOf = (l: Record<string, unknown>) => Date.parse(String(l.wakeAt)) - Date.parse(String(l.timestamp));
    expect(Math.round(graceOf(fa) / 1000)).toBe(2);
    expect(Math.round(graceOf(fb) / 1000)).toBe(9);

    // Berlin's agent is rung first, in German; cancel. Then New York's, in English, after its own grace.
    const ringA = await testPhone.nextRing(ringsBefore, 20000);
    expect(((ringA.args as string[]) ?? [])[1]).toBe('1001');
    expect(TestPhone.caller(ringA)).toEqual({ name: 'Rückruf: 2995', number: '9000' });
    await testPhone.answer(ringA);
    await svc.waitLog((l) => l.requestId === a.id && l.event === 'recall.agent_answered', 10000);
    await sleep(800);
    await ari.press(TestPhone.id(ringA), '3');
    await svc.waitLog((l) => l.requestId === a.id && l.event === 'request.finished', 15000);
    const afterA = ari.events.length;
    const ringB = await testPhone.nextRing(afterA, 30000);
    expect(((ringB.args as string[]) ?? [])[1]).toBe('1002');
    expect(TestPhone.caller(ringB)).toEqual({ name: 'Callback: 2995', number: '9000' });
    const dueB = svc.logs.find((l) => l.requestId === b.id && l.event === 'request.transition' && l.transition === 'due');
    expect(Date.parse(String(dueB?.timestamp))).toBeGreaterThanOrEqual(Date.parse(String(fb.wakeAt)));
    await testPhone.answer(ringB);
    await svc.waitLog((l) => l.requestId === b.id && l.event === 'recall.agent_answered', 10000);
    await sleep(800);
    await ari.press(TestPhone.id(ringB), '3');
    await svc.waitLog((l) => l.requestId === b.id && l.event === 'request.finished', 15000);
  }, 120000);
});
