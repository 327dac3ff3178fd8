/**
 * Structured logging with winston: JSON lines when stdout is not a terminal (for journald, docker,
 * log shippers), readable lines on a terminal. Secrets handed to `createLogger` are masked wherever
 * they would appear, in messages and in fields alike.
 */
import winston from 'winston';

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

const MASK = '********';

function redactValue(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') {
    let out = value;
    for (const s of secrets) if (s) out = out.split(s).join(MASK);
    return out;
  }
  if (depth > 5 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redactValue({ name: value.name, message: value.message, stack: value.stack }, secrets, depth + 1);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = /password|secret|token/i.test(k) && typeof v === 'string' && v !== '' ? MASK : redactValue(v, secrets, depth + 1);
  }
  return out;
}

const redact = winston.format((info, opts?: unknown) => {
  const given = ((opts as { secrets?: readonly string[] } | undefined)?.secrets ?? []).filter((s) => s.length > 0);
  // A secret also leaks URL-encoded (ARI's WebSocket URL carries api_key=user:password).
  const secrets = [...new Set(given.flatMap((s) => [s, encodeURIComponent(s)]))];
  const fields = info as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (key === 'level') continue;
    // Wrapped in an object so that the key name itself (password, secret) is checked too.
    fields[key] = (redactValue({ [key]: fields[key] }, secrets) as Record<string, unknown>)[key];
  }
  return info;
});

export function createLogger(opts: LogOptions = {}): Logger {
  const stream = opts.stream ?? process.stdout;
  const tty = opts.isTTY ?? Boolean((stream as NodeJS.WriteStream).isTTY);
  const pretty = opts.format === 'pretty' || (opts.format !== 'json' && tty);
  const base = [winston.format.errors({ stack: false }), winston.format.timestamp(), redact({ secrets: opts.secrets ?? [] })];
  const format = pretty
    ? winston.format.combine(
        ...base,
        winston.format.colorize({ level: tty }),
        winston.format.printf((info) => {
          const { timestamp, level, message, ...rest } = info;
          const fields = Object.entries(rest)
            .filter(([k]) => typeof k === 'string')
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          return `${String(timestamp)} ${level} ${String(message)}${fields ? ` ${fields}` : ''}`;
        }),
      )
    : winston.format.combine(...base, winston.format.json());
  return winston.createLogger({
    level: opts.level ?? 'info',
    format,
    transports: [new winston.transports.Stream({ stream })],
  });
}
