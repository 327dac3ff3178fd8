/**
 * The one way to open the configured store: PostgreSQL when store.url is set, else the SQLite file at
 * store.path. Who opens it decides how:
 *
 *  - 'service': this PBX's store (PostgreSQL: not connected yet — the service waits for the database with
 *    `prepare()`, which connects and migrates, instead of failing at start; SQLite: creates the file);
 *  - 'read' / 'write': the command line and its tools, every PBX's requests (PostgreSQL: a small pool, no
 *    migration; SQLite: a missing file is a StoreError rather than an empty new store, read-only unless
 *    'write').
 */
import fs from 'node:fs';
import path from 'node:path';
import { RequestRecord, Store, StoreError } from './contract';
import { PgStore } from './postgres';
import { SqliteOptions, SqliteStore } from './sqlite';

export interface StoreSettings {
  store: { path: string; url?: string };
  pbx: { id: string };
}

export async function openStore<R extends RequestRecord>(
  config: StoreSettings,
  use: 'service' | 'read' | 'write',
  opts: { onIdleError?: (err: Error) => void; onSyncFailed?: (err: StoreError) => void } = {},
): Promise<Store<R>> {
  const { url, path: file } = config.store;
  if (url) {
    return use === 'service'
      ? PgStore.lazy<R>(url, { pbx: config.pbx.id, onIdleError: opts.onIdleError, ...pgBenchSeams() })
      : PgStore.open<R>(url, { pbx: config.pbx.id, allPbx: true, poolSize: 2, migrate: false, sessions: 'cold' });
  }
  if (use === 'service') return SqliteStore.open<R>(file, { ...sqliteBenchSeams(), onSyncFailed: opts.onSyncFailed });
  if (file !== ':memory:' && !fs.existsSync(file)) {
    throw new StoreError(`callback store ${path.resolve(file)} does not exist (has the service run yet? see store.path)`);
  }
  return SqliteStore.open<R>(file, { readonly: use === 'read' });
}

/**
 * The bench's A/B seams of the service's PostgreSQL store (not configuration: the defaults are the ones to run):
 * `CC_PG_SESSIONS=cold` gives back node-postgres's defaults (sessions opened on demand, closed after 10 s idle, not
 * warmed; src/store/postgres.ts PgStoreOptions.sessions); `CC_PG_COMMIT=apart` sends a group's COMMIT in a message of
 * its own, never with its last opt-ins (PgStoreOptions.commit). Anything else set in them is refused.
 */
export function pgBenchSeams(env: NodeJS.ProcessEnv = process.env): { sessions?: 'warm' | 'cold'; commit?: 'with' | 'apart' } {
  const sessions = benchSeam(env, 'CC_PG_SESSIONS', ['warm', 'cold'] as const);
  const commit = benchSeam(env, 'CC_PG_COMMIT', ['with', 'apart'] as const);
  return { ...(sessions ? { sessions } : {}), ...(commit ? { commit } : {}) };
}

/** A bench seam's value: unset or empty is undefined (the default), one of `allowed`, or refused naming the variable. */
function benchSeam<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[]): T | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new StoreError(`${name}=${v}: expected one of ${allowed.join(', ')}`);
  return v as T;
}

/**
 * The bench's A/B seams (not configuration: the defaults are the ones to run): `CC_SQLITE_SYNC=thread` runs the
 * service's SQLite store at synchronous=NORMAL with the store's own fdatasync of the WAL in the thread pool
 * (src/store/wal-sync.ts; the default is `commit`, synchronous=FULL), `CC_SQLITE_CHECKPOINT=commit` checkpoints inside the COMMIT instead of in the worker. Anything else
 * set in them is refused, so that a typo never measures the default by mistake.
 */
export function sqliteBenchSeams(env: NodeJS.ProcessEnv = process.env): SqliteOptions {
  const sync = benchSeam(env, 'CC_SQLITE_SYNC', ['thread', 'commit'] as const);
  const checkpoint = benchSeam(env, 'CC_SQLITE_CHECKPOINT', ['background', 'commit'] as const);
  return { ...(sync ? { sync } : {}), ...(checkpoint ? { checkpoint } : {}) };
}
