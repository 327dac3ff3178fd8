/**
 * The agent's feature code (*82) and the CRM webhook, end to end on the real Asterisk sandbox with the
 * service spawned from the built CLI.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { ServiceProcess, TestAri, describePbx, runCli, simLine, waitFor } from './harness';
import { verify } from '../../src/webhook/payload';

const SECRET = 'crm-webhook-secret-7f3a';

interface Hit {
  body: string;
  valid: boolean;
  delivery: string;
}

function crmServer(port = 0): Promise<{ hits: Hit[]; port: number; close: () => Promise<void> }> {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const valid = verify(body, SECRET, req.headers['x-considerate-signature'] as string | undefined, req.headers['x-considerate-timestamp'] as string | undefined);
      hits.push({ body, valid, delivery: String(req.headers['x-considerate-delivery']) });
      res.statusCode = valid ? 204 : 401;
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () =>
      resolve({
        hits,
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      }),
    ),
  );
}

describePbx('agent feature code *82 (real Asterisk)', () => {
  let svc: ServiceProcess;
  let phone: TestAri;
  let crm: Awaited<ReturnType<typeof crmServer>>;

  beforeAll(async () => {
    crm = await crmServer();
    svc = await new ServiceProcess({
      offer: { keyTimeout: '2s' },
      webhook: { url: `http://127.0.0.1:${crm.port}/cc`, secret: SECRET, backoff: ['1s'] },
    }).start();
    phone = await TestAri.connect();
  });

  afterAll(async () => {
    await phone?.close();
    await svc?.stop();
    await crm?.close();
  });

  it('announces the count and the next number; 1 cancels the next callback (CANCELLED, webhook sent)', async () => {
    let mark = svc.logs.length;
    const offerLeg = await phone.agentDials('2991');
    await phone.answered(offerLeg);
    await svc.waitLog((l) => l.event === 'offer.started', 15000, mark);
    await phone.press(offerLeg, '#');
    const requested = await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark);
    await phone.gone(offerLeg);

    mark = svc.logs.length;
    const leg = await phone.agentDials('*82');
    await phone.answered(leg);
    const asked = await svc.waitLog((l) => l.event === 'pending.asked', 10000, mark);
    expect(asked).toMatchObject({ agent: 'PJSIP/1001', pending: 1, next: requested.requestId, nextProspect: '2991' });
    expect(asked.channelId).toBe(`${leg};2`);
    await phone.press(leg, '1');
    const cancelled = await svc.waitLog((l) => l.event === 'pending.cancelled', 10000, mark);
    expect(cancelled).toMatchObject({ requestId: requested.requestId, channelId: `${leg};2`, key: '1' });
    await phone.gone(leg);
    const r = svc.list().find((x) => x.id === requested.requestId);
    expect(r).toMatchObject({ state: 'CANCELLED' });
    expect(String(r?.reason)).toMatch(/agent/);

    // The CRM got requested and cancelled, signed, once each.
    await waitFor('two webhook deliveries', () => crm.hits.length >= 2, 10000);
    await new Promise((res) => setTimeout(res, 500));
    expect(crm.hits.map((h) => JSON.parse(h.body).event)).toEqual(['requested', 'cancelled']);
    expect(crm.hits.every((h) => h.valid)).toBe(true);
    expect(crm.hits[1].delivery).toBe(`cc-${String(requested.requestId)}-cancelled`);
    expect(svc.dump()).not.toContain(SECRET);
  });

  it('2 cancels all of the agent\'s pending callbacks and leaves other agents\' alone', async () => {
    const agent = { agent: 'PJSIP/1002', callerNumber: '1002', callerName: 'Agent 1002' };
    const ids: string[] = [];
    simLine('INUSE'); // 2995 is busy too
    for (const [number, who] of [['2991', agent], ['2995', agent], ['2991', { agent: 'PJSIP/1003', callerNumber: '1003', callerName: 'Agent 1003' }]] as const) {
      const mark = svc.logs.length;
      const leg = await phone.agentDials(number, who);
      await phone.answered(leg);
      await svc.waitLog((l) => l.event === 'offer.started', 15000, mark);
      await phone.press(leg, '#');
      ids.push(String((await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark)).requestId));
      await phone.gone(leg);
    }
    simLine('NOT_INUSE');
    const mark = svc.logs.length;
    const leg = await phone.agentDials('*82', agent);
    await phone.answered(leg);
    const asked = await svc.waitLog((l) => l.event === 'pending.asked', 10000, mark);
    expect(asked).toMatchObject({ agent: 'PJSIP/1002', pending: 2 });
    await phone.press(leg, '2');
    await waitFor('both cancelled', () => svc.logs.slice(mark).filter((l) => l.event === 'pending.cancelled').length === 2, 10000);
    await phone.gone(leg);
    const states = Object.fromEntries(svc.list().filter((r) => ids.includes(String(r.id))).map((r) => [r.id, r.state]));
    expect(states).toEqual({ [ids[0]]: 'CANCELLED', [ids[1]]: 'CANCELLED', [ids[2]]: 'WAITING' });
  });

  it('with nothing pending the agent hears the count and the call ends', async () => {
    const mark = svc.logs.length;
    const leg = await phone.agentDials('*82', { agent: 'PJSIP/1009', callerNumber: '1009', callerName: 'Agent 1009' });
    await phone.answered(leg);
    const asked = await svc.waitLog((l) => l.event === 'pending.asked', 10000, mark);
    expect(asked).toMatchObject({ agent: 'PJSIP/1009', pending: 0 });
    await phone.gone(leg);
  });
});

describePbx('CRM webhook across a restart (real service)', () => {
  it('events queued while the CRM is down, plus a CLI cancel while the service is stopped, are delivered once after restart', async () => {
    // A port with nobody listening yet.
    const probe = await crmServer();
    const port = probe.port;
    await probe.close();
    const config = { offer: { keyTimeout: '2s' }, webhook: { url: `http://127.0.0.1:${port}/cc`, secret: SECRET, backoff: ['1s'] } };
    const first = await new ServiceProcess(config).start();
    const phone = await TestAri.connect();
    let requestId = '';
    try {
      const leg = await phone.agentDials('2991', { agent: 'PJSIP/1004', callerNumber: '1004', callerName: 'Agent 1004' });
      await phone.answered(leg);
      await first.waitLog((l) => l.event === 'offer.started');
      await phone.press(leg, '#');
      requestId = String((await first.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created')).requestId);
      await first.waitLog((l) => l.event === 'webhook.retry', 10000);
      await phone.gone(leg);
    } finally {
      await phone.close();
      await first.stop();
    }
    // The service is down: the command line cancels and queues the notification in the same transaction.
    const c = runCli(['cancel', requestId, '--config', first.configFile]);
    expect(c.status).toBe(0);

    const crm = await crmServer(port);
    const second = await new ServiceProcess(config, first.dir).start();
    try {
      await waitFor('both events delivered', () => crm.hits.length >= 2, 15000);
      await new Promise((res) => setTimeout(res, 1500));
      expect(crm.hits.map((h) => JSON.parse(h.body).event)).toEqual(['requested', 'cancelled']);
      expect(crm.hits.every((h) => h.valid)).toBe(true);
      expect(new Set(crm.hits.map((h) => h.delivery)).size).toBe(2);
      expect(first.dump() + second.dump()).not.toContain(SECRET);
    } finally {
      await second.stop();
      await crm.close();
    }
  });
});
