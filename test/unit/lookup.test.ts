/**
 * The CRM look-up: its pure parts over a fake clock (cache, breaker, answer validation), the label with a name,
 * and the HTTP door against the fake CRM (testkit/fake-crm.ts) in each of its modes — each defence performs its attack.
 */
import { Breaker, LookupCache, parseLookupAnswer } from '../../src/core/lookup';
import { namedRecallLabel, DEFAULT_RECALL_LABEL } from '../../src/core/label';
import { recallCallerId, type CallbackRequest } from '../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../testkit/policy';
import { engineWorld } from '../../testkit/engine';
import { SqliteStore } from '../../src/store/sqlite';
import { CrmLookup } from '../../src/webhook/lookup';
import { FakeCrm } from '../../testkit/fake-crm';
import { captureLog as capture } from '../../testkit/log';


describe('answer validation', () => {
  it('takes name and company, ignores other keys, trims spaces', () => {
    expect(parseLookupAnswer({ name: '  Anna   Schmidt ', company: 'Acme GmbH', crmId: 7 })).toEqual({ ok: true, result: { found: true, contact: { name: 'Anna Schmidt', company: 'Acme GmbH' } } });
    expect(parseLookupAnswer({ name: 'Bo' })).toEqual({ ok: true, result: { found: true, contact: { name: 'Bo' } } });
    expect(parseLookupAnswer({ name: null })).toEqual({ ok: true, result: { found: false } });
  });

  it.each([
    [{ name: 'Eve" <sip:evil@x>' }, /^name: must not contain quotes/],
    [{ name: 'a\u0000b' }, /^name: must not contain/],
    [{ name: 'x'.repeat(61) }, /^name: must be at most 60 characters/],
    [{ name: '   ' }, /^name: must not be empty/],
    [{ name: 5 }, /^name: /],
    [{ company: 'x' }, /^name: /],
    [{ name: 'Ok', company: 'A\\B' }, /^company: must not contain/],
    [[1, 2], /^answer: /],
    ['text', /^answer: /],
  ])('refuses %j naming what was wrong', (body, message) => {
    const r = parseLookupAnswer(body);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(message);
  });
});

describe('cache (fake clock)', () => {
  it('answers within its TTL, forgets after it', () => {
    const now = { t: 0 };
    const c = new LookupCache({ ttlMs: 1000, maxEntries: 10 }, () => now.t);
    c.set('2001', { found: true, contact: { name: 'A' } });
    now.t = 999;
    expect(c.get('2001')).toEqual({ found: true, contact: { name: 'A' } });
    now.t = 1000;
    expect(c.get('2001')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('is bounded: the least recently used go first', () => {
    const c = new LookupCache({ ttlMs: 1000, maxEntries: 2 }, () => 0);
    c.set('a', { found: false });
    c.set('b', { found: false });
    c.get('a'); // a is now the most recent
    c.set('c', { found: false });
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual([{ found: false }, undefined, { found: false }]);
    for (let i = 0; i < 1000; i++) c.set(String(i), { found: false });
    expect(c.size).toBe(2);
  });
});

describe('breaker (fake clock)', () => {
  it('opens after N failures in a row, rests for the cool-down, then lets one trial through', () => {
    const now = { t: 0 };
    const b = new Breaker({ failures: 3, cooldownMs: 1000 }, () => now.t);
    expect(b.allow()).toBe(true);
    expect(b.failure()).toBeUndefined();
    b.failure();
    b.success(); // a success in between resets the count
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    expect(b.failure()).toBe(1000);
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    now.t = 1000;
    expect(b.state).toBe('half-open');
    expect(b.allow()).toBe(true); // the trial
    expect(b.allow()).toBe(false); // only one at a time
    expect(b.failure()).toBe(2000); // the trial failed: open again
    now.t = 2000;
    expect(b.allow()).toBe(true);
    expect(b.success()).toBe(true);
    expect(b.state).toBe('closed');
    expect(b.allow()).toBe(true);
  });
});

describe('the recall label with the name', () => {
  const cfg = { ...DEFAULT_RECALL_LABEL, width: 16 };
  it('a name that fits the display is shown with the longest prefix that fits', () => {
    expect(namedRecallLabel('${prefix}${number}', cfg, 'Bo Li', 'en')).toBe('Callback: Bo Li');
    expect(namedRecallLabel('${prefix}${number}', cfg, 'Anna Schmidt', 'en')).toBe('CB Anna Schmidt');
    expect(namedRecallLabel('${prefix}${number}', cfg, 'Anna Schmidt', 'de')).toBe('RR Anna Schmidt');
  });
  it('a name that does not fit is not cut: the number is shown', () => {
    expect(namedRecallLabel('${prefix}${number}', cfg, 'Maximilian von Hohenberg', 'en')).toBeNull();
    const p = makePolicyConfig({ ...defaultPolicyConfig, recallCallerIdNumber: '9000' });
    expect(recallCallerId(p, '004930123456', 'en', 'Maximilian von Hohenberg')).toEqual({ name: 'CB 030 123456', number: '9000' });
    expect(recallCallerId(p, '2001', 'en', 'Anna Schmidt')).toEqual({ name: 'CB Anna Schmidt', number: '9000' });
    expect(recallCallerId(p, '2001', 'en', null)).toEqual({ name: 'Callback: 2001', number: '9000' });
  });
  it('characters Asterisk must not see never reach the label, even if a name carried them', () => {
    expect(namedRecallLabel('${prefix}${number}', cfg, 'A"<b>\\', 'en')).toBe('Callback: Ab');
  });
});

describe('the look-up door against the fake CRM', () => {
  let crm: FakeCrm;
  const secret = 'crm-secret';
  beforeEach(async () => {
    crm = new FakeCrm({ secret, slowMs: 1500 });
    await crm.start();
  });
  afterEach(async () => {
    await crm.stop();
  });
  const make = (log: ReturnType<typeof capture>['log'], over: Partial<ConstructorParameters<typeof CrmLookup>[0]> = {}) =>
    new CrmLookup({ url: crm.url, secret, timeoutMs: 300, maxBytes: 4096, cacheTtlMs: 60_000, cacheSize: 100, breakerFailures: 2, breakerCooldownMs: 60_000, log, ...over });

  it('normal: a signed request, the name and company; a second look-up comes from the cache', async () => {
    const { log, lines } = capture();
    const l = make(log);
    expect(await l.lookup('2001')).toEqual({ found: true, contact: { name: 'Anna Schmidt', company: 'Acme GmbH' } });
    expect(crm.requests).toEqual([expect.objectContaining({ number: '2001', signed: true })]);
    expect(l.cached('2001')).toEqual({ name: 'Anna Schmidt', company: 'Acme GmbH' });
    await l.lookup('2001');
    expect(crm.requests).toHaveLength(1);
    expect(await l.lookup('2999')).toEqual({ found: false });
    expect(l.cached('2999')).toBeNull();
    expect(lines.filter((x) => x.event === 'lookup.answered').map((x) => x.found)).toEqual([true, false]);
  });

  it('a wrong secret: the CRM refuses (401), logged as http, no name', async () => {
    const { log, lines } = capture();
    expect(await make(log, { secret: 'wrong' }).lookup('2001')).toBeUndefined();
    expect(lines.find((x) => x.event === 'lookup.failed')).toMatchObject({ kind: 'http', error: 'HTTP 401' });
  });

  it('slow: the time-out ends the wait; logged as timeout', async () => {
    crm.mode = 'slow';
    const { log, lines } = capture();
    expect(await make(log).lookup('2001')).toBeUndefined();
    // The look-up gave up before the CRM answered (its own 300 ms bound, not the CRM's 1.5 s).
    expect(crm.answered).toBe(0);
    expect(lines.find((x) => x.event === 'lookup.failed')).toMatchObject({ kind: 'timeout' });
  });

  it('dead: a reset connection is a network failure; after breakerFailures the CRM is not asked any more', async () => {
    crm.mode = 'dead';
    const { log, lines } = capture();
    const l = make(log);
    expect(await l.lookup('2001')).toBeUndefined();
    expect(await l.lookup('2002')).toBeUndefined();
    expect(lines.filter((x) => x.event === 'lookup.failed').map((x) => x.kind)).toEqual(['network', 'network']);
    expect(lines.find((x) => x.event === 'lookup.breaker_open')).toMatchObject({ failures: 2 });
    const asked = crm.requests.length;
    expect(await l.lookup('2003')).toBeUndefined();
    expect(crm.requests.length).toBe(asked);
  });

  it('garbage: not JSON, a name with quotes, a name too long, a body too large — each logged naming what was wrong', async () => {
    crm.mode = 'garbage';
    const { log, lines } = capture();
    const l = make(log, { breakerFailures: 100 });
    for (const n of ['1', '2', '3', '4']) expect(await l.lookup(`200${n}`)).toBeUndefined();
    expect(lines.filter((x) => x.event === 'lookup.failed').map((x) => [x.kind, x.error])).toEqual([
      ['invalid', 'answer: not JSON'],
      ['invalid', 'name: must not contain quotes, angle brackets, backslashes or control characters'],
      ['invalid', 'name: must be at most 60 characters'],
      ['too-large', expect.stringMatching(/more than lookup.maxBytes \(4096\)|longer than lookup.maxBytes \(4096\)/)],
    ]);
  });

  it('a redirect is not followed', async () => {
    const { log, lines } = capture();
    const http = await import('node:http');
    const srv = http.createServer((_q, s) => s.writeHead(302, { location: crm.url }).end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    expect(await make(log, { url: `http://127.0.0.1:${port}/x` }).lookup('2001')).toBeUndefined();
    srv.close();
    expect(lines.find((x) => x.event === 'lookup.failed')).toMatchObject({ kind: 'http', error: 'HTTP 302 redirect (not followed)' });
    expect(crm.requests).toHaveLength(0);
  });

  it('in the engine: the opt-in does not wait for a slow CRM; the name is stored when it arrives', async () => {
    crm.mode = 'slow';
    crm.slowMs = 400;
    const { log, lines } = capture();
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const { engine } = await engineWorld({ store, log, policy: makePolicyConfig({ ...defaultPolicyConfig }), clock: Date.now, prospectDevice: () => undefined, contacts: make(log, { timeoutMs: 2000 }), pbxUp: false });
    const r = (await engine.optIn({ agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', channelId: 'c' })) as { requestId: string };
    // The opt-in is stored and answered while the CRM has not answered yet.
    expect(crm.answered).toBe(0);
    expect((await store.get(r.requestId))!.request.contact ?? null).toBeNull();
    for (let i = 0; i < 50 && !lines.some((x) => x.event === 'lookup.stored'); i++) await new Promise((res) => setTimeout(res, 50));
    expect((await store.get(r.requestId))!.request.contact).toEqual({ name: 'Anna Schmidt', company: 'Acme GmbH' });
    // The next opt-in for the number takes the name from the cache at once.
    const r2 = (await engine.optIn({ agent: 'PJSIP/1002', agentCallerId: { name: 'B', number: '1002' }, prospect: '2001', language: 'en', channelId: 'c2' })) as { requestId: string };
    expect((await store.get(r2.requestId))!.request.contact).toEqual({ name: 'Anna Schmidt', company: 'Acme GmbH' });
    engine.stop();
  });
});
