/**
 * The configuration, declared once. Every key says here, and nowhere else:
 *   - its type (`type`: how text from the environment or `--set` is read, and how `config keys` shows it)
 *     and its validation and conversion (`parse`, a zod schema: the value as written → the value the code uses);
 *   - its default (as written; no default = required), its environment variable, its meaning (`doc`);
 *   - where it lands in the {@link Config} object (`at`, default: the key itself).
 * From this table come the `Config` type, the loader's checks (src/config/load.ts), `config keys`, the CLI
 * help's list of environment variables and the configuration table of docs/configuration.md (test/unit/docs.test.ts
 * checks that the table is exactly the generated one).
 *
 * Rules of this file:
 *   - A key is added as one entry; nothing else needs editing except the table of docs/configuration.md (regenerate it with
 *     `considerate-callback config keys --markdown`).
 *   - A `parse` schema's messages read "expected …" (the loader appends ", got <value>" and names the key);
 *     a message about a part of a value (an issue with a path) is printed as `<key><path>: <message>`.
 *   - Every value that reaches Asterisk (contexts, headers, media URIs, caller-ID) is checked here.
 *
 * Porting a key written in the former format (`{ type, default, env, doc, enum, min, max, allowEmpty }`):
 *   type 'string'                → parse: t.string()  (allowEmpty: t.string({ allowEmpty: true }); enum: t.oneOf([...]))
 *   type 'secret'                → type 'secret', parse: t.string() (or t.string({ allowEmpty: true }))
 *   type 'url'                   → parse: t.url() (allowEmpty: t.url({ allowEmpty: true }))
 *   type 'integer', min, max     → parse: t.integer(min, max)
 *   type 'boolean'               → parse: t.boolean()
 *   type 'duration'              → parse: t.duration(), at: '<section>.<name>Ms' where the code reads milliseconds
 *   type 'durationList'          → parse: t.durationList()
 *   type 'stringList'            → parse: t.stringList()
 *   type 'json'                  → parse: a zod schema of the value (or z.custom<T>(() => true) if checked elsewhere)
 * and `at` is the path the code reads in Config (the hand-written Config interface is gone).
 */
import { z } from 'zod';
import type { CallingHoursConfig } from '../core/policy/calling-hours';
import { formatDuration, parseDuration } from '../core/policy/duration';
import type { PolicyConfig } from '../core/policy/types';
import { MAX_NUMBER_DIGITS, defaultNumberRules, validateWatchDevice } from '../core/validate';
import { validateZoneOverrides } from '../core/zones';
import { labelProblems } from '../core/label';
import { PROFILE_NAME, type ProfileOverrides } from '../core/policy/profiles';
import { isIP } from 'node:net';
import { DEFAULT_AGENT_DEVICES, DEFAULT_PROSPECT_DENY, agentPatternProblem, prefixProblem } from '../core/dial-policy';

export type FieldType = 'string' | 'secret' | 'url' | 'integer' | 'duration' | 'durationList' | 'boolean' | 'stringList' | 'json';

export interface Field {
  type: FieldType;
  /** As written in a file. Undefined means required. */
  default?: unknown;
  /** The configuration table's default column, where the JSON of the default is too long to read. */
  defaultDoc?: string;
  doc: string;
  env?: string;
  /** Where the parsed value lands in {@link Config} (dotted); the key itself when absent. */
  at?: string;
  /** Validation and conversion of the value as written. */
  parse: z.ZodType;
}

const expected = (what: string) => ({ error: `expected ${what}` });

/** The longest delay a Node timer can hold (2^31-1 ms, about 24.8 days); longer ones fire at once. */

/** Whether `value` parses as a URL (WHATWG), as the PostgreSQL driver parses store.url. */
function parsesAsUrl(value: string): boolean {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

export const MAX_TIMER_MS = 2 ** 31 - 1;

const DURATION = 'a duration such as "30s", "5m" or "1h30m"';
const DURATION_LIST = 'a non-empty list of durations such as ["10m", "30m", "1h"]';

function durationMs(text: string, ctx: z.RefinementCtx, what: string, min = 0): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `expected ${what}` });
    return z.NEVER;
  }
  if (ms > MAX_TIMER_MS) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration of at most 24d (a timer cannot hold 2^31-1 ms or more)' });
    return z.NEVER;
  }
  if (ms < min) {
    ctx.addIssue({ code: 'custom', message: `expected a duration of at least ${formatDuration(min)}` });
    return z.NEVER;
  }
  return ms;
}

/**
 * The bounds a key's `parse` enforces, in the unit the code reads (ms for durations), recorded where the schema
 * is built (t.integer, t.duration) so that tests can walk every key's bounds through `config check` and `run`
 * (test/unit/config-bounds.test.ts). One validation: `run` enforces no bound that is not here.
 */
const BOUNDS = new WeakMap<z.ZodType, { min: number; max: number }>();

export function boundsOf(field: Pick<Field, 'parse'>): { min: number; max: number } | undefined {
  return BOUNDS.get(field.parse);
}

function bounded<T extends z.ZodType>(schema: T, min: number, max: number): T {
  BOUNDS.set(schema, { min, max });
  return schema;
}

const t = {
  string: (opts: { allowEmpty?: boolean } = {}) => {
    const s = z.string(expected('a non-empty string'));
    return opts.allowEmpty ? s : s.min(1, expected('a non-empty string'));
  },
  oneOf: <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, expected(`one of ${values.join(', ')}`)),
  url: (opts: { allowEmpty?: boolean } = {}) =>
    z.string(expected('a URL such as http://127.0.0.1:8088')).transform((value, ctx) => {
      if (value === '' && opts.allowEmpty) return value;
      let u: URL;
      try {
        u = new URL(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'expected a URL such as http://127.0.0.1:8088' });
        return z.NEVER;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL' });
        return z.NEVER;
      }
      return value.replace(/\/+$/, '');
    }),
  integer: (min: number, max: number) =>
    bounded(
      z
        .number(expected('a whole number'))
        .int(expected('a whole number'))
        .min(min, expected(`a whole number from ${min} to ${max}`))
        .max(max, expected(`a whole number from ${min} to ${max}`)),
      min,
      max,
    ),
  boolean: () => z.boolean(expected('true or false')),
  /** A duration from `min` (as written, e.g. '1s'; default 0) to 24d, read as milliseconds. */
  duration: (min = '0s') => {
    const minMs = parseDuration(min);
    return bounded(
      z.string(expected(DURATION)).transform((s, ctx) => durationMs(s, ctx, DURATION, minMs)),
      minMs,
      MAX_TIMER_MS,
    );
  },
  durationList: () =>
    z
      .array(z.unknown(), expected(DURATION_LIST))
      .min(1, expected(DURATION_LIST))
      .transform((list, ctx) => {
        if (!list.every((d) => typeof d === 'string')) {
          ctx.addIssue({ code: 'custom', message: `expected ${DURATION_LIST}` });
          return z.NEVER;
        }
        const out: number[] = [];
        for (const d of list) {
          const ms = durationMs(d, ctx, DURATION_LIST);
          if (ms === z.NEVER) return z.NEVER;
          out.push(ms);
        }
        return out;
      }),
  /** A name Asterisk uses as a word (a Stasis application, an ARI user): no separators, no control characters. */
  name: () =>
    t
      .string()
      .max(79, expected('a name of at most 79 characters'))
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, expected('a name of letters, digits, "_", "-" and "." (no ":", spaces or control characters)')),
  /** A dialplan context name: it becomes part of `Local/<number>@<context>`. */
  context: () =>
    t
      .string()
      .max(79, expected('a dialplan context name of at most 79 characters'))
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, expected('a dialplan context name (letters, digits, "_", "-", "."; no "&", ",", "@", "/", spaces or control characters)')),
  /** A SIP header value (Alert-Info): one line, printable. */
  headerValue: () =>
    t
      .string({ allowEmpty: true })
      .max(256, expected('a header value of at most 256 characters'))
      .regex(/^[^\p{Cc}\u2028\u2029]*$/u, expected('a header value on one line, without control characters (CR, LF, …)')),
  /**
   * An ARI media URI (`sound:`, `recording:`, `tone:`, `number:`, `digits:`, `characters:`). One word: a space or a
   * newline would become a second FastAGI command, a comma a second media item.
   */
  media: () =>
    t
      .string()
      .max(256, expected('a media URI of at most 256 characters'))
      .regex(
        /^(?:sound|recording|tone|number|digits|characters):[^\s\p{Cc}\u2028\u2029,"'\\]+$/u,
        expected('an ARI media URI such as "sound:cc-offer" (sound:, recording:, tone:, number:, digits: or characters:; no spaces, commas, quotes or control characters)'),
      ),
  stringList: () =>
    z
      .array(z.string(expected('a non-empty list of strings')).min(1, expected('a non-empty list of strings')), expected('a non-empty list of strings'))
      .min(1, expected('a non-empty list of strings')),
};

const PEERS = 'a list of IP addresses such as ["127.0.0.1", "10.0.0.5"]';

/** A list of prospect number prefixes (dial.prospectAllow / dial.prospectDeny). */
function prefixList() {
  return z.array(z.string(expected('a list of number prefixes such as ["+4930", "030"]')), expected('a list of number prefixes such as ["+4930", "030"]')).superRefine((list, ctx) => {
    list.forEach((prefix, i) => {
      const problem = prefixProblem(prefix);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [i] });
    });
  });
}

export interface InternalProspectRule {
  pattern: RegExp;
  device: string;
}

const INTERNAL_RULE = 'expected {"pattern": "<regular expression>", "device": "PJSIP/${number}"}';

/** `prospects.internal`: [{pattern, device}] → compiled rules; a device made from a number must be a plain device. */
/** recall.labelPrefix: {"en": ["Callback: ", "CB "]} (a single string is a list of one). */
const labelPrefixes = z
  .record(
    z.string().regex(/^(\*|[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)$/, expected('a language such as "en" or "*"')),
    z.union([z.string(), z.array(z.string()).min(1)], expected('a prefix or a list of prefixes, long to short')),
    expected('prefixes per language such as {"en": ["Callback: ", "CB "]}'),
  )
  .transform((rec) => Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, typeof v === 'string' ? [v] : v])) as Record<string, string[]>)
  .superRefine((rec, ctx) => {
    for (const [lang, list] of Object.entries(rec)) {
      for (const p of list) {
        if (/["<>\\\p{Cc}]/u.test(p) || p.length > 30) ctx.addIssue({ code: 'custom', path: [lang], message: 'expected a prefix of at most 30 characters without quotes, angle brackets, backslashes or control characters' });
      }
    }
  });

const internalRules = z.unknown().transform((value, ctx): InternalProspectRule[] => {
  if (!Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'expected a list of {"pattern": "^2\\d{3}$", "device": "PJSIP/${number}"}', path: [] });
    return z.NEVER;
  }
  const rules: InternalProspectRule[] = [];
  value.forEach((item, i) => {
    const rule = item as { pattern?: unknown; device?: unknown };
    if (!rule || typeof rule !== 'object' || typeof rule.pattern !== 'string' || typeof rule.device !== 'string') {
      ctx.addIssue({ code: 'custom', message: INTERNAL_RULE, path: [i] });
      return;
    }
    const extra = Object.keys(rule).filter((k) => k !== 'pattern' && k !== 'device');
    if (extra.length > 0) ctx.addIssue({ code: 'custom', message: `unknown key ${extra.join(', ')}`, path: [i] });
    let pattern: RegExp;
    try {
      pattern = new RegExp(rule.pattern);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}`, path: [i, 'pattern'] });
      return;
    }
    if (!rule.device.includes('${number}')) {
      ctx.addIssue({ code: 'custom', message: 'must contain ${number}, e.g. "PJSIP/${number}"', path: [i, 'device'] });
      return;
    }
    // A device made from a harmless number must be a plain device: no '&', ',' or options sneak in via the template.
    const sample = validateWatchDevice(rule.device.split('${number}').join('2001'));
    if (!sample.ok) {
      ctx.addIssue({ code: 'custom', message: sample.reason, path: [i, 'device'] });
      return;
    }
    rules.push({ pattern, device: rule.device });
  });
  return rules;
});

/** Checked as a whole by the policy (src/core/policy/calling-hours.ts), which names the part that is wrong. */
const windows = z.custom<CallingHoursConfig['windows']>(() => true);
const holidays = z.custom<CallingHoursConfig['holidays']>(() => true);

/** `callingHours.zoneOverrides`: prefix → IANA zone, checked by src/core/zones.ts (which names the entry). */
const zoneOverrides = z.unknown().transform((value, ctx): Record<string, string> => {
  const problems = validateZoneOverrides(value, '');
  for (const p of problems) {
    // ': <message>' about the whole value, '.<prefix>: <message>' about one entry.
    const entry = /^\.([^:]*): (.*)$/.exec(p);
    if (entry) ctx.addIssue({ code: 'custom', message: entry[2], path: [entry[1]] });
    else ctx.addIssue({ code: 'custom', message: p.replace(/^: /, '') });
  }
  return problems.length > 0 ? z.NEVER : (value as Record<string, string>);
});

/** `profiles`: team profiles chosen per call by the dialplan (src/core/policy/profiles.ts); unknown keys are refused. */
const PROFILE = 'a profile such as {"grace": "1m", "snooze": "10m", "language": "de"}';
const PROFILE_SHAPE = {
      grace: t.duration(),
      longBusyThreshold: t.duration(),
      longBusyExtraGrace: t.duration(),
      firstProbeDelay: t.duration(),
      backoff: t.durationList(),
      maxAttempts: t.integer(1, 20),
      noAnswerRetries: t.integer(0, 10),
      snooze: t.duration('1ms'),
      maxSnoozes: t.integer(0, 20),
      maxAge: t.duration('1ms'),
      headsUp: t.duration(),
      callingHours: z
        .record(z.string(), z.unknown(), expected('{"timeZone", "windows", "holidays"} (each optional)'))
        .superRefine((v, ctx) => {
          for (const k of Object.keys(v)) if (!['timeZone', 'windows', 'holidays'].includes(k)) ctx.addIssue({ code: 'custom', path: [k], message: 'unknown key (known: timeZone, windows, holidays)' });
        })
        .pipe(z.object({ timeZone: t.string().optional(), windows: windows.optional(), holidays: holidays.optional() })),
      afterHours: t.oneOf(['carry-over', 'decline']),
      language: z.string(expected('a language such as "de"')).regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/, expected('a language such as "de"')),
      labelPrefix: labelPrefixes,
      callerIdName: t.string(),
};
const profileSchema = z
  .unknown()
  .superRefine((v, ctx) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      ctx.addIssue({ code: 'custom', message: `expected ${PROFILE}` });
      return;
    }
    for (const k of Object.keys(v)) {
      if (!(k in PROFILE_SHAPE)) ctx.addIssue({ code: 'custom', path: [k], message: `unknown profile key (known: ${Object.keys(PROFILE_SHAPE).join(', ')})` });
    }
  })
  .pipe(z.object(PROFILE_SHAPE).partial())
  .transform((p): ProfileOverrides => {
    const o: ProfileOverrides = {};
    if (p.grace !== undefined) o.graceMs = p.grace;
    if (p.longBusyThreshold !== undefined) o.longBusyThresholdMs = p.longBusyThreshold;
    if (p.longBusyExtraGrace !== undefined) o.longBusyExtraGraceMs = p.longBusyExtraGrace;
    if (p.firstProbeDelay !== undefined) o.firstProbeDelayMs = p.firstProbeDelay;
    if (p.backoff !== undefined) o.backoffMs = p.backoff;
    if (p.maxAttempts !== undefined) o.maxAttempts = p.maxAttempts;
    if (p.noAnswerRetries !== undefined) o.noAnswerRetries = p.noAnswerRetries;
    if (p.snooze !== undefined) o.snoozeMs = p.snooze;
    if (p.maxSnoozes !== undefined) o.maxSnoozes = p.maxSnoozes;
    if (p.maxAge !== undefined) o.maxAgeMs = p.maxAge;
    if (p.headsUp !== undefined) o.headsUpMs = p.headsUp;
    if (p.callingHours !== undefined) o.callingHours = Object.fromEntries(Object.entries(p.callingHours).filter(([, v]) => v !== undefined));
    if (p.afterHours !== undefined) o.afterHours = p.afterHours;
    if (p.language !== undefined) o.language = p.language;
    if (p.labelPrefix !== undefined) o.labelPrefix = p.labelPrefix;
    if (p.callerIdName !== undefined) o.callerIdName = p.callerIdName;
    return o;
  });
const profiles = z.unknown().transform((value, ctx): Record<string, ProfileOverrides> => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'expected profiles by name such as {"berlin": {"grace": "1m"}}' });
    return z.NEVER;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 100) ctx.addIssue({ code: 'custom', message: 'expected at most 100 profiles' });
  const out: Record<string, ProfileOverrides> = {};
  for (const [name, v] of entries) {
    if (!PROFILE_NAME.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'expected a profile name of letters, digits, _ or - (at most 32)' });
      continue;
    }
    // Every problem of a profile named with its path: profiles.<name>.<key>: <message>.
    const r = profileSchema.safeParse(v);
    if (r.success) out[name] = r.data;
    else for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: [name, ...issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k))], message: issue.message });
  }
  return out;
});

export const schema = {
  'ari.url': { type: 'url', default: 'http://127.0.0.1:8088', env: 'CC_ARI_URL', parse: t.url(), doc: 'Base URL of Asterisk\'s HTTP server (ARI lives under /ari).' },
  'ari.username': { type: 'string', default: 'considerate', env: 'CC_ARI_USERNAME', parse: t.name(), doc: 'ARI user from ari.conf.' },
  'ari.password': { type: 'secret', env: 'CC_ARI_PASSWORD', parse: t.string(), doc: 'ARI password from ari.conf. Required; never logged.' },
  'ari.app': { type: 'string', default: 'considerate-callback', env: 'CC_ARI_APP', parse: t.name(), doc: 'Stasis application name; must match the dialplan\'s Stasis() call.' },
  'ari.restOverWebSocket': { type: 'boolean', default: true, env: 'CC_ARI_REST_OVER_WEBSOCKET', parse: t.boolean(), doc: 'Send the calls\' ARI requests over the app\'s WebSocket (ARI REST over WebSocket, Asterisk 20.14+ / 21.9+ / 22.4+) when Asterisk answers a probe on it, instead of one HTTP request each; requests with a body, the lists and everything before the probe\'s answer go over HTTP. An older Asterisk keeps HTTP on its own. false: HTTP only.' },
  'ari.batchRequests': { type: 'boolean', default: false, env: 'CC_ARI_BATCH_REQUESTS', parse: t.boolean(), doc: 'With requests over the WebSocket: the requests the app sends in the same turn of its event loop leave in one socket write (the socket is held until the turn ends) instead of one write each; on loopback each write costs the app the kernel\'s TCP work and Asterisk\'s wake-up. Off by default: on the 2-core bench machine it took 4-17 times fewer writes but no CPU per call measurably (8.13/7.85 vs 8.16/7.95 ms at 50 calls/s), and the requests waited for the turn\'s end (the request out to the PBX p50 +1 ms at 100 calls/s against the simulated PBX).' },
  'ari.reconnectMax': { type: 'duration', default: '10s', at: 'ari.reconnectMaxMs', parse: t.duration('100ms'), doc: 'Longest pause between reconnection attempts to ARI (there is no retry limit).' },
  'ari.leaseTtl': { type: 'duration', default: '15s', at: 'ari.leaseTtlMs', parse: t.duration('1s'), doc: 'One active instance per PBX: a second instance stands by until the active one has not renewed its lease for this long.' },
  'store.path': { type: 'string', default: './data/callbacks.db', env: 'CC_STORE_PATH', parse: t.string(), doc: 'SQLite file holding requests and their history.' },
  'store.url': {
    type: 'secret',
    default: '',
    env: 'CC_STORE_URL',
    parse: t
      .string({ allowEmpty: true })
      // The same parse the driver does (a URL): an unparsable one would otherwise be waited for as an unreachable database.
      .refine((v) => v === '' || (/^postgres(ql)?:\/\/[^\s]+$/i.test(v) && parsesAsUrl(v)), 'expected a postgres:// URL such as postgres://cc:password@db-host:5432/callbacks'),
    doc: 'PostgreSQL instead of SQLite (several instances, several PBXs): postgres://user:password@host:5432/db. The database then also decides which instance serves each PBX (a lease per pbx.id with a fencing epoch, TTL ari.leaseTtl). Empty: SQLite at store.path. Never logged.',
  },
  'store.retryMax': { type: 'duration', default: '10s', at: 'store.retryMaxMs', parse: t.duration('100ms'), doc: 'PostgreSQL: while the database cannot be reached at start, the service waits (readiness false) and tries again, the pause doubling up to this.' },
  'pbx.id': { type: 'string', default: 'default', env: 'CC_PBX_ID', parse: t.name(), doc: 'This PBX\'s name in a shared PostgreSQL store: each request belongs to the PBX of its agent, and one instance at a time serves each PBX.' },
  'log.level': { type: 'string', default: 'info', env: 'CC_LOG_LEVEL', parse: t.oneOf(['error', 'warn', 'info', 'debug']), doc: 'Least severe level written.' },
  'log.format': { type: 'string', default: 'auto', env: 'CC_LOG_FORMAT', parse: t.oneOf(['auto', 'json', 'pretty']), doc: 'auto: readable lines on a terminal, JSON lines otherwise.' },
  'offer.keyTimeout': { type: 'duration', default: '6s', at: 'offer.keyTimeoutMs', parse: t.duration(), doc: 'How long to wait for # after the offer prompt has finished.' },
  'offer.closingTimeout': { type: 'duration', default: '15s', at: 'offer.closingTimeoutMs', parse: t.duration(), doc: 'Longest a confirmation or goodbye prompt may play before the call is ended.' },
  'offer.maxPendingPerAgent': { type: 'integer', default: 10, parse: t.integer(1, 1000), doc: 'Pending callbacks one agent may have; the offer says so politely when full.' },
  'offer.languages': { type: 'stringList', default: ['en', 'de'], parse: t.stringList(), doc: 'Languages prompts exist for; a channel in another language hears offer.defaultLanguage.' },
  'offer.defaultLanguage': { type: 'string', default: 'en', parse: t.string(), doc: 'Prompt language when the channel\'s language has no prompts.' },
  'prompts.offer': { type: 'string', default: 'sound:cc-offer', parse: t.media(), doc: 'ARI media URI of "The line is busy. Press hash for a callback."' },
  'prompts.confirm': { type: 'string', default: 'sound:cc-confirm', parse: t.media(), doc: 'Played after the request is stored.' },
  'prompts.goodbye': { type: 'string', default: 'sound:cc-goodbye', parse: t.media(), doc: 'Played when no callback is scheduled (other key or no key).' },
  'prompts.full': { type: 'string', default: 'sound:cc-full', parse: t.media(), doc: 'Played when the agent already has offer.maxPendingPerAgent callbacks.' },
  'prompts.error': { type: 'string', default: 'sound:cc-goodbye', parse: t.media(), doc: 'Played when the request could not be stored.' },
  'policy.grace': { type: 'duration', default: '5m', at: 'policy.graceMs', parse: t.duration(), doc: 'Break given to an internal prospect after their line became free, before the agent is rung.' },
  'policy.longBusyThreshold': { type: 'duration', default: '30m', at: 'policy.longBusyThresholdMs', parse: t.duration(), doc: 'A busy spell longer than this earns extra grace.' },
  'policy.longBusyExtraGrace': { type: 'duration', default: '5m', at: 'policy.longBusyExtraGraceMs', parse: t.duration(), doc: 'Extra grace after a long busy spell.' },
  'policy.firstProbeDelay': { type: 'duration', default: '10m', at: 'policy.firstProbeDelayMs', parse: t.duration(), doc: 'External prospects (no line state): first attempt this long after the opt-in.' },
  'policy.backoff': { type: 'durationList', default: ['10m', '30m', '60m'], at: 'policy.backoffMs', parse: t.durationList(), doc: 'Wait after the 1st, 2nd, … busy attempt; the last value repeats.' },
  'policy.maxAttempts': { type: 'integer', default: 3, parse: t.integer(1, 20), doc: 'Times the prospect is dialled before the request fails politely.' },
  'policy.noAnswerRetries': { type: 'integer', default: 1, parse: t.integer(0, 10), doc: 'Retries after the prospect did not answer.' },
  'policy.snooze': { type: 'duration', default: '15m', at: 'policy.snoozeMs', parse: t.duration('1ms'), doc: 'How long "2 = try again later" waits.' },
  'policy.maxSnoozes': { type: 'integer', default: 3, parse: t.integer(0, 20), doc: 'Snoozes (pressed 2, or agent did not answer); the next one fails the request.' },
  'policy.headsUp': { type: 'duration', default: '1m', at: 'policy.headsUpMs', parse: t.duration(), doc: 'Heads-up before a recall: this long before a foreseen due time (end of grace, snooze, back-off, probe, wrap-up, calling hours opening) the callbacks page shows it and raises a browser notification, the agent\'s lamp blinks (RINGING) and the CRM gets recall.due_soon. Never rings a phone, never delays the recall; moves with the due time. 0 = off.' },
  'policy.agentWrapUp': { type: 'duration', default: '30s', at: 'policy.agentWrapUpMs', parse: t.duration(), doc: 'Gap after the agent\'s last call before the agent is rung.' },
  'policy.agentBusyRecheck': { type: 'duration', default: '1m', at: 'policy.agentBusyRecheckMs', parse: t.duration('1ms'), doc: 'While the agent is busy, re-check this often (a free agent is also noticed at once).' },
  'policy.agentRingTimeout': { type: 'duration', default: '25s', at: 'policy.agentRingTimeoutMs', parse: t.duration('1ms'), doc: 'How long the agent\'s phone rings for a recall.' },
  'policy.menuTimeout': { type: 'duration', default: '10s', at: 'policy.menuTimeoutMs', parse: t.duration('1ms'), doc: 'How long the recall menu waits for 1, 2 or 3.' },
  'policy.menuRepeats': { type: 'integer', default: 2, parse: t.integer(1, 5), doc: 'Menu prompts without a key before the recall is snoozed.' },
  'policy.prospectRingTimeout': { type: 'duration', default: '45s', at: 'policy.prospectRingTimeoutMs', parse: t.duration('1ms'), doc: 'How long the prospect\'s phone rings.' },
  'policy.recallSafetyMargin': { type: 'duration', default: '2m', at: 'policy.recallSafetyMarginMs', parse: t.duration('1ms'), doc: 'A recall without an outcome this long after it should have ended is recovered (crash safety).' },
  'policy.recoveryDelay': { type: 'duration', default: '10s', at: 'policy.recoveryDelayMs', parse: t.duration(), doc: 'A recall cut short by the service\'s own failure (crash, lost lease, Asterisk restart) is not a snooze: the agent is rung again this long after it was noticed (grace, wrap-up and calling hours still apply).' },
  'policy.maxAge': { type: 'duration', default: '8h', at: 'policy.maxAgeMs', parse: t.duration('1ms'), doc: 'A request never lives longer; it also expires at the end of the prospect\'s calling day.' },
  'callingHours.timeZone': { type: 'string', default: 'Europe/Berlin', at: 'policy.callingHours.timeZone', parse: t.string(), doc: 'IANA time zone of the prospects\' calling hours.' },
  'callingHours.windows': {
    type: 'json',
    default: { mon: [['09:00', '18:00']], tue: [['09:00', '18:00']], wed: [['09:00', '18:00']], thu: [['09:00', '18:00']], fri: [['09:00', '18:00']] },
    defaultDoc: 'Mon–Fri `[["09:00","18:00"]]`',
    at: 'policy.callingHours.windows',
    parse: windows,
    doc: 'Weekly windows per weekday (mon … sun), several ranges a day allowed: {"mon": [["09:00","12:00"],["13:00","18:00"]]}.',
  },
  'callingHours.holidays': { type: 'json', default: [], at: 'policy.callingHours.holidays', parse: holidays, doc: 'Closed local dates, e.g. ["2026-12-24", "2026-12-25"].' },
  'prospects.internal': {
    type: 'json',
    default: [],
    parse: internalRules,
    doc: 'Numbers on this PBX whose line state can be watched: [{"pattern": "^2\\\\d{3}$", "device": "PJSIP/${number}"}]. Others are external (timed retries).',
  },
  'recall.callerIdName': {
    type: 'string',
    default: '${prefix}${number}',
    at: 'policy.recallCallerIdName',
    parse: t.string(),
    doc: 'Caller-ID name on the agent\'s phone for a recall: ${prefix} (recall.labelPrefix), ${number} (national format, or international for foreign numbers), ${prospect} (as stored). Built to fit recall.displayWidth with the whole number.',
  },
  'recall.labelPrefix': {
    type: 'json',
    default: { en: ['Callback: ', 'CB '], de: ['Rückruf: ', 'RR '] },
    defaultDoc: '`{"en": ["Callback: ", "CB "], "de": ["Rückruf: ", "RR "]}`',
    at: 'policy.recallLabel.prefixes',
    parse: labelPrefixes,
    doc: 'The label\'s prefix per language ("*": any other), long to short: the longest that leaves the whole number on the display is used. `config check` fails when the shortest leaves no room for a 12-digit number.',
  },
  'recall.displayWidth': { type: 'integer', default: 16, at: 'policy.recallLabel.width', parse: t.integer(12, 60), doc: 'Characters the agents\' phones show on one line (at least 12: a 12-digit number must fit); the recall\'s label is built to fit it.' },
  'recall.numberCountry': {
    type: 'string',
    default: 'DE',
    at: 'policy.recallLabel.country',
    parse: z.string(expected('a country code such as "DE"')).regex(/^[A-Z]{2}$/, expected('a two-letter country code (ISO 3166) such as "DE"')),
    doc: 'The home country: its numbers are shown in national format on the recall\'s label (004930123456 → 030 123456), others in international format.',
  },
  'recall.callerIdNumber': { type: 'string', default: '', at: 'policy.recallCallerIdNumber', parse: t.string({ allowEmpty: true }), doc: 'Caller-ID number on the agent\'s phone for a recall: a service number, never the prospect\'s.' },
  'recall.alertInfo': { type: 'string', default: '', parse: t.headerValue(), doc: 'Optional Alert-Info header for a distinctive ring, e.g. "<http://127.0.0.1/Bellcore-dr4>".' },
  'recall.outboundContext': { type: 'string', default: 'cc-outbound', parse: t.context(), doc: 'Dialplan context the prospect is dialled through: Local/<number>@<context>, so trunk routing stays in the dialplan.' },
  'agi.enabled': { type: 'boolean', default: false, env: 'CC_AGI_ENABLED', parse: t.boolean(), doc: 'Run the FastAGI server, for AGI(agi://host:port/offer,<prospect>) as the busy-signal entry instead of Stasis() (and the scripts pending and pause of the feature codes, with the global CC_ENTRY=agi in the dialplan).' },
  'agi.bind': { type: 'string', default: '127.0.0.1', parse: t.string(), doc: 'Address the FastAGI server listens on (loopback by default). Another address needs agi.secret and agi.allowedPeers; FastAGI itself is unencrypted, so keep it on a private network.' },
  'agi.port': { type: 'integer', default: 4573, parse: t.integer(0, 65535), doc: 'TCP port of the FastAGI server (4573 is the FastAGI default; 0 picks a free port).' },
  'prompts.pendingCount': { type: 'string', default: 'sound:cc-pending-count', at: 'pending.prompts.count', parse: t.media(), doc: 'Feature code (*82): "Callbacks pending:" (followed by the count).' },
  'prompts.pendingMenu': { type: 'string', default: 'sound:cc-pending-menu', at: 'pending.prompts.menu', parse: t.media(), doc: 'Feature code (*82): "Press 1 to cancel the next callback, 2 to cancel all, or hang up."' },
  'webhook.url': { type: 'url', default: '', env: 'CC_WEBHOOK_URL', parse: t.url({ allowEmpty: true }), doc: 'CRM webhook: POST a JSON event on requested, recall.due_soon (the heads-up), completed, failed, expired and cancelled. Empty: no webhook.' },
  'webhook.secret': { type: 'secret', default: '', env: 'CC_WEBHOOK_SECRET', parse: t.string({ allowEmpty: true }), doc: 'Key of the HMAC-SHA256 signature header X-Considerate-Signature: sha256=<hex of "<X-Considerate-Timestamp>.<raw body>">. Never logged.' },
  'webhook.timeout': { type: 'duration', default: '5s', at: 'webhook.timeoutMs', parse: t.duration(), doc: 'Longest wait for the CRM to answer one POST; a slow CRM never holds up calls.' },
  'webhook.retries': { type: 'integer', default: 20, parse: t.integer(0, 1000), doc: 'Retries of an event the CRM did not accept (not 2xx) before it is given up and logged.' },
  'webhook.backoff': { type: 'durationList', default: ['5s', '30s', '2m', '10m'], at: 'webhook.backoffMs', parse: t.durationList(), doc: 'Wait before the 1st, 2nd, … retry; the last value repeats. Events wait in the store (outbox) and survive restarts.' },
  'prompts.recallIntro': { type: 'string', default: 'sound:cc-recall-intro', parse: t.media(), doc: '"Callback." The first word of a recall, followed at once by the menu.' },
  'prompts.recallNumber': { type: 'string', default: 'sound:cc-recall-number', parse: t.media(), doc: '"The number:" After the menu, before the prospect\'s number (read in groups, twice).' },
  'prompts.paused': { type: 'string', default: 'sound:activated', parse: t.media(), doc: 'Pause feature code (*73): "Activated." — the agent\'s callbacks are now held (Asterisk core sound).' },
  'prompts.resumed': { type: 'string', default: 'sound:de-activated', parse: t.media(), doc: 'Pause feature code (*73): "De-activated." — the agent\'s callbacks ring again (Asterisk core sound).' },
  'prompts.noCallbacks': { type: 'string', default: 'sound:cc-no-callbacks', parse: t.media(), doc: '"No callbacks for you." When an agent calls the service number (a returned recall) and nothing is pending.' },
  'prompts.recallMenu': { type: 'string', default: 'sound:cc-recall-menu', parse: t.media(), doc: '"Press 1 to connect, 2 for later, 3 to cancel." (2 waits policy.snooze.)' },
  'prompts.connecting': { type: 'string', default: 'sound:cc-recall-connecting', parse: t.media(), doc: 'Played when the agent pressed 1.' },
  'prompts.stillBusy': { type: 'string', default: 'sound:cc-still-busy', parse: t.media(), doc: '"Still busy. We\'ll try again later."' },
  'prompts.noAnswer': { type: 'string', default: 'sound:cc-no-answer', parse: t.media(), doc: '"No answer. We\'ll try again later."' },
  'prompts.snoozed': { type: 'string', default: 'sound:cc-snoozed', parse: t.media(), doc: '"OK, we\'ll try again later."' },
  'prompts.cancelled': { type: 'string', default: 'sound:cc-cancelled', parse: t.media(), doc: '"Callback cancelled."' },
  'numbers.minDigits': { type: 'integer', default: defaultNumberRules.minDigits, parse: t.integer(1, MAX_NUMBER_DIGITS), doc: 'Fewest digits of a prospect number.' },
  'numbers.maxDigits': { type: 'integer', default: defaultNumberRules.maxDigits, parse: t.integer(1, MAX_NUMBER_DIGITS), doc: 'Most digits of a prospect number.' },
  // --- promises after hours, one prospect and many agents, the prospect's own clock ---
  'policy.afterHours': {
    type: 'string',
    default: 'carry-over',
    parse: t.oneOf(['carry-over', 'decline']),
    doc: 'At the busy signal, when no callback could fire before the request would expire (after the last moment of today\'s calling hours): carry-over = offer a callback on the next calling day (the agent hears so), decline = no offer, a short reason instead.',
  },
  'policy.carryOverDays': { type: 'integer', default: 1, parse: t.integer(1, 14), doc: 'A carried-over request stays pending through at most this many calling days, the next one being the 1st; then it expires.' },
  'callingHours.zoneFromNumber': { type: 'boolean', default: true, at: 'zones.fromNumber', parse: t.boolean(), doc: 'Read calling hours in the prospect\'s own time zone, from the international number\'s country and area code (libphonenumber data); national and internal numbers use callingHours.timeZone.' },
  'callingHours.zoneOverrides': { type: 'json', default: {}, at: 'zones.overrides', parse: zoneOverrides, doc: 'Time zone by number prefix, before the number\'s own: {"+1808": "Pacific/Honolulu", "+1800": "America/New_York"}. Longest prefix wins.' },
  'callingHours.internationalPrefix': {
    type: 'string',
    default: '00',
    at: 'zones.internationalPrefix',
    parse: t.string({ allowEmpty: true }).regex(/^[0-9]*$/, expected('digits, e.g. "00" or "011" (or empty)')),
    doc: 'Dialled before a country code instead of + (00 in Europe, 011 in North America; empty: only +).',
  },
  'prompts.offerNextDay': { type: 'string', default: 'sound:cc-offer-next-day', parse: t.media(), doc: '"Busy. Press hash for a callback on the next calling day." (after hours, policy.afterHours = carry-over)' },
  'prompts.confirmNextDay': { type: 'string', default: 'sound:cc-confirm-next-day', parse: t.media(), doc: '"OK. We will call you back on the next calling day."' },
  'prompts.closed': { type: 'string', default: 'sound:cc-closed', parse: t.media(), doc: '"Busy, and outside calling hours: no callback." (policy.afterHours = decline)' },
  'prompts.queue': { type: 'string', default: 'sound:cc-queue-${position}', parse: t.media(), doc: '"A colleague is already waiting for this number; you are second." ${position} is 2 … 5, or many.' },
  // Operations: the HTTP listener (health, readiness, metrics) and the agent's lamp (docs/operations.md).
  'http.enabled': { type: 'boolean', default: true, env: 'CC_HTTP_ENABLED', parse: t.boolean(), doc: 'Run the HTTP listener for /healthz, /readyz and /metrics (Prometheus). false: no listener.' },
  'http.bind': { type: 'string', default: '127.0.0.1', env: 'CC_HTTP_BIND', parse: t.string(), doc: 'Address the HTTP listener binds to. Loopback by default; open it only to your monitoring network.' },
  'http.port': { type: 'integer', default: 9464, env: 'CC_HTTP_PORT', parse: t.integer(0, 65535), doc: 'TCP port of the HTTP listener (0 picks a free port). A port in use is logged and the service runs on without it.' },
  'http.token': {
    type: 'secret',
    default: '',
    env: 'CC_HTTP_TOKEN',
    parse: t.string({ allowEmpty: true }),
    doc: 'The token of every route but /healthz: "Authorization: Bearer <token>", basic auth with it as password, or the page\'s cookie after one visit with ?token=<token>. Empty: a random one is made at each start and the page\'s URL with it printed once on stderr (then /readyz and /metrics stay open). Never logged.',
  },
  'http.auth': {
    type: 'string',
    default: 'token',
    env: 'CC_HTTP_AUTH',
    parse: t.oneOf(['token', 'none']),
    doc: 'token: every route but /healthz needs http.token (configured or generated). none: no credentials at all (only behind a reverse proxy that authenticates); refused off loopback or with web.phones unless http.allowOpen.',
  },
  'http.allowedHosts': {
    type: 'json',
    default: [],
    env: 'CC_HTTP_ALLOWED_HOSTS',
    parse: z.array(z.string(expected('a host name such as "cc.example.com"')).regex(/^(\*|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9._-]+)$/, expected('a host name such as "cc.example.com" (no port, no scheme)')), expected('a list of host names')),
    doc: 'Host names requests may address besides localhost, 127.0.0.1, ::1, http.bind and the listener\'s own IP (DNS rebinding defence); e.g. ["cc.example.com"] behind a proxy. Others get 421. "*" turns the check off.',
  },
  'http.allowedOrigins': {
    type: 'json',
    default: [],
    parse: z.array(z.string(expected('an origin')), expected('a list of origins')).superRefine((list, ctx) => {
      list.forEach((o, i) => {
        if (!/^https?:\/\/[^/\s]+$/i.test(o)) ctx.addIssue({ code: 'custom', message: 'expected an origin such as "https://cc.example.com" (scheme and host, no path)', path: [i] });
      });
    }),
    doc: 'Origins besides the page\'s own from which a browser may POST to the page\'s API or open the phones\' WebSocket, e.g. ["https://cc.example.com"].',
  },
  'http.allowOpen': {
    type: 'boolean',
    default: false,
    env: 'CC_HTTP_ALLOW_OPEN',
    parse: t.boolean(),
    doc: 'Start even with a setting `config check` refuses (http.auth none off loopback or with web.phones, or http.allowedHosts "*" with http.auth none); they are then only warned about.',
  },
  'lamp.enabled': { type: 'boolean', default: true, env: 'CC_LAMP_ENABLED', parse: t.boolean(), doc: 'Drive each agent\'s BLF lamp, the device state Stasis:cc-<agent> (idle / in use while callbacks are pending / ringing while one is due).' },
  'web.enabled': { type: 'boolean', default: true, env: 'CC_WEB_ENABLED', parse: t.boolean(), doc: 'Serve the callbacks page (/callbacks: live list, timelines, cancel, snooze, explain) on the HTTP listener, behind its token (http.token, or the one made at start).' },
  'web.phones': { type: 'boolean', default: false, env: 'CC_WEB_PHONES', parse: t.boolean(), doc: 'Demo only: serve the browser softphones (/phones, JsSIP) and relay their SIP WebSocket (/phones/ws; subprotocol sip, the page\'s own Origin, nothing before Asterisk\'s 101) to Asterisk\'s /ws on the host and port of ari.url.' },
  // --- dial policy: who may be rung, which numbers may be dialled, how many requests at most
  'dial.agentDevices': {
    type: 'stringList',
    default: [...DEFAULT_AGENT_DEVICES],
    parse: t.stringList().superRefine((list, ctx) => {
      list.forEach((pattern, i) => {
        const problem = agentPatternProblem(pattern);
        if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [i] });
      });
    }),
    doc: 'Agent devices a callback may ring: TECH/pattern with * as wildcard, e.g. ["PJSIP/*", "PJSIP/10*"]. Local/ only into a named context: "Local/*@agents". Checked at the opt-in and before every call.',
  },
  'dial.prospectAllow': {
    type: 'json',
    default: [],
    parse: prefixList(),
    doc: 'Prospect number prefixes that may be dialled, e.g. ["+4930", "030", "2"]; empty: every number that is not denied. 00 and + are the same.',
  },
  'dial.prospectDeny': {
    type: 'json',
    default: [...DEFAULT_PROSPECT_DENY],
    parse: prefixList(),
    doc: 'Prospect number prefixes never dialled (checked first); the default lists premium-rate and satellite ranges (0900, 0137, 0190, +49900, 1900, +979, +870, +881-+883, +449 …).',
  },
  'offer.maxPendingTotal': {
    type: 'integer',
    default: 1000,
    at: 'dial.maxPendingTotal',
    parse: t.integer(1, 1000000),
    doc: 'Pending callbacks over all agents; beyond it the offer says "full" (a flood of opt-ins cannot grow the queue without bound).',
  },
  // --- FastAGI door
  'agi.secret': {
    type: 'secret',
    default: '',
    env: 'CC_AGI_SECRET',
    at: 'agiDoor.secret',
    parse: t.string({ allowEmpty: true }),
    doc: 'Shared secret the dialplan passes as AGI(agi://host:port/offer?secret=<secret>,…) (global CC_AGI_SECRET in considerate-callback.conf). Empty: none asked; then keep agi.bind on loopback.',
  },
  'agi.allowedPeers': {
    type: 'json',
    default: [],
    at: 'agiDoor.allowedPeers',
    parse: z.array(z.string(expected(PEERS)).refine((x) => isIP(x) !== 0, expected(PEERS)), expected(PEERS)),
    doc: 'IP addresses allowed to connect to the FastAGI server, e.g. ["127.0.0.1", "10.0.0.5"]; empty: any peer that reaches agi.bind.',
  },
  'agi.maxSessions': { type: 'integer', default: 200, at: 'agiDoor.maxSessions', parse: t.integer(1, 10000), doc: 'Concurrent FastAGI sessions; connections beyond it are closed at once (and logged, aggregated).' },
  'agi.envTimeout': { type: 'duration', default: '5s', at: 'agiDoor.envTimeoutMs', parse: t.duration(), doc: 'A FastAGI peer must send its environment block this soon after connecting.' },
  'agi.idleTimeout': { type: 'duration', default: '2m', at: 'agiDoor.idleTimeoutMs', parse: t.duration(), doc: 'A FastAGI session without traffic and without a command waiting is closed after this long.' },
  // --- team profiles and the CRM look-up
  profiles: {
    type: 'json',
    default: {},
    parse: profiles,
    doc: 'Team profiles chosen per call by the dialplan (channel variable CC_PROFILE): {"berlin": {"grace": "2m", "language": "de"}, "newyork": {"callingHours": {"timeZone": "America/New_York"}}}. Keys: grace, longBusyThreshold, longBusyExtraGrace, firstProbeDelay, backoff, maxAttempts, noAnswerRetries, snooze, maxSnoozes, maxAge, headsUp, callingHours {timeZone, windows, holidays}, afterHours, language, labelPrefix, callerIdName (as the policy.*, callingHours.* and recall.* keys). A request keeps its profile\'s resolved policy. An unknown name gets the default policy and a profile.unknown log line.',
  },
  'lookup.url': { type: 'url', default: '', env: 'CC_LOOKUP_URL', parse: t.url({ allowEmpty: true }), doc: 'CRM look-up of the prospect\'s name: POST {"number": "<prospect>"} to this URL, signed like the webhook; the answer {"name": "…", "company": "…"} (404 or {"name": null}: unknown) shows on the recall\'s label when it fits recall.displayWidth, on the page, in list/show and in webhooks. Runs after the opt-in, never in the way of a call; the number is the fallback. Empty: no look-up.' },
  'lookup.secret': { type: 'secret', default: '', env: 'CC_LOOKUP_SECRET', parse: t.string({ allowEmpty: true }), doc: 'Key of the look-up\'s HMAC-SHA256 signature, as the webhook\'s (X-Considerate-Signature: sha256=<hex of "<X-Considerate-Timestamp>.<raw body>">). Empty: webhook.secret. Never logged.' },
  'lookup.timeout': { type: 'duration', default: '2s', at: 'lookup.timeoutMs', parse: t.duration('10ms'), doc: 'Longest wait for one look-up; a slower CRM counts as a failure (the number is shown).' },
  'lookup.maxBytes': { type: 'integer', default: 4096, parse: t.integer(64, 65536), doc: 'Largest look-up answer read; a longer one is refused (logged) and the number is shown.' },
  'lookup.cacheTtl': { type: 'duration', default: '1h', at: 'lookup.cacheTtlMs', parse: t.duration('1s'), doc: 'How long a looked-up name (or "no such contact") is reused without asking the CRM again.' },
  'lookup.cacheSize': { type: 'integer', default: 1000, parse: t.integer(1, 100000), doc: 'Numbers kept in the look-up cache (the least recently used go first).' },
  'lookup.breakerFailures': { type: 'integer', default: 5, parse: t.integer(1, 1000), doc: 'Consecutive look-up failures (timeout, error, bad answer) after which the CRM is not asked for lookup.breakerCooldown.' },
  'lookup.breakerCooldown': { type: 'duration', default: '30s', at: 'lookup.breakerCooldownMs', parse: t.duration('1s'), doc: 'How long the look-up rests after lookup.breakerFailures failures; then one trial request decides whether it resumes.' },
  // --- storage retention
  'store.retention': {
    type: 'duration',
    default: '14d',
    at: 'retentionMs',
    parse: t.duration(),
    doc: 'Finished requests, their history and sent webhook events older than this are deleted (hourly, and by `considerate-callback prune`).',
  },
} as const satisfies Record<string, Field>;

export type ConfigKey = keyof typeof schema;

/** Rules across keys, checked once every key is valid on its own. Each returns a problem or undefined. */
export const crossChecks: ReadonlyArray<(v: Readonly<Record<ConfigKey, unknown>>) => string | undefined> = [
  (v) => ((v['numbers.minDigits'] as number) > (v['numbers.maxDigits'] as number) ? 'numbers.minDigits: must not be larger than numbers.maxDigits' : undefined),
  (v) => (!(v['offer.languages'] as string[]).includes(v['offer.defaultLanguage'] as string) ? 'offer.defaultLanguage: must be one of offer.languages' : undefined),
  (v) =>
    // A template with characters Asterisk must not see is refused by the policy's own check first.
    /["<>\\\p{Cc}]/u.test(v['recall.callerIdName'] as string)
      ? undefined
      : labelProblems(v['recall.callerIdName'] as string, {
      prefixes: v['recall.labelPrefix'] as Record<string, string[]>,
      width: v['recall.displayWidth'] as number,
      country: v['recall.numberCountry'] as string,
      internationalPrefix: v['callingHours.internationalPrefix'] as string,
    })[0],
];

// ---- The Config type, derived from the table -------------------------------------------------------

type Parsed<K extends ConfigKey> = z.output<(typeof schema)[K]['parse']>;
type PathOf<K extends ConfigKey> = (typeof schema)[K] extends { at: infer P extends string } ? P : K;
type Entry = { [K in ConfigKey]: { path: PathOf<K>; value: Parsed<K> } }[ConfigKey];
type Head<P extends string> = P extends `${infer H}.${string}` ? H : P;
type Subtree<E extends Entry | { path: string; value: unknown }, H extends string> = E extends { path: `${H}.${infer R}`; value: infer V } ? { path: R; value: V } : never;
type Tree<E extends { path: string; value: unknown }> = {
  -readonly [H in Head<E['path']>]: [Extract<E, { path: H }>] extends [never] ? Tree<Subtree<E, H>> : Extract<E, { path: H }>['value'];
};

/**
 * The effective configuration: every key of {@link schema} at its `at` path, with its parsed type. The
 * `policy` section is completed and checked as a whole by `makePolicyConfig` (src/config/policy.ts: these defaults and
 * bounds, then the rules relating several keys, `validatePolicyConfig` in the pure policy).
 */
export type Config = Omit<Tree<Entry>, 'policy'> & { policy: PolicyConfig };

/** Every environment variable the configuration reads, in table order. */
export const ENV_VARS: readonly string[] = Object.values(schema as Record<string, Field>)
  .map((f) => f.env)
  .filter((e): e is string => Boolean(e));

/** The values of the secret keys' environment variables (CC_ARI_PASSWORD, CC_WEBHOOK_SECRET), for the mask. */
export function secretsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.values(schema as Record<string, Field>)
    .filter((f) => f.type === 'secret' && f.env)
    .map((f) => env[f.env as string] ?? '')
    .filter((v) => v !== '');
}

/** The configuration table of docs/configuration.md, generated from the schema (`config keys --markdown`). */
export function markdownTable(): string {
  const rows = Object.entries(schema as Record<string, Field>).map(
    ([key, f]) => `| \`${key}\` | ${f.env ? `\`${f.env}\`` : ''} | ${f.default === undefined ? '*(required)*' : (f.defaultDoc ?? `\`${JSON.stringify(f.default)}\``)} | ${f.doc} |`,
  );
  return ['| key | environment | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
