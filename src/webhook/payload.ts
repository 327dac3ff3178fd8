/**
 * CRM webhook payloads and signatures, pure.
 *
 * Every notification the policy emits (requested, completed, failed, expired, cancelled) becomes one
 * outbox row whose body is fixed when the transition is committed; the sender POSTs exactly that body on
 * every attempt, so the signature and the idempotency key never change between retries.
 *
 *   POST <webhook.url>
 *   Content-Type: application/json
 *   X-Considerate-Event: cancelled
 *   X-Considerate-Delivery: cc-3f9a0c12de-cancelled       (= body.id; also Idempotency-Key)
 *   X-Considerate-Timestamp: 1773139500                   (unix seconds of this attempt)
 *   X-Considerate-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with webhook.secret>
 *
 * The timestamp is signed with the body, so a captured request cannot be replayed later: a receiver
 * rejects a timestamp outside its window (five minutes, see {@link verify}) and remembers delivery ids.
 *
 *   {"id":"cc-3f9a0c12de-cancelled","event":"cancelled","occurredAt":"2026-03-10T10:45:00.000Z",
 *    "reason":"cancelled by agent","request":{"id":"3f9a0c12de","agent":"PJSIP/1001",…}}
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Action, CallbackRequest, Decision } from '../core/policy';
import type { OutboxInsert } from '../store/contract';

export const SIGNATURE_HEADER = 'X-Considerate-Signature';
export const EVENT_HEADER = 'X-Considerate-Event';
export const DELIVERY_HEADER = 'X-Considerate-Delivery';
export const TIMESTAMP_HEADER = 'X-Considerate-Timestamp';
/** How far a receiver accepts a timestamp from its own clock, by default. */
export const REPLAY_WINDOW_S = 300;

type Notify = Extract<Action, { type: 'notify' }>;

export interface WebhookPayload {
  /** Idempotency key: the same event of the same request always has the same id. */
  id: string;
  event: Notify['event'];
  occurredAt: string;
  reason: string;
  request: {
    id: string;
    agent: string;
    agentCallerId: { name: string; number: string };
    prospect: string;
    state: string;
    outcome: string | null;
    reason: string;
    attempts: number;
    createdAt: string;
    updatedAt: string;
    /** The prospect's time zone, in which the calling hours were applied. */
    timeZone: string;
    /** What the agent was promised: a callback when possible today, or on the next calling day (carried over). */
    promise: { kind: 'regular' | 'next-calling-day'; opensAt: string | null; expiresAt: string };
    /** The prospect's name and company from the CRM look-up, once known (null before / without one). */
    contact: { name: string; company: string | null } | null;
    /** The team profile chosen by the dialplan (null: the default policy). */
    profile: string | null;
  };
}

/** Sent when an agent pressed nothing because nothing was offered: outside calling hours, policy.afterHours = decline. */
export interface NotOfferedPayload {
  id: string;
  event: 'not-offered';
  occurredAt: string;
  reason: string;
  agent: string;
  prospect: string;
  timeZone: string;
}

/** The outbox row for a busy signal at which no callback was offered (nothing could be promised). */
export function notOfferedRow(agent: string, prospect: string, timeZone: string, reason: string, at: number): OutboxInsert {
  const id = `cc-not-offered-${createHash('sha256').update(`${agent}|${prospect}|${at}`).digest('hex').slice(0, 16)}`;
  const payload: NotOfferedPayload = { id, event: 'not-offered', occurredAt: new Date(at).toISOString(), reason, agent, prospect, timeZone };
  return { key: id, requestId: '-', event: 'not-offered', createdAt: at, body: JSON.stringify(payload) };
}

export function deliveryKey(requestId: string, event: string): string {
  return `cc-${requestId}-${event}`;
}

export function payloadFor(request: CallbackRequest, action: Notify, at: number): WebhookPayload {
  return {
    id: deliveryKey(request.id, action.event),
    event: action.event,
    occurredAt: new Date(at).toISOString(),
    reason: action.reason,
    request: {
      id: request.id,
      agent: request.agent,
      agentCallerId: { name: request.agentCallerId.name, number: request.agentCallerId.number },
      prospect: request.prospect,
      state: request.state,
      outcome: request.outcome,
      reason: request.reason,
      attempts: request.attempts,
      createdAt: new Date(request.createdAt).toISOString(),
      updatedAt: new Date(request.updatedAt).toISOString(),
      timeZone: request.timeZone,
      promise: {
        kind: request.carriedOver ? 'next-calling-day' : 'regular',
        opensAt: request.carriedOver ? new Date(request.carriedOver.opensAt).toISOString() : null,
        expiresAt: new Date(request.expiresAt).toISOString(),
      },
      contact: request.contact ? { name: request.contact.name, company: request.contact.company ?? null } : null,
      profile: request.profile ?? null,
    },
  };
}

/** The outbox rows for a decision's notify actions (none if it has none). */
export function outboxRowsFor(decision: Pick<Decision, 'request' | 'actions'>, at: number): OutboxInsert[] {
  return decision.actions
    .filter((a): a is Notify => a.type === 'notify')
    .map((a) => {
      const payload = payloadFor(decision.request, a, at);
      return { key: payload.id, requestId: decision.request.id, event: a.event, createdAt: at, body: JSON.stringify(payload) };
    });
}

/** `sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<raw body>` with the secret (timestamp in unix seconds). */
export function sign(body: string | Buffer, secret: string, timestamp: number): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/**
 * For receivers (and tests): the signature header matches `<timestamp>.<raw body>` (constant-time), and
 * the timestamp is within `windowS` of `now` (unix seconds) — an old or future request is a replay.
 */
export function verify(
  body: string | Buffer,
  secret: string,
  header: string | undefined,
  timestampHeader: string | undefined,
  opts: { now?: number; windowS?: number } = {},
): boolean {
  if (!header || !timestampHeader || !/^\d{1,12}$/.test(timestampHeader)) return false;
  const ts = Number(timestampHeader);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > (opts.windowS ?? REPLAY_WINDOW_S)) return false;
  const want = Buffer.from(sign(body, secret, ts));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}
