/**
 * The callbacks page on the HTTP listener (docs/try-it.md, "The callbacks page"): agents and team leads watch
 * the requests live, see each one's timeline, cancel or snooze one, and dry-run the policy.
 *
 * - `GET /callbacks`: the page (static files from dist/web, built from web/ by scripts/build-web.mjs; no CDN).
 * - `GET /callbacks/api/requests?agent=&state=`: the list as JSON, each with its view (stages, grace, reason).
 * - `GET /callbacks/api/events?agent=&state=`: server-sent events: a `snapshot`, then one `request` per
 *   decision the engine persists (the browser never polls). At most {@link MAX_STREAMS} streams.
 * - `GET /callbacks/api/request?id=`: one request with its history and the `show` text (src/views/requests.ts).
 * - `POST /callbacks/api/cancel|snooze` `{id}`: through the engine's decision path (history, webhook outbox,
 *   version guard), the same as the CLI's cancel and the agent's `*82`.
 * - `POST /callbacks/api/explain` `{timeline, keys, …}`: the dry run of src/views/explain.ts with the live policy.
 * - `GET /callbacks/api/pauses`: the agents who paused their callbacks; `POST /callbacks/api/pause` `{agent, until?}`
 *   (until: ISO time ahead, at most {@link MAX_PAUSE_MS} away) and `POST /callbacks/api/resume` `{agent}`: "hold my
 *   callbacks", the same engine pause as the feature code; the event stream sends `pauses` when one changes.
 * - A request whose heads-up runs (policy.headsUp) has `headsUp: true` in its view: the page shows it at the top
 *   and raises a browser notification (with the page's permission).
 *
 * Doors: the listener's (src/http/server.ts: allowed Host, the token as bearer, basic-auth password or the
 * page's cookie, budgets); POSTs also need the page's CSRF token in `x-cc-csrf` (a random per-process value
 * the page carries), JSON content, the page's own `Origin` (or one of http.allowedOrigins) when the browser
 * sends one, and a body under {@link MAX_BODY} bytes.
 */
import { guards } from '../ledger';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  CALLBACK_STATES,
  PENDING_STATES,
  RECALL_STATES,
  TERMINAL_STATES,
  headsUpActive,
  isTerminal,
  type CallbackRequest,
  type PolicyConfig,
} from '../core/policy';
import { requestJson, showText, toPolicyEvent } from '../views/requests';
import { explainScenario, scenarioFrom, type ScenarioArgs } from '../views/explain';
import { InputError } from '../views/errors';
import { pauseAgent, pauseUntil } from '../views/pauses';
import type { Engine } from '../engine';
import type { Logger } from '../logging/log';
import { emit } from '../logging/events';
import { LogThrottle } from '../logging/log-throttle';
import { HttpServer, basicUser, send } from './server';

export const MAX_STREAMS = 32;
export const MAX_BODY = 8 * 1024;
/** Finished requests shown besides the open ones (the newest). */
export const RECENT_FINISHED = 50;
/** A pause from the page lasts at most this long (a forgotten pause must end by itself); shared with the CLI. */
export { MAX_PAUSE_MS } from '../views/pauses';
const HEARTBEAT_MS = 20_000;

/** The stages the timeline picture draws, in order. */
export const STAGES = ['WAITING', 'GRACE', 'DUE', 'RINGING_AGENT', 'CONNECTING'] as const;

/** One request as the page draws it: the CLI's JSON shape plus what the picture needs. */
export function requestView(r: CallbackRequest, now: number, history?: ReadonlyArray<{ to?: string | null }>) {
  const stage = (STAGES as readonly string[]).indexOf(r.state);
  // How far it got: the furthest stage in its history (a finished request), or where it is now.
  const reached = Math.max(stage, ...(history ?? []).map((e) => (STAGES as readonly string[]).indexOf(e.to ?? '')));
  return {
    ...requestJson(r),
    stage,
    reached,
    terminal: isTerminal(r.state),
    grace: r.graceUntil === null ? null : { from: r.freeSince === null ? null : new Date(r.freeSince).toISOString(), until: new Date(r.graceUntil).toISOString() },
    lineBusy: r.lineBusy,
    rings: r.rings,
    /** The heads-up before the ring runs now: the page shows it at the top and notifies. */
    headsUp: headsUpActive(r, now),
    serverNow: new Date(now).toISOString(),
  };
}
export type RequestView = ReturnType<typeof requestView>;

export interface Filter {
  agent?: string;
  states?: string[];
}

/** `?agent=PJSIP/1001&state=WAITING,GRACE`; an unknown state is an error that names it. */
export function parseFilter(url: URL): Filter | { error: string } {
  const agent = url.searchParams.get('agent')?.trim() || undefined;
  if (agent && (agent.length > 80 || /[\s&,]/.test(agent))) return { error: `agent ${JSON.stringify(agent.slice(0, 80))}: expected a device such as PJSIP/1001` };
  const raw = url.searchParams.getAll('state').flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter(Boolean);
  for (const s of raw) {
    if (s === 'PENDING') continue;
    if (!(CALLBACK_STATES as readonly string[]).includes(s)) return { error: `state ${JSON.stringify(s.slice(0, 40))}: unknown; one of PENDING, ${CALLBACK_STATES.join(', ')}` };
  }
  const states = raw.flatMap((s) => (s === 'PENDING' ? [...PENDING_STATES, ...RECALL_STATES] : [s]));
  return { agent, states: states.length > 0 ? [...new Set(states)] : undefined };
}

export function matches(r: { agent: string; state: string }, f: Filter): boolean {
  return (!f.agent || r.agent === f.agent) && (!f.states || f.states.includes(r.state));
}

export interface WebDeps {
  engine: Engine;
  policy: PolicyConfig;
  log: Logger;
  /** Directory of the built page (dist/web); default: next to this file's package. */
  staticDir?: string;
  clock?: () => number;
  /** The CSRF token the page carries; default random per process. */
  csrfToken?: string;
  /** Open event streams at most; default {@link MAX_STREAMS}. */
  maxStreams?: number;
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/callbacks': { file: 'callbacks.html', type: 'text/html; charset=utf-8' },
  '/callbacks/app.js': { file: 'callbacks.js', type: 'text/javascript; charset=utf-8' },
  '/callbacks/app.css': { file: 'web.css', type: 'text/css; charset=utf-8' },
};

/** dist/web (built by scripts/build-web.mjs), from src/http or dist/http alike. */
export function defaultStaticDir(): string {
  return path.resolve(__dirname, '../../dist/web');
}

/** Serves one built file; the HTML gets the CSRF token and a strict content security policy. */
export function serveStatic(res: http.ServerResponse, dir: string, file: string, type: string, csrf: string, log: Logger): void {
  let body: string;
  try {
    body = fs.readFileSync(path.join(dir, file), 'utf8');
  } catch (err) {
    emit(log, 'error', 'web.static_missing', 'web page file missing (was `npm run build` run?)', { file, error: (err as Error).message });
    send(res, 500, `page file ${file} missing: run npm run build\n`);
    return;
  }
  if (type.startsWith('text/html')) {
    body = body.replace('{{csrf}}', csrf);
    res.setHeader('content-security-policy', "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; frame-ancestors 'none'");
    res.setHeader('referrer-policy', 'no-referrer');
  }
  send(res, 200, body, type);
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new WebError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let value: unknown;
  try {
    value = text ? JSON.parse(text) : {};
  } catch {
    throw new WebError(400, 'body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WebError(400, 'body must be a JSON object');
  return value as Record<string, unknown>;
}

class WebError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value)}\n`, 'application/json');
}

/** CSRF and origin checks for a POST; returns the refusal text, or undefined when it may proceed. */
export function csrfRefusal(
  req: http.IncomingMessage,
  csrf: string,
  originAllowed: (origin: string | undefined, host: string | undefined) => boolean = (o, h) => o !== undefined && /^https?:\/\//.test(o) && new URL(o).host === h,
): string | undefined {
  const given = String(req.headers['x-cc-csrf'] ?? '');
  const a = Buffer.from(given);
  const b = Buffer.from(csrf);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return 'missing or wrong x-cc-csrf header (reload the page)';
  const origin = req.headers.origin;
  if (origin === 'null') return 'opaque origin refused';
  if (origin !== undefined) {
    try {
      new URL(origin);
    } catch {
      return `origin ${JSON.stringify(origin.slice(0, 80))} is not a URL`;
    }
    // The Host header itself passed the listener's allow-list, so a rebound name never gets here.
    if (!originAllowed(origin, req.headers.host)) return `cross-origin request from ${JSON.stringify(origin.slice(0, 80))} refused (http.allowedOrigins)`;
  }
  if (!/^application\/json\b/i.test(String(req.headers['content-type'] ?? ''))) return 'content-type must be application/json';
  return undefined;
}

/** Who acted, for the history: "web", or "web (alice)" with basic auth. */
function actor(req: http.IncomingMessage): string {
  const user = basicUser(req.headers.authorization);
  return user ? `web (${user})` : 'web';
}

export class CallbacksPage {
  private readonly streams = new Set<{ res: http.ServerResponse; filter: Filter }>();
  private heartbeat?: NodeJS.Timeout;
  readonly csrf: string;
  private readonly clock: () => number;
  private readonly staticDir: string;
  private readonly throttle: LogThrottle;

  constructor(private readonly deps: WebDeps) {
    this.throttle = new LogThrottle(() => deps.log);
    this.csrf = deps.csrfToken ?? randomBytes(18).toString('base64url');
    this.clock = deps.clock ?? Date.now;
    this.staticDir = deps.staticDir ?? defaultStaticDir();
    deps.engine.onDecision(({ decision }) => {
      this.broadcast(decision.request).catch((err: Error) => deps.log.error('web: could not send a request update', { error: err.message }));
    });
    deps.engine.pauses.onChange(() => this.broadcastPauses());
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** The open requests and the newest finished ones, oldest first. */
  async snapshot(filter: Filter): Promise<RequestView[]> {
    const store = this.deps.engine.store;
    const open = (filter.states ?? CALLBACK_STATES).filter((s) => !(TERMINAL_STATES as readonly string[]).includes(s));
    const done = (filter.states ?? CALLBACK_STATES).filter((s) => (TERMINAL_STATES as readonly string[]).includes(s));
    const rows = open.length > 0 ? await store.list({ agent: filter.agent, states: open }) : [];
    const finished = done.length > 0 ? await store.list({ agent: filter.agent, states: done }) : [];
    finished.sort((a, b) => b.updatedAt - a.updatedAt);
    const now = this.clock();
    return Promise.all([...rows, ...finished.slice(0, RECENT_FINISHED)].sort((a, b) => a.createdAt - b.createdAt).map((r) => this.view(r, now)));
  }

  /** A finished request's view carries how far it got (its history is read once it has ended). */
  private async view(r: CallbackRequest, now = this.clock()): Promise<RequestView> {
    return requestView(r, now, isTerminal(r.state) ? await this.deps.engine.store.events(r.id) : undefined);
  }

  private async broadcast(r: CallbackRequest): Promise<void> {
    if (this.streams.size === 0) return;
    const data = `event: request\ndata: ${JSON.stringify(await this.view(r))}\n\n`;
    for (const s of this.streams) {
      if (matches(r, s.filter)) s.res.write(data);
    }
  }

  /** The agents who paused their callbacks, as the page shows them. */
  pauses(): { agent: string; since: string; until: string | null; by: string }[] {
    return this.deps.engine.pauses.pausedAgents().map((p) => ({ agent: p.agent, since: new Date(p.since).toISOString(), until: p.until === null ? null : new Date(p.until).toISOString(), by: p.by }));
  }

  private broadcastPauses(): void {
    const data = `event: pauses\ndata: ${JSON.stringify(this.pauses())}\n\n`;
    for (const s of this.streams) s.res.write(data);
  }

  /** Pause (until a time, or until resumed) or resume an agent's callbacks from the page. */
  async pauseAct(kind: 'pause' | 'resume', body: Record<string, unknown>, by: string): Promise<{ status: number; body: unknown }> {
    let agent: string;
    let until: number | null = null;
    try {
      agent = pauseAgent(body.agent);
      if (kind === 'pause') until = pauseUntil(body.until, this.clock());
    } catch (err) {
      if (err instanceof InputError) return { status: 400, body: { error: err.message } };
      throw err;
    }
    const { engine, log } = this.deps;
    if (kind === 'resume') {
      await engine.pauses.resume(agent, by);
      emit(log, 'info', 'web.resume', 'web resume', { agent, by });
      return { status: 200, body: { agent, paused: false, pauses: this.pauses() } };
    }
    await engine.pauses.pause(agent, { until, by });
    emit(log, 'info', 'web.pause', 'web pause', { agent, by, until: until === null ? null : new Date(until).toISOString() });
    return { status: 200, body: { agent, paused: true, until: until === null ? null : new Date(until).toISOString(), pauses: this.pauses() } };
  }

  /** Ends every stream (the service stops). */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const s of this.streams) s.res.end();
    this.streams.clear();
  }

  register(server: HttpServer): void {
    const { log } = this.deps;
    for (const [p, f] of Object.entries(STATIC)) {
      server.route({ path: p, handle: (_req, res) => serveStatic(res, this.staticDir, f.file, f.type, this.csrf, log) });
    }
    server.route({
      path: '/callbacks/api/requests',
      handle: async (req, res) => {
        const filter = parseFilter(new URL(req.url ?? '/', 'http://localhost'));
        if ('error' in filter) return json(res, 400, { error: filter.error });
        json(res, 200, await this.snapshot(filter));
      },
    });
    server.route({ path: '/callbacks/api/events', methods: ['GET'], budget: 'stream', handle: (req, res) => this.stream(req, res) });
    server.route({
      path: '/callbacks/api/request',
      handle: async (req, res) => {
        const id = new URL(req.url ?? '/', 'http://localhost').searchParams.get('id') ?? '';
        if (!/^[\w-]{1,64}$/.test(id)) return json(res, 400, { error: 'id: expected a request id such as 3f9a0c12de' });
        const found = await this.deps.engine.store.get(id);
        if (!found) return json(res, 404, { error: `no callback request with id ${id}` });
        const events = await this.deps.engine.store.events(id);
        const now = this.clock();
        json(res, 200, {
          request: await this.view(found.request, now),
          timeZone: found.request.timeZone,
          show: showText(found.request, events.map(toPolicyEvent), now, await this.deps.engine.store.prospectQueue(found.request.prospect)),
          events: events.map((e) => ({ at: new Date(e.at).toISOString(), type: e.type, from: e.from ?? null, to: e.to ?? null, reason: e.reason ?? '' })),
        });
      },
    });
    const post = (
      p: string,
      fn: (body: Record<string, unknown>, req: http.IncomingMessage) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>,
    ) =>
      server.route({
        path: p,
        methods: ['POST'],
        handle: async (req, res) => {
          const refusal = csrfRefusal(req, this.csrf, (o, h) => server.originAllowed(o, h));
          if (refusal) {
            emit(log, 'warn', 'web.csrf_refused', 'web POST refused', { path: p, why: refusal, remote: req.socket.remoteAddress });
            return json(res, 403, { error: refusal });
          }
          try {
            const out = await fn(await readJson(req), req);
            json(res, out.status, out.body);
          } catch (err) {
            if (err instanceof WebError) return json(res, err.status, { error: err.message });
            if (err instanceof InputError) return json(res, 400, { error: err.message });
            throw err;
          }
        },
      });
    post('/callbacks/api/cancel', (body, req) => this.act('cancel', body, actor(req)));
    post('/callbacks/api/snooze', (body, req) => this.act('snooze', body, actor(req)));
    post('/callbacks/api/explain', (body) => ({ status: 200, body: this.explain(body) }));
    post('/callbacks/api/pause', (body, req) => this.pauseAct('pause', body, actor(req)));
    post('/callbacks/api/resume', (body, req) => this.pauseAct('resume', body, actor(req)));
    server.route({ path: '/callbacks/api/pauses', methods: ['GET'], handle: (_req, res) => json(res, 200, this.pauses()) });
  }

  /** Cancel or snooze through the engine (one decision path); a prospect being dialled is left alone, as in the CLI. */
  async act(kind: 'cancel' | 'snooze', body: Record<string, unknown>, by: string): Promise<{ status: number; body: unknown }> {
    const id = typeof body.id === 'string' ? body.id : '';
    if (!/^[\w-]{1,64}$/.test(id)) return { status: 400, body: { error: 'id: expected a request id such as 3f9a0c12de' } };
    const { engine, log } = this.deps;
    const r = await engine.act(id, kind === 'cancel' ? { type: 'cancel', by } : { type: 'snooze', by }, guards.all(guards.notFinished(kind), guards.notDialling(kind)));
    if (r.status === 'not-found') return { status: 404, body: { error: `no callback request with id ${id}` } };
    if (r.status === 'refused') return { status: 409, body: { id, from: r.before.state, done: false, state: r.before.state, note: r.reason } };
    const after = (await engine.store.get(id))?.request;
    if (!after) return { status: 404, body: { error: `no callback request with id ${id}` } };
    const base = { id, from: 'before' in r ? r.before.state : after.state };
    emit(log, 'info', kind === 'cancel' ? 'web.cancel' : 'web.snooze', `web ${kind}`, { requestId: id, by, from: base.from, to: after.state, applied: r.status === 'applied' });
    if (r.status !== 'applied') return { status: 409, body: { ...base, done: false, state: after.state, note: 'nothing changed (the request moved on meanwhile); see its history' } };
    return { status: 200, body: { ...base, done: true, state: after.state, reason: after.reason, request: await this.view(after) } };
  }

  explain(body: Record<string, unknown>): unknown {
    const str = (k: string) => {
      const v = body[k];
      if (v === undefined || v === null || v === '') return undefined;
      if (typeof v !== 'string' || v.length > 500) throw new WebError(400, `${k}: expected text (at most 500 characters)`);
      return v;
    };
    const list = (k: string) => {
      const v = body[k];
      if (v === undefined || v === null || v === '') return undefined;
      const arr = Array.isArray(v) ? v : [v];
      if (arr.length > 20 || arr.some((x) => typeof x !== 'string' || x.length > 40)) throw new WebError(400, `${k}: expected a short list of texts`);
      return (arr as string[]).flatMap((x) => x.split(/[\s,]+/)).filter(Boolean);
    };
    const argv: ScenarioArgs = {
      timeline: str('timeline'),
      date: str('date'),
      at: str('at'),
      'busy-until': str('busyUntil'),
      'agent-busy': list('agentBusy'),
      keys: list('keys'),
      external: body.external === true ? true : undefined,
      prospect: str('prospect'),
      agent: str('agent'),
    };
    const scenario = scenarioFrom(argv, this.deps.policy.callingHours.timeZone, this.clock());
    const report = explainScenario(scenario, this.deps.policy);
    return { text: report.lines.join('\n'), ...report.json };
  }

  private async stream(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const filter = parseFilter(new URL(req.url ?? '/', 'http://localhost'));
    if ('error' in filter) return json(res, 400, { error: filter.error });
    if (this.streams.size >= (this.deps.maxStreams ?? MAX_STREAMS)) {
      this.throttle.warn('full', 'web.streams_full', 'web event stream refused: too many open', { open: this.streams.size });
      res.setHeader('retry-after', '30');
      return json(res, 503, { error: `too many open event streams (${this.deps.maxStreams ?? MAX_STREAMS}); close other tabs` });
    }
    // Read before the stream opens; updates from then on are sent in order after it.
    const snapshot = JSON.stringify(await this.snapshot(filter));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    const entry = { res, filter };
    this.streams.add(entry);
    req.socket.setTimeout(0);
    res.write(`retry: 3000\nevent: snapshot\ndata: ${snapshot}\n\n`);
    const paused = this.pauses();
    if (paused.length > 0) res.write(`event: pauses\ndata: ${JSON.stringify(paused)}\n\n`);
    const done = () => {
      this.streams.delete(entry);
      if (this.streams.size === 0 && this.heartbeat) {
        clearInterval(this.heartbeat);
        this.heartbeat = undefined;
      }
    };
    res.on('close', done);
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => {
        for (const s of this.streams) s.res.write(`: keep-alive ${new Date(this.clock()).toISOString()}\n\n`);
      }, HEARTBEAT_MS);
      this.heartbeat.unref();
    }
  }
}
