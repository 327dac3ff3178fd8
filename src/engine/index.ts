/**
 * The engine (src/engine/): the imperative shell around the pure policy. `Engine` (engine.ts) keeps the timer, the
 * serial queue of decisions and their dispatch; its parts each have one job: opt-in.ts, presence.ts, pauses.ts,
 * queues.ts, recovery.ts. What the rest of the application uses of it is exported here.
 */
export { Engine } from './engine';
export type { AppliedDecision, EngineOptions, Notifier, RequestStore, Telephony } from './options';
export type { OfferOutlook, OptInInput, OptInMarks, OptInResult } from './opt-in';
export { loopTurns, promisesMade } from './opt-in';
export type { Pauses, PausedAgent } from './pauses';
export type { Presence } from './presence';
