/**
 * Fakes of the telephony ports for flow unit tests, in the manner of CyCoreSystems/ari `client/arimocks`:
 * every call is recorded, and the test decides what the PBX does (a prompt ends, a key, a hang-up).
 *
 * FakeCallPort keeps one prompt and one key wait at a time, as the real ports do: a key in the prompt's
 * stop keys ends the prompt (and, in the real port, everything still queued); otherwise it goes to a
 * running `waitKey`; otherwise it is dropped.
 */
import { PassThrough } from 'node:stream';
import type { CallPort, DeviceStates, KeyOutcome, PlayOptions, PlayOutcome, Switchboard, SwitchboardPort } from '../../src/telephony/port';
import { createLogger, type Logger } from '../../src/logging/log';

export class FakeCallPort implements SwitchboardPort {
  /** Every call in order: 'answer', 'setLanguage en', 'play sound:a,digits:12 [#1]', 'stop', 'waitKey 300 [12]', 'hangup normal', 'refuse'. */
  readonly calls: string[] = [];
  language: string | undefined;
  caller: { name?: string; number?: string };
  dialStatus: string | undefined;
  /** Plays end by themselves on the next tick (prompts that simply play); off: the test ends them. */
  autoFinish = true;
  /** A media item that "cannot be played" (the real port reports it as failed). */
  missing = new Set<string>();
  /** Makes `answer()` reject (a call action that fails). */
  failAnswer?: Error;
  released = false;
  private isGone = false;
  private prompt?: { media: readonly string[]; stopKeys: string; resolve: (o: PlayOutcome) => void };
  private wait?: { keys?: string; resolve: (o: KeyOutcome) => void };
  private readonly goneListeners: ((cause?: number) => void)[] = [];

  constructor(
    readonly channelId = 'chan-1',
    info: { language?: string; caller?: { name?: string; number?: string } } = {},
  ) {
    this.language = info.language;
    this.caller = info.caller ?? {};
  }

  get gone(): boolean {
    return this.isGone;
  }

  /** The media of the prompt playing now, if any. */
  get playing(): readonly string[] | undefined {
    return this.prompt?.media;
  }

  get waiting(): boolean {
    return this.wait !== undefined;
  }

  async answer(): Promise<void> {
    this.calls.push('answer');
    if (this.failAnswer) throw this.failAnswer;
    if (this.isGone) throw new Error('channel not found');
  }

  async setLanguage(language: string): Promise<void> {
    this.calls.push(`setLanguage ${language}`);
  }

  play(media: readonly string[], opts: PlayOptions = {}): Promise<PlayOutcome> {
    this.calls.push(`play ${media.join(',')}${opts.stopKeys ? ` [${opts.stopKeys}]` : ''}`);
    if (this.isGone) return Promise.resolve({ type: 'hangup' });
    this.prompt?.resolve({ type: 'finished' });
    return new Promise((resolve) => {
      const prompt = {
        media,
        stopKeys: opts.stopKeys ?? '',
        resolve: (o: PlayOutcome) => {
          if (this.prompt === prompt) this.prompt = undefined;
          resolve(o);
        },
      };
      this.prompt = prompt;
      if (this.autoFinish) setImmediate(() => this.finishPrompt());
    });
  }

  /** The prompt playing now reaches its end (every item played). */
  finishPrompt(): void {
    const p = this.prompt;
    if (!p) return;
    const failed = p.media.find((m) => this.missing.has(m));
    p.resolve({ type: 'finished', failed: failed ? { media: failed } : undefined });
  }

  async stop(): Promise<void> {
    this.calls.push('stop');
    this.prompt?.resolve({ type: 'finished' });
  }

  waitKey(ms: number, keys?: string): Promise<KeyOutcome> {
    this.calls.push(`waitKey ${ms}${keys ? ` [${keys}]` : ''}`);
    if (this.isGone) return Promise.resolve({ type: 'hangup' });
    return new Promise((resolve) => {
      const wait = {
        keys,
        resolve: (o: KeyOutcome) => {
          if (this.wait === wait) this.wait = undefined;
          resolve(o);
        },
      };
      this.wait = wait;
    });
  }

  /** The key wait runs out. */
  expireWait(): void {
    this.wait?.resolve({ type: 'timeout' });
  }

  /** The caller presses a key. Returns what took it: 'prompt', 'wait' or 'dropped'. */
  press(digit: string): 'prompt' | 'wait' | 'dropped' {
    if (this.prompt && this.prompt.stopKeys.includes(digit)) {
      this.prompt.resolve({ type: 'key', digit, at: performance.now() });
      return 'prompt';
    }
    if (this.wait && (this.wait.keys === undefined || this.wait.keys.includes(digit))) {
      this.wait.resolve({ type: 'key', digit, at: performance.now() });
      return 'wait';
    }
    return 'dropped';
  }

  /** The caller hangs up (or the channel is destroyed with `cause`). */
  hangUp(cause?: number): void {
    if (this.isGone) return;
    this.isGone = true;
    this.prompt?.resolve({ type: 'hangup' });
    this.wait?.resolve({ type: 'hangup' });
    for (const fn of this.goneListeners.splice(0)) fn(cause);
  }

  async hangup(reason: 'normal' | 'busy' = 'normal'): Promise<void> {
    this.calls.push(`hangup ${reason}`);
  }

  async refuse(): Promise<void> {
    this.calls.push('refuse');
  }

  onGone(fn: (cause?: number) => void): void {
    if (this.isGone) fn();
    else this.goneListeners.push(fn);
  }

  release(): void {
    this.released = true;
  }
}

/** A switchboard whose calls are recorded; ports are FakeCallPorts the test can reach by channel id. */
export class FakeSwitchboard implements Switchboard {
  readonly calls: string[] = [];
  readonly ports = new Map<string, FakeCallPort>();
  /** Makes the next originate to an endpoint starting with this reject. */
  failOriginate?: { endpoint: string; error: Error };

  async originate(p: Parameters<Switchboard['originate']>[0]): Promise<void> {
    this.calls.push(`originate ${p.endpoint} ${p.channelId} ${p.appArgs} ${p.callerId} ${p.timeoutSec}`);
    if (this.failOriginate && p.endpoint.startsWith(this.failOriginate.endpoint)) throw this.failOriginate.error;
  }

  port(channelId: string, info?: { language?: string; caller?: { name?: string; number?: string } }): FakeCallPort {
    const port = new FakeCallPort(channelId, info);
    this.ports.set(channelId, port);
    return port;
  }

  async createBridge(bridgeId: string): Promise<void> {
    this.calls.push(`createBridge ${bridgeId}`);
  }

  async addToBridge(bridgeId: string, channelId: string): Promise<void> {
    this.calls.push(`addToBridge ${bridgeId} ${channelId}`);
  }

  async destroyBridge(bridgeId: string): Promise<void> {
    this.calls.push(`destroyBridge ${bridgeId}`);
  }

  async hangupChannel(channelId: string): Promise<void> {
    this.calls.push(`hangup ${channelId}`);
  }
}

/** Device states in memory. */
export class FakeDeviceStates implements DeviceStates {
  readonly states = new Map<string, string>();
  readonly subscribed: string[] = [];
  connected = true;
  failFor = new Set<string>();
  private listener?: (device: string, state: string) => void;

  async subscribe(device: string): Promise<void> {
    if (this.failFor.has(device)) throw new Error(`no such device ${device}`);
    this.subscribed.push(device);
  }

  async get(device: string): Promise<string> {
    return this.states.get(device) ?? 'UNKNOWN';
  }

  onChange(fn: (device: string, state: string) => void): void {
    this.listener = fn;
  }

  /** The PBX reports a state change. */
  change(device: string, state: string): void {
    this.states.set(device, state);
    this.listener?.(device, state);
  }
}

/** A logger whose JSON lines the test can read. */
export function capturedLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  const log = createLogger({ format: 'json', stream, level: 'debug' });
  // winston writes synchronously into the transform; parse on write to keep order.
  const write = stream.write.bind(stream);
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
  stream.resume();
  return { log, lines };
}

/** Lets pending promise callbacks and immediates run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

export type { CallPort };
