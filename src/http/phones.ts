/**
 * Demo only (config web.phones): browser softphones on the HTTP listener.
 *
 * - `GET /phones`: the page (JsSIP, bundled into dist/web by scripts/build-web.mjs): agent 1001 and
 *   prospect 2001 as WebRTC phones (the demo PBX's endpoints webrtc1001 / webrtc2001, asterisk-conf/pjsip.conf).
 * - `GET /phones/ws` (WebSocket, subprotocol `sip`): relayed byte for byte to Asterisk's `/ws` on the host
 *   and port of ari.url, so the browser needs only this one origin (the docker demo publishes no Asterisk
 *   HTTP port; ARI stays private). Only the upgrade to `/ws` is relayed, never any other Asterisk path.
 *   At most {@link MAX_RELAYS} relays at once.
 */
import net from 'node:net';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';
import { HttpServer } from './server';
import { serveStatic } from './web';

export const MAX_RELAYS = 16;

/** The request Asterisk gets: the browser's upgrade, re-addressed to `/ws` on Asterisk's host. */
export function relayRequest(req: http.IncomingMessage, target: { host: string; port: number }): string {
  const lines = [`GET /ws HTTP/1.1`, `Host: ${target.host}:${target.port}`];
  const keep = new Set(['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions', 'user-agent']);
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    if (keep.has(name.toLowerCase())) lines.push(`${name}: ${req.rawHeaders[i + 1].replace(/[\r\n]/g, '')}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export function addPhoneRoutes(server: HttpServer, opts: { ariUrl: string; log: Logger; staticDir: string }): void {
  const { log } = opts;
  const u = new URL(opts.ariUrl);
  const target = { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
  let relays = 0;
  server.route({ path: '/phones', handle: (_req, res) => serveStatic(res, opts.staticDir, 'phones.html', 'text/html; charset=utf-8', '', log) });
  server.route({ path: '/phones/app.js', handle: (_req, res) => serveStatic(res, opts.staticDir, 'phones.js', 'text/javascript; charset=utf-8', '', log) });
  server.route({ path: '/phones/app.css', handle: (_req, res) => serveStatic(res, opts.staticDir, 'web.css', 'text/css; charset=utf-8', '', log) });
  server.upgrade('/phones/ws', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (relays >= MAX_RELAYS) {
      emit(log, 'warn', 'phones.relay_full', 'phone relay refused: too many open', { open: relays });
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    relays++;
    const upstream = net.connect(target.port, target.host);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      relays--;
      socket.destroy();
      upstream.destroy();
    };
    upstream.setNoDelay(true);
    upstream.once('connect', () => {
      upstream.write(relayRequest(req, target));
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
      emit(log, 'info', 'phones.relay_open', 'phone relay open', { remote: req.socket.remoteAddress });
    });
    upstream.on('error', (err) => {
      emit(log, 'warn', 'phones.relay_error', 'phone relay: Asterisk not reachable', { error: err.message, target: `${target.host}:${target.port}` });
      if (!closed && socket.writable) socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      close();
    });
    upstream.on('close', close);
    socket.on('close', close);
    socket.on('error', close);
  });
}
