/**
 * ARI supervision against the real Asterisk behind a misbehaving proxy: first the proxy accepts TCP and
 * never answers, then it answers HTTP (the API description, the lease) but never upgrades the WebSocket,
 * then it passes everything. The service's connection logs an `ari.timeout` for each silent step,
 * retries, and connects as soon as the path is clear.
 */
import http from 'node:http';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { AriConnection } from '../../src/telephony/ari/connection';
import { createLogger } from '../../src/logging/log';
import { ARI, describePbx, sleep, waitFor } from './harness';

type Mode = 'blackhole' | 'no-upgrade' | 'pass';

describePbx('ARI supervision: a PBX that accepts and never answers, then never upgrades, then answers', () => {
  it('logs a timeout per silent step, retries, and connects once the PBX answers', async () => {
    const target = new URL(ARI.url);
    let mode: Mode = 'blackhole';
    const held: net.Socket[] = [];
    const upstream = new http.Agent({ keepAlive: false });
    const proxy = http.createServer((req, res) => {
      const up = http.request(
        { agent: upstream, host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    proxy.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (mode !== 'pass') {
        held.push(socket); // the WebSocket upgrade is never answered
        return;
      }
      const up = net.connect(Number(target.port), target.hostname, () => {
        up.write(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${String(v)}`).join('\r\n')}\r\n\r\n`);
        if (head.length) up.write(head);
        up.pipe(socket).pipe(up);
      });
      up.on('error', () => socket.destroy());
      socket.on('error', () => up.destroy());
    });
    const all: net.Socket[] = [];
    const front = net.createServer((socket) => {
      all.push(socket);
      if (mode === 'blackhole') held.push(socket);
      else proxy.emit('connection', socket);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(front.address() as net.AddressInfo).port}`;

    const lines: Array<Record<string, unknown>> = [];
    const stream = new PassThrough();
    stream.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))));
    const conn = new AriConnection({
      url,
      username: ARI.username,
      password: ARI.password,
      app: `cc-supervision-${process.pid}`,
      log: createLogger({ format: 'json', stream, level: 'debug' }),
      reconnectMaxMs: 200,
      stepTimeoutMs: 1500,
      lease: { instanceId: `supervision-${process.pid}`, ttlMs: 3000 },
    });
    try {
      conn.start();
      await waitFor('a timed-out connect', () => lines.some((l) => l.event === 'ari.timeout' && l.step === 'connect'), 20000);
      await waitFor('a retry that times out too', () => lines.filter((l) => l.event === 'ari.timeout').length >= 2, 20000);
      expect(conn.connected).toBe(false);

      mode = 'no-upgrade';
      await waitFor('a timed-out WebSocket upgrade', () => lines.some((l) => l.event === 'ari.timeout' && l.step === 'start app'), 30000);
      expect(conn.connected).toBe(false);

      mode = 'pass';
      await conn.waitConnected(30000);
      expect(lines.filter((l) => l.event === 'ari.connected')).toHaveLength(1);
      const steps = [...new Set(lines.filter((l) => l.event === 'ari.timeout').map((l) => l.step))];
      expect(steps).toEqual(expect.arrayContaining(['connect', 'start app']));
    } finally {
      await conn.stop();
      // The abandoned attempts' requests fail now; let ari-client's callbacks run while the test is alive.
      for (const s of held) s.destroy();
      await sleep(1000);
      for (const s of all) s.destroy();
      front.close();
      proxy.closeAllConnections();
      proxy.close();
      upstream.destroy();
    }
  }, 120000);
});
