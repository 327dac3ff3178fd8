/**
 * The scheduler's rules, pure: given the time, the requests the shell read and what just happened (a wake-up,
 * an agent freed, a prospect's number freed), which requests get which observation, in order. No I/O, no
 * clock: the engine (src/engine/) reads the candidates from the store and dispatches the observations; the
 * command line's `explain` (src/cli/explain.ts) runs the same rules over its simulated request. Presence's rules too:
 * how a device event changes the agent's status and which observations it makes (src/engine/presence.ts reads and
 * dispatches), and the agent's status as the policy sees it.
 *
 *  - wake: every non-finished request whose wake-up has come gets a tick, earliest first;
 *  - agentFree: the agent's DUE requests are re-evaluated at once (the core allows an early tick) instead of
 *    at the next re-check;
 *  - numberFreed: a request of the number left its recall or ended; the others that are DUE may go now — those
 *    of this PBX only (another PBX's request is its own instance's to ring: this one would ring its agent on the
 *    wrong PBX).
 */
import { isTerminal, type AgentPause, type AgentStatus, type CallbackRequest, type Colleagues, type Observation } from './policy';

export type SchedulerCause = { kind: 'wake' } | { kind: 'agentFree'; agent: string } | { kind: 'numberFreed'; prospect: string; except: string };

/** The fields of a request the scheduler looks at (a stored row's state is text). */
export interface Schedulable {
  id: string;
  agent: string;
  prospect: string;
  state: CallbackRequest['state'] | string;
  wakeAt?: number | null;
  /** False for a request of another PBX (PostgreSQL with several PBXs); absent: this PBX's. */
  samePbx?: boolean;
}

export interface Scheduled {
  id: string;
  observation: Observation;
}

const TICK: Observation = { type: 'tick' };

/** The observations `cause` calls for among `candidates` at `now`, in the order they are to be applied. */
export function scheduled(now: number, candidates: readonly Schedulable[], cause: SchedulerCause): Scheduled[] {
  const open = candidates.filter((r) => !isTerminal(r.state as CallbackRequest['state']));
  switch (cause.kind) {
    case 'wake':
      return open
        .filter((r) => r.wakeAt !== null && r.wakeAt !== undefined && r.wakeAt <= now)
        .sort((a, b) => (a.wakeAt as number) - (b.wakeAt as number))
        .map((r) => ({ id: r.id, observation: TICK }));
    case 'agentFree':
      return open.filter((r) => r.agent === cause.agent && r.state === 'DUE').map((r) => ({ id: r.id, observation: TICK }));
    case 'numberFreed':
      return open.filter((r) => r.prospect === cause.prospect && r.id !== cause.except && r.state === 'DUE' && r.samePbx !== false).map((r) => ({ id: r.id, observation: TICK }));
  }
}

/** A request in the queue for one prospect number, in opt-in order (the store's `prospectQueue`). */
export interface QueuedRequest {
  id: string;
  agent: string;
  state: CallbackRequest['state'] | string;
}

/** The latest recall of a colleague that reached the prospect (the store's `lastConversation`). */
export interface LastConversationSeen {
  connectedAt: number;
  endedAt: number | null;
  samePbx: boolean;
}

/**
 * The colleagues of `request` for its number, as the policy weighs them: how many are ahead (opted in earlier, or on
 * a recall now) and when a colleague's recall last reached the prospect. A conversation on this PBX that began before
 * this process served it (`servingSince`) and whose end was never recorded ended at the latest then: serving began
 * with hanging up every recall channel an earlier run left. A call on another PBX still counts.
 */
export function colleaguesFrom(queue: readonly QueuedRequest[], request: { id: string; agent: string }, last: LastConversationSeen | null, servingSince?: number): Colleagues {
  const mine = queue.findIndex((q) => q.id === request.id);
  let ahead = 0;
  queue.forEach((q, i) => {
    if (q.id === request.id || q.agent === request.agent) return;
    if ((mine >= 0 && i < mine) || q.state === 'RINGING_AGENT' || q.state === 'CONNECTING') ahead++;
  });
  const reconciledAway = last?.endedAt === null && last.samePbx && servingSince !== undefined && last.connectedAt < servingSince;
  const endedAt = reconciledAway ? (servingSince as number) : (last?.endedAt ?? null);
  return { ahead, lastConnectedAt: last?.connectedAt ?? null, lastCallEndedAt: last ? endedAt : null };
}

/**
 * An agent's place in the queue for a number (1 = first; a newcomer goes last) and the colleagues waiting, in order.
 * The specification of the store's `prospectPlace`, which counts the same in SQL without reading the whole queue
 * (test/unit/store-contract.test.ts compares the two).
 */
export function placeOf(queue: readonly QueuedRequest[], agent: string): { position: number; queued: boolean; others: string[] } {
  const own = queue.findIndex((q) => q.agent === agent);
  return { position: own >= 0 ? own + 1 : queue.length + 1, queued: own >= 0, others: queue.filter((q) => q.agent !== agent).map((q) => q.agent) };
}

/** An agent whose device was never seen: free, and free since long ago. */
export const AGENT_FREE_LONG_AGO: AgentStatus = { busy: false, since: 0 };

/**
 * An agent device's state changed (presence): the agent's status now (undefined: unknown, forgotten) and whether the
 * agent just became free (their due requests may go at once: cause `agentFree`). The first state seen of a free
 * device counts as free since long ago; a device seen busy, or a change, counts from `now`.
 */
export function agentOnDevice(before: AgentStatus | undefined, state: { busy: boolean } | undefined, now: number): { status: AgentStatus | undefined; freed: boolean } {
  if (!state) return { status: undefined, freed: false };
  if (before && before.busy === state.busy) return { status: before, freed: false };
  return { status: { busy: state.busy, since: before ? now : state.busy ? now : 0 }, freed: before !== undefined && !state.busy };
}

/** A line's state changed: the observation for each pending request watching it (none while the state is unknown). */
export function lineObservations(state: { busy: boolean } | undefined, watchers: readonly string[]): Scheduled[] {
  if (!state) return [];
  return watchers.map((id) => ({ id, observation: { type: 'prospectState', busy: state.busy } }));
}

/**
 * The agent's status as the policy sees it for `request`: busy while the PBX is unreachable or while another request
 * of the agent is on a recall (two due callbacks of one agent never ring together), else the device's status (free
 * since long ago when never seen); with the agent's pause, if one is in force.
 */
export function agentStatusFor(
  request: { id: string },
  seen: { pbxUp: boolean; now: number; recalls: readonly { id: string }[]; device: AgentStatus | undefined; paused: AgentPause | null },
): AgentStatus {
  const status = (s: AgentStatus): AgentStatus => (seen.paused ? { ...s, paused: seen.paused } : s);
  if (!seen.pbxUp) return status({ busy: true, since: seen.now });
  if (seen.recalls.some((r) => r.id !== request.id)) return status({ busy: true, since: seen.now });
  return status(seen.device ?? AGENT_FREE_LONG_AGO);
}
