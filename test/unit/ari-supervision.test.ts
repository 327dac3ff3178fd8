/**
 * ARI supervision never stalls: every step of connecting is bounded, a silent server is abandoned, logged
 * and retried, and no error (EMFILE included) ends the retry loop. A real TCP server that accepts and
 * never answers stands for the wedged PBX; injected clients stand for the later steps. The same against
 * the real Asterisk behind a misbehaving proxy: test/integration/ari-supervision.test.ts.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { AriClient, AriConnection, StepTimeout, within } from '../../src/telephony/ari/connection';
import { createLogger } from '../../src/logging/log';
import { waitFor } from '../../testkit/wait';

class FakeClient extends EventEmitter {
  stopped = 0;
  constructor(private readonly startHangs = false) {
    super();
  }
  private vars = new Map<string, string>();
  asterisk = {
    getGlobalVar: async (o: { variable: string }) => ({ value: this.vars.get(o.variable) ?? '' }),
    setGlobalVar: async (o: { variable: string; value: string }) => void this.vars.set(o.variable, o.value),
  };
  start(): Promise<void> {
    if (this.startHangs) return new Promise(() => undefined);
    this.emit('WebSocketConnected');
    return Promise.resolve();
  }
  stop(): void {
    this.stopped++;
  }
  ping(): void {}
}

function logSink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))));
  return { lines, log: createLogger({ format: 'json', stream, level: 'debug' }) };
}

const conns: AriConnection[] = [];
afterEach(async () => {
  await Promise.all(conns.splice(0).map((c) => c.stop()));
});

function make(connect: (() => Promise<AriClient>) | undefined, url = 'http://127.0.0.1:1', extra: object = {}) {
  const { lines, log } = logSink();
  const conn = new AriConnection({ url, username: 'u', password: 'p', app: 'app', log, reconnectMaxMs: 30, stepTimeoutMs: 250, connect, ...extra });
  conns.push(conn);
  return { conn, lines };
}

describe('ARI supervision', () => {
  it('a server that accepts TCP and never answers: each attempt is abandoned at the step timeout, logged, retried', async () => {
    const held: net.Socket[] = [];
    const server = net.createServer((s) => held.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const { conn, lines } = make(undefined, `http://127.0.0.1:${port}`);
      conn.start();
      await waitFor('two timed-out attempts', () => lines.filter((l) => l.event === 'ari.timeout').length >= 2, 10000, 20);
      const timeouts = lines.filter((l) => l.event === 'ari.timeout');
      expect(timeouts[0]).toMatchObject({ step: 'connect', timeoutMs: 250, attempt: 1 });
      expect(timeouts[1]).toMatchObject({ step: 'connect', attempt: 2 });
      expect(held.length).toBeGreaterThanOrEqual(2);
      expect(conn.connected).toBe(false);
    } finally {
      for (const s of held) s.destroy();
      server.close();
    }
  });

  it('connect hangs, then start() never completes (no WebSocket upgrade), then the PBX answers: connected', async () => {
    let n = 0;
    const clients: FakeClient[] = [];
    const { conn, lines } = make(() => {
      n++;
      if (n === 1) return new Promise(() => undefined);
      const c = new FakeClient(n === 2);
      clients.push(c);
      return Promise.resolve(c as unknown as AriClient);
    });
    conn.start();
    await conn.waitConnected(10000);
    expect(lines.filter((l) => l.event === 'ari.timeout').map((l) => l.step)).toEqual(['connect', 'start app']);
    // The client whose upgrade never came was given up, not left waiting.
    expect(clients[0].stopped).toBe(1);
    expect(lines.filter((l) => l.event === 'ari.connected')).toHaveLength(1);
  });

  it('the lease calls are bounded too', async () => {
    const { conn, lines } = make(
      () => Promise.resolve(new FakeClient() as unknown as AriClient),
      undefined,
      { lease: { instanceId: 'me', ttlMs: 3000 }, stepTimeoutMs: 1000 }, // acquire itself waits 250 ms to settle
    );
    // The lease goes through the lean REST client: its first read never answers (a wedged PBX), later ones do.
    const vars = new Map<string, string>();
    let reads = 0;
    Object.assign(conn.rest, {
      globals: {
        getGlobalVar: (o: { variable: string }) => (++reads === 1 ? new Promise(() => undefined) : Promise.resolve({ value: vars.get(o.variable) ?? '' })),
        setGlobalVar: async (o: { variable: string; value: string }) => void vars.set(o.variable, o.value),
      },
    });
    conn.start();
    await conn.waitConnected(10000);
    expect(lines.filter((l) => l.event === 'ari.timeout').map((l) => l.step)).toEqual(['lease acquire']);
  });

  it('EMFILE (thrown at once or rejected) never ends the retry loop', async () => {
    let n = 0;
    const emfile = () => Object.assign(new Error('connect EMFILE 127.0.0.1:8088 - Local (undefined:undefined)'), { code: 'EMFILE' });
    const { conn, lines } = make(() => {
      n++;
      if (n <= 3) throw emfile();
      if (n <= 6) return Promise.reject(emfile());
      return Promise.resolve(new FakeClient() as unknown as AriClient);
    });
    conn.start();
    await conn.waitConnected(10000);
    const failures = lines.filter((l) => l.event === 'ari.connect_failed' && l.auth === false);
    expect(failures).toHaveLength(6);
    expect(String(failures[0].error)).toContain('EMFILE');
  });

  it('within(): a late value goes to the late handler, an early one resolves', async () => {
    const late: number[] = [];
    let resolveLate!: (v: number) => void;
    const p = within(new Promise<number>((r) => (resolveLate = r)), 20, 'x', (v) => late.push(v));
    await expect(p).rejects.toBeInstanceOf(StepTimeout);
    resolveLate(7);
    await new Promise((r) => setImmediate(r));
    expect(late).toEqual([7]);
    await expect(within(Promise.resolve(1), 1000, 'y')).resolves.toBe(1);
  });
});
