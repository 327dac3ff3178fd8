/**
 * Integration test harness: the real service (the built CLI, spawned), a test ARI app that plays the
 * agent's phone through Local channels, SIPp phones, and the CLI — all against the sandbox Asterisk.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ari from 'ari-client';
import { CLI, ROOT } from './paths';
import { onJsonLines } from '../../src/demo/json-lines';

export const ARI = { url: 'http://127.0.0.1:8088', username: 'considerate', password: 'demo-ari-secret' };
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export type LogLine = Record<string, unknown> & { level: string; message: string };

/** The service under test: `considerate-callback run` as a child process with JSON logs. */
export class ServiceProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  private proc?: ChildProcess;
  readonly dir: string;
  readonly configFile: string;
  readonly storePath: string;

  constructor(readonly config: Record<string, unknown> = {}, dir?: string) {
    this.dir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cc-it-'));
    this.storePath = path.join(this.dir, 'callbacks.db');
    this.configFile = path.join(this.dir, 'config.json');
    const base = {
      ari: { url: ARI.url, username: ARI.username, password: ARI.password },
      store: { path: this.storePath },
      log: { level: 'debug', format: 'json' },
      // The tests' agents are also Local/<ext>@cc-test-phone (an ARI app plays their handset).
      dial: { agentDevices: ['PJSIP/*', 'SIP/*', 'Local/*@cc-test-phone'] },
    };
    fs.writeFileSync(this.configFile, JSON.stringify(deepMerge(base, config), null, 2));
  }

  async start(waitConnected = true): Promise<this> {
    const proc = spawn(process.execPath, [CLI, 'run', '--config', this.configFile], {
      cwd: this.dir,
      env: { ...process.env, CC_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    onJsonLines(proc.stdout, (line) => this.logs.push(line as LogLine));
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    if (waitConnected) await this.waitLog((l) => l.message === 'ARI connected', 20000);
    return this;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async waitLog(pred: (l: LogLine) => boolean, timeoutMs = 15000, from = 0): Promise<LogLine> {
    try {
      return await waitFor(`a log line matching ${pred.toString()}`, () => this.logs.slice(from).find(pred), timeoutMs);
    } catch (err) {
      const recent = this.logs.slice(Math.max(from, this.logs.length - 25)).map((l) => JSON.stringify(l));
      throw new Error(`${(err as Error).message}\nservice log since then:\n${recent.join('\n')}\n${this.stderr.join('')}`);
    }
  }

  find(pred: (l: LogLine) => boolean): LogLine[] {
    return this.logs.filter(pred);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    // CC_TEST_LOG_DIR=/tmp/x keeps every service's log for a look after the run.
    if (process.env.CC_TEST_LOG_DIR) {
      fs.mkdirSync(process.env.CC_TEST_LOG_DIR, { recursive: true });
      fs.writeFileSync(path.join(process.env.CC_TEST_LOG_DIR, `${path.basename(this.dir)}-${this.proc?.pid}.log`), this.dump());
    }
    const proc = this.proc;
    if (!proc || !this.running) return proc?.exitCode ?? null;
    const done = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    const code = await done;
    clearTimeout(timer);
    return code;
  }

  /** `considerate-callback list --json` against this service's store. */
  list(): Array<Record<string, unknown>> {
    const r = runCli(['list', '--json', '--config', this.configFile]);
    if (r.status !== 0) throw new Error(`list failed (${r.status}): ${r.stderr}`);
    return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  }

  dump(): string {
    return `--- service logs ---\n${this.logs.map((l) => JSON.stringify(l)).join('\n')}\n--- stderr ---\n${this.stderr.join('')}`;
  }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && av && typeof av === 'object' && !Array.isArray(av)
        ? deepMerge(av as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
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

  static async connect(): Promise<TestAri> {
    const t = new TestAri();
    t.client = await ari.connect(ARI.url, ARI.username, ARI.password);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (t.client as any).on('*', (event: AriEvent) => {
      t.events.push(event);
    });
    await t.client.start(TEST_APP);
    return t;
  }

  /** Hangs up what this app still holds (channels left in a disconnected app would stay up), then disconnects. */
  async close(): Promise<void> {
    const mine = new Set(
      this.events.filter((e) => e.type === 'StasisStart').map((e) => (e.channel as { id: string }).id),
    );
    for (const id of this.originated) mine.add(id);
    await Promise.all([...mine].map((channelId) => this.client.channels.hangup({ channelId }).catch(() => undefined)));
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
  async agentDials(number: string, opts: { agent?: string; language?: string; callerName?: string; callerNumber?: string } = {}): Promise<string> {
    const channelId = `t-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const variables: Record<string, string> = {};
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
export function pbxCli(command: string): string {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/pbx.sh'), 'cli', command], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

/** Sets the simulated prospect line Custom:prospect2995 (see asterisk-conf/extensions.conf). */
export function simLine(state: 'INUSE' | 'NOT_INUSE' | 'RINGING', device = 'Custom:prospect2995'): void {
  const out = pbxCli(`devstate change ${device} ${state}`);
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
  callingHours: {
    timeZone: 'UTC',
    windows: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])),
  },
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
export async function optIn(ari: TestAri, svc: ServiceProcess, number: string, agent = TEST_AGENT): Promise<string> {
  const mark = svc.logs.length;
  const leg = await ari.agentDials(number, { agent });
  await ari.answered(leg);
  await svc.waitLog((l) => l.message === 'busy: offering a callback', 15000, mark);
  await ari.press(leg, '#');
  const line = await svc.waitLog((l) => l.message === 'callback requested' || l.message === 'callback request refreshed', 10000, mark);
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
