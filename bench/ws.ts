/**
 * The `ws` package (6.x) as the bench's simulated PBX and its recorder use it: it is already in node_modules as
 * ari-client's own WebSocket (`npm ls ws`), so the bench needs no dependency of its own; it ships no types,
 * hence the few declarations used here.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

export interface WsSocket {
  readonly readyState: number;
  send(data: string, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', fn: (data: string | Buffer) => void): this;
  on(event: 'close', fn: () => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  on(event: 'open', fn: () => void): this;
  on(event: 'ping', fn: () => void): this;
  readonly bufferedAmount: number;
}

export interface WsServer {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WsSocket) => void): void;
  close(cb?: () => void): void;
}

interface WsModule {
  new (url: string): WsSocket;
  Server: new (opts: { noServer: true }) => WsServer;
  OPEN: number;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const WebSocket = require('ws') as WsModule;
