/**
 * The built command line for tests that run it as a user would (`node dist/cli/main.js …`): `buildCliIfStale`
 * compiles it when a source under src/ is newer than the binary (as `npm test` does first), so a single test
 * file run with `npx jest` does not test yesterday's build.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');
export const CLI_BIN = path.join(ROOT, 'dist/cli/main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function buildCliIfStale(): void {
  const built = fs.existsSync(CLI_BIN) ? fs.statSync(CLI_BIN).mtimeMs : 0;
  if (newestMtime(path.join(ROOT, 'src')) <= built) return;
  const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
}
