/**
 * ARI REST over the app's WebSocket (src/telephony/ari/ws-rest.ts) against a socket that answers as told: the
 * requests as Asterisk 22 reads them, the answers as it sends them, and the attacks — an answer that never comes,
 * one that is malformed or huge, one for no request, the socket closing under a request — each a clear
 * AriRestError naming the operation, never a hang. Which requests take the socket and which stay on HTTP
 * (AriRest.call) is tested with an HTTP stand-in beside it. The real Asterisk: test/integration/ari-rest-ws.test.ts.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { AriRest, AriRestError } from '../../src/telephony/ari/rest';
import { WsRest, type RestSocket } from '../../src/telephony/ari/ws-rest';
import { leanEvents, type AriClient } from '../../src/telephony/ari/connection';

type Req = { type: string; request_id: string; method: string; uri: string; query_strings?: { name: string; value: string }[] };

/** A socket whose sent requests are recorded; `reply` answers the way the test says (or not at all). */
function socket(reply?: (req: Req) => Record<string, unknown> | undefined) {
  const sent: Req[] = [];
  let rest: WsRest | undefined;
  const s: RestSocket & { readyState: number } = {
    readyState: 1,
    send(data: string, cb?: (err?: Error) => void) {
      const req = JSON.parse(data) as Req;
      sent.push(req);
      cb?.();
      const answer = reply?.(req);
      if (answer && rest) {
        const r = rest;
        setImmediate(() => r.answer({ type: 'RESTResponse', request_id: req.request_id, ...answer }));
      }
    },
  };
  return { s, sent, bind: (w: WsRest) => (rest = w) };
}

const ok = (req: Req) => (req.uri === 'asterisk/ping' ? { status_code: 200, message_body: '{"ping":"pong"}' } : undefined);

async function attached(reply: (req: Req) => Record<string, unknown> | undefined, opts = {}) {
  const w = new WsRest(opts);
  const sock = socket((req) => ok(req) ?? reply(req));
  sock.bind(w);
  expect(await w.attach(sock.s, 1000)).toBe(true);
  return { w, ...sock };
}

describe('ARI REST over the WebSocket', () => {
  it('sends RESTRequest messages (method, uri, query strings) and resolves with the parsed body; no body = undefined', async () => {
    const { w, sent } = await attached((req) =>
      req.uri === 'deviceStates/PJSIP%2F1001' ? { status_code: 200, message_body: '{"name":"PJSIP/1001","state":"INUSE"}', content_type: 'application/json' } : { status_code: 204 },
    );
    await expect(w.request('GET', 'deviceStates/PJSIP%2F1001', {}, 'GET /deviceStates/PJSIP%2F1001')).resolves.toEqual({ name: 'PJSIP/1001', state: 'INUSE' });
    await expect(w.request('POST', 'channels/c1/play/p1', { media: 'sound:cc-offer', lang: 'de', skip: undefined }, 'POST /channels/c1/play/p1')).resolves.toBeUndefined();
    expect(sent.map(({ request_id: _, ...r }) => r)).toEqual([
      { type: 'RESTRequest', method: 'GET', uri: 'asterisk/ping' },
      { type: 'RESTRequest', method: 'GET', uri: 'deviceStates/PJSIP%2F1001' },
      {
        type: 'RESTRequest',
        method: 'POST',
        uri: 'channels/c1/play/p1',
        query_strings: [
          { name: 'media', value: 'sound:cc-offer' },
          { name: 'lang', value: 'de' },
        ],
      },
    ]);
    expect(new Set(sent.map((r) => r.request_id)).size).toBe(3);
    expect(w.inFlight).toBe(0);
  });

  it("rejects with Asterisk's status and message", async () => {
    const { w } = await attached(() => ({ status_code: 404, reason_phrase: 'Not Found', message_body: '{"message":"Channel not found"}' }));
    const err = (await w.request('DELETE', 'channels/gone', {}, 'DELETE /channels/gone').catch((e: unknown) => e)) as AriRestError;
    expect(err).toBeInstanceOf(AriRestError);
    expect(err.status).toBe(404);
    expect(err.operation).toBe('DELETE /channels/gone');
    expect(err.message).toBe('DELETE /channels/gone: 404 Channel not found');
  });

  it('attack: an answer that never comes rejects after the limit with a clear error; a late answer is reported as stray', async () => {
    const { w, sent } = await attached(() => undefined, { timeoutMs: 50 });
    const err = (await w.request('POST', 'channels/c1/answer', {}, 'POST /channels/c1/answer').catch((e: unknown) => e)) as AriRestError;
    expect(err).toBeInstanceOf(AriRestError);
    expect(err.status).toBe(0);
    expect(err.message).toBe('POST /channels/c1/answer: no answer within 50 ms on the ARI WebSocket');
    expect(w.inFlight).toBe(0);
    expect(w.answer({ type: 'RESTResponse', request_id: sent[1].request_id, status_code: 204 })).toEqual({ kind: 'late', why: expect.stringMatching(/after its request had failed/) });
  });

  it('attack: malformed answers (no status, a status that is no HTTP status, a body that is no string) reject their request by name', async () => {
    const answers: Record<string, Record<string, unknown>> = {
      a: {},
      b: { status_code: 'OK' },
      c: { status_code: 99999 },
      d: { status_code: 200, message_body: { value: 'x' } },
    };
    const { w } = await attached((req) => answers[req.uri]);
    for (const uri of Object.keys(answers)) {
      const err = (await w.request('GET', uri, {}, `GET /${uri}`).catch((e: unknown) => e)) as AriRestError;
      expect(err).toBeInstanceOf(AriRestError);
      expect(err.status).toBe(0);
      expect(err.message).toMatch(new RegExp(`^GET /${uri}: a malformed answer on the ARI WebSocket`));
    }
    // A body that is not JSON is handed back as text (as over HTTP).
    const { w: w2 } = await attached(() => ({ status_code: 200, message_body: 'plain' }));
    await expect(w2.request('GET', 'x', {}, 'GET /x')).resolves.toBe('plain');
  });

  it('attack: a huge answer rejects its request with the limit named', async () => {
    const { w } = await attached(() => ({ status_code: 200, message_body: JSON.stringify({ big: 'x'.repeat(5000) }) }), { maxAnswerBytes: 4096 });
    await expect(w.request('GET', 'applications/x', {}, 'GET /applications/x')).rejects.toThrow(/GET \/applications\/x: the answer on the ARI WebSocket is too large \(\d+ characters, limit 4096\)/);
  });

  it('attack: answers for no request (unknown id, none, garbage id) are reported and change nothing', async () => {
    const { w } = await attached(() => ({ status_code: 204 }));
    expect(w.answer({ type: 'RESTResponse', request_id: 'nobody', status_code: 200 })).toEqual({ kind: 'unknown', why: expect.stringMatching(/"nobody"/) });
    expect(w.answer({ type: 'RESTResponse', status_code: 200 })).toEqual({ kind: 'unknown', why: expect.stringMatching(/for no request in flight/) });
    expect(w.answer({ type: 'RESTResponse', request_id: { toString: 1 }, status_code: 200 })).toEqual({ kind: 'unknown', why: expect.stringMatching(/for no request in flight/) });
    // One of ours in form but never sent (a number past the last request): unknown, not late.
    expect(w.answer({ type: 'RESTResponse', request_id: 'cc999999', status_code: 200 })?.kind).toBe('unknown');
    await expect(w.request('POST', 'channels/c/answer', {}, 'POST /channels/c/answer')).resolves.toBeUndefined();
  });

  it('the socket going away fails the requests waiting on it (not sent again) and stops using it', async () => {
    const { w, s } = await attached(() => undefined, { timeoutMs: 60_000 });
    const p = w.request('DELETE', 'playbacks/p1', {}, 'DELETE /playbacks/p1');
    w.detach('websocket closed', s);
    await expect(p).rejects.toThrow('DELETE /playbacks/p1: the ARI WebSocket went away before the answer (websocket closed)');
    expect(w.ready).toBe(false);
    await expect(w.request('GET', 'x', {}, 'GET /x')).rejects.toThrow('GET /x: no ARI WebSocket');
  });

  it('a socket that cannot send rejects the request at once', async () => {
    const w = new WsRest();
    const sock = socket(ok);
    sock.bind(w);
    await w.attach(sock.s, 1000);
    sock.s.send = (_d: string, cb?: (err?: Error) => void) => cb?.(new Error('write EPIPE'));
    await expect(w.request('GET', 'x', {}, 'GET /x')).rejects.toThrow('GET /x: the ARI WebSocket could not send the request: write EPIPE');
    sock.s.readyState = 3;
    expect(w.ready).toBe(false);
  });

  it('an Asterisk without REST over the WebSocket (the probe unanswered, or refused) keeps the client on HTTP', async () => {
    const silent = new WsRest();
    const s1 = socket(() => undefined);
    s1.bind(silent);
    expect(await silent.attach(s1.s, 30)).toBe(false);
    expect(silent.ready).toBe(false);
    const refusing = new WsRest();
    const s2 = socket(() => ({ status_code: 404, message_body: '{"message":"Resource not found"}' }));
    s2.bind(refusing);
    expect(await refusing.attach(s2.s, 1000)).toBe(false);
    expect(refusing.ready).toBe(false);
  });

  it('the lean event path hands RESTResponse messages to the answers, not to the event listeners', () => {
    const ws = new EventEmitter();
    const client = Object.assign(new EventEmitter(), { _ws: Object.assign(ws, { listeners: ws.listeners.bind(ws) }) }) as unknown as AriClient & EventEmitter;
    const answers: unknown[] = [];
    const events: string[] = [];
    leanEvents(client, () => undefined, (m) => answers.push(m));
    client.on('RESTResponse', () => events.push('RESTResponse'));
    client.on('StasisEnd', () => events.push('StasisEnd'));
    ws.emit('message', JSON.stringify({ type: 'RESTResponse', request_id: 'cc1', status_code: 204 }));
    ws.emit('message', JSON.stringify({ type: 'StasisEnd', channel: { id: 'c' } }));
    expect(answers).toEqual([{ type: 'RESTResponse', request_id: 'cc1', status_code: 204 }]);
    expect(events).toEqual(['StasisEnd']);
  });
});

describe('AriRest: which requests take the WebSocket', () => {
  it('requests without a body go over the attached socket; bodies and the lists over HTTP; everything over HTTP once it is gone', async () => {
    const seen: string[] = [];
    const srv = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(req.method === 'GET' ? 200 : 204, { 'content-type': 'application/json' }).end(req.method === 'GET' ? '[]' : undefined);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const rest = new AriRest({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, username: 'u', password: 'p' });
    const sock = socket((req) => ok(req) ?? { status_code: 204 });
    sock.bind(rest.ws);
    try {
      expect(await rest.ws.attach(sock.s, 1000)).toBe(true);
      await rest.answer('c1');
      await rest.play('c1', { media: 'sound:cc-offer', lang: 'en', playbackId: 'p1' });
      await rest.stopPlayback('p1');
      await rest.setDeviceState('Stasis:cc-1001', 'INUSE');
      await rest.subscribe('app', 'deviceState:PJSIP/1001');
      await rest.hangup('c1', 'normal');
      await rest.filterEvents('app', ['StasisStart']);
      await rest.originate({ endpoint: 'PJSIP/1001', channelId: 'o1', app: 'app', appArgs: 'recall', callerId: '1', timeout: 30, variables: { A: '1' } });
      await rest.listChannels();
      await rest.listDeviceStates();
      rest.ws.detach('websocket closed', sock.s);
      await rest.answer('c2');
    } finally {
      rest.close();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
    expect(sock.sent.map((r) => `${r.method} ${r.uri}${r.query_strings ? `?${r.query_strings.map((q) => `${q.name}=${q.value}`).join('&')}` : ''}`)).toEqual([
      'GET asterisk/ping',
      'POST channels/c1/answer',
      'POST channels/c1/play/p1?media=sound:cc-offer&lang=en',
      'DELETE playbacks/p1',
      'PUT deviceStates/Stasis%3Acc-1001?deviceState=INUSE',
      'POST applications/app/subscription?eventSource=deviceState:PJSIP/1001',
      'DELETE channels/c1?reason=normal',
    ]);
    expect(seen).toEqual([
      'PUT /ari/applications/app/eventFilter',
      'POST /ari/channels?endpoint=PJSIP%2F1001&channelId=o1&app=app&appArgs=recall&callerId=1&timeout=30',
      'GET /ari/channels',
      'GET /ari/deviceStates',
      'POST /ari/channels/c2/answer',
    ]);
  });
});

describe('a socket that stops answering', () => {
  it('after one request without an answer in time the socket takes no new requests (HTTP until the next connection)', async () => {
    const stalls: string[] = [];
    const { w } = await attached(() => undefined, { timeoutMs: 40, onStall: (op: string, ms: number) => stalls.push(`${op} ${ms}`) });
    expect(w.ready).toBe(true);
    await expect(w.request('POST', 'channels/c/answer', {}, 'POST /channels/c/answer')).rejects.toThrow('no answer within 40 ms on the ARI WebSocket');
    expect(stalls).toEqual(['POST /channels/c/answer 40']);
    expect(w.ready).toBe(false);
  });
});

describe('the requests’ limits', () => {
  it('share one timer: answered requests set none of their own; unanswered ones fail at their limit', async () => {
    const { w } = await attached((req) => (req.uri.startsWith('quiet') ? undefined : { status_code: 204 }), { timeoutMs: 250 });
    const timers = jest.spyOn(global, 'setTimeout');
    try {
      for (let i = 0; i < 5; i++) await expect(w.request('POST', `x/${i}`, {}, `POST /x/${i}`)).resolves.toBeUndefined();
      // one timer for all: set once, for the first request's limit (earlier than the probe's 1 s), then reused
      expect(timers).toHaveBeenCalledTimes(1);
      const failed: string[] = [];
      const quiet = [1, 2].map((i) => w.request('POST', `quiet/${i}`, {}, `POST /quiet/${i}`).catch((e: Error) => failed.push(e.message)));
      // answered while the two wait: not failed by their limit
      await expect(w.request('POST', 'x/5', {}, 'POST /x/5')).resolves.toBeUndefined();
      await Promise.all(quiet);
      expect(failed.sort()).toEqual(['POST /quiet/1: no answer within 250 ms on the ARI WebSocket', 'POST /quiet/2: no answer within 250 ms on the ARI WebSocket']);
      expect(w.inFlight).toBe(0);
    } finally {
      timers.mockRestore();
    }
  });
});

describe('answers nobody reads', () => {
  it("a subscription's answer (the application, every subscribed device listed) is not parsed; its errors still are", async () => {
    const { w } = await attached((req) => (req.uri === 'bad' ? { status_code: 404, message_body: '{"message":"Application not found"}' } : { status_code: 200, message_body: '{"device_names": [' }));
    await expect(w.request('POST', 'applications/a/subscription', {}, 'POST /applications/a/subscription', true)).resolves.toBeUndefined();
    await expect(w.request('POST', 'bad', {}, 'POST /bad', true)).rejects.toThrow('POST /bad: 404 Application not found');
    // read when asked for: the same malformed body comes back as text
    await expect(w.request('POST', 'applications/a/subscription', {}, 'POST /applications/a/subscription')).resolves.toBe('{"device_names": [');
  });
});

describe('the requests of one turn in one socket write (batch)', () => {
  const wsLib = (p: string) => createRequire(require.resolve('ari-client'))(p) as Record<string, unknown>;
  interface Raw { _writev?: (chunks: unknown[], cb: (e?: Error) => void) => void; _write: (chunk: unknown, enc: string, cb: (e?: Error) => void) => void }
  interface Sock extends RestSocket { on(e: string, f: (x: unknown) => void): void; once(e: string, f: () => void): void; close(): void; _socket: Raw & { cork(): void; uncork(): void } }
  interface Server { on(e: string, f: (s: Sock) => void): void; once(e: string, f: () => void): void; address(): AddressInfo; close(cb?: () => void): void }
  const WebSocket = wsLib('ws') as unknown as { new (url: string): Sock; Server: new (o: object) => Server };

  /** ari-client's ws (6.x) client against a ws server that answers every RESTRequest; the client's TCP writes counted. */
  async function pair(batch: boolean | undefined) {
    const server = new WebSocket.Server({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', r));
    const got: Req[] = [];
    server.on('connection', (s) =>
      s.on('message', (m) => {
        const req = JSON.parse(String(m)) as Req;
        got.push(req);
        (s as unknown as { send(d: string): void }).send(JSON.stringify({ type: 'RESTResponse', request_id: req.request_id, status_code: 200, message_body: `{"uri":${JSON.stringify(req.uri)}}` }));
      }),
    );
    const client = new WebSocket(`ws://127.0.0.1:${server.address().port}`);
    await new Promise<void>((r) => client.once('open', r));
    const w = new WsRest(batch === undefined ? {} : { batch });
    client.on('message', (m) => w.answer(JSON.parse(String(m)) as Record<string, unknown>));
    expect(await w.attach(client, 1000)).toBe(true);
    // Every write the TCP socket makes (a corked socket hands all its chunks to one _writev).
    const writes: number[] = [];
    const raw = client._socket;
    const writev = raw._writev!.bind(raw);
    const write = raw._write.bind(raw);
    raw._writev = (chunks, cb) => (writes.push(chunks.length), writev(chunks, cb));
    raw._write = (chunk, enc, cb) => (writes.push(1), write(chunk, enc, cb));
    const close = async () => {
      client.close();
      await new Promise<void>((r) => server.close(() => r()));
    };
    return { w, got, writes, close };
  }

  const five = (w: WsRest) => ['answer', 'play', 'stop', 'lamp', 'hangup'].map((op) => w.request('POST', `x/${op}`, {}, `POST /x/${op}`));

  it('five requests sent in one turn leave in one write, each answered, in order; in separate turns one write each', async () => {
    const { w, got, writes, close } = await pair(true);
    try {
      await expect(Promise.all(five(w))).resolves.toEqual(['answer', 'play', 'stop', 'lamp', 'hangup'].map((op) => ({ uri: `x/${op}` })));
      expect(writes).toEqual([5]); // five frames, each one buffer (header and payload, ws-mask.ts), one write
      expect(got.slice(1).map((r) => r.uri)).toEqual(['x/answer', 'x/play', 'x/stop', 'x/lamp', 'x/hangup']);
      // one request per turn: nothing waits for a later request to go out
      await expect(w.request('GET', 'x/alone', {}, 'GET /x/alone')).resolves.toEqual({ uri: 'x/alone' });
      await expect(w.request('GET', 'x/next', {}, 'GET /x/next')).resolves.toEqual({ uri: 'x/next' });
      expect(writes).toEqual([5, 1, 1]);
      expect(w.counts).toEqual({ frames: 8, writes: 4 }); // the probe, five in one write, two alone
    } finally {
      await close();
    }
  });

  it.each([false, undefined])('batch: %s (the default) writes each request on its own', async (batch) => {
    const { w, writes, close } = await pair(batch);
    try {
      await Promise.all(five(w));
      expect(writes).toEqual([1, 1, 1, 1, 1]); // each frame one buffer in one write (ws-mask.ts)
      expect(w.counts).toEqual({ frames: 6, writes: 6 });
    } finally {
      await close();
    }
  });

  it('a socket without a TCP socket to hold (a test double) still sends every request', async () => {
    const { w, sent } = await attached(() => ({ status_code: 204 }));
    await Promise.all(five(w));
    expect(sent.map((r) => r.uri)).toEqual(['asterisk/ping', 'x/answer', 'x/play', 'x/stop', 'x/lamp', 'x/hangup']);
    expect(w.counts).toEqual({ frames: 6, writes: 6 });
  });
});
