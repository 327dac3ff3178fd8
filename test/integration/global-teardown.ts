import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PBX_STATUS_FILE, ROOT } from './paths';

export default async function globalTeardown(): Promise<void> {
  let status: { startedByTests?: boolean } = {};
  try {
    status = JSON.parse(fs.readFileSync(PBX_STATUS_FILE, 'utf8')) as typeof status;
  } catch {
    return;
  }
  if (status.startedByTests && process.env.CC_KEEP_PBX !== '1') {
    spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'down'], { stdio: 'inherit' });
  }
}
