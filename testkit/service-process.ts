/**
 * The service under test: `considerate-callback run` (the built CLI) as a child process with JSON logs,
 * for the integration tests, the demo and the bench. Its log lines are parsed as they come; callers wait
 * on them (by their stable `event` field or other structured fields, not by message text).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { EventName } from '../src/logging/events';
import os from 'node:os';
import path from 'node:path';
import { onJsonLines } from './json-lines';
import { CLI, SANDBOX } from './sandbox';
import { waitFor } from './wait';

/** One JSON log line of the service; `event` is one of the catalogue's names (src/logging/events.ts) when present. */
export type LogLine = Record<string, unknown> & { level: string; message: string; event?: EventName };

export interface ServiceProcessOptions {
  /** Working directory and home of the config file and store (default: a new temp directory). */
  dir?: string;
  /** Also write the raw log (stdout and stderr) to this file. */
  logFile?: string;
  /** Extra environment. */
  env?: NodeJS.ProcessEnv;
  /** Node's own flags before the script (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  nodeArgs?: readonly string[];
}

/** Calling hours that are always open, in UTC. */
export const ROUND_THE_CLOCK = {
  timeZone: 'UTC',
  windows: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])),
};

export class ServiceProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  private proc?: ChildProcess;
  private out?: fs.WriteStream;
  readonly dir: string;
  readonly configFile: string;
  readonly storePath: string;

  /**
   * `config` is merged over the sandbox's ARI, a store in `dir` and JSON debug logs. A `string` is the
   * path of a ready config file, used as it is.
   */
  constructor(
    readonly config: Record<string, unknown> | string = {},
    dirOrOptions?: string | ServiceProcessOptions,
  ) {
    const opts: ServiceProcessOptions = typeof dirOrOptions === 'string' ? { dir: dirOrOptions } : (dirOrOptions ?? {});
    this.opts = opts;
    this.dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cc-it-'));
    if (typeof config === 'string') {
      this.configFile = config;
      this.storePath = '';
      return;
    }
    this.storePath = path.join(this.dir, 'callbacks.db');
    this.configFile = path.join(this.dir, 'config.json');
    const base = {
      ari: { ...SANDBOX.ari },
      store: { path: this.storePath },
      log: { level: 'debug', format: 'json' },
      // Any free port for the HTTP listener: two services (or a developer's demo) never compete for 9464.
      http: { port: 0 },
      // The tests' agents are also Local/<ext>@cc-test-phone (an ARI app plays their handset).
      dial: { agentDevices: ['PJSIP/*', 'SIP/*', 'Local/*@cc-test-phone'] },
    };
    // Calling hours around the clock unless the test sets its own: the product's default (Mon-Fri 09-18
    // Europe/Berlin) would make a test's outcome depend on the hour it runs at (a night-time CI run hears the
    // after-hours offer). Tests of calling hours set `callingHours` whole; it is not merged with this one.
    const hours = 'callingHours' in config ? {} : { callingHours: ROUND_THE_CLOCK };
    fs.writeFileSync(this.configFile, JSON.stringify(deepMerge({ ...base, ...hours }, config), null, 2));
  }

  private readonly opts: ServiceProcessOptions;
  /** The process has exited and its output is read to the end. */
  private closed = false;

  /** Starts the process; by default waits until it is connected to ARI. */
  async start(waitConnected = true): Promise<this> {
    if (this.opts.logFile) this.out = fs.createWriteStream(this.opts.logFile);
    const proc = spawn(process.execPath, [...(this.opts.nodeArgs ?? []), CLI, 'run', '--config', this.configFile], {
      cwd: this.dir,
      env: { ...process.env, ...this.opts.env, CC_LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.once('close', () => (this.closed = true));
    onJsonLines(proc.stdout, (line) => this.logs.push(line as LogLine), (chunk) => this.out?.write(chunk));
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr.push(chunk);
      this.out?.write(chunk);
    });
    if (waitConnected) await this.waitLog((l) => l.event === 'ari.connected', 20000);
    return this;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get exitCode(): number | null | undefined {
    return this.proc?.exitCode;
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The first log line from index `from` on that matches; fails at once if the process has exited. */
  async waitLog(pred: (l: LogLine) => boolean, timeoutMs = 15000, from = 0, what?: string): Promise<LogLine> {
    try {
      return await waitFor(
        what ?? `a log line matching ${pred.toString()}`,
        () => {
          const hit = this.logs.slice(from).find(pred);
          if (hit) return hit;
          if (this.closed) throw new Error(`the service exited (code ${this.proc?.exitCode}, signal ${this.proc?.signalCode}) while waiting for ${what ?? pred.toString()}`);
          return undefined;
        },
        timeoutMs,
        50,
      );
    } catch (err) {
      const recent = this.logs.slice(Math.max(from, this.logs.length - 25)).map((l) => JSON.stringify(l));
      throw new Error(`${(err as Error).message}\nservice log since then:\n${recent.join('\n')}\n${this.stderr.join('')}`);
    }
  }

  find(pred: (l: LogLine) => boolean, from = 0): LogLine[] {
    return this.logs.slice(from).filter(pred);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    // CC_TEST_LOG_DIR=/tmp/x keeps every service's log for a look after the run.
    if (process.env.CC_TEST_LOG_DIR) {
      fs.mkdirSync(process.env.CC_TEST_LOG_DIR, { recursive: true });
      fs.writeFileSync(path.join(process.env.CC_TEST_LOG_DIR, `${path.basename(this.dir)}-${this.proc?.pid}.log`), this.dump());
    }
    const proc = this.proc;
    let code: number | null = proc?.exitCode ?? null;
    if (proc && this.running) {
      const done = new Promise<number | null>((r) => proc.once('close', (c) => r(c))); // after its last log line
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      code = await done;
      clearTimeout(timer);
    }
    await new Promise<void>((r) => (this.out ? this.out.end(() => r()) : r()));
    this.out = undefined;
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

  tail(n: number): string {
    return this.logs
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }
}

/** Runs the built CLI. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
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
