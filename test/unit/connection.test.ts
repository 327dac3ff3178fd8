import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { AriClient, AriConnection } from '../../src/telephony/ari/connection';
import { createLogger } from '../../src/logging/log';

/** A stand-in for ari-client's Client: an EventEmitter that "connects" at once. */
class FakeClient extends EventEmitter {
  started = 0;
  stopped = 0;
  async start(): Promise<void> {
    this.started++;
    this.emit('WebSocketConnected');
  }
  stop(): void {
    this.stopped++;
  }
  ping(): void {}
}

const opened: AriConnection[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.stop()));
});

function setup(connect: () => Promise<FakeClient>, url = 'http://127.0.0.1:1', extra: object = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))));
  const log = createLogger({ format: 'json', stream, level: 'debug' });
  const conn = new AriConnection({
    url,
    username: 'u',
    password: 'p',
    app: 'app',
    log,
    reconnectMaxMs: 20,
    connect: connect as unknown as (u: string, n: string, p: string) => Promise<AriClient>,
    ...extra,
  });
  opened.push(conn);
  return { conn, lines };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('AriConnection', () => {
  it('a listener that throws (or rejects) cannot stop other listeners or later events', async () => {
    const client = new FakeClient();
    const { conn, lines } = setup(async () => client);
    const seen: string[] = [];
    conn.onAri('StasisStart', () => {
      throw new Error('boom');
    });
    conn.onAri('StasisStart', async () => {
      throw new Error('async boom');
    });
    conn.onAri('StasisStart', (e: { n: string }) => seen.push(e.n));
    conn.start();
    await conn.waitConnected(1000);
    client.emit('StasisStart', { n: 'first' });
    client.emit('StasisStart', { n: 'second' });
    await tick();
    expect(seen).toEqual(['first', 'second']);
    expect(lines.filter((l) => l.message === 'ARI event handler threw')).toHaveLength(2);
    expect(lines.filter((l) => l.message === 'ARI event handler failed')).toHaveLength(2);
    expect(lines.find((l) => l.message === 'ARI event handler threw')).toMatchObject({ event: 'StasisStart', error: 'boom' });
    await conn.stop();
  });

  it('keeps trying to connect, without a retry limit', async () => {
    let calls = 0;
    const client = new FakeClient();
    const { conn, lines } = setup(async () => {
      calls++;
      if (calls < 25) throw new Error('connect ECONNREFUSED 127.0.0.1:8088');
      return client;
    });
    conn.start();
    await conn.waitConnected(5000);
    expect(calls).toBe(25);
    expect(lines.filter((l) => l.event === 'ari.connect_failed' && l.auth === false)).toHaveLength(24);
    await conn.stop();
  });

  it('an outage at start is one ari.unavailable line (not one per attempt), reminded while it lasts, ended by one ari.connected', async () => {
    let calls = 0;
    const clock = { t: 1_000_000 };
    const client = new FakeClient();
    const { conn, lines } = setup(
      async () => {
        calls++;
        clock.t += 10_000; // each attempt "takes" 10 s of wall time
        if (calls < 40) throw new Error('connect ECONNREFUSED 127.0.0.1:8088');
        return client;
      },
      undefined,
      { reminderMs: 100_000, now: () => clock.t },
    );
    conn.start();
    await conn.waitConnected(10000);
    const warnings = lines.filter((l) => l.level === 'warn');
    const down = warnings.filter((l) => l.event === 'ari.unavailable' && l.reminder === false);
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ auth: false, attempts: 1, error: 'connect ECONNREFUSED 127.0.0.1:8088' });
    // 39 failed attempts, 390 s: a reminder every 100 s, no more.
    const reminders = warnings.filter((l) => l.event === 'ari.unavailable' && l.reminder === true);
    expect(reminders.map((l) => l.attempts)).toEqual([11, 21, 31]);
    // Nothing else at warn level: the attempts are debug lines.
    expect(warnings.filter((l) => l.event !== 'ari.unavailable')).toEqual([]);
    expect(lines.filter((l) => l.event === 'ari.connect_failed' && l.level === 'debug')).toHaveLength(39);
    const up = lines.filter((l) => l.event === 'ari.connected');
    expect(up).toHaveLength(1);
    expect(up[0]).toMatchObject({ attempts: 39, outageMs: 390_000 });
    await conn.stop();
  });

  it('a live connection that goes away: ari.disconnected is the one line, the failed reconnections add none; a credentials refusal is said once', async () => {
    const clients = [new FakeClient(), new FakeClient()];
    let n = 0;
    let calls = 0;
    const { conn, lines } = setup(async () => {
      calls++;
      if (calls === 1) return clients[n++];
      if (calls < 8) throw new Error('connect ECONNREFUSED 127.0.0.1:8088');
      if (calls < 12) throw new Error('401 Unauthorized');
      return clients[n++];
    });
    conn.start();
    await conn.waitConnected(1000);
    clients[0].emit('WebSocketReconnecting', new Error('socket closed'));
    clients[0].emit('WebSocketMaxRetries', new Error('gave up'));
    for (let i = 0; i < 1000 && (conn.client as unknown) !== clients[1]; i++) await tick(10);
    expect(conn.client).toBe(clients[1]);
    const warnings = lines.filter((l) => l.level === 'warn').map((l) => [l.event, l.auth]);
    // Down (the socket), the credentials refusal (a change of reason), nothing per attempt.
    expect(warnings).toEqual([
      ['ari.disconnected', undefined],
      ['ari.unavailable', true],
    ]);
    expect(lines.filter((l) => l.event === 'ari.connected').map((l) => l.attempts)).toEqual([undefined, 11]);
    await conn.stop();
  });

  it('builds a fresh client when ari-client gives up (WebSocketMaxRetries), and listeners move over', async () => {
    const clients = [new FakeClient(), new FakeClient()];
    let n = 0;
    const { conn } = setup(async () => clients[n++]);
    const seen: string[] = [];
    conn.onAri('StasisStart', (e: { n: string }) => seen.push(e.n));
    const ups: unknown[] = [];
    const downs: unknown[] = [];
    conn.on('connected', (c) => ups.push(c));
    conn.on('disconnected', (r) => downs.push(r));
    conn.start();
    await conn.waitConnected(1000);
    clients[0].emit('WebSocketReconnecting', new Error('socket closed'));
    clients[0].emit('WebSocketMaxRetries', new Error('gave up'));
    await tick(100);
    expect(conn.client).toBe(clients[1]);
    expect(ups.map((c) => clients.indexOf(c as FakeClient))).toEqual([0, 1]);
    expect(downs).toEqual(['websocket closed: socket closed']);
    clients[1].emit('StasisStart', { n: 'after' });
    // The old client is dead: its events are not ours any more to act upon, but the new one's are.
    expect(seen).toContain('after');
    await conn.stop();
  });

  it('asks Asterisk for only the event types it listens to, on every connection (through the lean REST client)', async () => {
    const calls: unknown[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        calls.push({ method: req.method, url: req.url, body: JSON.parse(body) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const client = new FakeClient();
    const { conn } = setup(async () => client, `http://127.0.0.1:${port}`);
    try {
      conn.onAri('StasisStart', () => undefined);
      conn.onAri('ChannelDtmfReceived', () => undefined);
      conn.onAri('StasisStart', () => undefined);
      conn.start();
      await conn.waitConnected(1000);
      // The filter's request is on its way (a busy machine may take a while): wait for it, then for anything after it.
      for (let i = 0; i < 400 && calls.length === 0; i++) await tick(5);
      await tick(20);
      expect(calls).toEqual([
        // RESTResponse: the answers of REST over the WebSocket pass Asterisk's filter too (ws-rest.ts)
        { method: 'PUT', url: '/ari/applications/app/eventFilter', body: { allowed: [{ type: 'StasisStart' }, { type: 'ChannelDtmfReceived' }, { type: 'RESTResponse' }] } },
      ]);
    } finally {
      // Also when it fails: a server left listening keeps jest from exiting (the CI run of 130c95b hung there).
      await conn.stop();
      server.closeAllConnections();
      server.close();
    }
  });

  it('attack: a flood of RESTResponse messages for no request is one warning per kind and a count, not a line each', async () => {
    const ws = new EventEmitter();
    const client = Object.assign(new FakeClient(), { _ws: Object.assign(ws, { listeners: ws.listeners.bind(ws) }) });
    const { conn, lines } = setup(async () => client);
    await conn.start();
    await tick();
    for (let i = 0; i < 300; i++) ws.emit('message', JSON.stringify({ type: 'RESTResponse', request_id: `nobody-${i}`, status_code: 204 }));
    const strays = () => lines.filter((l) => l.event === 'ari.stray_answer');
    expect(strays()).toEqual([expect.objectContaining({ level: 'warn', kind: 'unknown', why: expect.stringContaining('"nobody-0"') })]);
    await conn.stop();
    await tick();
    expect(strays()).toHaveLength(2);
    expect(strays()[1]).toMatchObject({ kind: 'unknown', suppressed: 299 });
  });

  it('reports the credentials problem in words', async () => {
    const { conn, lines } = setup(async () => {
      throw new Error('401 Unauthorized');
    });
    conn.start();
    await tick(50);
    await conn.stop();
    expect(lines.some((l) => l.event === 'ari.connect_failed' && l.auth === true)).toBe(true);
    expect(lines.filter((l) => l.event === 'ari.unavailable')).toMatchObject([{ auth: true, level: 'warn', message: expect.stringContaining('ari.password') }]);
  });
});
