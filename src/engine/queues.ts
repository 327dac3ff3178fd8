/**
 * Who goes next, outside the timer: an agent's due requests when the agent became free, resumed or the PBX came
 * back (`kickDue`), the next agent waiting for a number when a request of it left its recall or ended
 * (`kickProspect`, core/scheduler.ts `numberFreed`), and the number's colleagues as the policy weighs them
 * (`colleaguesOf`, core/scheduler.ts `colleaguesFrom`). Every observation goes through the engine's serialised
 * decision path (`observe`).
 */
import type { CallbackRequest, Colleagues, Observation } from '../core/policy';
import { colleaguesFrom, scheduled } from '../core/scheduler';
import type { Logger } from '../logging/log';
import type { Ledger } from '../ledger';
import type { RequestStore } from './options';

export interface QueuesDeps {
  store: Pick<RequestStore, 'list' | 'idsInState' | 'prospectQueue' | 'lastConversation'>;
  ledger: Pick<Ledger, 'conversationEnded'>;
  log: Logger;
  clock: () => number;
  stopped: () => boolean;
  /** Feeds an observation to a request (the engine's serialised decision path). */
  observe: (requestId: string, observation: Observation) => Promise<unknown>;
  /** When this process first served the PBX (src/engine/presence.ts). */
  servingSince: () => number | undefined;
}

export class Queues {
  constructor(private readonly deps: QueuesDeps) {}

  /** A request of this prospect ended or left its recall: the next agent in the queue may go (soon, not nested). */
  kickProspect(prospect: string, except: string): void {
    if (this.deps.stopped()) return;
    // Not awaited by the caller: it runs after the current decision (observe waits its turn in `exclusive`).
    setImmediate(() => {
      void (async () => {
        if (this.deps.stopped()) return;
        try {
          const queue = (await this.deps.store.prospectQueue(prospect)).map((q) => ({ ...q, prospect }));
          for (const s of scheduled(this.deps.clock(), queue, { kind: 'numberFreed', prospect, except })) {
            if (this.deps.stopped()) return;
            await this.deps.observe(s.id, s.observation);
          }
        } catch (err) {
          this.deps.log.error('could not wake the next agent for the number', { prospect, error: (err as Error).message });
        }
      })();
    });
  }

  /** Re-evaluates DUE requests now (an agent became free, the PBX came back). */
  async kickDue(agent?: string): Promise<void> {
    if (this.deps.stopped()) return;
    try {
      // One agent's due requests in opt-in order (a pause held them: the earliest goes first when it ends).
      const ids = agent
        ? (await this.deps.store.list({ agent, states: ['DUE'] })).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map((r) => r.id)
        : await this.deps.store.idsInState('DUE');
      for (const id of ids) await this.deps.observe(id, { type: 'tick' });
    } catch (err) {
      this.deps.log.error('could not re-evaluate due callbacks', { agent, error: (err as Error).message });
    }
  }

  /** Other agents' requests for the same number, for the ledger's decision context (core/scheduler.ts `colleaguesFrom`). */
  async colleaguesOf(request: CallbackRequest): Promise<Colleagues> {
    const queue = await this.deps.store.prospectQueue(request.prospect);
    return colleaguesFrom(queue, request, await this.deps.store.lastConversation(request.prospect, request.agent), this.deps.servingSince());
  }

  /** A connected recall's conversation ended (recall flow): recorded in its history; the next colleague may follow. */
  async conversationEnded(requestId: string): Promise<void> {
    let prospect: string;
    try {
      const current = await this.deps.ledger.conversationEnded(requestId, this.deps.clock());
      if (!current) return;
      prospect = current.prospect;
    } catch (err) {
      this.deps.log.error('could not record the end of the conversation', { requestId, error: (err as Error).message });
      return;
    }
    this.kickProspect(prospect, requestId);
  }
}
