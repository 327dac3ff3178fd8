/** Shared fixtures for the policy tests: a fake clock and a small simulator around newRequest/decide. */
import { decide, HOUR, MINUTE, newRequest, SECOND, type Action, type AgentStatus, type CallbackRequest, type Colleagues, type Decision, type NewRequestInput, type Observation, type PolicyConfig, type PolicyEvent, type ProspectMode } from '../../../src/core/policy';
import { defaultPolicyConfig } from '../../../testkit/policy';

export { HOUR, MINUTE, SECOND };

/** Mon 2026-03-23 09:30 CET (08:30Z): inside default calling hours; 8 h later (17:30) is before the 18:00 close. */
export const T0 = Date.parse('2026-03-23T08:30:00Z');

export const PROSPECT = '0301234567';
export const AGENT_CID = { name: 'Anna Agent', number: '0309876543' };

export const freeAgent = (since = T0 - HOUR): AgentStatus => ({ busy: false, since });
export const busyAgent = (since = T0 - HOUR): AgentStatus => ({ busy: true, since });

export const iso = (t: number | null | undefined): string | null => (t === null || t === undefined ? null : new Date(t).toISOString());
export const Z = (s: string): number => {
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`bad instant ${s}`);
  return t;
};

export function input(mode: ProspectMode = 'device', id = 'r1'): NewRequestInput {
  return { id, agent: 'PJSIP/1001', agentCallerId: { ...AGENT_CID }, prospect: PROSPECT, language: 'de', mode };
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/**
 * Drives one request through decide() like the scheduler would, freezing every input (so any mutation throws)
 * and collecting the full event history and every action.
 */
export class Sim {
  request: CallbackRequest;
  readonly events: PolicyEvent[] = [];
  readonly actions: Action[] = [];
  last: Decision;
  agent: AgentStatus;

  constructor(
    readonly cfg: PolicyConfig = defaultPolicyConfig,
    opts: { mode?: ProspectMode; at?: number; id?: string; agent?: AgentStatus; timeZone?: string; prospect?: string } = {},
  ) {
    const at = opts.at ?? T0;
    this.agent = opts.agent ?? freeAgent(at - HOUR);
    const base = input(opts.mode ?? 'device', opts.id ?? 'r1');
    this.last = newRequest({ ...base, prospect: opts.prospect ?? base.prospect, ...(opts.timeZone ? { timeZone: opts.timeZone } : {}) }, cfg, at);
    this.request = deepFreeze(this.last.request);
    this.events.push(...this.last.events);
    this.actions.push(...this.last.actions);
  }

  static device(opts: { at?: number; cfg?: PolicyConfig; id?: string; timeZone?: string; prospect?: string } = {}): Sim {
    return new Sim(opts.cfg, { mode: 'device', at: opts.at, id: opts.id, timeZone: opts.timeZone, prospect: opts.prospect });
  }

  static timed(opts: { at?: number; cfg?: PolicyConfig; id?: string; timeZone?: string; prospect?: string } = {}): Sim {
    return new Sim(opts.cfg, { mode: 'timed', at: opts.at, id: opts.id, timeZone: opts.timeZone, prospect: opts.prospect });
  }

  /** Other agents' requests for the same number, as the shell would report them (default: none). */
  colleagues: Colleagues | undefined;

  do(at: number, observation: Observation, agent: AgentStatus = this.agent): Decision {
    const ctx = { now: at, cfg: this.cfg, agent: deepFreeze({ ...agent }), ...(this.colleagues ? { colleagues: deepFreeze({ ...this.colleagues }) } : {}) };
    const d = decide(this.request, deepFreeze(observation), ctx);
    this.last = d;
    this.request = deepFreeze(d.request);
    this.events.push(...d.events);
    this.actions.push(...d.actions);
    return d;
  }

  tick(at: number, agent?: AgentStatus): Decision {
    return this.do(at, { type: 'tick' }, agent);
  }

  /** Tick exactly at the request's wakeAt. */
  wake(agent?: AgentStatus): Decision {
    const at = this.request.wakeAt;
    if (at === null) throw new Error('no wakeAt');
    return this.tick(at, agent);
  }

  free(at: number): Decision {
    return this.do(at, { type: 'prospectState', busy: false });
  }

  busy(at: number): Decision {
    return this.do(at, { type: 'prospectState', busy: true });
  }

  key(at: number, key: '1' | '2' | '3' | 'none'): Decision {
    return this.do(at, { type: 'agentKey', key });
  }

  get state(): string {
    return this.request.state;
  }
}

/** A compact signature of a decision for table tests: 'STATE event,event | action,action' or 'noop'. */
export function signature(before: CallbackRequest, d: Decision): string {
  if (d.request === before && d.events.length === 0 && d.actions.length === 0) return 'noop';
  return `${d.request.state} ${d.events.map((e) => e.type).join(',')} | ${d.actions.map((a) => a.type).join(',')}`;
}
