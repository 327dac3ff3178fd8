/**
 * `npm run demo` tells the story: the built demo (.tools-dist/demo/main.js, what `npm run demo` runs after the
 * build) against the sandbox PBX, with a short grace. It runs under this jest run's sandbox lock (the demo
 * sees that its ancestor holds it) and must exit 0 with the key lines of its timeline.
 *
 * The second case runs the same story against a second sandbox on other ports (its own directory, SIP,
 * ARI and RTP ports, phones) while the default one stays up: the demo starts that sandbox (copying the
 * first one's chroot) and stops it again.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SANDBOX } from '../../testkit/sandbox';
import { ARI, describePbx } from './harness';
import { ROOT } from './paths';

function runDemo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [path.join(ROOT, '.tools-dist/demo/main.js'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Asserts the story's timeline in the demo's output. */
function expectStory(code: number | null, out: string): void {
  if (code !== 0) throw new Error(`the demo exited ${code}:\n${out}`);
  const lines = out.split('\n');
  const order = [
    /2001\s+is on another call/,
    /1001\s+the agent dials 2001/,
    /1001 hears \(busy\) "The line is busy\. Press hash/,
    /1001\s+presses #/,
    /service\s+request \w+ stored .*WAITING/,
    /CRM\s+2001 is Anna Schmidt: stored with the request/,
    /2001\s+hangs up the other call/,
    /service\s+2001's line is free: a grace of 10s/,
    /page\s+heads-up at the top: "Callback soon: Anna Schmidt \(Acme GmbH\) · 2001" at \d\d:\d\d:\d\d/,
    /1001 sees the phone rings: "CB Anna Schmidt" <9000>/,
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
  const rang = /the phone rings: "CB Anna Schmidt" <9000>\s+\((\d+\.\d) s after the line freed\)/.exec(out);
  expect(Number(rang?.[1])).toBeGreaterThanOrEqual(9.5);
}

async function ariAnswers(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/ari/asterisk/info`, { headers: { authorization: `Basic ${Buffer.from(`${ARI.username}:${ARI.password}`).toString('base64')}` } });
    return r.ok;
  } catch {
    return false;
  }
}

describePbx('npm run demo (the scripted story)', () => {
  it('busy → # → name from the CRM → grace → heads-up on the page → "CB Anna Schmidt" → 1 → connected → COMPLETED, exit 0', async () => {
    const { code, out } = await runDemo(['--grace', '10s']);
    expectStory(code, out);
    expect(out).toContain(`on 127.0.0.1 (SIP ${SANDBOX.sipPort}/udp, ARI ${SANDBOX.httpPort})`);
  }, 160000);

  it('tells the same story against a second sandbox on other ports while the first one runs', async () => {
    const second = {
      CC_SANDBOX_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'cc-sandbox2-')),
      CC_SANDBOX_ROOTFS_FROM: path.join(SANDBOX.dir, 'rootfs'),
      CC_PBX_SIP_PORT: String(SANDBOX.sipPort + 30),
      CC_PBX_HTTP_PORT: String(SANDBOX.httpPort + 2),
      CC_PBX_RTP_START: '20000',
      CC_PBX_RTP_END: '20999',
    };
    try {
      const { code, out } = await runDemo(['--grace', '10s', '--quiet-pbx'], second);
      expectStory(code, out);
      expect(out).toContain(`on 127.0.0.1 (SIP ${SANDBOX.sipPort + 30}/udp, ARI ${SANDBOX.httpPort + 2})`);
      // The first sandbox was up all along, and the demo stopped the one it started.
      expect(await ariAnswers(ARI.url)).toBe(true);
      expect(await ariAnswers(`http://127.0.0.1:${SANDBOX.httpPort + 2}`)).toBe(false);
    } finally {
      spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'down'], { env: { ...process.env, ...second }, stdio: 'ignore' });
      // Never remove a chroot with something still mounted in it (its /proc).
      const mounted = fs.readFileSync('/proc/mounts', 'utf8').includes(second.CC_SANDBOX_DIR);
      if (!mounted) fs.rmSync(second.CC_SANDBOX_DIR, { recursive: true, force: true });
    }
  }, 200000);
});
