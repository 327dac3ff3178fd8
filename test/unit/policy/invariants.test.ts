/**
 * Seeded random walks through the state machine (any observation, any order, random agent status, random clock
 * advances), checking the invariants the scheduler and the store rely on after every single decision.
 */
import { decide, isTerminal, newRequest, type Action, type AgentStatus, type CallbackRequest, type Decision, type Observation, type PolicyConfig, type ProspectMode } from '../../../src/core/policy';
import { defaultPolicyConfig } from '../../../testkit/policy';
import { deepFreeze, HOUR, input, MINUTE, SECOND, T0 } from './helpers';
import { mulberry32 } from '../../support/rng';


const OBSERVATIONS: Observation[] = [
  { type: 'tick' },
  { type: 'prospectState', busy: true },
  { type: 'prospectState', busy: false },
  { type: 'refresh' },
  { type: 'cancel', by: 'fuzz' },
  { type: 'snooze', by: 'fuzz' },
  { type: 'agentAnswered' },
  { type: 'agentNoAnswer' },
  { type: 'agentKey', key: '1' },
  { type: 'agentKey', key: '2' },
  { type: 'agentKey', key: '3' },
  { type: 'agentKey', key: 'none' },
  { type: 'prospectAnswered' },
  { type: 'prospectBusy' },
  { type: 'prospectNoAnswer' },
  { type: 'agentHungUp' },
  { type: 'recallFailed', reason: 'fuzz' },
  { type: 'recallInterrupted', reason: 'fuzz' },
];
/** Weighted towards the observations that move a request forward, so walks get deep. */
const WEIGHTS = [8, 3, 3, 0.3, 0.2, 2, 1, 3, 1, 0.3, 1, 1, 2, 1, 0.5, 0.5];

const CONFIGS: Array<[string, PolicyConfig]> = [
  ['default', defaultPolicyConfig],
  ['tight', { ...defaultPolicyConfig, maxSnoozes: 0, maxAttempts: 1, noAnswerRetries: 0 }],
  ['zero grace and probe', { ...defaultPolicyConfig, graceMs: 0, firstProbeDelayMs: 0, agentWrapUpMs: 0 }],
  ['always open, long-lived', { ...defaultPolicyConfig, maxAgeMs: 48 * HOUR, callingHours: { timeZone: 'America/New_York', windows: { mon: [['00:00', '24:00']], tue: [['00:00', '24:00']] }, holidays: [] } }],
];

function pick(rand: () => number): Observation {
  const total = WEIGHTS.reduce((a, b) => a + b, 0);
  let x = rand() * total;
  for (let i = 0; i < OBSERVATIONS.length; i++) {
    x -= WEIGHTS[i];
    if (x < 0) return OBSERVATIONS[i];
  }
  return OBSERVATIONS[0];
}

interface Life {
  ringIds: string[];
  terminalNotifies: number;
  rings: number;
}

function checkDecision(before: CallbackRequest, obs: Observation, d: Decision, now: number, cfg: PolicyConfig, life: Life): void {
  const r = d.request;
  const noop = d.events.length === 0 && d.actions.length === 0 && r === before;
  if (noop) return;
  if (d.events.length === 0 && d.actions.length === 0) {
    // silent update: only allowed for a re-armed wake-up / refreshed wording, never a state change
    expect(r.state).toBe(before.state);
    expect(r.waitingFor).toBe(before.waitingFor);
  }
  // events chain from the old state to the new one, stamped now
  let state = before.state;
  for (const e of d.events) {
    expect(e.at).toBe(now);
    expect(e.from).toBe(state);
    state = e.to;
  }
  expect(state).toBe(r.state);
  expect(r.updatedAt).toBe(now);
  if (d.events.length > 0) {
    const lastEvent = d.events[d.events.length - 1];
    expect([lastEvent.wakeAt, lastEvent.waitingFor]).toEqual([r.wakeAt, r.waitingFor]);
  }
  // wake-up discipline
  if (isTerminal(r.state)) {
    expect([r.wakeAt, r.waitingFor]).toEqual([null, null]);
    expect(r.outcome).not.toBeNull();
    expect(d.actions.filter((a) => a.type === 'notify')).toHaveLength(1);
    life.terminalNotifies += 1;
  } else {
    expect(r.outcome).toBeNull();
    expect(r.waitingFor).not.toBeNull();
    expect(r.wakeAt).not.toBeNull();
    expect(r.wakeAt as number).toBeGreaterThan(now);
    if (['WAITING', 'GRACE', 'DUE'].includes(r.state)) expect(r.wakeAt as number).toBeLessThanOrEqual(r.expiresAt);
    if (r.state === 'GRACE') expect(r.mode).toBe('device');
    if (r.mode === 'device' && r.state === 'WAITING' && r.lineBusy) expect(r.waitingFor).toBe('prospect-busy');
  }
  // limits
  expect(r.attempts).toBeLessThanOrEqual(cfg.maxAttempts);
  expect(r.snoozes).toBeLessThanOrEqual(cfg.maxSnoozes);
  expect(r.rings).toBeGreaterThanOrEqual(before.rings);
  // channel ids: one per ring, never reused, prospect leg belongs to the current ring
  for (const a of d.actions as Action[]) {
    if (a.type === 'ringAgent') {
      expect(life.ringIds).not.toContain(a.channelId);
      life.ringIds.push(a.channelId);
      expect(a.channelId).toBe(`ccb-r1-${r.rings}`);
      expect(a.attempt).toBe(r.attempts + 1);
    }
    if (a.type === 'dialProspect') {
      expect(a.channelId).toBe(`ccb-r1-${r.rings}-p`);
      expect(a.attempt).toBe(r.attempts);
    }
    if (a.type === 'hangupAgent' || a.type === 'announce') expect(life.ringIds).toContain(a.channelId);
  }
  life.rings = r.rings;
  expect(life.ringIds).toHaveLength(r.rings);
  // plain data
  expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  void obs;
}

function walk(seed: number, mode: ProspectMode, cfg: PolicyConfig): { steps: number; final: CallbackRequest } {
  const rand = mulberry32(seed);
  const created = newRequest(input(mode), cfg, T0);
  let req = deepFreeze(created.request);
  let now = T0;
  const life: Life = { ringIds: [], terminalNotifies: 0, rings: 0 };
  let steps = 0;
  for (; steps < 80 && !isTerminal(req.state); steps++) {
    const obs = pick(rand);
    if (obs.type === 'tick' && req.wakeAt !== null && rand() < 0.7) now = Math.max(now, req.wakeAt);
    else now += Math.floor(rand() * 10 * MINUTE);
    const agent: AgentStatus = deepFreeze({ busy: rand() < 0.3, since: now - Math.floor(rand() * 2 * MINUTE) });
    const ctx = { now, cfg, agent };
    const d = decide(req, deepFreeze(obs), ctx);
    checkDecision(req, obs, d, now, cfg, life);
    // deterministic
    expect(decide(req, obs, ctx)).toEqual(d);
    // an immediately repeated tick changes nothing
    if (obs.type === 'tick') {
      const again = decide(deepFreeze(d.request), { type: 'tick' }, ctx);
      expect(again.request).toBe(d.request);
      expect(again.events).toEqual([]);
    }
    req = deepFreeze(d.request);
  }
  // liveness: ticking at every wake-up (agent free) always ends the request
  let guard = 0;
  while (!isTerminal(req.state)) {
    now = Math.max(now, req.wakeAt as number);
    const d = decide(req, { type: 'tick' }, { now, cfg, agent: { busy: false, since: now - HOUR } });
    checkDecision(req, { type: 'tick' }, d, now, cfg, life);
    req = deepFreeze(d.request);
    if (req.state === 'RINGING_AGENT' && rand() < 0.5) {
      // sometimes the agent accepts and the prospect never answers
      const k = decide(req, { type: 'agentKey', key: '1' }, { now: now + SECOND, cfg, agent: { busy: false, since: now - HOUR } });
      checkDecision(req, { type: 'agentKey', key: '1' }, k, now + SECOND, cfg, life);
      req = deepFreeze(k.request);
      now += SECOND;
    }
    expect(++guard).toBeLessThan(500);
  }
  expect(life.terminalNotifies).toBe(1);
  return { steps, final: req };
}

describe('random walks keep every invariant', () => {
  for (const [name, cfg] of CONFIGS) {
    for (const mode of ['device', 'timed'] as const) {
      it(`${name} config, ${mode} mode: 60 seeded walks`, () => {
        const outcomes = new Set<string>();
        for (let seed = 1; seed <= 60; seed++) outcomes.add(walk(seed * 7919 + mode.length, mode, cfg).final.state);
        expect(outcomes.size).toBeGreaterThan(1); // the walks really explore
      });
    }
  }
});
