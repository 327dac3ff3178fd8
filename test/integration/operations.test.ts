/**
 * Operations on the real Asterisk sandbox (docs/operations.md):
 * - the lamp: a SIPp phone SUBSCRIBEs (Event: dialog) to agent 1001's BLF hint *821001 and sees the
 *   NOTIFY bodies follow a request: idle (terminated) → pending (confirmed) → due/ringing (early) →
 *   cancelled (terminated);
 * - health and metrics: /readyz and /metrics of a running service scraped around a real opt-in, and a
 *   second instance that stands by is not ready;
 * - honest call records: the CDR rows (cdr_csv, Master.csv in the sandbox chroot) of one full story
 *   (`npm run demo`'s: busy → # → recall → 1 → connected).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SANDBOX } from '../../testkit/sandbox';
import { startSipp, stopAllSipp, type SipMessage } from '../../testkit/sipp';
import { FAST_RECALL, optIn, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep, waitFor } from './harness';
import { ROOT } from './paths';

/** The port the service's HTTP listener bound (config http.port 0: a free one), from its log. */
async function httpBase(svc: ServiceProcess): Promise<string> {
  const line = await svc.waitLog((l) => l.event === 'http.listening', 10000);
  return `http://127.0.0.1:${Number(line.port)}`;
}

/** One sample's value in a Prometheus exposition. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

/** The dialog state a dialog-info NOTIFY reports (`terminated`, `confirmed`, `early`). */
function dialogState(m: SipMessage): string | undefined {
  return /<state>([a-z]+)<\/state>/.exec(m.body)?.[1];
}

const OPS = { ...FAST_RECALL, http: { port: 0 } };

describePbx('operations (real Asterisk)', () => {
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

  it('the lamp: a BLF subscription to *821001 follows the request: idle → pending → ringing → cancelled', async () => {
    // Start from a dark lamp whatever an earlier run left.
    await ari.client.deviceStates.update({ deviceName: 'Stasis:cc-1001', deviceState: 'NOT_INUSE' });
    const blf = startSipp({
      scenario: 'subscribe-dialog.xml',
      port: SANDBOX.testPhones.agentUas.sip,
      service: '*821001',
      auth: { user: '1001', password: 'agent1001' },
      keys: { user: '1001', event: 'dialog', accept: 'application/dialog-info+xml' },
      timeoutMs: 120000,
      label: 'BLF phone 1001',
    });
    // A softphone's contact presence on the same hint (Event: presence, PIDF with a note).
    const presence = startSipp({
      scenario: 'subscribe-dialog.xml',
      port: SANDBOX.testPhones.prospectUas.sip,
      service: '*821001',
      auth: { user: '1001', password: 'agent1001' },
      keys: { user: '1001', event: 'presence', accept: 'application/pidf+xml' },
      timeoutMs: 120000,
      label: 'presence phone 1001',
    });
    const presenceCallId = () => presence.messages().find((m) => m.direction === 'sent' && m.method === 'SUBSCRIBE')?.header('Call-ID');
    const notes = () =>
      presence
        .messages()
        .filter((m) => m.direction === 'received' && m.method === 'NOTIFY' && m.header('Call-ID') === presenceCallId())
        .map((m) => /<note>([^<]*)<\/note>/.exec(m.body)?.[1]);
    // Only our subscription's NOTIFYs: a subscription of an earlier, killed run may still be notified at this port.
    const callId = () => blf.messages().find((m) => m.direction === 'sent' && m.method === 'SUBSCRIBE')?.header('Call-ID');
    const notifies = () => blf.messages().filter((m) => m.direction === 'received' && m.method === 'NOTIFY' && m.header('Call-ID') === callId());
    /** Waits for a NOTIFY at index `after` or later that reports `state`; returns the index after it. */
    const nextState = async (state: string, after: number, timeoutMs = 20000) => {
      const i = await waitFor(`a NOTIFY with <state>${state}</state> (after ${after} NOTIFYs)`, () => {
        const all = notifies();
        const at = all.findIndex((x, n) => n >= after && dialogState(x) === state);
        return at >= 0 ? at + 1 : undefined;
      }, timeoutMs);
      const m = notifies()[i - 1];
      expect(m.header('Event')).toMatch(/^dialog/);
      expect(m.header('Content-Type')).toBe('application/dialog-info+xml');
      expect(m.body).toContain('entity="sip:*821001@');
      return i;
    };
    let seen = await nextState('terminated', 0);

    const svc = new ServiceProcess(OPS);
    services.push(svc);
    await svc.start();
    simLine('INUSE');
    const id = await optIn(ari, svc, '2995');
    seen = await nextState('confirmed', seen);
    expect((await ari.client.deviceStates.get({ deviceName: 'Stasis:cc-1001' })).state).toBe('INUSE');

    const mark = ari.events.length;
    simLine('NOT_INUSE'); // the line frees: grace (still in use), then due and ringing
    const ring = await phone.nextRing(mark, 20000);
    seen = await nextState('early', seen);
    expect((await ari.client.deviceStates.get({ deviceName: 'Stasis:cc-1001' })).state).toBe('RINGING');
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(500);
    await ari.press(TestPhone.id(ring), '3');
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished' && l.state === 'CANCELLED', 10000);
    await nextState('terminated', seen);
    expect((await ari.client.deviceStates.get({ deviceName: 'Stasis:cc-1001' })).state).toBe('NOT_INUSE');
    // The order the phone saw, without repeats: dark, lit, blinking, dark.
    const states = notifies().map(dialogState).filter((s, i, all) => i === 0 || s !== all[i - 1]);
    expect(states).toEqual(['terminated', 'confirmed', 'early', 'terminated']);
    await waitFor('the presence NOTIFY of the dark lamp', () => notes().filter((n, i, all) => i === 0 || n !== all[i - 1]).length >= 4 || undefined, 10000);
    expect(notes().filter((n, i, all) => i === 0 || n !== all[i - 1])).toEqual(['Ready', 'On the phone', 'Ringing', 'Ready']);
    // The service logged each lamp change with a stable event name.
    expect(svc.find((l) => l.event === 'lamp.set' && l.device === 'Stasis:cc-1001').map((l) => l.state)).toEqual(['INUSE', 'RINGING', 'NOT_INUSE']);
  }, 90000);

  it('/readyz and /metrics around a real opt-in; a stand-by instance is not ready', async () => {
    const svc = new ServiceProcess(OPS);
    services.push(svc);
    await svc.start();
    const base = await httpBase(svc);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, standby: false, checks: { ari: { ok: true }, lease: { ok: true }, store: { ok: true } } });
    let text = await (await fetch(`${base}/metrics`)).text();
    expect(sample(text, 'considerate_callback_ari_connected')).toBe(1);
    expect(sample(text, 'considerate_callback_lease_held')).toBe(1);
    expect(sample(text, 'considerate_callback_requests_pending', 'state="WAITING"')).toBe(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    simLine('INUSE');
    await optIn(ari, svc, '2995');
    text = await (await fetch(`${base}/metrics`)).text();
    expect(sample(text, 'considerate_callback_opt_ins_total', 'result="created"')).toBe(1);
    expect(sample(text, 'considerate_callback_requests_pending', 'state="WAITING"')).toBe(1);
    // No phone number or agent in any label.
    for (const line of text.split('\n').filter((l) => l.startsWith('considerate_callback_'))) {
      expect(line.replace(/ [-+0-9.e]+$/, '')).not.toMatch(/1001|2995|PJSIP|Local/);
    }

    // A second instance against the same PBX and app stands by: alive, not ready, and says why.
    const second = new ServiceProcess(OPS);
    services.push(second);
    await second.start(false);
    const base2 = await httpBase(second);
    await second.waitLog((l) => l.event === 'ari.standby', 20000);
    expect((await fetch(`${base2}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base2}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ ready: false, standby: true, checks: { ari: { ok: false }, lease: { ok: false, detail: 'held by another instance' } } });
    const text2 = await (await fetch(`${base2}/metrics`)).text();
    expect(sample(text2, 'considerate_callback_lease_standby')).toBe(1);
    expect(sample(text2, 'considerate_callback_lease_held')).toBe(0);
  }, 60000);

  it('honest call records: the CDR rows of one full story (busy → # → recall → 1 → connected)', async () => {
    const csv = path.join(SANDBOX.dir, 'rootfs/var/log/asterisk/cdr-csv/Master.csv');
    const before = fs.existsSync(csv) ? fs.statSync(csv).size : 0;
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const proc = spawn(process.execPath, [path.join(ROOT, '.tools-dist/demo/main.js'), '--grace', '5s'], { cwd: ROOT, env: { ...process.env, CC_HTTP_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      proc.stdout.setEncoding('utf8').on('data', (c: string) => (text += c));
      proc.stderr.setEncoding('utf8').on('data', (c: string) => (text += c));
      proc.on('exit', (c) => resolve({ code: c, out: text }));
    });
    if (code !== 0) throw new Error(`the demo exited ${code}:\n${out}`);
    const id = /request (\w+) stored/.exec(out)?.[1];
    expect(id).toBeDefined();
    // cdr_csv writes when a call ends; the last leg ends when the demo hangs up.
    const rows = await waitFor('the recall\'s call records', () => {
      const all = parseCsv(fs.readFileSync(csv, 'utf8').slice(before));
      return all.some((r) => r.userfield === `cc-callback:${id}`) && all.some((r) => r.userfield === `cc-callback-ring:${id}`) ? all : undefined;
    }, 15000);
    const story = rows.filter((r) => r.src !== '+4930555010'); // the prospect's other call, before the story

    // 1. The agent's call to the busy prospect: one record, BUSY. The offer is not recorded (CC_CDR_OFFER=skip).
    const agentCalls = story.filter((r) => r.channel.startsWith('PJSIP/1001-') && r.dst === '2001');
    expect(agentCalls).toEqual([expect.objectContaining({ src: '1001', lastapp: 'Dial', disposition: 'BUSY', billsec: '0' })]);
    expect(story.filter((r) => r.lastapp === 'Stasis' && r.lastdata.includes(',offer,'))).toEqual([]);
    // 2. The recall rings the agent: from the service number, the agent's account, marked.
    const ringLeg = story.filter((r) => r.userfield === `cc-callback-ring:${id}`);
    // The demo asks its fake CRM for the prospect's name: the label is the name when it fits the display.
    expect(ringLeg).toEqual([expect.objectContaining({ accountcode: '1001', src: '9000', clid: '"CB Anna Schmidt" <9000>', disposition: 'ANSWERED' })]);
    expect(ringLeg[0].channel).toMatch(/^PJSIP\/1001-/);
    // 3. The connected callback: from the agent (own caller ID and account) to the prospect, marked.
    const connected = story.filter((r) => r.userfield === `cc-callback:${id}`);
    expect(connected).toEqual([expect.objectContaining({ accountcode: '1001', src: '1001', clid: '"Agent 1001" <1001>', dst: '2001', lastapp: 'Dial', disposition: 'ANSWERED' })]);
    expect(connected[0].dstchannel).toMatch(/^PJSIP\/2001-/);
    // 4. Nothing pretends the prospect called, and the simulators leave no records.
    expect(story.filter((r) => r.src === '2001' || r.clid.includes('Prospect 2001'))).toEqual([]);
    expect(story.filter((r) => r.dcontext === 'cc-sim')).toEqual([]);
    expect(story).toHaveLength(3);
  }, 150000);
});

interface CdrRow {
  accountcode: string;
  src: string;
  dst: string;
  dcontext: string;
  clid: string;
  channel: string;
  dstchannel: string;
  lastapp: string;
  lastdata: string;
  start: string;
  answer: string;
  end: string;
  duration: string;
  billsec: string;
  disposition: string;
  amaflags: string;
  uniqueid: string;
  userfield: string;
}

const CDR_COLUMNS: (keyof CdrRow)[] = ['accountcode', 'src', 'dst', 'dcontext', 'clid', 'channel', 'dstchannel', 'lastapp', 'lastdata', 'start', 'answer', 'end', 'duration', 'billsec', 'disposition', 'amaflags', 'uniqueid', 'userfield'];

/** cdr_csv's Master.csv (asterisk-conf/cdr.conf: loguniqueid, loguserfield): quoted fields, "" inside quotes. */
function parseCsv(text: string): CdrRow[] {
  const rows: CdrRow[] = [];
  for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
    const fields: string[] = [];
    let i = 0;
    while (i <= line.length) {
      if (line[i] === '"') {
        let v = '';
        i++;
        for (;;) {
          if (line[i] === '"' && line[i + 1] === '"') {
            v += '"';
            i += 2;
          } else if (line[i] === '"' || i >= line.length) {
            i++;
            break;
          } else v += line[i++];
        }
        fields.push(v);
        i++; // the comma
      } else {
        const end = line.indexOf(',', i);
        fields.push(line.slice(i, end < 0 ? line.length : end));
        i = end < 0 ? line.length + 1 : end + 1;
      }
    }
    rows.push(Object.fromEntries(CDR_COLUMNS.map((c, n) => [c, fields[n] ?? ''])) as unknown as CdrRow);
  }
  return rows;
}
