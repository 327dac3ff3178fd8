/**
 * The read model of stored requests: the `--json` shape of one request, its history as policy events and the
 * "why" text. Used by the CLI (list, show, cancel) and the web page alike.
 */
import { CallbackRequest, PolicyEvent, RECALL_STATES, describeSnapshot, explainRequest } from '../core/policy';
import type { StoredEvent } from '../store/contract';
import { iso, localTime, relative } from './format';

/** The `--json` shape of one request (list, show, cancel). Tests and scripts depend on these names. */
export function requestJson(r: CallbackRequest) {
  return {
    id: r.id,
    agent: r.agent,
    agentCallerId: r.agentCallerId,
    prospect: r.prospect,
    state: r.state,
    mode: r.mode,
    language: r.language,
    waitingFor: r.waitingFor,
    reason: r.reason,
    outcome: r.outcome,
    attempts: r.attempts,
    snoozes: r.snoozes,
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
    wakeAt: iso(r.wakeAt),
    expiresAt: new Date(r.expiresAt).toISOString(),
    timeZone: r.timeZone,
    zoneSource: r.zoneSource ?? 'default',
    promise: r.carriedOver ? 'next-calling-day' : 'regular',
    carriedOverTo: r.carriedOver ? new Date(r.carriedOver.opensAt).toISOString() : null,
    /** The prospect's name and company from the CRM look-up (null: none known). */
    contact: r.contact ? { name: r.contact.name, company: r.contact.company ?? null } : null,
    /** The team profile chosen by the dialplan (null: the default policy). */
    profile: r.profile ?? null,
    /** The policy the request keeps (its snapshot at the opt-in), in words. */
    policy: describeSnapshot(r.policy),
  };
}

/** The prospect as people read it: "Anna Schmidt (Acme GmbH) 2001", or the number alone. */
export function prospectText(r: Pick<CallbackRequest, 'prospect' | 'contact'>): string {
  if (!r.contact) return r.prospect;
  return `${r.contact.name}${r.contact.company ? ` (${r.contact.company})` : ''} ${r.prospect}`;
}

/** A stored event as the policy wrote it (see toStoredEvents in src/ledger.ts). */
export function toPolicyEvent(e: StoredEvent): PolicyEvent {
  const data = e.data ?? {};
  return {
    at: e.at,
    type: e.type as PolicyEvent['type'],
    from: (e.from ?? null) as PolicyEvent['from'],
    to: (e.to ?? '') as PolicyEvent['to'],
    reason: e.reason ?? '',
    wakeAt: typeof data.wakeAt === 'number' ? data.wakeAt : null,
    waitingFor: (data.waitingFor ?? null) as PolicyEvent['waitingFor'],
  };
}

/**
 * What `show` prints for one request (also the web page's "why" text): the timeline, the queue for the number
 * when colleagues wait for it too (served in opt-in order, one recall at a time), and the next wake-up.
 */
export function showText(r: CallbackRequest, policyEvents: readonly PolicyEvent[], now: number, queue: ReadonlyArray<{ id: string; agent: string; state: string; createdAt: number }> = []): string {
  const lines = [explainRequest(r, policyEvents, { now, historyLimit: policyEvents.length })];
  if (r.contact) lines.push(`Prospect: ${prospectText(r)} (from the CRM)`);
  lines.push(`Profile: ${r.profile ?? '(default)'}: ${describeSnapshot(r.policy)}${r.policy ? ' (kept from the opt-in)' : ''}`);
  if (queue.length > 1 || (queue.length === 1 && queue[0].id !== r.id)) {
    lines.push(`Queue for ${r.prospect} (served in opt-in order, one recall at a time):`);
    queue.forEach((q, i) => lines.push(`  ${i + 1}. ${q.agent}  ${q.state}  opted in ${localTime(r.timeZone, q.createdAt)}  ${q.id}${q.id === r.id ? '  ← this request' : ''}`));
  }
  if (r.wakeAt !== null) {
    lines.push(`Next wake-up: ${localTime(r.timeZone, r.wakeAt)} ${r.timeZone} (${relative(r.wakeAt, now)}), because: ${r.reason}`);
    if (r.wakeAt < now - 60_000) lines.push('Note: this wake-up is overdue. Is the service running (considerate-callback run)?');
  }
  if ((RECALL_STATES as readonly string[]).includes(r.state)) {
    lines.push('Note: a recall is in progress on the PBX right now.');
  }
  return lines.join('\n');
}
