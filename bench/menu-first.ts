/**
 * "Answer → first menu word" of a recall (issue 21): how long after the agent picks up the recall they hear
 * "Press 1 …", for prospect numbers of 4, 8 and 12 digits. A measurement, not a test.
 *
 *   npm run build && npx tsc -p tsconfig.tools.json && node .tools-dist/bench/menu-first.js [--runs 3]
 *
 * On the sandbox (scripts/pbx.sh up; the sandbox lock is taken like the bench's): the built service with fast
 * recall settings, Debian's baresip registered as agent 1001 (a real phone; testkit/baresip.ts, ports from
 * CC_REAL_PHONE_PORTS), an ARI observer subscribed to every channel. Per number: the agent opts in at the busy
 * signal (a Local channel into the agents' context as PJSIP/1001, #), the recall rings the phone, the phone
 * answers; the figure is from the agent channel's answer (ChannelStateChange → Up) to Asterisk's
 * PlaybackStarted of `sound:cc-recall-menu` on that channel, and, for comparison, to the first digit of
 * the number. The agent then presses 3 (cancel). Prints one line per run and a summary (median).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as ari from 'ari-client';
import '../src/telephony/ari/quiet-swagger';
import { Baresip, realPhonePorts } from '../testkit/baresip';
import { acquireSandboxLock } from '../testkit/lock';
import { ROOT, SANDBOX } from '../testkit/sandbox';
import { ServiceProcess } from '../testkit/service-process';

const NUMBERS = [
  { digits: 4, number: '2995' },
  { digits: 8, number: '03012345' },
  { digits: 12, number: '004930123456' },
];

interface AriEvent {
  type: string;
  timestamp?: string;
  channel?: { id: string; state?: string };
  playback?: { media_uri?: string; target_uri?: string };
  [k: string]: unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function cli(command: string): string {
  return spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'cli', command], { encoding: 'utf8' }).stdout;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[process.argv.indexOf('--runs') + 1] || 3) || 3;
  const lock = await acquireSandboxLock(SANDBOX.lockDir, { onWait: (o) => console.error(`waiting for pid ${o} to release the sandbox…`) });
  const up = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'up'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'inherit'] });
  if (up.status !== 0) throw new Error('the sandbox did not start');
  const { url, username, password } = SANDBOX.ari;
  const observer = await ari.connect(url, username, password);
  const events: AriEvent[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (observer as any).on('*', (e: AriEvent) => events.push(e));
  const app = `cc-menu-first-${process.pid}`;
  await observer.start(app, true);
  const svc = await new ServiceProcess({
    policy: { grace: '1s', firstProbeDelay: '1s', agentWrapUp: '1s', agentBusyRecheck: '1s', agentRingTimeout: '20s', menuTimeout: '10s' },
    callingHours: { timeZone: 'UTC', windows: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])) },
    prospects: { internal: [{ pattern: '^2995$', device: 'Custom:prospect${number}' }] },
    recall: { callerIdNumber: '9000' },
  }).start();
  const phone = await Baresip.start({ user: '1001', password: 'agent1001', slot: realPhonePorts().agent });
  const results: Array<{ digits: number; menuMs: number; firstDigitMs: number }> = [];
  try {
    for (let run = 1; run <= runs; run++) {
      for (const { digits, number } of NUMBERS) {
        if (number === '2995') cli('devstate change Custom:prospect2995 INUSE');
        // The agent opts in at the busy signal: a Local channel as PJSIP/1001, answered by the offer, #.
        const mark = svc.logs.length;
        const leg = `mf-${process.pid}-${run}-${digits}`;
        await observer.channels.originate({ endpoint: `Local/${number}@cc-test-agent`, app, appArgs: 'agent', channelId: leg, callerId: '"Agent 1001" <1001>', timeout: 30, variables: { CC_TEST_AGENT: 'PJSIP/1001' } });
        await svc.waitLog((l) => l.event === 'offer.started', 20000, mark);
        await sleep(300);
        await observer.channels.sendDTMF({ channelId: leg, dtmf: '#' });
        const opted = await svc.waitLog((l) => l.event === 'offer.opted_in', 10000, mark);
        const id = String(opted.requestId);
        await observer.channels.hangup({ channelId: leg }).catch(() => undefined);
        if (number === '2995') cli('devstate change Custom:prospect2995 NOT_INUSE');
        const ringMark = phone.events.length;
        await phone.waitEvent('the recall ringing', (e) => e.type === 'CALL_INCOMING', 30000, ringMark);
        await phone.accept();
        const channelId = `ccb-${id}-1`;
        const on = (e: AriEvent) => e.channel?.id === channelId || e.playback?.target_uri === `channel:${channelId}`;
        const answered = await waitFor('the agent channel up', () => events.find((e) => on(e) && e.type === 'ChannelStateChange' && e.channel?.state === 'Up'), 10000);
        const menu = await waitFor('the menu playing', () => events.find((e) => on(e) && e.type === 'PlaybackStarted' && e.playback?.media_uri === 'sound:cc-recall-menu'), 10000);
        const digit = await waitFor('the first digit playing', () => events.find((e) => on(e) && e.type === 'PlaybackStarted' && /^sound:digits\//.test(e.playback?.media_uri ?? '')), 15000);
        const t0 = Date.parse(answered.timestamp as string);
        const r = { digits, menuMs: Date.parse(menu.timestamp as string) - t0, firstDigitMs: Date.parse(digit.timestamp as string) - t0 };
        results.push(r);
        console.log(`run ${run}  ${String(digits).padStart(2)} digits (${number.padEnd(12)})  answer → "Press 1": ${(r.menuMs / 1000).toFixed(2)} s   answer → first digit: ${(r.firstDigitMs / 1000).toFixed(2)} s`);
        await phone.press('3');
        await svc.waitLog((l) => l.requestId === id && l.event === 'request.finished', 20000, mark);
        await phone.waitEvent('the recall ending', (e) => e.type === 'CALL_CLOSED', 15000, ringMark);
        await sleep(1500); // the agent's wrap-up gap
      }
    }
  } finally {
    await phone.stop();
    await svc.stop();
    observer.stop();
    lock.release();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log('\nmedian over runs:');
  for (const { digits } of NUMBERS) {
    const mine = results.filter((r) => r.digits === digits);
    console.log(`  ${String(digits).padStart(2)} digits: answer → "Press 1" ${(median(mine.map((r) => r.menuMs)) / 1000).toFixed(2)} s, answer → first digit ${(median(mine.map((r) => r.firstDigitMs)) / 1000).toFixed(2)} s`);
  }
  process.exit(0);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
