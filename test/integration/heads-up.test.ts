/**
 * The heads-up before the ring and "hold my callbacks" on the real Asterisk sandbox (issue 22, parts 1 and 3):
 * - heads-up: a SIPp phone SUBSCRIBEd to agent 1001's BLF hint *821001 sees the lamp blink (dialog "early")
 *   during the lead, before the recall rings; the CRM gets a signed `recall.due_soon` before the ring (the lead is
 *   recorded and printed, the order asserted);
 * - pause: a SIPp handset (agent 1001) dials *73; a due recall then does not ring (it waits as agent-paused) and
 *   the pause lamp Stasis:ccp-1001 is on; *73 again resumes and the recall rings;
 * - pause from the page's door (POST /callbacks/api/pause with the CSRF token), and resume;
 * - pause from the command line (`considerate-callback pause`/`resume` on the service's store): the running service
 *   notices (the pause lamp on without a due request), a due recall waits, resume lets it ring;
 * - the callbacks page in Chromium (notifications permitted): the heads-up shows at the top, a browser
 *   notification names the prospect, and Snooze in the heads-up is honoured without a ring. The request comes
 *   with a team profile (CC_PROFILE) and the prospect's name from the fake CRM: the card, the heads-up and the
 *   notification show the name, the card the profile.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { SANDBOX } from '../../testkit/sandbox';
import { register, runSipp, startSipp, stopAllSipp, unregister, type SipMessage } from '../../testkit/sipp';
import { verify } from '../../src/webhook/payload';
import { ensureChromium, launchBrowser } from '../../testkit/browser';
import { FakeCrm } from '../../testkit/fake-crm';
import { FAST_RECALL, optIn, runCli, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep, waitFor } from './harness';

const SECRET = 'crm-heads-up-secret-51c2';

function crmServer(): Promise<{ hits: { event: string; at: number; valid: boolean; body: Record<string, unknown> }[]; port: number; close: () => Promise<void> }> {
  const hits: { event: string; at: number; valid: boolean; body: Record<string, unknown> }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const valid = verify(raw, SECRET, req.headers['x-considerate-signature'] as string | undefined, req.headers['x-considerate-timestamp'] as string | undefined);
      const body = JSON.parse(raw) as Record<string, unknown>;
      hits.push({ event: String(body.event), at: Date.now(), valid, body });
      res.statusCode = valid ? 204 : 401;
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ hits, port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) })),
  );
}

function dialogState(m: SipMessage): string | undefined {
  return /<state>([a-z]+)<\/state>/.exec(m.body)?.[1];
}

/** Grace 8 s, heads-up 4 s: the lamp blinks and the CRM hears of it about 4 s before the ring. */
const HEADS_UP = { ...FAST_RECALL, http: { port: 0 }, policy: { ...FAST_RECALL.policy, grace: '8s', headsUp: '4s' } };

describePbx('heads-up and pause (real Asterisk)', () => {
  let ari: TestAri;
  let phone: TestPhone;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    ari = await TestAri.connect();
    phone = await TestPhone.attach(ari);
    await ari.hangupStale('cc-test-phone');
  });

  afterEach(async () => {
    await stopAllSipp();
    for (const s of services.splice(0)) await s.stop();
    simLine('NOT_INUSE');
    await ari.hangupStale('cc-test-phone');
  });

  afterAll(async () => {
    await ari?.close();
  });

  it('heads-up: the BLF lamp blinks (early) and recall.due_soon reaches the CRM before the ring', async () => {
    await ari.client.deviceStates.update({ deviceName: 'Stasis:cc-1001', deviceState: 'NOT_INUSE' });
    const crm = await crmServer();
    try {
      const blf = startSipp({
        scenario: 'subscribe-dialog.xml',
        // Not the agent UAS port: the *73 test's desk phone answers there, and this subscription's NOTIFYs
        // (it outlives the SIPp process in Asterisk until it expires) would reach it.
        port: SANDBOX.testPhones.prospectUas.sip,
        service: '*821001',
        auth: { user: '1001', password: 'agent1001' },
        keys: { user: '1001', event: 'dialog', accept: 'application/dialog-info+xml' },
        timeoutMs: 120000,
        label: 'BLF phone 1001',
      });
      const callId = () => blf.messages().find((m) => m.direction === 'sent' && m.method === 'SUBSCRIBE')?.header('Call-ID');
      const notifies = () => blf.messages().filter((m) => m.direction === 'received' && m.method === 'NOTIFY' && m.header('Call-ID') === callId());
      await waitFor('the first NOTIFY', () => notifies().length > 0 || undefined, 20000);

      const svc = new ServiceProcess({ ...HEADS_UP, webhook: { url: `http://127.0.0.1:${crm.port}/cc`, secret: SECRET, backoff: ['1s'] } });
      services.push(svc);
      await svc.start();
      simLine('INUSE');
      const id = await optIn(ari, svc, '2995');
      await waitFor('the lamp lit (confirmed)', () => notifies().some((m) => dialogState(m) === 'confirmed') || undefined, 20000);
      const seenBefore = notifies().length;

      const mark = ari.events.length;
      simLine('NOT_INUSE'); // grace 8 s: heads-up after 4 s, ring after 8 s
      const headsUp = await svc.waitLog((l) => l.requestId === id && l.event === 'recall.heads_up', 20000);
      // The lamp blinks during the lead, and the CRM hears of it, while the agent's phone has not rung yet.
      await waitFor('a NOTIFY with <state>early</state>', () => notifies().slice(seenBefore).some((m) => dialogState(m) === 'early') || undefined, 10000);
      await waitFor('recall.due_soon at the CRM', () => crm.hits.some((h) => h.event === 'recall.due_soon') || undefined, 10000);
      const ringsDuringLead = phone.rings(mark).length;
      const dueSoonAt = crm.hits.find((h) => h.event === 'recall.due_soon')!.at;

      const ring = await phone.nextRing(mark, 20000);
      const ringAt = Date.now();
      expect(ringsDuringLead).toBe(0);
      const lead = ringAt - dueSoonAt;
      process.stdout.write(`[heads-up] recall.due_soon reached the CRM ${lead} ms before the ring (policy.headsUp 4 s; leadMs logged ${String(headsUp.leadMs)})\n`);
      expect(lead).toBeGreaterThan(0);
      const dueSoon = crm.hits.find((h) => h.event === 'recall.due_soon')!;
      expect(dueSoon.valid).toBe(true);
      expect(dueSoon.body).toMatchObject({ event: 'recall.due_soon', request: { id, prospect: '2995' } });
      expect(typeof dueSoon.body.dueAt).toBe('string');
      // Order of the service's own events: heads-up, then the ring.
      const order = svc.find((l) => l.requestId === id && (l.event === 'recall.heads_up' || l.event === 'recall.ringing_agent')).map((l) => l.event);
      expect(order.slice(0, 2)).toEqual(['recall.heads_up', 'recall.ringing_agent']);
      // The lamp's states as the phone saw them, without repeats: lit, blinking from the heads-up on.
      const states = notifies().map(dialogState).filter((s, i, all) => i === 0 || s !== all[i - 1]);
      expect(states.slice(-2)).toEqual(['confirmed', 'early']);

      await phone.answer(ring);
      await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
      await sleep(500);
      await ari.press(TestPhone.id(ring), '3');
      await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished' && l.state === 'CANCELLED', 10000);
      // Once per due time: exactly one recall.due_soon.
      await sleep(1500);
      expect(crm.hits.filter((h) => h.event === 'recall.due_soon')).toHaveLength(1);
    } finally {
      await crm.close();
    }
  }, 120000);

  it('pause feature code *73 from a SIPp handset: a due recall waits; *73 again resumes and it rings', async () => {
    await ari.client.deviceStates.update({ deviceName: 'Stasis:ccp-1001', deviceState: 'NOT_INUSE' });
    const svc = new ServiceProcess({ ...FAST_RECALL, policy: { ...FAST_RECALL.policy, headsUp: '0s' } });
    services.push(svc);
    await svc.start();
    const ports = SANDBOX.testPhones.agentUac;
    const dial73 = () =>
      runSipp({ scenario: 'uac-feature-code.xml', port: ports.sip, mediaPort: ports.media, service: '*73', keys: { agent: '1001' }, auth: { user: '1001', password: 'agent1001' }, timeoutMs: 30000 });

    // Agent 1001's desk phone: registered at the UAS port; at the recall it answers and presses 3.
    const uas = SANDBOX.testPhones.agentUas;
    await register('1001', 'agent1001', uas.sip);
    try {
    const handset = startSipp({ scenario: 'uas-agent-key3.xml', port: uas.sip, mediaPort: uas.media, remote: null, pauseMs: 2000, timeoutMs: 90000, label: 'agent 1001 desk phone' });
    await handset.ready();
    let mark = svc.logs.length;
    const first = await dial73();
    expect(first.code).toBe(0);
    const paused = await svc.waitLog((l) => l.event === 'agent.paused', 10000, mark);
    expect(paused).toMatchObject({ agent: 'PJSIP/1001', by: 'phone', until: null });
    await waitFor('the pause lamp on', async () => (await ari.client.deviceStates.get({ deviceName: 'Stasis:ccp-1001' })).state === 'INUSE' || undefined, 10000);

    // A callback of agent PJSIP/1001 becomes due: it does not ring, it waits as agent-paused.
    simLine('INUSE');
    mark = svc.logs.length;
    const id = await optIn(ari, svc, '2995', 'PJSIP/1001');
    simLine('NOT_INUSE');
    await waitFor('the request waits for the paused agent', () => svc.list().find((r) => r.id === id && r.waitingFor === 'agent-paused') || undefined, 20000);
    await sleep(3000); // several re-checks (agentBusyRecheck 1 s) go by
    expect(svc.find((l) => l.requestId === id && l.event === 'recall.ringing_agent')).toHaveLength(0);
    expect(String(svc.list().find((r) => r.id === id)?.reason)).toMatch(/paused/);

    mark = svc.logs.length;
    const second = await dial73();
    expect(second.code).toBe(0);
    await svc.waitLog((l) => l.event === 'agent.resumed', 10000, mark);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.ringing_agent', 15000, mark);
    await waitFor('the pause lamp off', async () => (await ari.client.deviceStates.get({ deviceName: 'Stasis:ccp-1001' })).state === 'NOT_INUSE' || undefined, 10000);
    // The desk phone answered and pressed 3.
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished' && l.state === 'CANCELLED', 30000, mark);
    } finally {
      await stopAllSipp();
      await unregister('1001', 'agent1001', uas.sip).catch(() => undefined);
    }
  }, 150000);

  it('pause from the page (its door: token cookie-less bearer, CSRF) holds the recall; resume lets it ring', async () => {
    const svc = new ServiceProcess({ ...FAST_RECALL, http: { port: 0, token: 'page-token-heads-up-0123456789' }, policy: { ...FAST_RECALL.policy, headsUp: '0s' } });
    services.push(svc);
    await svc.start();
    const base = `http://127.0.0.1:${Number((await svc.waitLog((l) => l.event === 'http.listening', 10000)).port)}`;
    const auth = { authorization: 'Bearer page-token-heads-up-0123456789' };
    const page = await (await fetch(`${base}/callbacks`, { headers: auth })).text();
    const csrf = /name="cc-csrf" content="([^"]+)"/.exec(page)?.[1] ?? '';
    const post = (p: string, body: unknown, csrfToken = csrf) =>
      fetch(`${base}${p}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'x-cc-csrf': csrfToken }, body: JSON.stringify(body) });
    // Without the page's CSRF token: refused.
    expect((await post('/callbacks/api/pause', { agent: TEST_AGENT_DEVICE }, 'wrong')).status).toBe(403);
    expect((await post('/callbacks/api/pause', { agent: TEST_AGENT_DEVICE })).status).toBe(200);

    simLine('INUSE');
    const mark = ari.events.length;
    const id = await optIn(ari, svc, '2995');
    simLine('NOT_INUSE');
    await waitFor('the request waits for the paused agent', () => svc.list().find((r) => r.id === id && r.waitingFor === 'agent-paused') || undefined, 20000);
    await sleep(2000);
    expect(phone.rings(mark)).toHaveLength(0);

    expect((await post('/callbacks/api/resume', { agent: TEST_AGENT_DEVICE })).status).toBe(200);
    const ring = await phone.nextRing(mark, 20000);
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(500);
    await ari.press(TestPhone.id(ring), '3');
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished' && l.state === 'CANCELLED', 10000);
  }, 120000);

  it('pause from the command line (considerate-callback pause/resume) reaches the running service: the lamp and a held recall', async () => {
    await ari.client.deviceStates.update({ deviceName: 'Stasis:ccp-1001', deviceState: 'NOT_INUSE' });
    const svc = new ServiceProcess({ ...FAST_RECALL, policy: { ...FAST_RECALL.policy, headsUp: '0s' } });
    services.push(svc);
    await svc.start();
    const lamp = async () => (await ari.client.deviceStates.get({ deviceName: 'Stasis:ccp-1001' })).state;
    // A malformed agent is refused (exit 2) and nothing is stored.
    expect(runCli(['pause', 'PJSIP/10;01', '--config', svc.configFile]).status).toBe(2);
    const paused = runCli(['pause', TEST_AGENT_DEVICE, '--by', 'ops', '--json', '--config', svc.configFile]);
    expect(paused.status).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject({ agent: TEST_AGENT_DEVICE, paused: true, until: null, by: 'cli (ops)' });
    // The running service re-reads the pauses: the pause lamp goes on without a request being due.
    await waitFor('the pause lamp on', async () => (await lamp()) === 'INUSE' || undefined, 15000);

    simLine('INUSE');
    const mark = ari.events.length;
    const id = await optIn(ari, svc, '2995');
    simLine('NOT_INUSE');
    await waitFor('the due request waits for the paused agent', () => svc.list().find((r) => r.id === id && r.waitingFor === 'agent-paused') || undefined, 20000);
    await sleep(2000);
    expect(phone.rings(mark)).toHaveLength(0);

    expect(runCli(['resume', TEST_AGENT_DEVICE, '--config', svc.configFile]).status).toBe(0);
    const ring = await phone.nextRing(mark, 20000);
    expect(await lamp()).toBe('NOT_INUSE');
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(500);
    await ari.press(TestPhone.id(ring), '3');
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished' && l.state === 'CANCELLED', 10000);
  }, 120000);

  it('the callbacks page in Chromium: the heads-up at the top, a browser notification, Snooze honoured without a ring', async () => {
    const missing = ensureChromium();
    if (missing) throw new Error(missing);
    const token = 'page-token-heads-up-chromium-0123456789';
    const fakeCrm = new FakeCrm({ secret: 'crm-lookup-heads-up' });
    const crmUrl = await fakeCrm.start();
    const svc = new ServiceProcess({
      ...FAST_RECALL,
      http: { port: 0, token },
      policy: { ...FAST_RECALL.policy, grace: '10s', headsUp: '6s', snooze: '5m' },
      lookup: { url: crmUrl, secret: 'crm-lookup-heads-up' },
      profiles: { sales: { grace: '10s', snooze: '7m' } },
    });
    services.push(svc);
    await svc.start();
    const base = `http://127.0.0.1:${Number((await svc.waitLog((l) => l.event === 'http.listening', 10000)).port)}`;
    const browser = await launchBrowser();
    try {
      await browser.context.grantPermissions(['notifications'], { origin: base });
      const page = await browser.context.newPage();
      // Record the notifications the page raises (the real Notification API is called through).
      await page.addInitScript({
        content: `(() => {
          const Real = window.Notification;
          window.ccSeen = [];
          class Recording extends Real {
            constructor(title, opts) {
              super(title, opts);
              window.ccSeen.push({ title, body: opts && opts.body });
            }
          }
          Object.defineProperty(Recording, 'permission', { get: () => Real.permission });
          window.Notification = Recording;
        })();`,
      });
      await page.goto(`${base}/callbacks?token=${token}`);
      await page.getByTestId('live').filter({ hasText: 'live' }).waitFor();
      expect(await page.evaluate('Notification.permission')).toBe('granted');

      simLine('INUSE');
      const id = await optIn(ari, svc, '2995', undefined, 'sales');
      // The card: the prospect's name from the CRM (stored after the opt-in, pushed to the page) and the profile.
      const card = page.locator(`[data-testid="request"][data-id="${id}"]`);
      await card.getByTestId('prospect').filter({ hasText: 'Eva Berg' }).waitFor({ timeout: 15000 });
      expect(await card.getByTestId('prospect').textContent()).toBe('Eva Berg (Nordlicht AG) · 2995');
      expect(await card.getByTestId('profile').textContent()).toMatch(/^profile: sales · grace 10s.*snooze 7m/);
      const mark = ari.events.length;
      simLine('NOT_INUSE'); // grace 10 s: heads-up after 4 s
      const item = page.getByTestId('heads-up-item');
      await item.waitFor({ timeout: 20000 });
      expect(await item.getAttribute('data-id')).toBe(id);
      expect(await item.textContent()).toContain('Callback soon: Eva Berg (Nordlicht AG) · 2995');
      expect(phone.rings(mark)).toHaveLength(0); // shown before the ring
      const seen = await waitFor(
        'the browser notification',
        async () => {
          const n = (await page.evaluate('window.ccSeen')) as { title: string; body?: string }[];
          return n.length > 0 ? n : undefined;
        },
        10000,
      );
      expect(seen[0].title).toBe('Callback soon: Eva Berg (Nordlicht AG) · 2995');
      expect(seen[0].body).toMatch(/Due at/);
      await page.screenshot({ path: '/tmp/i22a-heads-up.png' });

      // Snooze in the heads-up: honoured, and the recall does not ring at the old due time.
      await page.getByTestId('heads-up-snooze').click();
      await waitFor('the snooze', () => svc.list().find((r) => r.id === id && r.waitingFor === 'snooze') || undefined, 10000);
      await page.getByTestId('heads-up-item').waitFor({ state: 'detached', timeout: 10000 });
      await sleep(8000); // past the old due time
      expect(phone.rings(mark)).toHaveLength(0);
      expect(svc.find((l) => l.requestId === id && l.event === 'recall.ringing_agent')).toHaveLength(0);
    } finally {
      await browser.close();
      await fakeCrm.stop();
    }
  }, 150000);
});

const TEST_AGENT_DEVICE = 'Local/1001@cc-test-phone';
