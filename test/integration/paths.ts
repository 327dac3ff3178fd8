import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const SANDBOX = process.env.CC_SANDBOX_DIR ?? path.join(ROOT, '.sandbox');
export const PBX_STATUS_FILE = path.join(SANDBOX, 'pbx-status.json');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const PBX_LOCK_DIR = path.join(SANDBOX, 'test.lock');
