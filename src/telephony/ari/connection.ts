/**
 * A supervised ARI connection.
 *
 * ari-client 2.2.0 reconnects its WebSocket on its own but gives up after about ten tries
 * (`WebSocketMaxRetries`), and an exception thrown by any event listener escapes into the WebSocket's
 * message handler and stops all further events. This wrapper therefore
 * - retries forever, with a capped back-off, building a fresh client when ari-client gives up;
 * - registers every listener through `on()`, which catches synchronous throws and rejected promises,
 *   logs them with the event type and carries on;
 * - pings the socket and forces a reconnect when pongs stop (a half-open TCP connection after the PBX
 *   vanished would otherwise look alive forever);
 * - emits `connected` on every (re)connection, so that subscriptions (device states) and in-flight
 *   calls can be reconciled, and `disconnected` when the socket goes away;
 * - bounds every step of (re)connecting (loading the API description, the lease calls, starting the app)
 *   by `stepTimeoutMs`: a server that accepts TCP and never answers, or answers HTTP and never upgrades
 *   the WebSocket, is abandoned with an `ari.timeout` log line and retried; no error (EMFILE included)
 *   ends the retry loop;
 * - turns on TCP keep-alive on the WebSocket's socket;
 * - logs an outage once per change, not per attempt: `ari.disconnected` when the socket goes away, or
 *   `ari.unavailable` at the first failed attempt when it was not connected (at start), a reminder
 *   (`ari.unavailable`, `reminder: true`) every `reminderMs` while it lasts, and one `ari.connected` (with
 *   `outageMs` and `attempts`) when it is back. Each attempt's failure is a debug line (`ari.connect_failed`,
 *   `ari.timeout`). Readiness is false meanwhile (`connected` is false).
 */
import { EventEmitter } from 'node:events';
import * as ari from 'ari-client';
import './quiet-swagger';
import { emit } from '../../logging/events';
import { LogThrottle } from '../../logging/log-throttle';
import type { Logger } from '../../logging/log';
import { Lease } from './lease';
import { AriRest } from './rest';
import { installPooledMasks } from './ws-mask';

export type AriClient = ari.Client;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Handler = (...args: any[]) => unknown;

export interface ConnectionOptions {
  url: string;
  username: string;
  password: string;
  app: string;
  log: Logger;
  /** Longest pause between two connection attempts. */
  reconnectMaxMs?: number;
  /** Ping interval; a missing pong within the same interval forces a reconnect. */
  pingIntervalMs?: number;
  /** For tests: replaces ari-client's connect(). */
  connect?: (url: string, user: string, pass: string) => Promise<AriClient>;
  /** One active instance per PBX and app (see lease.ts); omitted = no lease (tests with fakes). */
  lease?: { instanceId: string; ttlMs: number; isGone?: (owner: string) => boolean };
  /** Longest wait for each step of a (re)connection: connect, each lease call, starting the app. */
  stepTimeoutMs?: number;
  /** How often an outage that lasts is mentioned again (`ari.unavailable`, `reminder: true`); default 5 min. */
  reminderMs?: number;
  /** ARI REST over the app's WebSocket when Asterisk supports it (default true; false: HTTP only). */
  restOverWebSocket?: boolean;
  /** The requests of one turn of the event loop leave in one write on the WebSocket (default false; ari.batchRequests). */
  batchRequests?: boolean;
  /** Limit of each REST request, over HTTP or the WebSocket (default 5 s). */
  restTimeoutMs?: number;
  /** How long the probe of REST over the WebSocket waits for its answer (default 5 s). */
  restProbeMs?: number;
  /** Wall clock for the outage's durations (tests); default Date.now. */
  now?: () => number;
}

/** An outage of ARI: from the socket going away (or the first failed attempt at start) to the next connection. */
interface Outage {
  since: number;
  /** Failed attempts so far. */
  attempts: number;
  /** Whether its beginning was logged (`ari.disconnected` or `ari.unavailable`), and with which `auth`. */
  announced: boolean;
  auth?: boolean;
  lastReminder: number;
}

/** A step of connecting that did not finish in time. */
export class StepTimeout extends Error {
  constructor(
    readonly step: string,
    readonly timeoutMs: number,
  ) {
    super(`ARI ${step}: no answer within ${timeoutMs} ms`);
    this.name = 'StepTimeout';
  }
}

/** Resolves like `p`, or rejects with StepTimeout after `ms`; `late` receives a value that arrives after that. */
export function within<T>(p: Promise<T>, ms: number, step: string, late?: (value: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new StepTimeout(step, ms));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        if (done) late?.(v);
        else resolve(v);
        done = true;
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!done) reject(err instanceof Error ? err : new Error(errorText(err)));
        done = true;
      },
    );
  });
}

/**
 * Ends a client for good. ari-client's stop() only marks the next close as intended; a client abandoned
 * while its WebSocket was still connecting (or failing) would otherwise go on reconnecting in the
 * background for ever — and could take the Stasis app over from the live client. `_wsClosed` is pinned
 * to true, so its close and error handlers never reconnect, then the socket is torn down.
 */
export function retireClient(client: AriClient | undefined): void {
  if (!client) return;
  const c = client as unknown as { _wsClosed?: boolean; _ws?: { terminate?: () => void } };
  try {
    Object.defineProperty(c, '_wsClosed', { configurable: true, get: () => true, set: () => undefined });
  } catch {
    // not ari-client's Client (a test double)
  }
  try {
    if (c._ws?.terminate) c._ws.terminate();
    else client.stop();
  } catch {
    // already closed
  }
}

const stopQuietly = retireClient;

// The client's frames masked from a pool of random bytes, not a crypto call each (ws-mask.ts).
installPooledMasks();

/** Marks a WebSocket whose messages {@link leanEvents} already dispatches. */
const LEAN = Symbol('cc.leanEvents');

interface WsLike {
  listeners?(event: string): unknown[];
  removeAllListeners(event: string): unknown;
  on(event: string, fn: (data: unknown) => void): unknown;
  [LEAN]?: boolean;
}

/**
 * The app's events without ari-client's work per event. For every message ari-client finds the event's
 * swagger model (lodash over all models), builds a resource object for each channel, bridge or playback
 * in it (each with every REST operation attached as a closure) and checks its instance listeners: under
 * the sustained load that was 4 % of the service's CPU (bench profile, issue 23), for objects no handler
 * reads. Here the client's WebSocket messages are parsed once and emitted on the client as ari-client
 * emits them — `(event, channel)` — so the handlers registered with `on()` are unchanged; the second
 * argument is the event's `channel` as Asterisk sent it (what StasisStart's handler reads: id, language,
 * caller), not an ari-client Channel. A message that is not an ARI event (not JSON, no `type`) is logged
 * and dropped: through ari-client it threw inside the socket's listener.
 * A `RESTResponse` (the answer to a request sent on the socket, ws-rest.ts) goes to `onAnswer` instead.
 * Applied at every connection (ari-client's own reconnections open a new socket); a client without a
 * socket (a test double) is left as it is.
 */
export function leanEvents(client: AriClient, onBad: (why: string, sample: string) => void, onAnswer?: (msg: Record<string, unknown>) => void): boolean {
  const ws = (client as unknown as { _ws?: WsLike })._ws;
  if (!ws || typeof ws.listeners !== 'function' || ws[LEAN]) return false;
  const events = client as unknown as EventEmitter;
  ws.removeAllListeners('message');
  ws[LEAN] = true;
  ws.on('message', (data: unknown) => {
    const text = typeof data === 'string' ? data : String(data);
    let event: { type?: unknown; channel?: unknown } | null;
    try {
      event = JSON.parse(text) as { type?: unknown; channel?: unknown } | null;
    } catch {
      onBad('not JSON', text.slice(0, 120));
      return;
    }
    const type = event && typeof event === 'object' ? event.type : undefined;
    if (typeof type !== 'string' || type === '') {
      onBad('no event type', text.slice(0, 120));
      return;
    }
    // An answer to a request sent on the socket (ARI REST over WebSocket, ws-rest.ts), not an event.
    if (type === 'RESTResponse' && onAnswer) onAnswer(event as Record<string, unknown>);
    else events.emit(type, event, event!.channel);
  });
  return true;
}

interface Internals {
  _ws?: { terminate?: () => void; readyState?: number; _socket?: { setKeepAlive?: (on: boolean, ms: number) => void } };
}

export class AriConnection extends EventEmitter {
  private current?: AriClient;
  private readonly handlers: { event: string; wrapped: Handler }[] = [];
  /** `ari.stray_answer` lines: the first of each kind per window, then a count. */
  private readonly strays = new LogThrottle(() => this.opts.log);
  private stopped = false;
  private connecting = false;
  private attempt = 0;
  private retryTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private awaitingPong = false;
  private isUp = false;
  private standingBy = false;
  private leaseTimer?: NodeJS.Timeout;
  private readonly lease?: Lease;
  private outage?: Outage;
  /** The lean REST client for the hot path (rest.ts); independent of the WebSocket's state. */
  readonly rest: AriRest;

  constructor(private readonly opts: ConnectionOptions) {
    super();
    this.rest = new AriRest({ url: opts.url, username: opts.username, password: opts.password, timeoutMs: opts.restTimeoutMs, batchRequests: opts.batchRequests });
    this.rest.ws.onStall = (operation, timeoutMs) =>
      emit(opts.log, 'warn', 'ari.rest_transport', 'a request on the ARI WebSocket got no answer in time; ARI requests go over HTTP until the next connection', {
        transport: 'http',
        reason: `${operation}: no answer within ${timeoutMs} ms on the WebSocket`,
      });
    if (opts.lease) this.lease = new Lease({ ...opts.lease, app: opts.app });
  }

  /** True while another instance holds the app and this one waits to take over. */
  get standby(): boolean {
    return this.standingBy;
  }

  get client(): AriClient | undefined {
    return this.isUp ? this.current : undefined;
  }

  get connected(): boolean {
    return this.isUp;
  }

  /** Registers an ARI event listener that survives reconnections and cannot wedge the socket. */
  onAri(event: string, handler: Handler): void {
    const log = this.opts.log;
    const wrapped: Handler = (...args) => {
      try {
        const result = handler(...args);
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          (result as Promise<unknown>).catch((err: unknown) => {
            log.error('ARI event handler failed', { event, error: errorText(err) });
          });
        }
      } catch (err) {
        log.error('ARI event handler threw', { event, error: errorText(err) });
      }
    };
    this.handlers.push({ event, wrapped });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    if (this.current) (this.current as any).on(event, wrapped);
  }

  /** Starts connecting; resolves at once. Connection state is reported through events. */
  start(): void {
    this.stopped = false;
    void this.connectLoop();
  }

  /** Resolves with the client once connected (or rejects after `timeoutMs`). */
  waitConnected(timeoutMs: number): Promise<AriClient> {
    if (this.current && this.isUp) return Promise.resolve(this.current);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('connected', onUp);
        reject(new Error(`ARI not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const onUp = (client: AriClient) => {
        clearTimeout(timer);
        resolve(client);
      };
      this.once('connected', onUp);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.outage = undefined;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    clearInterval(this.leaseTimer);
    this.strays.flush();
    const client = this.current;
    // Hand the app over at once instead of letting a stand-by wait for the lease to go stale.
    if (client && this.lease && this.isUp) await this.lease.release(this.rest.globals).catch(() => undefined);
    this.current = undefined;
    this.setDown('stopped');
    this.rest.close();
    retireClient(client);
  }

  private setDown(reason: string): void {
    this.rest.ws.detach(reason);
    if (this.isUp) {
      this.isUp = false;
      // The outage begins (unless we stop on purpose); this line is its beginning, the failed attempts are not.
      if (!this.stopped) {
        const now = this.clock();
        this.outage = { since: now, attempts: 0, announced: true, lastReminder: now };
      }
      emit(this.opts.log, 'warn', 'ari.disconnected', 'ARI disconnected', { reason });
      this.emit('disconnected', reason);
    }
  }

  private clock(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * A (re)connection attempt failed. The first failure of an outage that no line announced yet (at start) logs
   * `ari.unavailable`, and so does a change between "refused the credentials" and "cannot reach"; while the outage
   * lasts, a reminder every `reminderMs`. Everything else is said at debug level by the caller.
   */
  private attemptFailed(error: string, auth: boolean): void {
    const now = this.clock();
    const o = (this.outage ??= { since: now, attempts: 0, announced: false, lastReminder: now });
    o.attempts += 1;
    const fields = { url: this.opts.url, auth, error, attempts: o.attempts, downMs: now - o.since };
    if (!o.announced || (o.auth !== undefined && o.auth !== auth) || (o.auth === undefined && auth)) {
      o.announced = true;
      o.auth = auth;
      o.lastReminder = now;
      const message = auth
        ? 'ARI refused the credentials (check ari.username / ari.password); waiting, trying again with back-off (readiness false)'
        : 'ARI cannot be reached; waiting, trying again with back-off (readiness false); logged again when it is back';
      emit(this.opts.log, 'warn', 'ari.unavailable', message, { ...fields, reminder: false });
      return;
    }
    o.auth = auth;
    if (now - o.lastReminder >= (this.opts.reminderMs ?? 300_000)) {
      o.lastReminder = now;
      emit(this.opts.log, 'warn', 'ari.unavailable', 'ARI still cannot be reached; still waiting (readiness false)', { ...fields, reminder: true });
    }
  }

  /** The client's events on the lean path (leanEvents); a message that is not an event is named in the log. */
  private lean(client: AriClient): void {
    leanEvents(
      client,
      (why, sample) => this.opts.log.warn('ARI sent a WebSocket message that is not an event; dropped', { why, sample }),
      (msg) => {
        const stray = this.rest.ws.answer(msg);
        // Throttled: after a stall an overloaded Asterisk answers every request that timed out, thousands at once.
        if (stray) this.strays.warn(stray.kind, 'ari.stray_answer', 'ARI answered no request in flight on the WebSocket; dropped', stray);
      },
    );
  }

  /**
   * REST over the app's WebSocket (ws-rest.ts) when Asterisk answers a probe on it; HTTP otherwise (and while the
   * probe is out). Off with `restOverWebSocket: false`. The socket is let go when it closes.
   */
  private async attachRest(client: AriClient): Promise<void> {
    if (this.opts.restOverWebSocket === false) return;
    const ws = (client as unknown as { _ws?: { readyState: number; send(d: string, cb?: (e?: Error) => void): void; once?(ev: string, fn: () => void): unknown } })._ws;
    if (!ws || typeof ws.send !== 'function') return;
    ws.once?.('close', () => this.rest.ws.detach('websocket closed', ws));
    const ok = await this.rest.ws.attach(ws, this.opts.restProbeMs ?? 5000);
    // The socket may have gone (or the client been replaced) while the probe was out.
    if (ok && (client !== this.current || !this.isUp || ws.readyState !== 1)) {
      this.rest.ws.detach('websocket replaced', ws);
      return;
    }
    emit(this.opts.log, 'debug', 'ari.rest_transport', ok ? 'ARI requests go over the WebSocket' : 'ARI requests go over HTTP', ok ? { transport: 'websocket' } : { transport: 'http', reason: 'no answer to a REST request on the WebSocket (Asterisk before 22.4?)' });
  }

  private setUp(client: AriClient, how: string): void {
    this.lean(client);
    this.attempt = 0;
    this.isUp = true;
    const o = this.outage;
    this.outage = undefined;
    const after = o ? { outageMs: this.clock() - o.since, attempts: o.attempts } : {};
    emit(this.opts.log, 'info', 'ari.connected', 'ARI connected', { url: this.opts.url, app: this.opts.app, how, ...after });
    void this.applyEventFilter();
    void this.attachRest(client);
    this.emit('connected', client);
  }

  /**
   * Asks Asterisk to send the app only the event types somebody listens to: the unwanted ones
   * (ChannelVarset, ChannelDialplan, … several per call) cost a WebSocket write on the PBX and parsing here
   * (ari-client: about 15 µs per event, as it builds resource objects), and queue before the ones that
   * matter, such as the agent's #. Re-applied on every connection: a restarted Asterisk forgets it. Older
   * Asterisk versions without the filter get everything.
   */
  private async applyEventFilter(): Promise<void> {
    const types = [...new Set(this.handlers.map((h) => h.event))].filter((t) => /^[A-Z][A-Za-z]+$/.test(t));
    // Asterisk's filter applies to the answers of REST over the WebSocket too: without RESTResponse among the
    // allowed types it drops them, and every request on the socket waits for its limit (seen on 22.10).
    if (types.length > 0 && this.opts.restOverWebSocket !== false) types.push('RESTResponse');
    if (types.length === 0) return;
    try {
      await within(this.rest.filterEvents(this.opts.app, types), this.opts.stepTimeoutMs ?? 10_000, 'event filter');
      this.opts.log.debug('event filter set', { app: this.opts.app, allowed: types });
    } catch (err) {
      this.opts.log.debug('event filter not available; receiving all events', { error: errorText(err) });
    }
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const max = this.opts.reconnectMaxMs ?? 10_000;
    const delay = Math.min(max, 250 * 2 ** Math.min(this.attempt, 10));
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connectLoop(), delay);
  }

  private async connectLoop(): Promise<void> {
    if (this.stopped || this.connecting) return;
    this.connecting = true;
    const connect = this.opts.connect ?? ari.connect;
    const limit = this.opts.stepTimeoutMs ?? 10_000;
    let client: AriClient | undefined;
    try {
      // A synchronous throw (EMFILE while opening a socket) becomes a rejection like any other.
      client = await within<AriClient>(Promise.resolve().then(() => connect(this.opts.url, this.opts.username, this.opts.password)), limit, 'connect', stopQuietly);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const c = client as any;
      for (const h of this.handlers) c.on(h.event, h.wrapped);
      c.on('WebSocketReconnecting', (err?: Error) => {
        this.setDown(`websocket closed${err ? `: ${err.message}` : ''}`);
      });
      const self = client;
      c.on('WebSocketConnected', () => {
        // ari-client reconnected on a new socket of its own: its messages take the lean path too (setUp may not run).
        if (self === this.current) this.lean(self);
        if (self === this.current && !this.isUp && !this.stopped) this.setUp(self, 'websocket reconnected');
      });
      c.on('WebSocketMaxRetries', () => {
        if (client !== this.current) return;
        this.opts.log.debug('ari-client gave up reconnecting; starting a fresh client');
        this.current = undefined;
        retireClient(client);
        this.setDown('websocket retries exhausted');
        this.attemptFailed('the WebSocket could not reconnect (ari-client gave up)', false);
        this.scheduleRetry();
      });
      c.on('pong', () => {
        this.awaitingPong = false;
      });
      // The lease goes through the lean REST client (its own per-request timeout); bounded here too, so
      // that a silent server is abandoned with the same ari.timeout line as any other step.
      if (this.lease && !(await within(this.lease.acquire(this.rest.globals), limit, 'lease acquire'))) {
        const holder = await within(this.lease.read(this.rest.globals), limit, 'lease read');
        if (!this.standingBy) {
          emit(this.opts.log, 'warn', 'ari.standby', 'another instance is active for this app on the PBX; standing by', {
            app: this.opts.app,
            activeInstance: holder?.owner,
          });
          this.emit('standby', holder?.owner);
        }
        this.standingBy = true;
        this.attempt = 0;
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.connectLoop(), Math.max(1000, Math.floor(this.opts.lease!.ttlMs / 3)));
        return;
      }
      if (this.standingBy) emit(this.opts.log, 'info', 'ari.takeover', 'taking over the app: the active instance is gone', { app: this.opts.app });
      this.standingBy = false;
      this.current = client;
      await within(client.start(this.opts.app), limit, 'start app');
      if (this.stopped) {
        retireClient(client);
        return;
      }
      // The socket may have dropped (and this client been given up) while start() was settling.
      if (client !== this.current) return;
      // ari-client's WebSocketConnected listener above may have reported the connection already.
      if (!this.isUp) this.setUp(client, 'connected');
      // TCP keep-alive under the pings: a dead peer is noticed by the kernel too.
      (client as unknown as Internals)._ws?._socket?.setKeepAlive?.(true, 15_000);
      this.startPing();
      this.startLeaseRenewal(client);
    } catch (err) {
      if (client && client === this.current) this.current = undefined;
      if (err instanceof StepTimeout) {
        // Abandon this attempt entirely: its client may still be waiting for an upgrade that never comes.
        stopQuietly(client);
        emit(this.opts.log, 'debug', 'ari.timeout', 'ARI did not answer in time; abandoning this attempt and retrying', {
          step: err.step,
          timeoutMs: err.timeoutMs,
          url: this.opts.url,
          attempt: this.attempt + 1,
        });
        this.attemptFailed(err.message, false);
        this.scheduleRetry();
        return;
      }
      const text = errorText(err);
      const auth = /401|unauthori[sz]ed/i.test(text);
      emit(this.opts.log, 'debug', 'ari.connect_failed', auth ? 'ARI refused the credentials; check ari.username / ari.password' : 'cannot reach ARI; retrying', {
        auth,
        url: this.opts.url,
        attempt: this.attempt + 1,
        error: text,
      });
      this.attemptFailed(text, auth);
      this.scheduleRetry();
    } finally {
      this.connecting = false;
    }
  }

  private startLeaseRenewal(client: AriClient): void {
    clearInterval(this.leaseTimer);
    const lease = this.lease;
    if (!lease) return;
    const limit = this.opts.stepTimeoutMs ?? 10_000;
    let renewing = false;
    this.leaseTimer = setInterval(() => {
      if (client !== this.current || !this.isUp || renewing) return;
      renewing = true;
      void (async () => {
        const other = await within(lease.heldByOther(this.rest.globals), limit, 'lease check');
        if (other) {
          // We were taken for dead (a long stall): the other instance owns the app now. Step back.
          this.opts.log.error('another instance took over the app; standing by', { activeInstance: other.owner });
          this.current = undefined;
          this.setDown('lease lost');
          retireClient(client);
          this.scheduleRetry();
          return;
        }
        await within(lease.write(this.rest.globals), limit, 'lease renewal');
      })()
        .catch((err: unknown) => emit(this.opts.log, 'warn', 'ari.lease_renewal_failed', 'ARI lease renewal failed', { error: errorText(err) }))
        .finally(() => {
          renewing = false;
        });
    }, Math.max(500, Math.floor(lease ? this.opts.lease!.ttlMs / 3 : 5000)));
    this.leaseTimer.unref();
  }

  private startPing(): void {
    clearInterval(this.pingTimer);
    const every = this.opts.pingIntervalMs ?? 10_000;
    this.awaitingPong = false;
    this.pingTimer = setInterval(() => {
      const client = this.current;
      if (!client || !this.isUp) return;
      if (this.awaitingPong) {
        this.opts.log.warn('ARI socket stopped answering pings; reconnecting');
        this.awaitingPong = false;
        const ws = (client as unknown as Internals)._ws;
        ws?.terminate?.();
        return;
      }
      this.awaitingPong = true;
      try {
        client.ping();
      } catch {
        // reported through the socket's close
      }
    }, every);
    this.pingTimer.unref();
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
