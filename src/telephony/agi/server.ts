/**
 * A small typed FastAGI server: TCP (default 127.0.0.1:4573), one {@link AgiSession} per connection.
 *
 * The session reads the agi_* environment block, then sends one command at a time and resolves with
 * the parsed reply. A `HANGUP` notice, a closed socket or a `511` (dead channel) marks the channel as
 * gone: pending and later commands reject with {@link AgiHangup}, which handlers treat as "the caller
 * hung up", never as a failure.
 */
import net from 'node:net';
import { emit } from '../../logging/events';
import type { Logger } from '../../logging/log';
import { createHash, timingSafeEqual } from 'node:crypto';
import { LogThrottle } from '../../logging/log-throttle';
import { isLoopback } from '../../config/net';
import { AgiEnv, AgiReply, LineSplitter, ReplyReader, parseAgiEnv, scriptQuery } from './protocol';

/** Why a FastAGI connection was refused (the `reason` of the `agi.rejected` log event). */
export type AgiRefusal = 'peer-not-allowed' | 'too-many-sessions' | 'line-too-long' | 'env-too-large' | 'env-timeout' | 'bad-secret' | 'unknown-script' | 'idle-timeout' | 'closed';

export class AgiRefused extends Error {
  constructor(
    readonly reason: AgiRefusal,
    detail: string,
  ) {
    super(`FastAGI connection refused (${reason}): ${detail}`);
    this.name = 'AgiRefused';
  }
}

/** The door of the FastAGI server: sizes and times a peer may use before it is cut off. */
export interface AgiLimits {
  /** Longest line (environment or reply), in characters. */
  maxLineChars: number;
  /** Most lines in the environment block (Asterisk sends about 25 plus one per argument). */
  maxEnvLines: number;
  /** Most characters in the environment block. */
  maxEnvChars: number;
  /** The environment block must be complete this soon after the connection opened. */
  envTimeoutMs: number;
}

export const DEFAULT_LIMITS: AgiLimits = { maxLineChars: 8192, maxEnvLines: 256, maxEnvChars: 65536, envTimeoutMs: 5000 };

/** The channel hung up (or the FastAGI connection closed): handlers treat it as "the caller left", not a failure. */
export class AgiHangup extends Error {
  readonly code = 'agi-hangup' as const;

  constructor(message = 'the channel hung up') {
    super(message);
    this.name = 'AgiHangup';
  }
}

/** Asterisk answered an AGI command with a failure (not 200). */
export class AgiCommandError extends Error {
  readonly code = 'agi-command-failed' as const;

  constructor(
    readonly command: string,
    readonly reply: AgiReply,
  ) {
    super(`AGI ${command.split(' ').slice(0, 2).join(' ')} failed: ${reply.raw.split('\n')[0]}`);
    this.name = 'AgiCommandError';
  }
}

export class AgiSession {
  env!: AgiEnv;
  /** True once the channel hung up or the connection closed. */
  hungUp = false;
  private readonly reader = new ReplyReader();
  private pending?: { command: string; resolve: (r: AgiReply) => void; reject: (e: Error) => void };
  private chain: Promise<unknown> = Promise.resolve();
  private readonly hangupListeners: (() => void)[] = [];

  constructor(
    private readonly socket: net.Socket,
    /** Replaced by a child carrying the channel id once the environment is known. */
    public log: Logger,
    private readonly commandTimeoutMs: number,
  ) {}

  /**
   * Reads the environment block; resolves when it is complete. Rejects with {@link AgiRefused} (and
   * destroys the socket) when a line or the block is larger than the limits, or the block does not
   * arrive within `limits.envTimeoutMs`.
   */
  start(limits: AgiLimits = DEFAULT_LIMITS): Promise<AgiEnv> {
    return new Promise((resolve, reject) => {
      const envLines: string[] = [];
      let envChars = 0;
      let inEnv = true;
      const splitter = new LineSplitter(limits.maxLineChars);
      const refuse = (reason: AgiRefusal, detail: string) => {
        if (!inEnv) return;
        inEnv = false;
        clearTimeout(envTimer);
        reject(new AgiRefused(reason, detail));
        this.socket.destroy();
      };
      const envTimer = setTimeout(() => refuse('env-timeout', `no complete environment within ${limits.envTimeoutMs} ms`), limits.envTimeoutMs);
      this.socket.setEncoding('utf8');
      this.socket.on('data', (chunk: string) => {
        let lines: string[];
        try {
          lines = splitter.push(chunk);
        } catch (err) {
          if (inEnv) refuse('line-too-long', (err as Error).message);
          else {
            emit(this.log, 'warn', 'agi.refused', 'FastAGI peer sent an over-long line; closing', { reason: 'line-too-long' });
            this.socket.destroy();
          }
          return;
        }
        for (const line of lines) {
          if (this.socket.destroyed) return;
          if (inEnv) {
            if (line === '') {
              inEnv = false;
              clearTimeout(envTimer);
              this.env = parseAgiEnv(envLines);
              resolve(this.env);
            } else {
              envChars += line.length;
              envLines.push(line);
              if (envLines.length > limits.maxEnvLines || envChars > limits.maxEnvChars) {
                refuse('env-too-large', `more than ${limits.maxEnvLines} lines or ${limits.maxEnvChars} characters`);
                return;
              }
            }
            continue;
          }
          this.onLine(line);
        }
      });
      const closed = () => {
        this.markHungUp('connection closed');
        clearTimeout(envTimer);
        if (inEnv) reject(new AgiRefused('closed', 'connection closed before the environment was complete'));
        inEnv = false;
        const p = this.pending;
        this.pending = undefined;
        p?.reject(new AgiHangup('the FastAGI connection closed'));
      };
      this.socket.on('close', closed);
      this.socket.on('error', (err) => this.log.debug('FastAGI socket error', { error: err.message }));
    });
  }

  private onLine(line: string): void {
    const r = this.reader.line(line);
    if (!r) return;
    if (r.type === 'hangup') {
      this.markHungUp('HANGUP notice');
      return;
    }
    const p = this.pending;
    this.pending = undefined;
    if (!p) {
      this.log.debug('AGI reply without a command', { raw: r.reply.raw.slice(0, 200) });
      return;
    }
    if (r.reply.code === 511) {
      this.markHungUp('511 dead channel');
      p.reject(new AgiHangup());
    } else if (r.reply.code !== 200) {
      p.reject(new AgiCommandError(p.command, r.reply));
    } else {
      p.resolve(r.reply);
    }
  }

  /** True while a command waits for its reply (the session is not idle then). */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  onHangup(fn: () => void): void {
    if (this.hungUp) fn();
    else this.hangupListeners.push(fn);
  }

  private markHungUp(why: string): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.log.debug('AGI channel gone', { why });
    for (const fn of this.hangupListeners.splice(0)) fn();
  }

  /**
   * Sends one command and resolves with its 200 reply. Commands are serialised. After a hang-up the
   * channel is dead: rejects with AgiHangup (Asterisk would answer 511 anyway). `timeoutMs` bounds the wait
   * (defaults to the server's command timeout; blocking commands pass their own).
   */
  command(command: string, timeoutMs = this.commandTimeoutMs): Promise<AgiReply> {
    const run = (): Promise<AgiReply> =>
      new Promise<AgiReply>((resolve, reject) => {
        if (this.hungUp || this.socket.destroyed) {
          reject(new AgiHangup());
          return;
        }
        const timer = setTimeout(() => {
          if (this.pending?.command !== command) return;
          this.pending = undefined;
          reject(new Error(`AGI ${command.split(' ')[0]}: no reply within ${timeoutMs} ms`));
          this.socket.destroy();
        }, timeoutMs);
        this.pending = {
          command,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        this.log.debug('AGI command', { command: command.split(' ').slice(0, 2).join(' ') });
        this.socket.write(`${command}\n`);
      });
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Ends the FastAGI session; the channel continues in the dialplan (unless it was hung up). */
  close(): void {
    this.socket.end();
  }
}

export type AgiHandler = (session: AgiSession) => Promise<void>;

export interface AgiServerOptions {
  host: string;
  port: number;
  log: Logger;
  /** Routes by script name ("offer"); an unknown script ends the session with a warning. */
  handlers: Record<string, AgiHandler>;
  /** Longest wait for a non-blocking command's reply. */
  commandTimeoutMs?: number;
  /**
   * Shared secret the dialplan passes in the script URL: `AGI(agi://host:port/offer?secret=<secret>,…)`.
   * Empty or unset: no secret is asked (then keep the port private: loopback bind or peer allowlist).
   */
  secret?: string;
  /** Peer addresses allowed to connect (exact IPs, IPv4-mapped IPv6 forms match too); empty: any peer. */
  allowedPeers?: readonly string[];
  /** Concurrent sessions; a connection beyond it is closed at once. */
  maxSessions?: number;
  /** A session with no traffic and no command waiting for this long is closed. */
  idleTimeoutMs?: number;
  limits?: Partial<AgiLimits>;
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export class AgiServer {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Connections that have not yet sent their environment, oldest first. */
  private readonly unidentified = new Set<net.Socket>();
  /** Sockets already refused (and logged): their later 'closed' is no news. */
  private readonly refusedSockets = new WeakSet<net.Socket>();
  private readonly throttle: LogThrottle;
  private readonly limits: AgiLimits;
  private readonly allowed?: Set<string>;
  /** Counts of refused connections by reason, for tests and metrics. */
  readonly refused = new Map<AgiRefusal, number>();

  constructor(private readonly opts: AgiServerOptions) {
    this.throttle = new LogThrottle(() => this.opts.log);
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    if (opts.allowedPeers && opts.allowedPeers.length > 0) {
      this.allowed = new Set(opts.allowedPeers.flatMap((p) => [p, p.startsWith('::ffff:') ? p.slice(7) : `::ffff:${p}`]));
    }
  }

  /** Listens; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    const server = net.createServer({ keepAlive: true, keepAliveInitialDelay: 30_000 }, (socket) => this.accept(socket));
    // Above the cap, connections are still accepted (and closed at once, with a line in the log) rather
    // than left in the kernel's backlog, so that a real call never waits behind a flood.
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.throttle.warn('server-error', 'agi.server_error', 'FastAGI server error', { error: err.message }));
        const port = (server.address() as net.AddressInfo).port;
        // `auth`, not `secret`: the log's mask hides every field named like a secret, and the operator needs to read this one.
        emit(this.opts.log, 'info', 'agi.listening', `FastAGI server listening (secret: ${this.opts.secret ? 'required' : 'none'})`, {
          host: this.opts.host,
          port,
          auth: this.opts.secret ? 'secret required' : 'no secret',
          allowedPeers: this.opts.allowedPeers ?? [],
        });
        if (!isLoopback(this.opts.host)) {
          emit(
            this.opts.log,
            'warn',
            'agi.exposed',
            `FastAGI server is reachable from the network (${this.opts.host}:${port}): anyone who can connect may create callback requests${this.opts.secret ? ' if they know agi.secret' : ' — set agi.secret and agi.allowedPeers'}`,
            { host: this.opts.host, port, secret: Boolean(this.opts.secret), allowedPeers: this.opts.allowedPeers ?? [] },
          );
        }
        resolve(port);
      });
    });
  }

  private refuse(socket: net.Socket, reason: AgiRefusal, fields: Record<string, unknown> = {}): void {
    if (this.refusedSockets.has(socket)) return;
    this.refusedSockets.add(socket);
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
    this.throttle.warn(reason, 'agi.refused', 'FastAGI connection refused', { reason, peer: socket.remoteAddress, ...fields });
    socket.destroy();
  }

  private accept(socket: net.Socket): void {
    const peer = socket.remoteAddress ?? '';
    if (this.allowed && !this.allowed.has(peer)) return this.refuse(socket, 'peer-not-allowed');
    const max = this.opts.maxSessions ?? 200;
    if (this.sockets.size >= max) {
      // Full. Asterisk sends its environment within milliseconds, so the oldest connection still waiting
      // for one is the likeliest attacker (idle or slow-loris): it makes room. Only when every session is a
      // real call is the newcomer refused.
      const oldest = this.unidentified.values().next().value;
      if (!oldest) return this.refuse(socket, 'too-many-sessions', { max });
      this.unidentified.delete(oldest);
      this.refuse(oldest, 'too-many-sessions', { max, evicted: 'oldest connection without an environment' });
      this.sockets.delete(oldest);
    }
    this.sockets.add(socket);
    this.unidentified.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.unidentified.delete(socket);
    });
    const log = this.opts.log;
    const session = new AgiSession(socket, log, this.opts.commandTimeoutMs ?? 10000);
    const idleMs = this.opts.idleTimeoutMs ?? 120_000;
    socket.setTimeout(idleMs, () => {
      if (session.busy) return; // a blocking command has its own timeout
      this.refuse(socket, 'idle-timeout', { idleMs });
    });
    session
      .start(this.limits)
      .then(async (env) => {
        this.unidentified.delete(socket);
        if (this.opts.secret && !sameSecret(scriptQuery(env.vars).get('secret') ?? '', this.opts.secret)) {
          return this.refuse(socket, 'bad-secret', { script: env.script.slice(0, 40) });
        }
        // Own properties only: "__proto__", "constructor" or "toString" are not handlers.
        const handler = Object.hasOwn(this.opts.handlers, env.script) ? this.opts.handlers[env.script] : undefined;
        const clog = log.child({ channelId: env.vars.agi_uniqueid, channel: env.vars.agi_channel });
        session.log = clog;
        if (typeof handler !== 'function') {
          this.refused.set('unknown-script', (this.refused.get('unknown-script') ?? 0) + 1);
          this.throttle.warn('unknown-script', 'agi.refused', 'FastAGI request for an unknown script; the call continues in the dialplan', {
            reason: 'unknown-script',
            script: JSON.stringify(env.script.slice(0, 40)),
            known: Object.keys(this.opts.handlers),
          });
          session.close();
          return;
        }
        try {
          await handler(session);
        } catch (err) {
          if (!(err instanceof AgiHangup)) clog.error('FastAGI handler failed', { script: env.script, error: (err as Error).message });
        } finally {
          session.close();
        }
      })
      .catch((err: unknown) => {
        if (err instanceof AgiRefused) {
          if (err.reason !== 'closed') this.refuse(socket, err.reason, { detail: err.message });
          else if (!this.refusedSockets.has(socket)) this.throttle.warn('closed', 'agi.refused', 'FastAGI connection closed before the environment was complete', { reason: 'closed', peer });
        } else {
          log.warn('FastAGI connection failed', { error: (err as Error).message });
        }
        socket.destroy();
      });
  }

  /** Open sessions (for tests and metrics). */
  get sessions(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.throttle.flush();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
