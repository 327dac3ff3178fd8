/**
 * The webhook's door, against fake CRMs on 127.0.0.1: a redirect to another host is not followed (the
 * event is not delivered there, and counts as a failed delivery), a huge answer is not read whole, and
 * the signature carries the attempt's timestamp.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { CallbackRequest } from '../../src/core/policy';
import { createLogger } from '../../src/logging/log';
import { SqliteStore } from '../../src/store/sqlite';
import { verify } from '../../src/webhook/payload';
import { MAX_RESPONSE_BYTES, WebhookSender } from '../../src/webhook/sender';
import { waitFor } from '../../testkit/wait';

const SECRET = 'crm-door-secret';

async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function storeWithOneEvent() {
  const store = SqliteStore.open<CallbackRequest>(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-wh-door-')), 'callbacks.db'));
  await store.enqueueOutbox([{ key: 'cc-r1-requested', requestId: 'r1', event: 'requested', createdAt: Date.now(), body: '{"id":"cc-r1-requested"}' }]);
  return store;
}

function sender(store: SqliteStore<CallbackRequest>, url: string) {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (b: Buffer) => lines.push(b.toString()));
  const s = new WebhookSender(store, { url, secret: SECRET, timeoutMs: 5000, retries: 0, backoffMs: [10], log: createLogger({ format: 'json', stream, level: 'debug' }) });
  return { s, lines };
}

describe('webhook door', () => {
  it('a 3xx to another host is not followed: nothing lands there, and the event is a failed delivery', async () => {
    const elsewhere: string[] = [];
    const evil = await serve((req, res) => {
      elsewhere.push(`${req.method} ${req.url}`);
      res.end('thanks');
    });
    const crm = await serve((_req, res) => {
      res.writeHead(307, { location: `${evil.url}?token=abc` });
      res.end();
    });
    const store = await storeWithOneEvent();
    const { s, lines } = sender(store, crm.url);
    try {
      s.start();
      await waitFor('the event given up', async () => (await store.outboxGivenUp())[0], 10000, 20);
      expect(elsewhere).toEqual([]);
      const row = (await store.outbox())[0];
      expect(row.sentAt).toBeNull();
      expect(row.lastError).toMatch(/^HTTP 307 redirect to 127\.0\.0\.1:\d+ \(not followed\)$/);
      expect(lines.join('')).not.toContain('token=abc');
      expect(lines.join('')).not.toContain('webhook delivered');
    } finally {
      s.stop();
      await store.close();
      await crm.close();
      await evil.close();
    }
  });

  it('a huge error body is read only up to the cap; the sender carries on', async () => {
    let finished: boolean | undefined;
    const crm = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 * 1024, 0x78);
      let sent = 0;
      const pump = () => {
        while (sent < 200 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (finished = res.writableFinished));
      pump();
    });
    const store = await storeWithOneEvent();
    const { s } = sender(store, crm.url);
    try {
      s.start();
      await waitFor('the event given up', async () => (await store.outboxGivenUp())[0], 20000, 20);
      expect((await store.outbox())[0].lastError).toBe('HTTP 500');
      await waitFor('the CRM connection closed', () => finished !== undefined, 10000, 20);
      // The 200 MB answer was abandoned, not read to its end.
      expect(finished).toBe(false);
      expect(MAX_RESPONSE_BYTES).toBeLessThanOrEqual(64 * 1024);
    } finally {
      s.stop();
      await store.close();
      await crm.close();
    }
  });

  it('each attempt is signed over its timestamp and the body; the receiver check rejects a replay later', async () => {
    const got: Array<{ body: string; sig: string; ts: string }> = [];
    const crm = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ body, sig: String(req.headers['x-considerate-signature']), ts: String(req.headers['x-considerate-timestamp']) });
        res.statusCode = 204;
        res.end();
      });
    });
    const store = await storeWithOneEvent();
    const { s } = sender(store, crm.url);
    try {
      s.start();
      await waitFor('delivered', async () => (await store.outbox())[0].sentAt ?? undefined, 10000, 20);
      const [hit] = got;
      expect(hit.ts).toMatch(/^\d{10}$/);
      expect(verify(hit.body, SECRET, hit.sig, hit.ts)).toBe(true);
      expect(verify(hit.body, SECRET, hit.sig, hit.ts, { now: Number(hit.ts) + 3600 })).toBe(false);
    } finally {
      s.stop();
      await store.close();
      await crm.close();
    }
  });
});
