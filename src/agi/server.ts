/**
 * A small typed FastAGI server: TCP (default 127.0.0.1:4573), one {@link AgiSession} per connection.
 *
 * The session reads the agi_* environment block, then sends one command at a time and resolves with
 * the parsed reply. A `HANGUP` notice, a closed socket or a `511` (dead channel) marks the channel as
 * gone: pending and later commands reject with {@link AgiHangup}, which handlers treat as "the caller
 * hung up", never as a failure.
 */
import net from 'node:net';
import { emit } from '../events';
import type { Logger } from '../log';
import { AgiEnv, AgiReply, ReplyReader, parseAgiEnv } from './protocol';

export class AgiHangup extends Error {
  constructor(message = 'the channel hung up') {
    super(message);
    this.name = 'AgiHangup';
  }
}

export class AgiCommandError extends Error {
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

  /** Reads the environment block; resolves when it is complete. */
  start(): Promise<AgiEnv> {
    return new Promise((resolve, reject) => {
      const envLines: string[] = [];
      let inEnv = true;
      let buf = '';
      this.socket.setEncoding('utf8');
      this.socket.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).replace(/\r$/, '');
          buf = buf.slice(i + 1);
          if (inEnv) {
            if (line === '') {
              inEnv = false;
              this.env = parseAgiEnv(envLines);
              resolve(this.env);
            } else {
              envLines.push(line);
            }
            continue;
          }
          const r = this.reader.line(line);
          if (!r) continue;
          if (r.type === 'hangup') {
            this.markHungUp('HANGUP notice');
            continue;
          }
          const p = this.pending;
          this.pending = undefined;
          if (!p) {
            this.log.debug('AGI reply without a command', { raw: r.reply.raw });
            continue;
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
      });
      const closed = () => {
        this.markHungUp('connection closed');
        if (inEnv) reject(new Error('FastAGI connection closed before the environment was complete'));
        const p = this.pending;
        this.pending = undefined;
        p?.reject(new AgiHangup('the FastAGI connection closed'));
      };
      this.socket.on('close', closed);
      this.socket.on('error', (err) => this.log.debug('FastAGI socket error', { error: err.message }));
    });
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
}

export class AgiServer {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly opts: AgiServerOptions) {}

  /** Listens; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.opts.log.error('FastAGI server error', { error: err.message }));
        const port = (server.address() as net.AddressInfo).port;
        emit(this.opts.log, 'info', 'agi.listening', 'FastAGI server listening', { host: this.opts.host, port });
        resolve(port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const log = this.opts.log;
    const session = new AgiSession(socket, log, this.opts.commandTimeoutMs ?? 10000);
    session
      .start()
      .then(async (env) => {
        const handler = this.opts.handlers[env.script];
        const clog = log.child({ channelId: env.vars.agi_uniqueid, channel: env.vars.agi_channel });
        session.log = clog;
        if (!handler) {
          clog.warn('FastAGI request for an unknown script; the call continues in the dialplan', {
            script: env.script,
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
        log.warn('FastAGI connection failed', { error: (err as Error).message });
        socket.destroy();
      });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
