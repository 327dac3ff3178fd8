/**
 * Structured logging with winston: JSON lines when stdout is not a terminal (for journald, docker,
 * log shippers), readable lines on a terminal. Secrets handed to `createLogger`, URL credentials and secret
 * query parameters are masked (src/logging/mask.ts) wherever they would appear, in messages and in fields alike.
 */
import { EOL } from 'node:os';
import { Writable } from 'node:stream';
import { createRequire } from 'node:module';
import winston from 'winston';
import { emit } from './events';
import { Masker, masker } from './mask';

export type Logger = winston.Logger;

export interface LogOptions {
  level?: string;
  format?: 'auto' | 'json' | 'pretty';
  /** Values that must never appear in a log line (passwords, webhook secrets). */
  secrets?: readonly string[];
  /** Where lines go; defaults to stdout. Tests pass a stream to inspect the output. */
  stream?: NodeJS.WritableStream;
  isTTY?: boolean;
  /** Told once when the stream fails (EPIPE: the reading end of the pipe went away); default: a line on stderr. */
  onClosed?: (err: Error) => void;
  /**
   * The lines of one turn of the event loop written together, in one write, when the turn ends (and at the
   * process's exit): default on for stdout, off for a given stream. See guardStream.
   */
  coalesce?: boolean;
}

/** The default notice: one JSON line on stderr (stdout is gone, stderr may still be read). */
function stderrNotice(err: Error): void {
  const errLog = winston.createLogger({
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  });
  emit(errLog, 'warn', 'log.stdout_closed', 'log output closed; no more log lines are written there', { error: err.message });
}

/**
 * The log's destination, guarded. When it fails — `run … | head -1` closes the pipe, EPIPE — the lines are
 * dropped from then on and that is said once (`onClosed`). Without the guard the error reached the
 * process's "carrying on" handler and winston kept every later line in memory (gigabytes of heap within
 * hours). The guard never fails itself, so winston's pipe to its transport stays intact.
 */
export function guardStream(target: NodeJS.WritableStream, onClosed: (err: Error) => void, opts: { coalesce?: boolean } = {}): Writable & { flush(): void } {
  let closed = false;
  const fail = (err: Error): void => {
    if (closed) return;
    closed = true;
    onClosed(err);
  };
  target.on('error', fail);
  const put = (chunk: string | Buffer): void => {
    if (!closed && (target as Partial<Writable>).destroyed) fail(Object.assign(new Error('the log stream was closed'), { code: 'ERR_STREAM_DESTROYED' }));
    if (!closed) {
      try {
        target.write(chunk);
      } catch (err) {
        fail(err as Error);
      }
    }
  };
  // Coalesced: stdout on Linux is written synchronously (a pipe to journald or a reader, a file), one
  // system call per line, each waiting while the reader lags; under ten concurrent calls that was a
  // tenth of the service's time (bench profile). The lines of one turn go out in one write at its end, in
  // order; at the process's exit whatever is pending is written at once.
  let pending: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    put(text);
  };
  if (opts.coalesce) process.once('exit', flush);
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding: BufferEncoding, callback: () => void) {
      if (!opts.coalesce) put(chunk);
      else {
        pending.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      }
      callback();
    },
  });
  return Object.assign(stream, { flush });
}

/**
 * logform's `json` format, with safe-stable-stringify configured once instead of for every line (logform's calls
 * `configure` per line): the same options (none: keys sorted, "[Circular]"), the same replacer (a bigint as its
 * decimal string), so the same line.
 */
// logform's own safe-stable-stringify (resolved from logform, so the very version its `json` uses).
const { configure } = createRequire(require.resolve('logform'))('safe-stable-stringify') as {
  configure(opts: object): (value: unknown, replacer: (key: string, value: unknown) => unknown) => string | undefined;
};
const stableStringify = configure({});
const bigintAsString = (_key: string, value: unknown): unknown => (typeof value === 'bigint' ? value.toString() : value);
const jsonOnce = winston.format((info) => {
  (info as unknown as Record<symbol, unknown>)[MESSAGE] = stableStringify(info, bigintAsString);
  return info;
});

/**
 * The JSON format's four steps (errors, timestamp, mask, json) in one pass over the line, with the same text as
 * their combination (test/unit/log.test.ts compares them byte for byte): under the sustained load each line went
 * through four format closures, the mask's rewrite of every field in place and safe-stable-stringify's replacer
 * path for every key (bench/cpu-call.ts, issue 23). The masked fields are copied into a new object in
 * safe-stable-stringify's order (keys sorted); when every value is a string, number, boolean, null or nothing
 * (the lines of a call), V8's own JSON.stringify writes it — the same text: safe-stable-stringify writes those
 * as JSON.stringify does, and an object keeps its keys in insertion order unless they look like array indices,
 * which go to the slow path. Any other value (an object, an array, a bigint) takes safe-stable-stringify as
 * before. Undefined for an Error line (logform's `errors` handles those) and a `__proto__` field: the caller then
 * runs the formats.
 */
export function jsonLine(info: Record<string, unknown>, mask: Masker): string | undefined {
  if (info instanceof Error || info.message instanceof Error) return undefined;
  if (!info.timestamp) info.timestamp = isoNow();
  const keys = sortedKeys(info);
  const line: Record<string, unknown> = {};
  let plain = true;
  for (const key of keys) {
    // a key the copy would take for the prototype: the formats' way
    if (key === '__proto__') return undefined;
    // as `redact`: every field but the level through the mask
    const value = key === 'level' ? info[key] : mask.field(key, info[key]);
    if ((value !== null && typeof value === 'object' && !isPlainList(value)) || typeof value === 'bigint' || isIndexLike(key)) plain = false;
    line[key] = value;
  }
  return plain ? JSON.stringify(line) : stableStringify(line, bigintAsString);
}

/**
 * An object's own keys in `Array.prototype.sort`'s default order (UTF-16 code units), sorted in place by insertion:
 * V8's sort copies the array into a work array first, which for a call's lines was 5.6 KiB of the 266 KiB the
 * service allocated per offered call (bench/cpu-call.ts --gc, issue 23). A line has a few dozen keys at most.
 */
function sortedKeys(o: object): string[] {
  const keys = Object.keys(o);
  if (keys.length > 64) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i];
    let j = i - 1;
    while (j >= 0 && keys[j] > key) {
      keys[j + 1] = keys[j];
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/**
 * An array of strings, numbers, booleans and nulls only (offer.started's `queue`, often empty): JSON.stringify writes
 * it as safe-stable-stringify does (elements in order, a non-finite number as null), so its line stays plain.
 */
function isPlainList(value: object): boolean {
  if (!Array.isArray(value)) return false;
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return false;
  }
  return true;
}

/** A key V8 would order before the others in an object (an array index: digits only). */
function isIndexLike(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 48 && c <= 57;
}

/** The last millisecond's ISO text: log lines of the same millisecond share one `toISOString`. */
let isoAt = NaN;
let isoText = '';
export function isoNow(now = Date.now()): string {
  if (now !== isoAt) {
    isoAt = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

/** logform's `timestamp()` without a format: a line's own `timestamp` kept, else now in ISO form. */
const stamp = winston.format((info) => {
  if (!info.timestamp) info.timestamp = isoNow();
  return info;
});

/** The mask as a format step (exported for the tests that compare the line with logform's own formats). */
export const redact = winston.format((info, opts?: unknown) => {
  // The one mask (src/logging/mask.ts): URL credentials, secret query parameters, secret-named fields, the given secrets.
  const mask = (opts as { mask: Masker }).mask;
  const fields = info as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (key === 'level') continue;
    // As inside `{ [key]: value }`: the key name itself (password, secret) is checked too.
    fields[key] = mask.field(key, fields[key]);
  }
  return info;
});

/**
 * Control characters (and the Unicode line separators) as visible escapes: a channel name carrying "\n" or
 * "\x1b[2J" must neither forge a second log line nor clear the reader's screen. JSON lines need no such
 * step: JSON.stringify escapes control characters itself.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\p{Cc}\u2028\u2029]/gu, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

export function createLogger(opts: LogOptions = {}): Logger {
  const target = opts.stream ?? process.stdout;
  const tty = opts.isTTY ?? Boolean((target as NodeJS.WriteStream).isTTY);
  const stream = guardStream(target, opts.onClosed ?? stderrNotice, { coalesce: opts.coalesce ?? opts.stream === undefined });
  const pretty = opts.format === 'pretty' || (opts.format !== 'json' && tty);
  const mask = masker(opts.secrets ?? []);
  const base = [winston.format.errors({ stack: false }), stamp(), redact({ mask })];
  const format = pretty
    ? winston.format.combine(
        ...base,
        // Colours only on a terminal: pretty lines written to a file carry no escape sequences at all.
        ...(tty ? [winston.format.colorize({ level: true })] : []),
        winston.format.printf((info) => {
          const { timestamp, level, message, ...rest } = info;
          const fields = Object.entries(rest)
            .filter(([k]) => typeof k === 'string')
            .map(([k, v]) => `${escapeControl(k)}=${escapeControl(typeof v === 'string' ? v : String(JSON.stringify(v)))}`)
            .join(' ');
          return `${String(timestamp)} ${level} ${escapeControl(String(message))}${fields ? ` ${fields}` : ''}`;
        }),
      )
    : winston.format.combine(...base, jsonOnce());
  const logger = winston.createLogger({
    level: opts.level ?? 'info',
    format,
    transports: [new winston.transports.Stream({ stream })],
  });
  return direct(logger, format, stream, pretty ? undefined : (info) => jsonLine(info, mask));
}

/** winston's `info` keys (triple-beam): the level the line was logged at, and the formatted line. */
const LEVEL = Symbol.for('level');
const MESSAGE = Symbol.for('message');
/** A child logger's field objects, outermost first. */
const FIELDS = Symbol('cc.childFields');

/**
 * The same lines, without winston's streams. A winston logger is an object-mode Transform piped into its
 * transport (a Writable) that writes to the destination: every line went through two streams (buffers, ticks,
 * callbacks) and was filtered by level only in the transport. Under the sustained load that machinery was a
 * third of the service's logging time (bench profile, docs/performance-log.md, issue 23). Here the logger's
 * `write` — the one every `log`, `info`, … and every child logger (Object.create over this one, adding its
 * fields) ends in — filters by level, runs the same format (errors, timestamp, mask, JSON or pretty) and writes
 * the line to the same destination as winston's Stream transport would (`line + EOL`): the output is unchanged.
 */
function direct(logger: winston.Logger, format: winston.Logform.Format, stream: NodeJS.WritableStream, line?: (info: Record<string, unknown>) => string | undefined): winston.Logger {
  const levels = logger.levels;
  // winston's own asks every transport for its level on each call; the one transport has none (the logger's).
  Object.defineProperty(logger, 'isLevelEnabled', {
    configurable: true,
    writable: true,
    value: (level: string): boolean => {
      const at = levels[level];
      return at !== undefined && levels[logger.level] >= at;
    },
  });
  // Child loggers one level deep whatever their nesting: winston's child copies the line at every level (a
  // three-deep child logger: three copies of each line, each its own call); this one copies it once, from the
  // same field objects in the same order (the innermost's fields win, the line's over all), so the line is the same.
  // Every child shares one prototype (over the logger) holding its `write`; a child is that prototype with its field
  // chain: one small object of one shape per child, where a child with its own `write` closure and property
  // descriptors was a new shape each (a call makes four).
  type Child = winston.Logger & { [FIELDS]: readonly object[] };
  const childProto = Object.create(logger, {
    write: {
      value: function write(this: Child, info: winston.Logform.TransformableInfo & Record<symbol, unknown>): boolean {
        const line = Object.assign({}, ...this[FIELDS], info) as winston.Logform.TransformableInfo & Record<symbol, unknown>;
        // As winston's child: Object.assign does not copy an Error's own non-enumerable fields.
        if (info instanceof Error) {
          line.stack = info.stack;
          line.message = info.message;
          line.cause = (info as { cause?: unknown }).cause;
        }
        return logger.write(line);
      },
    },
  }) as object;
  Object.defineProperty(logger, 'child', {
    configurable: true,
    writable: true,
    value: function child(this: winston.Logger & { [FIELDS]?: readonly object[] }, fields: object): winston.Logger {
      const parent = this[FIELDS];
      const c = Object.create(childProto) as Child;
      c[FIELDS] = parent ? [...parent, fields] : [fields];
      return c;
    },
  });
  // An event's line (events.ts emit) without winston's `log`: the line object winston builds from (level, message,
  // { ...fields, event }) — the fields, the event, the level and the message over them — made in one copy, where
  // winston's made two and searched the message for printf tokens. A message with `%`, fields with a `message`
  // (which winston appends to the line's) or a logger with default fields take winston's way.
  Object.defineProperty(logger, 'logEvent', {
    configurable: true,
    writable: true,
    value: function logEvent(this: winston.Logger, level: string, message: string, fields: object, event: string): void {
      if (message.includes('%') || 'message' in fields || logger.defaultMeta) {
        this.log(level, message, { ...fields, event });
        return;
      }
      const info = Object.assign({}, fields, { event, level, message }) as winston.Logform.TransformableInfo & Record<symbol, unknown>;
      info[LEVEL] = level;
      this.write(info);
    },
  });
  Object.defineProperty(logger, 'write', {
    configurable: true,
    writable: true,
    value: (info: winston.Logform.TransformableInfo & Record<symbol, unknown>): boolean => {
      if (logger.silent) return true;
      if (!info[LEVEL]) info[LEVEL] = info.level;
      const at = levels[info[LEVEL] as string];
      // As the transport (no level of its own: the logger's): unknown levels and levels above it are dropped.
      if (at === undefined || !(levels[logger.level] >= at)) return true;
      const text = line?.(info);
      if (text !== undefined) {
        stream.write(`${text}${EOL}`);
        return true;
      }
      const out = format.transform(info, format.options) as (winston.Logform.TransformableInfo & Record<symbol, unknown>) | boolean;
      if (out && typeof out === 'object') stream.write(`${String(out[MESSAGE])}${EOL}`);
      return true;
    },
  });
  return logger;
}
