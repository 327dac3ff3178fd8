/**
 * The read model of stored requests: the `--json` shape of one request, its history as policy events and the
 * "why" text. Used by the CLI (list, show, cancel) and the web page alike.
 */
import { CallbackRequest, PolicyEvent, RECALL_STATES, TERMINAL_STATES, describeSnapshot, explainRequest, headsUpActive } from '../core/policy';
import type { AgentPauseRow, StoredEvent } from '../store/contract';
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
    /** When the recall is due to ring, when foreseen (with policy.headsUp on); else null. */
    dueAt: iso(r.dueAt ?? null),
    /** The due time the agent was given a heads-up for (recall.due_soon), or null. */
    headsUpFor: iso(r.headsUpFor ?? null),
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

/**
 * The heads-up (policy.headsUp) of a request in words, for list and show: on now, or when it starts, and for which
 * due time; null when none is foreseen (no due time known, heads-up off, finished).
 */
export function headsUpText(r: Pick<CallbackRequest, 'state' | 'dueAt' | 'headsUpFor' | 'wakeAt' | 'timeZone'>, now: number): string | null {
  if ((TERMINAL_STATES as readonly string[]).includes(r.state) || r.dueAt == null || r.dueAt <= now) return null;
  const due = `the recall due at ${localTime(r.timeZone, r.dueAt, 'HH:mm:ss')} (${relative(r.dueAt, now)})`;
  if (headsUpActive(r, now)) return `on now, for ${due}`;
  // Before the heads-up the wake-up is its start (dueAt − headsUp); with the heads-up off it is the due time itself.
  if (r.wakeAt !== null && r.wakeAt < r.dueAt) return `from ${localTime(r.timeZone, r.wakeAt, 'HH:mm:ss')} (${relative(r.wakeAt, now)}), for ${due}`;
  return null;
}

/** An agent's pause in words, for list and show: "PJSIP/1001 paused by phone since 10:02:00, until resumed". */
export function pauseText(p: AgentPauseRow, timeZone: string, now: number): string {
  const until = p.until === null ? 'until resumed' : `until ${localTime(timeZone, p.until, 'HH:mm:ss')} (${relative(p.until, now)})`;
  return `${p.agent} paused by ${p.by} since ${localTime(timeZone, p.since, 'HH:mm:ss')}, ${until}: nothing rings them, due callbacks wait in order`;
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
export function showText(
  r: CallbackRequest,
  policyEvents: readonly PolicyEvent[],
  now: number,
  queue: ReadonlyArray<{ id: string; agent: string; state: string; createdAt: number }> = [],
  pause: AgentPauseRow | null = null,
): string {
  const lines = [explainRequest(r, policyEvents, { now, historyLimit: policyEvents.length })];
  if (r.contact) lines.push(`Prospect: ${prospectText(r)} (from the CRM)`);
  lines.push(`Profile: ${r.profile ?? '(default)'}: ${describeSnapshot(r.policy)}${r.policy ? ' (kept from the opt-in)' : ''}`);
  const headsUp = headsUpText(r, now);
  if (headsUp) lines.push(`Heads-up: ${headsUp}`);
  if (pause && !(TERMINAL_STATES as readonly string[]).includes(r.state)) lines.push(`Agent paused: ${pauseText(pause, r.timeZone, now)}`);
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
