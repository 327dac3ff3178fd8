/** A logger for unit tests that keeps every JSON line it writes, parsed, so tests assert on structured events. */
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../src/logging/log';

export function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.setEncoding('utf8').on('data', (c: string) => c.split('\n').filter((l) => l.trim()).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
  return { log: createLogger({ format: 'json', stream, level: 'debug' }), lines };
}
