/**
 * Starts the Asterisk sandbox once per test run when integration tests are selected.
 *
 * - Not root / not Debian: the sandbox cannot run; integration suites show as skipped, and the
 *   reason is printed — unless CI=true, where a missing sandbox fails the run.
 * - A sandbox that was already running (a developer's `npm run pbx:up`) is used and left running.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { acquireSandboxLock } from '../../testkit/lock';
import { PBX_LOCK_DIR, PBX_STATUS_FILE, ROOT } from './paths';

export default async function globalSetup(): Promise<void> {
  // This run's id for the resources it starts (testkit/pg.ts); the workers inherit it.
  process.env.CC_TEST_RUN_PID = String(process.pid);
  const wanted = process.argv.some((a) => a.includes('integration') || a.includes('e2e')) || !process.argv.some((a) => a.includes('test/unit'));
  fs.mkdirSync(path.dirname(PBX_STATUS_FILE), { recursive: true });
  if (!wanted || process.env.CC_SKIP_PBX === '1') {
    // Unit-only runs leave the sandbox and its status alone (another run may be using them).
    process.env.CC_PBX_STATUS = JSON.stringify({ available: false, reason: 'integration tests not selected' });
    return;
  }
  // One integration run at a time per sandbox: the PBX, its app names and the simulated lines are shared.
  await acquireSandboxLock(PBX_LOCK_DIR, {
    onWait: (owner) => process.stderr.write(`[integration] waiting for another sandbox user (pid ${owner}) to finish…\n`),
  });
  const status = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'status'], { encoding: 'utf8' });
  const wasRunning = status.status === 0;
  const up = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'up'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (up.status !== 0) {
    const reason = `${up.stdout}\n${up.stderr}`.trim().split('\n').slice(-15).join('\n');
    if (process.env.CI === 'true' || up.status !== 3) {
      throw new Error(`the Asterisk sandbox did not start (exit ${up.status}):\n${reason}`);
    }
    process.stderr.write(`\n[integration] Asterisk sandbox unavailable; integration tests are SKIPPED:\n${reason}\n`);
    process.env.CC_PBX_STATUS = JSON.stringify({ available: false, reason });
    return;
  }
  // Test workers inherit the environment; the file tells global-teardown whether to stop the sandbox.
  process.env.CC_PBX_STATUS = JSON.stringify({ available: true });
  fs.writeFileSync(PBX_STATUS_FILE, JSON.stringify({ available: true, startedByTests: !wasRunning, owner: process.pid }));
}
