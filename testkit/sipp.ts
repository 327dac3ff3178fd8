/**
 * SIPp from TypeScript: scripted SIP phones against the sandbox Asterisk (the demo's phones in
 * demo/main.ts, the integration tests' and the bench's).
 *
 * - `startSipp` spawns one SIPp run in its own temp directory with `-trace_msg` / `-trace_err`; `done()`
 *   awaits its exit and returns the exit code plus the parsed messages log. SIPp's own `-timeout` ends a
 *   stuck run; if SIPp ignores it, we kill it a little later. Every run is tracked: `stopAllSipp()` kills
 *   whatever is left, also when a caller failed half-way.
 * - `register` / `unregister` make a SIPp port the contact of an endpoint (must be the port of the UAS
 *   that will answer: Asterisk stores the REGISTER's source address).
 * - `callerView(invite)`: what a phone would display for an INVITE it received (From display name and
 *   user, P-Asserted-Identity / Remote-Party-ID, Alert-Info).
 *
 * Scenario names without a slash are looked up in testkit/scenarios/ (or `SippOptions.scenarioDir`).
 * Nothing happens at import time.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SANDBOX, SCENARIOS } from './sandbox';
import { sleep } from './wait';

export const SIPP_BIN = process.env.CC_SIPP ?? 'sipp';
/** Asterisk's PJSIP UDP transport in the sandbox. */
export const ASTERISK_SIP = SANDBOX.sip;
/**
 * The test phones' ports (testkit/sandbox.ts derives them from the sandbox's SIP port). SIPp binds the
 * media port and media port + 2 (plus its control port 8888 or the next free one), so media ports of
 * phones that run at the same time must not collide.
 */
export const PORTS = SANDBOX.testPhones;

export interface SippOptions {
  /** A scenario file name in `scenarioDir` (`uas-486.xml`), or a path (containing a slash). */
  scenario: string;
  /** Where scenario file names are looked up. */
  scenarioDir?: string;
  /** Local SIP port (`-p`). */
  port: number;
  /**
   * Local address (`-i`), 127.0.0.1 by default. The compose test binds the host's own address: Asterisk in a
   * container reaches the host there, not at its own loopback.
   */
  localIp?: string;
  /** Local RTP port (`-mp`); SIPp's default (6000) when omitted. */
  mediaPort?: number;
  /** Remote host: Asterisk by default; `null` for a UAS that only answers. */
  remote?: string | null;
  /** `-s`: the number called (UAC) or the user registered. */
  service?: string;
  /** `-au` / `-ap`: digest credentials. */
  auth?: { user: string; password: string };
  /** `-key name value` for `[name]` in the scenario. */
  keys?: Record<string, string>;
  /** `-d`: duration of `<pause/>` without `milliseconds` (ms). */
  pauseMs?: number;
  /** SIPp's global timeout (`-timeout`, with `-timeout_error`); we kill the process 5 s after it. Default 30 s. */
  timeoutMs?: number;
  /** `-m`, default 1. */
  calls?: number;
  extraArgs?: string[];
  /** Name in error messages; defaults to the scenario's file name. */
  label?: string;
  /** Keep the temp directory (logs) after the run; also with CC_KEEP_SIPP_LOGS=1. */
  keepDir?: boolean;
  /**
   * Log every message (`-trace_msg`, default true). The bench's sustained load turns it off: at 100 calls/s
   * the message log is thousands of lines a second, written by SIPp on the same cores as the service.
   */
  traceMessages?: boolean;
}

export interface SippResult {
  label: string;
  args: string[];
  /**
   * SIPp's exit code: 0 all calls succeeded, 1 a call failed, 255 fatal (also the global -timeout with
   * -timeout_error), null if killed hard. SIPp exits 0 on SIGTERM: check `killed` too.
   */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** We had to kill it (it outlived its own -timeout by 5 s, or `stop()` was called). */
  killed: boolean;
  durationMs: number;
  /** The parsed `-trace_msg` log, in order. */
  messages: SipMessage[];
  /** The `-trace_err` log (unexpected messages, timeouts), may be empty. */
  errors: string;
  /** The end of stdout/stderr (SIPp's screens). */
  output: string;
}

const COMPACT: Record<string, string> = { f: 'from', t: 'to', i: 'call-id', m: 'contact', v: 'via', l: 'content-length', c: 'content-type', k: 'supported' };

export class SipMessage {
  constructor(
    readonly direction: 'sent' | 'received',
    readonly time: string,
    readonly startLine: string,
    readonly headers: ReadonlyArray<{ name: string; value: string }>,
    readonly body: string,
  ) {}

  /** The request method (`INVITE`), or undefined for a response. */
  get method(): string | undefined {
    return this.startLine.startsWith('SIP/2.0 ') ? undefined : this.startLine.split(' ')[0];
  }

  /** The status code of a response (`486`), or undefined for a request. */
  get status(): number | undefined {
    const m = /^SIP\/2\.0 (\d{3})/.exec(this.startLine);
    return m ? Number(m[1]) : undefined;
  }

  /** The CSeq method (also for responses: `200` to an `INVITE`). */
  get cseqMethod(): string | undefined {
    return this.header('CSeq')?.split(/\s+/)[1];
  }

  /** First value of a header (case-insensitive, compact forms too). */
  header(name: string): string | undefined {
    return this.headerAll(name)[0];
  }

  headerAll(name: string): string[] {
    const want = name.toLowerCase();
    return this.headers.filter((h) => (COMPACT[h.name.toLowerCase()] ?? h.name.toLowerCase()) === want).map((h) => h.value);
  }

  toString(): string {
    return `${this.direction} ${this.startLine}`;
  }
}

/** Parses a SIPp `-trace_msg` file. */
export function parseMessagesLog(text: string): SipMessage[] {
  const out: SipMessage[] = [];
  const blocks = text.split(/^-{20,} (\d{4}-\d\d-\d\d [\d:.]+)\r?\n/m);
  // split with a capture group: [before, time1, block1, time2, block2, ...]
  for (let i = 1; i + 1 < blocks.length; i += 2) {
    const time = blocks[i];
    const lines = blocks[i + 1].split(/\r?\n/);
    const kind = lines.shift() ?? '';
    const direction = /message sent/.test(kind) ? 'sent' : /message received/.test(kind) ? 'received' : undefined;
    if (!direction) continue;
    while (lines.length && lines[0].trim() === '') lines.shift();
    const startLine = lines.shift();
    if (!startLine) continue;
    const headers: Array<{ name: string; value: string }> = [];
    let j = 0;
    for (; j < lines.length && lines[j].trim() !== ''; j++) {
      const line = lines[j];
      if (/^[ \t]/.test(line) && headers.length) {
        headers[headers.length - 1].value += ` ${line.trim()}`;
        continue;
      }
      const colon = line.indexOf(':');
      if (colon > 0) headers.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
    }
    const body = lines
      .slice(j + 1)
      .join('\n')
      .replace(/\n+$/, '');
    out.push(new SipMessage(direction, time, startLine.trim(), headers, body));
  }
  return out;
}

export interface NameAddr {
  /** Display name, unquoted (`Callback: 2001`); undefined when there is none. */
  display?: string;
  uri: string;
  /** User part of a sip/sips/tel URI (`9000`). */
  user?: string;
  host?: string;
  /** Header parameters after the address (`tag`, `party`, ...). */
  params: Record<string, string>;
}

/** Parses a name-addr / addr-spec header value: `"Callback: 2001" <sip:9000@127.0.0.1>;tag=x`. */
export function parseNameAddr(value: string): NameAddr {
  let rest = value.trim();
  let display: string | undefined;
  let uri: string;
  const quoted = /^"((?:[^"\\]|\\.)*)"\s*/.exec(rest);
  if (quoted) {
    display = quoted[1].replace(/\\(.)/g, '$1');
    rest = rest.slice(quoted[0].length);
  }
  const lt = rest.indexOf('<');
  if (lt >= 0) {
    if (display === undefined && lt > 0) display = rest.slice(0, lt).trim() || undefined;
    const gt = rest.indexOf('>', lt);
    uri = rest.slice(lt + 1, gt < 0 ? undefined : gt);
    rest = gt < 0 ? '' : rest.slice(gt + 1);
  } else {
    // addr-spec: parameters after ";" belong to the header
    const semi = rest.indexOf(';');
    uri = semi < 0 ? rest : rest.slice(0, semi);
    rest = semi < 0 ? '' : rest.slice(semi);
  }
  const params: Record<string, string> = {};
  for (const p of rest.split(';').slice(1)) {
    const [k, ...v] = p.split('=');
    if (k.trim()) params[k.trim().toLowerCase()] = v.join('=').trim();
  }
  const m = /^(?:sips?|tel):(?:([^@;>]*)@)?([^;>?]*)/i.exec(uri);
  let user: string | undefined;
  let host: string | undefined;
  if (m) {
    if (/^tel:/i.test(uri)) user = m[2];
    else {
      user = m[1] !== undefined ? decodeURIComponent(m[1].split(':')[0]) : undefined;
      host = m[2];
    }
  }
  return { display, uri, user, host, params };
}

/** What a phone shows for an INVITE it received. */
export interface CallerView {
  requestUri: string;
  callId?: string;
  from: NameAddr;
  to: NameAddr;
  /** P-Asserted-Identity, if sent (PJSIP `send_pai=yes`). */
  pai?: NameAddr;
  /** Remote-Party-ID, if sent (PJSIP `send_rpid=yes`, as in the demo PBX). */
  rpid?: NameAddr;
  /** Raw Alert-Info value (`<http://127.0.0.1/Bellcore-dr4>`), if any. */
  alertInfo?: string;
}

export function callerView(invite: SipMessage): CallerView {
  const hdr = (n: string) => invite.header(n);
  const opt = (n: string) => {
    const v = hdr(n);
    return v === undefined ? undefined : parseNameAddr(v);
  };
  return {
    requestUri: invite.startLine.split(' ')[1] ?? '',
    callId: hdr('Call-ID'),
    from: parseNameAddr(hdr('From') ?? ''),
    to: parseNameAddr(hdr('To') ?? ''),
    pai: opt('P-Asserted-Identity'),
    rpid: opt('Remote-Party-ID'),
    alertInfo: hdr('Alert-Info'),
  };
}

/** Finds a message: `{ direction: 'received', method: 'INVITE' }`, `{ status: 486 }`, … */
export function findMessage(
  messages: readonly SipMessage[],
  q: { direction?: 'sent' | 'received'; method?: string; status?: number; cseqMethod?: string },
): SipMessage | undefined {
  return messages.find(
    (m) =>
      (q.direction === undefined || m.direction === q.direction) &&
      (q.method === undefined || m.method === q.method) &&
      (q.status === undefined || m.status === q.status) &&
      (q.cseqMethod === undefined || m.cseqMethod === q.cseqMethod),
  );
}

/** A one-line summary per message (`received INVITE`, `sent 180 Ringing`, …), for assertions and failures. */
export function ladder(messages: readonly SipMessage[]): string[] {
  return messages.map((m) => `${m.direction} ${m.status !== undefined ? m.startLine.slice(8) : m.method}`);
}

/** Is a UDP port bound on this host (any address)? Linux only; `undefined` when unknown. */
export function udpPortBound(port: number): boolean | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let known = false;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    known = true;
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local?.endsWith(hex)) return true;
    }
  }
  return known ? false : undefined;
}

export function sippAvailable(): boolean {
  const r = spawnSync(SIPP_BIN, ['-v'], { encoding: 'utf8' });
  return !r.error && /SIPp v/.test(`${r.stdout}${r.stderr}`);
}

const live = new Set<SippRun>();
let exitHookInstalled = false;
const TAIL = 20000;

export class SippRun {
  readonly label: string;
  readonly args: string[];
  readonly dir: string;
  readonly messageFile: string;
  readonly errorFile: string;
  private readonly proc: ChildProcess;
  private readonly started = Date.now();
  private output = '';
  private killed = false;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private result?: Promise<SippResult>;
  private readonly killTimer: NodeJS.Timeout;

  constructor(readonly opts: SippOptions) {
    const scenario = path.isAbsolute(opts.scenario) || opts.scenario.includes('/') ? path.resolve(opts.scenario) : path.join(opts.scenarioDir ?? SCENARIOS, opts.scenario);
    if (!fs.existsSync(scenario)) throw new Error(`SIPp scenario not found: ${scenario}`);
    this.label = opts.label ?? path.basename(scenario);
    if (udpPortBound(opts.port)) {
      throw new Error(`${this.label}: UDP port ${opts.port} is already in use (a SIPp left over, or another test run?); see \`ss -ulpn\``);
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-sipp-'));
    this.messageFile = path.join(this.dir, 'messages.log');
    this.errorFile = path.join(this.dir, 'errors.log');
    const timeoutMs = opts.timeoutMs ?? 30000;
    const args: string[] = [];
    const remote = opts.remote === undefined ? ASTERISK_SIP : opts.remote;
    if (remote) args.push(remote);
    args.push('-sf', scenario, '-i', opts.localIp ?? '127.0.0.1', '-p', String(opts.port));
    if (opts.mediaPort !== undefined) args.push('-mp', String(opts.mediaPort));
    if (opts.service !== undefined) args.push('-s', opts.service);
    if (opts.auth) args.push('-au', opts.auth.user, '-ap', opts.auth.password);
    for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, v);
    if (opts.pauseMs !== undefined) args.push('-d', String(opts.pauseMs));
    args.push('-m', String(opts.calls ?? 1), '-nostdin', '-timeout', `${Math.ceil(timeoutMs / 1000)}s`, '-timeout_error');
    if (opts.traceMessages !== false) args.push('-trace_msg', '-message_file', this.messageFile);
    args.push('-trace_err', '-error_file', this.errorFile);
    args.push(...(opts.extraArgs ?? []));
    this.args = args;

    this.proc = spawn(SIPP_BIN, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-TAIL);
    };
    this.proc.stdout?.on('data', keep);
    this.proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.proc.once('error', (err) => {
        this.output += `\n[spawn ${SIPP_BIN} failed: ${err.message}]`;
        resolve({ code: null, signal: null });
      });
      this.proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
    live.add(this);
    installExitHook();
    // SIPp's own -timeout should end it; this is the backstop.
    this.killTimer = setTimeout(() => void this.stop(), Math.ceil(timeoutMs / 1000) * 1000 + 5000);
    this.killTimer.unref();
    void this.exited.then(() => {
      clearTimeout(this.killTimer);
      live.delete(this);
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null && live.has(this);
  }

  /** The messages logged so far (the file grows while SIPp runs). */
  messages(): SipMessage[] {
    try {
      return parseMessagesLog(fs.readFileSync(this.messageFile, 'utf8'));
    } catch {
      return [];
    }
  }

  /** Waits until SIPp has bound its SIP port (a UAS is ready to receive). */
  async ready(timeoutMs = 5000): Promise<this> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const bound = udpPortBound(this.opts.port);
      if (bound === undefined) {
        await sleep(300);
        return this;
      }
      if (bound) return this;
      if (!this.running) throw new Error(`${this.label} exited before binding port ${this.opts.port}:\n${describeSipp(await this.done())}`);
      if (Date.now() > end) throw new Error(`${this.label} did not bind port ${this.opts.port} within ${timeoutMs} ms`);
      await sleep(25);
    }
  }

  /** Waits for a message in the log while SIPp runs (e.g. the INVITE a UAS received). */
  async waitMessage(what: string, pred: (m: SipMessage) => boolean, timeoutMs = 15000): Promise<SipMessage> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages().find(pred);
      if (m) return m;
      if (!this.running) {
        const r = await this.done();
        const late = r.messages.find(pred);
        if (late) return late;
        throw new Error(`${this.label} ended without ${what}:\n${describeSipp(r)}`);
      }
      if (Date.now() > end) throw new Error(`${this.label}: no ${what} within ${timeoutMs} ms; so far: ${ladder(this.messages()).join(', ')}`);
      await sleep(50);
    }
  }

  /** Awaits the exit; reads the logs; removes the temp directory (unless kept). Same result every call. */
  done(): Promise<SippResult> {
    this.result ??= this.exited.then(({ code, signal }) => {
      let text = '';
      let errors = '';
      try {
        text = fs.readFileSync(this.messageFile, 'utf8');
      } catch {
        // no message was logged
      }
      try {
        errors = fs.readFileSync(this.errorFile, 'utf8');
      } catch {
        // no error was logged
      }
      if (!this.opts.keepDir && process.env.CC_KEEP_SIPP_LOGS !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
      return {
        label: this.label,
        args: this.args,
        code,
        signal,
        killed: this.killed,
        durationMs: Date.now() - this.started,
        messages: parseMessagesLog(text),
        errors,
        output: this.output,
      };
    });
    return this.result;
  }

  /** Ends the run now (SIGTERM, SIGKILL after 2 s) and returns its result. */
  async stop(): Promise<SippResult> {
    if (this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid !== undefined) {
      this.killed = true;
      this.proc.kill('SIGTERM');
      const hard = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(hard);
    }
    return this.done();
  }
}

/** Starts a SIPp run (returns at once; `await run.ready()` before a UAS is called). */
export function startSipp(opts: SippOptions): SippRun {
  return new SippRun(opts);
}

/** Runs SIPp to the end. */
export function runSipp(opts: SippOptions): Promise<SippResult> {
  return startSipp(opts).done();
}

/** Kills every SIPp run still going (tests: afterEach/afterAll; the demo: its clean-up). */
export async function stopAllSipp(): Promise<void> {
  await Promise.all([...live].map((r) => r.stop()));
}

/** The run's outcome for an assertion message. */
export function describeSipp(r: SippResult): string {
  const screen = r.output
    .split('\n')
    .filter((l) => /Failed call|Successful call|Unexpected|Timeout|error|Error|Aborting|unable|Unable/i.test(l))
    .slice(-15)
    .join('\n');
  return [
    `${r.label}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.killed ? ' [killed]' : ''} after ${r.durationMs} ms`,
    `sipp ${r.args.join(' ')}`,
    `messages: ${ladder(r.messages).join(', ') || '(none)'}`,
    r.errors.trim() ? `errors log:\n${r.errors.trim().split('\n').slice(-20).join('\n')}` : '',
    screen ? `screen:\n${screen}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** Throws with the run's details unless SIPp exited 0 on its own. */
export function expectSippOk(r: SippResult): SippResult {
  if (r.code !== 0 || r.killed) throw new Error(`SIPp run failed\n${describeSipp(r)}`);
  return r;
}

/** Where `register` / `unregister` send to and bind (default: the sandbox's Asterisk, 127.0.0.1). */
export interface RegisterTarget {
  scenarioDir?: string;
  remote?: string;
  localIp?: string;
}

/** REGISTERs `user` with the contact 127.0.0.1:`port` (the port of the UAS that should get its calls). */
export async function register(user: string, password: string, port: number, target?: string | RegisterTarget): Promise<SippResult> {
  const t = typeof target === 'string' ? { scenarioDir: target } : (target ?? {});
  return expectSippOk(await runSipp({ scenario: 'register.xml', ...t, port, service: user, auth: { user, password }, timeoutMs: 10000, label: `register ${user}@${port}` }));
}

/** Removes that registration again (Expires: 0). */
export async function unregister(user: string, password: string, port: number, target?: string | RegisterTarget): Promise<SippResult> {
  const t = typeof target === 'string' ? { scenarioDir: target } : (target ?? {});
  return expectSippOk(await runSipp({ scenario: 'unregister.xml', ...t, port, service: user, auth: { user, password }, timeoutMs: 10000, label: `unregister ${user}@${port}` }));
}

/** A process that exits with SIPp still running must not leave it behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const r of live) {
      if (r.pid === undefined) continue;
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}
