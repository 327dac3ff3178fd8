import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { EVENT_NAMES, emit } from '../../src/logging/events';
import { createLogger } from '../../src/logging/log';

const SRC = path.join(__dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('the event catalogue', () => {
  it('names are unique and shaped <area>.<what_happened>', () => {
    expect(new Set(EVENT_NAMES).size).toBe(EVENT_NAMES.length);
    for (const name of EVENT_NAMES) expect(name).toMatch(/^[a-z]+\.[a-z_]+$/);
  });

  it('emit writes the name in the `event` field, after the fields (a field cannot overwrite it)', () => {
    const stream = new PassThrough();
    const log = createLogger({ format: 'json', stream });
    emit(log, 'info', 'recall.agent_key', 'agent chose in the recall menu', { key: '1', event: 'spoofed' } as never);
    const line = JSON.parse(String(stream.read())) as Record<string, unknown>;
    expect(line).toMatchObject({ event: 'recall.agent_key', key: '1', message: 'agent chose in the recall menu', level: 'info' });
  });

  it('emit does not build a line the logger would drop (debug at info), and hands every line to a sink that cannot tell', () => {
    const calls: string[] = [];
    const sink = {
      log: (level: string, message: string) => void calls.push(`${level} ${message}`),
      isLevelEnabled: (level: string) => level !== 'debug',
    };
    emit(sink, 'debug', 'offer.key', 'key pressed', { digit: '#', phase: 'offering' });
    emit(sink, 'info', 'offer.ended', 'offer ended', { outcome: 'hangup', entry: 'ari' });
    expect(calls).toEqual(['info offer ended']);
    const plain: string[] = [];
    emit({ log: (level: string) => void plain.push(level) }, 'debug', 'offer.key', 'key pressed', { digit: '#', phase: 'offering' });
    expect(plain).toEqual(['debug']);
    // The service's logger at level info: the debug event is not written, the info one is.
    const stream = new PassThrough();
    const log = createLogger({ format: 'json', stream, level: 'info' });
    emit(log.child({ channelId: 'c' }), 'debug', 'offer.key', 'key pressed', { digit: '#', phase: 'offering' });
    emit(log.child({ channelId: 'c' }), 'info', 'offer.ended', 'offer ended', { outcome: 'hangup', entry: 'ari' });
    const lines = String(stream.read()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.event)).toEqual(['offer.ended']);
  });

  it('no log line or child logger in src sets `event` by hand: only emit() does, with a catalogued name', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(SRC)) {
      if (file.endsWith(`${path.sep}events.ts`)) continue;
      fs.readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\b(log|rlog|clog|child)\b.*\(.*[{,]\s*event\s*:/.test(line)) offenders.push(`${path.relative(SRC, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
