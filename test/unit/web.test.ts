/**
 * The callbacks page's server side (src/http/web.ts) and the phones' WebSocket relay (src/http/phones.ts)
 * against a real engine on an in-memory store: the live stream (snapshot, then a change as it happens),
 * filters, cancel and snooze through the engine with their history, the CSRF and origin doors, the body
 * cap, the stream limit, basic auth with the listener's token, the explain dry run, and the relay that
 * forwards only the upgrade to Asterisk's /ws.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type CallbackRequest } from '../../src/core/policy';
import { defaultPolicyConfig } from '../../testkit/policy';
import { addPhoneRoutes, judgeAnswer, relayRequest } from '../../src/http/phones';
import { HttpServer } from '../../src/http/server';
import { CallbacksPage, MAX_BODY, parseFilter } from '../../src/http/web';
import { SqliteStore } from '../../src/store/sqlite';
import { engineWorld, specPolicy } from '../../testkit/engine';
import { waitFor } from '../../testkit/wait';
import { captureLog as logger } from '../../testkit/log';

const T0 = Date.parse('2026-03-23T08:30:00Z');
const CSRF = 'test-csrf-token';


const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-web-'));
fs.writeFileSync(path.join(staticDir, 'callbacks.html'), '<meta name="cc-csrf" content="{{csrf}}"><p>page</p>');
fs.writeFileSync(path.join(staticDir, 'callbacks.js'), 'console.log(1)');
fs.writeFileSync(path.join(staticDir, 'web.css'), 'body{}');
fs.writeFileSync(path.join(staticDir, 'phones.html'), '<p>phones</p>');

async function start(opts: { token?: string; maxStreams?: number; ariUrl?: string } = {}) {
  const now = { t: T0 };
  const { log, lines } = logger();
  const policy = specPolicy({ graceMs: 60_000 });
  const { engine, store } = await engineWorld({ log, policy, clock: () => now.t, telephony: false, started: false, pbxUp: false });
  const server = new HttpServer({ bind: '127.0.0.1', port: 0, token: opts.token ?? '', log });
  const page = new CallbacksPage({ engine, policy, log, staticDir, clock: () => now.t, csrfToken: CSRF, maxStreams: opts.maxStreams });
  page.register(server);
  if (opts.ariUrl) addPhoneRoutes(server, { ariUrl: opts.ariUrl, log, staticDir });
  const port = await server.listen();
  cleanups.push(async () => {
    page.close();
    await server.close();
    await (store as SqliteStore<CallbackRequest>).close();
  });
  const optIn = async (agent: string, prospect: string) => {
    const r = await engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect, language: 'en', channelId: 'c' });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    return r.requestId;
  };
  return { base: `http://127.0.0.1:${port}`, port, engine, store, now, lines, optIn };
}

const postJson = (base: string, p: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-cc-csrf': CSRF, ...headers }, body: JSON.stringify(body) });

/** Reads server-sent events from a stream until `until` says stop. */
function events(url: string, until: (evs: Array<{ event: string; data: unknown }>) => boolean, headers: Record<string, string> = {}) {
  return new Promise<Array<{ event: string; data: unknown }>>((resolve, reject) => {
    const got: Array<{ event: string; data: unknown }> = [];
    const req = http.get(url, { headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`status ${res.statusCode}`));
      }
      let buf = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) got.push({ event, data: JSON.parse(data) });
          if (until(got)) {
            req.destroy();
            return resolve(got);
          }
        }
      });
    });
    req.on('error', (err) => (err.message.includes('socket hang up') ? resolve(got) : reject(err)));
  });
}

describe('callbacks page', () => {
  it('serves the page with its CSRF token and a content security policy (no CDN can load)', async () => {
    const { base } = await start();
    const res = await fetch(`${base}/callbacks`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(`content="${CSRF}"`);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect((await fetch(`${base}/callbacks/app.js`)).headers.get('content-type')).toMatch(/javascript/);
  });

  it('streams a snapshot, then each change as the engine decides it (the line frees: GRACE with its end)', async () => {
    const { base, engine, now, optIn } = await start();
    const id = await optIn('PJSIP/1001', '2001');
    let snapshotSeen = false;
    const got = events(`${base}/callbacks/api/events`, (evs) => {
      snapshotSeen = evs.length > 0;
      return evs.some((e) => e.event === 'request');
    });
    // Once the snapshot has arrived, the line frees.
    await waitFor('the snapshot', () => snapshotSeen || undefined, 10000, 10);
    now.t += 10_000;
    await engine.deviceState('PJSIP/2001', { busy: false });
    const evs = await got;
    expect(evs[0].event).toBe('snapshot');
    expect((evs[0].data as Array<{ id: string; state: string }>).map((r) => [r.id, r.state])).toEqual([[id, 'WAITING']]);
    const change = evs.find((e) => e.event === 'request')!.data as { id: string; state: string; stage: number; grace: { until: string }; reason: string };
    expect(change).toMatchObject({ id, state: 'GRACE', stage: 1 });
    expect(Date.parse(change.grace.until)).toBe(T0 + 10_000 + 60_000);
    expect(change.reason).toMatch(/grace/);
  });

  it('filters by agent and state; an unknown state is a 400 that names it', async () => {
    const { base, optIn } = await start();
    await optIn('PJSIP/1001', '2001');
    const b = await optIn('PJSIP/1002', '2002');
    const only = (await (await fetch(`${base}/callbacks/api/requests?agent=PJSIP/1002&state=PENDING`)).json()) as Array<{ id: string }>;
    expect(only.map((r) => r.id)).toEqual([b]);
    expect(await (await fetch(`${base}/callbacks/api/requests?state=COMPLETED`)).json()).toEqual([]);
    const bad = await fetch(`${base}/callbacks/api/requests?state=NAPPING`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain('NAPPING');
    expect(parseFilter(new URL('http://x/?agent=PJSIP/1%26PJSIP/2'))).toHaveProperty('error');
  });

  it('cancel goes through the engine: CANCELLED with "cancelled by web" in the history; a second cancel is a 409', async () => {
    const { base, store, optIn, lines } = await start();
    const id = await optIn('PJSIP/1001', '2001');
    const res = await postJson(base, '/callbacks/api/cancel', { id });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, done: true, from: 'WAITING', state: 'CANCELLED' });
    expect((await store.get(id))!.request.state).toBe('CANCELLED');
    expect((await store.events(id)).at(-1)).toMatchObject({ to: 'CANCELLED', reason: expect.stringContaining('cancelled by web') });
    expect(lines.some((l) => l.event === 'web.cancel' && l.requestId === id)).toBe(true);
    const again = await postJson(base, '/callbacks/api/cancel', { id });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { note: string }).note).toContain('already CANCELLED');
    expect((await postJson(base, '/callbacks/api/cancel', { id: 'nope' })).status).toBe(404);
    expect((await postJson(base, '/callbacks/api/cancel', { id: '../x' })).status).toBe(400);
  });

  it('a finished request shows how far it got (its furthest stage in the history)', async () => {
    const { base, engine, now, optIn } = await start();
    const id = await optIn('PJSIP/1001', '2001');
    now.t += 1000;
    await engine.deviceState('PJSIP/2001', { busy: false });
    const body = (await (await postJson(base, '/callbacks/api/cancel', { id })).json()) as { request: { state: string; stage: number; reached: number } };
    expect(body.request).toMatchObject({ state: 'CANCELLED', stage: -1, reached: 1 });
  });

  it('snooze goes through the engine: one snooze counted, postponed by policy.snooze', async () => {
    const { base, store, optIn, now } = await start();
    const id = await optIn('PJSIP/1001', '2001');
    const res = await postJson(base, '/callbacks/api/snooze', { id });
    expect(res.status).toBe(200);
    const r = (await store.get(id))!.request;
    expect(r.snoozes).toBe(1);
    expect(r.notBefore).toBe(now.t + defaultPolicyConfig.snoozeMs);
    expect((await store.events(id)).at(-1)?.reason).toContain('snoozed by web');
  });

  it('refuses a POST without the CSRF header, from another origin, or not as JSON (403, nothing changes)', async () => {
    const { base, store, optIn, lines } = await start();
    const id = await optIn('PJSIP/1001', '2001');
    const attempts = [
      fetch(`${base}/callbacks/api/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id }) }),
      postJson(base, '/callbacks/api/cancel', { id }, { 'x-cc-csrf': 'guessed' }),
      postJson(base, '/callbacks/api/cancel', { id }, { origin: 'http://evil.example' }),
      postJson(base, '/callbacks/api/cancel', { id }, { origin: 'null' }),
      fetch(`${base}/callbacks/api/cancel`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-cc-csrf': CSRF }, body: JSON.stringify({ id }) }),
    ];
    for (const res of await Promise.all(attempts)) expect(res.status).toBe(403);
    expect((await store.get(id))!.request.state).toBe('WAITING');
    expect(lines.filter((l) => l.event === 'web.csrf_refused')).toHaveLength(5);
    // The page's own origin is fine.
    expect((await postJson(base, '/callbacks/api/cancel', { id }, { origin: base })).status).toBe(200);
    // GET cannot cancel.
    expect((await fetch(`${base}/callbacks/api/cancel?id=${id}`)).status).toBe(405);
  });

  it('refuses a body over the cap (413) and a body that is not a JSON object (400)', async () => {
    const { base } = await start();
    const big = await postJson(base, '/callbacks/api/explain', { timeline: 'x'.repeat(MAX_BODY) });
    expect(big.status).toBe(413);
    const arr = await fetch(`${base}/callbacks/api/explain`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-cc-csrf': CSRF }, body: '[1]' });
    expect(arr.status).toBe(400);
    const junk = await fetch(`${base}/callbacks/api/explain`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-cc-csrf': CSRF }, body: '{' });
    expect(junk.status).toBe(400);
  });

  it('explain runs the dry run with the live policy (grace 1m here) and names an unreadable phrase', async () => {
    const { base } = await start();
    const res = await postJson(base, '/callbacks/api/explain', { timeline: 'busy at 10:00, free at 10:10', date: '2026-03-10' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { text: string; firstRingLocal: string; state: string };
    expect(body.text).toContain('grace 1m');
    expect(body.firstRingLocal).toBe('2026-03-10 10:11:00');
    expect(body.state).toBe('COMPLETED');
    const bad = await postJson(base, '/callbacks/api/explain', { timeline: 'moon at 10:00' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain('moon at 10:00');
  });

  it('shows one request with the same text as `show`', async () => {
    const { base, optIn } = await start();
    const id = await optIn('PJSIP/1001', '2001');
    const body = (await (await fetch(`${base}/callbacks/api/request?id=${id}`)).json()) as { show: string; events: unknown[] };
    expect(body.show).toContain(`Callback ${id}: PJSIP/1001 → 2001`);
    expect(body.show).toContain('Next wake-up:');
    expect(body.events).toHaveLength(1);
  });

  it('limits open event streams (503 beyond the limit, a log line)', async () => {
    const { base, lines } = await start({ maxStreams: 1 });
    const first = events(`${base}/callbacks/api/events`, (evs) => evs.length >= 1);
    await first;
    const hold = http.get(`${base}/callbacks/api/events`);
    await new Promise((r) => hold.on('response', r));
    const second = await fetch(`${base}/callbacks/api/events`);
    expect(second.status).toBe(503);
    expect(lines.some((l) => l.event === 'web.streams_full')).toBe(true);
    hold.destroy();
  });

  it('with a token: the page asks for basic auth; the token as password opens it and names the user in the history', async () => {
    const { base, store, optIn } = await start({ token: 'tok' });
    const res = await fetch(`${base}/callbacks`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('Basic realm="considerate-callback"');
    const auth = { authorization: `Basic ${Buffer.from('alice:tok').toString('base64')}` };
    expect((await fetch(`${base}/callbacks`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${base}/callbacks/api/requests`, { headers: { authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` } })).status).toBe(401);
    const id = await optIn('PJSIP/1001', '2001');
    expect((await postJson(base, '/callbacks/api/cancel', { id }, auth)).status).toBe(200);
    expect((await store.events(id)).at(-1)?.reason).toContain('cancelled by web (alice)');
  });
});

describe('the browser files (web/)', () => {
  const ROOT = path.resolve(__dirname, '../..');
  it('load nothing from the internet: every script, style and link of the pages is a path on this server', async () => {
    for (const f of ['callbacks.html', 'phones.html']) {
      const html = fs.readFileSync(path.join(ROOT, 'web', f), 'utf8');
      const refs = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
      expect(refs.length).toBeGreaterThan(0);
      for (const r of refs) expect({ f, r, local: r.startsWith('/') || r.startsWith('#') }).toEqual({ f, r, local: true });
    }
    // The phones import JsSIP from node_modules (bundled at build time), not from a URL.
    expect(fs.readFileSync(path.join(ROOT, 'web/phones.js'), 'utf8')).toMatch(/^import JsSIP from 'jssip';$/m);
  });
});

describe('phones relay', () => {
  it('relays the WebSocket upgrade to Asterisk /ws (only the WebSocket headers) and bytes both ways', async () => {
    const seen: string[] = [];
    const fake = net.createServer((sock) => {
      let buf = '';
      sock.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        if (buf.includes('\r\n\r\n') && !seen.length) {
          seen.push(buf.slice(0, buf.indexOf('\r\n\r\n')));
          sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\nhello-from-asterisk');
        } else if (seen.length) {
          seen.push(c);
        }
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => fake.close(() => r())));
    const astPort = (fake.address() as net.AddressInfo).port;
    const { port } = await start({ ariUrl: `http://127.0.0.1:${astPort}` });
    const client = net.connect(port, '127.0.0.1');
    cleanups.push(() => void client.destroy());
    let reply = '';
    client.setEncoding('utf8').on('data', (c: string) => (reply += c));
    client.write(
      `GET /phones/ws HTTP/1.1\r\nHost: localhost:${port}\r\nOrigin: http://localhost:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: foo, sip\r\nCookie: secret=1\r\n\r\n',
    );
    while (!reply.includes('hello-from-asterisk')) await new Promise((r) => setTimeout(r, 10));
    client.write('REGISTER');
    while (seen.length < 2) await new Promise((r) => setTimeout(r, 10));
    expect(seen[0]).toMatch(/^GET \/ws HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+/);
    expect(seen[0]).toContain('Sec-WebSocket-Protocol: sip\r\n');
    expect(seen[0]).not.toContain('foo');
    expect(seen[0]).not.toMatch(/cookie/i);
    expect(seen[1]).toBe('REGISTER');
    expect(reply).toMatch(/^HTTP\/1\.1 101/);
  });

  it('refuses other upgrade paths (404), a non-WebSocket upgrade (400), and without the token (401)', async () => {
    const { port } = await start({ ariUrl: 'http://127.0.0.1:9', token: 'tok' });
    const raw = (req: string) =>
      new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => c.write(req));
        let got = '';
        c.setEncoding('utf8').on('data', (d: string) => (got += d));
        c.on('close', () => resolve(got));
      });
    expect(await raw('GET /ari/events HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')).toMatch(/^HTTP\/1\.1 404/);
    expect(await raw('GET /phones/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')).toMatch(/^HTTP\/1\.1 401/);
    expect(await raw('GET /phones/ws HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\nAuthorization: Bearer tok\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /phones/ws HTTP/1.1\r\nHost: rebound.example\r\nAuthorization: Bearer tok\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')).toMatch(/^HTTP\/1\.1 421/);
  });

  it('relayRequest strips CR/LF from header values', async () => {
    const req = { rawHeaders: ['Upgrade', 'websocket\r\nX-Evil: 1', 'Sec-WebSocket-Key', 'k'] } as unknown as http.IncomingMessage;
    expect(relayRequest(req, { host: 'h', port: 1 })).toBe('GET /ws HTTP/1.1\r\nHost: h:1\r\nSec-WebSocket-Protocol: sip\r\nUpgrade: websocketX-Evil: 1\r\nSec-WebSocket-Key: k\r\n\r\n');
  });

  it('judgeAnswer: only 101 with Upgrade: websocket and the sip subprotocol', () => {
    expect(judgeAnswer('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip')).toEqual({ ok: true, status: '101' });
    expect(judgeAnswer('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket')).toEqual({ ok: false, status: '101' });
    expect(judgeAnswer('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nSec-WebSocket-Protocol: sip')).toEqual({ ok: false, status: '101' });
    expect(judgeAnswer('HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Protocol: sip')).toEqual({ ok: false, status: '400' });
    expect(judgeAnswer('garbage')).toEqual({ ok: false, status: 'malformed' });
  });

  /** A fake Asterisk that refuses every upgrade with 400 and keeps the connection open (as Asterisk 22 does), recording all it receives. */
  async function refusingAsterisk() {
    const received: string[] = [];
    const fake = net.createServer((sock) => {
      sock.setEncoding('utf8').on('data', (c: string) => {
        received.push(c);
        if (c.includes('\r\n\r\n')) sock.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => fake.close(() => r())));
    return { port: (fake.address() as net.AddressInfo).port, received };
  }

  const UPGRADE = (port: number, extra = '') =>
    `GET /phones/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
  const SMUGGLED = 'GET /ari/asterisk/info?api_key=cc:secret HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

  function exchange(port: number, first: string, later?: string): Promise<string> {
    return new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.write(first);
        if (later) setTimeout(() => c.writable && c.write(later), 200);
      });
      let got = '';
      c.setEncoding('utf8').on('data', (d: string) => (got += d));
      c.on('error', () => undefined);
      c.on('close', () => resolve(got));
    });
  }

  it('a refused upgrade never lets a following request through to Asterisk (request smuggling into ARI)', async () => {
    const ast = await refusingAsterisk();
    const { port, lines } = await start({ ariUrl: `http://127.0.0.1:${ast.port}` });
    // 1. subprotocol nosuch, with a pipelined ARI request: refused here; Asterisk sees nothing.
    expect(await exchange(port, UPGRADE(port, 'Sec-WebSocket-Protocol: nosuch\r\n') + SMUGGLED)).toMatch(/^HTTP\/1\.1 400/);
    // 2. sip, but with the ARI request in the same packet (bytes after the headers): refused here.
    expect(await exchange(port, UPGRADE(port, 'Sec-WebSocket-Protocol: sip\r\n') + SMUGGLED)).toMatch(/^HTTP\/1\.1 400/);
    expect(ast.received).toEqual([]);
    // 3. sip, Asterisk refuses (400, connection left open), the ARI request follows later: 502, both sides closed.
    const reply = await exchange(port, UPGRADE(port, 'Sec-WebSocket-Protocol: sip\r\n'), SMUGGLED);
    expect(reply).toMatch(/^HTTP\/1\.1 502/);
    expect(reply).not.toContain('400');
    const seen = ast.received.join('');
    expect(seen.match(/^GET /gm)).toHaveLength(1);
    expect(seen).toMatch(/^GET \/ws HTTP\/1\.1/);
    expect(seen).not.toContain('/ari/');
    expect(lines.filter((l) => l.event === 'phones.relay_refused').map((l) => [l.why, l.status ?? null])).toEqual([
      ['subprotocol', null],
      ['early-data', null],
      ['asterisk', '400'],
    ]);
  });

  it('the relay refuses another Origin (403) and a missing one; without web.phones there is no relay (404)', async () => {
    const ast = await refusingAsterisk();
    const { port } = await start({ ariUrl: `http://127.0.0.1:${ast.port}` });
    const evil = UPGRADE(port, 'Sec-WebSocket-Protocol: sip\r\n').replace(`Origin: http://127.0.0.1:${port}`, 'Origin: http://evil.example');
    expect(await exchange(port, evil)).toMatch(/^HTTP\/1\.1 403/);
    const none = UPGRADE(port, 'Sec-WebSocket-Protocol: sip\r\n').replace(`Origin: http://127.0.0.1:${port}\r\n`, '');
    expect(await exchange(port, none)).toMatch(/^HTTP\/1\.1 403/);
    expect(ast.received).toEqual([]);
    const without = await start();
    expect(await exchange(without.port, UPGRADE(without.port, 'Sec-WebSocket-Protocol: sip\r\n'))).toMatch(/^HTTP\/1\.1 404/);
  });
});
