/** The scheduler's rules (src/core/scheduler.ts), pure: which requests get which observation, in order. */
import { AGENT_FREE_LONG_AGO, agentOnDevice, agentStatusFor, colleaguesFrom, lineObservations, placeOf, scheduled, type Schedulable } from '../../src/core/scheduler';

const r = (id: string, state: string, wakeAt: number | null, agent = 'PJSIP/1001', prospect = '2001'): Schedulable => ({ id, agent, prospect, state, wakeAt });

describe('the scheduler', () => {
  it('wake: every open request whose wake-up has come gets a tick, earliest first; finished and future ones none', () => {
    const candidates = [r('late', 'GRACE', 300), r('early', 'WAITING', 100), r('future', 'DUE', 1001), r('done', 'COMPLETED', 50), r('no-wake', 'RINGING_AGENT', null)];
    expect(scheduled(1000, candidates, { kind: 'wake' })).toEqual([
      { id: 'early', observation: { type: 'tick' } },
      { id: 'late', observation: { type: 'tick' } },
    ]);
    expect(scheduled(1000, [r('now', 'DUE', 1000)], { kind: 'wake' })).toEqual([{ id: 'now', observation: { type: 'tick' } }]);
  });

  it("agentFree: the agent's DUE requests are re-evaluated at once, whatever their wake-up; others not", () => {
    const candidates = [r('a', 'DUE', 9999), r('b', 'GRACE', 10), r('c', 'DUE', 10, 'PJSIP/1002')];
    expect(scheduled(0, candidates, { kind: 'agentFree', agent: 'PJSIP/1001' })).toEqual([{ id: 'a', observation: { type: 'tick' } }]);
  });

  it('numberFreed: the other DUE requests for that number may go; the one that left and other numbers not', () => {
    const candidates = [r('left', 'DUE', 0, 'PJSIP/1001'), r('next', 'DUE', 9999, 'PJSIP/1002'), r('waiting', 'WAITING', 0, 'PJSIP/1003'), r('other', 'DUE', 0, 'PJSIP/1004', '2002')];
    expect(scheduled(0, candidates, { kind: 'numberFreed', prospect: '2001', except: 'left' })).toEqual([{ id: 'next', observation: { type: 'tick' } }]);
  });

  it("numberFreed: another PBX's DUE request for the number is left to its own instance", () => {
    const candidates = [{ ...r('elsewhere', 'DUE', 0, 'PJSIP/1002'), samePbx: false }, { ...r('here', 'DUE', 0, 'PJSIP/1003'), samePbx: true }];
    expect(scheduled(0, candidates, { kind: 'numberFreed', prospect: '2001', except: 'left' })).toEqual([{ id: 'here', observation: { type: 'tick' } }]);
  });
});

describe("a number's queue", () => {
  const queue = [
    { id: 'a', agent: 'PJSIP/1001', state: 'WAITING' },
    { id: 'b', agent: 'PJSIP/1002', state: 'DUE' },
    { id: 'c', agent: 'PJSIP/1003', state: 'RINGING_AGENT' },
  ];

  it('colleagues ahead: those who opted in earlier and those on a recall now, never the agent themself', () => {
    expect(colleaguesFrom(queue, { id: 'b', agent: 'PJSIP/1002' }, null)).toEqual({ ahead: 2, lastConnectedAt: null, lastCallEndedAt: null });
    expect(colleaguesFrom(queue, { id: 'a', agent: 'PJSIP/1001' }, null).ahead).toBe(1);
    expect(colleaguesFrom(queue, { id: 'x', agent: 'PJSIP/1003' }, null).ahead).toBe(0);
  });

  it("a colleague's unended conversation on this PBX from before serving began ended when serving began; on another PBX it still goes on", () => {
    const last = { connectedAt: 100, endedAt: null, samePbx: true };
    expect(colleaguesFrom(queue, { id: 'b', agent: 'PJSIP/1002' }, last, 500)).toMatchObject({ lastConnectedAt: 100, lastCallEndedAt: 500 });
    expect(colleaguesFrom(queue, { id: 'b', agent: 'PJSIP/1002' }, { ...last, samePbx: false }, 500)).toMatchObject({ lastCallEndedAt: null });
    expect(colleaguesFrom(queue, { id: 'b', agent: 'PJSIP/1002' }, { ...last, connectedAt: 600 }, 500)).toMatchObject({ lastCallEndedAt: null });
    expect(colleaguesFrom(queue, { id: 'b', agent: 'PJSIP/1002' }, { ...last, endedAt: 300 }, 500)).toMatchObject({ lastCallEndedAt: 300 });
  });

  it("an agent's place: their own position when queued, last for a newcomer, and the others in order", () => {
    expect(placeOf(queue, 'PJSIP/1002')).toEqual({ position: 2, queued: true, others: ['PJSIP/1001', 'PJSIP/1003'] });
    expect(placeOf(queue, 'PJSIP/1009')).toEqual({ position: 4, queued: false, others: ['PJSIP/1001', 'PJSIP/1002', 'PJSIP/1003'] });
  });
});

describe('presence: a device event', () => {
  it('the first state seen: free counts as free since long ago, busy from now; nobody was freed', () => {
    expect(agentOnDevice(undefined, { busy: false }, 5000)).toEqual({ status: { busy: false, since: 0 }, freed: false });
    expect(agentOnDevice(undefined, { busy: true }, 5000)).toEqual({ status: { busy: true, since: 5000 }, freed: false });
  });

  it('busy → free: free from now, and the agent was freed (their due requests may go); free → busy: busy from now', () => {
    expect(agentOnDevice({ busy: true, since: 100 }, { busy: false }, 5000)).toEqual({ status: { busy: false, since: 5000 }, freed: true });
    expect(agentOnDevice({ busy: false, since: 0 }, { busy: true }, 5000)).toEqual({ status: { busy: true, since: 5000 }, freed: false });
  });

  it('the same state again keeps the status and its time (a repeated event frees nobody)', () => {
    const before = { busy: false, since: 100 };
    expect(agentOnDevice(before, { busy: false }, 5000)).toEqual({ status: before, freed: false });
    expect(agentOnDevice({ busy: true, since: 100 }, { busy: true }, 5000)).toEqual({ status: { busy: true, since: 100 }, freed: false });
  });

  it('an unknown state forgets the status', () => {
    expect(agentOnDevice({ busy: true, since: 100 }, undefined, 5000)).toEqual({ status: undefined, freed: false });
  });

  it("a line's state is a prospectState observation for each request watching it, in the order given; none while unknown", () => {
    expect(lineObservations({ busy: false }, ['a', 'b'])).toEqual([
      { id: 'a', observation: { type: 'prospectState', busy: false } },
      { id: 'b', observation: { type: 'prospectState', busy: false } },
    ]);
    expect(lineObservations({ busy: true }, ['a'])).toEqual([{ id: 'a', observation: { type: 'prospectState', busy: true } }]);
    expect(lineObservations(undefined, ['a'])).toEqual([]);
  });
});

describe("the agent's status as the policy sees it", () => {
  const seen = { pbxUp: true, now: 7000, recalls: [] as { id: string }[], device: undefined, paused: null };
  const pause = { since: 1000, until: null };

  it('an agent never seen is free since long ago; a seen one has the device status', () => {
    expect(agentStatusFor({ id: 'r' }, seen)).toEqual(AGENT_FREE_LONG_AGO);
    expect(agentStatusFor({ id: 'r' }, { ...seen, device: { busy: true, since: 300 } })).toEqual({ busy: true, since: 300 });
  });

  it('busy from now while the PBX is unreachable, whatever the device says', () => {
    expect(agentStatusFor({ id: 'r' }, { ...seen, pbxUp: false, device: { busy: false, since: 0 } })).toEqual({ busy: true, since: 7000 });
  });

  it("busy from now while another of the agent's requests is on a recall; the request's own recall does not count", () => {
    expect(agentStatusFor({ id: 'r' }, { ...seen, recalls: [{ id: 'other' }] })).toEqual({ busy: true, since: 7000 });
    expect(agentStatusFor({ id: 'r' }, { ...seen, recalls: [{ id: 'r' }] })).toEqual(AGENT_FREE_LONG_AGO);
  });

  it('the pause in force goes with every answer; none when not paused', () => {
    expect(agentStatusFor({ id: 'r' }, { ...seen, paused: pause })).toEqual({ ...AGENT_FREE_LONG_AGO, paused: pause });
    expect(agentStatusFor({ id: 'r' }, { ...seen, paused: pause, pbxUp: false })).toEqual({ busy: true, since: 7000, paused: pause });
    expect(agentStatusFor({ id: 'r' }, { ...seen, paused: pause, recalls: [{ id: 'x' }] })).toEqual({ busy: true, since: 7000, paused: pause });
    expect('paused' in agentStatusFor({ id: 'r' }, seen)).toBe(false);
  });
});
