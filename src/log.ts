/**
 * Structured logging with winston: JSON lines when stdout is not a terminal (for journald, docker,
 * log shippers), readable lines on a terminal. Secrets handed to `createLogger`, URL credentials and secret
 * query parameters are masked (src/mask.ts) wherever they would appear, in messages and in fields alike.
 */
import winston from 'winston';
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
}

const redact = winston.format((info, opts?: unknown) => {
  // The one mask (src/mask.ts): URL credentials, secret query parameters, secret-named fields, the given secrets.
  const mask = (opts as { mask: Masker }).mask;
  const fields = info as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (key === 'level') continue;
    // Wrapped in an object so that the key name itself (password, secret) is checked too.
    fields[key] = mask.value({ [key]: fields[key] })[key];
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
  const stream = opts.stream ?? process.stdout;
  const tty = opts.isTTY ?? Boolean((stream as NodeJS.WriteStream).isTTY);
  const pretty = opts.format === 'pretty' || (opts.format !== 'json' && tty);
  const base = [winston.format.errors({ stack: false }), winston.format.timestamp(), redact({ mask: masker(opts.secrets ?? []) })];
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
    : winston.format.combine(...base, winston.format.json());
  return winston.createLogger({
    level: opts.level ?? 'info',
    format,
    transports: [new winston.transports.Stream({ stream })],
  });
}
