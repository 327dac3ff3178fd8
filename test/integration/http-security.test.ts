/**
 * The HTTP listener and the phones' relay attacked as an attacker would, against the running service and
 * the real Asterisk sandbox (issue 19; README, "Security"):
 *
 * - the worst open combination refuses to start;
 * - an open default: without http.token the page, its API and the stream are closed; the generated
 *   token's URL is printed once on stderr and exchanged for a cookie; probes stay open;
 * - DNS rebinding: a Host that is not allowed gets nothing, not even with the cookie;
 * - huge bodies: a 10 GB Content-Length is refused before reading, a refused request's body is not read;
 * - request smuggling through the relay: a refused upgrade followed by a pipelined ARI request never
 *   reaches Asterisk (checked on Asterisk's side: the global variable the smuggled request would set);
 * - floods: 1 000 trickling connections and 2 000 event-stream attempts while `/healthz` is probed with a
 *   1 s timeout (a liveness probe's), every probe answered; the service's memory stays bounded.
 */
import http from 'node:http';
import net from 'node:net';
import { SANDBOX } from '../../testkit/sandbox';
import { FAST_RECALL, optIn, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep, waitFor } from './harness';

const ARI_KEY = `${SANDBOX.ari.username}:${SANDBOX.ari.password}`;
const SMUGGLE_VAR = 'CC_I19_SMUGGLED';

interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function request(port: number, p: string, opts: { method?: string; host?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: p, method: opts.method ?? 'GET', agent: false, headers: { host: opts.host ?? `127.0.0.1:${port}`, ...opts.headers }, timeout: opts.timeoutMs ?? 10000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Raw bytes to the listener; what came back until the server closed (or `waitMs`). */
function exchange(port: number, first: string, later?: string, waitMs = 8000): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.write(first);
      if (later) setTimeout(() => c.writable && c.write(later), 300);
    });
    let got = '';
    const timer = setTimeout(() => c.destroy(), waitMs);
    c.setEncoding('utf8').on('data', (d: string) => (got += d));
    c.on('error', () => undefined);
    c.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

/** Asterisk's own view of a global variable, straight from its ARI (not through the app). */
async function asteriskVariable(name: string): Promise<string> {
  const res = await fetch(`${SANDBOX.ari.url}/ari/asterisk/variable?variable=${name}&api_key=${encodeURIComponent(ARI_KEY)}`);
  if (res.status === 404) return '';
  return ((await res.json()) as { value?: string }).value ?? '';
}

/** `/healthz` probed every 100 ms with a 1 s timeout until `until` resolves; every outcome. */
async function probeWhile(port: number, until: Promise<unknown>): Promise<string[]> {
  let done = false;
  void until.finally(() => (done = true));
  const outcomes: string[] = [];
  while (!done) {
    const started = Date.now();
    outcomes.push(
      await request(port, '/healthz', { timeoutMs: 1000 }).then(
        (r) => String(r.status),
        (err: Error) => err.message,
      ),
    );
    await sleep(Math.max(0, 100 - (Date.now() - started)));
  }
  return outcomes;
}

async function rss(port: number): Promise<number> {
  const text = (await request(port, '/metrics')).body;
  return Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1]);
}

describePbx('the HTTP listener and the phones relay under attack (real Asterisk)', () => {
  let ari: TestAri;
  let svc: ServiceProcess;
  let port: number;
  let token: string;
  let cookie: string;

  beforeAll(async () => {
    ari = await TestAri.connect();
    await TestPhone.attach(ari);
    await ari.hangupStale('cc-test-phone');
    // The defaults of http and web (no token), with the demo phones on.
    svc = await new ServiceProcess({ ...FAST_RECALL, http: { port: 0 }, web: { phones: true } }).start();
    port = Number((await svc.waitLog((l) => l.event === 'http.listening', 15000)).port);
  }, 60000);

  afterAll(async () => {
    await svc?.stop();
    simLine('NOT_INUSE');
    await ari?.hangupStale('cc-test-phone');
    await ari?.close();
  });

  it('an open default: no token configured → page, API and stream closed; the printed URL\'s token becomes an HttpOnly SameSite=Strict cookie', async () => {
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    await svc.waitLog((l) => l.event === 'http.token_generated', 5000);
    const printed = await waitFor('the page URL on stderr', () => /http:\/\/127\.0\.0\.1:(\d+)\/callbacks\?token=([\w-]+)/.exec(svc.stderr.join('')) ?? undefined, 5000);
    expect(Number(printed[1])).toBe(port);
    token = printed[2];
    // The JSON log never carries the token itself.
    expect(svc.logs.map((l) => JSON.stringify(l)).join('\n')).not.toContain(token);

    for (const p of ['/callbacks', '/callbacks/api/requests', `/callbacks/api/request?id=${id}`, '/callbacks/api/events', '/phones']) {
      const r = await request(port, p);
      expect({ p, status: r.status }).toEqual({ p, status: 401 });
      expect(r.body).not.toContain('2995');
    }
    const cancel = await request(port, '/callbacks/api/cancel', { method: 'POST', headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` }, body: JSON.stringify({ id }) });
    expect(cancel.status).toBe(401);
    expect(svc.list().find((r) => r.id === id)?.state).toBe('WAITING');
    // Probes stay open (no numbers in them).
    expect((await request(port, '/readyz')).status).toBe(200);
    expect((await request(port, '/metrics')).status).toBe(200);

    const login = await request(port, `/callbacks?token=${token}`);
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/callbacks');
    cookie = String(login.headers['set-cookie']).split(';')[0];
    expect(String(login.headers['set-cookie'])).toMatch(/; HttpOnly; SameSite=Strict$/);
    const list = await request(port, '/callbacks/api/requests', { headers: { cookie } });
    expect(list.status).toBe(200);
    expect(list.body).toContain('2995');
  }, 60000);

  it('the worst open combination (http.auth none off loopback) does not start: exit 2 and a security.warning that says so', async () => {
    const open = new ServiceProcess({ http: { port: 0, bind: '0.0.0.0', auth: 'none' } });
    await open.start(false);
    await waitFor('the refused service to exit', () => (!open.running ? true : undefined), 15000);
    expect(open.exitCode).toBe(2);
    expect(open.find((l) => l.event === 'security.warning' && l.refused === true).map((l) => l.warning)).toEqual([expect.stringContaining('http.bind 0.0.0.0')]);
    expect(open.find((l) => l.event === 'http.listening')).toEqual([]);
    await open.stop();
  }, 30000);

  it('DNS rebinding: a rebound name gets 421 and neither the numbers nor a cancel, even with the cookie', async () => {
    const id = String(svc.list().find((r) => r.state === 'WAITING')?.id);
    const page = await request(port, '/callbacks', { headers: { cookie } });
    const csrf = /name="cc-csrf" content="([^"]+)"/.exec(page.body)?.[1] ?? '';
    expect(csrf).not.toBe('');
    const rebound = `rebound.attacker.example:${port}`;
    const list = await request(port, '/callbacks/api/requests', { host: rebound, headers: { cookie } });
    expect(list.status).toBe(421);
    expect(list.body).not.toContain('2995');
    const cancel = await request(port, '/callbacks/api/cancel', {
      method: 'POST',
      host: rebound,
      headers: { cookie, 'x-cc-csrf': csrf, 'content-type': 'application/json', origin: `http://${rebound}` },
      body: JSON.stringify({ id }),
    });
    expect(cancel.status).toBe(421);
    expect(svc.list().find((r) => r.id === id)?.state).toBe('WAITING');
    // The service's log line comes over its stdout, which may arrive after the HTTP answer: wait for it.
    expect(await svc.waitLog((l) => l.event === 'http.refused' && l.reason === 'host', 5000)).toMatchObject({ status: 421 });
  });

  it('huge bodies: 10 GB announced is refused before reading (413); a refused request\'s 50 MB body is not read', async () => {
    const huge = await exchange(port, `POST /callbacks/api/cancel HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${cookie}\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1024 ** 3}\r\n\r\n{"id":`);
    expect(huge).toMatch(/^HTTP\/1\.1 413/);
    // Without credentials, 50 MB chunked on its way: 401 and closed after the first MB.
    const sent = await new Promise<{ reply: string; written: number }>((resolve) => {
      let written = 0;
      let reply = '';
      const c = net.connect(port, '127.0.0.1', () => {
        c.write(`POST /callbacks/api/cancel HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        const pump = () => {
          while (written < 50 * 1024 * 1024 && !c.destroyed) {
            c.write(`${chunk.length.toString(16)}\r\n`);
            written += chunk.length;
            if (!c.write(Buffer.concat([chunk, Buffer.from('\r\n')]))) return void c.once('drain', pump);
          }
        };
        pump();
      });
      c.setEncoding('utf8').on('data', (d: string) => (reply += d));
      c.on('error', () => undefined);
      c.on('close', () => resolve({ reply, written }));
    });
    // The service refused it (401, logged) and closed the connection long before the body was through; the
    // client may see the 401 or, still writing into a closed connection, a reset.
    expect(sent.reply === '' || /^HTTP\/1\.1 401/.test(sent.reply)).toBe(true);
    expect(sent.written).toBeLessThan(50 * 1024 * 1024);
  }, 60000);

  it('the relay: a refused upgrade followed by a pipelined ARI request never reaches Asterisk (checked on Asterisk\'s side)', async () => {
    const setVar = `POST /ari/asterisk/variable?variable=${SMUGGLE_VAR}&value=smuggled&api_key=${encodeURIComponent(ARI_KEY)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`;
    const info = `GET /ari/asterisk/info?api_key=${encodeURIComponent(ARI_KEY)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    // The check works: Asterisk's ARI sets and reads a variable when asked directly.
    const control = await fetch(`${SANDBOX.ari.url}/ari/asterisk/variable?variable=CC_I19_CONTROL&value=yes&api_key=${encodeURIComponent(ARI_KEY)}`, { method: 'POST' });
    expect(control.status).toBe(204);
    expect(await asteriskVariable('CC_I19_CONTROL')).toBe('yes');
    await fetch(`${SANDBOX.ari.url}/ari/asterisk/variable?variable=${SMUGGLE_VAR}&value=&api_key=${encodeURIComponent(ARI_KEY)}`, { method: 'POST' });

    const upgrade = (protocol: string, extra = '') =>
      `GET /phones/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nCookie: ${cookie}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra || 'Sec-WebSocket-Version: 13\r\n'}Sec-WebSocket-Protocol: ${protocol}\r\n\r\n`;
    const replies = [
      // The attack: subprotocol nosuch (Asterisk answers 400 and keeps the connection), ARI pipelined.
      await exchange(port, upgrade('nosuch') + setVar + info),
      await exchange(port, upgrade('nosuch'), setVar + info),
      // sip, but with the ARI requests in the same packet.
      await exchange(port, upgrade('sip') + setVar + info),
      // sip, a WebSocket version Asterisk refuses, ARI written after its refusal.
      await exchange(port, upgrade('sip', 'Sec-WebSocket-Version: 99\r\n'), setVar + info),
    ];
    for (const r of replies) {
      expect(r).toMatch(/^HTTP\/1\.1 (400|502)/);
      expect(r).not.toMatch(/build|system_name|HTTP\/1\.1 20[04]/);
    }
    expect(await asteriskVariable(SMUGGLE_VAR)).toBe('');
    // The log lines come over the service's stdout, possibly after the replies: wait for all three reasons.
    const reasons = () => new Set(svc.find((l) => l.event === 'phones.relay_refused').map((l) => String(l.why)));
    await waitFor('the three refusals logged', () => (['subprotocol', 'early-data', 'asterisk'].every((w) => reasons().has(w)) ? true : undefined), 5000).catch(() => undefined);
    expect([...reasons()]).toEqual(expect.arrayContaining(['subprotocol', 'early-data', 'asterisk']));

    // A genuine upgrade from the page's origin still reaches Asterisk's /ws and switches protocols.
    const ok = await new Promise<string>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.write(upgrade('sip')));
      let got = '';
      c.setEncoding('latin1').on('data', (d: string) => {
        got += d;
        if (got.includes('\r\n\r\n')) c.destroy();
      });
      c.on('error', () => undefined);
      c.on('close', () => resolve(got));
    });
    expect(ok).toMatch(/^HTTP\/1\.1 101/);
    expect(ok).toMatch(/sec-websocket-protocol: sip/i);
  }, 60000);

  it('1 000 trickling connections: /healthz answers within its 1 s probe timeout every time; memory stays bounded', async () => {
    const before = await rss(port);
    const socks: net.Socket[] = [];
    let closedByServer = 0;
    const flood = (async () => {
      for (let i = 0; i < 1000; i++) {
        const s = net.connect(port, '127.0.0.1', () => s.write(`GET /callbacks/api/requests HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`));
        s.on('error', () => undefined);
        s.resume().on('close', () => closedByServer++);
        socks.push(s);
        if (i % 100 === 99) await sleep(50);
      }
      // Trickle a header byte every 500 ms for 6 s, then stop.
      for (let t = 0; t < 12; t++) {
        for (const s of socks) if (!s.destroyed) s.write('X');
        await sleep(500);
      }
    })();
    const outcomes = await probeWhile(port, flood);
    for (const s of socks) s.destroy();
    expect(outcomes.length).toBeGreaterThanOrEqual(20);
    expect(outcomes.filter((o) => o !== '200')).toEqual([]);
    // The service closed the trickling connections itself (oldest idle ones first, then the header deadline).
    expect(closedByServer).toBeGreaterThan(800);
    expect((await rss(port)) - before).toBeLessThan(100 * 1024 * 1024);
  }, 90000);

  it('2 000 event-stream attempts with the cookie: at most the stream budget is open, the rest are refused and closed; /healthz answers every time', async () => {
    const before = await rss(port);
    const statuses = new Map<number, number>();
    const open: http.ClientRequest[] = [];
    const flood = (async () => {
      for (let batch = 0; batch < 20; batch++) {
        await Promise.all(
          Array.from(
            { length: 100 },
            () =>
              new Promise<void>((resolve) => {
                const req = http.get({ host: '127.0.0.1', port, path: '/callbacks/api/events', agent: false, headers: { cookie, host: `127.0.0.1:${port}` } }, (res) => {
                  statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
                  if (res.statusCode === 200) open.push(req);
                  else res.resume();
                  resolve();
                });
                req.on('error', () => resolve());
              }),
          ),
        );
      }
    })();
    const outcomes = await probeWhile(port, flood);
    for (const r of open) r.destroy();
    expect(outcomes.filter((o) => o !== '200')).toEqual([]);
    expect(statuses.get(200)).toBeLessThanOrEqual(32);
    expect((statuses.get(200) ?? 0) + (statuses.get(503) ?? 0)).toBe(2000);
    expect((await rss(port)) - before).toBeLessThan(100 * 1024 * 1024);
    // Refusals are logged aggregated, not one line each.
    expect(svc.find((l) => l.event === 'web.streams_full').length).toBeLessThan(10);
  }, 120000);
});
