/**
 * The scheduler-at-scale workload shared by the SQLite bench (bench/scheduler.ts) and the PostgreSQL bench
 * (bench/pg.ts): one policy, one request mix, one engine set-up, so that the two backends' figures are
 * comparable; and `measureStartInFreshProcess`, which runs bench/scale-start.ts in a child process of its
 * own, so that the start-up RSS is the engine's over an already-filled store — not the fill's garbage.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import winston from 'winston';
import { CallbackRequest, newRequest } from '../src/core/policy';
import { makePolicyConfig } from '../src/config/policy';
import { Engine, RequestStore } from '../src/engine';

export const AGENTS = 1000;
export const HOUR = 3_600_000;

export const policy = makePolicyConfig({
  callingHours: {
    timeZone: 'UTC',
    windows: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])),
    holidays: [],
  },
} as Parameters<typeof makePolicyConfig>[0]);

export const silent = winston.createLogger({ silent: true });

/** Internal prospects (`29…`) have a presence device, as the service's default dial plan gives them. */
export const prospectDevice = (p: string): string | undefined => (p.startsWith('29') ? `Custom:prospect${p}` : undefined);

/**
 * Request i of the fill, made by the real policy: timed mode waking at `target`, except every tenth, an
 * internal prospect in device mode (it waits for its line; its wakeAt is the expiry).
 */
export function benchRequest(i: number, target: number): CallbackRequest {
  const internal = i % 10 === 0;
  const prospect = internal ? `29${String(i).padStart(6, '0')}` : `+4930${String(i).padStart(8, '0')}`;
  // A timed request's first wake-up lies a fixed time after its creation (the policy's first probe): created that
  // long before `target`, it wakes at `target` (measured once from the policy rather than assumed).
  const now = target - firstWakeAfterCreation();
  return create(i, prospect, internal, now);
}

let firstWake: number | undefined;
function firstWakeAfterCreation(): number {
  if (firstWake === undefined) {
    const at = Date.UTC(2026, 10, 25, 9, 0, 0); // inside the calling hours
    firstWake = (create(1, '+493000000001', false, at).wakeAt as number) - at;
  }
  return firstWake;
}

function create(i: number, prospect: string, internal: boolean, now: number): CallbackRequest {
  return newRequest(
    {
      id: `bench-${i}`,
      agent: `PJSIP/a${i % AGENTS}`,
      agentCallerId: { name: `Agent ${i % AGENTS}`, number: String(1000 + (i % AGENTS)) },
      prospect,
      language: 'en',
      mode: internal ? 'device' : 'timed',
    },
    policy,
    now,
  ).request;
}

export function engineFor(store: RequestStore, clock: () => number, watch?: (device: string) => void): Engine {
  return new Engine({ store, policy, log: silent, clock, maxPendingPerAgent: 1_000_000, prospectDevice, watch });
}

/** What bench/scale-start.ts measures (MiB, ms). */
export interface StartFigures {
  backend: 'sqlite' | 'postgres';
  /** Always 'fresh process': the figures come from a process that did not fill the store. */
  measuredIn: 'fresh process';
  pending: number;
  rssBeforeStartMiB: number;
  rssAfterStartMiB: number;
  rssPeakMiB: number;
  rssAfterGcMiB: number;
  heapAfterGcMiB: number;
  startMs: number;
  devicesToWatchMs: number;
  devices: number;
  watched: number;
  pendingMs: number;
  nextWakeMs: number;
  deviceStateMs: number;
  deviceStateAgentMs: number;
}

/**
 * Runs `node --expose-gc bench/scale-start.js <backend> <where> [pbx]` and returns its figures; `where` is
 * the SQLite file or the PostgreSQL URL.
 */
export function measureStartInFreshProcess(backend: 'sqlite' | 'postgres', where: string, pbx?: string): StartFigures {
  const args = ['--expose-gc', path.join(__dirname, 'scale-start.js'), backend, where, ...(pbx ? [pbx] : [])];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`the start-up measurement (${backend}) failed (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as StartFigures;
}
