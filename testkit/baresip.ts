/**
 * A real SIP phone for the tests: Debian's `baresip` (package baresip-core; scripts/pbx.sh installs it),
 * driven over its `ctrl_tcp` module (netstring-framed JSON: `{"command":"dial","params":"sip:…"}` in,
 * responses and events such as `CALL_INCOMING` with the caller's display name out).
 *
 * What baresip shows is what a desk phone shows: the INVITE's display name (`peerdisplayname`), the codec it
 * negotiated (its own choice from its list, G.722 first here), and the DTMF it sends is RFC 4733
 * (telephone-event) — baresip 1.0.0 (Debian 12) cannot send SIP INFO; the tests send INFO from SIPp.
 *
 * Ports: each phone binds its SIP port on UDP and TCP, TLS on SIP port + 1, its control port and an RTP
 * range, all on 127.0.0.1. They come from CC_REAL_PHONE_PORTS (a base b: agent SIP b, control b+2, RTP
 * b+100…b+149; prospect SIP b+3, control b+5, RTP b+150…b+199), default the sandbox's SIP port + 40.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SANDBOX } from './sandbox';

export interface BaresipEvent {
  type: string;
  class?: string;
  direction?: string;
  peeruri?: string;
  peerdisplayname?: string;
  id?: string;
  param?: string;
  [k: string]: unknown;
}

export interface PhoneSlot {
  sip: number;
  ctrl: number;
  rtp: [number, number];
}

/** The real phones' ports (see the file comment). */
export function realPhonePorts(env: NodeJS.ProcessEnv = process.env): { agent: PhoneSlot; prospect: PhoneSlot } {
  const raw = env.CC_REAL_PHONE_PORTS;
  const base = raw ? Number(raw) : SANDBOX.sipPort + 40;
  if (!Number.isInteger(base) || base < 1024 || base > 65000) throw new Error(`CC_REAL_PHONE_PORTS must be a port number (1024-65000), got "${raw}"`);
  return {
    agent: { sip: base, ctrl: base + 2, rtp: [base + 100, base + 149] },
    prospect: { sip: base + 3, ctrl: base + 5, rtp: [base + 150, base + 199] },
  };
}

export function baresipAvailable(): boolean {
  return spawnSync('baresip', ['-h'], { encoding: 'utf8' }).error === undefined;
}

export interface BaresipOptions {
  user: string;
  password: string;
  slot: PhoneSlot;
  /** baresip's audio_codecs account parameter, in order of preference. Default: G.722, then G.711 µ-law. */
  codecs?: string;
  /** Where the PBX is (default: the sandbox). */
  registrar?: string;
}

export class Baresip {
  readonly events: BaresipEvent[] = [];
  private proc?: ChildProcess;
  private sock?: net.Socket;
  private buf = '';
  private readonly responses: Array<(r: { ok: boolean; data: string }) => void> = [];
  output = '';
  private constructor(
    readonly opts: BaresipOptions,
    readonly dir: string,
  ) {}

  /** Starts the phone, connects to its control port and waits until it is registered. */
  static async start(opts: BaresipOptions): Promise<Baresip> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cc-baresip-${opts.user}-`));
    const registrar = opts.registrar ?? SANDBOX.sip;
    fs.writeFileSync(
      path.join(dir, 'config'),
      [
        'poll_method epoll',
        `sip_listen 127.0.0.1:${opts.slot.sip}`,
        'call_local_timeout 120',
        'call_max_calls 4',
        // What the phone hears goes nowhere; what it sends is a tone.
        `audio_player aufile,${path.join(dir, 'heard.wav')}`,
        'audio_source ausine,440',
        // ausine makes 48 kHz stereo only; baresip resamples to the call's codec.
        'ausrc_srate 48000',
        'ausrc_channels 2',
        'auplay_srate 48000',
        'audio_alert aufile,/dev/null',
        `rtp_ports ${opts.slot.rtp[0]}-${opts.slot.rtp[1]}`,
        'module_path /usr/lib/baresip/modules',
        'module g722.so',
        'module g711.so',
        'module opus.so',
        'module aufile.so',
        'module ausine.so',
        'module_app account.so',
        'module_app menu.so',
        'module_app ctrl_tcp.so',
        `ctrl_tcp_listen 127.0.0.1:${opts.slot.ctrl}`,
        '',
      ].join('\n'),
    );
    fs.writeFileSync(
      path.join(dir, 'accounts'),
      `<sip:${opts.user}@${registrar}>;auth_pass=${opts.password};audio_codecs=${opts.codecs ?? 'G722/16000/1,PCMU/8000/1'};regint=600\n`,
    );
    fs.writeFileSync(path.join(dir, 'contacts'), '');
    const phone = new Baresip(opts, dir);
    const proc = spawn('baresip', ['-f', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    phone.proc = proc;
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => (phone.output += c));
    proc.stderr?.setEncoding('utf8').on('data', (c: string) => (phone.output += c));
    const deadline = Date.now() + 15000;
    for (;;) {
      try {
        phone.sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection({ host: '127.0.0.1', port: opts.slot.ctrl }, () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch {
        if (Date.now() > deadline || proc.exitCode !== null) {
          await phone.stop();
          throw new Error(`baresip (${opts.user}) did not open its control port ${opts.slot.ctrl}:\n${phone.output}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    phone.sock.setEncoding('utf8').on('data', (c: string) => phone.read(c));
    await phone.waitOutput(new RegExp(`${opts.user}@[^:]+: \\{0/UDP/v4\\} 200 OK`), 15000, 'registered');
    return phone;
  }

  private read(chunk: string): void {
    this.buf += chunk;
    for (;;) {
      const colon = this.buf.indexOf(':');
      if (colon < 0) return;
      const len = Number(this.buf.slice(0, colon));
      if (this.buf.length < colon + 1 + len + 1) return;
      const json = this.buf.slice(colon + 1, colon + 1 + len);
      this.buf = this.buf.slice(colon + 1 + len + 1);
      const msg = JSON.parse(json) as { event?: boolean; response?: boolean; ok?: boolean; data?: string } & BaresipEvent;
      if (msg.event) this.events.push(msg);
      else if (msg.response) this.responses.shift()?.({ ok: Boolean(msg.ok), data: msg.data ?? '' });
    }
  }

  /** Runs a command of baresip's menu (`dial`, `accept`, `hangup`, `sndcode`, …). */
  command(command: string, params = ''): Promise<{ ok: boolean; data: string }> {
    const json = JSON.stringify({ command, params, token: command });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`baresip: no response to ${command}`)), 5000);
      this.responses.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.sock?.write(`${Buffer.byteLength(json)}:${json},`);
    });
  }

  async waitEvent(what: string, pred: (e: BaresipEvent) => boolean, timeoutMs: number, from = 0): Promise<BaresipEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.slice(from).find(pred);
      if (e) return e;
      if (Date.now() > deadline) throw new Error(`baresip ${this.opts.user}: timed out waiting for ${what}; events: ${this.events.map((x) => x.type).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async waitOutput(re: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.output);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`baresip ${this.opts.user}: timed out waiting for ${what}:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  dial(number: string): Promise<{ ok: boolean; data: string }> {
    return this.command('dial', `sip:${number}@${this.opts.registrar ?? SANDBOX.sip}`);
  }

  accept(): Promise<{ ok: boolean; data: string }> {
    return this.command('accept');
  }

  hangup(): Promise<{ ok: boolean; data: string }> {
    return this.command('hangup');
  }

  /** Presses keys on the current call: RFC 4733 telephone-events. */
  async press(keys: string): Promise<void> {
    for (const k of keys) {
      await this.command('sndcode', k);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Stops the phone (unregisters as it exits) and removes its files. */
  async stop(): Promise<void> {
    this.sock?.destroy();
    const proc = this.proc;
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
