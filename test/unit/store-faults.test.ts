/**
 * Storage faults: the service refuses to start with a clear line on a broken, half-written or
 * unwritable store, and a full disk fails the opt-in loudly (the agent is told no callback was
 * scheduled) instead of dropping a request the agent believes is confirmed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { type CallbackRequest } from '../../src/core/policy';
import { createLogger } from '../../src/logging/log';
import { SqliteStore } from '../../src/store/sqlite';
import { engineWorld } from '../../testkit/engine';

const ROOT = path.resolve(__dirname, '../..');

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cc-faults-'));
}

/** `considerate-callback run` via ts-node-free path: the built CLI if present, else skip the spawn checks. */
function run(storePath: string): { status: number | null; stderr: string } {
  const cli = path.join(ROOT, 'dist/cli/main.js');
  const r = spawnSync(process.execPath, [cli, 'run'], {
    encoding: 'utf8',
    timeout: 15000,
    env: { ...process.env, CC_ARI_PASSWORD: 'x', CC_ARI_URL: 'http://127.0.0.1:9', CC_STORE_PATH: storePath, CC_LOG_FORMAT: 'json' },
  });
  return { status: r.status, stderr: `${r.stderr}${r.stdout}` };
}

const built = fs.existsSync(path.join(ROOT, 'dist/cli/main.js'));
const itBuilt = built ? it : it.skip;

describe('storage faults at start', () => {
  itBuilt('a file that is not a database: exit 3 and a line naming the file', () => {
    const file = path.join(tmp(), 'callbacks.db');
    fs.writeFileSync(file, 'not a database '.repeat(500));
    const r = run(file);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`cannot open callback store ${file}: file is not a database`);
  });

  itBuilt('a half-written database: exit 3, not a crash', async () => {
    const file = path.join(tmp(), 'callbacks.db');
    const store = SqliteStore.open<CallbackRequest>(file);
    await store.close();
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, 1500));
    const r = run(file);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/cannot open callback store .*callbacks\.db/);
  });

  itBuilt('a data directory that cannot be written: exit 3 and the reason', () => {
    const blocker = path.join(tmp(), 'file');
    fs.writeFileSync(blocker, 'x');
    const r = run(path.join(blocker, 'data', 'callbacks.db'));
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/callback store directory .*file\/data is not writable/);
  });
});

describe('a full disk', () => {
  const dir = tmp();
  let mounted = false;
  beforeAll(async () => {
    if (process.getuid?.() !== 0) return;
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dir]).status === 0;
  });
  afterAll(async () => {
    if (mounted) spawnSync('umount', [dir]);
  });

  it('fails the opt-in with an error (SQLITE_FULL) instead of pretending it was stored', async () => {
    if (!mounted) {
      process.stderr.write('[store-faults] not root or no tmpfs: full-disk check skipped\n');
      return;
    }
    const store = SqliteStore.open<CallbackRequest>(path.join(dir, 'callbacks.db'));
    const log = createLogger({ format: 'json', stream: new PassThrough() });
    const { engine } = await engineWorld({ store, log, maxPendingPerAgent: 1_000_000, prospectDevice: () => undefined, at: 1_800_000_000_000, started: false, pbxUp: false });
    // Fill the disk.
    try {
      fs.writeFileSync(path.join(dir, 'ballast'), Buffer.alloc(600 * 1024));
    } catch {
      // ENOSPC: full, as wanted
    }
    let error: Error | undefined;
    let stored = 0;
    for (let i = 0; i < 5000 && !error; i++) {
      try {
        await engine.optIn({ agent: `PJSIP/${1000 + i}`, agentCallerId: { name: 'A', number: '1' }, prospect: `2${String(i).padStart(4, '0')}`, language: 'en', channelId: `c${i}` });
        stored++;
      } catch (err) {
        error = err as Error;
      }
    }
    expect(error?.message).toMatch(/full/i);
    // Everything that was reported stored is really there.
    expect((await store.list()).length).toBe(stored);
    await store.close();
  });
});
