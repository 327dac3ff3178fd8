/**
 * The agents' pauses ("hold my callbacks", from the phone's feature code or the page): durable in the store, kept
 * here in step by pause/resume and re-read on every tick (another process may have changed them). Listeners hear
 * when a pause begins or ends (the pause lamp, the page); when one ends, or begins, the agent's due requests are
 * re-evaluated in opt-in order (`release`, the engine's queues).
 */
import { isPaused, type AgentPause } from '../core/policy';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import { iso, type RequestStore } from './options';

export interface PausesDeps {
  store: Pick<RequestStore, 'pauses' | 'setPause'>;
  log: Logger;
  clock: () => number;
  /** True once the engine stopped: a pause's end then does nothing. */
  stopped: () => boolean;
  /** Re-evaluates the agent's due requests (src/engine/queues.ts `kickDue`). */
  release: (agent: string) => Promise<void>;
}

export type PausedAgent = { agent: string; since: number; until: number | null; by: string };

export class Pauses {
  /** Agents who paused their callbacks: loaded from the store at start, kept in step by pause/resume. */
  private readonly pauses = new Map<string, AgentPause & { by: string }>();
  /** Told when an agent's pause begins or ends (the pause lamp, the page). */
  private readonly listeners: ((agent: string, pause: AgentPause | null) => void)[] = [];
  /** Agents last announced as paused (pauseChanged tells only of changes). */
  private readonly announcedPauses = new Set<string>();
  private watcher: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly deps: PausesDeps) {}

  /** At start: reads the pauses and arms the end of every pause that has one. */
  async start(): Promise<void> {
    await this.load();
    for (const [agent, p] of this.pauses) if (p.until !== null) this.armPauseEnd(agent, p.until);
  }

  /** Reads the pauses from the store (at start, and on every tick: another process may have changed them). */
  async load(): Promise<void> {
    try {
      const rows = await this.deps.store.pauses();
      this.pauses.clear();
      for (const r of rows) this.pauses.set(r.agent, { since: r.since, until: r.until, by: r.by });
      // Tell of every pause that began or ended (also one whose `until` passed) since the last look.
      for (const agent of new Set([...this.announcedPauses, ...this.pauses.keys()])) this.pauseChanged(agent, this.pauseOf(agent));
    } catch (err) {
      this.deps.log.error('could not read the agents\' pauses; keeping the last known ones', { error: (err as Error).message });
    }
  }

  /**
   * Re-reads the pauses every `ms` (besides every tick): a pause or resume written by another process (the command
   * line, another instance) then reaches the lamp, and the agent's due requests are re-evaluated at once.
   */
  watch(ms: number): void {
    this.unwatch();
    if (!(ms > 0)) return;
    this.watcher = setInterval(() => void this.reread(), ms);
    this.watcher.unref();
  }

  unwatch(): void {
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = undefined;
  }

  /** One look of {@link watch}: loads, and releases every agent whose pause began or ended meanwhile. */
  async reread(): Promise<void> {
    if (this.deps.stopped()) return;
    const before = new Set(this.announcedPauses);
    await this.load();
    const changed = [...new Set([...before, ...this.announcedPauses])].filter((a) => before.has(a) !== this.announcedPauses.has(a));
    for (const agent of changed) {
      if (this.deps.stopped()) return;
      await this.deps.release(agent).catch((err: unknown) => this.deps.log.error('could not re-evaluate the agent\'s requests after a pause changed', { agent, error: (err as Error).message }));
    }
  }

  onChange(listener: (agent: string, pause: AgentPause | null) => void): void {
    this.listeners.push(listener);
  }

  private pauseChanged(agent: string, pause: AgentPause | null, force = false): void {
    if (!force && (pause !== null) === this.announcedPauses.has(agent)) return;
    if (pause) this.announcedPauses.add(agent);
    else this.announcedPauses.delete(agent);
    for (const l of this.listeners) {
      try {
        l(agent, pause);
      } catch (err) {
        this.deps.log.error('pause listener failed', { agent, error: (err as Error).message });
      }
    }
  }

  /** The agent's pause in force now, or null (a pause whose `until` has passed has ended by itself). */
  pauseOf(agent: string): AgentPause | null {
    const p = this.pauses.get(agent);
    if (!p || !isPaused(p, this.deps.clock())) return null;
    return { since: p.since, until: p.until };
  }

  /** Every agent's pause in force now (for the page and `list`). */
  pausedAgents(): PausedAgent[] {
    const now = this.deps.clock();
    return [...this.pauses].filter(([, p]) => isPaused(p, now)).map(([agent, p]) => ({ agent, ...p }));
  }

  /**
   * Pauses the agent's callbacks (durable): nothing rings them until resumed or `until`; due requests wait in order.
   * `until` must lie ahead.
   */
  async pause(agent: string, opts: { until: number | null; by: string }): Promise<AgentPause> {
    const now = this.deps.clock();
    if (opts.until !== null && !(opts.until > now)) throw new Error('pause until: must be a time ahead');
    const pause = { since: now, until: opts.until };
    await this.deps.store.setPause(agent, { ...pause, by: opts.by });
    this.pauses.set(agent, { ...pause, by: opts.by });
    emit(this.deps.log, 'info', 'agent.paused', 'the agent paused their callbacks', { agent, until: iso(opts.until), by: opts.by });
    if (opts.until !== null) this.armPauseEnd(agent, opts.until);
    this.pauseChanged(agent, pause, true);
    await this.deps.release(agent);
    return pause;
  }

  /** A pause until a time ends by itself: then its lamp goes off and the agent's due requests ring (in order). */
  private armPauseEnd(agent: string, until: number): void {
    const t = setTimeout(
      () => {
        if (this.deps.stopped()) return;
        void this.load().then(() => this.deps.release(agent));
      },
      Math.max(0, Math.min(until - this.deps.clock(), 2_147_483_647)),
    );
    t.unref();
  }

  /** Resumes the agent's callbacks: due requests ring again, the earliest opt-in first. */
  async resume(agent: string, by: string): Promise<void> {
    await this.deps.store.setPause(agent, null);
    const had = this.pauses.delete(agent);
    emit(this.deps.log, 'info', 'agent.resumed', 'the agent resumed their callbacks', { agent, by, wasPaused: had });
    this.pauseChanged(agent, null);
    await this.deps.release(agent);
  }

  /** The feature code: pause when not paused, else resume. */
  async togglePause(agent: string, by: string): Promise<{ paused: boolean }> {
    if (this.pauseOf(agent)) {
      await this.resume(agent, by);
      return { paused: false };
    }
    await this.pause(agent, { until: null, by });
    return { paused: true };
  }
}
