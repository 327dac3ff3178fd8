/**
 * The heads-up before the ring (policy.headsUpMs) and the agent's pause ("hold my callbacks"), over the pure policy.
 */
import { headsUpActive, type AgentStatus } from '../../../src/core/policy';
import { makePolicyConfig } from '../../../testkit/policy';
import { HOUR, MINUTE, SECOND, Sim, T0, freeAgent, busyAgent } from './helpers';

const cfg = makePolicyConfig({ headsUpMs: MINUTE, graceMs: 5 * MINUTE, snoozeMs: 15 * MINUTE });
const types = (s: Sim) => s.events.map((e) => e.type);
const dueSoon = (s: Sim) => s.actions.filter((a) => a.type === 'notify' && a.event === 'recall.due_soon');
const rings = (s: Sim) => s.actions.filter((a) => a.type === 'ringAgent');

/** Device mode: busy at T0, line free at T0+2m → grace until T0+7m. */
function inGrace(c = cfg): Sim {
  const s = Sim.device({ cfg: c });
  s.free(T0 + 2 * MINUTE);
  return s;
}

describe('heads-up timing', () => {
  test('the wake-up is the heads-up start (due − headsUp); at it the heads-up begins, no ring; at the due time it rings', () => {
    const s = inGrace();
    const due = T0 + 7 * MINUTE;
    expect(s.request.state).toBe('GRACE');
    expect(s.request.dueAt).toBe(due);
    expect(s.request.wakeAt).toBe(due - MINUTE);
    s.wake();
    expect(types(s)).toContain('heads-up');
    expect(s.request.headsUpFor).toBe(due);
    expect(s.request.wakeAt).toBe(due); // never later than the due time
    expect(headsUpActive(s.request, due - MINUTE)).toBe(true);
    expect(dueSoon(s)).toHaveLength(1);
    expect(rings(s)).toHaveLength(0); // the heads-up never rings a phone
    s.wake();
    expect(s.state).toBe('RINGING_AGENT');
    expect(rings(s)).toHaveLength(1);
    expect(dueSoon(s)).toHaveLength(1); // once per due time
    expect(headsUpActive(s.request, due)).toBe(false);
  });

  test('a tick again during the heads-up does not announce it twice', () => {
    const s = inGrace();
    s.wake();
    s.tick(T0 + 6 * MINUTE + 30 * SECOND);
    expect(dueSoon(s)).toHaveLength(1);
    expect(types(s).filter((t) => t === 'heads-up')).toHaveLength(1);
  });

  test('headsUp 0 = off: no heads-up, the wake-up is the due time, no dueAt on the request', () => {
    const s = inGrace(makePolicyConfig({ headsUpMs: 0 }));
    expect(s.request.wakeAt).toBe(T0 + 2 * MINUTE + 5 * MINUTE);
    expect(s.request.dueAt).toBeUndefined();
    s.wake();
    expect(s.state).toBe('RINGING_AGENT');
    expect(dueSoon(s)).toHaveLength(0);
  });

  test('a grace shorter than the heads-up: the heads-up starts at once, the ring is not delayed', () => {
    const s = inGrace(makePolicyConfig({ headsUpMs: 10 * MINUTE, graceMs: 5 * MINUTE }));
    expect(types(s)).toContain('heads-up');
    expect(s.request.wakeAt).toBe(T0 + 7 * MINUTE);
    s.wake();
    expect(s.state).toBe('RINGING_AGENT');
  });

  test('the prospect busy again during the heads-up: it ends; the new due time gets a new heads-up', () => {
    const s = inGrace();
    s.wake(); // heads-up for T0+7m
    s.busy(T0 + 6 * MINUTE + 30 * SECOND);
    expect(s.state).toBe('WAITING');
    expect(headsUpActive(s.request, T0 + 6 * MINUTE + 40 * SECOND)).toBe(false);
    s.free(T0 + 10 * MINUTE); // grace until T0+15m
    const due = T0 + 15 * MINUTE;
    expect(s.request.dueAt).toBe(due);
    expect(s.request.wakeAt).toBe(due - MINUTE);
    s.wake();
    expect(s.request.headsUpFor).toBe(due);
    expect(dueSoon(s)).toHaveLength(2);
    s.wake();
    expect(s.state).toBe('RINGING_AGENT');
  });

  test('the agent on a call at the heads-up start: no heads-up then; when they are free the wrap-up gap gets one', () => {
    const s = inGrace();
    const onCall = busyAgent(T0 + 5 * MINUTE);
    s.wake(onCall); // heads-up start, agent busy: none
    expect(dueSoon(s)).toHaveLength(0);
    expect(s.request.wakeAt).toBe(T0 + 7 * MINUTE);
    s.wake(onCall); // due, agent busy: waits
    expect(s.state).toBe('DUE');
    expect(s.request.waitingFor).toBe('agent-busy');
    const freeAt = T0 + 8 * MINUTE;
    s.tick(freeAt, freeAgent(freeAt)); // wrap-up gap 30 s: a foreseen due time, shorter than the lead
    expect(s.request.waitingFor).toBe('agent-wrap-up');
    expect(s.request.headsUpFor).toBe(freeAt + 30 * SECOND);
    expect(dueSoon(s)).toHaveLength(1);
    expect(rings(s)).toHaveLength(0);
    s.wake(freeAgent(freeAt));
    expect(s.state).toBe('RINGING_AGENT');
  });

  test('a snooze during the heads-up is honoured without a ring; the snooze end gets its own heads-up', () => {
    const s = inGrace();
    s.wake();
    const at = T0 + 6 * MINUTE + 30 * SECOND;
    s.do(at, { type: 'snooze', by: 'web' });
    expect(s.state).toBe('WAITING');
    expect(s.request.waitingFor).toBe('snooze');
    const due = at + 15 * MINUTE;
    expect(s.request.dueAt).toBe(due);
    expect(s.request.wakeAt).toBe(due - MINUTE);
    expect(rings(s)).toHaveLength(0);
    expect(headsUpActive(s.request, T0 + 7 * MINUTE)).toBe(false);
    s.wake();
    expect(dueSoon(s)).toHaveLength(2);
    expect(rings(s)).toHaveLength(0);
    s.wake();
    expect(rings(s)).toHaveLength(1);
  });

  test('a cancel during the heads-up: cancelled, no ring, no more heads-up', () => {
    const s = inGrace();
    s.wake();
    s.do(T0 + 6 * MINUTE + 30 * SECOND, { type: 'cancel', by: 'web' });
    expect(s.state).toBe('CANCELLED');
    expect(headsUpActive(s.request, T0 + 6 * MINUTE + 40 * SECOND)).toBe(false);
    s.tick(T0 + 7 * MINUTE);
    expect(rings(s)).toHaveLength(0);
  });

  test('timed mode: the first probe gets a heads-up', () => {
    const s = Sim.timed({ cfg });
    expect(s.request.dueAt).toBe(T0 + 10 * MINUTE);
    expect(s.request.wakeAt).toBe(T0 + 9 * MINUTE);
    s.wake();
    expect(dueSoon(s)).toHaveLength(1);
    s.wake();
    expect(s.state).toBe('RINGING_AGENT');
  });

  test('a due time past expiry is no due time: no heads-up before an expiry', () => {
    const s = Sim.device({ cfg, at: T0 });
    // Line busy: the wake-up is the expiry, not a due time.
    expect(s.request.waitingFor).toBe('prospect-busy');
    expect(s.request.dueAt ?? null).toBeNull();
    expect(s.request.wakeAt).toBe(s.request.expiresAt);
  });
});

describe('pause ("hold my callbacks")', () => {
  const paused = (since: number, until: number | null = null): AgentStatus => ({ ...freeAgent(T0 - HOUR), paused: { since, until } });

  test('a due request waits while the agent is paused (nothing rings); after resume it rings', () => {
    const s = inGrace(makePolicyConfig({ headsUpMs: 0 }));
    const p = paused(T0);
    s.wake(p);
    expect(s.state).toBe('DUE');
    expect(s.request.waitingFor).toBe('agent-paused');
    s.wake(p);
    s.wake(p);
    expect(rings(s)).toHaveLength(0);
    s.tick(T0 + 30 * MINUTE, freeAgent(T0 - HOUR));
    expect(s.state).toBe('RINGING_AGENT');
  });

  test('a pause until a time: the request wakes by then and rings when it ended by itself', () => {
    const s = inGrace(makePolicyConfig({ headsUpMs: 0, agentBusyRecheckMs: HOUR }));
    const until = T0 + 20 * MINUTE;
    const p = paused(T0, until);
    s.wake(p);
    expect(s.request.waitingFor).toBe('agent-paused');
    expect(s.request.wakeAt).toBe(until);
    s.wake(p); // same pause, now ended (until reached)
    expect(s.state).toBe('RINGING_AGENT');
  });

  test('no heads-up while paused', () => {
    const s = inGrace();
    s.wake(paused(T0)); // heads-up start while paused
    expect(dueSoon(s)).toHaveLength(0);
  });

  test('calling hours still apply while paused: outside them the request waits for the opening, not the pause', () => {
    // Fri 17:55 Berlin: grace ends after 18:00.
    const fri = Date.parse('2026-03-27T16:55:00Z');
    const s = Sim.device({ cfg: makePolicyConfig({ headsUpMs: 0 }), at: fri });
    s.free(fri + MINUTE);
    s.wake(paused(fri));
    // Expired at the end of the calling day (18:00) or waiting for calling hours: never 'agent-paused' past the close.
    expect(['EXPIRED', 'DUE']).toContain(s.state);
    if (s.state === 'DUE') expect(s.request.waitingFor).toBe('calling-hours');
  });

  test('expiry still applies while paused', () => {
    const s = inGrace(makePolicyConfig({ headsUpMs: 0 }));
    const p = paused(T0);
    s.wake(p);
    while (s.state === 'DUE') s.wake(p);
    expect(s.state).toBe('EXPIRED');
    expect(rings(s)).toHaveLength(0);
  });

  test('two due requests of a paused agent keep their order: their opt-in times are untouched, both wait', () => {
    const a = inGrace(makePolicyConfig({ headsUpMs: 0 }));
    const b = new Sim(makePolicyConfig({ headsUpMs: 0 }), { mode: 'device', at: T0 + MINUTE, id: 'r2' });
    b.free(T0 + 2 * MINUTE);
    const p = paused(T0);
    a.wake(p);
    b.wake(p);
    expect([a.request.waitingFor, b.request.waitingFor]).toEqual(['agent-paused', 'agent-paused']);
    expect(a.request.createdAt).toBeLessThan(b.request.createdAt);
    expect(rings(a).length + rings(b).length).toBe(0);
  });
});
