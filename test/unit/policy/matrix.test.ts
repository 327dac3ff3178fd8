/**
 * Every state × every observation. Each cell names the resulting state, the event types and the action types
 * ('noop' = the very same request object, no events, no actions). Exact values are asserted in the scenario suites.
 */
import { decide, type Observation } from '../../../src/core/policy';
import { defaultPolicyConfig } from '../../../testkit/policy';
import { busyAgent, freeAgent, MINUTE, SECOND, signature, Sim, T0 } from './helpers';

type Fixture = () => Sim;

const fixtures: Record<string, Fixture> = {
  'WAITING (device, line busy)': () => Sim.device(),
  'WAITING (timed, first probe)': () => Sim.timed(),
  'WAITING (device, snoozed, line free)': () => {
    const s = ringing();
    s.key(T0 + 15 * MINUTE + 5 * SECOND, '2');
    return s;
  },
  GRACE: () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    return s;
  },
  'DUE (agent wrap-up)': () => {
    const s = Sim.device();
    s.free(T0 + 10 * MINUTE);
    s.agent = freeAgent(T0 + 15 * MINUTE - 10 * SECOND);
    s.tick(T0 + 15 * MINUTE);
    return s;
  },
  RINGING_AGENT: () => ringing(),
  'RINGING_AGENT (answered)': () => {
    const s = ringing();
    s.do(T0 + 15 * MINUTE + 5 * SECOND, { type: 'agentAnswered' });
    return s;
  },
  CONNECTING: () => {
    const s = ringing();
    s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
    return s;
  },
  COMPLETED: () => {
    const s = ringing();
    s.key(T0 + 15 * MINUTE + 10 * SECOND, '1');
    s.do(T0 + 15 * MINUTE + 20 * SECOND, { type: 'prospectAnswered' });
    return s;
  },
  CANCELLED: () => {
    const s = Sim.device();
    s.do(T0 + MINUTE, { type: 'cancel', by: 'cli' });
    return s;
  },
  EXPIRED: () => {
    const s = Sim.device();
    s.wake();
    return s;
  },
  FAILED: () => {
    const s = new Sim({ ...defaultPolicyConfig, maxSnoozes: 0 });
    s.free(T0 + 10 * MINUTE);
    s.wake();
    s.do(T0 + 16 * MINUTE, { type: 'agentNoAnswer' });
    return s;
  },
};

function ringing(): Sim {
  const s = Sim.device();
  s.free(T0 + 10 * MINUTE);
  s.wake(); // T0+15m: grace over, agent free → RINGING_AGENT
  return s;
}

const observations: Record<string, Observation | 'early-tick' | 'wake-tick'> = {
  'tick (early)': 'early-tick',
  'tick (at wakeAt)': 'wake-tick',
  'prospectState busy': { type: 'prospectState', busy: true },
  'prospectState free': { type: 'prospectState', busy: false },
  refresh: { type: 'refresh' },
  cancel: { type: 'cancel', by: 'cli' },
  agentAnswered: { type: 'agentAnswered' },
  agentNoAnswer: { type: 'agentNoAnswer' },
  'agentKey 1': { type: 'agentKey', key: '1' },
  'agentKey 2': { type: 'agentKey', key: '2' },
  'agentKey 3': { type: 'agentKey', key: '3' },
  'agentKey none': { type: 'agentKey', key: 'none' },
  prospectAnswered: { type: 'prospectAnswered' },
  prospectBusy: { type: 'prospectBusy' },
  prospectNoAnswer: { type: 'prospectNoAnswer' },
  agentHungUp: { type: 'agentHungUp' },
  recallFailed: { type: 'recallFailed', reason: 'originate failed' },
  recallInterrupted: { type: 'recallInterrupted', reason: 'the lease holder died' },
};

const N = 'noop';
const TERMINAL = Object.fromEntries(Object.keys(observations).map((k) => [k, N]));
const RECALL_NOOPS = { prospectAnswered: N, prospectBusy: N, prospectNoAnswer: N };
const PENDING_NOOPS = {
  agentAnswered: N,
  agentNoAnswer: N,
  'agentKey 1': N,
  'agentKey 2': N,
  'agentKey 3': N,
  'agentKey none': N,
  prospectAnswered: N,
  prospectBusy: N,
  prospectNoAnswer: N,
  agentHungUp: N,
  recallFailed: N,
  recallInterrupted: N,
};
const CANCEL = 'CANCELLED cancelled | notify';

const expected: Record<string, Record<string, string>> = {
  'WAITING (device, line busy)': {
    'tick (early)': N,
    'tick (at wakeAt)': 'EXPIRED expired | notify',
    'prospectState busy': N,
    'prospectState free': 'GRACE prospect-free | ',
    refresh: 'WAITING refreshed | ',
    cancel: CANCEL,
    ...PENDING_NOOPS,
  },
  'WAITING (timed, first probe)': {
    'tick (early)': N,
    'tick (at wakeAt)': 'RINGING_AGENT due,ring-agent | ringAgent',
    'prospectState busy': N,
    'prospectState free': N,
    refresh: 'WAITING refreshed | ',
    cancel: CANCEL,
    ...PENDING_NOOPS,
  },
  'WAITING (device, snoozed, line free)': {
    'tick (early)': N,
    'tick (at wakeAt)': 'RINGING_AGENT due,ring-agent | ringAgent',
    'prospectState busy': 'WAITING prospect-busy | ',
    'prospectState free': N,
    refresh: 'WAITING refreshed | ',
    cancel: CANCEL,
    ...PENDING_NOOPS,
  },
  GRACE: {
    'tick (early)': N,
    'tick (at wakeAt)': 'RINGING_AGENT due,ring-agent | ringAgent',
    'prospectState busy': 'WAITING prospect-busy | ',
    'prospectState free': N,
    refresh: 'WAITING refreshed | ',
    cancel: CANCEL,
    ...PENDING_NOOPS,
  },
  'DUE (agent wrap-up)': {
    'tick (early)': N,
    'tick (at wakeAt)': 'RINGING_AGENT ring-agent | ringAgent',
    'prospectState busy': 'WAITING prospect-busy | ',
    'prospectState free': N,
    refresh: 'WAITING refreshed | ',
    cancel: CANCEL,
    ...PENDING_NOOPS,
  },
  RINGING_AGENT: {
    'tick (early)': N,
    'tick (at wakeAt)': 'WAITING recall-timeout | hangupAgent',
    'prospectState busy': 'WAITING prospect-busy | hangupAgent',
    'prospectState free': N,
    refresh: 'WAITING refreshed | hangupAgent',
    cancel: 'CANCELLED cancelled | hangupAgent,notify',
    agentAnswered: 'RINGING_AGENT agent-answered | announce',
    agentNoAnswer: 'WAITING agent-no-answer | ',
    'agentKey 1': 'CONNECTING agent-accepted | announce,dialProspect',
    'agentKey 2': 'WAITING agent-snoozed | announce,hangupAgent',
    'agentKey 3': 'CANCELLED cancelled | announce,hangupAgent,notify',
    'agentKey none': 'RINGING_AGENT menu-timeout | announce',
    ...RECALL_NOOPS,
    agentHungUp: 'WAITING agent-hung-up | ',
    recallFailed: 'WAITING recall-failed | ',
    recallInterrupted: 'WAITING recall-interrupted | ',
  },
  'RINGING_AGENT (answered)': {
    'tick (early)': N,
    'tick (at wakeAt)': 'WAITING recall-timeout | hangupAgent',
    'prospectState busy': 'WAITING prospect-busy | announce,hangupAgent',
    'prospectState free': N,
    refresh: 'WAITING refreshed | hangupAgent',
    cancel: 'CANCELLED cancelled | hangupAgent,notify',
    agentAnswered: N,
    agentNoAnswer: N,
    'agentKey 1': 'CONNECTING agent-accepted | announce,dialProspect',
    'agentKey 2': 'WAITING agent-snoozed | announce,hangupAgent',
    'agentKey 3': 'CANCELLED cancelled | announce,hangupAgent,notify',
    'agentKey none': 'RINGING_AGENT menu-timeout | announce',
    ...RECALL_NOOPS,
    agentHungUp: 'WAITING agent-hung-up | ',
    recallFailed: 'WAITING recall-failed | ',
    recallInterrupted: 'WAITING recall-interrupted | ',
  },
  CONNECTING: {
    'tick (early)': N,
    'tick (at wakeAt)': 'WAITING recall-timeout | hangupProspect,hangupAgent',
    'prospectState busy': N,
    'prospectState free': N,
    refresh: N,
    cancel: 'CANCELLED cancelled | hangupProspect,hangupAgent,notify',
    agentAnswered: N,
    agentNoAnswer: N,
    'agentKey 1': N,
    'agentKey 2': N,
    'agentKey 3': N,
    'agentKey none': N,
    prospectAnswered: 'COMPLETED prospect-answered | notify',
    prospectBusy: 'WAITING attempt-busy | announce,hangupAgent',
    prospectNoAnswer: 'WAITING attempt-no-answer | announce,hangupAgent',
    agentHungUp: 'WAITING agent-hung-up | hangupProspect',
    recallFailed: 'WAITING recall-failed | hangupAgent',
    recallInterrupted: 'WAITING recall-interrupted | ',
  },
  COMPLETED: TERMINAL,
  CANCELLED: TERMINAL,
  EXPIRED: TERMINAL,
  FAILED: TERMINAL,
};

describe('state × observation matrix', () => {
  it('covers every fixture and observation', () => {
    expect(Object.keys(expected).sort()).toEqual(Object.keys(fixtures).sort());
    for (const row of Object.values(expected)) expect(Object.keys(row).sort()).toEqual(Object.keys(observations).sort());
  });

  it('fixtures are in the state they are named after', () => {
    for (const [name, make] of Object.entries(fixtures)) expect(name.startsWith(make().request.state)).toBe(true);
  });

  const cases = Object.entries(fixtures).flatMap(([state, make]) =>
    Object.entries(observations).map(([obsName, obs]) => [state, obsName, make, obs, expected[state][obsName]] as const),
  );

  it.each(cases)('%s + %s', (_state, _obsName, make, obs, want) => {
    const sim = make();
    const before = sim.request;
    const wake = before.wakeAt ?? before.updatedAt + MINUTE; // terminal: any later time
    const now = obs === 'early-tick' ? wake - SECOND : obs === 'wake-tick' ? wake : Math.min(wake - SECOND, before.updatedAt + 2 * SECOND);
    const observation: Observation = typeof obs === 'string' ? { type: 'tick' } : obs;
    const d = sim.do(Math.max(now, before.updatedAt), observation);
    expect(signature(before, d)).toBe(want);
    if (want === 'noop') {
      expect(d.request).toBe(before);
    } else {
      // every event is stamped with the decision time and chains from → to
      let state = before.state;
      for (const e of d.events) {
        expect(e.at).toBe(d.request.updatedAt);
        expect(e.from).toBe(state);
        state = e.to;
      }
      expect(state).toBe(d.request.state);
      // the request stays plain data
      expect(JSON.parse(JSON.stringify(d.request))).toEqual(d.request);
      // non-terminal requests always have a wake-up; terminal ones never
      expect(d.request.wakeAt === null).toBe(['COMPLETED', 'CANCELLED', 'EXPIRED', 'FAILED'].includes(d.request.state));
    }
  });

  it('a busy agent does not change what terminal states do', () => {
    const s = fixtures.COMPLETED();
    const before = s.request;
    const d = decide(before, { type: 'tick' }, { now: T0 + 9 * 3_600_000, cfg: defaultPolicyConfig, agent: busyAgent() });
    expect(d).toEqual({ request: before, events: [], actions: [] });
    expect(d.request).toBe(before);
  });
});
