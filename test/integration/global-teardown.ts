import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stopPgIfStartedByTests } from '../../testkit/pg';
import { PBX_LOCK_DIR, PBX_STATUS_FILE, ROOT } from './paths';

function releaseLock(): void {
  try {
    if (Number(fs.readFileSync(path.join(PBX_LOCK_DIR, 'pid'), 'utf8')) === process.pid) fs.rmSync(PBX_LOCK_DIR, { recursive: true, force: true });
  } catch {
    // not ours or not there
  }
}

export default async function globalTeardown(): Promise<void> {
  try {
    stopIfOurs();
  } finally {
    releaseLock();
    // The PostgreSQL cluster the store tests started (testkit/pg.ts).
    stopPgIfStartedByTests();
  }
}

function stopIfOurs(): void {
  let status: { startedByTests?: boolean } = {};
  try {
    status = JSON.parse(fs.readFileSync(PBX_STATUS_FILE, 'utf8')) as typeof status;
  } catch {
    return;
  }
  if ((status as { owner?: number }).owner !== process.pid) return;
  if (status.startedByTests && process.env.CC_KEEP_PBX !== '1') {
    spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'down'], { stdio: 'inherit' });
  }
}
