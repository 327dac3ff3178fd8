/**
 * A `run` whose stdout pipe is closed (`… | while read l; do break; done`) must not keep its log lines in
 * memory: performed with a real pipe to a child process that reads one chunk and exits (EPIPE from then on).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { createLogger, guardStream } from '../../src/logging/log';
import { waitFor } from '../../testkit/wait';

describe('the log on a closed pipe', () => {
  it('stops writing there after EPIPE, says so once, keeps nothing buffered, and the process carries on', async () => {
    const reader = spawn(process.execPath, ['-e', "process.stdin.once('data', () => process.exit(0))"], { stdio: ['pipe', 'ignore', 'ignore'] });
    const closed: Error[] = [];
    const log = createLogger({ format: 'json', stream: reader.stdin, onClosed: (err) => closed.push(err) });
    log.info('first line', { n: 0 });
    await once(reader, 'exit');
    // Thousands of lines after the reader is gone, over several turns of the event loop (EPIPE arrives async).
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 500; i++) log.info('line to nowhere', { n: i, pad: 'x'.repeat(200) });
      await new Promise((r) => setImmediate(r));
    }
    await waitFor('the closed notice', () => closed.length > 0, 5000);
    expect(closed).toHaveLength(1);
    expect(['EPIPE', 'ERR_STREAM_DESTROYED']).toContain((closed[0] as NodeJS.ErrnoException).code);
    // Nothing is held back: neither winston's pipe nor the pipe to the gone reader grows.
    for (let i = 0; i < 2000; i++) log.info('more', { n: i, pad: 'x'.repeat(200) });
    await new Promise((r) => setImmediate(r));
    expect(log.readableLength).toBe(0);
    expect(log.writableLength).toBe(0);
    expect(reader.stdin.writableLength).toBeLessThan(64 * 1024);
    expect(closed).toHaveLength(1);
    log.close();
  });

  it('a stream that works is written to as before', () => {
    const out = new PassThrough();
    const log = createLogger({ format: 'json', stream: out, onClosed: () => undefined });
    log.info('hello', { a: 1 });
    expect(JSON.parse(String(out.read()))).toMatchObject({ message: 'hello', a: 1 });
  });

  it('guardStream: a write that throws or a destroyed target counts as closed, once', () => {
    const closed: Error[] = [];
    const target = new Writable({ write: (_c, _e, cb) => cb() });
    const guarded = guardStream(target, (err) => closed.push(err));
    target.destroy();
    guarded.write('a\n');
    guarded.write('b\n');
    expect(closed).toHaveLength(1);
  });
});
