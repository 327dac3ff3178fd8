/** The scheduler's rules (src/core/scheduler.ts), pure: which requests get which observation, in order. */
import { scheduled, type Schedulable } from '../../src/core/scheduler';

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
