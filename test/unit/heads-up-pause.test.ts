/**
 * The heads-up and the pause through the shell: the engine on a real (in-memory) store with the CRM outbox,
 * the page's pause/resume door (CSRF, origin, input limits: each attack performed), the lamp's rule.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MINUTE, SECOND, type CallbackRequest } from '../../src/core/policy';
import { makePolicyConfig } from '../../testkit/policy';
import { type Telephony } from '../../src/engine';
import { engineWorld } from '../../testkit/engine';
import { HEADS_UP, lampState, pauseLampDevice } from '../../src/flows/lamp';
import { HttpServer } from '../../src/http/server';
import { CallbacksPage } from '../../src/http/web';
import { SqliteStore } from '../../src/store/sqlite';
import { outboxRowsFor } from '../../src/webhook/payload';
import { waitFor } from '../../testkit/wait';
import { captureLog as logger } from '../../testkit/log';

const T0 = Date.parse('2026-03-23T08:30:00Z');
const CSRF = 'csrf-heads-up';


const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(file = ':memory:') {
  const now = { t: T0 };
  const { log, lines } = logger();
  const store = SqliteStore.open<CallbackRequest>(file);
  const policy = makePolicyConfig({ headsUpMs: MINUTE, graceMs: 5 * MINUTE, agentWrapUpMs: 0, snoozeMs: 15 * MINUTE });
  const rung: string[] = [];
  const telephony: Telephony = {
    execute: async (r, a) => {
      if (a.type === 'ringAgent') rung.push(r.id);
    },
  };
  const { engine } = await engineWorld({ store, log, policy, clock: () => now.t, prospectDevice: () => undefined, outbox: outboxRowsFor, telephony, started: false, pbxUp: false });
  engine.setPbxUp(true);
  const optIn = async (prospect: string, agent = 'PJSIP/1001') => {
    const r = await engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect, language: 'en', channelId: 'c' });
    if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
    return r.requestId;
  };
  /** Feeds ticks for every request due by `t` (as the engine's timer would). */
  const at = async (t: number) => {
    now.t = t;
    for (const { request } of await store.due(t, 100)) await engine.observe(request.id, { type: 'tick' });
  };
  const outbox = async () => (await store.outbox()).map((r) => ({ key: r.key, event: r.event, body: JSON.parse(r.body) as Record<string, unknown> }));
  return { now, log, lines, store, engine, rung, optIn, at, outbox, policy };
}

describe('heads-up through the engine and the CRM outbox', () => {
  test('timed prospect: recall.due_soon is queued at the heads-up start, before the ring, once per due time', async () => {
    const s = await setup();
    const id = await s.optIn('0301234567'); // external: first probe at +10 min, heads-up at +9 min
    const r = (await s.store.get(id))!.request;
    expect(r.dueAt).toBe(T0 + 10 * MINUTE);
    expect(r.wakeAt).toBe(T0 + 9 * MINUTE);
    await s.at(T0 + 9 * MINUTE);
    const soon = (await s.outbox()).filter((o) => o.event === 'recall.due_soon');
    expect(soon).toHaveLength(1);
    expect(soon[0].body.dueAt).toBe(new Date(T0 + 10 * MINUTE).toISOString());
    expect(s.rung).toEqual([]);
    expect(s.lines.filter((l) => l.event === 'recall.heads_up').map((l) => l.leadMs)).toEqual([MINUTE]);
    // A restart (a new engine on the same store) does not announce it again.
    await s.at(T0 + 9 * MINUTE + 30 * SECOND);
    expect((await s.outbox()).filter((o) => o.event === 'recall.due_soon')).toHaveLength(1);
    await s.at(T0 + 10 * MINUTE);
    await waitFor('the ring', () => s.rung.length > 0 || undefined, 5000);
    expect(s.rung).toEqual([id]);
  });

  test('a snooze during the heads-up: no ring; the new due time gets a second recall.due_soon with its own key', async () => {
    const s = await setup();
    const id = await s.optIn('0301234567');
    await s.at(T0 + 9 * MINUTE);
    s.now.t = T0 + 9 * MINUTE + 20 * SECOND;
    await s.engine.observe(id, { type: 'snooze', by: 'web' });
    await s.at(T0 + 10 * MINUTE);
    expect(s.rung).toEqual([]);
    const due = T0 + 9 * MINUTE + 20 * SECOND + 15 * MINUTE;
    await s.at(due - MINUTE);
    const keys = (await s.outbox()).filter((o) => o.event === 'recall.due_soon').map((o) => o.key);
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(2);
    await s.at(due);
    await waitFor('the ring', () => s.rung.length > 0 || undefined, 5000);
    expect(s.rung).toEqual([id]);
  });

  test('a restart during the heads-up does not announce it again (the store remembers the due time announced)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-hu-'));
    const file = path.join(dir, 'cc.db');
    const a = await setup(file);
    await a.optIn('0301234567');
    await a.at(T0 + 9 * MINUTE);
    await a.store.close();
    const b = await setup(file);
    cleanups.push(() => b.store.close());
    await b.at(T0 + 9 * MINUTE + 10 * SECOND);
    expect((await b.outbox()).filter((o) => o.event === 'recall.due_soon')).toHaveLength(1);
    expect(b.lines.filter((l) => l.event === 'recall.heads_up')).toHaveLength(0);
  });
});

describe('pause through the engine', () => {
  test('paused: due requests wait (nothing rings); resume rings the earliest opt-in first; the pause is stored', async () => {
    const s = await setup();
    await s.engine.start();
    cleanups.push(() => s.engine.stop());
    await s.engine.pauses.pause('PJSIP/1001', { until: null, by: 'phone' });
    expect(await s.store.pauses()).toEqual([{ agent: 'PJSIP/1001', since: T0, until: null, by: 'phone' }]);
    const first = await s.optIn('0301111111');
    s.now.t = T0 + SECOND;
    const second = await s.optIn('0302222222');
    await s.at(T0 + 11 * MINUTE);
    expect(s.rung).toEqual([]);
    expect((await s.store.get(first))!.request.waitingFor).toBe('agent-paused');
    expect((await s.store.get(second))!.request.waitingFor).toBe('agent-paused');
    await s.engine.pauses.resume('PJSIP/1001', 'phone');
    await waitFor(`the first request rings (${JSON.stringify([(await s.store.get(first))!.request.state, (await s.store.get(first))!.request.reason])})`, () => s.rung.length > 0 || undefined, 2000);
    expect(s.rung).toEqual([first]); // the second waits: the agent is on the first one's recall
    expect(await s.store.pauses()).toEqual([]);
    expect(s.lines.map((l) => l.event).filter((e) => e === 'agent.paused' || e === 'agent.resumed')).toEqual(['agent.paused', 'agent.resumed']);
  });

  test('a pause is durable: a new engine on the same store still holds the agent', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-pause-'));
    const file = path.join(dir, 'cc.db');
    const a = await setup(file);
    await a.engine.pauses.pause('PJSIP/1001', { until: T0 + HOUR, by: 'web' });
    await a.store.close();
    const b = await setup(file);
    cleanups.push(() => b.store.close());
    await b.engine.start();
    cleanups.push(() => b.engine.stop());
    expect(b.engine.pauses.pauseOf('PJSIP/1001')).toEqual({ since: T0, until: T0 + HOUR });
    b.now.t = T0 + HOUR;
    expect(b.engine.pauses.pauseOf('PJSIP/1001')).toBeNull(); // ended by itself
  });

  test('a pause until a time in the past is refused', async () => {
    const s = await setup();
    await expect(s.engine.pauses.pause('PJSIP/1001', { until: T0 - 1, by: 'web' })).rejects.toThrow(/ahead/);
  });
});

const HOUR = 60 * MINUTE;

describe('the page: pause and resume through its door', () => {
  async function page() {
    const s = await setup();
    const server = new HttpServer({ bind: '127.0.0.1', port: 0, token: '', log: s.log });
    const p = new CallbacksPage({ engine: s.engine, policy: s.policy, log: s.log, staticDir: os.tmpdir(), clock: () => s.now.t, csrfToken: CSRF });
    p.register(server);
    const port = await server.listen();
    cleanups.push(async () => {
      p.close();
      await server.close();
    });
    const base = `http://127.0.0.1:${port}`;
    const post = (path_: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}${path_}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-cc-csrf': CSRF, ...headers }, body: JSON.stringify(body) });
    return { ...s, base, post };
  }

  test('pause until a time and resume; the list of pauses says so', async () => {
    const s = await page();
    const until = new Date(T0 + 2 * HOUR).toISOString();
    const res = await s.post('/callbacks/api/pause', { agent: 'PJSIP/1001', until });
    expect(res.status).toBe(200);
    expect(await (await fetch(`${s.base}/callbacks/api/pauses`)).json()).toEqual([{ agent: 'PJSIP/1001', since: new Date(T0).toISOString(), until, by: 'web' }]);
    expect((await s.post('/callbacks/api/resume', { agent: 'PJSIP/1001' })).status).toBe(200);
    expect(await (await fetch(`${s.base}/callbacks/api/pauses`)).json()).toEqual([]);
  });

  test('attacks: no CSRF token, a foreign origin, a bad agent, a past or far time — refused, nothing paused', async () => {
    const s = await page();
    const agent = 'PJSIP/1001';
    expect((await fetch(`${s.base}/callbacks/api/pause`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ agent }) })).status).toBe(403);
    expect((await s.post('/callbacks/api/pause', { agent }, { origin: 'http://evil.example' })).status).toBe(403);
    const bad = await s.post('/callbacks/api/pause', { agent: 'PJSIP/1001;rm -rf' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/agent/);
    expect((await s.post('/callbacks/api/pause', { agent, until: new Date(T0 - MINUTE).toISOString() })).status).toBe(400);
    expect((await s.post('/callbacks/api/pause', { agent, until: new Date(T0 + 25 * HOUR).toISOString() })).status).toBe(400);
    expect((await s.post('/callbacks/api/pause', { agent, until: 'tomorrow-ish' })).status).toBe(400);
    expect(await s.store.pauses()).toEqual([]);
  });
});

describe('lamp', () => {
  test('a heads-up blinks (RINGING = dialog "early"); waiting alone is steady; the pause lamp has its own device', () => {
    expect(lampState(['WAITING'])).toBe('INUSE');
    expect(lampState(['WAITING', HEADS_UP])).toBe('RINGING');
    expect(lampState([HEADS_UP])).toBe('RINGING');
    expect(pauseLampDevice('PJSIP/1001')).toBe('Stasis:ccp-1001');
  });
});
