/**
 * # Callback policy — the pure functional core of "Considerate Callback"
 *
 * A sales agent called a prospect, the line was busy, the agent pressed # to opt in. From then on this module decides
 * *everything about timing*: when to ring the agent, what to do with each outcome, when to give up. It does no I/O, never
 * reads the clock (the shell passes `now`, epoch ms), uses no randomness, and never mutates its inputs. Requests, events
 * and actions are plain JSON-serialisable data.
 *
 * ## Use
 * ```ts
 * const { request, events, actions } = newRequest(input, cfg, now);          // → WAITING, notify 'requested'
 * const next = decide(request, observation, { now, cfg, agent: { busy, since } });
 * // persist next.request + next.events in ONE transaction, then execute next.actions in order.
 * ```
 * The scheduler loads non-terminal requests, arms one timer for the earliest `wakeAt` and calls
 * `decide(req, { type: 'tick' }, ctx)` when it fires. Every non-terminal request has a `wakeAt` (at the latest its
 * `expiresAt`), so a tick is always scheduled. Ticks are idempotent: an early or repeated tick is a no-op.
 *
 * ## What the shell owes the core
 * - Serialise decisions per request and per agent (two DUE requests of one agent would otherwise both see "agent
 *   free" and ring together); pass a fresh `AgentStatus` (`busy` = in use or ringing; `since` = when that status
 *   began, i.e. for a free agent when their last call ended).
 * - It MAY tick a DUE request early when its agent becomes free (otherwise we re-check every `agentBusyRecheckMs`).
 * - Device mode: send `prospectState` right after creation and after every (re)connect to the PBX — duplicates are
 *   no-ops, and device-state events only report changes. Unknown/unavailable device states: send nothing.
 * - There is no "recall started" observation: the decision that emits `ringAgent` already moves the request to
 *   RINGING_AGENT. Persist first, then execute; if the process dies in between, the safety deadline (below) heals it.
 * - Execute actions in order, best-effort for hangups (a channel that is already gone is fine).
 *
 * ## States
 * The table of every state change is in transitions.ts (the machine checks each recorded event against it);
 * in short:
 * ```
 * WAITING ─ device mode: prospect line seen free ─► GRACE ─ grace over ─► DUE
 *         ─ timed mode: probe / back-off / snooze time reached ────────► DUE
 * GRACE / DUE ─ prospect busy again ─► WAITING   (the next free observation restarts the grace in full)
 * DUE ─ within calling hours, agent free for ≥ wrap-up gap ─► RINGING_AGENT (action ringAgent)
 * RINGING_AGENT ─ key 1 ─► CONNECTING (action dialProspect, attempts+1)
 *               ─ key 2 / no answer / no key twice / hang-up / recallFailed ─► WAITING (snooze) or FAILED
 *               ─ key 3 ─► CANCELLED · prospect busy again (device) ─► WAITING (no attempt, no snooze)
 * CONNECTING ─ answered ─► COMPLETED · busy ─► WAITING (back-off) or FAILED · no answer ─► WAITING (one retry) or FAILED
 *            ─ agent hung up / recallFailed ─► WAITING (snooze) or FAILED
 * any non-terminal ─ cancel ─► CANCELLED;  pending (WAITING/GRACE/DUE) at expiresAt ─► EXPIRED
 * ```
 * Terminal states (COMPLETED, CANCELLED, EXPIRED, FAILED) ignore every observation.
 * An observation that makes no sense in a state (e.g. `prospectAnswered` while WAITING, a duplicate `prospectState`)
 * is a no-op: the same request object, no events, no actions.
 *
 * ## Rules (defaults in brackets; all durations configurable, in ms; see {@link PolicyConfig})
 * - **Grace** (device mode): when the prospect's line goes free, wait `graceMs` [5m] before anything else — people
 *   deserve a break after a call. Busy again during GRACE (or DUE) → WAITING; when free again the grace restarts in full.
 * - **Adaptive grace**: a busy spell longer than `longBusyThresholdMs` [30m] earns `longBusyExtraGraceMs` [+5m]. A spell
 *   starts at the first busy observation after the line was free; creation and refresh count as busy observations.
 * - **Timed mode** (external numbers, no device state): no grace, no free detection. First probe `firstProbeDelayMs`
 *   [10m] after creation; after the n-th failed attempt wait `backoffMs[n-1]` [10m, 30m, 60m] (last value repeats).
 * - **Back-off in device mode**: a busy attempt sends the request to WAITING with the line busy and sets
 *   `notBefore = lastAttemptAt + backoffMs[attempts-1]`; the next GRACE ends at max(free + grace, notBefore). So we
 *   follow the prospect's line (never call into a busy line) AND never retry sooner than the timed mode would.
 *   The same `notBefore` mechanism carries snoozes and the no-answer retry; it is cleared when the agent is rung.
 * - **Agent**: never ring while the agent's device is busy (in use / ringing); after their call ended wait
 *   `agentWrapUpMs` [30s] (measured from `AgentStatus.since`).
 * - **Calling hours** (prospect's zone; see calling-hours.ts for DST semantics): a DUE request outside the windows or on
 *   a holiday waits for the next opening. Grace runs regardless, before that.
 * - **Attempts**: an attempt = the prospect was dialled (key 1). At most `maxAttempts` [3]; a busy / no-answer / hang-up on
 *   the last attempt → FAILED 'max-attempts'. No answer gets `noAnswerRetries` [1] retry (after the back-off), then
 *   FAILED 'prospect-no-answer'.
 * - **Snoozes**: key 2 snoozes for `snoozeMs` [15m]. Not answering, no key after `menuRepeats` [2] menu prompts, hanging up,
 *   a failed originate are implicit snoozes (a recall the service itself cut short is not: see Recovery). All count: with `maxSnoozes` [3] used, the next one is
 *   FAILED ('snooze-limit' if the agent pressed 2, else 'agent-unavailable').
 * - **Expiry**: `expiresAt = min(createdAt + maxAgeMs [8h], endOfCallingDay(createdAt))` — the end of the last window on the
 *   local day the request was created in, or if created outside hours, of the next calling day (hours that run on past
 *   midnight, such as round-the-clock windows, continue the day). A pending request
 *   expires at `expiresAt` (never earlier: a wait that ends after expiry just ends in EXPIRED). A recall in progress is
 *   never cut off; if it ends in a wait past `expiresAt`, the request expires right then.
 * - **Never a promise that cannot be kept** (promise.ts): at the opt-in the policy checks that a callback could fire
 *   (the first calling-hours instant after the grace / first probe) before the request would expire. If not, with
 *   `afterHours` 'carry-over' [default] the request is carried over: it waits for the next calling window and
 *   expires at the end of the `carryOverDays`-th [1] calling day (`carriedOver`, `expiresBecause` 'carry-over'); with
 *   'decline' the shell makes no offer. The agent hears which (the shell plays the matching prompt).
 * - **The prospect's clock**: calling hours apply in `request.timeZone` (derived from the number by the shell; the
 *   configured zone for national numbers), with the configured windows and holidays read in that zone.
 * - **One prospect, many agents** (`DecideContext.colleagues`): a DUE request waits ('colleague') while other agents'
 *   requests for the same number opted in earlier; after a colleague's recall reached the prospect it waits a grace
 *   (device mode) or first-probe delay (timed) from that moment. The store allows one recall per number at a time.
 * - **Refresh** (# pressed again while pending or while the agent is being rung): back to WAITING as if just created
 *   (line busy now, expiry / attempts / snoozes / back-off reset), same id, event 'refreshed'. `rings` is NOT reset, so
 *   channel ids are never reused. Ignored during CONNECTING.
 * - **Considerate withdrawal**: if the prospect's line goes busy while we ring the agent, the ring is withdrawn
 *   (hangupAgent) and the request waits again — neither an attempt nor a snooze.
 * - **Crash recovery**: RINGING_AGENT and CONNECTING carry a safety `wakeAt` (agentRingTimeoutMs, or menuTimeoutMs ×
 *   menuRepeats after the agent answered, or prospectRingTimeoutMs; each + `recallSafetyMarginMs` [2m]). A tick at or
 *   after it means the PBX never reported the outcome (service crash, lost ARI connection): the policy emits best-effort
 *   hangups for the channels it created and recovers it ('recall-timeout', see Recovery). A request can therefore never
 *   get stuck mid-recall.
 * - **Recovery is not the agent's choice**: a recall cut short by the service's own failure — observation
 *   `recallInterrupted` (the shell reports it when a new lease holder or a restarted run finds a recall nobody runs any
 *   more, or when Asterisk lost the channel unreported), or the safety deadline above — goes back to waiting for
 *   `recoveryDelayMs` [10s] ('recall-interrupted' / 'recall-timeout', waitingFor 'recovery') and rings again through the
 *   usual rules (grace, wrap-up, calling hours, expiry). It is never a snooze and never FAILED for it; only a dial of the
 *   prospect that already happened (CONNECTING) stays counted as an attempt (FAILED 'max-attempts' if it was the last).
 *
 * ## Channel ids
 * The n-th ring of the agent uses `ccb-<requestId>-<n>` (n = `request.rings`, never reset) and its prospect leg
 * `ccb-<requestId>-<n>-p`. Re-executing an action after a crash reuses the same id, so Asterisk rejects a duplicate
 * originate instead of ringing twice.
 *
 * ## Explaining
 * Every transition emits a {@link PolicyEvent} `{at, type, from, to, reason, wakeAt, waitingFor}` (also DUE→DUE when
 * the reason for waiting changes kind). The request carries `state`, `waitingFor` (machine-readable), `reason` (human,
 * local times in the prospect's zone, e.g. 'grace until 10:45', 'outside calling hours, opens Mon 09:00',
 * 'agent busy since 10:40', 'back-off after busy attempt 1 until 11:00') and `wakeAt`; {@link explainRequest} renders
 * request + events for humans.
 */
export * from './types';
export {
  newRequest,
  decide,
  agentChannelId,
  prospectChannelId,
  recallCallerId,
  backoffFor,
  expiryFor,
  foreseenDueAt,
  headsUpActive,
  isPaused,
  type DecideContext,
  type Colleagues,
} from './machine';
export { offerPromise, callingHoursIn, expiryIn, type OfferPromise, type OfferPromiseKind } from './promise';
export { validatePolicyConfig } from './config';
export {
  isWithinCallingHours,
  nextOpening,
  endOfCallingDay,
  currentOrNextOpening,
  openingsOn,
  validateCallingHours,
  zonedWallTime,
  localIsoDate,
  localLabel,
  WEEKDAYS,
  DEFAULT_HORIZON_DAYS,
  type CallingHoursConfig,
  type Weekday,
  type TimeRange,
  type Opening,
} from './calling-hours';
export { parseDuration, formatDuration, toDurationMs, SECOND, MINUTE, HOUR, DAY, type DurationMs } from './duration';
export { explainRequest, summarizeRequest, type ExplainOptions } from './explain';
export { TRANSITIONS, START, transitionList, isTransition, checkTransition, type TransitionTable, type FromState } from './transitions';
export { resolveProfile, chooseProfile, policyFor, profilePolicy, snapshotOf, describeSnapshot, PROFILE_NAME, type Profiles, type ProfileOverrides, type ResolvedProfile } from './profiles';
