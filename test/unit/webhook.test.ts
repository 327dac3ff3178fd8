/**
 * CRM webhook: signatures, payloads, the outbox written with the transition, and the sender against a
 * local HTTP server that checks the signature (down → up: delivered once; restart: delivered once).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { AddressInfo } from 'node:net';
import { newRequest, decide } from '../../src/core/policy';
import { makePolicyConfig } from '../../testkit/policy';
import type { CallbackRequest } from '../../src/core/policy';
import { createLogger } from '../../src/logging/log';
import { SqliteStore } from '../../src/store/sqlite';
import { DELIVERY_HEADER, SIGNATURE_HEADER, outboxRowsFor, sign, verify } from '../../src/webhook/payload';
import { WebhookSender, backoffDelay } from '../../src/webhook/sender';
import { engineWorld } from '../../testkit/engine';
import { CrmLookup } from '../../src/webhook/lookup';
import { FakeCrm } from '../../testkit/fake-crm';

const SECRET = 'crm-shared-secret-42';

function logCapture() {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { log: createLogger({ format: 'json', stream, level: 'debug', secrets: [SECRET] }), text: () => chunks.join('') };
}

function tmpStore(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-webhook-')), 'callbacks.db');
}

const cfg = makePolicyConfig({
  callingHours: { timeZone: 'UTC', windows: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])), holidays: [] },
});

async function engineOn(file: string) {
  const store = SqliteStore.open<CallbackRequest>(file);
  const { engine } = await engineWorld({ store, policy: cfg, clock: Date.now, prospectDevice: () => undefined, outbox: outboxRowsFor, started: false, pbxUp: false });
  return { store, engine };
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  valid: boolean;
}

/** A CRM on 127.0.0.1 that checks the signature; `status` decides what it answers. */
async function crm(status: () => number = () => 200) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const valid = verify(body, SECRET, req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined, req.headers['x-considerate-timestamp'] as string | undefined);
      received.push({ headers: req.headers, body, valid });
      res.statusCode = valid ? status() : 401;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return { received, port, url: `http://127.0.0.1:${port}/hooks/cc`, close: () => new Promise<void>((r) => server.close(() => r())), server };
}

function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = async () => {
      const v = await probe();
      if (v) return resolve(v);
      if (Date.now() > end) return reject(new Error('timed out'));
      setTimeout(tick, 20);
    };
    void tick();
  });
}

const senderOpts = (url: string, log = logCapture().log) => ({ url, secret: SECRET, timeoutMs: 1000, retries: 5, backoffMs: [50, 100], log });

describe('webhook payload and signature', () => {
  it('signs "<timestamp>.<raw body>" with HMAC-SHA256 and verifies in constant time, within the replay window', async () => {
    const body = '{"a":1}';
    const ts = 1773139500;
    const at = { now: ts + 10 };
    // echo -n '1773139500.{"a":1}' | openssl dgst -sha256 -hmac crm-shared-secret-42
    expect(sign(body, SECRET, ts)).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verify(body, SECRET, sign(body, SECRET, ts), String(ts), at)).toBe(true);
    expect(verify(`${body} `, SECRET, sign(body, SECRET, ts), String(ts), at)).toBe(false);
    expect(verify(body, 'other', sign(body, SECRET, ts), String(ts), at)).toBe(false);
    expect(verify(body, SECRET, undefined, String(ts), at)).toBe(false);
    // The timestamp is signed: changing it breaks the signature; an old one is a replay.
    expect(verify(body, SECRET, sign(body, SECRET, ts), String(ts + 1), at)).toBe(false);
    expect(verify(body, SECRET, sign(body, SECRET, ts), String(ts), { now: ts + 301 })).toBe(false);
    expect(verify(body, SECRET, sign(body, SECRET, ts), String(ts), { now: ts - 301 })).toBe(false);
    expect(verify(body, SECRET, sign(body, SECRET, ts), undefined, at)).toBe(false);
    expect(verify(body, SECRET, sign(body, SECRET, ts), '12e3', at)).toBe(false);
  });

  it('one outbox row per notify action, with a stable idempotency key', async () => {
    const d = newRequest(
      { id: 'abc123', agent: 'PJSIP/1001', agentCallerId: { name: 'Agent', number: '1001' }, prospect: '2001', language: 'en', mode: 'timed' },
      cfg,
      Date.UTC(2026, 2, 10, 10),
    );
    const rows = outboxRowsFor(d, Date.UTC(2026, 2, 10, 10));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ key: 'cc-abc123-requested', requestId: 'abc123', event: 'requested' });
    const body = JSON.parse(rows[0].body);
    expect(body).toMatchObject({
      id: 'cc-abc123-requested',
      event: 'requested',
      occurredAt: '2026-03-10T10:00:00.000Z',
      request: { id: 'abc123', agent: 'PJSIP/1001', prospect: '2001', state: 'WAITING' },
    });
    const cancelled = decide(d.request, { type: 'cancel', by: 'agent' }, { now: Date.UTC(2026, 2, 10, 10, 5), cfg, agent: { busy: false, since: 0 } });
    expect(outboxRowsFor(cancelled, 0).map((r) => r.key)).toEqual(['cc-abc123-cancelled']);
    expect(backoffDelay([5, 30], 1)).toBe(5);
    expect(backoffDelay([5, 30], 7)).toBe(30);
  });
});

describe('outbox in the store', () => {
  it('is written in the same transaction as the transition (a lost claim writes nothing)', async () => {
    const { store, engine } = await engineOn(tmpStore());
    const r = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    expect((await store.outbox()).map((o) => o.key)).toEqual([`cc-${r.requestId}-requested`]);
    // A stale writer loses the version guard: neither the request nor an outbox row changes.
    const current = (await store.get(r.requestId))!;
    const stale = decide(current.request, { type: 'cancel', by: 'x' }, { now: Date.now(), cfg, agent: { busy: false, since: 0 } });
    expect(await store.transition(stale.request, current.version + 7, [], outboxRowsFor(stale, Date.now()))).toBeUndefined();
    expect(await store.outbox()).toHaveLength(1);
    await engine.cancel(r.requestId, 'agent');
    expect((await store.outbox()).map((o) => o.event)).toEqual(['requested', 'cancelled']);
    // The same key twice (a retried cancel) is ignored.
    await store.enqueueOutbox([{ ...(await store.outbox())[1] }]);
    expect(await store.outbox()).toHaveLength(2);
    await store.close();
  });

  it('writes nothing without a webhook (no outbox option)', async () => {
    const store = SqliteStore.open<CallbackRequest>(tmpStore());
    const { engine } = await engineWorld({ store, policy: cfg, clock: Date.now, prospectDevice: () => undefined, started: false, pbxUp: false });
    await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    expect(await store.outbox()).toHaveLength(0);
    await store.close();
  });
});

describe('webhook sender', () => {
  it('POSTs signed JSON with the idempotency key, and marks it sent', async () => {
    const server = await crm();
    const { store, engine } = await engineOn(tmpStore());
    const cap = logCapture();
    const sender = new WebhookSender(store, senderOpts(server.url, cap.log));
    sender.start();
    const r = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    sender.kick();
    await waitFor(() => server.received.length === 1);
    const got = server.received[0];
    expect(got.valid).toBe(true);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers[DELIVERY_HEADER.toLowerCase()]).toBe(`cc-${(r as { requestId: string }).requestId}-requested`);
    expect(got.headers['x-considerate-event']).toBe('requested');
    expect(JSON.parse(got.body).event).toBe('requested');
    await waitFor(async () => (await store.outbox())[0].sentAt !== null);
    expect(cap.text()).toContain('webhook delivered');
    expect(cap.text()).not.toContain(SECRET);
    sender.stop();
    await store.close();
    await server.close();
  });

  it('a CRM that is down, then answers 500, then recovers: delivered exactly once after recovery', async () => {
    const file = tmpStore();
    const { store, engine } = await engineOn(file);
    // Reserve a port, then close it: the first attempts find nobody listening.
    const probe = await crm();
    const port = probe.port;
    await probe.close();
    const url = `http://127.0.0.1:${port}/hooks/cc`;
    const cap = logCapture();
    const sender = new WebhookSender(store, senderOpts(url, cap.log));
    sender.start();
    const r = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    sender.kick();
    await waitFor(async () => ((await store.outbox())[0]?.attempts ?? 0) >= 2);
    expect((await store.outbox())[0]).toMatchObject({ sentAt: null, lastError: expect.stringMatching(/ECONNREFUSED/) });
    // Back, but failing for a while.
    let fails = 2;
    const received: Received[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ headers: req.headers, body, valid: verify(body, SECRET, req.headers['x-considerate-signature'] as string, req.headers['x-considerate-timestamp'] as string) });
        res.statusCode = fails-- > 0 ? 500 : 204;
        res.end();
      });
    });
    await new Promise<void>((res) => server.listen(port, '127.0.0.1', () => res()));
    await waitFor(async () => (await store.outbox())[0].sentAt !== null, 8000);
    await new Promise((res) => setTimeout(res, 400));
    // Attempts while it was back: 500, 500, then 204 — accepted once, never sent again.
    expect(received).toHaveLength(3);
    expect(received.every((x) => x.valid)).toBe(true);
    expect(new Set(received.map((x) => x.body)).size).toBe(1); // the same signed bytes every time
    expect(cap.text()).toMatch(/will retry/);
    expect(cap.text()).not.toContain(SECRET);
    sender.stop();
    await store.close();
    await new Promise<void>((res) => server.close(() => res()));
  });

  it('undelivered events survive a restart and are delivered once by the next process', async () => {
    const file = tmpStore();
    const first = await engineOn(file);
    const r = await first.engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    await first.engine.cancel(r.requestId, 'agent');
    first.store.close(); // "crash" before anything was sent
    const server = await crm();
    const second = await engineOn(file);
    const sender = new WebhookSender(second.store, senderOpts(server.url));
    sender.start();
    await waitFor(async () => (await second.store.outbox()).every((o) => o.sentAt !== null));
    await new Promise((res) => setTimeout(res, 300));
    expect(server.received.map((x) => JSON.parse(x.body).event)).toEqual(['requested', 'cancelled']);
    expect(server.received.every((x) => x.valid)).toBe(true);
    // A third start sends nothing again.
    sender.stop();
    const again = new WebhookSender(second.store, senderOpts(server.url));
    again.start();
    await new Promise((res) => setTimeout(res, 300));
    expect(server.received).toHaveLength(2);
    again.stop();
    second.store.close();
    await server.close();
  });

  it('a CRM that never answers does not hold up anything, and the attempt times out', async () => {
    const hang = http.createServer(() => undefined); // never responds
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/`;
    const { store, engine } = await engineOn(tmpStore());
    const sender = new WebhookSender(store, { ...senderOpts(url), timeoutMs: 200 });
    sender.start();
    const t0 = Date.now();
    await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    sender.kick();
    expect(Date.now() - t0).toBeLessThan(100); // the opt-in never waits for the CRM
    await waitFor(async () => (await store.outbox())[0].lastError?.includes('no answer within 200 ms'), 3000);
    sender.stop();
    await store.close();
    hang.closeAllConnections();
    await new Promise<void>((r) => hang.close(() => r()));
  });

  it('gives up after the configured retries', async () => {
    const server = await crm(() => 500);
    const { store, engine } = await engineOn(tmpStore());
    const cap = logCapture();
    const sender = new WebhookSender(store, { ...senderOpts(server.url, cap.log), retries: 2, backoffMs: [10] });
    sender.start();
    await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    sender.kick();
    await waitFor(async () => (await store.outbox())[0].failedAt !== null, 3000);
    expect(server.received).toHaveLength(3);
    expect(cap.text()).toContain('webhook given up');
    sender.stop();
    await store.close();
    await server.close();
  });
});

describe('the prospect\'s name and the team profile in the webhook', () => {
  it('a signed webhook sent after the look-up stored the name carries request.contact and request.profile', async () => {
    const fake = new FakeCrm({ secret: 'crm-lookup-secret' });
    await fake.start();
    const server = await crm();
    const store = SqliteStore.open<CallbackRequest>(tmpStore());
    const quiet = createLogger({ format: 'json', stream: new PassThrough(), level: 'error' });
    const { engine } = await engineWorld({
      store,
      policy: cfg,
      log: quiet,
      clock: Date.now,
      prospectDevice: () => undefined,
      outbox: outboxRowsFor,
      profiles: { berlin: { graceMs: 7000, language: 'de' } },
      contacts: new CrmLookup({ url: fake.url, secret: 'crm-lookup-secret', timeoutMs: 2000, maxBytes: 4096, cacheTtlMs: 60_000, cacheSize: 10, breakerFailures: 3, breakerCooldownMs: 60_000, log: quiet }),
      pbxUp: false,
    });
    const sender = new WebhookSender(store, senderOpts(server.url));
    sender.start();
    const r = await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1', profile: 'berlin' });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    // The look-up is off the critical path: wait until the name is stored with the request, then cancel.
    await waitFor(async () => (await store.get(r.requestId))?.request.contact?.name === 'Anna Schmidt');
    await engine.cancel(r.requestId, 'agent');
    sender.kick();
    await waitFor(() => server.received.some((x) => JSON.parse(x.body).event === 'cancelled'));
    const cancelled = server.received.find((x) => JSON.parse(x.body).event === 'cancelled')!;
    expect(cancelled.valid).toBe(true);
    expect(JSON.parse(cancelled.body).request).toMatchObject({
      id: r.requestId,
      prospect: '2001',
      contact: { name: 'Anna Schmidt', company: 'Acme GmbH' },
      profile: 'berlin',
    });
    // The opt-in's own event carries the profile too (its contact may or may not have been known yet).
    const requested = server.received.find((x) => JSON.parse(x.body).event === 'requested')!;
    expect(requested.valid).toBe(true);
    expect(JSON.parse(requested.body).request.profile).toBe('berlin');
    expect(fake.requests).toEqual([expect.objectContaining({ number: '2001', signed: true })]);
    sender.stop();
    engine.stop();
    await store.close();
    await server.close();
    await fake.stop();
  });

  it('without a look-up or profile both are null in the body', async () => {
    const server = await crm();
    const { store, engine } = await engineOn(tmpStore());
    const sender = new WebhookSender(store, senderOpts(server.url));
    sender.start();
    await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c1' });
    sender.kick();
    await waitFor(() => server.received.length === 1);
    expect(JSON.parse(server.received[0].body).request).toMatchObject({ contact: null, profile: null });
    sender.stop();
    await store.close();
    await server.close();
  });
});

describe('run: secrets never logged', () => {
  it('masks the ARI password, the webhook secret and credentials in the webhook URL', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runSecrets } = require('../../src/cli/main') as typeof import('../../src/cli/main');
    const { loadConfig } = await import('../../src/config/load');
    const config = loadConfig({
      env: {},
      overrides: { 'ari.password': 'ari-pw-1234', 'webhook.url': 'https://crm:url-pw-99@crm.example/hook', 'webhook.secret': SECRET },
    });
    const secrets = runSecrets(config);
    expect(secrets).toEqual(expect.arrayContaining(['ari-pw-1234', SECRET, 'url-pw-99']));
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const log = createLogger({ format: 'json', stream, secrets });
    log.info(`posting with ${SECRET}`, { config, url: config.webhook.url });
    await new Promise((r) => setImmediate(r));
    const text = chunks.join('');
    for (const s of ['ari-pw-1234', SECRET, 'url-pw-99']) expect(text).not.toContain(s);
  });
});
