/**
 * A simulated PBX for the `ceiling` part: an ARI server in the bench's process (HTTP REST and the /ari/events
 * WebSocket) that answers the service's requests and speaks to it as the real Asterisk 22 of the sandbox did in
 * the recorded offer (bench/fixtures/ari-offer-capture.json; the events and answers are built by
 * bench/ari-sim-events.ts from the recorded ones). No SIP, no media, no dialplan: a call is a channel entering
 * the app with the dialplan's Stasis() arguments; the agent presses `#` {@link SimOptions.keyAfterMs} after the
 * service answered (as SIPp's uac-busy-pound.xml does after its 200 OK), a prompt that is not stopped ends after
 * the length of its sound file, and the call ends when the service hangs up (or the agent gives up).
 *
 * What it answers: the API description ari-client loads (resources.json and each resource, basePath from the
 * request's Host header, as Asterisk builds it), global variables (the lease), the event filter (and it honours
 * it), channels and bridges (lists), device states (the recorded list, set and read; an unknown device is
 * INVALID, as recorded), subscriptions (the application's JSON, growing with its subscriptions as Asterisk's
 * does), answer, play, stop a playback, hang up, continue. Any other request is refused with 404 and counted
 * (`unknown`): the simulation does not cover it.
 *
 * When the service's use of ARI changes (a new request, a new event type it listens to), record the offer again
 * with the sandbox running: `node .tools-dist/bench/ceiling-capture.js` (a request the recording lacks shows up as
 * `unknown` in the part's results; an event type the recorded call did not carry is simply never sent).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type CaptureFile,
  type Cause,
  type ScriptStep,
  type SimCall,
  channelJson,
  channelEvent,
  offerScript,
  playbackEvent,
  playbackJson,
  requestCause,
} from './ari-sim-events';
import { WebSocket, type WsSocket } from './ws';

export interface SimOptions {
  capture: CaptureFile;
  username: string;
  password: string;
  /** The agent presses `#` this long after the service answered (default 1500 ms). */
  keyAfterMs?: number;
  /** The agent hangs up when the call is still in the app this long after it arrived (default 15 s). */
  giveUpMs?: number;
  /** Answers `RESTRequest` messages on the WebSocket, as Asterisk 22.4+ does (default true). */
  restOverWebSocket?: boolean;
}

/** What happened to one simulated call, in ms (performance-free wall clock: Date.now()). */
export interface CallTimes {
  index: number;
  channelId: string;
  arrivedAt: number;
  answeredAt?: number;
  offerPlayAt?: number;
  keyAt?: number;
  confirmPlayAt?: number;
  hangupAt?: number;
  endedAt?: number;
  /** The agent gave up (the service had not hung up in time). */
  gaveUp?: boolean;
  /** Arrived before the service's WebSocket was there (StasisStart not sent). */
  lost?: boolean;
}

interface LiveCall {
  call: SimCall;
  times: CallTimes;
  state: string;
  timers: NodeJS.Timeout[];
  playbacks: Set<string>;
}

interface Playback {
  id: string;
  media: string;
  channelId: string;
  language?: string;
  timer?: NodeJS.Timeout;
}

/** Bytes of REST answers sent (bodies), for the bench's per-call figure. */
let answered = 0;

/** Where an answer goes: an HTTP response, or a `RESTResponse` on the WebSocket (ARI REST over WebSocket). */
interface Answer {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(text?: string): unknown;
  readonly headersSent: boolean;
}

function json(res: Answer, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status, { 'content-length': 0 });
    res.end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const bytes = Buffer.byteLength(text);
  answered += bytes;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes });
  res.end(text);
}

export class AriSim {
  readonly script: ScriptStep[];
  private server?: http.Server;
  private readonly wss = new WebSocket.Server({ noServer: true });
  private ws?: WsSocket;
  /** The app registered on the WebSocket. */
  app?: string;
  private allowed?: Set<string>;
  private readonly vars = new Map<string, string>();
  private readonly deviceStates = new Map<string, string>();
  private readonly subscribed: string[] = [];
  private readonly calls = new Map<string, LiveCall>();
  private readonly playbacks = new Map<string, Playback>();
  private readonly docs = new Map<string, string>();
  private readonly recorded: { deviceStates?: string; subscription?: string; play?: string };
  private readonly auth: string;
  /** Every call so far (the bench reads their times). */
  readonly done: CallTimes[] = [];
  /** Requests the simulation does not answer (method + path without ids), counted. */
  readonly unknown = new Map<string, number>();
  /** Requests answered, events sent, and the peak of bytes waiting in the WebSocket's send buffer. */
  readonly counters = { requests: 0, events: 0, eventsFiltered: 0, peakBufferedBytes: 0, peakConnections: 0, peakInFlight: 0 };
  private connections = 0;
  private inFlight = 0;
  private seq = 0;
  private readonly keyAfterMs: number;
  private readonly giveUpMs: number;

  constructor(private readonly opts: SimOptions) {
    this.script = offerScript(opts.capture);
    this.keyAfterMs = opts.keyAfterMs ?? 1500;
    this.giveUpMs = opts.giveUpMs ?? 15_000;
    this.auth = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    const find = (pred: (r: CaptureFile['rest'][number]) => boolean) => opts.capture.rest.find((r) => r.status < 300 && pred(r))?.body;
    for (const r of opts.capture.rest) if (r.status === 200 && r.path.startsWith('/ari/api-docs/')) this.docs.set(r.path.split('?')[0], r.body);
    this.recorded = {
      deviceStates: find((r) => r.method === 'GET' && r.path === '/ari/deviceStates'),
      subscription: find((r) => r.method === 'POST' && /\/subscription\?/.test(r.path)),
      play: find((r) => r.method === 'POST' && /\/play\//.test(r.path)),
    };
    for (const need of ['stasisStart', 'key'] as const) {
      const ok = need === 'stasisStart' ? this.script.some((s) => s.type === 'StasisStart') : this.script.some((s) => s.cause === 'key');
      if (!ok) throw new Error(`ari-sim: the capture has no ${need} event`);
    }
    if (!this.docs.has('/ari/api-docs/resources.json')) throw new Error('ari-sim: the capture has no API description (resources.json)');
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo | undefined;
    if (!a) throw new Error('ari-sim: not listening');
    return `http://127.0.0.1:${a.port}`;
  }

  /** Bytes of REST answer bodies sent so far (the application's JSON grows with its subscriptions, as Asterisk's). */
  get answeredBytes(): number {
    return answered;
  }

  /** Connections open now (the service's WebSocket and its REST client's sockets). */
  get openConnections(): number {
    return this.connections;
  }

  /** Devices the app has subscribed to (deviceState:…). */
  get subscriptions(): number {
    return this.subscribed.length;
  }

  /** Calls in the app now. */
  get inProgress(): number {
    return this.calls.size;
  }

  get connected(): boolean {
    return this.ws !== undefined && this.ws.readyState === WebSocket.OPEN && this.allowed !== undefined;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.request(req, res));
    server.keepAliveTimeout = 60_000;
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    // The service's REST client's connections (kept alive; its agent opens at most so many) and requests in flight.
    server.on('connection', (socket) => {
      this.connections++;
      if (this.connections > this.counters.peakConnections) this.counters.peakConnections = this.connections;
      socket.on('close', () => this.connections--);
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  }

  async stop(): Promise<void> {
    for (const c of this.calls.values()) for (const t of c.timers) clearTimeout(t);
    for (const p of this.playbacks.values()) clearTimeout(p.timer);
    this.ws?.terminate();
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }

  /** A call enters the app: agent `PJSIP/sim<k>` dialled prospect `prospect` and heard busy. */
  startCall(k: number, prospect: string): CallTimes {
    const now = Date.now();
    const n = ++this.seq;
    const call: SimCall = {
      channelId: `sim-${process.pid}-${n}`,
      name: `PJSIP/sim${k}-${n.toString(16).padStart(8, '0')}`,
      agent: `PJSIP/sim${k}`,
      prospect,
      callerName: `Agent ${k}`,
      callerNumber: `sim${k}`,
      language: 'en',
      createdAt: now,
    };
    const times: CallTimes = { index: n, channelId: call.channelId, arrivedAt: now };
    this.done.push(times);
    if (!this.connected) {
      times.lost = true;
      return times;
    }
    const live: LiveCall = { call, times, state: 'Ring', timers: [], playbacks: new Set() };
    this.calls.set(call.channelId, live);
    this.emitFor(live, 'arrival');
    live.timers.push(
      setTimeout(() => {
        times.gaveUp = true;
        this.end(live, 'hangup');
      }, this.giveUpMs),
    );
    return times;
  }

  private emitFor(live: LiveCall, cause: Cause, playback?: Playback, state?: string): void {
    const types = new Set<string>();
    for (const step of this.script) {
      // one event of each type a cause brought (the first recorded)
      if (step.cause !== cause || types.has(step.type)) continue;
      types.add(step.type);
      if (playback && !step.event.playback) continue;
      if (!playback && step.event.playback) continue;
      const now = Date.now();
      const e = playback
        ? playbackEvent(step.event, playback, this.app ?? '', state ?? String((step.event.playback as { state?: string }).state), now)
        : channelEvent(step.event, live.call, this.app ?? '', live.state, now);
      this.send(e);
    }
  }

  private send(e: Record<string, unknown>): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (this.allowed && this.allowed.size > 0 && !this.allowed.has(String(e.type))) {
      this.counters.eventsFiltered++;
      return;
    }
    ws.send(JSON.stringify(e));
    this.counters.events++;
    if (ws.bufferedAmount > this.counters.peakBufferedBytes) this.counters.peakBufferedBytes = ws.bufferedAmount;
  }

  private end(live: LiveCall, cause: Cause): void {
    if (!this.calls.has(live.call.channelId)) return;
    for (const t of live.timers) clearTimeout(t);
    for (const id of live.playbacks) {
      clearTimeout(this.playbacks.get(id)?.timer);
      this.playbacks.delete(id);
    }
    this.calls.delete(live.call.channelId);
    live.times.endedAt = Date.now();
    this.emitFor(live, cause);
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    const key = url.searchParams.get('api_key');
    const authorized = key === `${this.opts.username}:${this.opts.password}` || req.headers.authorization === this.auth;
    if (url.pathname !== '/ari/events' || !authorized || !url.searchParams.get('app')) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.ws?.terminate();
      this.ws = ws;
      this.app = url.searchParams.get('app') ?? undefined;
      this.allowed = new Set();
      ws.on('close', () => {
        if (this.ws === ws) {
          this.ws = undefined;
          this.allowed = undefined;
        }
      });
      ws.on('error', () => undefined);
      if (this.opts.restOverWebSocket !== false) ws.on('message', (data) => this.wsRequest(ws, String(data)));
    });
  }

  private request(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.inFlight++;
    if (this.inFlight > this.counters.peakInFlight) this.counters.peakInFlight = this.inFlight;
    res.on('finish', () => this.inFlight--);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.counters.requests++;
      const url = new URL(req.url ?? '/', 'http://sim');
      const authorized = req.headers.authorization === this.auth || url.searchParams.get('api_key') === `${this.opts.username}:${this.opts.password}`;
      if (!authorized) return json(res, 401, { message: 'Authentication required' });
      try {
        this.route(req.method ?? 'GET', url, Buffer.concat(chunks).toString('utf8'), req.headers.host ?? '127.0.0.1', res);
      } catch (err) {
        // a defect of the simulator: counted with the unknown requests, so the step names the simulator
        const what = `simulator error: ${(err as Error).message}`;
        this.unknown.set(what, (this.unknown.get(what) ?? 0) + 1);
        if (!res.headersSent) json(res, 500, { message: (err as Error).message });
      }
    });
  }

  /**
   * A `RESTRequest` on the WebSocket (Asterisk 22.4+): routed as the same request over HTTP, answered with a
   * `RESTResponse` carrying its `request_id` (as Asterisk 22.10 of the sandbox answers; without a body Asterisk
   * sends no `content_type` / `message_body`).
   */
  private wsRequest(ws: WsSocket, text: string): void {
    let m: { type?: unknown; request_id?: unknown; method?: unknown; uri?: unknown; query_strings?: unknown };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      ws.send(JSON.stringify({ type: 'RESTResponse', transaction_id: '', request_id: '', status_code: 400, reason_phrase: 'Failed to parse request message JSON', uri: '' }));
      return;
    }
    if (m.type !== 'RESTRequest') return;
    this.counters.requests++;
    const url = new URL(`/ari/${String(m.uri ?? '')}`, 'http://sim');
    for (const q of Array.isArray(m.query_strings) ? (m.query_strings as { name: string; value: string }[]) : []) url.searchParams.append(q.name, q.value);
    let sent = false;
    let status = 0;
    const res: Answer = {
      get headersSent() {
        return sent;
      },
      writeHead: (st: number) => {
        status = st;
        sent = true;
      },
      end: (body?: string) => {
        const base = { type: 'RESTResponse', transaction_id: '', request_id: m.request_id, status_code: status, reason_phrase: '', uri: m.uri };
        // Asterisk's event filter drops the answers too unless RESTResponse is among the allowed types.
        if (this.allowed && this.allowed.size > 0 && !this.allowed.has('RESTResponse')) return;
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(body ? { ...base, content_type: 'application/json', message_body: body } : base));
      },
    };
    try {
      this.route(String(m.method ?? 'GET'), url, '', '127.0.0.1', res);
    } catch (err) {
      const what = `simulator error: ${(err as Error).message}`;
      this.unknown.set(what, (this.unknown.get(what) ?? 0) + 1);
      if (!res.headersSent) json(res, 500, { message: (err as Error).message });
    }
  }

  private route(method: string, url: URL, body: string, host: string, res: Answer): void {
    const p = url.pathname;
    const q = url.searchParams;
    const seg = p.split('/').map((s) => decodeURIComponent(s)); // ['', 'ari', resource, id, op, sub]
    if (method === 'GET' && p.startsWith('/ari/api-docs/')) {
      const doc = this.docs.get(p);
      if (!doc) return json(res, 404, { message: 'Resource not found' });
      return json(res, 200, doc.replace(/"basePath":"[^"]*"/, `"basePath":"http://${host}/ari"`));
    }
    const cause = requestCause(method, `${p}${url.search}`);
    if (cause) return this.callRequest(cause, seg, q, res);
    if (method === 'GET' && p === '/ari/asterisk/ping') return json(res, 200, { ping: 'pong', timestamp: new Date().toISOString(), asterisk_id: '02:fc:00:00:00:01' });
    if (p === '/ari/asterisk/variable') {
      const name = q.get('variable') ?? '';
      if (method === 'GET') return json(res, 200, { value: this.vars.get(name) ?? '' });
      if (method === 'POST') {
        this.vars.set(name, q.get('value') ?? '');
        return json(res, 204);
      }
    }
    if (seg[2] === 'applications' && seg[4] === 'eventFilter' && method === 'PUT') {
      if (seg[3] !== this.app || !this.ws) return json(res, 404, { message: 'Application not found' });
      const allowed = (JSON.parse(body || '{}') as { allowed?: Array<{ type: string }> }).allowed ?? [];
      this.allowed = new Set(allowed.map((a) => a.type));
      return json(res, 200, this.application());
    }
    if (seg[2] === 'applications' && seg[4] === 'subscription' && method === 'POST') {
      if (seg[3] !== this.app) return json(res, 404, { message: 'Application not found' });
      const source = q.get('eventSource') ?? '';
      if (source.startsWith('deviceState:')) {
        const name = source.slice('deviceState:'.length);
        if (!this.subscribed.includes(name)) this.subscribed.push(name);
      }
      return json(res, 200, this.application());
    }
    if (method === 'GET' && p === '/ari/channels') return json(res, 200, [...this.calls.values()].map((c) => channelJson(this.channelTemplate(), c.call, this.app ?? '', c.state)));
    if (method === 'GET' && p === '/ari/bridges') return json(res, 200, []);
    if (seg[2] === 'deviceStates') {
      if (method === 'GET' && seg.length === 3) return json(res, 200, this.recorded.deviceStates ?? '[]');
      const name = seg[3] ?? '';
      if (method === 'GET') return json(res, 200, { name, state: this.deviceStates.get(name) ?? 'INVALID' });
      if (method === 'PUT') {
        this.deviceStates.set(name, q.get('deviceState') ?? '');
        return json(res, 204);
      }
    }
    if (method === 'POST' && seg[2] === 'channels' && seg[4] === 'continue') {
      const live = this.calls.get(seg[3] ?? '');
      if (!live) return json(res, 404, { message: 'Channel not found' });
      json(res, 204);
      this.end(live, 'hangup');
      return;
    }
    const what = `${method} ${p.replace(/\/(sim-|capture-)[^/]+/g, '/{id}')}`;
    this.unknown.set(what, (this.unknown.get(what) ?? 0) + 1);
    json(res, 404, { message: 'Resource not found' });
  }

  private application(): Record<string, unknown> {
    const recorded = this.recorded.subscription ? (JSON.parse(this.recorded.subscription) as Record<string, unknown>) : {};
    return {
      ...recorded,
      name: this.app,
      channel_ids: [...this.calls.keys()],
      bridge_ids: [],
      endpoint_ids: [],
      device_names: [...this.subscribed],
      events_allowed: [...(this.allowed ?? [])].map((type) => ({ type })),
      events_disallowed: [],
    };
  }

  private channelTemplate(): Record<string, unknown> {
    return (this.script.find((s) => s.type === 'StasisStart')?.event.channel ?? {}) as Record<string, unknown>;
  }

  private callRequest(cause: Cause, seg: string[], q: URLSearchParams, res: Answer): void {
    if (cause === 'stopPlayback') {
      const pb = this.playbacks.get(seg[3] ?? '');
      if (!pb) return json(res, 404, { message: 'Playback not found' });
      clearTimeout(pb.timer);
      this.playbacks.delete(pb.id);
      json(res, 204);
      const live = this.calls.get(pb.channelId);
      if (live) {
        live.playbacks.delete(pb.id);
        this.emitFor(live, 'stopPlayback', pb, 'done');
      }
      return;
    }
    const live = this.calls.get(seg[3] ?? '');
    if (!live) return json(res, 404, { message: 'Channel not found' });
    const now = Date.now();
    const t = live.times;
    switch (cause) {
      case 'answer':
        live.state = 'Up';
        t.answeredAt ??= now;
        json(res, 204);
        this.emitFor(live, 'answer');
        live.timers.push(
          setTimeout(() => {
            t.keyAt = Date.now();
            this.emitFor(live, 'key');
          }, this.keyAfterMs),
        );
        return;
      case 'play': {
        const media = q.get('media') ?? '';
        const pb: Playback = { id: seg[5] ?? `sim-pb-${++this.seq}`, media, channelId: live.call.channelId, language: q.get('lang') ?? undefined };
        if (t.keyAt === undefined) t.offerPlayAt ??= now;
        else t.confirmPlayAt ??= now;
        this.playbacks.set(pb.id, pb);
        live.playbacks.add(pb.id);
        const template = this.recorded.play ? (JSON.parse(this.recorded.play) as Record<string, unknown>) : { id: '', media_uri: '', target_uri: '', language: '', state: 'queued' };
        json(res, 201, playbackJson(template, pb, 'queued'));
        this.emitFor(live, 'play', pb, 'playing');
        const length = this.opts.capture.mediaMs[media] ?? 2000;
        pb.timer = setTimeout(() => {
          this.playbacks.delete(pb.id);
          live.playbacks.delete(pb.id);
          this.emitFor(live, 'promptEnd', pb, 'done');
        }, length);
        return;
      }
      case 'hangup':
        t.hangupAt ??= now;
        json(res, 204);
        this.end(live, 'hangup');
        return;
      default:
        json(res, 404, { message: 'Resource not found' });
    }
  }
}
