import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AriRest, AriRestError } from '../../src/telephony/ari/rest';

interface Seen {
  method?: string;
  url?: string;
  auth?: string;
  remotePort?: number;
}

/** A stand-in for Asterisk's HTTP server that records each request and answers as told. */
async function server(respond: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, remotePort: req.socket.remotePort });
    respond(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return {
    seen,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    }),
  };
}

describe('AriRest (lean client for the offer hot path)', () => {
  it('sends the ARI requests with basic auth from the raw password, encoded path segments and query', async () => {
    const s = await server((_req, res) => {
      res.writeHead(204).end();
    });
    const rest = new AriRest({ url: `${s.url}/`, username: 'special', password: 'p@ss:w/rd+%' });
    try {
      await rest.answer('ch 1/x');
      await rest.play('ch1', { media: 'sound:cc-offer', lang: 'de', playbackId: 'pb-1' });
      await rest.stopPlayback('pb-1');
      await rest.hangup('ch1', 'busy');
      await rest.hangup('ch2');
    } finally {
      rest.close();
      await s.close();
    }
    expect(s.seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /ari/channels/ch%201%2Fx/answer',
      'POST /ari/channels/ch1/play/pb-1?media=sound%3Acc-offer&lang=de',
      'DELETE /ari/playbacks/pb-1',
      'DELETE /ari/channels/ch1?reason=busy',
      'DELETE /ari/channels/ch2',
    ]);
    expect(Buffer.from(String(s.seen[0].auth).replace(/^Basic /, ''), 'base64').toString()).toBe('special:p@ss:w/rd+%');
    // one kept-alive connection for requests one after the other
    expect(new Set(s.seen.map((r) => r.remotePort)).size).toBe(1);
  });

  it("rejects with the HTTP status and Asterisk's message, without the credentials", async () => {
    const s = await server((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Channel not found' }));
    });
    const rest = new AriRest({ url: s.url, username: 'u', password: 'secret-pw' });
    try {
      const err = await rest.answer('gone').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AriRestError);
      expect(err).toMatchObject({ status: 404, operation: 'POST /channels/gone/answer' });
      expect((err as Error).message).toBe('POST /channels/gone/answer: 404 Channel not found');
      expect((err as Error).message).not.toContain('secret-pw');
    } finally {
      rest.close();
      await s.close();
    }
  });

  it('gives up on a PBX that does not answer, and reports an unreachable one', async () => {
    const s = await server(() => undefined); // never answers
    const rest = new AriRest({ url: s.url, username: 'u', password: 'p', timeoutMs: 100 });
    try {
      const err = await rest.answer('ch').catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 0 });
      expect((err as Error).message).toMatch(/no answer within 100 ms/);
    } finally {
      rest.close();
      await s.close();
    }
    const dead = new AriRest({ url: s.url, username: 'u', password: 'p' });
    const err = await dead.hangup('ch').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0 });
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    dead.close();
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => new AriRest({ url: 'ws://127.0.0.1:8088', username: 'u', password: 'p' })).toThrow(/http\(s\)/);
  });
});

describe('AriRest and kept-alive connections', () => {
  it('a request on a kept-alive connection that the PBX closed at that moment is sent once more on a new one', async () => {
    const perSocket = new Map<number | undefined, number>();
    const s = await server((req, res) => {
      const port = req.socket.remotePort;
      const n = (perSocket.get(port) ?? 0) + 1;
      perSocket.set(port, n);
      // The second request on the first connection: the server drops the connection without answering
      // (what an idle-timeout close racing with the request looks like from the client).
      if (perSocket.size === 1 && n === 2) {
        req.socket.destroy();
        return;
      }
      res.writeHead(204).end();
    });
    const rest = new AriRest({ url: s.url, username: 'u', password: 'p' });
    try {
      await rest.answer('a');
      await rest.play('a', { media: 'sound:x', playbackId: 'pb' });
    } finally {
      rest.close();
      await s.close();
    }
    expect(s.seen.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /ari/channels/a/answer', 'POST /ari/channels/a/play/pb?media=sound%3Ax', 'POST /ari/channels/a/play/pb?media=sound%3Ax']);
    expect(new Set(s.seen.map((r) => r.remotePort)).size).toBe(2);
  });

  it('a fresh connection that fails is not retried', async () => {
    let requests = 0;
    const s = await server((req) => {
      requests++;
      req.socket.destroy();
    });
    const rest = new AriRest({ url: s.url, username: 'u', password: 'p' });
    try {
      const err = await rest.answer('a').catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 0 });
      expect((err as Error).message).toMatch(/socket hang up|ECONNRESET/);
      expect(requests).toBe(1);
    } finally {
      rest.close();
      await s.close();
    }
  });
});
