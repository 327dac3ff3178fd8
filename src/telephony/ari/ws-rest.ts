/**
 * ARI REST over the app's own WebSocket (Asterisk 20.14+ / 21.9+ / 22.4+, docs.asterisk.org "ARI REST over
 * WebSocket"): a request is a `RESTRequest` message on the socket that already carries the events, its answer a
 * `RESTResponse` message with the same `request_id`. Per request this saves the HTTP client's work on both
 * sides (a request line and headers built and parsed, the agent's socket bookkeeping, the response parser):
 * under the sustained load the five to eight requests of an offered call were the largest share of the app's
 * CPU (docs/performance-log.md, issue 23).
 *
 * Used by {@link AriRest} for requests without a body once the socket is attached and a probe
 * (`GET asterisk/ping`) was answered on it; everything else, and every request while no socket is attached,
 * goes over HTTP as before. Every request keeps its limit: no answer within `timeoutMs` rejects with an
 * {@link AriRestError} (status 0) naming the operation; so does the socket closing before the answer, an answer
 * that is not a `RESTResponse` of the expected shape, or one whose body exceeds `maxAnswerBytes`. A request that
 * timed out or lost its socket is not sent again (it may have been carried out), as over HTTP; after a request
 * without an answer in time the socket is no longer used for requests (`onStall`) until the next connection.
 */
import { AriRestError, ariAnswer } from './rest-error';

/** What this needs of the WebSocket (ws's WebSocket). */
export interface RestSocket {
  readonly readyState: number;
  send(data: string, cb?: (err?: Error) => void): void;
  /** ws's TCP socket (ws 6 and 8 keep it here): corked for the rest of the turn, see {@link WsRest} `batch`. */
  readonly _socket?: Corkable | null;
}

/** What batching needs of the TCP socket under the WebSocket. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/** ws's readyState of an open socket. */
const OPEN = 1;

export interface WsRestOptions {
  /** Per-request limit (the HTTP client's, default 5 s). */
  timeoutMs?: number;
  /** Longest answer body accepted (default 1 MiB); a longer one rejects its request. */
  maxAnswerBytes?: number;
  /**
   * A request on the attached socket got no answer in time: the socket is no longer used for new requests (they go
   * over HTTP until the next connection attaches a socket again); the ones already waiting keep their own limits.
   */
  onStall?: (operation: string, timeoutMs: number) => void;
  /**
   * Requests sent in the same turn of the event loop leave in one write (default false: one write each): the socket
   * is corked at the turn's first request and uncorked when the turn ends (`setImmediate`).
   */
  batch?: boolean;
}

interface Pending {
  operation: string;
  /** A successful answer's body is not read (resolves undefined). */
  discard?: boolean;
  resolve: (body: unknown) => void;
  reject: (err: AriRestError) => void;
  /** performance.now() after which it fails (`no answer within limitMs`). */
  deadline: number;
  limitMs: number;
  /** The socket it went out on, when its going unanswered stops the socket's use (not the probe's). */
  stallOf?: RestSocket;
}

export type Query = Record<string, string | number | boolean | undefined>;

export class WsRest {
  private socket?: RestSocket;
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  /**
   * One timer for the requests' limits, set for the earliest deadline in flight (not one per request: a Timeout and its
   * closure for each of the eight requests of an offered call, bench/cpu-call.ts --gc). Kept while idle but not holding
   * the process (unref), so the next request reuses it.
   */
  private limitTimer?: NodeJS.Timeout;
  private limitAt = Infinity;
  private readonly timeoutMs: number;
  private readonly maxAnswerBytes: number;
  private readonly batch: boolean;
  /** The TCP socket corked for this turn, if any. */
  private held?: Corkable;
  /** Frames sent and writes they went out in (the turns that sent any), for the bench and the tests. */
  readonly counts = { frames: 0, writes: 0 };
  /** Set after construction by the owner (AriConnection) when not given. */
  onStall?: (operation: string, timeoutMs: number) => void;

  constructor(opts: WsRestOptions = {}) {
    this.onStall = opts.onStall;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxAnswerBytes = opts.maxAnswerBytes ?? 1024 * 1024;
    this.batch = opts.batch ?? false;
  }

  /** Corks the socket's TCP socket until the end of this turn (once per turn), so this turn's frames leave together. */
  private hold(socket: RestSocket): void {
    this.counts.frames++;
    const raw = this.batch ? socket._socket : undefined;
    if (!raw || typeof raw.cork !== 'function') {
      this.counts.writes++;
      return;
    }
    if (this.held === raw) return;
    this.counts.writes++;
    raw.cork();
    this.held = raw;
    const release = (): void => {
      if (this.held === raw) this.held = undefined;
      raw.uncork();
    };
    setImmediate(release);
  }

  /** True when requests go over the socket. */
  get ready(): boolean {
    return this.socket !== undefined && this.socket.readyState === OPEN;
  }

  /** Requests in flight (tests, metrics). */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Tries the socket: sends `GET asterisk/ping` on it and, when the answer comes within `probeMs`, sends the
   * following requests on it. Resolves with whether it did. An Asterisk without REST over WebSocket ignores the
   * request (or answers with an error): then everything stays on HTTP.
   */
  async attach(socket: RestSocket, probeMs: number): Promise<boolean> {
    this.detach('a new WebSocket');
    try {
      await this.sendOn(socket, 'GET', 'asterisk/ping', {}, 'GET /asterisk/ping (probe)', probeMs);
    } catch {
      return false;
    }
    if (socket.readyState !== OPEN) return false;
    this.socket = socket;
    return true;
  }

  /** Stops using the socket; requests still waiting for their answer on it fail (their socket is gone). */
  detach(why: string, socket?: RestSocket): void {
    if (socket && socket !== this.socket) return;
    this.socket = undefined;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new AriRestError(0, `${p.operation}: the ARI WebSocket went away before the answer (${why})`, p.operation));
    }
    this.idle();
  }

  /** One request on the attached socket (check {@link ready} first); resolves with the parsed JSON body. */
  request(method: string, uri: string, query: Query, operation: string, discard?: boolean): Promise<unknown> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new AriRestError(0, `${operation}: no ARI WebSocket`, operation));
    // Asterisk 22.10 was seen to stop answering on a socket (after a request it could not handle) while its events
    // still flowed: after one request unanswered in time, the next ones go over HTTP (see expire).
    return this.sendOn(socket, method, uri, query, operation, this.timeoutMs, discard, true);
  }

  private sendOn(socket: RestSocket, method: string, uri: string, query: Query, operation: string, limitMs: number, discard?: boolean, stalls = false): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (socket.readyState !== OPEN) {
        reject(new AriRestError(0, `${operation}: the ARI WebSocket is not open`, operation));
        return;
      }
      const id = `cc${++this.seq}`;
      const queryStrings: { name: string; value: string }[] = [];
      for (const k in query) {
        const v = query[k];
        if (v !== undefined) queryStrings.push({ name: k, value: String(v) });
      }
      const deadline = performance.now() + limitMs;
      this.pending.set(id, { operation, resolve, reject, deadline, limitMs, discard, stallOf: stalls ? socket : undefined });
      this.limitFor(deadline);
      const message = JSON.stringify(
        queryStrings.length > 0 ? { type: 'RESTRequest', request_id: id, method, uri, query_strings: queryStrings } : { type: 'RESTRequest', request_id: id, method, uri },
      );
      try {
        this.hold(socket);
        socket.send(message, (err) => {
          if (err) this.fail(id, `${operation}: the ARI WebSocket could not send the request: ${err.message}`);
        });
      } catch (err) {
        this.fail(id, `${operation}: the ARI WebSocket could not send the request: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  private fail(id: string, message: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.idle();
    p.reject(new AriRestError(0, message, p.operation));
  }

  /** The limit timer set for `deadline` unless it fires before; held (ref) while requests are in flight. */
  private limitFor(deadline: number): void {
    const timer = this.limitTimer;
    if (timer && deadline >= this.limitAt) {
      timer.ref();
      return;
    }
    if (timer) clearTimeout(timer);
    this.limitAt = deadline;
    this.limitTimer = setTimeout(this.expire, Math.max(0, deadline - performance.now()));
  }

  /** The limit timer's turn: requests past their deadline fail, the timer is set for the next deadline. */
  private readonly expire = (): void => {
    this.limitTimer = undefined;
    this.limitAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [id, p] of this.pending) {
      if (p.deadline > now) {
        next = Math.min(next, p.deadline);
        continue;
      }
      this.pending.delete(id);
      if (p.stallOf !== undefined && this.socket === p.stallOf) {
        this.socket = undefined;
        this.onStall?.(p.operation, p.limitMs);
      }
      p.reject(new AriRestError(0, `${p.operation}: no answer within ${p.limitMs} ms on the ARI WebSocket`, p.operation));
    }
    if (next < Infinity) this.limitFor(next);
  };

  /** Nothing in flight: the limit timer no longer holds the process (kept for the next request). */
  private idle(): void {
    if (this.pending.size === 0) this.limitTimer?.unref();
  }

  /**
   * A `RESTResponse` message from the socket (already parsed). Returns what was wrong with it when it answers no
   * request in flight, so the caller can log it: `late` for one of ours whose request had already failed (timed
   * out, its socket gone; an overloaded Asterisk sends many of these at once), `unknown` for any other
   * `request_id`. A malformed answer to a request in flight rejects that request with what was wrong.
   */
  answer(msg: Record<string, unknown>): { kind: 'late' | 'unknown'; why: string } | undefined {
    const id = msg.request_id;
    const p = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (!p) {
      const ours = typeof id === 'string' && /^cc[1-9][0-9]{0,15}$/.test(id) && Number(id.slice(2)) <= this.seq;
      return ours
        ? { kind: 'late', why: `a RESTResponse after its request had failed (request_id ${JSON.stringify(id)})` }
        : { kind: 'unknown', why: `a RESTResponse for no request in flight (request_id ${JSON.stringify(id)?.slice(0, 60)})` };
    }
    this.pending.delete(id as string);
    this.idle();
    const status = msg.status_code;
    const raw = msg.message_body;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
      p.reject(new AriRestError(0, `${p.operation}: a malformed answer on the ARI WebSocket (status_code ${JSON.stringify(status)?.slice(0, 40)})`, p.operation));
      return undefined;
    }
    if (raw !== undefined && typeof raw !== 'string') {
      p.reject(new AriRestError(0, `${p.operation}: a malformed answer on the ARI WebSocket (message_body is not a string)`, p.operation));
      return undefined;
    }
    if (raw !== undefined && raw.length > this.maxAnswerBytes) {
      p.reject(new AriRestError(0, `${p.operation}: the answer on the ARI WebSocket is too large (${raw.length} characters, limit ${this.maxAnswerBytes})`, p.operation));
      return undefined;
    }
    const reason = typeof msg.reason_phrase === 'string' ? msg.reason_phrase.slice(0, 200) : '';
    try {
      p.resolve(ariAnswer(p.operation, status, raw ?? '', (raw ?? '').slice(0, 200) || reason, p.discard));
    } catch (err) {
      p.reject(err as AriRestError);
    }
    return undefined;
  }
}
