/**
 * The service's log on stdout writes the lines of one turn of the event loop together (one write at the
 * turn's end, in order) instead of one synchronous write per line; lines pending at the process's exit
 * are written then. Performed with a real child process whose stdout is a pipe.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, guardStream } from '../../src/logging/log';

describe('coalesced log writes', () => {
  it('the lines of one turn reach the target in one write, in order, after the turn', async () => {
    const writes: string[] = [];
    const target = new Writable({ write: (c, _e, cb) => (writes.push(String(c)), cb()) });
    const log = createLogger({ format: 'json', stream: target, coalesce: true, onClosed: () => undefined });
    for (let i = 0; i < 50; i++) log.info('line', { n: i });
    expect(writes).toHaveLength(0); // nothing written while the turn runs
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    const lines = writes[0].trim().split('\n').map((l) => JSON.parse(l) as { n: number });
    expect(lines.map((l) => l.n)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    log.close();
  });

  it('flush() writes what is pending at once (the exit hook), and a closed target is still said once', () => {
    const closed: Error[] = [];
    const writes: string[] = [];
    const target = new Writable({ write: (c, _e, cb) => (writes.push(String(c)), cb()) });
    const guarded = guardStream(target, (err) => closed.push(err), { coalesce: true });
    guarded.write('a\n');
    guarded.write('b\n');
    guarded.flush();
    expect(writes).toEqual(['a\nb\n']);
    target.destroy();
    guarded.write('c\n');
    guarded.flush();
    guarded.write('d\n');
    guarded.flush();
    expect(closed).toHaveLength(1);
    expect(writes).toEqual(['a\nb\n']);
  });

  it('a process that logs and exits at once loses no line (stdout a pipe, the default logger)', () => {
    // the built module (npm run build), as cli.test.ts spawns the built binary
    const logModule = path.resolve(__dirname, '../../dist/logging/log.js');
    const script = `const { createLogger } = require(${JSON.stringify(logModule)}); const log = createLogger({ format: 'json' }); for (let i = 0; i < 300; i++) log.info('line', { n: i }); setImmediate(() => { log.info('last', { n: 300 }); process.exit(0); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const ns = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n);
    expect(ns).toEqual(Array.from({ length: 301 }, (_, i) => i));
  });
});
