/**
 * What the engine's parts share (src/engine/): the store as they use it, the ports the engine dispatches to, the
 * options the service gives. Types only, and the one formatting helper they all log with.
 */
import type { Action, CallbackRequest, Contact, Decision, Observation, PolicyConfig, Profiles } from '../core/policy';
import type { DialPolicy } from '../core/dial-policy';
import type { Logger } from '../logging/log';
import type { OutboxInsert, OutboxStore, RequestStore as RequestContract } from '../store/contract';
import type { GroupTx } from '../store/db';

/** The store as the engine uses it: the requests of the contract (SQLite or PostgreSQL) and the outbox's enqueue. */
export type RequestStore = RequestContract<CallbackRequest> & Pick<OutboxStore, 'enqueueOutbox'> & { group?(opts?: { quick?: boolean }): Promise<GroupTx> };

/** A decision the engine persisted and carried out (for metrics and the agent's lamp). */
export interface AppliedDecision {
  /** The request before the decision; undefined for a new request. */
  before?: CallbackRequest;
  decision: Decision;
  /** `annotate`: a fact written beside the policy (the CRM's name), no state change. */
  observation: Observation | { type: 'optIn' } | { type: 'annotate' };
  at: number;
}

/** Carries out the policy's telephony actions (the ARI recall flow implements it). */
export interface Telephony {
  execute(request: CallbackRequest, action: Exclude<Action, { type: 'notify' }>): Promise<void>;
}

/** Receives the policy's notifications (a CRM webhook, or just the log). */
export type Notifier = (request: CallbackRequest, action: Extract<Action, { type: 'notify' }>) => void;

export interface EngineOptions {
  store: RequestStore;
  policy: PolicyConfig;
  log: Logger;
  clock?: () => number;
  maxPendingPerAgent: number;
  /** The PBX device of an internal prospect (its line state is watched), or undefined for external numbers. */
  prospectDevice: (prospect: string) => string | undefined;
  /** Longest single timer delay; long waits are re-armed. */
  maxTimerMs?: number;
  /**
   * How often the agents' pauses are re-read besides every tick (ms; 0: only on ticks), so a pause written by another
   * process (the command line, another instance) reaches the lamp and the waiting requests without a due request first.
   */
  pauseWatchMs?: number;
  /**
   * Outbox rows (CRM webhook) for a decision's notify actions, written in the same transaction as the
   * transition (src/webhook/payload.ts `outboxRowsFor`). Unset: notifications are not queued.
   */
  outbox?: (decision: Decision, at: number) => OutboxInsert[];
  /** The CRM row for a busy signal at which nothing was offered (src/webhook/payload.ts `notOfferedRow`). */
  notOffered?: (agent: string, prospect: string, timeZone: string, reason: string, at: number) => OutboxInsert;
  /**
   * Which agent devices may be rung and which numbers dialled (src/core/dial-policy.ts): checked at the
   * opt-in and again before every ringAgent / dialProspect. Unset: no restriction (unit tests).
   */
  dialPolicy?: DialPolicy;
  /** Pending requests over all agents; an opt-in beyond it gets 'full'. Unset: no global cap. */
  maxPendingTotal?: number;
  /** False while this instance may not act for its PBX (a lost lease); actions are then skipped. */
  canAct?: () => boolean;
  /** Team profiles (config `profiles`), chosen per call by the dialplan. Unset: none. */
  profiles?: Profiles;
  /**
   * The CRM look-up (src/webhook/lookup.ts): `cached` answers at once from what is known, `lookup` asks the CRM
   * (never rejects). Started after the opt-in is stored; the name is written to the request when it arrives.
   */
  contacts?: { cached(prospect: string): Contact | null | undefined; lookup(prospect: string): Promise<{ found: true; contact: Contact } | { found: false } | undefined> };
  /** Carries out the telephony actions (the recall flow). Unset: they are logged and skipped (tests of decisions only). */
  telephony?: Telephony;
  /** Receives the notify actions (the service logs them and kicks the webhook sender). */
  notify?: Notifier;
  /** A device to watch: a pending request's agent or internal prospect line (presence subscribes to it). */
  watch?: (device: string) => void;
  /** An outbox row was queued outside a decision (the not-offered event): the webhook sender may send it now. */
  outboxQueued?: () => void;
  /** Most decisions sharing one commit (group commit, src/store/group.ts). Default 16. */
  maxGroup?: number;
  /** Test seam: before a group's COMMIT (src/store/group.ts GroupCommitOptions.beforeCommit). */
  beforeCommit?: (size: number) => Promise<void> | void;
}

/** A time for the log: ISO 8601, or null. */
export function iso(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}
