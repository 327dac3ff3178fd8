/**
 * A real PostgreSQL for tests and the bench: scripts/pg.sh starts (and installs when missing) a cluster
 * of Debian's PostgreSQL in a directory of its own, listening on 127.0.0.1 only; each test gets a fresh
 * database in it. The cluster keeps running between test files; the jest global teardown stops it when
 * this run started it.
 *
 *   CC_PG_DIR   the cluster's directory (default <tmp>/cc-test-pg-<port>)
 *   CC_PG_PORT  its port (default 55432)
 *   CC_TEST_PG_URL  use this server instead (a database per test is created in it; needs CREATEDB)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ROOT } from './sandbox';

export const PG_PORT = Number(process.env.CC_PG_PORT || 55432);
export const PG_DIR = process.env.CC_PG_DIR || path.join(os.tmpdir(), `cc-test-pg-${PG_PORT}`);
export const PG_SCRIPT = path.join(ROOT, 'scripts/pg.sh');
/**
 * Written when a test run started the cluster, with the run's id (the jest main process's pid, which its
 * workers inherit as CC_TEST_RUN_PID): that run's global teardown stops it then, and no other run's — two
 * runs on one cluster (a unit run beside an integration run) never stop it under each other.
 */
export const PG_STARTED_MARK = `${PG_DIR}.started-by-tests`;

/** The id of this test run: set by the global setup in the jest main process, inherited by its workers. */
function runId(): string {
  return process.env.CC_TEST_RUN_PID || String(process.pid);
}

export function pgEnv(): NodeJS.ProcessEnv {
  return { ...process.env, CC_PG_DIR: PG_DIR, CC_PG_PORT: String(PG_PORT) };
}

/** Starts the cluster if it is not running; the server URL. Throws with pg.sh's own words on failure. */
export function ensurePg(): string {
  if (process.env.CC_TEST_PG_URL) return process.env.CC_TEST_PG_URL;
  const running = spawnSync('bash', [PG_SCRIPT, 'status'], { env: pgEnv() }).status === 0;
  if (running) return `postgres://postgres@127.0.0.1:${PG_PORT}/postgres`;
  const up = spawnSync('bash', [PG_SCRIPT, 'up'], { env: pgEnv(), encoding: 'utf8' });
  if (up.status !== 0) throw new Error(`PostgreSQL for the tests did not start (scripts/pg.sh up, exit ${up.status}):\n${up.stderr}`);
  if (!running) fs.writeFileSync(PG_STARTED_MARK, runId());
  return up.stdout.trim().split('\n').pop() as string;
}

/** Stops the cluster if a test run started it (global teardown). */
export function stopPgIfStartedByTests(): void {
  if (process.env.CC_TEST_PG_URL || !fs.existsSync(PG_STARTED_MARK)) return;
  const owner = fs.readFileSync(PG_STARTED_MARK, 'utf8').trim();
  if (owner !== String(process.pid) && isAlive(Number(owner))) return; // another run's cluster, still in use
  if (process.env.CC_KEEP_PG !== '1') spawnSync('bash', [PG_SCRIPT, 'down'], { env: pgEnv(), stdio: 'inherit' });
  fs.rmSync(PG_STARTED_MARK, { force: true });
}

let counter = 0;

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the test cluster; `drop()` removes it (connections to it are ended first). */
export async function freshDatabase(label = 'db'): Promise<TestDatabase> {
  const server = ensurePg();
  const name = `cc_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(server);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: server });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
