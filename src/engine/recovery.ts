/**
 * Recalls cut short by a failure elsewhere: after the PBX was reconciled (every recall channel this process does not
 * run has been hung up), a recall in the store that began before this process started serving and that no call of
 * this process carries belonged to an earlier run or to the instance that held the lease. It is recorded at once as
 * `recall-interrupted` instead of waiting for its safety deadline.
 */
import { RECALL_STATES, type CallbackRequest, type Observation } from '../core/policy';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import { iso, type RequestStore } from './options';

export interface RecoveryDeps {
  store: Pick<RequestStore, 'list'>;
  log: Logger;
  stopped: () => boolean;
  /** When this process last started serving (the engine's start()). */
  startedAt: () => number;
  /** Feeds an observation to a request (the engine's serialised decision path); truthy when a decision was applied. */
  observe: (requestId: string, observation: Observation) => Promise<unknown>;
}

/**
 * Records every orphaned recall as interrupted (never a snooze; rung again after policy.recoveryDelay); `runs` says
 * whether a call of this process carries the request. (The recall's start is the earlier instance's clock: with a
 * clock far ahead of ours the safety deadline still recovers it, the same way.) Returns how many were recorded.
 */
export async function reconcileRecalls(deps: RecoveryDeps, runs: (requestId: string) => boolean): Promise<number> {
  if (deps.stopped()) return 0;
  let list: CallbackRequest[];
  try {
    list = await deps.store.list({ states: RECALL_STATES });
  } catch (err) {
    deps.log.error('could not read the recalls to reconcile; their safety deadline recovers them', { error: (err as Error).message });
    return 0;
  }
  let n = 0;
  for (const r of list) {
    if (deps.stopped()) break;
    if (runs(r.id) || r.recallStartedAt === null || r.recallStartedAt >= deps.startedAt()) continue;
    const reason = 'the instance that rang the agent is gone (crash, restart or lost lease); its channel was hung up';
    emit(deps.log.child({ requestId: r.id }), 'warn', 'recall.interrupted', 'a recall of an earlier run was cut short; ringing again after the recovery delay', {
      how: 'orphaned',
      startedAt: iso(r.recallStartedAt),
      reason,
    });
    if (await deps.observe(r.id, { type: 'recallInterrupted', reason })) n++;
  }
  return n;
}
