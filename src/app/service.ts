/**
 * The service: wires configuration, store, engine, ARI connection and the call flows together.
 * Everything here is plumbing; decisions live in src/core.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Config, prospectDevice } from '../config/load';
import { AriConnection } from '../telephony/ari/connection';
import { localOwnerGone } from '../telephony/ari/lease';
import { AgiServer, type AgiSession } from '../telephony/agi/server';
import { PENDING_STATES, type CallbackRequest } from '../core/policy';
import { Engine } from '../engine';
import { emit } from '../logging/events';
import { OfferDriver } from '../flows/offer';
import { PauseFlow } from '../flows/pause';
import { PendingFlow } from '../flows/pending';
import { Presence } from '../flows/presence';
import { RecallFlow } from '../flows/recall';
import { ReturnFlow } from '../flows/return';
import { Logger } from '../logging/log';
import type { Store } from '../store/contract';
import { openStore } from '../store';
import { PgStore } from '../store/postgres';
import { PgLease } from '../coordination/lease';
import { Coordinator } from '../coordination/coordinator';
import { AgiCallPort, featureArgsFromAgi, offerArgsFromAgi } from '../telephony/agi/port';
import { AriDeviceStates, AriSwitchboard } from '../telephony/ari/port';
import { AriRouter } from '../telephony/ari/router';
import { StasisEntry } from '../telephony/ari/stasis';
import { notOfferedRow, outboxRowsFor } from '../webhook/payload';
import { WebhookSender } from '../webhook/sender';
import { CrmLookup } from '../webhook/lookup';
import { LOOP_SAMPLE_MS } from '../http/metrics';
import { Operations } from './operations';
import { ProspectZones, zoneRules } from '../zones/prospect-zones';
import type { OfferSink } from '../flows/offer';

/** The offer's settings, the same for the ARI and the FastAGI entry. */
function offerOptions(config: Config) {
  return {
    keyTimeoutMs: config.offer.keyTimeoutMs,
    closingTimeoutMs: config.offer.closingTimeoutMs,
    languages: config.offer.languages,
    defaultLanguage: config.offer.defaultLanguage,
    prompts: config.prompts,
    numbers: config.numbers,
    profiles: config.profiles,
  };
}

export interface ServiceOptions {
  config: Config;
  log: Logger;
  clock?: () => number;
  /** The store, opened by `Service.open` (PostgreSQL when store.url is set); default: the SQLite file. */
  store?: Store<CallbackRequest>;
}

export class Service {
  readonly engine: Engine;
  readonly ari: AriConnection;
  private readonly offer: OfferDriver;
  private readonly recall: RecallFlow;
  private readonly presence: Presence;
  private readonly pending: PendingFlow;
  private readonly pause: PauseFlow;
  private readonly returned: ReturnFlow;
  private readonly stasis: StasisEntry;
  private agi?: AgiServer;
  private readonly webhook?: WebhookSender;
  /** The CRM look-up of prospects' names (lookup.url); undefined without one. */
  readonly lookup?: CrmLookup;
  private pruneTimer?: NodeJS.Timeout;
  /** Health, readiness and metrics over HTTP, and the agents' lamps (src/app/operations.ts). */
  readonly ops: Operations;
  /** PostgreSQL store: which instance serves this PBX (lease with a fencing epoch); undefined with SQLite. */
  readonly coordinator?: Coordinator;
  /** How long the event loop was late (every call's events wait behind it); logged at stop. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });

  /** The offer's door to the engine: the promise and queue position first (zone from the number), then the opt-in. */
  private readonly offerSink: OfferSink;

  /** Opens the configured store (PostgreSQL when store.url is set: not connected yet, see start) and wires the service. */
  static async open(opts: ServiceOptions): Promise<Service> {
    const { config, log } = opts;
    // PostgreSQL is not connected yet: start() waits for the database (with back-off, readiness false) instead of failing.
    const store =
      opts.store ??
      (await openStore<CallbackRequest>(config, 'service', {
        onIdleError: (err) => log.warn('PostgreSQL connection dropped; reconnecting on next use', { error: err.message }),
        onSyncFailed: (err) =>
          emit(log, 'error', 'store.sync_failed', 'the callback store could not sync its WAL to disk; writes are refused until the service restarts', {
            file: config.store.path,
            code: (err as { code?: string }).code ?? 'unknown',
            error: err.message,
          }),
      }));
    return new Service({ ...opts, store });
  }

  private constructor(private readonly opts: ServiceOptions & { store: Store<CallbackRequest> }) {
    const { config, log } = opts;
    const zones = new ProspectZones(zoneRules(config));
    this.offerSink = {
      optIn: (input) => this.engine.optIn(input),
      prepare: async (input) => {
        const zone = await zones.resolve(input.prospect);
        const o = await this.engine.offerOutlook(input.agent, input.prospect, zone.timeZone, input.profile);
        if (o.promise === 'declined') await this.engine.optIns.noOffer(input.agent, input.prospect, o.timeZone, o.reason);
        return {
          context: { promise: o.promise, position: o.position },
          timeZone: zone.timeZone,
          zoneSource: zone.source,
          details: { zoneNote: zone.note, queue: o.queue, waiting: o.waiting, why: o.reason },
        };
      },
    };
    const store = opts.store;
    const instanceId = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    if (store instanceof PgStore) {
      // PostgreSQL is the coordinator: the lease of (pbx.id, ari.app) decides which instance serves this PBX.
      const lease = new PgLease(store, { pbx: config.pbx.id, app: config.ari.app, holder: instanceId, ttlMs: config.ari.leaseTtlMs });
      this.coordinator = new Coordinator({
        lease,
        fenced: store,
        log: log.child({ component: 'coordinator' }),
        onActive: () => this.serve(),
        onStandby: () => this.standDown(),
        // A stand-by that cannot reach the database tries again with the store's back-off.
        retryMaxMs: config.store.retryMaxMs,
      });
    }
    const coordinator = this.coordinator;
    if (config.lookup.url) {
      this.lookup = new CrmLookup({
        ...config.lookup,
        secret: config.lookup.secret || config.webhook.secret,
        log: log.child({ component: 'lookup' }),
        clock: opts.clock,
      });
    }
    this.engine = new Engine({
      profiles: config.profiles,
      contacts: this.lookup,
      store,
      policy: config.policy,
      log: log.child({ component: 'scheduler' }),
      clock: opts.clock,
      maxPendingPerAgent: config.offer.maxPendingPerAgent,
      prospectDevice: (number) => prospectDevice(config.prospects.internal, number),
      // CRM webhook: notifications are queued in the store with the transition that produced them.
      outbox: config.webhook.url ? outboxRowsFor : undefined,
      notOffered: config.webhook.url ? notOfferedRow : undefined,
      dialPolicy: config.dial,
      maxPendingTotal: config.dial.maxPendingTotal,
      canAct: coordinator ? () => coordinator.holds() : undefined,
      // The ports the engine dispatches to, made below (the engine calls them only once started).
      telephony: { execute: (request, action) => this.recall.execute(request, action) },
      notify: (request, action) => {
        emit(log.child({ requestId: request.id }), 'info', 'request.notified', 'notify', { webhookEvent: action.event, reason: action.reason });
        this.webhook?.kick();
      },
      outboxQueued: () => this.webhook?.kick(),
      watch: (device) => this.presence.watch(device),
    });
    if (config.webhook.url) {
      this.webhook = new WebhookSender(store, {
        ...config.webhook,
        log: log.child({ component: 'webhook' }),
        onAttempt: (result, seconds) => this.ops.metrics.webhookAttempt(result, seconds),
      });
    }
    this.ari = new AriConnection({
      url: config.ari.url,
      username: config.ari.username,
      password: config.ari.password,
      app: config.ari.app,
      reconnectMaxMs: config.ari.reconnectMaxMs,
      restOverWebSocket: config.ari.restOverWebSocket,
      batchRequests: config.ari.batchRequests,
      log: log.child({ component: 'ari' }),
      // With PostgreSQL the database's lease decides (this.coordinator); the PBX's global variable is not used.
      lease: coordinator
        ? undefined
        : {
            instanceId,
            ttlMs: config.ari.leaseTtlMs,
            isGone: localOwnerGone(os.hostname()),
          },
    });
    this.ops = new Operations({ config, log, engine: this.engine, ari: this.ari, store, leaseElsewhere: coordinator ? () => !coordinator.isActive : undefined });
    // ARI: every REST call through the lean client, events routed per channel.
    const rest = this.ari.rest;
    const router = new AriRouter(this.ari);
    const devices = new AriDeviceStates(rest, this.ari, config.ari.app, () => this.ari.connected);
    this.presence = new Presence(devices, log.child({ component: 'presence' }), (device, state) => this.engine.deviceState(device, state));
    this.recall = new RecallFlow(
      new AriSwitchboard(rest, router, config.ari.app),
      {
        observe: async (requestId, observation) => (await this.engine.observe(requestId, observation)) !== undefined,
        stateOf: async (requestId) => (await this.engine.store.get(requestId))?.request.state,
        conversationEnded: (requestId) => void this.engine.conversationEnded(requestId),
      },
      {
        outboundContext: config.recall.outboundContext,
        alertInfo: config.recall.alertInfo,
        menuTimeoutMs: config.policy.menuTimeoutMs,
        prompts: config.prompts,
        numbers: { country: config.policy.recallLabel.country, internationalPrefix: config.zones.internationalPrefix },
        // An agent's channel ending just before the ARI socket closes went with the PBX (a restart): not a snooze.
        hangupConfirmMs: 1500,
      },
      log.child({ component: 'recall' }),
    );
    this.offer = new OfferDriver(this.offerSink, offerOptions(config), log.child({ component: 'offer' }));
    this.pending = new PendingFlow(
      {
        pendingOf: (agent) => this.engine.store.list({ agent, states: PENDING_STATES }),
        cancel: async (requestId) => (await this.engine.cancel(requestId, 'agent'))?.request.state === 'CANCELLED',
      },
      {
        prompts: { count: config.pending.prompts.count, menu: config.pending.prompts.menu, cancelled: config.prompts.cancelled, goodbye: config.prompts.goodbye },
        menuTimeoutMs: config.policy.menuTimeoutMs,
        languages: config.offer.languages,
        defaultLanguage: config.offer.defaultLanguage,
      },
      log.child({ component: 'pending' }),
    );
    this.pause = new PauseFlow(
      this.engine.pauses,
      {
        prompts: { paused: config.prompts.paused, resumed: config.prompts.resumed, error: config.prompts.error },
        languages: config.offer.languages,
        defaultLanguage: config.offer.defaultLanguage,
      },
      log.child({ component: 'pause' }),
    );
    this.returned = new ReturnFlow(
      {
        pendingOf: (agent) => this.engine.store.list({ agent, states: PENDING_STATES }),
        takeOver: (requestId, port) => this.recall.takeOver(requestId, port, async () => (await this.engine.observe(requestId, { type: 'agentReturned' })) !== undefined),
      },
      { prompts: { noCallbacks: config.prompts.noCallbacks }, languages: config.offer.languages, defaultLanguage: config.offer.defaultLanguage },
      log.child({ component: 'return' }),
    );
    this.stasis = new StasisEntry(
      this.ari,
      rest,
      router,
      {
        calls: {
          offer: (port, args) => this.offer.run(port, args, 'ari'),
          pending: (port, args) => this.pending.run(port, args),
          pause: (port, args) => this.pause.run(port, args),
          return: (port, args) => this.returned.run(port, args),
        },
        originated: {
          recall: (channelId, args) => this.recall.onStasisStart(channelId, args),
          prospect: (channelId, args) => this.recall.onStasisStart(channelId, args),
        },
      },
      [this.recall],
      { app: config.ari.app, log },
    );
    this.ari.on('connected', (client: unknown) => {
      // Order matters after a restart: first clear what an earlier run left on the PBX, then learn
      // the devices' states; only then may due callbacks ring (an agent still on a leftover call
      // would otherwise look free and be rung twice at once).
      void (async () => {
        await this.stasis.reconcile();
        await this.presence.refresh();
        // Recalls an earlier run or instance left (their channels were just hung up) are recorded as interrupted
        // now — not a snooze, rung again after policy.recoveryDelay — instead of at their safety deadline.
        if (this.ari.client === client) await this.engine.reconcileRecalls((id) => this.recall.runs(id));
        if (this.ari.client === client) this.engine.setPbxUp(true);
      })();
    });
    this.ari.on('disconnected', () => {
      this.engine.setPbxUp(false);
      this.recall.pbxLost();
    });
  }

  start(): void {
    const { config } = this.opts;
    emit(this.opts.log, 'info', 'service.starting', 'considerate-callback starting', { store: this.opts.store.where, ari: config.ari.url, app: config.ari.app });
    // The probes first: while the database is not there yet, /readyz answers 503 and says why.
    void this.ops.start();
    // From the first connection on: start-up (loading modules, ARI's API description) is not call time.
    this.ari.once('connected', () => this.loopDelay.enable());
    void this.startWithStore();
  }

  /** The rest of the start, once the store is there (PostgreSQL: reachable and migrated; waited for). */
  private async startWithStore(): Promise<void> {
    if (!(await this.waitForStore())) return;
    // Retention: finished requests, their history and sent webhook events go after store.retention.
    // Every instance prunes (PostgreSQL: its own PBX's requests; deleting finished rows is idempotent).
    void this.prune();
    this.pruneTimer = setInterval(() => void this.prune(), 3_600_000);
    this.pruneTimer.unref();
    // The webhook outbox is drained by every instance (each row is claimed by one), for every PBX.
    this.webhook?.start();
    if (this.coordinator) {
      // Stand-by until the database's lease for this PBX is ours.
      this.coordinator.start().catch((err: Error) => this.opts.log.error('lease loop failed to start', { error: err.message }));
      return;
    }
    void this.serve();
  }

  private storeWait?: { timer?: NodeJS.Timeout; wake?: () => void };

  /**
   * PostgreSQL: connects and migrates, and while the database cannot be reached waits and tries again with back-off
   * (250 ms doubling up to store.retryMax). One `store.unavailable` line when the wait begins and one `store.available`
   * when it ends — not a line per attempt. False when the service was stopped meanwhile.
   */
  private async waitForStore(): Promise<boolean> {
    const store = this.opts.store;
    if (store.prepared) return !this.stopping;
    const { log, config } = this.opts;
    const max = config.store.retryMaxMs;
    const began = Date.now();
    let delay = Math.min(250, max);
    let unavailable = false;
    for (let attempts = 1; !this.stopping; attempts++) {
      try {
        await store.prepare();
        if (unavailable) emit(log, 'info', 'store.available', 'the database is reachable again; starting', { waitedMs: Date.now() - began, attempts });
        return !this.stopping;
      } catch (err) {
        if (!unavailable) {
          unavailable = true;
          emit(log, 'warn', 'store.unavailable', 'the database cannot be reached; waiting for it (readiness false)', { error: (err as Error).message, retryInMs: delay, maxMs: max });
        }
      }
      await new Promise<void>((resolve) => {
        const wait: { timer?: NodeJS.Timeout; wake?: () => void } = { wake: resolve };
        wait.timer = setTimeout(resolve, delay);
        this.storeWait = wait;
      });
      delay = Math.min(max, delay * 2);
    }
    return false;
  }

  /** Counts the starts of serving: a retry of an earlier one gives up when the lease was lost (or taken again) meanwhile. */
  private serving = 0;

  /**
   * Serve the PBX: the scheduler and the ARI app (at start, or when the PostgreSQL lease is taken). A scheduler that
   * cannot load the store is tried again with back-off (up to store.retryMax) for as long as this instance serves;
   * only then is ARI started (its reconciliation needs the scheduler).
   */
  private async serve(generation = ++this.serving, attempt = 0): Promise<void> {
    const current = () => generation === this.serving && !this.stopping && (!this.coordinator || this.coordinator.isActive);
    try {
      await this.engine.start();
    } catch (err) {
      if (!current()) return;
      const retryInMs = Math.min(this.opts.config.store.retryMaxMs, 250 * 2 ** Math.min(attempt, 10));
      this.opts.log.error('scheduler could not load the store; trying again', { error: (err as Error).message, retryInMs });
      setTimeout(() => void this.serve(generation, attempt + 1), retryInMs).unref();
      return;
    }
    if (current()) this.ari.start();
  }

  /**
   * The PostgreSQL lease was lost: stop acting for the PBX at once and stand by in this process (the coordinator
   * keeps trying to take the lease; when it does, `serve()` runs again with the new epoch). No exit: a database
   * outage past the lease TTL is waited out like one at start-up.
   */
  private async standDown(): Promise<void> {
    this.serving++;
    this.engine.stop();
    const let_go = this.recall.relinquish();
    if (let_go > 0) this.opts.log.warn('recalls let go with the lease; whoever serves next records them as interrupted', { recalls: let_go });
    await this.ari.stop();
  }

  private stopping = false;

  /**
   * The FastAGI entry (config agi.*): `AGI(agi://127.0.0.1:4573/offer,<prospect>)` runs the same offer as
   * Stasis(); the scripts `pending` and `pause` the agents' feature codes (*82, *73). Resolves with the bound port; a port that cannot be bound is a start-up error.
   */
  async startAgi(): Promise<number | undefined> {
    const { config, log } = this.opts;
    if (!config.agi.enabled) return undefined;
    const offer = async (session: AgiSession): Promise<void> => {
      await this.offer.run(new AgiCallPort(session), offerArgsFromAgi(session), 'agi');
    };
    // The agents' feature codes, the same flows as over Stasis (the lamps are set over ARI either way).
    const pending = async (session: AgiSession): Promise<void> => {
      await this.pending.run(new AgiCallPort(session), featureArgsFromAgi('pending', session));
    };
    const pause = async (session: AgiSession): Promise<void> => {
      await this.pause.run(new AgiCallPort(session), featureArgsFromAgi('pause', session));
    };
    this.agi = new AgiServer({
      host: config.agi.bind,
      port: config.agi.port,
      log: log.child({ component: 'agi' }),
      handlers: { offer, pending, pause },
      // The door: shared secret, peer allowlist, session cap and timeouts.
      secret: config.agiDoor.secret,
      allowedPeers: config.agiDoor.allowedPeers,
      maxSessions: config.agiDoor.maxSessions,
      idleTimeoutMs: config.agiDoor.idleTimeoutMs,
      limits: { envTimeoutMs: config.agiDoor.envTimeoutMs },
    });
    return this.agi.listen();
  }

  private async prune(): Promise<void> {
    try {
      const r = await this.opts.store.prune(Date.now() - this.opts.config.retentionMs);
      if (r.requests + r.events + r.outbox > 0) emit(this.opts.log, 'info', 'store.pruned', 'store pruned', r);
    } catch (err) {
      emit(this.opts.log, 'warn', 'store.prune_failed', 'store prune failed; trying again in an hour', { error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    // The event loop's lateness while the service served, read before shutting down: closing the store (SQLite's
    // last checkpoint of the WAL) and the connections may hold the loop for a while, and that is not a call's wait.
    this.loopDelay.disable();
    const stopStarted = performance.now();
    clearInterval(this.pruneTimer);
    this.stopping = true;
    clearTimeout(this.storeWait?.timer);
    this.storeWait?.wake?.();
    await this.ops.stop();
    this.webhook?.stop();
    this.lookup?.stop();
    await this.agi?.close();
    this.engine.stop();
    await this.coordinator?.stop();
    await this.ari.stop();
    await this.opts.store.close();
    // The histogram holds the time between two samples: lateness is what exceeds the sampling interval.
    const ms = (ns: number) => Math.max(0, Math.round((ns - LOOP_SAMPLE_MS * 1e6) / 1e4) / 100);
    const h = this.loopDelay;
    const eventLoopDelayMs = h.count > 0 ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } : undefined;
    // The ARI requests sent over the WebSocket and the socket writes they took (ws-rest.ts batches a turn's frames).
    const ariWebSocket = { ...this.ari.rest.ws.counts };
    const stopMs = Math.round(performance.now() - stopStarted);
    emit(this.opts.log, 'info', 'service.stopped', 'considerate-callback stopped', { eventLoopDelayMs, ariWebSocket, stopMs });
  }
}
