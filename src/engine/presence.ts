/**
 * Presence as the engine sees it: agent devices and prospect lines change state (src/flows/presence.ts reports them),
 * and the PBX comes and goes. It keeps each agent's device status, the prospect lines pending requests watch and
 * whether the PBX is up; it turns a device event into observations (core/scheduler.ts `agentOnDevice`,
 * `lineObservations`) and answers the agent's status as the policy sees it (core/scheduler.ts `agentStatusFor`).
 */
import { RECALL_STATES, type AgentPause, type AgentStatus, type CallbackRequest, type Observation } from '../core/policy';
import { agentOnDevice, agentStatusFor, lineObservations } from '../core/scheduler';
import type { RequestStore } from './options';

export interface PresenceDeps {
  store: Pick<RequestStore, 'pendingDependencies' | 'pendingLineWatchers' | 'list'>;
  clock: () => number;
  /** The PBX device of an internal prospect (its line state is watched), or undefined for external numbers. */
  prospectDevice: (prospect: string) => string | undefined;
  /** The agent's pause in force now (src/engine/pauses.ts). */
  pauseOf: (agent: string) => AgentPause | null;
  /** Re-evaluates due requests now: the agent's when it became free, every one when the PBX came back. */
  kickDue: (agent?: string) => Promise<void>;
  /** Feeds an observation to a request (the engine's serialised decision path). */
  observe: (requestId: string, observation: Observation) => Promise<unknown>;
}

export class Presence {
  private readonly agentStatus = new Map<string, AgentStatus>();
  /**
   * The prospect lines that pending device-mode requests watch: device → prospect numbers. Filled at
   * start and by opt-ins; it only grows while running (a stale entry costs one indexed query). With it,
   * a device-state event reads only the requests of that line, never all pending ones.
   */
  private readonly lineProspects = new Map<string, Set<string>>();
  private linesLoaded = false;
  /** False while the PBX is unreachable: due callbacks wait instead of failing to ring. */
  private pbxUp = false;
  /** When this process first served the PBX (reconciled and up); see setPbxUp. */
  private serving?: number;

  constructor(private readonly deps: PresenceDeps) {}

  /** When this process first served the PBX (reconciled and up), or undefined before. */
  get servingSince(): number | undefined {
    return this.serving;
  }

  /** Devices whose state matters now: every pending request's agent and (internal) prospect line. */
  async devicesToWatch(given?: { agents: string[]; lineProspects: string[] }): Promise<string[]> {
    const deps = given ?? (await this.deps.store.pendingDependencies());
    const set = new Set<string>(deps.agents);
    for (const prospect of deps.lineProspects) {
      const d = this.deps.prospectDevice(prospect);
      if (!d) continue;
      set.add(d);
      this.rememberLine(d, prospect);
    }
    this.linesLoaded = true;
    return [...set];
  }

  /** A request now watches this prospect line (an opt-in in device mode). */
  rememberLine(device: string, prospect: string): void {
    const prospects = this.lineProspects.get(device) ?? new Set<string>();
    prospects.add(prospect);
    this.lineProspects.set(device, prospects);
  }

  setPbxUp(up: boolean): void {
    if (this.pbxUp === up) return;
    this.pbxUp = up;
    // The service reports the PBX up only after reconciling: every recall channel an earlier run (or another
    // instance) left on the PBX has then been hung up, so no conversation older than this can still go on.
    if (up && this.serving === undefined) this.serving = this.deps.clock();
    if (up) void this.deps.kickDue();
  }

  /** A device changed state (from presence). */
  async deviceState(device: string, state: { busy: boolean } | undefined): Promise<void> {
    // Agents
    const agent = agentOnDevice(this.agentStatus.get(device), state, this.deps.clock());
    if (agent.status) this.agentStatus.set(device, agent.status);
    else this.agentStatus.delete(device);
    if (agent.freed) await this.deps.kickDue(device);
    // Prospects whose line is this device
    if (!state) return;
    if (!this.linesLoaded) await this.devicesToWatch();
    const prospects = this.lineProspects.get(device);
    if (!prospects) return;
    for (const s of lineObservations(state, await this.deps.store.pendingLineWatchers([...prospects]))) {
      await this.deps.observe(s.id, s.observation);
    }
  }

  /** The agent's status as the policy sees it: device state, PBX reachability and our own other recalls. */
  async agentFor(request: CallbackRequest): Promise<AgentStatus> {
    if (!this.pbxUp) return { busy: true, since: this.deps.clock() };
    return this.agentGiven(request, await this.deps.store.list({ agent: request.agent, states: RECALL_STATES }));
  }

  /** agentFor with the agent's requests in a recall state already read. */
  agentGiven(request: CallbackRequest, recalls: readonly CallbackRequest[]): AgentStatus {
    return agentStatusFor(request, {
      pbxUp: this.pbxUp,
      now: this.deps.clock(),
      recalls,
      device: this.agentStatus.get(request.agent),
      paused: this.deps.pauseOf(request.agent),
    });
  }
}
