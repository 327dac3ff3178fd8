import path from 'node:path';
import { CLI, ROOT, SANDBOX } from '../../testkit/sandbox';

export { CLI, ROOT };
export const PBX_STATUS_FILE = SANDBOX.statusFile;
export const PBX_LOCK_DIR = SANDBOX.lockDir;
export const PBX_SCRIPT = path.join(ROOT, 'scripts/pbx.sh');
