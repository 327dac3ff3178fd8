/**
 * Asterisk loads our files without a complaint (issue 21, item 5):
 * - a fresh Asterisk (a second sandbox: SIP port + 30, ARI + 2) loads every shipped file — asterisk-conf/*.conf
 *   and dialplan/considerate-callback.conf — and logs no WARNING or ERROR while it starts;
 * - the connected-line guard of dialplan/considerate-callback.conf ([considerate-callback-recall-cid]) does
 *   what its comment says: it runs on the recall's Local/…;1 channel only, and the prospect's display and the
 *   call record show the agent's own caller ID, never the recall's label or the service number.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, SANDBOX, sandboxFrom } from '../../testkit/sandbox';
import { FAST_RECALL, ServiceProcess, TEST_APP, TestAri, TestPhone, describePbx, optIn, secondSandboxEnv, sleep, waitFor } from './harness';
import { PORTS, callerView, expectSippOk, register, startSipp, stopAllSipp, unregister } from './sipp';

/**
 * Asterisk 22.10's core prints this before its logger runs, with Debian's own stasis.conf as with ours
 * (its stasis options were renamed from threadpool to taskpool): not about our files.
 */
const CORE_NOISE = [/^Could not find option 'minimum_size' with type 'threadpool' in module 'stasis'$/];

/** The console log of the sandbox's last start (scripts/pbx.sh appends "=== <time> pbx.sh up" before each). */
function lastStart(logFile: string): string[] {
  const lines = fs.readFileSync(logFile, 'utf8').split('\n');
  let from = 0;
  lines.forEach((l, i) => {
    if (/^=== .* pbx\.sh up$/.test(l)) from = i;
  });
  return lines.slice(from);
}

describePbx('Asterisk loads every shipped file without a complaint (a fresh second sandbox)', () => {
  const env2 = secondSandboxEnv();
  const second = sandboxFrom(env2);
  const pbx = (...args: string[]) => spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), ...args], { env: env2, encoding: 'utf8' });

  beforeAll(() => {
    // A start of its own: stop it if it runs, so that the log below is of one whole start.
    pbx('down');
    const up = pbx('up');
    if (up.status !== 0) throw new Error(`second sandbox did not start: ${up.stdout}${up.stderr}`);
  }, 300000);

  afterAll(() => {
    pbx('down');
  });

  it('no WARNING or ERROR while starting, and every shipped file is loaded', () => {
    const log = lastStart(path.join(second.dir, 'asterisk.log'));
    expect(log.join('\n')).toContain('Asterisk Ready.');
    const complaints = log.filter((l) => /\b(WARNING|ERROR)\[\d+\]/.test(l) || /^(Could not|Unable to|Error|Warning)\b/i.test(l)).filter((l) => !CORE_NOISE.some((re) => re.test(l.trim())));
    expect(complaints).toEqual([]);

    const loaded = pbx('cli', 'config list').stdout;
    const shipped = [...fs.readdirSync(path.join(ROOT, 'asterisk-conf')).filter((f) => f.endsWith('.conf')), 'considerate-callback.conf'];
    // websocket_client.conf and stasis.conf are read by modules that do not register them with `config list`.
    const unlisted = new Set(['websocket_client.conf', 'stasis.conf', 'cel.conf', 'udptl.conf']);
    const missing = shipped.filter((f) => !unlisted.has(f) && !loaded.includes(`/etc/asterisk/${f}`));
    expect(missing).toEqual([]);
  });

  it('the dialplan line with the connected-line guard is read whole (the ";" is escaped)', () => {
    const out = pbx('cli', 'dialplan show s@considerate-callback-recall-cid').stdout;
    expect(out).toContain('GotoIf($["${CHANNEL:-2}" != ";1" | "${CC_CALLBACK_CID_NUM}" = ""]?done)');
  });
});

describePbx('the connected-line guard does what its comment says (a recall to prospect 2001, SIPp)', () => {
  let ari: TestAri;
  let phone: TestPhone;
  let svc: ServiceProcess | undefined;
  const PROSPECT = { user: '2001', password: 'prospect2001' };

  beforeAll(async () => {
    ari = await TestAri.connect();
    phone = await TestPhone.attach(ari);
    await register(PROSPECT.user, PROSPECT.password, PORTS.prospectUas.sip);
  });

  afterAll(async () => {
    await svc?.stop();
    await stopAllSipp();
    await unregister(PROSPECT.user, PROSPECT.password, PORTS.prospectUas.sip);
    await ari?.close();
  });

  it('runs on the recall\'s Local …;1 only; the prospect sees the agent, and so does the call record', async () => {
    const csv = path.join(SANDBOX.dir, 'rootfs/var/log/asterisk/cdr-csv/Master.csv');
    const cdrBefore = fs.existsSync(csv) ? fs.statSync(csv).size : 0;
    const consoleLog = path.join(SANDBOX.dir, 'asterisk.log');
    const logBefore = fs.statSync(consoleLog).size;
    svc = await new ServiceProcess({ ...FAST_RECALL, prospects: { internal: [{ pattern: '^200\\d$', device: 'PJSIP/${number}' }] } }).start();

    // 2001 busy (486) at the agent's call; the agent presses #.
    const busy = await startSipp({ scenario: 'uas-486.xml', port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media, remote: null, timeoutMs: 30000 }).ready();
    const id = await optIn(ari, svc, '2001');
    expectSippOk(await busy.done());
    // From now on 2001 answers (and answers re-INVITEs: connected-line updates).
    const answering = await startSipp({ scenario: 'uas-answer-reinvite.xml', port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media, remote: null, timeoutMs: 120000 }).ready();
    const ring = await phone.nextRing(0, 40000);
    await phone.answer(ring);
    await svc.waitLog((l) => l.requestId === id && l.event === 'recall.agent_answered', 10000);
    await sleep(500);
    await ari.press(TestPhone.id(ring), '1');
    await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished' && l.state === 'COMPLETED', 20000);
    // Bridged for a moment: connected-line updates flow now.
    await sleep(2000);
    await ari.hangup(TestPhone.id(ring));
    const uas = expectSippOk(await answering.done());

    // The prospect's display: every request it received names the agent (1001), never the label or 9000.
    const received = uas.messages.filter((m) => m.direction === 'received' && (m.method === 'INVITE' || m.method === 'UPDATE'));
    expect(received.length).toBeGreaterThanOrEqual(1);
    for (const m of received) {
      expect(callerView(m).from).toMatchObject({ display: 'Agent 1001', user: '1001' });
      for (const h of ['Remote-Party-ID', 'P-Asserted-Identity']) {
        const v = m.header(h);
        if (v) expect(v).toMatch(/"Agent 1001" <sip:1001@/);
      }
      expect(m.headers.map((h) => `${h.name}: ${h.value}`).join("\n")).not.toMatch(/"Callback|sip:9000@/); // (the PBX's User-Agent says "Considerate Callback")
    }

    // The guard passed on the recall's Local …;1 channel only, and set the caller ID there only.
    const log = fs.readFileSync(consoleLog, 'utf8').slice(logBefore);
    const guard = [...log.matchAll(/\[s@considerate-callback-recall-cid:1\] GotoIf\("([^"]+)", "([01])\?done"\)/g)].map((m) => [m[1], m[2]]);
    // Asterisk runs the subroutine on both halves of the Local channel: on ;1 it passes (0), on ;2 it jumps to
    // the end (1) — which is what the escaped ";1" is for.
    expect(guard.filter(([c]) => /^Local\/2001@cc-outbound-[0-9a-f]+;1$/.test(c)).map(([, j]) => j)).toContain('0');
    for (const [channel, jumped] of guard) expect([channel, jumped]).toEqual([channel, channel.endsWith(';1') ? '0' : '1']);
    const sets = [...log.matchAll(/\[s@considerate-callback-recall-cid:[23]\] Set\("([^"]+)", "CONNECTEDLINE\((num|name),i\)=([^"]*)"\)/g)].map((m) => [m[1].endsWith(';1'), m[2], m[3]]);
    expect(sets).toEqual(expect.arrayContaining([[true, 'num', '1001'], [true, 'name', 'Agent 1001']]));
    expect(sets.every(([onOne]) => onOne)).toBe(true);

    // The call record of the connected callback: from the agent, not from the label or the service number.
    const rows = await waitFor('the callback\'s call record', () => {
      const text = fs.existsSync(csv) ? fs.readFileSync(csv, 'utf8').slice(cdrBefore) : '';
      const line = text.split('\n').find((l) => l.includes(`"cc-callback:${id}"`));
      return line;
    }, 15000);
    // cdr_csv: src "1001", clid "Agent 1001" <1001> (quotes doubled inside the quoted field).
    expect(rows).toContain('"1001","2001","cc-outbound","""Agent 1001"" <1001>"');
    expect(rows).not.toMatch(/Callback|<9000>/);
  }, 150000);

  it('on any other channel the guard jumps to the end: a Local …;2 half running it changes nothing', async () => {
    const consoleLog = path.join(SANDBOX.dir, 'asterisk.log');
    const logBefore = fs.statSync(consoleLog).size;
    const channelId = `guard-${Date.now().toString(36)}`;
    // The ;2 half runs the subroutine; the inheritable variable reaches it, so only the channel-name test decides.
    await ari.client.channels.originate({
      endpoint: 'Local/s@considerate-callback-recall-cid',
      app: TEST_APP,
      appArgs: 'guard',
      channelId,
      callerId: '"Callback: 2001" <9000>',
      timeout: 5,
      variables: { _CC_CALLBACK_CID_NUM: '1001', _CC_CALLBACK_CID_NAME: 'Agent 1001' },
    });
    const line = await waitFor('the guard on the ;2 half', () => /\[s@considerate-callback-recall-cid:1\] GotoIf\("(Local\/s@considerate-callback-recall-cid-[0-9a-f]+;2)", "([01])\?done"\)/.exec(fs.readFileSync(consoleLog, 'utf8').slice(logBefore)) ?? undefined, 10000);
    expect(line[2]).toBe('1');
    await sleep(300);
    const after = fs.readFileSync(consoleLog, 'utf8').slice(logBefore);
    expect(after).not.toMatch(/considerate-callback-recall-cid:[23]\] Set\("Local\/s@considerate-callback-recall-cid-[0-9a-f]+;2"/);
    await ari.client.channels.hangup({ channelId }).catch(() => undefined);
  }, 30000);
});
