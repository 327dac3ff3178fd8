/**
 * The FastAGI entry, end to end on the real Asterisk sandbox: extension 2996 of the demo dialplan is an
 * always-busy line whose routine is considerate-callback-agi, so the busy call reaches the service as
 * AGI(agi://127.0.0.1:<port>/offer,2996,<agent>,17) instead of Stasis(). Same offer, same store.
 * A team profile set in the dialplan (CC_PROFILE, the routine's fifth AGI argument) chooses that profile's rules.
 * The agents' feature codes (*82 pending, *73 pause) reach the same flows as AGI(…/pending|pause,<agent>) when the
 * global CC_ENTRY is agi.
 */
import type { CallbackRequest } from '../../src/core/policy';
import { SqliteStore } from '../../src/store/sqlite';
import { ServiceProcess, TestAri, describePbx, expectOnlyWaitingRequest, waitFor } from './harness';

const AGI_SECRET = 'it-agi-secret-4711';

describePbx('offer over FastAGI (real Asterisk)', () => {
  let svc: ServiceProcess;
  let phone: TestAri;

  beforeAll(async () => {
    // Port 0: a free port, announced in the log; the dialplan reads it from the global CC_AGI_URL.
    // The door: the dialplan passes the shared secret from the global CC_AGI_SECRET.
    svc = await new ServiceProcess({
      offer: { keyTimeout: '2s' },
      agi: { enabled: true, port: 0, secret: AGI_SECRET },
      profiles: { berlin: { grace: '7s', snooze: '3m', language: 'de' } },
    }).start();
    const listening = await svc.waitLog((l) => l.event === 'agi.listening');
    phone = await TestAri.connect();
    await phone.client.asterisk.setGlobalVar({ variable: 'CC_AGI_URL', value: `agi://127.0.0.1:${String(listening.port)}` });
    await phone.client.asterisk.setGlobalVar({ variable: 'CC_AGI_SECRET', value: AGI_SECRET });
  });

  afterAll(async () => {
    await phone?.client.asterisk.setGlobalVar({ variable: 'CC_AGI_URL', value: '' }).catch(() => undefined);
    await phone?.client.asterisk.setGlobalVar({ variable: 'CC_AGI_SECRET', value: '' }).catch(() => undefined);
    await phone?.close();
    await svc?.stop();
  });

  const offerLine = (from: number) => svc.waitLog((l) => l.event === 'offer.started', 15000, from);

  it('AGI() → offer → # stores exactly one request; the call ends', async () => {
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2996');
    await phone.answered(agentLeg);
    const offered = await offerLine(mark);
    expect(offered).toMatchObject({ entry: 'agi', agent: 'PJSIP/1001', prospect: '2996', hangupCause: 17, language: 'en' });
    // The channel id is the AGI channel's uniqueid (here the Local ;2 half of the test's originated call).
    expect(String(offered.channelId)).toBe(`${agentLeg};2`);
    await phone.press(agentLeg, '#');
    const requested = await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark);
    expect(requested).toMatchObject({ entry: 'agi', channelId: offered.channelId });
    const ended = await svc.waitLog((l) => l.event === 'offer.ended', 20000, mark);
    expect(ended).toMatchObject({ outcome: 'requested', key: '#', requestId: requested.requestId });
    await phone.gone(agentLeg);
    expectOnlyWaitingRequest(svc, requested.requestId, '2996');
  });

  it('AGI() → no key → timeout, nothing stored, the call ends', async () => {
    const before = svc.list().length;
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2996', { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
    await phone.answered(agentLeg);
    await offerLine(mark);
    const ended = await svc.waitLog((l) => l.event === 'offer.ended', 30000, mark);
    expect(ended).toMatchObject({ outcome: 'timeout', entry: 'agi', agent: 'PJSIP/1002' });
    await phone.gone(agentLeg);
    expect(svc.list()).toHaveLength(before);
  });

  it('AGI() → 1 → declined, nothing stored', async () => {
    const before = svc.list().length;
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2996', { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
    await phone.answered(agentLeg);
    await offerLine(mark);
    await phone.press(agentLeg, '1');
    const ended = await svc.waitLog((l) => l.event === 'offer.ended', 20000, mark);
    expect(ended).toMatchObject({ outcome: 'declined', key: '1' });
    await phone.gone(agentLeg);
    expect(svc.list()).toHaveLength(before);
  });

  it('the agent hangs up during the offer → nothing stored, the session ends as hangup', async () => {
    const before = svc.list().length;
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2996', { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
    await phone.answered(agentLeg);
    await offerLine(mark);
    await phone.hangup(agentLeg);
    const ended = await svc.waitLog((l) => l.event === 'offer.ended', 10000, mark);
    expect(ended.outcome).toBe('hangup');
    expect(svc.list()).toHaveLength(before);
    expect(svc.running).toBe(true);
  });

  it('a dialplan with the wrong secret is refused (logged, nothing stored), the call goes on to the busy tone', async () => {
    const before = svc.list().length;
    const mark = svc.logs.length;
    await phone.client.asterisk.setGlobalVar({ variable: 'CC_AGI_SECRET', value: 'wrong-secret' });
    try {
      // Refused before anything answers the call: the dialplan goes on to Busy().
      const agentLeg = await phone.agentDials('2996', { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
      const refused = await svc.waitLog((l) => l.event === 'agi.refused', 15000, mark);
      expect(refused.reason).toBe('bad-secret');
      await phone.gone(agentLeg);
      expect(svc.find((l) => l.event === 'offer.started', mark)).toEqual([]);
      expect(svc.list()).toHaveLength(before);
      expect(JSON.stringify(svc.logs.slice(mark))).not.toContain('wrong-secret');
    } finally {
      await phone.client.asterisk.setGlobalVar({ variable: 'CC_AGI_SECRET', value: AGI_SECRET });
    }
  });
  it('CC_PROFILE over FastAGI chooses that profile: its language for the offer, its name and snapshot stored with the request', async () => {
    const mark = svc.logs.length;
    const agentLeg = await phone.agentDials('2996', { agent: 'PJSIP/1003', callerNumber: '1003', callerName: 'Agent 1003', profile: 'berlin' });
    await phone.answered(agentLeg);
    const offered = await offerLine(mark);
    expect(offered).toMatchObject({ entry: 'agi', agent: 'PJSIP/1003', prospect: '2996', language: 'de' });
    await phone.press(agentLeg, '#');
    const requested = await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark);
    expect(requested).toMatchObject({ entry: 'agi' });
    await svc.waitLog((l) => l.event === 'offer.ended', 20000, mark);
    await phone.gone(agentLeg);
    expect(svc.find((l) => l.event === 'profile.unknown', mark)).toEqual([]);
    const id = String(requested.requestId);
    expect(svc.list().find((r) => r.id === id)).toMatchObject({ profile: 'berlin', language: 'de', policy: expect.stringContaining('grace 7s') });
    // The store keeps the profile's name and its snapshot (not the default grace of the configuration).
    const store = SqliteStore.open<CallbackRequest>(svc.storePath);
    try {
      const stored = (await store.get(id))!.request;
      expect(stored.profile).toBe('berlin');
      expect(stored.policy).toMatchObject({ graceMs: 7000, snoozeMs: 180000 });
    } finally {
      await store.close();
    }
  });

  describe('the feature codes over FastAGI (global CC_ENTRY=agi)', () => {
    beforeAll(async () => {
      await phone.client.asterisk.setGlobalVar({ variable: 'CC_ENTRY', value: 'agi' });
    });
    afterAll(async () => {
      await phone?.client.asterisk.setGlobalVar({ variable: 'CC_ENTRY', value: '' }).catch(() => undefined);
    });

    it('*73 pauses, the lamp turns on, *73 again resumes it', async () => {
      const agent = { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' };
      await phone.client.deviceStates.update({ deviceName: 'Stasis:ccp-1002', deviceState: 'NOT_INUSE' });
      let mark = svc.logs.length;
      let leg = await phone.agentDials('*73', agent);
      const paused = await svc.waitLog((l) => l.event === 'agent.paused', 15000, mark);
      expect(paused).toMatchObject({ agent: 'PJSIP/1002', by: 'phone', until: null });
      await phone.gone(leg);
      const lamp = async () => (await phone.client.deviceStates.get({ deviceName: 'Stasis:ccp-1002' })).state;
      await waitFor('the pause lamp on', async () => (await lamp()) === 'INUSE' || undefined, 10000);

      mark = svc.logs.length;
      leg = await phone.agentDials('*73', agent);
      const resumed = await svc.waitLog((l) => l.event === 'agent.resumed', 15000, mark);
      expect(resumed).toMatchObject({ agent: 'PJSIP/1002', by: 'phone', wasPaused: true });
      await phone.gone(leg);
      await waitFor('the pause lamp off', async () => (await lamp()) === 'NOT_INUSE' || undefined, 10000);
      expect(svc.find((l) => l.event === 'agi.refused', mark)).toEqual([]);
    });

    it('*82 tells the agent their pending callbacks; 1 cancels the next', async () => {
      const agent = { agent: 'PJSIP/1007', callerNumber: '1007', callerName: 'Agent 1007' };
      let mark = svc.logs.length;
      const offerLeg = await phone.agentDials('2996', agent);
      await phone.answered(offerLeg);
      await offerLine(mark);
      await phone.press(offerLeg, '#');
      const requested = await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark);
      await phone.gone(offerLeg);
      const waiting = svc.list().filter((r) => r.agent === 'PJSIP/1007' && r.state === 'WAITING');

      mark = svc.logs.length;
      const leg = await phone.agentDials('*82', agent);
      await phone.answered(leg);
      const asked = await svc.waitLog((l) => l.event === 'pending.asked', 10000, mark);
      expect(asked).toMatchObject({ agent: 'PJSIP/1007', pending: 1, channelId: `${leg};2` });
      const next = String(asked.next);
      expect(waiting.map((r) => String(r.id))).toEqual([String(requested.requestId)]);
      expect(next).toBe(String(requested.requestId));
      await phone.press(leg, '1');
      const cancelled = await svc.waitLog((l) => l.event === 'pending.cancelled', 10000, mark);
      expect(cancelled).toMatchObject({ requestId: next, key: '1' });
      await phone.gone(leg);
      expect(svc.list().find((r) => String(r.id) === next)).toMatchObject({ state: 'CANCELLED' });
    });

    it('a wrong secret is refused for a feature code too: nothing paused, the call ends', async () => {
      const mark = svc.logs.length;
      await phone.client.asterisk.setGlobalVar({ variable: 'CC_AGI_SECRET', value: 'wrong-secret' });
      try {
        const leg = await phone.agentDials('*73', { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' });
        const refused = await svc.waitLog((l) => l.event === 'agi.refused', 15000, mark);
        expect(refused).toMatchObject({ reason: 'bad-secret', script: 'pause' });
        await phone.gone(leg);
        expect(svc.find((l) => l.event === 'agent.paused', mark)).toEqual([]);
      } finally {
        await phone.client.asterisk.setGlobalVar({ variable: 'CC_AGI_SECRET', value: AGI_SECRET });
      }
    });
  });
});
