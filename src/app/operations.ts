/**
 * Operations, wired beside the call flows rather than inside them: the HTTP listener (health,
 * readiness, metrics), the metrics fed from the engine's decisions and the ARI connection's events, and
 * the agents' lamps. The service creates one and starts/stops it; nothing here decides about calls.
 */
import type { MaintenanceStore } from '../store/contract';
import { CALLBACK_STATES, TERMINAL_STATES, type CallbackState } from '../core/policy';
import type { AriConnection } from '../telephony/ari/connection';
import type { Config } from '../config/load';
import type { Engine } from '../engine';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';
import { addHealthRoutes, packageVersion, type Readiness } from '../http/health';
import { ServiceMetrics } from '../http/metrics';
import { HttpServer } from '../http/server';
import { Lamp, type LampPort } from '../flows/lamp';
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

  constructor(private readonly deps: { config: Config; log: Logger; engine: Engine; ari: AriConnection; store: Pick<MaintenanceStore, 'writable'> }) {
    const { config, engine, ari } = deps;
    this.log = deps.log.child({ component: 'operations' });
    this.metrics = new ServiceMetrics({ pendingByState: () => engine.store.countByState(), version: packageVersion() });
    engine.onDecision((applied) => this.metrics.decision(applied));
    ari.on('connected', () => this.metrics.ariUp());
    ari.on('disconnected', (reason: string) => this.metrics.ariDown(reason));
    ari.on('standby', () => this.metrics.standby());

    if (config.http.enabled) {
      this.http = new HttpServer({ bind: config.http.bind, port: config.http.port, token: config.http.token, log: deps.log.child({ component: 'http' }) });
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
        statesOf: async (agent) => (await engine.store.list({ agent, states: OPEN_STATES })).map((r) => r.state as CallbackState),
        agents: async () => (await engine.store.pendingDependencies()).agents,
        log: deps.log.child({ component: 'lamp' }),
      });
      this.lamp = lamp;
      engine.onDecision(({ decision }) => void lamp.update(decision.request.agent));
      ari.on('connected', () => void lamp.refresh(true));
    }
  }

  private readiness(): Readiness {
    const { ari } = this.deps;
    return {
      ari: () => (ari.connected ? { ok: true } : { ok: false, detail: ari.standby ? 'standing by: another instance serves the app' : 'not connected to ARI' }),
      lease: () => (ari.connected ? { ok: true } : { ok: false, detail: ari.standby ? 'held by another instance' : 'not held (ARI not connected)' }),
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

  async stop(): Promise<void> {
    this.lamp?.stop();
    this.page?.close();
    await this.http?.close();
  }
}
