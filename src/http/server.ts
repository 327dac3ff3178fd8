/**
 * The HTTP listener: a small router over node:http that other features add routes to (health, metrics,
 * the callbacks page, the demo phones). Its doors (README, "Security"), in the order a request meets them:
 *
 * - connections without a request in progress are capped ({@link HttpOptions.maxIdleConnections}; a new
 *   one closes the oldest), headers must be complete within 5 s (checked every 250 ms), requests within 10 s;
 * - the Host header must be an allowed name (DNS rebinding: loopback names, the bind address, the
 *   listener's own IP, http.allowedHosts), else 421;
 * - unknown path 404, other method 405 with Allow, a Content-Length over the cap 413 before reading;
 * - the token, in constant time, for every route not marked public: bearer, basic-auth password or the
 *   page's `cc_token` cookie (set by the first visit with `?token=`);
 * - a budget per kind of request (probes, page; streams and relays count themselves), else 503.
 *
 * Every refusal closes the connection, so a body sent with it is never read. A throwing handler answers
 * 500 and is logged; it never takes the service down.
 */
import http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';
import { LogThrottle } from '../logging/log-throttle';

export interface Route {
  path: string;
  /** Default ['GET', 'HEAD']. */
  methods?: readonly string[];
  /** Reachable without the token (liveness). */
  public?: boolean;
  /**
   * Whose budget the request spends (README, "Security"): `probe` (/healthz, /readyz, /metrics), `page`
   * (the page, its files and JSON API; the default) or `stream` (a long-lived response that the route
   * counts itself, such as the page's event stream).
   */
  budget?: 'probe' | 'page' | 'stream';
  handle(req: http.IncomingMessage, res: http.ServerResponse): void | Promise<void>;
}

export interface HttpOptions {
  bind: string;
  port: number;
  /** Empty: no token needed (config http.auth = none). */
  token: string;
  log: Logger;
  /**
   * The token was generated for this run, not configured: /readyz and /metrics stay open (probes work out
   * of the box) and a 401 does not ask the browser for basic auth (the way in is the printed URL).
   */
  probesOpen?: boolean;
  /**
   * Host names (without port) a request may name in its Host header besides the defaults: the loopback
   * names and the bind address ({@link defaultAllowedHosts}); `*` turns the check off. An IP address of
   * the listener itself is always allowed (a rebound DNS name is never an IP literal).
   */
  allowedHosts?: readonly string[];
  /** Origins (scheme://host[:port]) a POST or the phones' WebSocket may come from besides the page's own. */
  allowedOrigins?: readonly string[];
  /** Requests in progress at most, per budget (default probe 16, page 32). Beyond it: 503 and the socket is closed. */
  budgets?: { probe?: number; page?: number };
  /**
   * Connections without a request in progress (still sending headers, or kept alive) at most (default 128);
   * a new connection beyond it closes the oldest of them, so that a flood of slow connections never shuts
   * out a probe that sends its request at once.
   */
  maxIdleConnections?: number;
  /** The request's headers must be complete within this, checked every 250 ms (default 5 s). */
  headersTimeoutMs?: number;
  /** A request must be complete within this (default 10 s). */
  requestTimeoutMs?: number;
  /** A request body larger than this (by its Content-Length) is refused before it is read (default 8 KiB). */
  maxBodyBytes?: number;
}

/** The name under which the page keeps the token after the first visit with `?token=` (HttpOnly, SameSite=Strict). */
export const TOKEN_COOKIE = 'cc_token';

/** Hosts every listener accepts: the loopback names and the bind address (unless it is a wildcard). */
export function defaultAllowedHosts(bind: string): string[] {
  const hosts = ['localhost', '127.0.0.1', '::1'];
  if (bind && bind !== '0.0.0.0' && bind !== '::' && !hosts.includes(bind)) hosts.push(bind.toLowerCase());
  return hosts;
}

/** The host name of a Host header value (`[::1]:9464` → `::1`, `Example.org:80` → `example.org`); undefined when malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]/@]+))(?::(\d{1,5}))?$/.exec(header.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2]).toLowerCase().replace(/\.$/, '');
}

/** Normalised origin (`scheme://host[:port]`, lower case) of a URL text; undefined when not a URL. */
export function normalOrigin(text: string): string | undefined {
  try {
    const u = new URL(text);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return `${u.protocol}//${u.host}`.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * Constant-time comparison of the Authorization header with "Bearer <token>", or with basic auth whose
 * password is the token (any user name; browsers prompt for it and send it with every request, the
 * page's event stream included).
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  if (!token) return true;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (bearer) return timingSafeEqual(digest(bearer[1]), digest(token));
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!basic) return false;
  const pair = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon < 0) return false;
  return timingSafeEqual(digest(pair.slice(colon + 1)), digest(token));
}

/** The user name of basic auth, if any (for "cancelled by web (alice)"); undefined for a bearer token. */
export function basicUser(header: string | undefined): string | undefined {
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!basic) return undefined;
  const pair = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  const user = (colon < 0 ? pair : pair.slice(0, colon)).replace(/[^\w.@ -]/g, '').slice(0, 32).trim();
  return user || undefined;
}

/** The token from the `cc_token` cookie, if any. */
export function cookieToken(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Constant-time: the request carries the token (Authorization header, or the page's cookie). */
export function authorized(req: http.IncomingMessage, token: string): boolean {
  if (!token) return true;
  if (req.headers.authorization && tokenMatches(req.headers.authorization, token)) return true;
  const fromCookie = cookieToken(req.headers.cookie);
  return fromCookie !== undefined && tokenMatches(`Bearer ${fromCookie}`, token);
}

/** A handler for WebSocket upgrades on one path (the demo phones' SIP relay). */
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Answers and ends the exchange. Every refusal (4xx, 5xx) closes the connection: Node then never reads
 * the rest of a body it was sent (on a kept-alive connection it would read it all to reach the next request).
 */
export function send(res: http.ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.statusCode = status;
  res.setHeader('content-type', contentType);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  if (status >= 400) res.setHeader('connection', 'close');
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

type Budget = 'probe' | 'page';
const DEFAULT_BUDGETS: Record<Budget, number> = { probe: 16, page: 32 };

export class HttpServer {
  private readonly routes = new Map<string, Route>();
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private server?: http.Server;
  /** Connections without a request in progress, oldest first (insertion order). */
  private readonly idle = new Set<Socket>();
  private readonly inFlight: Record<Budget, number> = { probe: 0, page: 0 };
  private readonly budgets: Record<Budget, number>;
  private readonly hosts: Set<string>;
  private readonly anyHost: boolean;
  private readonly origins: Set<string>;
  private readonly throttle: LogThrottle;
  /** Refusals by reason since the start (tests and the bench read them). */
  readonly refused = new Map<string, number>();

  constructor(private readonly opts: HttpOptions) {
    this.budgets = { ...DEFAULT_BUDGETS, ...opts.budgets };
    const extra = (opts.allowedHosts ?? []).map((h) => h.toLowerCase().replace(/^\[|\]$/g, ''));
    this.anyHost = extra.includes('*');
    this.hosts = new Set([...defaultAllowedHosts(opts.bind), ...extra]);
    this.origins = new Set((opts.allowedOrigins ?? []).map((o) => normalOrigin(o)).filter((o): o is string => !!o));
    this.throttle = new LogThrottle(() => opts.log);
  }

  route(route: Route): this {
    if (this.routes.has(route.path)) throw new Error(`HTTP route ${route.path} registered twice`);
    this.routes.set(route.path, route);
    return this;
  }

  /** A WebSocket upgrade on `path`, behind the same token and Host check as the routes. */
  upgrade(path: string, handler: UpgradeHandler): this {
    if (this.upgrades.has(path)) throw new Error(`HTTP upgrade ${path} registered twice`);
    this.upgrades.set(path, handler);
    return this;
  }

  /** Starts listening; resolves with the bound port, rejects when the address cannot be bound. */
  listen(): Promise<number> {
    const requestTimeout = this.opts.requestTimeoutMs ?? 10_000;
    const server = http.createServer(
      {
        maxHeaderSize: 8192,
        requestTimeout,
        headersTimeout: Math.min(this.opts.headersTimeoutMs ?? 5_000, requestTimeout),
        // Node checks both deadlines only this often (default 30 s: a trickling connection lived that long).
        connectionsCheckingInterval: 250,
        keepAliveTimeout: 5_000,
      },
      (req, res) => this.dispatch(req, res),
    );
    server.maxRequestsPerSocket = 100;
    server.on('connection', (socket: Socket) => this.accept(socket));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.dispatchUpgrade(req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Malformed requests, oversized headers (431), header or request deadlines (408): answer if possible, close.
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      this.count(status.slice(0, 3));
      if ((socket as Socket).writable && !(socket as Socket).destroyed) {
        socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
        setTimeout(() => socket.destroy(), 1000).unref();
      } else socket.destroy();
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(this.opts.port, this.opts.bind, () => {
        server.off('error', onError);
        server.on('error', (err) => emit(this.opts.log, 'error', 'http.error', 'HTTP listener error', { error: err.message }));
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  /** Connections waiting for a request (for tests). */
  get idleConnections(): number {
    return this.idle.size;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server?.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** The request names an allowed host (DNS rebinding: a page under another name that now resolves to us gets nothing). */
  hostAllowed(req: http.IncomingMessage): boolean {
    if (this.anyHost) return true;
    const name = hostName(req.headers.host);
    if (name === undefined) return false;
    if (this.hosts.has(name)) return true;
    // An IP literal of this very listener: not a name, so not rebindable.
    const local = (req.socket.localAddress ?? '').replace(/^::ffff:/, '');
    return isIP(name) !== 0 && name === local;
  }

  /** The browser's Origin is this page's own (same host as the allowed Host header) or one of http.allowedOrigins. */
  originAllowed(origin: string | undefined, host: string | undefined): boolean {
    if (!origin || origin === 'null') return false;
    const o = normalOrigin(origin);
    if (!o) return false;
    if (this.origins.has(o)) return true;
    return !!host && new URL(o).host === new URL(`http://${host}`).host.toLowerCase();
  }

  private accept(socket: Socket): void {
    this.idle.add(socket);
    socket.once('close', () => this.idle.delete(socket));
    const max = this.opts.maxIdleConnections ?? 128;
    if (this.idle.size > max) {
      const oldest = this.idle.values().next().value as Socket;
      this.idle.delete(oldest);
      oldest.destroy();
      this.count('idle-evicted');
    }
  }

  private count(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  private refuse(req: http.IncomingMessage, res: http.ServerResponse, status: number, reason: string, text: string, path: string): void {
    this.count(reason);
    this.throttle.warn(`${reason}`, 'http.refused', 'HTTP request refused', { path, reason, status, remote: req.socket.remoteAddress });
    send(res, status, text);
  }

  private dispatch(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    this.idle.delete(socket);
    res.once('close', () => {
      if (!socket.destroyed && this.server?.listening) this.idle.add(socket);
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      send(res, 400, 'bad request\n');
      return;
    }
    const path = url.pathname;
    if (!this.hostAllowed(req)) {
      return this.refuse(req, res, 421, 'host', `host ${JSON.stringify(String(req.headers.host ?? '').slice(0, 80))} is not served here: add it to http.allowedHosts\n`, path);
    }
    const route = this.routes.get(path);
    if (!route) {
      send(res, 404, 'not found\n');
      return;
    }
    const methods = route.methods ?? ['GET', 'HEAD'];
    if (!methods.includes(req.method ?? '')) {
      res.setHeader('allow', methods.join(', '));
      send(res, 405, 'method not allowed\n');
      return;
    }
    const length = Number(req.headers['content-length'] ?? 0);
    const maxBody = this.opts.maxBodyBytes ?? 8 * 1024;
    if (!Number.isFinite(length) || length > maxBody) {
      return this.refuse(req, res, 413, 'body', `body larger than ${maxBody} bytes\n`, path);
    }
    const budget = route.budget ?? 'page';
    const open = route.public || (budget === 'probe' && this.opts.probesOpen);
    if (!open && !authorized(req, this.opts.token)) {
      if (this.tokenLogin(req, res, url)) return;
      this.count('unauthorized');
      this.throttle.warn(`unauthorized ${path}`, 'http.unauthorized', 'HTTP request without a valid token', { path, remote: req.socket.remoteAddress });
      res.setHeader('www-authenticate', this.opts.probesOpen ? ['Bearer'] : ['Bearer', 'Basic realm="considerate-callback", charset="UTF-8"']);
      send(res, 401, 'a token is needed: open the page with the URL the service printed at start (?token=…), or send "Authorization: Bearer <http.token>"\n');
      return;
    }
    if (budget !== 'stream') {
      if (this.inFlight[budget] >= this.budgets[budget]) {
        res.setHeader('retry-after', '1');
        return this.refuse(req, res, 503, `busy-${budget}`, `too many ${budget} requests at once; try again\n`, path);
      }
      this.inFlight[budget]++;
      res.once('close', () => this.inFlight[budget]--);
    }
    const fail = (err: unknown) => {
      emit(this.opts.log, 'error', 'http.handler_failed', 'HTTP handler failed', { path, error: (err as Error)?.message ?? String(err) });
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    };
    try {
      const r = route.handle(req, res);
      if (r && typeof r.then === 'function') r.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  /**
   * The first visit with `?token=<token>` (the URL printed at start): keeps the token in an HttpOnly,
   * SameSite=Strict cookie and redirects to the same address without it (so it leaves the address bar and
   * the history). True when answered.
   */
  private tokenLogin(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean {
    const given = url.searchParams.get('token');
    if (given === null || (req.method !== 'GET' && req.method !== 'HEAD') || !this.opts.token) return false;
    if (!tokenMatches(`Bearer ${given}`, this.opts.token)) return false;
    url.searchParams.delete('token');
    res.statusCode = 303;
    res.setHeader('set-cookie', `${TOKEN_COOKIE}=${given}; Path=/; HttpOnly; SameSite=Strict`);
    res.setHeader('location', `${url.pathname}${url.search}`);
    res.setHeader('cache-control', 'no-store');
    res.setHeader('referrer-policy', 'no-referrer');
    res.end();
    return true;
  }

  private dispatchUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    this.idle.delete(socket as Socket);
    socket.on('error', () => socket.destroy());
    let path = '';
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      // answered below as not found
    }
    const handler = this.upgrades.get(path);
    const refuse = (status: string, reason: string) => {
      this.count(reason);
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    if (!this.hostAllowed(req)) {
      this.throttle.warn('host', 'http.refused', 'HTTP upgrade refused', { path, reason: 'host', status: 421, remote: req.socket.remoteAddress });
      return refuse('421 Misdirected Request', 'host');
    }
    if (!handler) return refuse('404 Not Found', 'not-found');
    if (!authorized(req, this.opts.token)) {
      this.throttle.warn(`unauthorized ${path}`, 'http.unauthorized', 'HTTP upgrade without a valid token', { path, remote: req.socket.remoteAddress });
      return refuse('401 Unauthorized', 'unauthorized');
    }
    try {
      handler(req, socket, head);
    } catch (err) {
      emit(this.opts.log, 'error', 'http.handler_failed', 'HTTP upgrade handler failed', { path, error: (err as Error)?.message ?? String(err) });
      socket.destroy();
    }
  }
}
