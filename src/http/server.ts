/**
 * The HTTP listener: a small router over node:http that other features add routes to (health and
 * metrics today, a web page later). Doors: loopback by default (config http.bind), an optional bearer
 * token for every route not marked public (compared in constant time), GET/HEAD only unless a route
 * says otherwise, capped headers, a request timeout and a connection limit. A throwing handler answers
 * 500 and is logged; it never takes the service down.
 */
import http from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';

export interface Route {
  path: string;
  /** Default ['GET', 'HEAD']. */
  methods?: readonly string[];
  /** Reachable without the token (liveness). */
  public?: boolean;
  handle(req: http.IncomingMessage, res: http.ServerResponse): void | Promise<void>;
}

export interface HttpOptions {
  bind: string;
  port: number;
  /** Empty: no token needed. */
  token: string;
  log: Logger;
  /** Open connections at most (default 64). */
  maxConnections?: number;
  /** A request must be complete within this (default 10 s). */
  requestTimeoutMs?: number;
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

/** A handler for WebSocket upgrades on one path (the demo phones' SIP relay). */
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export function send(res: http.ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.statusCode = status;
  res.setHeader('content-type', contentType);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

export class HttpServer {
  private readonly routes = new Map<string, Route>();
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private server?: http.Server;

  constructor(private readonly opts: HttpOptions) {}

  route(route: Route): this {
    if (this.routes.has(route.path)) throw new Error(`HTTP route ${route.path} registered twice`);
    this.routes.set(route.path, route);
    return this;
  }

  /** A WebSocket upgrade on `path`, behind the same token as the routes. */
  upgrade(path: string, handler: UpgradeHandler): this {
    if (this.upgrades.has(path)) throw new Error(`HTTP upgrade ${path} registered twice`);
    this.upgrades.set(path, handler);
    return this;
  }

  /** Starts listening; resolves with the bound port, rejects when the address cannot be bound. */
  listen(): Promise<number> {
    const server = http.createServer({ maxHeaderSize: 8192, requestTimeout: this.opts.requestTimeoutMs ?? 10_000 }, (req, res) => this.dispatch(req, res));
    server.maxConnections = this.opts.maxConnections ?? 64;
    server.headersTimeout = Math.min(this.opts.requestTimeoutMs ?? 10_000, 10_000);
    server.keepAliveTimeout = 5_000;
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.dispatchUpgrade(req, socket, head));
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

  async close(): Promise<void> {
    const server = this.server;
    if (!server?.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private dispatch(req: http.IncomingMessage, res: http.ServerResponse): void {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      send(res, 400, 'bad request\n');
      return;
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
    if (!route.public && !tokenMatches(req.headers.authorization, this.opts.token)) {
      res.setHeader('www-authenticate', ['Bearer', 'Basic realm="considerate-callback", charset="UTF-8"']);
      send(res, 401, 'a bearer token is needed (config http.token)\n');
      emit(this.opts.log, 'warn', 'http.unauthorized', 'HTTP request without a valid token', { path, remote: req.socket.remoteAddress });
      return;
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

  private dispatchUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    let path = '';
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      // answered below as not found
    }
    const handler = this.upgrades.get(path);
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    if (!handler) return refuse('404 Not Found');
    if (!tokenMatches(req.headers.authorization, this.opts.token)) {
      emit(this.opts.log, 'warn', 'http.unauthorized', 'HTTP upgrade without a valid token', { path, remote: req.socket.remoteAddress });
      return refuse('401 Unauthorized');
    }
    try {
      handler(req, socket, head);
    } catch (err) {
      emit(this.opts.log, 'error', 'http.handler_failed', 'HTTP upgrade handler failed', { path, error: (err as Error)?.message ?? String(err) });
      socket.destroy();
    }
  }
}
