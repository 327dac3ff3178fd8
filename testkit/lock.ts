/**
 * The sandbox lock: one user of the shared sandbox PBX at a time (its app name, the registrations of
 * 1001/2001 and the simulated lines are shared). The same protocol as the integration tests'
 * (test/integration/global-setup.ts): a directory `<sandbox>/test.lock` holding the owner's pid; a dead
 * owner's lock is taken over.
 *
 * A process started by the lock's owner (the demo run by a jest test that holds the lock) does not wait
 * for its own ancestor: it runs under the owner's lock and leaves it alone.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface SandboxLock {
  /** `owned`: we took it and release it; `inherited`: an ancestor holds it for us. */
  kind: 'owned' | 'inherited';
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parentOf(pid: number): number | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isFinite(ppid) && ppid > 0 ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Is `pid` this process or one of its ancestors? */
export function isSelfOrAncestor(pid: number): boolean {
  let p: number | undefined = process.pid;
  for (let i = 0; p !== undefined && i < 64; i++) {
    if (p === pid) return true;
    p = parentOf(p);
  }
  return false;
}

function readOwner(lockDir: string): number {
  try {
    return Number(fs.readFileSync(path.join(lockDir, 'pid'), 'utf8'));
  } catch {
    return NaN;
  }
}

/**
 * Takes the lock, waiting up to `timeoutMs` for another holder (calling `onWait` once with its pid).
 */
export async function acquireSandboxLock(lockDir: string, opts: { timeoutMs?: number; onWait?: (owner: number) => void } = {}): Promise<SandboxLock> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20 * 60 * 1000);
  let told = false;
  fs.mkdirSync(path.dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      return {
        kind: 'owned',
        release: () => {
          if (readOwner(lockDir) === process.pid) fs.rmSync(lockDir, { recursive: true, force: true });
        },
      };
    } catch {
      const owner = readOwner(lockDir);
      if (!Number.isNaN(owner) && isSelfOrAncestor(owner)) return { kind: 'inherited', release: () => undefined };
      if (!Number.isNaN(owner) && !alive(owner)) {
        fs.rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the sandbox is in use by pid ${owner} (${lockDir})`);
      if (!told) opts.onWait?.(owner);
      told = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
