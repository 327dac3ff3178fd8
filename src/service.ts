/**
 * The service: wires configuration, store, engine, ARI connection and the call flows together.
 * Everything here is plumbing; decisions live in src/core.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { Channel, StasisStart } from 'ari-client';
import { Config, prospectDevice } from './config/load';
import { AriConnection, AriClient, errorText } from './asterisk/connection';
import { localOwnerGone } from './asterisk/lease';
import { OfferFlow } from './asterisk/offer-flow';
import { Presence } from './asterisk/presence';
import { RecallFlow } from './asterisk/recall-flow';
import { PendingFlow } from './asterisk/pending-flow';
import { AgiServer } from './agi/server';
import { AgiOffer } from './agi/offer';
import { PENDING_STATES } from './core/policy';
import { notOfferedRow, outboxRowsFor } from './webhook/payload';
import { WebhookSender } from './webhook/sender';
import { isTerminal, type CallbackRequest } from './core/policy';
import { Engine } from './engine';
import { Logger } from './log';
import { SqliteStore } from './store/sqlite';
import { ProspectZones } from './prospect-zones';
import type { OfferSink } from './asterisk/offer-flow';

/** The offer's settings, the same for the ARI and the FastAGI entry. */
function offerOptions(config: Config) {
  return {
    keyTimeoutMs: config.offer.keyTimeoutMs,
    closingTimeoutMs: config.offer.closingTimeoutMs,
    languages: config.offer.languages,
    defaultLanguage: config.offer.defaultLanguage,
    prompts: config.prompts,
    numbers: config.numbers,
  };
}

export interface ServiceOptions {
  config: Config;
  log: Logger;
  clock?: () => number;
}

export class Service {
  readonly engine: Engine;
  readonly ari: AriConnection;
  private readonly offer: OfferFlow;
  private readonly recall: RecallFlow;
  private readonly presence: Presence;
  private readonly pending: PendingFlow;
  private agi?: AgiServer;
  private readonly webhook?: WebhookSender;
  /** How long the event loop was late (every call's events wait behind it); logged at stop. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });

  /** The offer's door to the engine: the promise and queue position first (zone from the number), then the opt-in. */
  private readonly offerSink: OfferSink;

  constructor(private readonly opts: ServiceOptions) {
    const { config, log } = opts;
    const zones = new ProspectZones(config.zones);
    this.offerSink = {
      optIn: (input) => this.engine.optIn(input),
      prepare: async (input) => {
        const zone = await zones.resolve(input.prospect);
        const o = this.engine.offerOutlook(input.agent, input.prospect, zone.timeZone);
        if (o.promise === 'declined') this.engine.noOffer(input.agent, input.prospect, o.timeZone, o.reason);
        return {
          context: { promise: o.promise, position: o.position },
          timeZone: zone.timeZone,
          zoneSource: zone.source,
          details: { timeZone: zone.timeZone, zoneSource: zone.source, zoneNote: zone.note, queue: o.queue, why: o.reason },
        };
      },
    };
    const store = SqliteStore.open<CallbackRequest>(config.store.path);
    this.engine = new Engine({
      store,
      policy: config.policy,
      log: log.child({ component: 'scheduler' }),
      clock: opts.clock,
      maxPendingPerAgent: config.offer.maxPendingPerAgent,
      prospectDevice: (number) => prospectDevice(config.prospects.internal, number),
      // CRM webhook: notifications are queued in the store with the transition that produced them.
      outbox: config.webhook.url ? outboxRowsFor : undefined,
      notOffered: config.webhook.url ? notOfferedRow : undefined,
    });
    if (config.webhook.url) {
      this.webhook = new WebhookSender(store, { ...config.webhook, log: log.child({ component: 'webhook' }) });
    }
    this.engine.setNotifier((request, action) => {
      log.info('notify', { requestId: request.id, event: action.event, reason: action.reason });
      this.webhook?.kick();
    });
    this.engine.onOutbox = () => this.webhook?.kick();
    this.ari = new AriConnection({
      url: config.ari.url,
      username: config.ari.username,
      password: config.ari.password,
      app: config.ari.app,
      reconnectMaxMs: config.ari.reconnectMaxMs,
      log: log.child({ component: 'ari' }),
      lease: {
        instanceId: `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
        ttlMs: config.ari.leaseTtlMs,
        isGone: localOwnerGone(os.hostname()),
      },
    });
    this.presence = new Presence(this.ari, config.ari.app, log.child({ component: 'presence' }), (device, state) =>
      this.engine.deviceState(device, state),
    );
    this.engine.onWatch = (device) => this.presence.watch(device);
    this.recall = new RecallFlow(
      this.ari,
      (requestId, observation) => {
        if (this.engine.observe(requestId, observation)) return;
        // Nothing to decide: if the request ended meanwhile (cancelled from the CLI or *82 while the
        // agent's phone rang), the call that is still up has no purpose any more.
        const current = this.engine.store.get(requestId)?.request;
        if (current && isTerminal(current.state)) void this.recall.abandon(requestId, current.state);
      },
      {
        app: config.ari.app,
        outboundContext: config.recall.outboundContext,
        alertInfo: config.recall.alertInfo,
        menuTimeoutMs: config.policy.menuTimeoutMs,
        prompts: config.prompts,
      },
      log.child({ component: 'recall' }),
    );
    this.engine.setTelephony(this.recall);
    this.recall.onConversationEnded = (requestId) => this.engine.conversationEnded(requestId);
    this.offer = new OfferFlow(
      this.ari,
      this.offerSink,
      offerOptions(config),
      log.child({ component: 'offer' }),
    );
    this.pending = new PendingFlow(
      this.ari,
      {
        pendingOf: (agent) => this.engine.store.list({ agent, states: PENDING_STATES }),
        cancel: (requestId) => this.engine.cancel(requestId, 'agent')?.request.state === 'CANCELLED',
      },
      {
        prompts: { count: config.pending.prompts.count, menu: config.pending.prompts.menu, cancelled: config.prompts.cancelled, goodbye: config.prompts.goodbye },
        menuTimeoutMs: config.policy.menuTimeoutMs,
        languages: config.offer.languages,
        defaultLanguage: config.offer.defaultLanguage,
      },
      log.child({ component: 'pending' }),
    );
    this.ari.onAri('StasisStart', (event: StasisStart, channel: Channel) => this.route(event, channel));
    this.ari.on('connected', (client: AriClient) => {
      // Order matters after a restart: first clear what an earlier run left on the PBX, then learn
      // the devices' states; only then may due callbacks ring (an agent still on a leftover call
      // would otherwise look free and be rung twice at once).
      void (async () => {
        await this.reconcile(client);
        await this.presence.refresh();
        if (this.ari.client === client) this.engine.setPbxUp(true);
      })();
    });
    this.ari.on('disconnected', () => this.engine.setPbxUp(false));
  }

  private route(event: StasisStart, channel: Channel): void {
    const client = this.ari.client;
    if (!client) return;
    const args = ([] as string[]).concat(event.args ?? []);
    switch (args[0]) {
      case 'offer':
        this.offer.start(channel, args);
        return;
      case 'pending':
        this.pending.start(client, channel, args);
        return;
      case 'recall':
      case 'prospect':
        this.recall.onStasisStart(channel, args);
        return;
      default:
        this.refuse(client, channel, args);
    }
  }

  /**
   * After a (re)connection: channels and bridges of our app that this process does not know are left
   * over from a previous run (a crash, a restart). A recall channel is hung up (the policy recovers the
   * request when its safety wake-up comes); a caller stuck in the offer goes back to the dialplan,
   * which ends the call with a busy tone; an orphaned recall bridge is destroyed.
   */
  private async reconcile(client: AriClient): Promise<void> {
    const app = this.opts.config.ari.app;
    const log = this.opts.log.child({ component: 'reconcile' });
    try {
      const channels = await client.channels.list();
      const existing = new Set(channels.map((c) => c.id));
      this.offer.reconcileGone(existing);
      this.recall.reconcileGone(existing);
      for (const c of channels) {
        const dp = (c as unknown as { dialplan?: { app_name?: string; app_data?: string } }).dialplan;
        const inOurApp = dp?.app_name === 'Stasis' && (dp.app_data ?? '').split(',')[0] === app;
        // Recall channels are ours by their id, also while they still ring (not yet in the app).
        const recallChannel = c.id.startsWith('ccb-');
        if (!(inOurApp || recallChannel) || this.offer.owns(c.id) || this.recall.owns(c.id) || this.pending.owns(c.id)) continue;
        if (recallChannel) {
          log.warn('hanging up a recall channel left over from an earlier run', { channelId: c.id });
          await client.channels.hangup({ channelId: c.id }).catch(() => undefined);
        } else {
          log.warn('returning a call left in the app by an earlier run to the dialplan', { channelId: c.id, args: dp?.app_data });
          await client.channels.continueInDialplan({ channelId: c.id }).catch(() => undefined);
        }
      }
      for (const b of await client.bridges.list()) {
        if (!b.id.startsWith('ccb-') || this.recall.owns(b.id)) continue;
        log.info('destroying a recall bridge left over from an earlier run', { bridgeId: b.id });
        await client.bridges.destroy({ bridgeId: b.id }).catch(() => undefined);
      }
    } catch (err) {
      log.warn('reconciliation failed; leftovers stay until the next connection', { error: errorText(err) });
    }
  }

  private refuse(client: AriClient, channel: Channel, args: string[]): void {
    this.opts.log.warn('channel entered the app with unknown arguments; sending it back to the dialplan', {
      channelId: channel.id,
      args,
    });
    client.channels.continueInDialplan({ channelId: channel.id }).catch((err: unknown) => {
      this.opts.log.warn('could not return channel to the dialplan', { channelId: channel.id, error: errorText(err) });
    });
  }

  start(): void {
    const { config } = this.opts;
    this.opts.log.info('considerate-callback starting', { store: this.engine.store.file, ari: config.ari.url, app: config.ari.app });
    this.engine.start();
    this.ari.start();
    this.webhook?.start();
    // From the first connection on: start-up (loading modules, ARI's API description) is not call time.
    this.ari.once('connected', () => this.loopDelay.enable());
  }

  /**
   * The FastAGI entry (config agi.*): `AGI(agi://127.0.0.1:4573/offer,<prospect>)` runs the same offer as
   * Stasis(). Resolves with the bound port; a port that cannot be bound is a start-up error.
   */
  async startAgi(): Promise<number | undefined> {
    const { config, log } = this.opts;
    if (!config.agi.enabled) return undefined;
    const offer = new AgiOffer(
      this.offerSink,
      offerOptions(config),
    );
    this.agi = new AgiServer({ host: config.agi.bind, port: config.agi.port, log: log.child({ component: 'agi' }), handlers: { offer: offer.handle } });
    return this.agi.listen();
  }

  async stop(): Promise<void> {
    this.webhook?.stop();
    await this.agi?.close();
    this.engine.stop();
    await this.ari.stop();
    this.engine.store.close();
    this.loopDelay.disable();
    // The histogram holds the time between two 5 ms samples: lateness is what exceeds the 5 ms.
    const ms = (ns: number) => Math.max(0, Math.round((ns - 5e6) / 1e4) / 100);
    const h = this.loopDelay;
    const eventLoopDelayMs = h.count > 0 ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } : undefined;
    this.opts.log.info('considerate-callback stopped', { eventLoopDelayMs });
  }
}
