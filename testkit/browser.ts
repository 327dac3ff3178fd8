/**
 * A real browser for the web tests: Debian's Chromium driven by playwright-core (never a downloaded
 * browser: no `npx playwright install`). `ensureChromium()` installs the Debian packages `chromium` and
 * `chromium-driver` when /usr/bin/chromium is missing (as root with apt, like scripts/pbx.sh installs its
 * host tools); `launchBrowser()` starts it headless with fake media devices and a fresh profile.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CC_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

/** Installs Debian's Chromium when it is missing; returns why it is unavailable, or undefined when it is there. */
export function ensureChromium(): string | undefined {
  if (fs.existsSync(CHROMIUM)) return undefined;
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) {
    return `${CHROMIUM} is missing and cannot be installed here (needs root and apt: apt-get install chromium chromium-driver)`;
  }
  process.stderr.write('Installing Debian\'s chromium and chromium-driver for the browser tests (apt-get)…\n');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium', 'chromium-driver'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium', 'chromium-driver'], { stdio: 'inherit', env });
  }
  return fs.existsSync(CHROMIUM) ? undefined : `apt-get install chromium chromium-driver failed (exit ${r.status})`;
}

/** Headless Chromium with fake media devices and a fresh --user-data-dir (removed by `close`). */
export async function launchBrowser(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 900, height: 900 },
    permissions: ['microphone'],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
