/**
 * The agent's lamp: a BLF key on the agent's phone shows the agent's pending callbacks.
 *
 * The app owns one ARI-controlled device state per agent, `Stasis:cc-<agent>` (PJSIP/1001 → cc-1001),
 * and the dialplan gives it a hint (`exten => *821001,hint,Stasis:cc-1001`), so a phone that subscribes
 * to that extension gets NOTIFYs as it changes:
 *
 *   NOT_INUSE  no pending callback                       lamp off
 *   INUSE      callbacks pending (waiting, grace, being connected)   lamp on
 *   RINGING    a callback is due or ringing the agent,    lamp blinks
 *              or its heads-up runs (policy.headsUp)
 *
 * Why RINGING for the heads-up: a BLF lamp follows the hint's dialog-info (RFC 4235) / PIDF state. Asterisk sends
 * RINGING as dialog state "early", and "early" is the one state that desk phones of every make render as a
 * blinking key (Yealink, Polycom/Poly, Snom, Grandstream, Cisco SPA/MPP, Fanvil; baresip and linphone show it as
 * ringing). ONHOLD is sent as "confirmed" (+ a hold rendering attribute most phones ignore): most phones show
 * it steady like INUSE, so it would not be distinct. The heads-up is the start of the due phase, so the lamp
 * blinks from it until the recall rings, and goes back to steady when a snooze or a busy line moves the due time.
 *
 * The pause ("hold my callbacks") has a lamp of its own, `Stasis:ccp-<agent>` (hint e.g. `*731001`): INUSE (on)
 * while the agent's callbacks are paused, NOT_INUSE otherwise.
 *
 * `lampState` is the pure rule; `Lamp` keeps the PBX in line with the store: after every decision for
 * an agent, after every (re)connection (it also clears lamps of agents with nothing pending, e.g. after
 * a cancel from the command line while the service was down) and every `refreshMs` (cancels by the
 * command line run in another process). A state is only sent when it changed; a failed update is
 * logged and retried at the next refresh.
 */
import type { CallbackState } from '../core/policy';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';

export type LampState = 'NOT_INUSE' | 'INUSE' | 'RINGING';

const RINGING: readonly CallbackState[] = ['DUE', 'RINGING_AGENT'];
const LIT: readonly CallbackState[] = ['WAITING', 'GRACE', 'CONNECTING'];

/** A pending request whose heads-up runs now (see core/policy headsUpActive): the lamp blinks. */
export const HEADS_UP = 'HEADS_UP' as const;
export type LampInput = CallbackState | typeof HEADS_UP;

export function lampState(states: readonly LampInput[]): LampState {
  if (states.some((s) => s === HEADS_UP || RINGING.includes(s))) return 'RINGING';
  if (states.some((s) => s !== HEADS_UP && LIT.includes(s))) return 'INUSE';
  return 'NOT_INUSE';
}

/**
 * The device state name of an agent's lamp: the device's resource without technology and context,
 * PJSIP/1001 → Stasis:cc-1001, Local/1001@from-internal → Stasis:cc-1001 (characters outside
 * [A-Za-z0-9._-] become _).
 */
export function lampDevice(agent: string): string {
  const resource = (agent.includes('/') ? agent.slice(agent.indexOf('/') + 1) : agent).split('@')[0];
  return `Stasis:cc-${resource.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

/** The device state of an agent's pause lamp: PJSIP/1001 → Stasis:ccp-1001 (not cc-: a resync clears those). */
export function pauseLampDevice(agent: string): string {
  return lampDevice(agent).replace('Stasis:cc-', 'Stasis:ccp-');
}

/** What the lamp needs from the PBX (ARI deviceStates). */
export interface LampPort {
  set(device: string, state: LampState): Promise<void>;
  /** The ARI-controlled device states that exist (to clear leftovers). */
  list(): Promise<{ name: string; state: string }[]>;
}

export interface LampOptions {
  port: () => LampPort | undefined;
  /** The states of the agent's non-terminal requests (HEADS_UP for a pending one whose heads-up runs). */
  statesOf: (agent: string) => LampInput[] | Promise<LampInput[]>;
  /** Agents whose callbacks are paused now (their pause lamp is on). */
  paused?: () => string[];
  /** Agents with non-terminal requests. */
  agents: () => string[] | Promise<string[]>;
  log: Logger;
  refreshMs?: number;
}

export class Lamp {
  /** device → last state the PBX accepted. */
  private readonly shown = new Map<string, LampState>();
  /** device → agent, for every lamp this process has set. */
  private readonly devices = new Map<string, string>();
  private readonly queue = new Map<string, Promise<void>>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: LampOptions) {}

  start(): void {
    const every = this.opts.refreshMs ?? 30_000;
    this.timer = setInterval(() => void this.refresh(false), every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Brings one agent's lamp in line with the store (sent only when it changed, unless forced). */
  update(agent: string, force = false): Promise<void> {
    const device = lampDevice(agent);
    this.devices.set(device, agent);
    const prev = this.queue.get(device) ?? Promise.resolve();
    const next = prev.then(() => {
      const states = this.opts.statesOf(agent);
      return Array.isArray(states) ? this.apply(device, lampState(states), force) : states.then((s) => this.apply(device, lampState(s), force));
    });
    this.queue.set(device, next);
    void next.then(() => {
      if (this.queue.get(device) === next) this.queue.delete(device);
    });
    return next;
  }

  /**
   * Every known agent's lamp; with `resync` (after a connection) all states are sent again and any
   * cc- lamp on the PBX without a pending callback is switched off.
   */
  async refresh(resync: boolean): Promise<void> {
    const listed = this.opts.agents();
    const known = Array.isArray(listed) ? listed : await listed;
    if (resync) this.shown.clear();
    const agents = new Set([...known, ...this.devices.values()]);
    const work = [...agents].map((a) => this.update(a, resync));
    const paused = new Set(this.opts.paused?.() ?? []);
    for (const a of new Set([...paused, ...this.pauseDevices.values()])) work.push(this.pause(a, paused.has(a), resync));
    if (resync) {
      const port = this.opts.port();
      try {
        const existing = port ? await port.list() : [];
        const wanted = new Set([...agents].map(lampDevice));
        for (const d of existing) {
          if (d.name.startsWith('Stasis:cc-') && !wanted.has(d.name) && d.state !== 'NOT_INUSE') {
            work.push(this.apply(d.name, 'NOT_INUSE', true));
          }
        }
      } catch (err) {
        emit(this.opts.log, 'warn', 'lamp.list_failed', 'could not list the lamps on the PBX', { error: (err as Error).message });
      }
    }
    await Promise.all(work);
  }

  /** device → agent, for every pause lamp this process has set. */
  private readonly pauseDevices = new Map<string, string>();

  /** The agent's pause lamp: on (INUSE) while paused, off otherwise. */
  pause(agent: string, paused: boolean, force = false): Promise<void> {
    const device = pauseLampDevice(agent);
    this.pauseDevices.set(device, agent);
    return this.apply(device, paused ? 'INUSE' : 'NOT_INUSE', force);
  }

  private async apply(device: string, state: LampState, force: boolean): Promise<void> {
    if (!force && this.shown.get(device) === state) return;
    const port = this.opts.port();
    if (!port) return; // not connected: the next connection re-syncs every lamp
    try {
      await port.set(device, state);
      this.shown.set(device, state);
      emit(this.opts.log, 'debug', 'lamp.set', 'lamp', { device, state });
    } catch (err) {
      this.shown.delete(device);
      emit(this.opts.log, 'warn', 'lamp.set_failed', 'could not set a lamp', { device, state, error: (err as Error).message });
    }
  }
}
