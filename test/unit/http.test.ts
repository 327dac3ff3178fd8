/**
 * The HTTP listener's doors (404, 405, bearer token, a throwing handler, oversized headers) and the
 * health routes: /healthz, /readyz naming each failing check, /metrics in Prometheus text format; and
 * the store's writability check against a store whose directory became read-only.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { CallbackRequest } from '../../src/core/policy';
import { addHealthRoutes, readiness, type Check } from '../../src/http/health';
import { ServiceMetrics } from '../../src/http/metrics';
import { HttpServer, tokenMatches } from '../../src/http/server';
import { createLogger } from '../../src/logging/log';
import { SqliteStore } from '../../src/store/sqlite';

function logger() {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.setEncoding('utf8').on('data', (c: string) => c.split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
  return { log: createLogger({ format: 'json', stream, level: 'debug' }), lines };
}

const servers: HttpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(token = '', checks?: { ari: Check; lease: Check; store: Check }) {
  const { log, lines } = logger();
  const server = new HttpServer({ bind: '127.0.0.1', port: 0, token, log });
  const state = checks ?? { ari: { ok: true }, lease: { ok: true }, store: { ok: true } };
  const metrics = new ServiceMetrics({ pendingByState: () => ({ WAITING: 3 }), version: '1.2.3' }, { defaultMetrics: false });
  addHealthRoutes(server, { ari: () => state.ari, lease: () => state.lease, store: () => state.store }, metrics);
  server.route({ path: '/boom', handle: () => { throw new Error('kaput'); } });
  server.route({ path: '/boom-async', handle: async () => { throw new Error('kaput later'); } });
  servers.push(server);
  const port = await server.listen();
  return { base: `http://127.0.0.1:${port}`, lines, state, port };
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
    expect(lines.filter((l) => l.event === 'http.unauthorized')).toHaveLength(3);
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
      const sock = net.connect(port, '127.0.0.1', () => sock.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
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

describe('/readyz and /metrics', () => {
  it('is 503 naming each failing check, 200 when all pass', async () => {
    const { base, state } = await start('', { ari: { ok: false, detail: 'not connected to ARI' }, lease: { ok: false, detail: 'held by another instance' }, store: { ok: true } });
    let r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({
      ready: false,
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
    expect(r).toEqual({ ready: false, checks: { ari: { ok: true }, lease: { ok: true }, store: { ok: false, detail: 'disk gone' } } });
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
