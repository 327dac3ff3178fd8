/**
 * Presence: device states over ARI. Devices are watched with `applications.subscribe`
 * (`deviceState:PJSIP/2001`), read once with `deviceStates.get`, and re-subscribed after every
 * (re)connection through `refresh()` — Asterisk forgets subscriptions when it restarts.
 */
import type { Logger } from '../log';
import { AriConnection, errorText } from './connection';

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
    private readonly conn: AriConnection,
    private readonly app: string,
    private readonly log: Logger,
    private readonly listener: DeviceListener,
  ) {
    conn.onAri('DeviceStateChanged', (event: { device_state: { name: string; state: string } }) => {
      this.update(event.device_state.name, event.device_state.state);
    });
  }

  /**
   * Subscribes every watched device again and reads its current state (after a (re)connection:
   * Asterisk forgets subscriptions when it restarts, and states may have changed meanwhile).
   */
  async refresh(): Promise<void> {
    await Promise.all([...this.watched].map((device) => this.subscribe(device)));
  }

  watch(device: string): void {
    if (this.watched.has(device)) return;
    this.watched.add(device);
    if (this.conn.connected) void this.subscribe(device);
  }

  state(device: string): string | undefined {
    return this.last.get(device);
  }

  private update(device: string, raw: string): void {
    if (!this.watched.has(device)) return;
    if (this.last.get(device) === raw) return;
    this.last.set(device, raw);
    this.log.debug('device state', { device, state: raw });
    this.listener(device, lineState(raw), raw);
  }

  private async subscribe(device: string): Promise<void> {
    const client = this.conn.client;
    if (!client) return;
    try {
      await client.applications.subscribe({ applicationName: this.app, eventSource: `deviceState:${device}` });
      const current = await client.deviceStates.get({ deviceName: device });
      this.update(device, current.state);
    } catch (err) {
      this.log.warn('cannot watch device state', { device, error: errorText(err) });
    }
  }
}
