/**
 * Integration test harness: the real service (the built CLI, spawned), a test ARI app that plays the
 * agent's phone through Local channels, SIPp phones, and the CLI — all against the sandbox Asterisk.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as ari from 'ari-client';
import '../../src/telephony/ari/quiet-swagger';
import { ROOT, SANDBOX } from '../../testkit/sandbox';
import { ROUND_THE_CLOCK, ServiceProcess } from '../../testkit/service-process';
import { waitFor } from '../../testkit/wait';

export { ServiceProcess, runCli, type LogLine } from '../../testkit/service-process';
export { sleep, waitFor } from '../../testkit/wait';

export const ARI = SANDBOX.ari;
// Unique per test process: a second client with the same app name would take the app over.
export const TEST_APP = `cc-test-${process.pid}`;

export function pbxStatus(): { available: boolean; reason?: string } {
  try {
    return JSON.parse(process.env.CC_PBX_STATUS ?? '') as { available: boolean; reason?: string };
  } catch {
    return { available: false, reason: 'global setup did not run' };
  }
}

/** `describe` when the sandbox is up, `describe.skip` (with the reason in the title) when not. */
export function describePbx(name: string, fn: () => void): void {
  const s = pbxStatus();
  if (s.available) describe(name, fn);
  else describe.skip(`${name} [skipped: Asterisk sandbox unavailable]`, fn);
}

export interface AriEvent {
  type: string;
  [k: string]: unknown;
}

/**
 * A second ARI application, `cc-test`, that plays the agent's handset: it originates Local channels
 * into the demo dialplan and sees every event of the channels it created.
 */
export class TestAri {
  client!: ari.Client;
  readonly events: AriEvent[] = [];
  readonly originated: string[] = [];

  /** Hangs up channels whose name contains `fragment` (leftovers of an earlier, interrupted run). */
  async hangupStale(fragment: string): Promise<number> {
    const stale = (await this.client.channels.list()).filter((c) => c.name.includes(fragment));
    await Promise.all(stale.map((c) => this.client.channels.hangup({ channelId: c.id }).catch(() => undefined)));
    return stale.length;
  }

  /** Connects to this process's sandbox, or to another one's ARI (`to`: a second PBX). */
  static async connect(to: { url: string; username: string; password: string } = ARI): Promise<TestAri> {
    const t = new TestAri();
    t.client = await ari.connect(to.url, to.username, to.password);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (t.client as any).on('*', (event: AriEvent) => {
      t.events.push(event);
    });
    await t.client.start(TEST_APP);
    return t;
  }

  /** Disconnects without hanging anything up (the PBX is about to go away with every call on it). */
  disconnect(): void {
    try {
      this.client.stop();
    } catch {
      // closed
    }
  }

  /** Hangs up what this app still holds (channels left in a disconnected app would stay up), then disconnects. */
  async close(): Promise<void> {
    const mine = new Set(
      this.events.filter((e) => e.type === 'StasisStart').map((e) => (e.channel as { id: string }).id),
    );
    for (const id of this.originated) mine.add(id);
    // Only the ones still up (after a soak, `mine` holds hundreds of long-gone channels), and bounded: a
    // request ari-client never settles must not keep the test (and jest) from ending.
    const bounded = <T>(p: Promise<T>) =>
      new Promise<T | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 10_000);
        p.then(
          (v) => (clearTimeout(timer), resolve(v)),
          () => (clearTimeout(timer), resolve(undefined)),
        );
      });
    const live = await bounded(this.client.channels.list().then((list) => list.map((c) => c.id)).catch(() => [...mine]));
    const ids = Array.isArray(live) ? [...mine].filter((id) => live.includes(id)) : [...mine];
    await bounded(Promise.all(ids.map((channelId) => this.client.channels.hangup({ channelId }).catch(() => undefined))));
    try {
      this.client.stop();
    } catch {
      // closed
    }
  }

  /** Events about one channel (by id), in order. */
  of(channelId: string): AriEvent[] {
    return this.events.filter((e) => (e.channel as { id?: string } | undefined)?.id === channelId);
  }

  waitEvent(what: string, pred: (e: AriEvent) => boolean, timeoutMs = 15000): Promise<AriEvent> {
    return waitFor(what, () => this.events.find(pred), timeoutMs);
  }

  /**
   * Plays agent 1001 (or `agent`) dialling `number` from the agents' context. Returns the id of the
   * agent-side channel (the Local ;1 half, which lands in cc-test once the call is answered).
   */
  async agentDials(number: string, opts: { agent?: string; language?: string; callerName?: string; callerNumber?: string; profile?: string } = {}): Promise<string> {
    const channelId = `t-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const variables: Record<string, string> = {};
    // The team profile, as a PBX admin sets it in the dialplan before the routine (Set(CC_PROFILE=berlin)).
    if (opts.profile) variables.CC_PROFILE = opts.profile;
    if (opts.agent) variables.CC_TEST_AGENT = opts.agent;
    if (opts.language) variables.CC_TEST_LANGUAGE = opts.language;
    await this.client.channels.originate({
      endpoint: `Local/${number}@cc-test-agent`,
      app: TEST_APP,
      appArgs: 'agent',
      channelId,
      callerId: `"${opts.callerName ?? 'Agent 1001'}" <${opts.callerNumber ?? '1001'}>`,
      timeout: 60,
      variables,
    });
    this.originated.push(channelId);
    return channelId;
  }

  /** Waits until the agent's side is answered (by the app's offer or by the prospect). */
  answered(channelId: string, timeoutMs = 15000): Promise<AriEvent> {
    return this.waitEvent(`StasisStart of ${channelId}`, (e) => e.type === 'StasisStart' && (e.channel as { id: string }).id === channelId, timeoutMs);
  }

  destroyed(channelId: string, timeoutMs = 20000): Promise<AriEvent> {
    return this.waitEvent(`ChannelDestroyed of ${channelId}`, (e) => e.type === 'ChannelDestroyed' && (e.channel as { id: string }).id === channelId, timeoutMs);
  }

  /** The channel has ended (or, for a channel that entered this app, left it because it was hung up). */
  gone(channelId: string, timeoutMs = 20000): Promise<AriEvent> {
    return this.waitEvent(
      `the end of ${channelId}`,
      (e) => (e.type === 'ChannelDestroyed' || e.type === 'StasisEnd') && (e.channel as { id: string }).id === channelId,
      timeoutMs,
    );
  }

  async press(channelId: string, digits: string): Promise<void> {
    await this.client.channels.sendDTMF({ channelId, dtmf: digits, duration: 120, between: 200 });
  }

  async hangup(channelId: string): Promise<void> {
    await this.client.channels.hangup({ channelId }).catch(() => undefined);
  }
}

/** Runs a CLI command in the sandbox PBX. */
export function pbxCli(command: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'cli', command], { encoding: 'utf8', env });
  return `${r.stdout}${r.stderr}`;
}

/** Sets the simulated prospect line Custom:prospect2995 (see asterisk-conf/extensions.conf). */
export function simLine(state: 'INUSE' | 'NOT_INUSE' | 'RINGING', device = 'Custom:prospect2995', env: NodeJS.ProcessEnv = process.env): void {
  const out = pbxCli(`devstate change ${device} ${state}`, env);
  if (!out.includes(`to ${state}`)) throw new Error(`devstate change failed: ${out}`);
}

/** Settings that make the recall fast enough for tests; all in one place. */
export const FAST_RECALL = {
  offer: { keyTimeout: '3s' },
  policy: {
    grace: '3s',
    firstProbeDelay: '2s',
    backoff: ['2s'],
    snooze: '3s',
    agentWrapUp: '2s',
    agentBusyRecheck: '1s',
    agentRingTimeout: '10s',
    menuTimeout: '4s',
    prospectRingTimeout: '10s',
    recallSafetyMargin: '30s',
  },
  callingHours: ROUND_THE_CLOCK,
  prospects: { internal: [{ pattern: '^2995$', device: 'Custom:prospect${number}' }] },
  recall: { callerIdNumber: '9000' },
};

/**
 * The agent's handset for recalls, as an ARI app: agent device `Local/<ext>@cc-test-phone` rings into
 * this app (the dialplan reads the app name from the global CC_TEST_PHONE_APP).
 */
export class TestPhone {
  constructor(readonly ari: TestAri) {}

  static async attach(ari: TestAri): Promise<TestPhone> {
    await ari.client.asterisk.setGlobalVar({ variable: 'CC_TEST_PHONE_APP', value: TEST_APP });
    return new TestPhone(ari);
  }

  /** Rings that reached the phone, in order (StasisStart events with args ['phone', ext]). */
  rings(after = 0): AriEvent[] {
    return this.ari.events.filter((e, i) => i >= after && e.type === 'StasisStart' && (e.args as string[])[0] === 'phone');
  }

  nextRing(after: number, timeoutMs = 20000): Promise<AriEvent> {
    return waitFor('the agent phone to ring', () => this.rings(after)[0], timeoutMs);
  }

  static caller(ring: AriEvent): { name: string; number: string } {
    return (ring.channel as { caller: { name: string; number: string } }).caller;
  }

  static id(ring: AriEvent): string {
    return (ring.channel as { id: string }).id;
  }

  async answer(ring: AriEvent): Promise<void> {
    await this.ari.client.channels.answer({ channelId: TestPhone.id(ring) });
  }
}

/** The agent's handset in the recall tests (a Local channel into this test's own app). */
export const TEST_AGENT = 'Local/1001@cc-test-phone';

/** Agent `agent` dials the busy `number`, hears the offer and presses #; returns the request id. */
export async function optIn(ari: TestAri, svc: ServiceProcess, number: string, agent = TEST_AGENT, profile?: string): Promise<string> {
  const mark = svc.logs.length;
  const leg = await ari.agentDials(number, { agent, profile });
  await ari.answered(leg);
  await svc.waitLog((l) => l.event === 'offer.started', 15000, mark);
  await ari.press(leg, '#');
  const line = await svc.waitLog((l) => l.event === 'offer.opted_in', 10000, mark);
  await ari.gone(leg);
  return String(line.requestId);
}

/**
 * Asserts that the service's store holds exactly one request, the one `requestId` names: agent
 * PJSIP/1001 ("Agent 1001" <1001>) waiting to call `prospect` back, in English. Returns it.
 */
export function expectOnlyWaitingRequest(svc: ServiceProcess, requestId: unknown, prospect: string): Record<string, unknown> {
  const list = svc.list();
  expect(list).toHaveLength(1);
  expect(list[0]).toMatchObject({
    id: requestId,
    agent: 'PJSIP/1001',
    agentCallerId: { name: 'Agent 1001', number: '1001' },
    prospect,
    state: 'WAITING',
    language: 'en',
  });
  return list[0];
}

/**
 * The environment of a second sandbox beside this run's one (SIP +30, ARI +2, RTP after this one's range + 1000,
 * its chroot copied from this one's; CC_SANDBOX2_DIR and CC_PBX2_RTP_START/END override): for two PBXs, or a
 * fresh Asterisk whose start-up log a test reads whole.
 */
export function secondSandboxEnv(): NodeJS.ProcessEnv {
  const span = SANDBOX.rtp.end - SANDBOX.rtp.start;
  // Asterisk wants an even first RTP port (it warns and rounds an odd one up).
  const start = SANDBOX.rtp.end + 1001 + ((SANDBOX.rtp.end + 1001) % 2);
  return {
    ...process.env,
    CC_SANDBOX_DIR: process.env.CC_SANDBOX2_DIR ?? `${SANDBOX.dir}-2`,
    CC_PBX_SIP_PORT: String(SANDBOX.sipPort + 30),
    CC_PBX_HTTP_PORT: String(SANDBOX.httpPort + 2),
    CC_PBX_RTP_START: process.env.CC_PBX2_RTP_START ?? String(start),
    CC_PBX_RTP_END: process.env.CC_PBX2_RTP_END ?? String(start + span),
    CC_SANDBOX_ROOTFS_FROM: path.join(SANDBOX.dir, 'rootfs'),
  };
}
