/**
 * Presence: device states of the prospects' lines and the agents, over {@link DeviceStates}. Devices are
 * subscribed when first watched and read once; `refresh()` subscribes and reads every watched device
 * again after a (re)connection — Asterisk forgets subscriptions when it restarts, and states may have
 * changed meanwhile.
 */
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { DeviceStates } from '../telephony/port';

/** Asterisk device states that mean "the line is in use". */
const BUSY = new Set(['INUSE', 'BUSY', 'RINGING', 'RINGINUSE', 'ONHOLD']);

/**
 * Maps an Asterisk device state to busy/free. UNAVAILABLE (phone not registered) counts as busy, so an
 * agent whose phone is offline is not rung and a prospect's offline line is not mistaken for free.
 * UNKNOWN and INVALID tell us nothing.
 */
export function lineState(state: string): { busy: boolean } | undefined {
  if (state === 'NOT_INUSE') return { busy: false };
  if (BUSY.has(state) || state === 'UNAVAILABLE') return { busy: true };
  return undefined;
}

export type DeviceListener = (device: string, state: { busy: boolean } | undefined, raw: string) => void;

export class Presence {
  private readonly watched = new Set<string>();
  private readonly last = new Map<string, string>();

  constructor(
    private readonly devices: DeviceStates,
    private readonly log: Logger,
    private readonly listener: DeviceListener,
  ) {
    devices.onChange((device, state) => this.update(device, state));
  }

  /** Subscribes every watched device again and reads its current state. */
  async refresh(): Promise<void> {
    await Promise.all([...this.watched].map((device) => this.subscribe(device)));
  }

  watch(device: string): void {
    if (this.watched.has(device)) return;
    this.watched.add(device);
    if (this.devices.connected) void this.subscribe(device);
  }

  private update(device: string, raw: string): void {
    if (!this.watched.has(device)) return;
    if (this.last.get(device) === raw) return;
    this.last.set(device, raw);
    emit(this.log, 'debug', 'presence.device_state', 'device state', { device, state: raw });
    this.listener(device, lineState(raw), raw);
  }

  private async subscribe(device: string): Promise<void> {
    try {
      await this.devices.subscribe(device);
      this.update(device, await this.devices.get(device));
    } catch (err) {
      emit(this.log, 'warn', 'presence.watch_failed', 'cannot watch device state', { device, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
