/**
 * Team profiles: resolution is pure (src/core/policy/profiles.ts); the engine stores the profile and its resolved
 * policy with the request, and a later configuration does not change a stored promise.
 */
import { PassThrough } from 'node:stream';
import { chooseProfile, policyFor, resolveProfile, type CallbackRequest, type Profiles } from '../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../testkit/policy';
import { resolveConfig } from '../../src/config/load';
import { engineWorld } from '../../testkit/engine';
import { createLogger } from '../../src/logging/log';
import { SqliteStore } from '../../src/store/sqlite';
import { parseOfferArgs } from '../../src/core/offer';
import { defaultNumberRules } from '../../src/core/validate';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MINUTE, SECOND, Sim, T0 } from './policy/helpers';

const base = makePolicyConfig({ ...defaultPolicyConfig, graceMs: 300_000 });
const profiles: Profiles = {
  berlin: { graceMs: 30_000, snoozeMs: 60_000, language: 'de', labelPrefix: { de: ['Rückruf: ', 'RR '] } },
  newyork: { graceMs: 120_000, callingHours: { timeZone: 'America/New_York' }, afterHours: 'decline', backoffMs: [5_000] },
};

describe('profile resolution (pure)', () => {
  it('no name: the default policy, no problem; its snapshot is the configured promise', () => {
    const r = resolveProfile(base, profiles, undefined);
    expect(r).toMatchObject({ profile: null, policy: base });
    expect(r.problem).toBeUndefined();
    expect(r.snapshot.graceMs).toBe(300_000);
    expect(resolveProfile(base, profiles, '').profile).toBeNull();
  });

  it('a known name overrides only its own keys; the rest is the configured policy', () => {
    const r = resolveProfile(base, profiles, 'berlin');
    expect(r.profile).toBe('berlin');
    expect(r.language).toBe('de');
    expect(r.policy.graceMs).toBe(30_000);
    expect(r.policy.snoozeMs).toBe(60_000);
    expect(r.policy.backoffMs).toEqual(base.backoffMs);
    expect(r.policy.recallLabel.prefixes).toEqual({ de: ['Rückruf: ', 'RR '] });
    expect(r.policy.recallLabel.width).toBe(base.recallLabel.width);
    const ny = resolveProfile(base, profiles, 'newyork');
    // Calling hours: only the zone changes, the windows stay the configured ones.
    expect(ny.policy.callingHours).toEqual({ ...base.callingHours, timeZone: 'America/New_York' });
    expect(ny.policy.afterHours).toBe('decline');
    expect(ny.snapshot).toMatchObject({ graceMs: 120_000, backoffMs: [5_000], afterHours: 'decline' });
  });

  it('an unknown name: the default policy and a problem naming it and the known ones', () => {
    const r = resolveProfile(base, profiles, 'paris');
    expect(r.profile).toBeNull();
    expect(r.policy).toBe(base);
    expect(r.problem).toBe('unknown profile "paris" (known: berlin, newyork): the default policy applies');
  });

  it('a malformed name (the dialplan passed junk) is refused the same way; inherited object keys are not profiles', () => {
    expect(resolveProfile(base, profiles, 'ber lin"&x').problem).toMatch(/^malformed profile name/);
    expect(resolveProfile(base, profiles, 'x'.repeat(33)).problem).toMatch(/^malformed profile name/);
    expect(chooseProfile(profiles, 'constructor')).toMatchObject({ profile: null, problem: expect.stringMatching(/unknown profile "constructor"/) });
    expect(chooseProfile(profiles, '__proto__').profile).toBeNull();
  });

  it('the snapshot is a copy: a later change of the profile table does not reach it', () => {
    const table: Record<string, { graceMs?: number }> = { t: { graceMs: 1_000 } };
    const r = resolveProfile(base, table, 't');
    table.t.graceMs = 9_000;
    expect(r.snapshot.graceMs).toBe(1_000);
  });

  it('a snapshot is taken once per policy and profile, frozen: no request can change what another keeps', () => {
    const a = resolveProfile(base, profiles, undefined).snapshot;
    expect(resolveProfile(base, profiles, 'nobody').snapshot).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.callingHours)).toBe(true);
    expect(() => {
      (a as { graceMs: number }).graceMs = 1;
    }).toThrow(TypeError);
    const berlin = resolveProfile(base, profiles, 'berlin').snapshot;
    expect(resolveProfile(base, profiles, 'berlin').snapshot).toBe(berlin);
    expect(berlin).not.toBe(a);
    expect(berlin.graceMs).toBe(30_000);
    // Another configured policy (another configuration object): its own snapshot.
    const other = makePolicyConfig({ ...defaultPolicyConfig, graceMs: 123_000 });
    expect(resolveProfile(other, profiles, undefined).snapshot.graceMs).toBe(123_000);
  });

  it('policyFor: a stored snapshot wins over the configured policy; operational keys follow the configuration', () => {
    const snap = resolveProfile(base, profiles, 'berlin').snapshot;
    const later = makePolicyConfig({ ...defaultPolicyConfig, graceMs: 999_000, agentRingTimeoutMs: 7_000 });
    const p = policyFor(later, { policy: snap });
    expect(p.graceMs).toBe(30_000);
    expect(p.agentRingTimeoutMs).toBe(7_000);
    // A request stored before profiles existed follows the configuration.
    expect(policyFor(later, {})).toBe(later);
  });

  it("the offer's fifth argument is the profile (empty: none; cut at 64 characters)", () => {
    expect(parseOfferArgs(['offer', '2001', 'PJSIP/1001', '17', 'berlin'], defaultNumberRules)).toMatchObject({ ok: true, value: { profile: 'berlin' } });
    const none = parseOfferArgs(['offer', '2001', 'PJSIP/1001', '17', ''], defaultNumberRules);
    expect(none.ok && none.value.profile).toBeUndefined();
    const long = parseOfferArgs(['offer', '2001', 'PJSIP/1001', '17', 'y'.repeat(5000)], defaultNumberRules);
    expect(long.ok && long.value.profile?.length).toBe(64);
  });
});

describe('profiles in the engine: stored with the request, kept over a configuration change', () => {
  const T0 = Date.UTC(2026, 10, 25, 9, 0, 0); // a Wednesday, 10:00 in Berlin
  const log = () => createLogger({ format: 'json', stream: new PassThrough() });
  const engineWith = async (store: SqliteStore<CallbackRequest>, policy: typeof base, now: { t: number }) =>
    (await engineWorld({ store, log: log(), policy, profiles, clock: () => now.t, prospectDevice: (n) => (n.startsWith('20') ? `PJSIP/${n}` : undefined), started: false, pbxUp: false })).engine;

  it('each request follows its own profile; a restart with a new configuration keeps the stored promise', async () => {
    const now = { t: T0 };
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const first = await engineWith(store, base, now);
    const a = await first.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'de', channelId: 'c1', profile: 'berlin' });
    const b = await first.optIn({ agent: 'PJSIP/1002', agentCallerId: { name: 'B', number: '1002' }, prospect: '2002', language: 'en', channelId: 'c2' });
    const ida = (a as { requestId: string }).requestId;
    const idb = (b as { requestId: string }).requestId;
    expect((await store.get(ida))!.request).toMatchObject({ profile: 'berlin', policy: { graceMs: 30_000, snoozeMs: 60_000 } });
    expect((await store.get(idb))!.request).toMatchObject({ profile: null, policy: { graceMs: 300_000 } });
    first.stop();

    // The configuration changes (grace 10 min for everyone, the profile table emptied), the service restarts.
    const { engine: second } = await engineWorld({ store, log: log(), policy: makePolicyConfig({ ...defaultPolicyConfig, graceMs: 600_000 }), profiles: {}, clock: () => now.t, prospectDevice: (n) => `PJSIP/${n}`, started: false, pbxUp: false });
    now.t += 1_000;
    await second.deviceState('PJSIP/2001', { busy: false });
    await second.deviceState('PJSIP/2002', { busy: false });
    const ra = (await store.get(ida))!.request;
    const rb = (await store.get(idb))!.request;
    expect(ra.state).toBe('GRACE');
    expect(ra.graceUntil).toBe(now.t + 30_000);
    expect(rb.graceUntil).toBe(now.t + 300_000);
    second.stop();
  });

  it('an unknown profile name at the opt-in: the request is made with the default policy', async () => {
    const now = { t: T0 };
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const e = await engineWith(store, base, now);
    const r = await e.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1', profile: 'paris' });
    expect((await store.get((r as { requestId: string }).requestId))!.request).toMatchObject({ profile: null, policy: { graceMs: 300_000 } });
    e.stop();
  });
});

describe('config check: profiles', () => {
  const check = (yaml: string) => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-prof-')), 'c.yaml');
    fs.writeFileSync(file, yaml);
    try {
      resolveConfig({ file, env: { CC_ARI_PASSWORD: 'x' } });
      return [];
    } catch (err) {
      return (err as { problems: string[] }).problems;
    }
  };

  it('accepts two profiles and parses them', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-prof-')), 'c.yaml');
    fs.writeFileSync(file, 'profiles:\n  berlin: { grace: 30s, language: de }\n  newyork: { grace: 2m, backoff: [1m, 5m], callingHours: { timeZone: America/New_York } }\n');
    const { config } = resolveConfig({ file, env: { CC_ARI_PASSWORD: 'x' } });
    expect(config.profiles).toEqual({ berlin: { graceMs: 30_000, language: 'de' }, newyork: { graceMs: 120_000, backoffMs: [60_000, 300_000], callingHours: { timeZone: 'America/New_York' } } });
  });

  it.each([
    ['profiles:\n  b: { gracee: 1m }\n', /^profiles\.b\.gracee: unknown profile key \(known: grace, /],
    ['profiles:\n  b: { callingHours: { zone: x } }\n', /^profiles\.b\.callingHours\.zone: unknown key/],
    ['profiles:\n  b: { callingHours: { timeZone: Mars/Base } }\n', /^profiles\.b: callingHours\.timeZone: unknown time zone "Mars\/Base"/],
    ['profiles:\n  b: { snooze: 0s }\n', /^profiles\.b\.snooze: expected a duration of at least 1ms/],
    ['profiles:\n  b: { maxAttempts: 99 }\n', /^profiles\.b\.maxAttempts: expected a whole number from 1 to 20/],
    ['profiles:\n  b: { language: fr }\n', /^profiles\.b\.language: must be one of offer\.languages \(en, de\)/],
    ['profiles:\n  b: { labelPrefix: { en: ["A much too long prefix: "] } }\n', /^profiles\.b: recall\.labelPrefix: .* more than recall\.displayWidth \(16\)/],
    ['profiles:\n  "new york": {}\n', /^profiles\.new york: expected a profile name/],
    ['profiles:\n  b: 5\n', /^profiles\.b: expected a profile such as/],
    ['profiles:\n  b: { headsUp: soon }\n', /^profiles\.b\.headsUp: expected a duration/],
  ])('refuses %j', (yaml, message) => {
    const problems = check(yaml);
    expect(problems.some((p) => message.test(p))).toBe(true);
  });
});

describe('a profile may override the heads-up (policy.headsUp)', () => {
  const cfg = makePolicyConfig({ ...defaultPolicyConfig, headsUpMs: MINUTE, graceMs: 5 * MINUTE });
  const teams: Profiles = { quiet: { headsUpMs: 0 }, early: { headsUpMs: 3 * MINUTE } };

  it('config check parses it (0 = off for that team) and refuses a bad one naming it', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-prof-')), 'c.yaml');
    fs.writeFileSync(file, 'profiles:\n  quiet: { headsUp: 0s }\n  early: { headsUp: 3m, grace: 5m }\n');
    const { config } = resolveConfig({ file, env: { CC_ARI_PASSWORD: 'x' } });
    expect(config.profiles).toEqual({ quiet: { headsUpMs: 0 }, early: { headsUpMs: 180_000, graceMs: 300_000 } });
  });

  it("resolution: the profile's lead, kept in the snapshot (a later configuration does not change it); others keep the configured one", () => {
    expect(resolveProfile(cfg, teams, 'quiet').policy.headsUpMs).toBe(0);
    const early = resolveProfile(cfg, teams, 'early');
    expect(early.snapshot.headsUpMs).toBe(3 * MINUTE);
    expect(resolveProfile(cfg, teams, undefined).snapshot.headsUpMs).toBe(MINUTE);
    const later = makePolicyConfig({ ...cfg, headsUpMs: 10 * SECOND });
    expect(policyFor(later, { policy: early.snapshot }).headsUpMs).toBe(3 * MINUTE);
    // A snapshot stored before profiles could set it: the configured heads-up applies.
    const { headsUpMs: _dropped, ...old } = early.snapshot;
    expect(policyFor(later, { policy: old as typeof early.snapshot }).headsUpMs).toBe(10 * SECOND);
  });

  it("timing over the pure policy: each team's lead before the same due time; off means no heads-up, the ring on time", () => {
    const due = T0 + 7 * MINUTE; // busy at T0, free at T0+2m, grace 5m
    const run = (name: string | undefined) => {
      const s = Sim.device({ cfg: resolveProfile(cfg, teams, name).policy });
      s.free(T0 + 2 * MINUTE);
      return s;
    };
    expect(run(undefined).request.wakeAt).toBe(due - MINUTE);
    const early = run('early');
    expect(early.request).toMatchObject({ dueAt: due, wakeAt: due - 3 * MINUTE });
    early.wake();
    expect(early.events.map((e) => e.type)).toContain('heads-up');
    expect(early.request.headsUpFor).toBe(due);
    const quiet = run('quiet');
    expect(quiet.request.wakeAt).toBe(due);
    quiet.wake();
    expect(quiet.events.map((e) => e.type)).not.toContain('heads-up');
    expect(quiet.state).toBe('RINGING_AGENT');
  });
});
