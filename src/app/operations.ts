/**
 * Operations, wired beside the call flows rather than inside them: the HTTP listener (health,
 * readiness, metrics), the metrics fed from the engine's decisions and the ARI connection's events, and
 * the agents' lamps. The service creates one and starts/stops it; nothing here decides about calls.
 */
import { randomBytes } from 'node:crypto';
import type { MaintenanceStore } from '../store/contract';
import { CALLBACK_STATES, TERMINAL_STATES, headsUpActive, type CallbackState } from '../core/policy';
import type { AriConnection } from '../telephony/ari/connection';
import type { Config } from '../config/load';
import type { Engine } from '../engine';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';
import { addHealthRoutes, packageVersion, type Readiness } from '../http/health';
import { ServiceMetrics } from '../http/metrics';
import { HttpServer } from '../http/server';
import { HEADS_UP, Lamp, type LampPort } from '../flows/lamp';
import { CallbacksPage, defaultStaticDir } from '../http/web';
import { addPhoneRoutes } from '../http/phones';

const OPEN_STATES = CALLBACK_STATES.filter((s) => !(TERMINAL_STATES as readonly string[]).includes(s));

export class Operations {
  readonly metrics: ServiceMetrics;
  /** The HTTP listener; other features add routes before `start()`. Undefined when http.enabled is false. */
  readonly http?: HttpServer;
  readonly lamp?: Lamp;
  /** The callbacks page (config web.enabled), on the HTTP listener. */
  readonly page?: CallbacksPage;
  private readonly log: Logger;
  /** The token made for this run when http.token is empty (printed once, with the page's URL). */
  private readonly generatedToken?: string;

  constructor(
    private readonly deps: {
      config: Config;
      log: Logger;
      engine: Engine;
      ari: AriConnection;
      store: Pick<MaintenanceStore, 'writable'>;
      /** With PostgreSQL: true while the database's lease is another instance's (src/coordination). */
      leaseElsewhere?: () => boolean;
      announce?: (text: string) => void;
    },
  ) {
    const { config, engine, ari } = deps;
    this.log = deps.log.child({ component: 'operations' });
    this.metrics = new ServiceMetrics({ pendingByState: () => engine.store.countByState(), version: packageVersion() });
    engine.onDecision((applied) => this.metrics.decision(applied));
    ari.on('connected', () => this.metrics.ariUp());
    ari.on('disconnected', (reason: string) => this.metrics.ariDown(reason));
    ari.on('standby', () => this.metrics.standby());

    if (config.http.enabled) {
      // Safe by default, as notebook servers do it: no configured token → a random one for this run, the
      // page's URL with it printed once (start()); the page keeps it in a cookie after that first visit.
      const configured = config.http.token;
      const token = config.http.auth === 'none' ? '' : configured || randomBytes(24).toString('base64url');
      if (config.http.auth === 'token' && !configured) this.generatedToken = token;
      this.http = new HttpServer({
        bind: config.http.bind,
        port: config.http.port,
        token,
        probesOpen: this.generatedToken !== undefined,
        allowedHosts: config.http.allowedHosts,
        allowedOrigins: config.http.allowedOrigins,
        log: deps.log.child({ component: 'http' }),
      });
      addHealthRoutes(this.http, this.readiness(), this.metrics);
      if (config.web.enabled) {
        this.page = new CallbacksPage({ engine, policy: config.policy, log: deps.log.child({ component: 'web' }) });
        this.page.register(this.http);
      }
      if (config.web.phones) addPhoneRoutes(this.http, { ariUrl: config.ari.url, log: deps.log.child({ component: 'phones' }), staticDir: defaultStaticDir() });
    }

    if (config.lamp.enabled) {
      const lamp = new Lamp({
        port: () => {
          if (!ari.connected) return undefined;
          const rest = ari.rest;
          const port: LampPort = {
            set: (device, state) => rest.setDeviceState(device, state),
            list: async () => (await rest.listDeviceStates()).map((d) => ({ name: d.name, state: d.state })),
          };
          return port;
        },
        statesOf: async (agent) => {
          const now = engine.now();
          return (await engine.store.list({ agent, states: OPEN_STATES })).map((r) => (headsUpActive(r, now) ? HEADS_UP : (r.state as CallbackState)));
        },
        agents: async () => (await engine.store.pendingDependencies()).agents,
        paused: () => engine.pauses.pausedAgents().map((p) => p.agent),
        log: deps.log.child({ component: 'lamp' }),
      });
      this.lamp = lamp;
      engine.onDecision(({ decision }) => void lamp.update(decision.request.agent));
      engine.pauses.onChange((agent, pause) => void lamp.pause(agent, pause !== null));
      ari.on('connected', () => void lamp.refresh(true));
    }
  }

  private readiness(): Readiness {
    const { ari } = this.deps;
    const standby = () => ari.standby || (this.deps.leaseElsewhere?.() ?? false);
    return {
      ari: () => (ari.connected ? { ok: true } : { ok: false, detail: standby() ? 'standing by: another instance serves the app' : 'not connected to ARI' }),
      lease: () => (ari.connected ? { ok: true } : { ok: false, detail: standby() ? 'held by another instance' : 'not held (ARI not connected)' }),
      standby,
      store: async () => {
        const w = await this.deps.store.writable();
        return w.ok ? { ok: true } : { ok: false, detail: w.reason };
      },
    };
  }

  /** Starts the listener (a bind failure is logged, the service runs on without it) and the lamp's refresh. */
  async start(): Promise<number | undefined> {
    this.lamp?.start();
    if (!this.http) return undefined;
    const { bind, port } = this.deps.config.http;
    try {
      const bound = await this.http.listen();
      emit(this.log, 'info', 'http.listening', 'HTTP listening', { bind, port: bound, paths: ['/healthz', '/readyz', '/metrics', ...(this.page ? ['/callbacks'] : []), ...(this.deps.config.web.phones ? ['/phones'] : [])] });
      if (this.generatedToken) this.announceToken(bound, this.generatedToken);
      return bound;
    } catch (err) {
      emit(this.log, 'warn', 'http.listen_failed', 'HTTP listener not started: health and metrics are unavailable (http.bind / http.port)', {
        bind,
        port,
        error: (err as Error).message,
      });
      return undefined;
    }
  }

  /**
   * Prints the page's address with the generated token once, on stderr (the JSON log on stdout masks
   * tokens; the log only says that it was printed). The demo and the compose logs show this line.
   */
  private announceToken(port: number, token: string): void {
    const { bind } = this.deps.config.http;
    const host = bind === '0.0.0.0' || bind === '::' ? 'localhost' : bind.includes(':') ? `[${bind}]` : bind;
    const base = `http://${host}:${port}`;
    const pages = [...(this.page ? ['/callbacks'] : []), ...(this.deps.config.web.phones ? ['/phones'] : [])];
    if (pages.length === 0) return;
    const urls = pages.map((p) => `${base}${p}?token=${token}`);
    const text =
      `\nConsiderate Callback: the HTTP listener needs a token (http.token is empty, so one was made for this run).\n` +
      `Open, once per browser (the page then keeps it in a cookie):\n${urls.map((u) => `    ${u}\n`).join('')}` +
      `Set http.token (CC_HTTP_TOKEN) to keep one across restarts.\n\n`;
    (this.deps.announce ?? ((t: string) => process.stderr.write(t)))(text);
    emit(this.log, 'info', 'http.token_generated', 'page URL with a generated token printed on stderr', { url: urls[0] });
  }

  async stop(): Promise<void> {
    this.lamp?.stop();
    this.page?.close();
    await this.http?.close();
  }
}
