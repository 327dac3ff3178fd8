/**
 * The lean ARI REST client: every REST call of the service goes through it (ari-client only keeps the
 * WebSocket and its events). Measured with bench/rest-micro.ts (docs/performance-log.md), it takes about
 * half of ari-client's time per call.
 *
 *
 * ari-client builds every request through its swagger layer (parameter validation, option cloning, a
 * fresh request object): about 0.5 ms per call on the 2-core reference machine against 0.17 ms for a
 * plain request over a kept-alive connection (measured with `GET /ari/asterisk/info`, 200 calls each).
 * The offer makes two such calls before the agent hears the prompt, so the difference is most of what
 * the app adds over a bare ari-client script (see `npm run bench`).
 *
 * Requests carry a timeout: a PBX that stops answering HTTP must not leave a call's queue waiting forever.
 * A request that meets a kept-alive connection Asterisk has just closed (its idle timeout, a restart) is
 * sent once more on a fresh connection; any other failure is the caller's to handle.
 */
import http from 'node:http';
import https from 'node:https';
import { AriRestError, ariAnswer } from './rest-error';
import { WsRest, type Query } from './ws-rest';

export { AriRestError };

export interface AriRestOptions {
  /** Base URL of Asterisk's HTTP server, as for ari-client (`http://127.0.0.1:8088`); `/ari` is appended. */
  url: string;
  username: string;
  password: string;
  /** Per-request timeout (default 5 s). */
  timeoutMs?: number;
  /** The requests of one turn of the event loop in one socket write on the WebSocket (ws-rest.ts; default false). */
  batchRequests?: boolean;
}

/**
 * Connections to Asterisk's HTTP server at most (kept alive). With REST over the WebSocket the hot path's
 * requests do not use them; over HTTP (an Asterisk before 22.4) 16 were all busy at 200 calls/s against the
 * simulated PBX (bench ceiling): 64 let such a burst through without queueing in the agent, and Asterisk's
 * HTTP server takes far more (`sessionlimit` in http.conf, default 100).
 */
export const MAX_SOCKETS = 64;

export class AriRest {
  private readonly base: URL;
  private readonly transport: typeof http | typeof https;
  private readonly agent: http.Agent;
  private readonly auth: string;
  private readonly timeoutMs: number;
  /**
   * REST over the app's WebSocket (ws-rest.ts): requests without a body go there while a socket is attached
   * (AriConnection attaches it once Asterisk answered a probe on it); the rest, and everything before, over HTTP.
   */
  readonly ws: WsRest;

  constructor(opts: AriRestOptions) {
    const base = new URL(opts.url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`ARI URL must be http(s): ${base.protocol}`);
    base.pathname = `${base.pathname.replace(/\/+$/, '')}/ari`;
    this.base = base;
    this.transport = base.protocol === 'https:' ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
    // Basic auth from the raw strings: any character in the password (`p@ss:w/rd+%`) is fine here.
    this.auth = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.ws = new WsRest({ timeoutMs: this.timeoutMs, batch: opts.batchRequests });
  }

  answer(channelId: string): Promise<void> {
    return this.call('POST', `/channels/${enc(channelId)}/answer`, {}).then(() => undefined);
  }

  play(channelId: string, params: { media: string; lang?: string; playbackId: string }): Promise<void> {
    return this.call('POST', `/channels/${enc(channelId)}/play/${enc(params.playbackId)}`, { media: params.media, lang: params.lang }).then(() => undefined);
  }

  stopPlayback(playbackId: string): Promise<void> {
    return this.call('DELETE', `/playbacks/${enc(playbackId)}`, {}).then(() => undefined);
  }

  hangup(channelId: string, reason?: string): Promise<void> {
    return this.call('DELETE', `/channels/${enc(channelId)}`, { reason }).then(() => undefined);
  }

  /** Originates a call into the app (`POST /channels`); channel variables go in the JSON body. */
  originate(p: {
    endpoint: string;
    channelId: string;
    app: string;
    appArgs: string;
    callerId: string;
    timeout: number;
    variables?: Record<string, string>;
  }): Promise<void> {
    const { variables, ...query } = p;
    return this.call('POST', '/channels', query, variables ? { variables } : undefined).then(() => undefined);
  }

  continueInDialplan(channelId: string): Promise<void> {
    return this.call('POST', `/channels/${enc(channelId)}/continue`, {}).then(() => undefined);
  }

  /** The channels on the PBX (id and, for channels in an application, the dialplan's app and its data). */
  listChannels(): Promise<{ id: string; dialplan?: { app_name?: string; app_data?: string } }[]> {
    return this.call('GET', '/channels', {}, undefined, { httpOnly: true }) as Promise<{ id: string; dialplan?: { app_name?: string; app_data?: string } }[]>;
  }

  createBridge(bridgeId: string, name: string): Promise<void> {
    return this.call('POST', `/bridges/${enc(bridgeId)}`, { type: 'mixing', name }).then(() => undefined);
  }

  addToBridge(bridgeId: string, channelId: string): Promise<void> {
    return this.call('POST', `/bridges/${enc(bridgeId)}/addChannel`, { channel: channelId }).then(() => undefined);
  }

  destroyBridge(bridgeId: string): Promise<void> {
    return this.call('DELETE', `/bridges/${enc(bridgeId)}`, {}).then(() => undefined);
  }

  listBridges(): Promise<{ id: string }[]> {
    return this.call('GET', '/bridges', {}, undefined, { httpOnly: true }) as Promise<{ id: string }[]>;
  }

  subscribe(app: string, eventSource: string): Promise<void> {
    // Asterisk answers with the application, every subscribed device listed: it grows with the agents; unread.
    return this.call('POST', `/applications/${enc(app)}/subscription`, { eventSource }, undefined, { discard: true }).then(() => undefined);
  }

  /** Asks Asterisk to send the app only these event types (Asterisk 16.29+/18.15+). */
  filterEvents(app: string, types: readonly string[]): Promise<void> {
    return this.call('PUT', `/applications/${enc(app)}/eventFilter`, {}, { allowed: types.map((type) => ({ type })) }).then(() => undefined);
  }

  deviceState(device: string): Promise<string> {
    return this.call('GET', `/deviceStates/${enc(device)}`, {}).then((r) => String((r as { state?: string } | undefined)?.state ?? ''));
  }

  /** Sets a custom device state (`Stasis:<name>`, the agents' lamps). */
  setDeviceState(device: string, state: string): Promise<void> {
    return this.call('PUT', `/deviceStates/${enc(device)}`, { deviceState: state }).then(() => undefined);
  }

  /** Every device state the PBX knows. */
  listDeviceStates(): Promise<{ name: string; state: string }[]> {
    return this.call('GET', '/deviceStates', {}, undefined, { httpOnly: true }) as Promise<{ name: string; state: string }[]>;
  }

  /** Global variables (the lease): the shape of ari-client's `asterisk.getGlobalVar`/`setGlobalVar`. */
  readonly globals = {
    getGlobalVar: (p: { variable: string }): Promise<{ value: string }> =>
      this.call('GET', '/asterisk/variable', { variable: p.variable }).then((r) => ({ value: String((r as { value?: string } | undefined)?.value ?? '') })),
    setGlobalVar: (p: { variable: string; value: string }): Promise<void> =>
      this.call('POST', '/asterisk/variable', { variable: p.variable, value: p.value }).then(() => undefined),
  };

  /** Closes idle kept-alive sockets (on shutdown). */
  close(): void {
    this.ws.detach('closed');
    this.agent.destroy();
  }

  /**
   * One request; resolves with the parsed JSON body (or undefined for 204), rejects with AriRestError. Without a
   * body it goes over the WebSocket when one is attached (not `httpOnly`: the lists, whose answers grow with the
   * PBX); with a body always over HTTP (Asterisk 22.10 left a `PUT eventFilter` with a `message_body` unanswered on
   * the WebSocket, and every request after it on that socket too). `discard`: a successful answer's body is not
   * parsed (resolves undefined).
   */
  call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, query: Query, body?: unknown, how: { httpOnly?: boolean; discard?: boolean } = {}): Promise<unknown> {
    if (body === undefined && !how.httpOnly && this.ws.ready) return this.ws.request(method, path.slice(1), query, `${method} ${path}`, how.discard);
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) search.set(k, String(v));
    const qs = search.toString();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    return this.send(method, `${this.base.pathname}${path}${qs ? `?${qs}` : ''}`, `${method} ${path}`, true, payload, how.discard);
  }

  private send(method: string, fullPath: string, operation: string, mayRetry: boolean, payload?: Buffer, discard?: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname,
          port: this.base.port,
          method,
          path: fullPath,
          headers: payload
            ? { authorization: this.auth, 'content-type': 'application/json', 'content-length': payload.length }
            : { authorization: this.auth, 'content-length': 0 },
          agent: this.agent,
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new AriRestError(0, err.message, operation)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve(ariAnswer(operation, res.statusCode ?? 0, text, text || res.statusMessage || '', discard));
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive connection that Asterisk closed (idle timeout, restart) just as we reused it: the
        // request never reached it, so send it once more on a fresh connection.
        if (mayRetry && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          resolve(this.send(method, fullPath, operation, false, payload, discard));
          return;
        }
        reject(new AriRestError(0, `${operation}: ${err.message}`, operation));
      });
      req.end(payload);
    });
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
