/**
 * The Stasis entry: a channel entering the app is handed to its flow by the first Stasis() argument,
 * on a port of its own; what a restart left on the PBX is cleaned up after every (re)connection.
 *
 * - Call flows (`offer`, `pending`) get an {@link AriCallPort} for the channel and run to their end; the
 *   port is released then (a channel nobody hung up is hung up: a call is never left in the app).
 * - Originated channels (`recall`, `prospect`) are announced to their owner, which already holds a port.
 * - Anything else goes back to the dialplan with a warning.
 */
import type { Channel, StasisStart } from 'ari-client';
import type { AriRest } from './rest';
import { emit } from '../../logging/events';
import type { Logger } from '../../logging/log';
import type { CallPort } from '../port';
import { AriCallPort } from './port';
import type { AriEventSource, AriRouter } from './router';

export interface StasisRoutes {
  /** Flows that run a whole call on a port; resolve when the call is done with. */
  calls: Record<string, (port: CallPort, args: readonly string[]) => Promise<unknown>>;
  /** Channels this app originated (their flow holds a port already). */
  originated: Record<string, (channelId: string, args: readonly string[]) => void>;
}

/** A flow that owns channels or bridges on the PBX beyond the call ports (the recall). */
export interface ChannelOwner {
  owns(id: string): boolean;
  reconcileGone(existing: ReadonlySet<string>): void;
}

export type StasisCalls = Pick<AriRest, 'answer' | 'play' | 'stopPlayback' | 'hangup' | 'continueInDialplan' | 'listChannels' | 'listBridges' | 'destroyBridge'>;

export class StasisEntry {
  /** Ports of the calls in a call flow right now. */
  private readonly active = new Map<string, AriCallPort>();

  constructor(
    events: AriEventSource,
    private readonly rest: StasisCalls,
    private readonly router: AriRouter,
    private readonly routes: StasisRoutes,
    private readonly owners: readonly ChannelOwner[],
    private readonly opts: { app: string; log: Logger },
  ) {
    events.onAri('StasisStart', (event: StasisStart, channel: Channel) => this.start(event, channel));
  }

  /** Calls currently in a call flow. */
  get calls(): number {
    return this.active.size;
  }

  start(event: Pick<StasisStart, 'args'>, channel: Pick<Channel, 'id' | 'language' | 'caller'>): void {
    const args = ([] as string[]).concat(event.args ?? []);
    const verb = args[0] ?? '';
    const flow = Object.hasOwn(this.routes.calls, verb) ? this.routes.calls[verb] : undefined;
    if (flow) {
      const port = new AriCallPort(this.rest, this.router, channel.id, { language: channel.language, caller: channel.caller });
      this.active.set(channel.id, port);
      void flow(port, args)
        .catch((err: unknown) => this.opts.log.error('call flow failed', { verb, channelId: channel.id, error: String(err) }))
        .finally(() => {
          if (this.active.get(channel.id) === port) this.active.delete(channel.id);
          port.release(true);
        });
      return;
    }
    const originated = Object.hasOwn(this.routes.originated, verb) ? this.routes.originated[verb] : undefined;
    if (originated) {
      originated(channel.id, args);
      return;
    }
    emit(this.opts.log.child({ channelId: channel.id }), 'warn', 'service.unknown_stasis_args', 'channel entered the app with unknown arguments; sending it back to the dialplan', { args });
    this.rest.continueInDialplan(channel.id).catch((err: unknown) => {
      this.opts.log.warn('could not return channel to the dialplan', { channelId: channel.id, error: String(err) });
    });
  }

  /**
   * After a (re)connection: calls whose channel vanished meanwhile end as hung up; channels and bridges
   * of our app that this process does not know are left over from a previous run (a crash, a restart).
   * A recall channel is hung up (the policy recovers the request when its safety wake-up comes); a caller
   * stuck in the offer goes back to the dialplan, which ends the call with a busy tone; an orphaned
   * recall bridge is destroyed.
   */
  async reconcile(): Promise<void> {
    const { app } = this.opts;
    const log = this.opts.log.child({ component: 'reconcile' });
    try {
      const channels = await this.rest.listChannels();
      const existing = new Set(channels.map((c) => c.id));
      for (const [id, port] of [...this.active]) if (!existing.has(id)) port.vanished();
      for (const owner of this.owners) owner.reconcileGone(existing);
      const owned = (id: string) => this.active.has(id) || this.owners.some((o) => o.owns(id));
      for (const c of channels) {
        const dp = c.dialplan;
        const inOurApp = dp?.app_name === 'Stasis' && (dp.app_data ?? '').split(',')[0] === app;
        // Recall channels are ours by their id, also while they still ring (not yet in the app).
        const recallChannel = c.id.startsWith('ccb-');
        if (!(inOurApp || recallChannel) || owned(c.id)) continue;
        if (recallChannel) {
          log.warn('hanging up a recall channel left over from an earlier run', { channelId: c.id });
          await this.rest.hangup(c.id).catch(() => undefined);
        } else {
          log.warn('returning a call left in the app by an earlier run to the dialplan', { channelId: c.id, args: dp?.app_data });
          await this.rest.continueInDialplan(c.id).catch(() => undefined);
        }
      }
      for (const b of await this.rest.listBridges()) {
        if (!b.id.startsWith('ccb-') || owned(b.id)) continue;
        log.info('destroying a recall bridge left over from an earlier run', { bridgeId: b.id });
        await this.rest.destroyBridge(b.id).catch(() => undefined);
      }
    } catch (err) {
      log.warn('reconciliation failed; leftovers stay until the next connection', { error: err instanceof Error ? err.message : String(err) });
    }
  }
}
