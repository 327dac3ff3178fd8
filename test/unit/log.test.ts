import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logging/log';

function capture(format: 'json' | 'pretty', secrets: string[]) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ format, secrets, stream, level: 'debug' });
  return { log, text: () => chunks.join('') };
}

describe('logging', () => {
  it('writes JSON lines with the call fields', async () => {
    const { log, text } = capture('json', []);
    log.child({ requestId: 'r1', channelId: 'c1' }).info('callback requested', { prospect: '2001' });
    await new Promise((r) => setImmediate(r));
    const line = JSON.parse(text().trim());
    expect(line).toMatchObject({ level: 'info', message: 'callback requested', requestId: 'r1', channelId: 'c1', prospect: '2001' });
    expect(typeof line.timestamp).toBe('string');
  });

  it.each(['json', 'pretty'] as const)('never writes a secret (%s), wherever it hides', async (format) => {
    const secret = 'p@ss:w/rd+%';
    const { log, text } = capture(format, [secret]);
    log.warn(`connect failed for http://considerate:${secret}@127.0.0.1:8088`, {
      url: `ws://127.0.0.1:8088/ari/events?api_key=considerate:${encodeURIComponent(secret)}`,
      nested: { deeper: [`x${secret}y`] },
      password: 'another-one',
      error: new Error(`bad ${secret}`),
    });
    await new Promise((r) => setImmediate(r));
    const out = text();
    expect(out).toContain('********');
    expect(out).not.toContain(secret);
    expect(out).not.toContain('another-one');
    expect(out).toContain('connect failed');
  });
});

/** Two streams that keep what is written to them: ours (createLogger's) in `a`, theirs (winston's own) in `b`. */
function twoSinks(): { ours: PassThrough; theirs: PassThrough; a: string[]; b: string[] } {
  const ours = new PassThrough();
  const theirs = new PassThrough();
  const a: string[] = [];
  const b: string[] = [];
  ours.on('data', (c: Buffer) => a.push(c.toString()));
  theirs.on('data', (c: Buffer) => b.push(c.toString()));
  return { ours, theirs, a, b };
}

/**
 * The logger writes its lines without winston's streams (src/logging/log.ts `direct`): the lines must be those a
 * plain winston logger with the same format and a Stream transport writes, in the same order, level for level.
 */
describe('logging without winston streams', () => {
  async function both(level: string, write: (log: import('winston').Logger) => void): Promise<{ ours: string[]; winstons: string[] }> {
    const winston = (await import('winston')).default;
    const { ours, theirs, a, b } = twoSinks();
    const log = createLogger({ format: 'json', stream: ours, level });
    // The same format as createLogger's JSON path, with a fixed timestamp on both sides.
    const fixed = winston.format((info) => Object.assign(info, { timestamp: 'T' }));
    const plain = winston.createLogger({ level, format: winston.format.combine(winston.format.errors({ stack: false }), fixed(), winston.format.json()), transports: [new winston.transports.Stream({ stream: theirs })] });
    write(log);
    write(plain);
    await new Promise((r) => setTimeout(r, 20));
    const norm = (lines: string[]) => lines.join('').split('\n').filter(Boolean).map((l) => JSON.stringify({ ...JSON.parse(l), timestamp: 'T' }));
    return { ours: norm(a), winstons: norm(b) };
  }

  it('writes the lines winston writes: fields, child fields, order, errors, levels dropped', async () => {
    const { ours, winstons } = await both('info', (log) => {
      log.info('one', { a: 1, nested: { b: [1, 2] } });
      log.debug('not written at info', { x: 1 });
      const child = log.child({ channelId: 'c1' }).child({ requestId: 'r1' });
      child.warn('two', { prospect: '2001' });
      child.debug('not written either');
      child.log('error', 'three', { error: new Error('boom').message });
      log.log('verbose', 'dropped (below info)');
      log.info('four');
    });
    expect(ours).toHaveLength(4);
    expect(ours).toEqual(winstons);
    expect(ours.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['one', 'two', 'three', 'four']);
    expect(JSON.parse(ours[1])).toMatchObject({ level: 'warn', channelId: 'c1', requestId: 'r1', prospect: '2001' });
  });

  it('child loggers of any depth (one copy of the line, not one per level) write what winston’s nested children write', async () => {
    const boom = new Error('boom');
    const { ours, winstons } = await both('info', (log) => {
      const fields = { call: 'c1', shared: 'outer' };
      const outer = log.child(fields);
      const middle = outer.child({ shared: 'middle', agent: '1001' });
      const inner = middle.child({ shared: 'inner', prospect: '2991' });
      inner.info('inner wins over the outer levels', { a: 1 });
      inner.info('the line wins over every level', { shared: 'line', call: 'c2' });
      middle.warn('a middle level keeps its own', { b: 2 });
      // a field object changed after its child was made: winston reads it at each line, so does this one
      fields.call = 'c3';
      inner.info('after the change');
      // a sibling of the inner child does not see the inner's fields
      middle.child({ other: true }).info('sibling');
      // an Error logged through a child: its message and stack as winston's child copies them
      inner.error(boom);
      inner.log({ level: 'info', message: 'an info object' });
    });
    expect(ours).toHaveLength(7);
    expect(ours).toEqual(winstons);
    expect(JSON.parse(ours[0])).toMatchObject({ shared: 'inner', call: 'c1', agent: '1001', prospect: '2991', a: 1 });
    expect(JSON.parse(ours[1])).toMatchObject({ shared: 'line', call: 'c2' });
    expect(JSON.parse(ours[3])).toMatchObject({ call: 'c3' });
    expect(JSON.parse(ours[4])).not.toHaveProperty('prospect');
    expect(JSON.parse(ours[5])).toMatchObject({ level: 'error', message: 'boom' });
  });

  it('an event (emit) writes the line winston writes for log(level, message, { ...fields, event }), through children too', async () => {
    const { emit } = await import('../../src/logging/events');
    const { ours, winstons } = await both('info', (log) => {
      const call = log.child({ channelId: 'c1' }).child({ agent: 'PJSIP/1001', prospect: '2001' });
      emit(call, 'info', 'offer.started', 'busy: offering a callback', { language: 'en', entry: 'ari', promise: 'regular', queue: ['PJSIP/1001'], waiting: 1 });
      emit(call, 'debug', 'offer.key', 'not written at info', { digit: '#', phase: 'offer' });
      // the line's own fields over the children's, the event over a field of that name, the level and message over all
      emit(call.child({ requestId: 'r1' }), 'info', 'offer.ended', 'offer ended', { outcome: 'requested', requestId: 'r2', entry: 'ari', event: 'x', level: 'debug' } as never);
      // winston's ways kept: a message with printf tokens drops the fields, a `message` field is appended to the message
      emit(log, 'warn', 'offer.full', 'full: %d pending', { pending: 10 });
      emit(log, 'warn', 'offer.store_failed', 'store failed', { error: 'disk', message: 'and more' } as never);
      emit(log, 'error', 'service.stopped', 'stopped', { eventLoopDelayMs: { p99: 2, p50: 1, max: 3 } });
    });
    expect(ours).toHaveLength(5);
    expect(ours).toEqual(winstons);
    expect(JSON.parse(ours[1])).toMatchObject({ event: 'offer.ended', level: 'info', requestId: 'r2', channelId: 'c1' });
  });

  it('a logger at debug writes debug lines, and a level changed later is followed', async () => {
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const log = createLogger({ format: 'json', stream, level: 'debug' });
    log.child({ c: 1 }).debug('seen');
    log.level = 'info';
    log.debug('not seen');
    log.info('seen too');
    await new Promise((r) => setImmediate(r));
    expect(chunks.join('').trim().split('\n').map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['seen', 'seen too']);
  });
});

describe('isLevelEnabled of the direct logger', () => {
  it("answers as winston's does, for the logger and its children, after a level change too", () => {
    const log = createLogger({ format: 'json', stream: new PassThrough(), level: 'info' });
    const child = log.child({ a: 1 });
    expect([log.isLevelEnabled('error'), log.isLevelEnabled('info'), log.isLevelEnabled('debug'), log.isLevelEnabled('nonsense')]).toEqual([true, true, false, false]);
    expect(child.isLevelEnabled('debug')).toBe(false);
    log.level = 'debug';
    expect(child.isLevelEnabled('debug')).toBe(true);
    expect(child.isLevelEnabled('silly')).toBe(false);
  });
});

/**
 * The JSON line's format (src/logging/log.ts): safe-stable-stringify configured once (logform's `json` configures it
 * for every line) and the timestamp's ISO text shared within a millisecond: the very text logform writes.
 */
describe('the JSON line, stringified as logform does', () => {
  it('is byte for byte logform’s json for awkward values (key order, bigint, cycles, toJSON, Buffers, undefined, NaN, lone surrogates)', async () => {
    const winston = (await import('winston')).default;
    const { ours, theirs, a, b } = twoSinks();
    const { redact } = await import('../../src/logging/log');
    const { masker } = await import('../../src/logging/mask');
    const log = createLogger({ format: 'json', stream: ours, level: 'debug', secrets: ['s3cret-value'] });
    // the format before this change: logform's errors, timestamp and json around the same mask
    const before = winston.format.combine(winston.format.errors({ stack: false }), winston.format.timestamp(), redact({ mask: masker(['s3cret-value']) }), winston.format.json());
    const plain = winston.createLogger({ level: 'debug', format: before, transports: [new winston.transports.Stream({ stream: theirs })] });
    const cyclic: Record<string, unknown> = { z: 1, a: 2 };
    cyclic.self = cyclic;
    const lines: Array<[string, Record<string, unknown>]> = [
      ['order', { zeta: 1, alpha: { y: [3, { d: 1, c: 2 }], b: null }, Mid: 'x', timestamp: '2026-12-07T18:00:00.000Z' }],
      ['bigint', { big: 12345678901234567890n, inArray: [1n, 2], timestamp: 'kept as given' }],
      ['cycle', { cyclic, timestamp: 't' }],
      ['toJSON', { when: new Date(0), buf: Buffer.from('hi'), custom: { toJSON: () => ({ b: 1, a: 2 }) }, timestamp: 't' }],
      ['undefined and friends', { u: undefined, f: () => 1, arr: [undefined, () => 1, NaN, Infinity, -0], n: NaN, [Symbol('s')]: 1, timestamp: 't' }],
      ['strings', { s: 'quote " backslash \\ newline \n tab \t nul \u0000 lone \ud800 pair 😀 \u2028', timestamp: 't' }],
      ['empty', { o: {}, a: [], timestamp: 't' }],
      // keys that V8 keeps in numeric order ahead of the others, where the line sorts them as text
      ['index-like keys', { 10: 'ten', 9: 'nine', '1a': 'x', b: true, timestamp: 't' }],
      // arrays of strings, numbers, booleans and nulls stay on the plain path (JSON.stringify)
      // eslint-disable-next-line no-sparse-arrays
      ['plain lists', { queue: [], ids: ['a', 'b "q" \n', 1.5, -0, NaN, Infinity, true, null, 'lone \ud800'], sparse: [1, , 3], nested: [[1], 'x'], timestamp: 't' }],
      ['key order by code unit', { é: 1, Z: 2, _u: 3, a: 4, 'a b': 5, aa: 6, A: 7, '~': 8, timestamp: 't' }],
      ['plain values', { n: -0, inf: Infinity, nan: NaN, no: false, nil: null, u: undefined, text: 'a "b" \\ c', timestamp: 't' }],
      ['masked s3cret-value', { url: 'http://u:p@h/x?token=abc', password: 'pw', deep: { secret: 'x', list: ['s3cret-value'] }, timestamp: 't' }],
    ];
    for (const [message, fields] of lines) {
      log.info(message, fields);
      plain.info(message, fields);
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(a.join('')).toBe(b.join(''));
    expect(a.join('').split('\n').filter(Boolean)).toHaveLength(lines.length);
  });

  it('stamps lines with the ISO time of their millisecond (the text shared within one), a given timestamp kept', async () => {
    const { isoNow } = await import('../../src/logging/log');
    for (const t of [0, 1, 1765130400123, 1765130400123, 1765130400124, 253402300799999, -1]) expect(isoNow(t)).toBe(new Date(t).toISOString());
    const { log, text } = capture('json', []);
    const before = Date.now();
    log.info('now');
    log.info('given', { timestamp: 'as given' });
    await new Promise((r) => setImmediate(r));
    const [first, second] = text().trim().split('\n').map((l) => JSON.parse(l) as { timestamp: string });
    const at = Date.parse(first.timestamp);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
    expect(first.timestamp).toBe(new Date(at).toISOString());
    expect(second.timestamp).toBe('as given');
  });
});
