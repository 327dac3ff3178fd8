/**
 * The HTTP listener's doors (404, 405, bearer token, a throwing handler, oversized headers) and the
 * health routes: /healthz, /readyz naming each failing check, /metrics in Prometheus text format; and
 * the store's writability check against a store whose directory became read-only.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { CallbackRequest } from '../../src/core/policy';
import { addHealthRoutes, readiness, type Check } from '../../src/http/health';
import { ServiceMetrics } from '../../src/http/metrics';
import { HttpServer, TOKEN_COOKIE, hostName, tokenMatches, type HttpOptions } from '../../src/http/server';
import { SqliteStore } from '../../src/store/sqlite';
import { waitFor } from '../../testkit/wait';
import { captureLog as logger } from '../../testkit/log';


const servers: HttpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(token = '', checks?: { ari: Check; lease: Check; store: Check }, extra: Partial<HttpOptions> = {}) {
  const { log, lines } = logger();
  const server = new HttpServer({ bind: '127.0.0.1', port: 0, token, log, ...extra });
  const state = checks ?? { ari: { ok: true }, lease: { ok: true }, store: { ok: true } };
  const metrics = new ServiceMetrics({ pendingByState: () => ({ WAITING: 3 }), version: '1.2.3' }, { defaultMetrics: false });
  addHealthRoutes(server, { ari: () => state.ari, lease: () => state.lease, store: () => state.store }, metrics);
  server.route({ path: '/boom', handle: () => { throw new Error('kaput'); } });
  server.route({ path: '/boom-async', handle: async () => { throw new Error('kaput later'); } });
  // A page request that waits until the test lets it finish (budgets).
  server.route({ path: '/page', handle: (_req, res) => void res.end('ok') });
  const held: Array<() => void> = [];
  server.route({ path: '/slow', handle: (_req, res) => void held.push(() => res.end('done')) });
  server.route({ path: '/form', methods: ['POST'], handle: (req, res) => void req.resume().on('end', () => res.end('read')) });
  servers.push(server);
  const port = await server.listen();
  return { base: `http://127.0.0.1:${port}`, lines, state, port, server, held };
}

/** One raw HTTP exchange: what the server answered until it closed the connection (or `waitMs` passed). */
function raw(port: number, request: string, waitMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(request));
    let data = '';
    const timer = setTimeout(() => sock.destroy(), waitMs);
    sock.setEncoding('utf8').on('data', (c: string) => (data += c));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    sock.on('error', () => undefined);
  });
}

/** A GET with any Host header (fetch does not let a test set Host). */
function getWithHost(port: number, p: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: { ...headers, host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

describe('HttpServer', () => {
  it('answers /healthz, 404 for unknown paths and 405 with Allow for other methods', async () => {
    const { base } = await start();
    const h = await fetch(`${base}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/readyz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('with a token: /readyz and /metrics need it (401 and a log line otherwise), /healthz does not', async () => {
    const { base, lines } = await start('s3cret-token');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/readyz`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${base}/readyz`, { headers: { authorization: 's3cret-token' } })).status).toBe(401);
    expect((await fetch(`${base}/readyz`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'bearer s3cret-token' } })).status).toBe(200);
    // Logged once per path in a 10 s window (a flood of refusals is counted, not written line by line).
    expect(lines.filter((l) => l.event === 'http.unauthorized').map((l) => l.path)).toEqual(['/metrics', '/readyz']);
    expect(JSON.stringify(lines)).not.toContain('s3cret-token');
  });

  it('a throwing handler answers 500, is logged, and the listener keeps serving', async () => {
    const { base, lines } = await start();
    expect((await fetch(`${base}/boom`)).status).toBe(500);
    expect((await fetch(`${base}/boom-async`)).status).toBe(500);
    expect(lines.filter((l) => l.event === 'http.handler_failed').map((l) => l.error)).toEqual(['kaput', 'kaput later']);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('refuses oversized headers with 431 and stays up', async () => {
    const { base, port } = await start();
    const reply = await new Promise<string>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write(`GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
      let data = '';
      sock.setEncoding('utf8').on('data', (c: string) => (data += c));
      sock.on('close', () => resolve(data));
      sock.on('error', () => resolve(data));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 431/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('a port in use is an error from listen(), not a crash', async () => {
    const { port } = await start();
    const { log } = logger();
    const second = new HttpServer({ bind: '127.0.0.1', port, token: '', log });
    await expect(second.listen()).rejects.toThrow(/EADDRINUSE/);
  });

  it('tokenMatches: empty token means open; otherwise only the exact bearer value', async () => {
    expect(tokenMatches(undefined, '')).toBe(true);
    expect(tokenMatches(undefined, 't')).toBe(false);
    expect(tokenMatches('Bearer t', 't')).toBe(true);
    expect(tokenMatches('Bearer tt', 't')).toBe(false);
    // Basic auth: any user, the token as password ('t:t', 'alice:t'); a wrong password or no colon fails.
    expect(tokenMatches('Basic dDp0', 't')).toBe(true);
    expect(tokenMatches(`Basic ${Buffer.from('alice:t').toString('base64')}`, 't')).toBe(true);
    expect(tokenMatches(`Basic ${Buffer.from('t:x').toString('base64')}`, 't')).toBe(false);
    expect(tokenMatches(`Basic ${Buffer.from('t').toString('base64')}`, 't')).toBe(false);
  });
});

describe('the listener under attack (issue 19)', () => {
  it('DNS rebinding: a Host that is not allowed gets 421 on every route, even with the token; loopback names, the bind address and the listener\'s IP pass', async () => {
    const { port, lines } = await start('tok', undefined, { allowedHosts: ['cc.example.com'] });
    const auth = { authorization: 'Bearer tok' };
    for (const p of ['/healthz', '/readyz', '/metrics']) {
      const r = await getWithHost(port, p, `rebound.attacker.example:${port}`, auth);
      expect({ p, status: r.status }).toEqual({ p, status: 421 });
      expect(r.body).toContain('http.allowedHosts');
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, 'cc.example.com', `CC.Example.com:${port}`]) {
      expect({ host, status: (await getWithHost(port, '/readyz', host, auth)).status }).toEqual({ host, status: 200 });
    }
    expect(await raw(port, 'GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n')).toMatch(/^HTTP\/1\.1 421/);
    expect(lines.some((l) => l.event === 'http.refused' && l.reason === 'host')).toBe(true);
    expect(hostName('[::1]:9464')).toBe('::1');
    expect(hostName('a b')).toBeUndefined();
  });

  it('no token configured: the generated one is exchanged once for an HttpOnly SameSite=Strict cookie; probes stay open', async () => {
    const { port, base } = await start('generated-tok', undefined, { probesOpen: true });
    expect((await fetch(`${base}/page`)).status).toBe(401);
    const refused = await fetch(`${base}/page?token=wrong`);
    expect(refused.status).toBe(401);
    // No basic-auth prompt: the way in is the printed URL.
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    const login = await getWithHost(port, '/page?token=generated-tok&x=1', `127.0.0.1:${port}`);
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/page?x=1');
    expect(String(login.headers['set-cookie'])).toBe(`${TOKEN_COOKIE}=generated-tok; Path=/; HttpOnly; SameSite=Strict`);
    expect((await fetch(`${base}/page`, { headers: { cookie: `other=1; ${TOKEN_COOKIE}=generated-tok` } })).status).toBe(200);
    expect((await fetch(`${base}/page`, { headers: { cookie: `${TOKEN_COOKIE}=guess` } })).status).toBe(401);
  });

  it('refused requests close the connection without reading the body; a Content-Length over the cap is refused before reading', async () => {
    const { port } = await start('tok');
    // 401 with a 50 MB chunked body on its way: the answer comes and the server closes while the client has
    // sent only 1 MB of it (before, the body was read in full to reach the next request of the connection).
    const refused = await new Promise<{ reply: string; closed: boolean }>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write(`POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`);
        sock.write(`${(1024 * 1024).toString(16)}\r\n`);
        sock.write(Buffer.alloc(1024 * 1024, 0x61));
        sock.write('\r\n');
      });
      let reply = '';
      sock.setEncoding('utf8').on('data', (c: string) => (reply += c));
      sock.on('error', () => undefined);
      sock.on('close', () => resolve({ reply, closed: true }));
    });
    expect(refused.reply).toMatch(/^HTTP\/1\.1 401/);
    expect(refused.reply).toMatch(/connection: close/i);
    // 10 GB announced, with the token: 413 before a byte of the body is read.
    const huge = await raw(port, `POST /form HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer tok\r\nContent-Length: ${10 * 1024 ** 3}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 413/);
    // A body within the cap is read and answered.
    const small = await raw(port, `POST /form HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer tok\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello`);
    expect(small).toMatch(/^HTTP\/1\.1 200[\s\S]*read$/);
  });

  it('separate budgets: page requests beyond theirs get 503 while /healthz and /readyz still answer', async () => {
    const { base, held } = await start('', undefined, { budgets: { page: 2 } });
    const a = fetch(`${base}/slow`);
    const b = fetch(`${base}/slow`);
    await waitFor('two page requests in progress', () => held.length === 2 || undefined, 5000);
    const c = await fetch(`${base}/slow`);
    expect(c.status).toBe(503);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    held.splice(0).forEach((f) => f());
    expect((await a).status).toBe(200);
    expect((await b).status).toBe(200);
  });

  it('trickling connections: at most maxIdleConnections are kept (the oldest is closed), the header deadline closes the rest, /healthz answers throughout', async () => {
    const { port, base, server } = await start('', undefined, { maxIdleConnections: 8, headersTimeoutMs: 1500 });
    const socks: net.Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < 40; i++) {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n'));
      s.on('error', () => undefined);
      s.resume().on('close', () => closedByServer++);
      socks.push(s);
    }
    await waitFor('the first connections to be closed', () => closedByServer >= 30 || undefined, 10000);
    expect(server.idleConnections).toBeLessThanOrEqual(8);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // The rest never finish their headers: the deadline closes them (checked every 250 ms, not every 30 s).
    await waitFor('every trickling connection to be closed', () => closedByServer === 40 || undefined, 10000);
    expect(server.refused.get('idle-evicted')).toBeGreaterThanOrEqual(30);
  });
});

describe('/readyz and /metrics', () => {
  it('is 503 naming each failing check, 200 when all pass', async () => {
    const { base, state } = await start('', { ari: { ok: false, detail: 'not connected to ARI' }, lease: { ok: false, detail: 'held by another instance' }, store: { ok: true } });
    let r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({
      ready: false,
      standby: false,
      checks: { ari: { ok: false, detail: 'not connected to ARI' }, lease: { ok: false, detail: 'held by another instance' }, store: { ok: true } },
    });
    state.ari = { ok: true };
    state.lease = { ok: true };
    r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { ready: boolean }).ready).toBe(true);
  });

  it('a throwing check counts as failed with its message', async () => {
    const r = await readiness({ ari: () => ({ ok: true }), lease: () => ({ ok: true }), store: () => { throw new Error('disk gone'); } });
    expect(r).toEqual({ ready: false, standby: false, checks: { ari: { ok: true }, lease: { ok: true }, store: { ok: false, detail: 'disk gone' } } });
  });

  it('says standby only while not ready: a stand-by that would be ready is simply ready', async () => {
    const waiting = { ari: () => ({ ok: false as const, detail: 'standing by' }), lease: () => ({ ok: true as const }), store: () => ({ ok: true as const }), standby: () => true };
    expect(await readiness(waiting)).toMatchObject({ ready: false, standby: true });
    expect(await readiness({ ...waiting, ari: () => ({ ok: true as const }) })).toMatchObject({ ready: true, standby: false });
  });

  it('/metrics is Prometheus text with the pending gauge read at scrape time', async () => {
    const { base } = await start();
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    expect(text).toMatch(/^# HELP considerate_callback_/m);
    expect(text).toContain('considerate_callback_requests_pending{state="WAITING"} 3');
    expect(text).toContain('considerate_callback_requests_pending{state="GRACE"} 0');
  });
});

describe('SqliteStore.writable', () => {
  it('is ok for an open store, and names the reason once it is closed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-writable-'));
    const store = SqliteStore.open<CallbackRequest>(path.join(dir, 'cb.db'));
    expect(await store.writable()).toEqual({ ok: true });
    await store.close();
    expect(await store.writable()).toEqual({ ok: false, reason: 'store closed' });
  });

  it('fails while another connection holds the write lock (and takes nothing itself)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-writable-'));
    const file = path.join(dir, 'cb.db');
    const store = SqliteStore.open<CallbackRequest>(file);
    const other = SqliteStore.open<CallbackRequest>(file);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const db = (other as any).db.db as { exec(sql: string): void; pragma(s: string): unknown };
    db.exec('BEGIN IMMEDIATE');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    ((store as any).db.db as { pragma(s: string): unknown }).pragma('busy_timeout = 0');
    const r = await store.writable();
    expect(r.ok).toBe(false);
    db.exec('ROLLBACK');
    expect(await store.writable()).toEqual({ ok: true });
    await store.close();
    await other.close();
  });

  it('fails when the store file vanished under the running service (a removed or unmounted directory)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-writable-'));
    const store = SqliteStore.open<CallbackRequest>(path.join(dir, 'cb.db'));
    fs.rmSync(dir, { recursive: true, force: true });
    const r = await store.writable();
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/ENOENT/);
    await store.close();
  });
});
