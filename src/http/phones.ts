/**
 * Demo only (config web.phones; without it neither the page nor the relay exists): browser softphones on
 * the HTTP listener.
 *
 * - `GET /phones`: the page (JsSIP, bundled into dist/web by scripts/build-web.mjs): agent 1001 and
 *   prospect 2001 as WebRTC phones (the demo PBX's endpoints webrtc1001 / webrtc2001, asterisk-conf/pjsip.conf).
 * - `GET /phones/ws` (WebSocket, subprotocol `sip`): relayed to Asterisk's `/ws` on the host and port of
 *   ari.url, so the browser needs only this one origin (the docker demo publishes no Asterisk HTTP port;
 *   ARI stays private).
 *
 * The relay relays a WebSocket and nothing else (README, "Security"): the browser's upgrade must name the
 * `sip` subprotocol, come from the page's own origin (or one of http.allowedOrigins) and carry no bytes
 * after its headers; Asterisk gets a fresh upgrade request to `/ws` with only the WebSocket headers, and
 * nothing more is written to Asterisk — nor read from the browser — until Asterisk has answered
 * `101 Switching Protocols` with the `sip` subprotocol. Any other answer closes both sides, so a refused
 * upgrade can never be followed by an ordinary HTTP request (ARI) on the same connection. One upgrade per
 * connection; at most {@link MAX_RELAYS} relays at once.
 */
import net from 'node:net';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';
import { LogThrottle } from '../logging/log-throttle';
import { HttpServer } from './server';
import { serveStatic } from './web';

export const MAX_RELAYS = 16;
/** Asterisk's answer to the upgrade must be complete within this many bytes and milliseconds. */
const MAX_ANSWER_BYTES = 8192;
const ANSWER_TIMEOUT_MS = 5000;

/** The request Asterisk gets: the browser's upgrade, re-addressed to `/ws` on Asterisk's host, asking for `sip` only. */
export function relayRequest(req: http.IncomingMessage, target: { host: string; port: number }): string {
  const lines = [`GET /ws HTTP/1.1`, `Host: ${target.host}:${target.port}`, 'Sec-WebSocket-Protocol: sip'];
  const keep = new Set(['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'user-agent']);
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    if (keep.has(name.toLowerCase())) lines.push(`${name}: ${req.rawHeaders[i + 1].replace(/[\r\n]/g, '')}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Asterisk's answer to the upgrade, judged: `ok` only for `101` with `Upgrade: websocket` and the `sip`
 * subprotocol. `status` is the status line's code (for the log). Pure.
 */
export function judgeAnswer(headText: string): { ok: boolean; status: string } {
  const [statusLine, ...headerLines] = headText.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})\b/.exec(statusLine)?.[1] ?? 'malformed';
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const ok = status === '101' && (headers.get('upgrade') ?? '').toLowerCase() === 'websocket' && headers.get('sec-websocket-protocol') === 'sip';
  return { ok, status };
}

export function addPhoneRoutes(server: HttpServer, opts: { ariUrl: string; log: Logger; staticDir: string }): void {
  const { log } = opts;
  const throttle = new LogThrottle(() => log);
  const u = new URL(opts.ariUrl);
  const target = { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
  let relays = 0;
  server.route({ path: '/phones', handle: (_req, res) => serveStatic(res, opts.staticDir, 'phones.html', 'text/html; charset=utf-8', '', log) });
  server.route({ path: '/phones/app.js', handle: (_req, res) => serveStatic(res, opts.staticDir, 'phones.js', 'text/javascript; charset=utf-8', '', log) });
  server.route({ path: '/phones/app.css', handle: (_req, res) => serveStatic(res, opts.staticDir, 'web.css', 'text/css; charset=utf-8', '', log) });
  server.upgrade('/phones/ws', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Nothing the browser sends after its headers is read until Asterisk has switched protocols.
    socket.pause();
    const refuse = (status: string, why: string, extra: { status?: string } = {}) => {
      throttle.warn(`refused ${why}`, 'phones.relay_refused', 'phone relay refused', { why, ...extra, remote: req.socket.remoteAddress });
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse('400 Bad Request', 'not-websocket');
    if (!server.originAllowed(req.headers.origin, req.headers.host)) return refuse('403 Forbidden', 'origin');
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (!protocols.includes('sip')) return refuse('400 Bad Request', 'subprotocol');
    // A WebSocket client waits for 101 before it sends a frame: bytes already here are a smuggled request.
    if (head.length > 0) return refuse('400 Bad Request', 'early-data');
    if (relays >= MAX_RELAYS) {
      throttle.warn('full', 'phones.relay_full', 'phone relay refused: too many open', { open: relays });
      return refuse('503 Service Unavailable', 'full');
    }
    relays++;
    const upstream = net.connect(target.port, target.host);
    let closed = false;
    let piping = false;
    const close = () => {
      if (closed) return;
      closed = true;
      relays--;
      clearTimeout(deadline);
      upstream.destroy();
      // A refusal written to the browser is flushed first (its socket is paused: nothing more is read).
      if (socket.writableEnded && !socket.destroyed) setTimeout(() => socket.destroy(), 1000).unref();
      else socket.destroy();
    };
    const deadline = setTimeout(() => {
      if (piping) return;
      refuse('504 Gateway Timeout', 'asterisk', { status: 'timeout' });
      close();
    }, ANSWER_TIMEOUT_MS);
    deadline.unref();
    upstream.setNoDelay(true);
    let answer = Buffer.alloc(0);
    const onAnswer = (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      const end = answer.indexOf('\r\n\r\n');
      if (end < 0) {
        if (answer.length > MAX_ANSWER_BYTES) {
          refuse('502 Bad Gateway', 'asterisk', { status: 'oversized' });
          close();
        }
        return;
      }
      upstream.off('data', onAnswer);
      upstream.pause();
      const verdict = judgeAnswer(answer.subarray(0, end).toString('latin1'));
      if (!verdict.ok) {
        refuse('502 Bad Gateway', 'asterisk', { status: verdict.status });
        close();
        return;
      }
      piping = true;
      clearTimeout(deadline);
      // Asterisk's 101 and any frames that came with it, then both ways.
      socket.write(answer);
      upstream.pipe(socket);
      socket.pipe(upstream);
      upstream.resume();
      socket.resume();
      emit(log, 'info', 'phones.relay_open', 'phone relay open', { remote: req.socket.remoteAddress });
    };
    upstream.once('connect', () => {
      upstream.write(relayRequest(req, target));
      upstream.on('data', onAnswer);
    });
    upstream.on('error', (err) => {
      emit(log, 'warn', 'phones.relay_error', 'phone relay: Asterisk not reachable', { error: err.message, target: `${target.host}:${target.port}` });
      if (!closed && !piping && socket.writable) socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      close();
    });
    upstream.on('close', close);
    socket.on('close', close);
    socket.on('error', close);
  });
}
