/**
 * The callbacks page and the demo's browser phones in a real browser (Debian's Chromium through
 * playwright-core, testkit/browser.ts) against the sandbox Asterisk and the spawned service:
 *
 * 1. The page lists a request live after a SIPp agent presses `#`, shows the grace counting down when
 *    the line frees, and a cancel from the page ends it; the store (CLI `list --json`) and `show` agree.
 *    The page is opened as a user does by default: with the URL the service printed (generated token),
 *    which leaves an HttpOnly SameSite=Strict cookie; without it the page answers 401.
 * 2. The browser agent phone (WebRTC, JsSIP) makes 2995 busy with `*71`, dials 2995, presses `#`, frees
 *    the line with `*72`, receives the recall labelled `Callback: 2995` after the grace, presses 1 and is
 *    connected to the simulated prospect's echo; the browser's RTCPeerConnection received audio packets.
 *
 * Screenshots land in test-artifacts/screenshots/ (kept out of git); `CC_SCREENSHOT_DIR=docs/screenshots npm test`
 * refreshes the ones README.md and docs/try-it.md show.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { ensureChromium, launchBrowser } from '../../testkit/browser';
import { ROOT } from '../../testkit/sandbox';
import { FAST_RECALL, ServiceProcess, describePbx, pbxCli, runCli, simLine, waitFor } from './harness';
import { PORTS, expectSippOk, runSipp, sippAvailable, stopAllSipp } from './sipp';

const SHOTS = path.resolve(ROOT, process.env.CC_SCREENSHOT_DIR ?? 'test-artifacts/screenshots');
const AGENT = { user: '1001', password: 'agent1001' };

interface ListedRequest {
  id: string;
  agent: string;
  prospect: string;
  state: string;
  reason: string;
}

function listJson(svc: ServiceProcess): ListedRequest[] {
  const r = runCli(['list', '--json', '-c', svc.configFile]);
  if (r.status !== 0) throw new Error(`list failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ListedRequest[];
}

async function httpPort(svc: ServiceProcess): Promise<number> {
  const line = await svc.waitLog((l) => l.event === 'http.listening', 15000, 0, 'the HTTP listener');
  return line.port as number;
}

/**
 * The address the service printed at start for `page` with its generated token (no http.token is configured
 * here: the default), as a user copies it from the terminal; the first visit turns it into a cookie.
 */
async function printedUrl(svc: ServiceProcess, page: '/callbacks' | '/phones'): Promise<string> {
  await svc.waitLog((l) => l.event === 'http.token_generated', 15000, 0, 'the page URL with the generated token');
  const re = new RegExp(`http://127\\.0\\.0\\.1:\\d+${page}\\?token=[\\w-]+`);
  return waitFor('the printed page URL', () => re.exec(svc.stderr.join(''))?.[0], 5000);
}

describePbx('the callbacks page and the browser phones, in Chromium', () => {
  let browser: { context: BrowserContext; close: () => Promise<void> } | undefined;

  beforeAll(async () => {
    const missing = ensureChromium();
    if (missing) throw new Error(missing);
    browser = await launchBrowser();
    fs.mkdirSync(SHOTS, { recursive: true });
  }, 600_000);

  afterAll(async () => {
    await stopAllSipp();
    await browser?.close();
    simLine('NOT_INUSE');
  });

  describe('the callbacks page', () => {
    let svc: ServiceProcess;
    let page: Page;

    beforeAll(async () => {
      if (!sippAvailable()) throw new Error('sipp is not installed (Debian: apt-get install sip-tester)');
      simLine('NOT_INUSE');
      svc = await new ServiceProcess({
        ...FAST_RECALL,
        // A grace long enough to watch it count down, and to cancel within it.
        policy: { ...FAST_RECALL.policy, grace: '45s', snooze: '5m' },
        http: { enabled: true, port: 0 },
      }).start();
    });

    afterAll(async () => {
      await page?.close();
      await svc?.stop();
    });

    it('lists a request live after a SIPp agent presses #, counts the grace down, and cancels it from the page', async () => {
      const base = `http://127.0.0.1:${await httpPort(svc)}`;
      page = await browser!.context.newPage();
      await page.setViewportSize({ width: 420, height: 860 }); // a phone-sized screen
      // Closed without the token; the printed URL opens it and leaves a cookie (the address bar loses the token).
      expect((await page.goto(`${base}/callbacks`))?.status()).toBe(401);
      await page.goto(await printedUrl(svc, '/callbacks'));
      expect(page.url()).toBe(`${base}/callbacks`);
      const cookies = await browser!.context.cookies(base);
      expect(cookies.find((c) => c.name === 'cc_token')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      await page.getByTestId('live').filter({ hasText: 'live' }).waitFor();
      expect(await page.getByTestId('request').count()).toBe(0);

      // The SIPp agent 1001 dials the busy simulated line 2995 and presses # at the offer.
      simLine('INUSE');
      expectSippOk(
        await runSipp({
          scenario: 'uac-busy-pound.xml',
          port: PORTS.agentUac.sip,
          mediaPort: PORTS.agentUac.media,
          service: '2995',
          keys: { agent: AGENT.user },
          auth: AGENT,
          timeoutMs: 60000,
        }),
      );
      // The page shows it without a reload (server-sent events).
      const card = page.getByTestId('request').first();
      await card.locator('[data-testid="state"]', { hasText: 'WAITING' }).waitFor({ timeout: 15000 });
      const stored = await waitFor('the stored request', () => listJson(svc).find((r) => r.prospect === '2995' && r.state === 'WAITING'), 10000);
      expect(await card.getAttribute('data-id')).toBe(stored.id);
      expect(await card.getByTestId('reason').textContent()).toBe(stored.reason);

      // The line frees: GRACE, and the countdown goes down on the page.
      simLine('NOT_INUSE');
      await card.locator('[data-testid="state"]', { hasText: 'GRACE' }).waitFor({ timeout: 15000 });
      const left = card.getByTestId('grace-left');
      const seconds = async () => Number(/(\d+) s left/.exec((await left.textContent()) ?? '')?.[1] ?? NaN);
      const first = await seconds();
      expect(first).toBeGreaterThan(0);
      await waitFor('the countdown to go down', async () => ((await seconds()) < first ? true : undefined), 10000);
      await page.screenshot({ path: path.join(SHOTS, 'callbacks-list.png'), fullPage: true });
      await page.setViewportSize({ width: 760, height: 860 });
      await card.screenshot({ path: path.join(SHOTS, 'callbacks-timeline.png') });
      await page.setViewportSize({ width: 420, height: 860 });

      // "Why?" shows the same text as the CLI's show.
      await card.getByTestId('why').click();
      const shown = (await card.getByTestId('show').textContent()) ?? '';
      const cli = runCli(['show', stored.id, '-c', svc.configFile]);
      expect(shown.split('\n')[0]).toBe(cli.stdout.split('\n')[0]);
      expect(shown).toContain('History:');

      // Snooze from the page: through the engine, recorded as the web's snooze; the card follows live.
      await card.getByTestId('snooze').click();
      await card.getByTestId('note').filter({ hasText: 'Snoozed' }).waitFor({ timeout: 10000 });
      const snoozed = await waitFor('the snooze in the store', () => listJson(svc).find((r) => r.id === stored.id && r.reason.includes('snooze')), 10000);
      await card.getByTestId('reason').filter({ hasText: snoozed.reason }).waitFor({ timeout: 10000 });
      const snoozeEvents = (JSON.parse(runCli(['show', stored.id, '--json', '-c', svc.configFile]).stdout) as { events: Array<{ type: string; reason: string }> }).events;
      expect(snoozeEvents.at(-1)).toMatchObject({ type: 'agent-snoozed', reason: expect.stringContaining('snoozed by web') });

      // Cancel from the page (it asks first).
      page.once('dialog', (d) => void d.accept());
      await card.getByTestId('cancel').click();
      await card.locator('[data-testid="state"]', { hasText: 'CANCELLED' }).waitFor({ timeout: 10000 });
      const after = listJson(svc).find((r) => r.id === stored.id)!;
      expect(after.state).toBe('CANCELLED');
      expect(after.reason).toContain('cancelled by web');
      const show = runCli(['show', stored.id, '--json', '-c', svc.configFile]);
      const events = (JSON.parse(show.stdout) as { events: Array<{ to: string; reason: string }> }).events;
      expect(events.at(-1)).toMatchObject({ to: 'CANCELLED', reason: expect.stringContaining('cancelled by web') });
      await page.screenshot({ path: path.join(SHOTS, 'callbacks-cancelled.png'), fullPage: true });

      // Filters (the stream is re-opened with them): by state, by agent.
      await page.getByTestId('filter-state').selectOption('PENDING');
      await page.getByTestId('live').filter({ hasText: 'live' }).waitFor();
      await waitFor('the pending filter', async () => ((await page.getByTestId('request').count()) === 0 ? true : undefined), 10000);
      await page.getByTestId('filter-state').selectOption('CANCELLED');
      await page.locator(`[data-testid="request"][data-id="${stored.id}"]`).waitFor({ timeout: 10000 });
      await page.getByTestId('filter-agent').selectOption('PJSIP/1001');
      await page.locator(`[data-testid="request"][data-id="${stored.id}"]`).waitFor({ timeout: 10000 });
      expect(await page.getByTestId('request').count()).toBe(1);

      // The explain view: the dry run with the running configuration (grace 45s).
      await page.goto(`${base}/callbacks#explain`);
      await page.getByTestId('explain-run').click();
      await page.getByTestId('explain-out').filter({ hasText: 'The callback fires at' }).waitFor();
      expect(await page.getByTestId('explain-out').textContent()).toContain('grace 45s');
      await page.screenshot({ path: path.join(SHOTS, 'callbacks-explain.png'), fullPage: true });
    });
  });

  describe('the browser phones', () => {
    let svc: ServiceProcess;
    let page: Page;

    beforeAll(async () => {
      simLine('NOT_INUSE');
      svc = await new ServiceProcess({
        ...FAST_RECALL,
        offer: { keyTimeout: '6s' },
        policy: { ...FAST_RECALL.policy, grace: '5s', agentRingTimeout: '30s', menuTimeout: '10s' },
        http: { enabled: true, port: 0 },
        web: { phones: true },
      }).start();
    });

    afterAll(async () => {
      await page?.close();
      await svc?.stop();
    });

    it('agent 1001 in the browser: *71, 2995, #, *72, the recall "Callback: 2995", 1, connected with audio flowing', async () => {
      const base = `http://127.0.0.1:${await httpPort(svc)}`;
      page = await browser!.context.newPage();
      await page.setViewportSize({ width: 900, height: 900 });
      await page.goto(await printedUrl(svc, '/phones'));
      expect(page.url()).toBe(`${base}/phones`);
      const agent = page.getByTestId('phone-agent');
      await agent.getByTestId('reg').filter({ hasText: /^registered$/ }).waitFor({ timeout: 20000 });
      await page.getByTestId('phone-prospect').getByTestId('reg').filter({ hasText: /^registered$/ }).waitFor({ timeout: 20000 });
      const state = () => page.evaluate(() => (globalThis as unknown as { phones: { agent: { state: string } } }).phones.agent.state);
      const dial = async (number: string) => {
        await agent.getByTestId('number').fill(number);
        await agent.getByTestId('call').click();
      };
      const idle = () => waitFor('the agent phone to be idle', async () => ((await state()).startsWith('idle') ? true : undefined), 30000);

      // *71: the simulated prospect 2995 is on a call.
      await dial('*71');
      await idle();
      expect(pbxDevstate()).toContain('INUSE');

      // 2995: busy → the offer; the agent presses # on the keypad (RFC 4733).
      await dial('2995');
      await waitFor('the offer to answer', async () => ((await state()) === 'connected' ? true : undefined), 20000);
      await agent.getByTestId('key-#').click();
      const stored = await waitFor('the stored request', () => listJson(svc).find((r) => r.prospect === '2995' && r.agent === 'PJSIP/webrtc1001'), 20000);
      expect(stored.state).toBe('WAITING');
      await idle();

      // *72: the line is free; after the grace the browser phone rings as "Callback: 2995".
      await dial('*72');
      await idle();
      await agent.getByTestId('cid').filter({ hasText: 'Callback: 2995' }).waitFor({ timeout: 30000 });
      expect(await agent.getByTestId('cid-number').textContent()).toBe('<9000>');
      expect(await page.evaluate(() => (globalThis as unknown as { phones: { agent: { callerId: unknown } } }).phones.agent.callerId)).toEqual({ name: 'Callback: 2995', number: '9000' });
      await page.screenshot({ path: path.join(SHOTS, 'phones-recall.png'), fullPage: true });

      // Answer, press 1: connected to the simulated prospect (an echo), and audio flows into the browser.
      await agent.getByTestId('answer').click();
      await waitFor('the recall to be answered', async () => ((await state()) === 'connected' ? true : undefined), 10000);
      await waitFor('the menu', () => (listJson(svc).find((r) => r.id === stored.id)?.reason.includes('menu') ? true : undefined), 10000);
      await agent.getByTestId('key-1').click();
      const done = await waitFor('the callback to complete', () => listJson(svc).find((r) => r.id === stored.id && r.state === 'COMPLETED'), 30000);
      expect(done.state).toBe('COMPLETED');
      const before = await page.evaluate(() => (globalThis as unknown as { audioPacketsReceived: (w: string) => Promise<number> }).audioPacketsReceived('agent'));
      await waitFor(
        'audio packets to keep arriving in the browser',
        async () => {
          const n = await page.evaluate(() => (globalThis as unknown as { audioPacketsReceived: (w: string) => Promise<number> }).audioPacketsReceived('agent'));
          return n > before + 50 ? n : undefined;
        },
        15000,
      );
      await page.screenshot({ path: path.join(SHOTS, 'phones-connected.png'), fullPage: true });
      await agent.getByTestId('hangup').click();
      await idle();
    });

    it('agent 1001 calls prospect 2001, both in the browser: 2001 shows "Agent 1001" large, answers, audio both ways', async () => {
      const agent = page.getByTestId('phone-agent');
      const prospect = page.getByTestId('phone-prospect');
      type Phones = { phones: Record<string, { state: string; callerId: unknown }>; audioPacketsReceived: (w: string) => Promise<number> };
      const stateOf = (who: string) => page.evaluate((w) => (globalThis as unknown as Phones).phones[w].state, who);
      await agent.getByTestId('number').fill('2001');
      await agent.getByTestId('call').click();
      await prospect.getByTestId('cid').filter({ hasText: 'Agent 1001' }).waitFor({ timeout: 20000 });
      expect(await prospect.getByTestId('cid-number').textContent()).toBe('<1001>');
      await prospect.getByTestId('answer').click();
      await waitFor('both phones connected', async () => ((await stateOf('agent')) === 'connected' && (await stateOf('prospect')) === 'connected' ? true : undefined), 15000);
      for (const who of ['agent', 'prospect']) {
        await waitFor(`audio packets arriving at the ${who}`, async () => ((await page.evaluate((w) => (globalThis as unknown as Phones).audioPacketsReceived(w), who)) > 50 ? true : undefined), 15000);
      }
      await page.screenshot({ path: path.join(SHOTS, 'phones-call.png'), fullPage: true });
      await prospect.getByTestId('hangup').click();
      await waitFor('both phones idle', async () => ((await stateOf('agent')).startsWith('idle') && (await stateOf('prospect')).startsWith('idle') ? true : undefined), 15000);
      // A plain answered call: no callback request was made.
      expect(listJson(svc).filter((r) => r.prospect === '2001')).toEqual([]);
    });
  });
});

function pbxDevstate(): string {
  return pbxCli('devstate list');
}
