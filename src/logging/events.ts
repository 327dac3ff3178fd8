/**
 * The service's observable events: one catalogue of stable names and their fields.
 *
 * Every log line that tests, the demo, the bench (and later metrics or the web page) wait on carries a
 * field `event` with one of the names below. The message next to it is for people and may change; the
 * name and the fields listed here are the contract. Add an event here first, then emit it with
 * {@link emit}; a name or field that is not declared here does not compile.
 *
 * Naming: `<area>.<what happened>` in snake case, past tense or a state (`offer.opted_in`,
 * `recall.agent_answered`). Every line also carries the logger's context fields (`component`,
 * `channelId`, and once known `requestId`, `agent`, `prospect`).
 */
type Level = 'debug' | 'info' | 'warn' | 'error';

/** What {@link emit} needs of a logger (the winston logger of src/logging/log.ts has it); keeps the catalogue free of the logger. */
export interface EventSink {
  log(level: Level, message: string, meta: Record<string, unknown>): unknown;
  /** Whether a line of this level would be written (winston's); absent: every line is handed to `log`. */
  isLevelEnabled?(level: Level): boolean;
  /** The line of an event, as `log(level, message, { ...fields, event })` writes it (the direct logger of log.ts). */
  logEvent?(level: Level, message: string, fields: object, event: string): void;
}

export interface EventCatalogue {
  // ── service ────────────────────────────────────────────────────────────────────────────────────
  /** The service has been wired and starts (store, ARI URL, app). */
  'service.starting': { store: string; ari: string; app: string };
  /** The service stopped; how late the event loop was while it ran (ms above the 5 ms sampling). */
  'service.stopped': { eventLoopDelayMs?: { p50: number; p99: number; max: number }; ariWebSocket?: { frames: number; writes: number }; stopMs?: number };
  /** A channel entered the Stasis app with arguments no flow knows; it goes back to the dialplan. */
  'service.unknown_stasis_args': { args: string[] };

  // ── ARI connection (src/telephony/ari/connection.ts) ─────────────────────────────────────────────────
  /** The app's WebSocket is up (first connection or a reconnection); after an outage, how long it lasted and the failed attempts. */
  'ari.connected': { url: string; app: string; how: string; outageMs?: number; attempts?: number };
  /** The WebSocket went away; calls in progress are reconciled at the next `ari.connected`. */
  'ari.disconnected': { reason: string };
  /** Another instance holds the app's lease on this PBX; this one waits. */
  'ari.standby': { app: string; activeInstance?: string };
  /** The active instance is gone; this one takes over the app. */
  'ari.takeover': { app: string };

  // ── PostgreSQL coordination (src/coordination) ─────────────────────────────────────────────────
  /** This instance took the database lease of (pbx, app): it serves that PBX now, writing with `epoch`. */
  'lease.taken': { pbx: string; app: string; epoch: number; holder: string };
  /**
   * This instance lost (or gave up) the lease; it no longer acts for the PBX. It stays running as a stand-by
   * (readiness false, `standby` true) and takes the lease again when it can (`lease.taken`, a new epoch).
   */
  'lease.lost': { pbx: string; app: string; reason: string };
  /** A decided action was not carried out because this instance no longer holds the PBX's lease. */
  'lease.action_skipped': { action: string };
  /**
   * A lease check (renew or acquire) failed: the database cannot be reached. Logged once when the failures begin;
   * `active`: whether this instance held the lease then (it keeps it until the TTL runs out, then `lease.lost`).
   * A stand-by keeps trying with back-off; the instance never exits for it.
   */
  'lease.unreachable': { pbx: string; app: string; error: string; active: boolean };
  /** Lease checks work again after `lease.unreachable` (`failedMs`, `attempts` failed, `active` now). */
  'lease.reachable': { pbx: string; app: string; failedMs: number; attempts: number; active: boolean };

  // ── FastAGI (src/telephony/agi/server.ts) ────────────────────────────────────────────────────────────────
  /** The FastAGI server is bound and accepts calls. */
  'agi.listening': { host: string; port: number; auth?: 'secret required' | 'no secret'; allowedPeers?: readonly string[] };

  // ── the offer at the busy signal (src/flows/offer.ts) ──────────────────────────────────────────
  /** The dialplan handed over bad input (prospect, agent device); no offer, the caller hears busy. */
  'offer.refused': { reason: string; args: string[]; entry: 'ari' | 'agi' };
  /**
   * A busy call entered the offer: the prompt is about to play. With the service's preparation (after-hours promise, queue, zone):
   * `promise` regular, next-calling-day or declined (after hours), the agent's `position` in the queue for the
   * number, the agents ahead (`queue`), the prospect's zone (`timeZone`, `zoneSource`, `zoneNote`) and `why`.
   */
  'offer.started': {
    hangupCause?: number;
    language: string;
    entry: 'ari' | 'agi';
    promise?: 'regular' | 'next-calling-day' | 'declined';
    position?: number;
    /** The first agents waiting for the number (at most 10), in opt-in order; `waiting` how many in all. */
    queue?: string[];
    waiting?: number;
    timeZone?: string;
    zoneSource?: string;
    zoneNote?: string;
    why?: string;
  };
  /** The offer could not be prepared (zone or queue lookup failed); a regular offer plays. */
  'offer.prepare_failed': { error: string };
  /** A prompt of the offer starts (debug): which media, e.g. sound:cc-queue-2. */
  'offer.prompt_playing': { prompt: string; media: string };
  /**
   * Nothing could be promised at this busy signal (policy.afterHours = decline, or no calling day ahead): no
   * request; the agent hears the reason (src/engine/opt-in.ts noOffer; a 'not-offered' CRM event when a webhook is set).
   */
  'offer.closed': { agent: string; prospect: string; timeZone: string; reason: string };
  /** The agent pressed a key during the offer (`phase`: where the machine was). */
  'offer.key': { digit: string; phase: string };
  /** A prompt of the offer ended: `state` done (played), failed (could not be played), stopped (a key). */
  'offer.prompt_finished': { prompt: string; state: 'done' | 'failed' | 'stopped' };
  /** A prompt could not be played (a missing sound file): an error for the operator. */
  'offer.prompt_failed': { prompt: string; media: string; error?: string };
  /**
   * The agent pressed `#` and the request is durable (committed) before the agent is told.
   * `result`: created (new) or refreshed (an existing pending one). Timings for `npm run bench`:
   * `commitMs` store asked → durable, `keyToDurableMs` key event received → durable (the moment the group's commit
   * and, on SQLite, the WAL's sync completed, stamped by src/store/group.ts; until 2026-12-07 it ended when the flow
   * heard back, after the side effects), `afterDurableMs` durable → the flow heard back, `committedAt` epoch ms of
   * the durable moment.
   */
  'offer.opted_in': {
    requestId: string;
    result: 'created' | 'refreshed';
    /** regular, or next-calling-day (carried over after hours). */
    promise?: 'regular' | 'next-calling-day';
    /** The agent's place in the queue for the number (1: first). */
    position?: number;
    entry: 'ari' | 'agi';
    /** The flow asked to store → the opt-in durable (the group's commit and, on SQLite, the WAL's sync completed). */
    commitMs: number;
    /** The key event reached the call's port → the opt-in durable (the moment the group stamped, see group.ts). */
    keyToDurableMs?: number;
    /** Durable → the flow heard back (the decision's side effects, the hand-back). */
    afterDurableMs?: number;
    committedAt: number;
  };
  /**
   * The opt-in's steps in ms, logged once the confirmation (or the refresh's prompt) is requested, for
   * `npm run bench`'s breakdown (flows/offer.ts optInSteps): keyToStore, queued, read, decide, writeCommit,
   * position, handBack, confirm, keyToConfirm (key event routed → confirmation requested).
   */
  'offer.timing': { prompt: string; keyToStore?: number; queued?: number; read?: number; decide?: number; writeCommit?: number; position?: number; handBack?: number; confirm?: number; keyToConfirm?: number };
  /** The agent has too many pending callbacks; nothing was stored. */
  'offer.full': { pending: number };
  /** The store refused the write; the agent hears that no callback was scheduled. */
  'offer.store_failed': { error: string };
  /** A call action (answer, hang-up, …) failed during the offer; the offer ends. */
  'offer.call_failed': { error: string; phase: string };
  /** The offer is over. `outcome`: requested, refreshed, full, declined, timeout, hangup, store-failed. */
  'offer.ended': { outcome: string; key?: string; requestId?: string; entry: 'ari' | 'agi' };

  // ── the recall (src/flows/recall.ts) ───────────────────────────────────────────────────────────
  /** The agent's phone is rung, labelled "Callback: <prospect>". */
  'recall.ringing_agent': { agent: string; callerId: string; attempt: number };
  /** Originating the agent's call failed. */
  'recall.ring_failed': { error: string };
  /** The agent answered the recall: the menu follows. */
  'recall.agent_answered': Record<string, never>;
  /** The agent chose in the menu (1 connect, 2 snooze, 3 cancel). */
  'recall.agent_key': { key: '1' | '2' | '3' };
  /** No key within the menu timeout after the menu was played. */
  'recall.menu_timeout': Record<string, never>;
  /** The prospect is being dialled with the agent's caller ID (the agent hears ringback). */
  'recall.dialling_prospect': { prospect: string; callerId: string; attempt: number; prospectChannelId: string };
  /** Dialling the prospect (bridge, originate) failed. */
  'recall.dial_failed': { error: string };
  /** The prospect answered: the two are being bridged. */
  'recall.prospect_answered': Record<string, never>;
  /** The prospect's line was busy at the recall. */
  'recall.prospect_busy': { dialStatus?: string; cause?: number };
  /** The prospect did not answer (or the call failed otherwise). */
  'recall.prospect_no_answer': { dialStatus?: string; cause?: number };
  /** Bridging agent and prospect failed. */
  'recall.bridge_failed': { error: string };
  /** The agent did not answer the recall. */
  'recall.agent_no_answer': { dialStatus?: string; cause?: number };
  /** The agent hung up before the prospect answered. */
  'recall.agent_hung_up': { cause?: number };
  /** The request ended elsewhere (CLI, *82) while its recall call was up; the call is ended. */
  'recall.abandoned': { state: string };
  /** A recall channel entered the app that no recall in this process knows (restart); hung up. */
  'recall.unknown_channel': { args: string[] };
  /** A connected recall's conversation ended (one side hung up): the next colleague's recall for the number may follow. */
  'recall.conversation_ended': Record<string, never>;
  /** A returned recall: the agent's own call (to the service number) became this request's recall, at the menu. */
  'recall.returned': { agent: string; prospect: string };

  // ── returning a recall: the agent calls the service number (src/flows/return.ts) ─────────────
  /** Bad agent device from the dialplan; the call is hung up. */
  'return.refused': { reason: string; agent: string };
  /** The agent called the service number; `pending`: their callbacks, `first`: the one they hear first. */
  'return.asked': { pending: number; first?: string; firstProspect?: string };
  /** One callback of the list was offered to the agent; `outcome`: how its recall gave the call back. */
  'return.offered': { requestId: string; prospect: string; outcome: string };
  /** The agent's call to the service number ended; `offered`: how many callbacks they heard. */
  'return.ended': { offered: number; reason: string };
  /**
   * A recall was cut short by the service's own failure (an earlier run or instance died or lost its lease, Asterisk
   * restarted, the channel vanished unreported): recorded as `recall-interrupted`, never a snooze. `startedAt`: when
   * that recall's ring began (ISO); `how`: 'orphaned' (no process runs it any more) or 'vanished' (its channel is gone).
   */
  'recall.interrupted': { how: 'orphaned' | 'vanished'; startedAt: string | null; reason: string };
  /**
   * The heads-up before a recall began (policy.headsUp): the page notifies, the lamp blinks, the CRM gets
   * recall.due_soon. `dueAt`: when the recall is due (ISO); `leadMs`: how long before it the heads-up began.
   */
  'recall.heads_up': { agent: string; prospect: string; dueAt: string | null; leadMs: number };

  // ── "hold my callbacks" (src/engine/pauses.ts; feature code src/flows/pause.ts, the page) ───────────────
  /** An agent paused their callbacks (`by`: phone, web); `until`: ISO, or null until resumed. */
  'agent.paused': { agent: string; until: string | null; by: string };
  /** An agent resumed their callbacks. */
  'agent.resumed': { agent: string; by: string; wasPaused: boolean };
  /** The pause feature code was refused (bad agent device from the dialplan); the call is hung up. */
  'pause.refused': { reason: string; agent: string };

  // ── the agent's feature code *82 (src/flows/pending.ts) ───────────────────────────────────────
  /** Bad agent device from the dialplan; the call is hung up. */
  'pending.refused': { reason: string; agent: string };
  /** The agent asked for their pending callbacks. */
  'pending.asked': { pending: number; next?: string; nextProspect?: string };
  /** One callback was cancelled by the agent's key (1 the next, 2 all). */
  'pending.cancelled': { requestId: string; prospect: string; key: string };
  /** A callback could not be cancelled: it changed meanwhile. */
  'pending.cancel_failed': { requestId: string; prospect: string; key: string };
  /** The agent chose nothing (hung up, no key, another key). */
  'pending.no_choice': { key: string };

  // ── device states (src/flows/presence.ts) ────────────────────────────────────────────────────
  /** A watched device changed state (raw Asterisk state: NOT_INUSE, INUSE, …). */
  'presence.device_state': { device: string; state: string };
  /** A device could not be watched (subscription or read failed). */
  'presence.watch_failed': { device: string; error: string };

  // ── requests (src/engine/) ───────────────────────────────────────────────────────────────────
  /**
   * A request changed: one line per policy event. `transition` is the policy's event type
   * (requested, prospect-free, due, agent-snoozed, prospect-busy, …; see core/policy/types.ts).
   */
  'request.transition': { transition: string; from: string | null; to: string; reason: string; wakeAt: string | null };
  /** A request reached a terminal state (COMPLETED, CANCELLED, EXPIRED, FAILED). */
  'request.finished': { state: string; outcome: string | null; reason: string | null };
  /** A notification for the CRM webhook was queued (`webhookEvent`: requested, completed, …). */
  'request.notified': { webhookEvent: string; reason: string };

  // ── operations: HTTP listener, callbacks page, browser phones, lamps (src/app/operations.ts, src/http/, src/flows/lamp.ts)
  /** The HTTP listener (health, readiness, metrics, page) is bound. */
  'http.listening': { bind: string; port: number; paths: string[] };
  /** The HTTP listener could not be bound; the service runs on without it. */
  'http.listen_failed': { bind: string; port: number; error: string };
  /** The HTTP listener reported an error after it was bound. */
  'http.error': { error: string };
  /** A request or upgrade without a valid token was refused. */
  'http.unauthorized': { path: string; remote?: string; suppressed?: number; windowMs?: number };
  /**
   * A request or upgrade was refused before any handler ran (aggregated per reason in a 10 s window):
   * `host` (Host not in http.allowedHosts, 421), `body` (Content-Length over the cap, 413), `busy-probe` /
   * `busy-page` (its budget is spent, 503).
   */
  'http.refused': { path: string; reason: string; status: number; remote?: string; suppressed?: number; windowMs?: number };
  /** The page's URL with the generated token was printed (once, on stderr; the token itself is not in the log). */
  'http.token_generated': { url: string };
  /** A setting leaves something open (config check says the same); `refused`: the service does not start because of it. */
  'security.warning': { warning: string; refused: boolean };
  /** An HTTP handler threw; the client got a 500. */
  'http.handler_failed': { path: string; error: string };
  /** A file of the callbacks page is missing from the build. */
  'web.static_missing': { file: string; error: string };
  /** A POST from the page failed the CSRF / origin checks. */
  'web.csrf_refused': { path: string; why: string; remote?: string };
  /** A cancel from the page (`applied`: whether the request changed). */
  /** The page paused an agent's callbacks (until: ISO or null). */
  'web.pause': { agent: string; by: string; until: string | null };
  /** The page resumed an agent's callbacks. */
  'web.resume': { agent: string; by: string };
  'web.cancel': { requestId: string; by: string; from: string; to: string; applied: boolean };
  /** A snooze from the page. */
  'web.snooze': { requestId: string; by: string; from: string; to: string; applied: boolean };
  /** The page's event stream was refused: too many open. */
  'web.streams_full': { open: number; suppressed?: number; windowMs?: number };
  /** A browser phone's WebSocket relay was refused: too many open. */
  'phones.relay_full': { open: number; suppressed?: number; windowMs?: number };
  /**
   * A phone's upgrade was not relayed (`why`: `origin`, `subprotocol`, `early-data`, `not-websocket`), or
   * Asterisk's answer was not `101` with the `sip` subprotocol (`why`: `asterisk`, with its `status`): both sides closed.
   */
  'phones.relay_refused': { why: string; status?: string; remote?: string; suppressed?: number; windowMs?: number };
  /** A browser phone's WebSocket relay opened. */
  'phones.relay_open': { remote?: string };
  /** A browser phone's relay could not reach Asterisk. */
  'phones.relay_error': { error: string; target: string };
  /** An agent's lamp was set on the PBX (custom device state). */
  'lamp.set': { device: string; state: string };
  /** An agent's lamp could not be set. */
  'lamp.set_failed': { device: string; state: string; error: string };
  /** The lamps on the PBX could not be listed. */
  'lamp.list_failed': { error: string };

  // ── hardening: refusals, timeouts, exposure, retention ─────────────────────────────────
  /** A request was refused by the dial policy: at the opt-in (`stage` opt-in) or just before a call (ringAgent, dialProspect: the request is cancelled). */
  'dial.refused': { stage: string; agent: string; reason: string };
  /** A FastAGI connection was refused or cut off (`reason`: peer-not-allowed, too-many-sessions, line-too-long, env-too-large, env-timeout, bad-secret, unknown-script, idle-timeout, closed). A flood is summed up: `suppressed` lines within `windowMs`. */
  'agi.refused': { reason: string; peer?: string; detail?: string; max?: number; evicted?: string; idleMs?: number; script?: string; known?: string[]; suppressed?: number; windowMs?: number };
  /** The FastAGI server is bound to an address other than loopback. */
  'agi.exposed': { host: string; port: number; secret: boolean; allowedPeers: readonly string[] };
  /** The FastAGI listening socket reported an error (EMFILE, …); throttled like `agi.refused`. */
  'agi.server_error': { error: string; suppressed?: number; windowMs?: number };
  /** A step of (re)connecting to ARI got no answer in time; the attempt is abandoned and retried (a debug line per attempt). */
  'ari.timeout': { step: string; timeoutMs: number; url: string; attempt: number };
  /** Connecting to ARI failed (`auth`: the credentials were refused); retried with back-off, without limit. A debug line per attempt; the outage itself is `ari.unavailable`. */
  'ari.connect_failed': { auth: boolean; url: string; attempt: number; error: string };
  /**
   * ARI cannot be reached (or refuses the credentials, `auth`): the service waits, readiness false, trying again with
   * back-off up to ari.reconnectMax. Logged once when an outage is first met without a connection (at start, or when
   * `auth` changes); `ari.disconnected` is the line when a live connection goes away. While it lasts, a reminder
   * (`reminder: true`) every 5 minutes; `ari.connected` (with `outageMs`) ends it.
   */
  'ari.unavailable': { url: string; auth: boolean; error: string; attempts: number; downMs: number; reminder: boolean };
  /** Renewing the lease failed (it is tried again at the next interval). */
  'ari.lease_renewal_failed': { error: string };
  /**
   * Which way the REST requests without a body go after a (re)connection: `websocket` (ARI REST over the app's
   * WebSocket, Asterisk 22.4+, answered a probe on it) or `http` (no answer to the probe: `reason`; debug). A warning
   * with `http` when a request on the WebSocket got no answer in time: HTTP until the next connection.
   */
  'ari.rest_transport': { transport: 'websocket' | 'http'; reason?: string };
  /**
   * The ARI WebSocket brought a `RESTResponse` that answers no request in flight: `late` (ours, its request had
   * already failed) or `unknown`; dropped. Throttled per kind (the first line, then `suppressed` per window).
   */
  'ari.stray_answer': { kind: 'late' | 'unknown'; why: string; suppressed?: number; windowMs?: number };
  /** Finished requests, their history and sent outbox rows older than store.retention were deleted. */
  'store.pruned': { requests: number; events: number; outbox: number };
  /** Pruning failed (tried again in an hour). */
  'store.prune_failed': { error: string };
  /**
   * The database cannot be reached (or migrated) at start: the service waits, readiness false, and tries again
   * after `retryInMs` (back-off up to `maxMs`). Logged once per change, not per attempt.
   */
  'store.unavailable': { error: string; retryInMs: number; maxMs: number };
  /** The database is reachable again after `store.unavailable` (`waitedMs`, `attempts`). */
  'store.available': { waitedMs: number; attempts: number };
  /**
   * SQLite: an fdatasync of the store's WAL failed (`code`: the errno's name, e.g. EIO). The commits waiting for it
   * failed, and every later write is refused with the same error (never retried: the kernel may have dropped the
   * pages); reads go on. Restart the service once the disk is sound (src/store/wal-sync.ts).
   */
  'store.sync_failed': { file: string; code: string; error: string };
  /** Logging to stdout stopped: the pipe was closed (EPIPE) or broke; said once on stderr. */
  'log.stdout_closed': { error: string };

  // ── CRM webhook (src/webhook/sender.ts) ──────────────────────────────────────────────────────
  /** The CRM accepted an event. */
  'webhook.delivered': Record<string, never>;
  /** The CRM did not accept an event; it is retried at `retryAt`. */
  'webhook.retry': { error: string; retryAt: string };
  /** An event was given up after its retries. */
  'webhook.given_up': { error: string; attempts: number };

  // ── CRM look-up of the prospect's name (src/webhook/lookup.ts) and team profiles ─────────────────────
  /** The CRM answered a look-up: `found` false = no such contact (both are cached for lookup.cacheTtl). */
  'lookup.answered': { found: boolean; ms: number };
  /** A look-up failed (`kind`: timeout, network, http, too-large, invalid — `error` names what was wrong); the number is shown. */
  'lookup.failed': { kind: 'timeout' | 'network' | 'http' | 'too-large' | 'invalid'; error: string; ms: number };
  /** Too many look-ups failed in a row: the CRM is not asked until `until` (circuit breaker open). */
  'lookup.breaker_open': { failures: number; until: string };
  /** A trial look-up after the cool-down succeeded: the CRM is asked again. */
  'lookup.breaker_closed': Record<string, never>;
  /** The looked-up name was stored with a request (it shows on its next recall, the page, list/show, webhooks). */
  'lookup.stored': { requestId: string; name: string };
  /** A call named a profile the configuration does not know (or a malformed name): the default policy applies. */
  'profile.unknown': { profile: string; reason: string };
}

export type EventName = keyof EventCatalogue;

/** Every declared name, for tests and documentation (kept equal to the catalogue by the type below). */
export const EVENT_NAMES = [
  'service.starting',
  'service.stopped',
  'service.unknown_stasis_args',
  'ari.connected',
  'ari.disconnected',
  'ari.standby',
  'ari.takeover',
  'lease.taken',
  'lease.lost',
  'lease.action_skipped',
  'lease.unreachable',
  'lease.reachable',
  'agi.listening',
  'offer.refused',
  'offer.started',
  'offer.prepare_failed',
  'offer.prompt_playing',
  'offer.closed',
  'offer.key',
  'offer.prompt_finished',
  'offer.prompt_failed',
  'offer.opted_in',
  'offer.timing',
  'offer.full',
  'offer.store_failed',
  'offer.call_failed',
  'offer.ended',
  'recall.ringing_agent',
  'recall.ring_failed',
  'recall.agent_answered',
  'recall.agent_key',
  'recall.menu_timeout',
  'recall.dialling_prospect',
  'recall.dial_failed',
  'recall.prospect_answered',
  'recall.prospect_busy',
  'recall.prospect_no_answer',
  'recall.bridge_failed',
  'recall.agent_no_answer',
  'recall.agent_hung_up',
  'recall.abandoned',
  'recall.unknown_channel',
  'recall.conversation_ended',
  'recall.returned',
  'return.refused',
  'return.asked',
  'return.offered',
  'return.ended',
  'recall.interrupted',
  'recall.heads_up',
  'agent.paused',
  'agent.resumed',
  'pause.refused',
  'pending.refused',
  'pending.asked',
  'pending.cancelled',
  'pending.cancel_failed',
  'pending.no_choice',
  'presence.device_state',
  'presence.watch_failed',
  'request.transition',
  'request.finished',
  'request.notified',
  'http.listening',
  'http.listen_failed',
  'http.error',
  'http.unauthorized',
  'http.refused',
  'http.token_generated',
  'security.warning',
  'http.handler_failed',
  'web.static_missing',
  'web.csrf_refused',
  'web.cancel',
  'web.pause',
  'web.resume',
  'web.snooze',
  'web.streams_full',
  'phones.relay_full',
  'phones.relay_refused',
  'phones.relay_open',
  'phones.relay_error',
  'lamp.set',
  'lamp.set_failed',
  'lamp.list_failed',
  'webhook.delivered',
  'webhook.retry',
  'webhook.given_up',
  'lookup.answered',
  'lookup.failed',
  'lookup.breaker_open',
  'lookup.breaker_closed',
  'lookup.stored',
  'profile.unknown',
  'dial.refused',
  'agi.refused',
  'agi.exposed',
  'agi.server_error',
  'ari.timeout',
  'ari.connect_failed',
  'ari.unavailable',
  'ari.lease_renewal_failed',
  'ari.rest_transport',
  'ari.stray_answer',
  'store.pruned',
  'store.prune_failed',
  'store.unavailable',
  'store.available',
  'store.sync_failed',
  'log.stdout_closed',
] as const satisfies readonly EventName[];

// Compile-time check that EVENT_NAMES lists every catalogue entry.
type Missing = Exclude<EventName, (typeof EVENT_NAMES)[number]>;
const allListed: [Missing] extends [never] ? true : Missing = true;
void allListed;

/** Writes one log line carrying the stable `event` name and its declared fields. */
export function emit<E extends EventName>(log: EventSink, level: Level, event: E, message: string, fields: EventCatalogue[E]): void {
  // A line the logger would drop (debug at level info: several per call) is not built at all: winston filters
  // levels only in its transport, after the line has gone through the logger's stream (bench profile, issue 23).
  if (log.isLevelEnabled && !log.isLevelEnabled(level)) return;
  if (log.logEvent) log.logEvent(level, message, fields, event);
  else log.log(level, message, { ...fields, event });
}
