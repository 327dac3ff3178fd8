/**
 * The scheduler's rules, pure: given the time, the requests the shell read and what just happened (a wake-up,
 * an agent freed, a prospect's number freed), which requests get which observation, in order. No I/O, no
 * clock: the engine (src/engine.ts) reads the candidates from the store and dispatches the observations; the
 * command line's `explain` (src/cli/explain.ts) runs the same rules over its simulated request.
 *
 *  - wake: every non-finished request whose wake-up has come gets a tick, earliest first;
 *  - agentFree: the agent's DUE requests are re-evaluated at once (the core allows an early tick) instead of
 *    at the next re-check;
 *  - numberFreed: a request of the number left its recall or ended; the others that are DUE may go now — those
 *    of this PBX only (another PBX's request is its own instance's to ring: this one would ring its agent on the
 *    wrong PBX).
 */
import { isTerminal, type CallbackRequest, type Colleagues, type Observation } from './policy';

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

/** An agent's place in the queue for a number (1 = first; a newcomer goes last) and the colleagues waiting, in order. */
export function placeOf(queue: readonly QueuedRequest[], agent: string): { position: number; queued: boolean; others: string[] } {
  const own = queue.findIndex((q) => q.agent === agent);
  return { position: own >= 0 ? own + 1 : queue.length + 1, queued: own >= 0, others: queue.filter((q) => q.agent !== agent).map((q) => q.agent) };
}
