/** The scheduler's rules (src/core/scheduler.ts), pure: which requests get which observation, in order. */
import { colleaguesFrom, placeOf, scheduled, type Schedulable } from '../../src/core/scheduler';

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
