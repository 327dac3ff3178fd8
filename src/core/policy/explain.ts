/**
 * "Why is this request waiting, and until when?" — answered from the request and its events alone.
 */
import { tz } from '@date-fns/tz';
import { format } from 'date-fns';
import { localLabel } from './calling-hours';
import type { CallbackRequest, PolicyEvent, WaitingFor } from './types';
import { isTerminal } from './types';

export interface ExplainOptions {
  /** Reference instant for short labels ('10:45' vs 'Mon 09:00'); defaults to the request's updatedAt. */
  now?: number;
  /** How many of the latest events to list (default 10; 0 = none). */
  historyLimit?: number;
}

/** A one-line answer, e.g. 'GRACE: grace until 10:45 (wakes 10:45; expires 18:00)'. */
export function summarizeRequest(request: CallbackRequest, now: number = request.updatedAt): string {
  const L = (at: number) => localLabel(request.timeZone, at, now);
  if (isTerminal(request.state)) return `${request.state}: ${request.reason}`;
  const wake = request.wakeAt === null ? 'no wake-up set' : `wakes ${L(request.wakeAt)}`;
  return `${request.state}: ${request.reason} (${wake}; expires ${L(request.expiresAt)})`;
}

/**
 * A multi-line explanation: the summary, the key facts, and the latest events (oldest first).
 * Times are local to the request's time zone (the prospect's calling-hours zone), with ISO instants for wake-up
 * and expiry.
 */
export function explainRequest(request: CallbackRequest, events: readonly PolicyEvent[] = [], options: ExplainOptions = {}): string {
  const now = options.now ?? request.updatedAt;
  const limit = options.historyLimit ?? 10;
  const zone = { in: tz(request.timeZone) };
  const full = (at: number) => format(at, 'yyyy-MM-dd HH:mm:ss', zone);
  const iso = (at: number) => new Date(at).toISOString();
  const lines: string[] = [];
  lines.push(`Callback ${request.id}: ${request.agent} → ${request.prospect} (${request.mode === 'device' ? 'internal, device watched' : 'external, timed probes'})`);
  lines.push(summarizeRequest(request, now));
  lines.push(`Prospect's time zone: ${request.timeZone} (${ZONE_SOURCE[request.zoneSource ?? 'default']})`);
  if (request.carriedOver) {
    lines.push(
      `Promise: carried over to the next calling day, opening ${full(request.carriedOver.opensAt)} ${request.timeZone}; the agent was told "we will call you back on the next calling day"`,
    );
  }
  if (!isTerminal(request.state)) {
    if (request.wakeAt !== null) {
      const what = request.waitingFor === null ? 'nothing (ringing the agent next)' : `${WAITING_FOR[request.waitingFor]} (${request.waitingFor})`;
      lines.push(`Waiting for: ${what}; next check ${full(request.wakeAt)} ${request.timeZone} (${iso(request.wakeAt)})`);
    }
    const why =
      request.expiresBecause === 'max-age'
        ? 'maximum age'
        : request.expiresBecause === 'carry-over'
          ? `end of the calling day${request.carriedOver && request.carriedOver.calledDays > 1 ? `s (${request.carriedOver.calledDays})` : ''} it was carried over to`
          : "end of the prospect's calling day";
    lines.push(`Expires: ${full(request.expiresAt)} ${request.timeZone} (${iso(request.expiresAt)}, ${why})`);
  } else {
    lines.push(`Outcome: ${request.outcome ?? 'unknown'}`);
  }
  const refreshed = request.refreshedAt === null ? '' : `, refreshed ${request.refreshes}× (last ${full(request.refreshedAt)})`;
  lines.push(`Created ${full(request.createdAt)}${refreshed}; attempts ${request.attempts}, snoozes ${request.snoozes}, agent rung ${request.rings}×`);
  const shown = limit > 0 ? events.slice(-limit) : [];
  if (shown.length > 0) {
    lines.push(events.length > shown.length ? `History (last ${shown.length} of ${events.length}):` : 'History:');
    for (const e of shown) {
      const arrow = e.from === null ? `→ ${e.to}` : e.from === e.to ? e.to : `${e.from} → ${e.to}`;
      lines.push(`  ${full(e.at)}  ${e.type}: ${arrow} — ${e.reason}`);
    }
  }
  return lines.join('\n');
}

const ZONE_SOURCE: Record<NonNullable<CallbackRequest['zoneSource']>, string> = {
  number: "from the number's country and area code",
  override: 'admin override by prefix',
  default: 'configured calling-hours zone',
};

const WAITING_FOR: Record<WaitingFor, string> = {
  'prospect-busy': "the prospect's line to be free",
  grace: 'the grace period to end',
  probe: 'the first probe of the external line',
  backoff: 'the back-off after a busy attempt to end',
  snooze: 'the snooze to end',
  'no-answer-retry': 'the retry after no answer',
  recovery: 'the short recovery delay after a recall the service itself cut short',
  'calling-hours': "the prospect's calling hours to open",
  'agent-busy': 'the agent to finish their call',
  'agent-wrap-up': "the agent's wrap-up gap to end",
  'agent-paused': 'the agent to resume their callbacks (paused)',
  agent: 'the agent to answer and choose',
  'prospect-answer': 'the prospect to answer',
  colleague: 'a colleague who opted in earlier for the same number',
};
