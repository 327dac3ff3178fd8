import {
  DEFAULT_AGENT_DEVICES,
  DEFAULT_PROSPECT_DENY,
  DialPolicy,
  DialPolicyError,
  checkAgentDevice,
  checkDial,
  checkDialPolicy,
  checkProspect,
  dialPolicyWarnings,
} from '../../src/core/dial-policy';
import { type CallbackRequest } from '../../src/core/policy';
import { defaultPolicyConfig } from '../../testkit/policy';
import { SqliteStore } from '../../src/store/sqlite';
import { loadConfig } from '../../src/config/load';
import { securityWarnings } from '../../src/config/security';
import { engineWorld } from '../../testkit/engine';

const DEFAULTS: DialPolicy = { agentDevices: [...DEFAULT_AGENT_DEVICES], prospectAllow: [], prospectDeny: [...DEFAULT_PROSPECT_DENY] };

describe('dial policy: agent devices', () => {
  const p: DialPolicy = { ...DEFAULTS, agentDevices: ['PJSIP/*', 'PJSIP/10*', 'Local/*@agents', 'SIP/agent-a'] };
  it.each([
    ['PJSIP/1001', true],
    ['SIP/agent-a', true],
    ['SIP/agent-b', false],
    ['Local/1001@agents', true],
    ['Local/1001@from-trunk', false],
    ['Local/0900123@agents', true],
    ['Local/1001', false],
    ['IAX2/peer', false],
    ['DAHDI/g1/0900', false],
    ['PJSIP/1001&PJSIP/1002', false],
    ['PJSIP/1001,t', false],
    ['Local/1001@agents/n', false],
  ])('%s → %s', (device, ok) => {
    expect(checkAgentDevice(p, device).ok).toBe(ok);
  });

  it('a Local/ pattern without a named context is a configuration error, so is @ on other technologies', async () => {
    expect(checkDialPolicy({ ...DEFAULTS, agentDevices: ['Local/*'] })).toEqual([expect.stringContaining('dial.agentDevices[0]')]);
    expect(checkDialPolicy({ ...DEFAULTS, agentDevices: ['Local/*@*'] })).toHaveLength(1);
    expect(checkDialPolicy({ ...DEFAULTS, agentDevices: ['PJSIP/*@x'] })).toHaveLength(1);
    expect(checkDialPolicy({ ...DEFAULTS, agentDevices: ['PJSIP/1001&IAX2/x'] })).toHaveLength(1);
    expect(checkDialPolicy(DEFAULTS)).toEqual([]);
  });

  it('the defaults ring PJSIP and SIP devices only', async () => {
    expect(checkAgentDevice(DEFAULTS, 'PJSIP/agent-a').ok).toBe(true);
    expect(checkAgentDevice(DEFAULTS, 'Local/123@anything').ok).toBe(false);
    expect(checkAgentDevice(DEFAULTS, 'IAX2/trunk').ok).toBe(false);
  });
});

describe('dial policy: prospect numbers', () => {
  it.each([
    ['2001', true],
    ['+4930123456', true],
    ['0900123456', false],
    ['+49900123456', false],
    ['0049900123456', false],
    ['19005551234', false],
    ['+19005551234', false],
    ['0019005551234', false],
    ['+8816123456', false],
    ['+44909123456', false],
    ['030123456', true],
  ])('defaults: %s → %s', (number, ok) => {
    expect(checkProspect(DEFAULTS, number).ok).toBe(ok);
  });

  it('an allow list admits only its prefixes; deny wins over allow', async () => {
    const p: DialPolicy = { agentDevices: ['PJSIP/*'], prospectAllow: ['+4930', '2'], prospectDeny: ['+493099'] };
    expect(checkProspect(p, '004930123').ok).toBe(true);
    expect(checkProspect(p, '2001').ok).toBe(true);
    expect(checkProspect(p, '+4940123').ok).toBe(false);
    const denied = checkProspect(p, '+4930991');
    expect(denied).toEqual({ ok: false, reason: expect.stringContaining('dial.prospectDeny') });
  });

  it('malformed prefixes are configuration errors naming the key', async () => {
    expect(checkDialPolicy({ ...DEFAULTS, prospectDeny: ['09x'] })).toEqual([expect.stringContaining('dial.prospectDeny[0]')]);
    expect(checkDialPolicy({ ...DEFAULTS, prospectAllow: [''] })).toEqual([expect.stringContaining('dial.prospectAllow[0]')]);
  });

  it('checkDial refuses on either side', async () => {
    expect(checkDial(DEFAULTS, 'PJSIP/1001', '2001').ok).toBe(true);
    expect(checkDial(DEFAULTS, 'IAX2/x', '2001').ok).toBe(false);
    expect(checkDial(DEFAULTS, 'PJSIP/1001', '0900111').ok).toBe(false);
  });

  it('warnings for open settings', async () => {
    expect(dialPolicyWarnings(DEFAULTS)).toEqual([expect.stringContaining('dial.prospectAllow')]);
    expect(dialPolicyWarnings({ agentDevices: ['IAX2/*', 'Local/*@x'], prospectAllow: ['2'], prospectDeny: [] })).toHaveLength(3);
  });
});

describe('configuration: dial.* and offer.maxPendingTotal', () => {
  const base = { 'ari.password': 'pw-secret' };
  it('defaults load; a Local/ pattern without context is refused naming the key', async () => {
    const c = loadConfig({ env: {}, overrides: base });
    expect(c.dial).toEqual({ ...DEFAULTS, maxPendingTotal: 1000 });
    expect(() => loadConfig({ env: {}, overrides: { ...base, 'dial.agentDevices': 'Local/*' } })).toThrow(/dial\.agentDevices\[0\].*context/);
    expect(() => loadConfig({ env: {}, overrides: { ...base, 'dial.prospectDeny': '["abc"]' } })).toThrow(/dial\.prospectDeny\[0\]/);
    expect(() => loadConfig({ env: {}, overrides: { ...base, 'agi.allowedPeers': '["not an ip"]' } })).toThrow(/agi\.allowedPeers/);
  });

  it('config check warns about an exposed FastAGI server without secret or allowlist', async () => {
    const c = loadConfig({ env: {}, overrides: { ...base, 'agi.enabled': 'true', 'agi.bind': '0.0.0.0' } });
    const w = securityWarnings(c);
    expect(w).toEqual(expect.arrayContaining([expect.stringMatching(/^agi\.bind: .*agi\.secret is empty/), expect.stringMatching(/^agi\.allowedPeers/)]));
    const safe = loadConfig({ env: {}, overrides: { ...base, 'agi.enabled': 'true' } });
    expect(securityWarnings(safe).filter((x) => x.startsWith('agi'))).toEqual([]);
  });
});

describe('engine: the dial policy at the opt-in and before every call', () => {
  const T0 = Date.UTC(2026, 10, 25, 9, 0, 0); // Wednesday, 10:00 in Berlin
  const input = (agent: string, prospect: string) => ({ agent, agentCallerId: { name: 'A', number: '1' }, prospect, language: 'en', channelId: 'c' });
  const make = (store: SqliteStore<CallbackRequest>, now: { t: number }, dialPolicy?: DialPolicy, maxPendingTotal?: number) =>
    engineWorld({ store, clock: () => now.t, prospectDevice: () => undefined, dialPolicy, maxPendingTotal, started: false, pbxUp: false });

  it('refuses an opt-in for a device or number the policy forbids, and stores nothing', async () => {
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const { engine } = await make(store, { t: T0 }, DEFAULTS);
    await expect(engine.optIn(input('Local/0900123@from-internal', '2001'))).rejects.toThrow(DialPolicyError);
    await expect(engine.optIn(input('IAX2/trunk', '2001'))).rejects.toThrow(DialPolicyError);
    await expect(engine.optIn(input('PJSIP/1001', '+49900123456'))).rejects.toThrow(/prospectDeny/);
    expect(await store.list()).toEqual([]);
    expect((await engine.optIn(input('PJSIP/1001', '2001'))).result).toBe('created');
  });

  it('a global cap over all agents: the next new request is full, a refresh still works', async () => {
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const { engine } = await make(store, { t: T0 }, DEFAULTS, 2);
    expect((await engine.optIn(input('PJSIP/1001', '2001'))).result).toBe('created');
    expect((await engine.optIn(input('PJSIP/1002', '2002'))).result).toBe('created');
    expect(await engine.optIn(input('PJSIP/1003', '2003'))).toEqual({ result: 'full', pending: 2 });
    expect((await engine.optIn(input('PJSIP/1001', '2001'))).result).toBe('refreshed');
  });

  it('a request stored under a looser configuration is never rung: re-checked before the originate, then cancelled', async () => {
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const now = { t: T0 };
    const { engine: loose } = await make(store, now);
    const r = await loose.optIn(input('IAX2/trunk', '+4930123456'));
    if (!('requestId' in r)) throw new Error(`opt-in ${r.result}`);
    const { engine: strict, dispatched } = await make(store, now, DEFAULTS);
    strict.setPbxUp(true);
    await strict.start();
    now.t += defaultPolicyConfig.firstProbeDelayMs + 1000;
    await strict.tick();
    // The cancel is a decision of its own, queued after the tick's: wait for it (bounded by turns, not time).
    for (let i = 0; i < 100 && (await store.get(r.requestId))!.request.state !== 'CANCELLED'; i++) await new Promise((resolve) => setImmediate(resolve));
    strict.stop();
    expect(dispatched.map((d) => d.action.type)).not.toContain('ringAgent');
    const after = (await store.get(r.requestId))!.request;
    expect(after.state).toBe('CANCELLED');
    expect((await store.events(r.requestId)).map((e) => e.reason).join('\n')).toContain('dial-policy');
  });
});
