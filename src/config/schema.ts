/**
 * The configuration schema: every key with its type, default, environment override and a sentence of
 * documentation. The loader validates against it (a wrong key, type or value is refused with a
 * message naming the key), `config check` prints it, and the README's table is written from it.
 */

export type FieldType = 'string' | 'secret' | 'url' | 'integer' | 'duration' | 'durationList' | 'boolean' | 'stringList' | 'json';

export interface Field {
  type: FieldType;
  /** Undefined means required. */
  default?: unknown;
  doc: string;
  env?: string;
  enum?: readonly string[];
  min?: number;
  max?: number;
  /** Strings: an empty value is allowed (means "none"). */
  allowEmpty?: boolean;
}

export const schema = {
  'ari.url': { type: 'url', default: 'http://127.0.0.1:8088', env: 'CC_ARI_URL', doc: 'Base URL of Asterisk\'s HTTP server (ARI lives under /ari).' },
  'ari.username': { type: 'string', default: 'considerate', env: 'CC_ARI_USERNAME', doc: 'ARI user from ari.conf.' },
  'ari.password': { type: 'secret', env: 'CC_ARI_PASSWORD', doc: 'ARI password from ari.conf. Required; never logged.' },
  'ari.app': { type: 'string', default: 'considerate-callback', env: 'CC_ARI_APP', doc: 'Stasis application name; must match the dialplan\'s Stasis() call.' },
  'ari.reconnectMax': { type: 'duration', default: '10s', doc: 'Longest pause between reconnection attempts to ARI (there is no retry limit).' },
  'store.path': { type: 'string', default: './data/callbacks.db', env: 'CC_STORE_PATH', doc: 'SQLite file holding requests and their history.' },
  'log.level': { type: 'string', default: 'info', env: 'CC_LOG_LEVEL', enum: ['error', 'warn', 'info', 'debug'], doc: 'Least severe level written.' },
  'log.format': { type: 'string', default: 'auto', env: 'CC_LOG_FORMAT', enum: ['auto', 'json', 'pretty'], doc: 'auto: readable lines on a terminal, JSON lines otherwise.' },
  'offer.keyTimeout': { type: 'duration', default: '6s', doc: 'How long to wait for # after the offer prompt has finished.' },
  'offer.closingTimeout': { type: 'duration', default: '15s', doc: 'Longest a confirmation or goodbye prompt may play before the call is ended.' },
  'offer.maxPendingPerAgent': { type: 'integer', default: 10, min: 1, max: 1000, doc: 'Pending callbacks one agent may have; the offer says so politely when full.' },
  'offer.languages': { type: 'stringList', default: ['en', 'de'], doc: 'Languages prompts exist for; a channel in another language hears offer.defaultLanguage.' },
  'offer.defaultLanguage': { type: 'string', default: 'en', doc: 'Prompt language when the channel\'s language has no prompts.' },
  'prompts.offer': { type: 'string', default: 'sound:cc-offer', doc: 'ARI media URI of "The line is busy. Press hash for a callback."' },
  'prompts.confirm': { type: 'string', default: 'sound:cc-confirm', doc: 'Played after the request is stored.' },
  'prompts.goodbye': { type: 'string', default: 'sound:cc-goodbye', doc: 'Played when no callback is scheduled (other key or no key).' },
  'prompts.full': { type: 'string', default: 'sound:cc-full', doc: 'Played when the agent already has offer.maxPendingPerAgent callbacks.' },
  'prompts.error': { type: 'string', default: 'sound:cc-goodbye', doc: 'Played when the request could not be stored.' },
  'policy.grace': { type: 'duration', default: '5m', doc: 'Break given to an internal prospect after their line became free, before the agent is rung.' },
  'policy.longBusyThreshold': { type: 'duration', default: '30m', doc: 'A busy spell longer than this earns extra grace.' },
  'policy.longBusyExtraGrace': { type: 'duration', default: '5m', doc: 'Extra grace after a long busy spell.' },
  'policy.firstProbeDelay': { type: 'duration', default: '10m', doc: 'External prospects (no line state): first attempt this long after the opt-in.' },
  'policy.backoff': { type: 'durationList', default: ['10m', '30m', '60m'], doc: 'Wait after the 1st, 2nd, … busy attempt; the last value repeats.' },
  'policy.maxAttempts': { type: 'integer', default: 3, min: 1, max: 20, doc: 'Times the prospect is dialled before the request fails politely.' },
  'policy.noAnswerRetries': { type: 'integer', default: 1, min: 0, max: 10, doc: 'Retries after the prospect did not answer.' },
  'policy.snooze': { type: 'duration', default: '15m', doc: 'How long "2 = try again later" waits.' },
  'policy.maxSnoozes': { type: 'integer', default: 3, min: 0, max: 20, doc: 'Snoozes (pressed 2, or agent did not answer); the next one fails the request.' },
  'policy.agentWrapUp': { type: 'duration', default: '30s', doc: 'Gap after the agent\'s last call before the agent is rung.' },
  'policy.agentBusyRecheck': { type: 'duration', default: '1m', doc: 'While the agent is busy, re-check this often (a free agent is also noticed at once).' },
  'policy.agentRingTimeout': { type: 'duration', default: '25s', doc: 'How long the agent\'s phone rings for a recall.' },
  'policy.menuTimeout': { type: 'duration', default: '10s', doc: 'How long the recall menu waits for 1, 2 or 3.' },
  'policy.menuRepeats': { type: 'integer', default: 2, min: 1, max: 5, doc: 'Menu prompts without a key before the recall is snoozed.' },
  'policy.prospectRingTimeout': { type: 'duration', default: '45s', doc: 'How long the prospect\'s phone rings.' },
  'policy.recallSafetyMargin': { type: 'duration', default: '2m', doc: 'A recall without an outcome this long after it should have ended is recovered (crash safety).' },
  'policy.maxAge': { type: 'duration', default: '8h', doc: 'A request never lives longer; it also expires at the end of the prospect\'s calling day.' },
  'callingHours.timeZone': { type: 'string', default: 'Europe/Berlin', doc: 'IANA time zone of the prospects\' calling hours.' },
  'callingHours.windows': {
    type: 'json',
    default: { mon: [['09:00', '18:00']], tue: [['09:00', '18:00']], wed: [['09:00', '18:00']], thu: [['09:00', '18:00']], fri: [['09:00', '18:00']] },
    doc: 'Weekly windows per weekday (mon … sun), several ranges a day allowed: {"mon": [["09:00","12:00"],["13:00","18:00"]]}.',
  },
  'callingHours.holidays': { type: 'json', default: [], doc: 'Closed local dates, e.g. ["2026-12-24", "2026-12-25"].' },
  'prospects.internal': {
    type: 'json',
    default: [],
    doc: 'Numbers on this PBX whose line state can be watched: [{"pattern": "^2\\d{3}$", "device": "PJSIP/${number}"}]. Others are external (timed retries).',
  },
  'recall.callerIdName': { type: 'string', default: 'Callback: ${prospect}', doc: 'Caller-ID name on the agent\'s phone for a recall.' },
  'recall.callerIdNumber': { type: 'string', default: '', allowEmpty: true, doc: 'Caller-ID number on the agent\'s phone for a recall: a service number, never the prospect\'s.' },
  'recall.alertInfo': { type: 'string', default: '', allowEmpty: true, doc: 'Optional Alert-Info header for a distinctive ring, e.g. "<http://127.0.0.1/Bellcore-dr4>".' },
  'recall.outboundContext': { type: 'string', default: 'cc-outbound', doc: 'Dialplan context the prospect is dialled through: Local/<number>@<context>, so trunk routing stays in the dialplan.' },
  'agi.enabled': { type: 'boolean', default: false, env: 'CC_AGI_ENABLED', doc: 'Run the FastAGI server, for AGI(agi://host:port/offer,<prospect>) as the busy-signal entry instead of Stasis().' },
  'agi.bind': { type: 'string', default: '127.0.0.1', doc: 'Address the FastAGI server listens on. Keep it private: AGI has no authentication.' },
  'agi.port': { type: 'integer', default: 4573, min: 0, max: 65535, doc: 'TCP port of the FastAGI server (4573 is the FastAGI default; 0 picks a free port).' },
  'prompts.pendingCount': { type: 'string', default: 'sound:cc-pending-count', doc: 'Feature code (*82): "Callbacks pending:" (followed by the count).' },
  'prompts.pendingMenu': { type: 'string', default: 'sound:cc-pending-menu', doc: 'Feature code (*82): "Press 1 to cancel the next callback, 2 to cancel all, or hang up."' },
  'webhook.url': { type: 'url', default: '', allowEmpty: true, env: 'CC_WEBHOOK_URL', doc: 'CRM webhook: POST a JSON event on requested, completed, failed, expired and cancelled. Empty: no webhook.' },
  'webhook.secret': { type: 'secret', default: '', allowEmpty: true, env: 'CC_WEBHOOK_SECRET', doc: 'Key of the HMAC-SHA256 signature header X-Considerate-Signature: sha256=<hex of the raw body>. Never logged.' },
  'webhook.timeout': { type: 'duration', default: '5s', doc: 'Longest wait for the CRM to answer one POST; a slow CRM never holds up calls.' },
  'webhook.retries': { type: 'integer', default: 20, min: 0, max: 1000, doc: 'Retries of an event the CRM did not accept (not 2xx) before it is given up and logged.' },
  'webhook.backoff': { type: 'durationList', default: ['5s', '30s', '2m', '10m'], doc: 'Wait before the 1st, 2nd, … retry; the last value repeats. Events wait in the store (outbox) and survive restarts.' },
  'prompts.recallIntro': { type: 'string', default: 'sound:cc-recall-intro', doc: '"Callback to" (followed by the prospect\'s digits).' },
  'prompts.recallMenu': { type: 'string', default: 'sound:cc-recall-menu', doc: '"Press 1 to connect, 2 for later, 3 to cancel." (2 waits policy.snooze.)' },
  'prompts.connecting': { type: 'string', default: 'sound:cc-recall-connecting', doc: 'Played when the agent pressed 1.' },
  'prompts.stillBusy': { type: 'string', default: 'sound:cc-still-busy', doc: '"Still busy. We\'ll try again later."' },
  'prompts.noAnswer': { type: 'string', default: 'sound:cc-no-answer', doc: '"No answer. We\'ll try again later."' },
  'prompts.snoozed': { type: 'string', default: 'sound:cc-snoozed', doc: '"OK, we\'ll try again later."' },
  'prompts.cancelled': { type: 'string', default: 'sound:cc-cancelled', doc: '"Callback cancelled."' },
  'numbers.minDigits': { type: 'integer', default: 2, min: 1, max: 30, doc: 'Fewest digits of a prospect number.' },
  'numbers.maxDigits': { type: 'integer', default: 20, min: 1, max: 30, doc: 'Most digits of a prospect number.' },
  // --- issue 12: promises after hours, one prospect and many agents, the prospect's own clock (one block) ---
  'policy.afterHours': {
    type: 'string',
    default: 'carry-over',
    enum: ['carry-over', 'decline'],
    doc: 'At the busy signal, when no callback could fire before the request would expire (after the last moment of today\'s calling hours): carry-over = offer a callback on the next calling day (the agent hears so), decline = no offer, a short reason instead.',
  },
  'policy.carryOverDays': { type: 'integer', default: 1, min: 1, max: 14, doc: 'A carried-over request stays pending through at most this many calling days, the next one being the 1st; then it expires.' },
  'callingHours.zoneFromNumber': { type: 'boolean', default: true, doc: 'Read calling hours in the prospect\'s own time zone, from the international number\'s country and area code (libphonenumber data); national and internal numbers use callingHours.timeZone.' },
  'callingHours.zoneOverrides': { type: 'json', default: {}, doc: 'Time zone by number prefix, before the number\'s own: {"+1808": "Pacific/Honolulu", "+1800": "America/New_York"}. Longest prefix wins.' },
  'callingHours.internationalPrefix': { type: 'string', default: '00', allowEmpty: true, doc: 'Dialled before a country code instead of + (00 in Europe, 011 in North America; empty: only +).' },
  'prompts.offerNextDay': { type: 'string', default: 'sound:cc-offer-next-day', doc: '"Busy. Press hash for a callback on the next calling day." (after hours, policy.afterHours = carry-over)' },
  'prompts.confirmNextDay': { type: 'string', default: 'sound:cc-confirm-next-day', doc: '"OK. We will call you back on the next calling day."' },
  'prompts.closed': { type: 'string', default: 'sound:cc-closed', doc: '"Busy, and outside calling hours: no callback." (policy.afterHours = decline)' },
  'prompts.queue': { type: 'string', default: 'sound:cc-queue-${position}', doc: '"A colleague is already waiting for this number; you are second." ${position} is 2 … 5, or many.' },
  // --- end of issue 12 block ---
  'ari.leaseTtl': { type: 'duration', default: '15s', doc: 'One active instance per PBX: a second instance stands by until the active one has not renewed its lease for this long.' },
} as const satisfies Record<string, Field>;

export type ConfigKey = keyof typeof schema;
