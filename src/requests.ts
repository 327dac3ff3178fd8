/**
 * Callback requests as the service stores them, and the opt-in write (the agent pressed #).
 */
import { randomBytes } from 'node:crypto';
import type { Config } from './config/load';
import type { OfferRequestInput } from './asterisk/offer-flow';
import { RequestRecord, SqliteStore, StoredEvent } from './store/sqlite';

export interface CallbackRecord extends RequestRecord {
  agentCallerId: { name: string; number: string };
  language: string;
}

export type RequestStore = SqliteStore<CallbackRecord>;

export function openRequestStore(file: string, opts: { readonly?: boolean } = {}): RequestStore {
  return SqliteStore.open<CallbackRecord>(file, opts);
}

export function newRequestId(): string {
  return randomBytes(5).toString('hex');
}

export type OptInResult = { result: 'created' | 'refreshed'; requestId: string } | { result: 'full'; pending: number };

/** The durable opt-in: one transaction, committed before the agent hears the confirmation. */
export function optIn(store: RequestStore, input: OfferRequestInput, config: Config, now: number): OptInResult {
  const r = store.createOrRefresh(
    input.agent,
    input.prospect,
    config.offer.maxPendingPerAgent,
    () => {
      const request: CallbackRecord = {
        id: newRequestId(),
        agent: input.agent,
        agentCallerId: input.agentCallerId,
        prospect: input.prospect,
        language: input.language,
        state: 'WAITING',
        createdAt: now,
        updatedAt: now,
        wakeAt: null,
      };
      const events: StoredEvent[] = [
        { requestId: request.id, at: now, type: 'requested', from: null, to: 'WAITING', reason: 'agent pressed # at the busy signal', data: { channelId: input.channelId } },
      ];
      return { request, events };
    },
    (existing) => {
      const request: CallbackRecord = { ...existing, agentCallerId: input.agentCallerId, language: input.language, updatedAt: now };
      const events: StoredEvent[] = [
        { requestId: existing.id, at: now, type: 'refreshed', from: existing.state, to: existing.state, reason: 'agent pressed # again for the same prospect', data: { channelId: input.channelId } },
      ];
      return { request, events };
    },
  );
  if (r.result === 'full') return r;
  return { result: r.result, requestId: r.request.id };
}
