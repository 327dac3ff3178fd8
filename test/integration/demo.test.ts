/**
 * `npm run demo` tells the story: the built demo (.tools-dist/demo/main.js, what `npm run demo` runs after the
 * build) against the sandbox PBX, with a short grace. It runs under this jest run's sandbox lock (the demo
 * sees that its ancestor holds it) and must exit 0 with the key lines of its timeline.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describePbx } from './harness';
import { ROOT } from './paths';

function runDemo(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [path.join(ROOT, '.tools-dist/demo/main.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    const timer = setTimeout(() => proc.kill('SIGTERM'), 150000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describePbx('npm run demo (the scripted story)', () => {
  it('busy → # → grace → "Callback: 2001" → 1 → connected → COMPLETED, exit 0', async () => {
    const started = Date.now();
    const { code, out } = await runDemo(['--grace', '10s']);
    if (code !== 0) throw new Error(`the demo exited ${code}:\n${out}`);
    const lines = out.split('\n');
    const order = [
      /2001\s+is on another call/,
      /1001\s+the agent dials 2001/,
      /1001 hears \(busy\) "The line is busy\. Press hash/,
      /1001\s+presses #/,
      /service\s+request \w+ stored .*WAITING/,
      /2001\s+hangs up the other call/,
      /service\s+2001's line is free: a grace of 10s/,
      /1001 sees the phone rings: "Callback: 2001" <9000>/,
      /1001\s+presses 1/,
      /2001 sees the phone rings: "Agent 1001" <1001>/,
      /connected agent 1001 and prospect 2001/,
      /^\s+state\s+COMPLETED$/,
      /The story happened as told/,
    ];
    let at = -1;
    for (const re of order) {
      const i = lines.findIndex((l, n) => n > at && re.test(l));
      if (i < 0) throw new Error(`the timeline lacks ${re} (after line ${at + 1}):\n${out}`);
      at = i;
    }
    // Timestamped: every timeline line starts with the clock and the time since the start.
    expect(lines.filter((l) => /^\d\d:\d\d:\d\d \+\s*\d+\.\ds /.test(l)).length).toBeGreaterThanOrEqual(15);
    // The grace was respected: the ring came 10 s or more after the line freed.
    const rang = /the phone rings: "Callback: 2001" <9000>\s+\((\d+\.\d) s after the line freed\)/.exec(out);
    expect(Number(rang?.[1])).toBeGreaterThanOrEqual(9.5);
    expect(Date.now() - started).toBeLessThan(120000);
  }, 160000);
});
