/**
 * The webhook outbox drained once across instances: two senders (two service instances) on one
 * PostgreSQL database deliver every row exactly once to a real local HTTP server (claims with
 * FOR UPDATE SKIP LOCKED), including rows one of them fails and the other retries.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/logging/log';
import type { RequestRecord } from '../../src/store/contract';
import { PgStore } from '../../src/store/postgres';
import { WebhookSender } from '../../src/webhook/sender';
import { freshDatabase, TestDatabase } from '../../testkit/pg';

let db: TestDatabase;
let server: http.Server;
const received: string[] = [];
let failFirst = new Set<string>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const key = String(req.headers['x-considerate-delivery'] ?? '');
    req.resume();
    req.on('end', () => {
      if (failFirst.delete(key)) {
        res.writeHead(503).end();
        return;
      }
      received.push(key);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});
beforeEach(async () => {
  db = await freshDatabase('webhook');
});
afterEach(async () => {
  await db.drop();
});

it('two instances drain one outbox: every row delivered exactly once, failures retried by either', async () => {
  const stores = [await PgStore.open<RequestRecord>(db.url, { pbx: 'a' }), await PgStore.open<RequestRecord>(db.url, { pbx: 'b' })];
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const rows = Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, requestId: `r${i}`, event: 'requested', createdAt: Date.now() - 1000, body: `{"n":${i}}` }));
  failFirst = new Set(['k3', 'k17', 'k40']);
  await stores[0].enqueueOutbox(rows);
  const senders = stores.map(
    (store) =>
      new WebhookSender(store, { url, secret: 's', timeoutMs: 2000, retries: 3, backoffMs: [0], log: createLogger({ format: 'json', stream: new PassThrough() }) }),
  );
  for (const s of senders) s.start();
  const all = async () => (await stores[0].outbox()).every((r) => r.sentAt !== null);
  for (let i = 0; i < 200 && !(await all()); i++) {
    for (const s of senders) s.kick();
    await sleep(50);
  }
  for (const s of senders) s.stop();
  expect(await all()).toBe(true);
  expect([...received].sort()).toEqual(rows.map((r) => r.key).sort());
  expect(new Set(received).size).toBe(received.length);
  const retried = (await stores[0].outbox()).filter((r) => r.attempts > 1).map((r) => r.key);
  expect(retried.sort()).toEqual(['k17', 'k3', 'k40']);
  for (const s of stores) await s.close();
});
