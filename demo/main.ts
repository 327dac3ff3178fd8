/**
 * `npm run demo`: the whole story on the sandbox PBX, played by scripted SIP phones (SIPp).
 *
 *   1. Prospect 2001 (a SIPp phone registered as 2001) is on another call: its line is busy.
 *   2. Agent 1001 (a SIPp phone) dials 2001, is offered a callback, presses #. The request is stored.
 *      The service looks up 2001's name in a small fake CRM (testkit/fake-crm.ts, started by the demo on a
 *      free local port): Anna Schmidt of Acme GmbH.
 *   3. 2001's other call ends. The grace period passes; nothing rings during it. policy.headsUp before the
 *      ring, the callbacks page shows the heads-up ("Callback soon: Anna Schmidt (Acme GmbH) · 2001 at …",
 *      read from the page's own API), the agent's BLF lamp blinks and a browser with the page open raises a
 *      notification.
 *   4. Agent 1001's phone (a SIPp phone registered as 1001) rings labelled with the prospect's name when it
 *      fits the display ("CB Anna Schmidt"), else "Callback: 2001", from the service number; the agent
 *      answers, hears the announcement, presses 1.
 *   5. 2001's phone rings with the agent's own caller ID and answers: the two are connected.
 *   6. The agent hangs up after a short talk; the request's final state is printed.
 *
 * It starts the sandbox (scripts/pbx.sh up) if it is not running and stops it again at the end, takes
 * the sandbox lock the integration tests take, runs the service with config/demo.json (demo values:
 * short grace), prints a timestamped timeline of what the agent hears and sees, and exits 0 only if the
 * story happened as told (1 if not, 2 for a usage error, 3 if this machine cannot run the sandbox).
 *
 * Options: --grace <duration> (default: config/demo.json's), --keep-pbx (leave a sandbox we started
 * running), --quiet-pbx (do not echo scripts/pbx.sh's output).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as ari from 'ari-client';
import '../src/telephony/ari/quiet-swagger';
import { acquireSandboxLock, SandboxLock } from '../testkit/lock';
import { ACCOUNTS, CLI, PBX_SCRIPT as PBX, ROOT, SANDBOX, SCENARIOS } from '../testkit/sandbox';
import { ServiceProcess, type LogLine } from '../testkit/service-process';
import { SipMessage, callerView, describeSipp, ladder, register, sippAvailable, startSipp, stopAllSipp, unregister } from '../testkit/sipp';
import { sleep } from '../testkit/wait';
import { DEMO_DIRECTORY, FakeCrm } from '../testkit/fake-crm';

// The default sandbox's story lives in data/; a sandbox on other ports gets its own folder, so that two
// demos on two sandboxes never share (and wipe) one store.
const DATA = SANDBOX.sipPort === 5060 ? path.join(ROOT, 'data') : path.join(ROOT, 'data', `sandbox-${SANDBOX.sipPort}`);
const CONFIG_OUT = path.join(DATA, 'demo-story.json');
const STORE = path.join(DATA, 'demo-story.db');
const SERVICE_LOG = path.join(DATA, 'demo-story.log');

const AGENT = ACCOUNTS.agent;
const PROSPECT = ACCOUNTS.prospect;
const SERVICE_NUMBER_FALLBACK = '9000';
/**
 * The demo's phones (testkit/sandbox.ts): not the integration tests' ports, because a BYE that Asterisk
 * still retransmits to a test phone's old address after an earlier run must not reach ours.
 */
const PORTS = SANDBOX.demoPhones;

class StoryError extends Error {}

// ------------------------------------------------------------------ the timeline

let t0 = Date.now();
function stamp(): string {
  const now = new Date();
  const clock = now.toTimeString().slice(0, 8);
  const rel = ((Date.now() - t0) / 1000).toFixed(1).padStart(5);
  return `${clock} +${rel}s`;
}
function say(who: string, what: string): void {
  process.stdout.write(`${stamp()}  ${who.padEnd(9)} ${what}\n`);
}
function note(what: string): void {
  process.stdout.write(`${' '.repeat(stamp().length)}  ${' '.repeat(9)} ${what}\n`);
}

// ------------------------------------------------------------------ arguments

interface Options {
  grace?: string;
  keepPbx: boolean;
  quietPbx: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { keepPbx: false, quietPbx: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--grace') o.grace = argv[++i];
    else if (a.startsWith('--grace=')) o.grace = a.slice('--grace='.length);
    else if (a === '--keep-pbx') o.keepPbx = true;
    else if (a === '--quiet-pbx') o.quietPbx = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run demo [-- --grace 20s] [--keep-pbx] [--quiet-pbx]\n');
      process.exit(0);
    } else {
      process.stderr.write(`demo: unknown argument ${a} (try --help)\n`);
      process.exit(2);
    }
  }
  if (o.grace !== undefined && !/^(\d+h)?(\d+m)?(\d+s)?$/.test(o.grace)) {
    process.stderr.write(`demo: --grace wants a duration such as 20s or 1m, not ${o.grace}\n`);
    process.exit(2);
  }
  return o;
}

function seconds(d: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(d);
  if (!m) return NaN;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** The service with the demo's config; its raw log goes to data/demo-story.log. A wait that fails ends the story. */
class Service extends ServiceProcess {
  constructor(configFile: string) {
    super(configFile, { dir: ROOT, logFile: SERVICE_LOG });
  }

  async wait(what: string, pred: (l: LogLine) => boolean, timeoutMs: number, from = 0): Promise<LogLine> {
    try {
      return await this.waitLog(pred, timeoutMs, from, what);
    } catch (err) {
      const first = (err as Error).message.split('\n')[0];
      throw new StoryError(/exited/.test(first) ? `${first}${this.stderr.length ? `:\n${this.stderr.join('').trim()}` : ''}` : `no sign of ${what} within ${Math.round(timeoutMs / 1000)} s`);
    }
  }

  first(pred: (l: LogLine) => boolean, from = 0): LogLine | undefined {
    return this.find(pred, from)[0];
  }
}

function listRequests(): Array<Record<string, unknown>> {
  const r = spawnSync(process.execPath, [CLI, 'list', '--json', '--config', CONFIG_OUT], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new StoryError(`considerate-callback list failed (exit ${r.status}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

function requestById(id: string): Record<string, unknown> {
  const r = listRequests().find((x) => x.id === id);
  if (!r) throw new StoryError(`request ${id} is not in the store`);
  return r;
}

// ------------------------------------------------------------------ the sandbox

interface DemoConfig {
  ari: { url: string; username: string; password: string };
  policy: Record<string, unknown>;
  recall?: { callerIdNumber?: string; callerIdName?: string };
  log?: Record<string, unknown>;
  store?: Record<string, unknown>;
  [k: string]: unknown;
}

/** The page's token for this run (the page is closed without one) and the fake CRM's key. */
const PAGE_TOKEN = randomBytes(18).toString('base64url');
const CRM_SECRET = randomBytes(18).toString('base64url');

function writeConfig(grace: string | undefined, crmUrl: string): DemoConfig {
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, 'config/demo.json'), 'utf8')) as DemoConfig;
  const config: DemoConfig = {
    ...base,
    // The sandbox this demo runs against (CC_PBX_HTTP_PORT), whatever config/demo.json says.
    ari: { ...base.ari, url: SANDBOX.ari.url },
    store: { ...(base.store ?? {}), path: STORE },
    log: { ...(base.log ?? {}), level: 'debug', format: 'json' },
    policy: { ...base.policy, ...(grace ? { grace } : {}) },
    // The prospect's name from the demo's fake CRM; the callbacks page on a free port with this run's token.
    lookup: { url: crmUrl, secret: CRM_SECRET },
    http: { ...((base.http as Record<string, unknown> | undefined) ?? {}), port: 0, token: PAGE_TOKEN },
  };
  fs.mkdirSync(DATA, { recursive: true });
  for (const f of [STORE, `${STORE}-wal`, `${STORE}-shm`]) fs.rmSync(f, { force: true });
  fs.writeFileSync(CONFIG_OUT, `${JSON.stringify(config, null, 2)}\n`);
  return config;
}

function pbx(args: string[], quiet: boolean): { status: number | null; output: string } {
  const r = spawnSync('bash', [PBX, ...args], { encoding: 'utf8', cwd: ROOT, env: process.env });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (!quiet && args[0] !== 'status') {
    for (const line of output.split('\n')) if (line.startsWith('pbx:')) note(line);
  }
  return { status: r.status, output };
}

/**
 * Hangs up what a demo (or an interrupted earlier run) left on the PBX: calls of the demo's phones 1001
 * and 2001 and the recall channels of `requestId` (or of any request). We hold the sandbox lock.
 */
async function hangUpLeftovers(client: ari.Client, requestId?: string): Promise<number> {
  const ours = (c: { id: string; name: string }) =>
    /^PJSIP\/(1001|2001)-/.test(c.name) || c.id.startsWith('demo-other-') || c.id.startsWith(requestId ? `ccb-${requestId}-` : 'ccb-');
  const stale = (await client.channels.list()).filter(ours);
  await Promise.all(stale.map((c) => client.channels.hangup({ channelId: c.id }).catch(() => undefined)));
  return stale.length;
}

/** What the callbacks page shows at the top during the heads-up, read from the page's own API (as the page does). */
async function showHeadsUp(pageBase: string, id: string): Promise<void> {
  const res = await fetch(`${pageBase}/callbacks/api/requests`, { headers: { authorization: `Bearer ${PAGE_TOKEN}` } });
  if (!res.ok) throw new StoryError(`the callbacks page's API answered HTTP ${res.status}`);
  const views = (await res.json()) as Array<{ id: string; prospect: string; agent: string; headsUp?: boolean; dueAt?: string | null; contact?: { name: string; company: string | null } | null }>;
  const r = views.find((v) => v.id === id);
  if (!r?.headsUp || !r.dueAt) throw new StoryError(`the callbacks page does not show the heads-up for ${id}`);
  const who = r.contact ? `${r.contact.name}${r.contact.company ? ` (${r.contact.company})` : ''} · ${r.prospect}` : r.prospect;
  const left = Math.max(0, Math.round((Date.parse(r.dueAt) - Date.now()) / 1000));
  say('page', `heads-up at the top: "Callback soon: ${who}" at ${new Date(r.dueAt).toTimeString().slice(0, 8)} (in ${left} s) · ${r.agent}  [Snooze] [Cancel]`);
  note("a browser with the page open raises a notification naming the prospect; 1001's BLF lamp blinks; nothing rings yet");
}

// ------------------------------------------------------------------ the story

interface Ctx {
  opts: Options;
  lock?: SandboxLock;
  startedPbx: boolean;
  service?: Service;
  crm?: FakeCrm;
  client?: ari.Client;
  requestId?: string;
  registered: Array<{ user: string; password: string; port: number }>;
}

async function story(ctx: Ctx): Promise<void> {
  const { opts } = ctx;
  process.stdout.write('Considerate Callback: the story, played on the sandbox PBX by scripted SIP phones (SIPp)\n\n');

  // The sandbox, one user at a time.
  ctx.lock = await acquireSandboxLock(SANDBOX.lockDir, {
    onWait: (owner) => say('demo', `the sandbox PBX is in use (pid ${owner}: a test run?); waiting for it`),
  });
  t0 = Date.now(); // the story's clock starts once the sandbox is ours
  if (!fs.existsSync(CLI)) throw new StoryError(`${path.relative(ROOT, CLI)} is missing: run npm run build (npm run demo does)`);
  const wasRunning = pbx(['status'], true).status === 0;
  if (!wasRunning) say('PBX', 'starting the sandbox Asterisk (the first run builds its chroot: a few minutes)');
  const up = pbx(['up'], opts.quietPbx || wasRunning);
  if (up.status === 3) {
    process.stdout.write(`${up.output}\n`);
    throw Object.assign(new StoryError('this machine cannot run the sandbox PBX (root on Debian with apt is needed)'), { exitCode: 3 });
  }
  if (up.status !== 0) throw new StoryError(`the sandbox PBX did not start (exit ${up.status}):\n${up.output.trim()}`);
  ctx.startedPbx = !wasRunning;
  // scripts/pbx.sh up installs SIPp with the sandbox's other host tools.
  if (!sippAvailable()) throw new StoryError('sipp is not installed (Debian: apt-get install sip-tester)');
  say('PBX', `Asterisk 22 is ${wasRunning ? 'running' : 'up'} on 127.0.0.1 (SIP ${SANDBOX.sipPort}/udp, ARI ${SANDBOX.httpPort})`);

  // The fake CRM the service asks for the prospect's name (lookup.url).
  ctx.crm = new FakeCrm({ secret: CRM_SECRET });
  const crmUrl = await ctx.crm.start();
  say('CRM', `a fake CRM answers look-ups at ${crmUrl} (2001 is ${DEMO_DIRECTORY['2001'].name}, ${DEMO_DIRECTORY['2001'].company ?? ''})`);

  // The service with the demo settings.
  const config = writeConfig(opts.grace, crmUrl);
  const grace = String(config.policy.grace ?? '5m');
  const graceS = seconds(grace);
  const serviceNumber = config.recall?.callerIdNumber || SERVICE_NUMBER_FALLBACK;
  ctx.service = new Service(CONFIG_OUT);
  const svc = ctx.service;
  await svc.start(false);
  await svc.wait('the service connecting to Asterisk (ARI)', (l) => l.event === 'ari.connected', 20000);
  const pagePort = Number((await svc.wait('the HTTP listener', (l) => l.event === 'http.listening', 10000)).port);
  const pageBase = `http://127.0.0.1:${pagePort}`;
  const headsUp = String(config.policy.headsUp ?? '1m');
  say('service', `Considerate Callback runs with demo settings: grace ${grace} (production default 5 min), heads-up ${headsUp} before the ring`);
  note(`the callbacks page: ${pageBase}/callbacks?token=${PAGE_TOKEN}`);
  note(`config ${path.relative(ROOT, CONFIG_OUT)} (from config/demo.json), log ${path.relative(ROOT, SERVICE_LOG)}`);
  note(`watch it from another terminal: node dist/cli/main.js list -c ${path.relative(ROOT, CONFIG_OUT)}`);

  ctx.client = await ari.connect(config.ari.url, config.ari.username, config.ari.password);
  const stale = await hangUpLeftovers(ctx.client);
  if (stale) note(`hung up ${stale} call(s) an earlier, interrupted demo left on the PBX`);

  // The phones.
  for (const [who, port] of [
    [PROSPECT, PORTS.prospectUas.sip],
    [AGENT, PORTS.agentUas.sip],
  ] as const) {
    await register(who.user, who.password, port, SCENARIOS);
    ctx.registered.push({ ...who, port });
  }
  say('phones', `2001 (prospect) registered from SIPp 127.0.0.1:${PORTS.prospectUas.sip}; 1001 (agent) from 127.0.0.1:${PORTS.agentUas.sip}`);
  const storyTimeoutMs = (graceS + 120) * 1000;
  // The prospect's phone answers two calls: the one it is on when the agent calls, and the recall.
  const prospectPhone = await startSipp({
    scenario: 'prospect-answer.xml', scenarioDir: SCENARIOS, port: PORTS.prospectUas.sip, mediaPort: PORTS.prospectUas.media,
    remote: null, calls: 2, timeoutMs: storyTimeoutMs, label: "prospect 2001's phone",
  }).ready();

  // 1. The prospect is on another call.
  const other = `demo-other-${process.pid}`;
  await ctx.client!.channels.originate({ endpoint: 'PJSIP/2001', context: 'cc-sim', extension: 'answer', priority: 1, channelId: other, callerId: '"A customer" <+4930555010>', timeout: 15 });
  await prospectPhone.waitMessage('the other call being answered', (m) => m.direction === 'received' && m.method === 'ACK', 15000);
  // The phone's ACK follows Asterisk's 200 OK handling on the wire, but the channel turns Up in its own
  // thread a moment later: ask for a while before calling it a failure.
  let otherState = '';
  for (let i = 0; i < 50 && otherState !== 'Up'; i++) {
    if (i > 0) await sleep(100);
    otherState = (await ctx.client!.channels.get({ channelId: other })).state;
  }
  if (otherState !== 'Up') throw new StoryError(`the other call is ${otherState}, not Up`);
  say('2001', 'is on another call (with a customer, for an hour in the story): the line is busy');

  // 2. The agent calls, is offered a callback, presses #.
  await sleep(1000);
  let mark = svc.logs.length;
  say('1001', 'the agent dials 2001');
  const agentCall = startSipp({
    scenario: 'uac-busy-pound.xml', scenarioDir: SCENARIOS, port: PORTS.agentUac.sip, mediaPort: PORTS.agentUac.media,
    service: PROSPECT.user, keys: { agent: AGENT.user }, auth: AGENT, timeoutMs: 60000, label: "agent 1001's call",
  });
  const offered = await Promise.race([
    svc.wait('the offer', (l) => l.event === 'offer.started' && l.prospect === '2001', 20000, mark),
    agentCall.done().then((r) => {
      throw new StoryError(`the agent's call ended without the offer: ${ladder(r.messages).join(', ')}`);
    }),
  ]);
  say('1001 hears', '(busy) "The line is busy. Press hash for a callback."');
  note(`the service: 2001 is busy (cause ${String(offered.hangupCause ?? '17')}), offering agent ${String(offered.agent)} a callback`);
  await svc.wait('the # key', (l) => l.event === 'offer.key' && l.digit === '#', 20000, mark);
  say('1001', 'presses #');
  const requested = await svc.wait('the stored request', (l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark);
  const id = String(requested.requestId);
  ctx.requestId = id;
  const stored = requestById(id);
  say('service', `request ${id} stored before the agent is told: ${String(stored.state)}, waiting for 2001's line to be free`);
  // The look-up runs after the opt-in, never in its way; the name is stored with the request when it comes.
  const found = await svc.wait("the prospect's name from the CRM", (l) => l.requestId === id && (l.event === 'lookup.stored' || l.event === 'lookup.failed'), 10000, mark);
  if (found.event !== 'lookup.stored') throw new StoryError(`the CRM look-up failed: ${String(found.error ?? found.kind ?? '')}`);
  say('CRM', `2001 is ${String(found.name)}: stored with the request (list, show, the page and the webhooks show it)`);
  if (stored.state !== 'WAITING' || stored.waitingFor !== 'prospect-busy') {
    throw new StoryError(`the stored request is ${String(stored.state)} waiting for ${String(stored.waitingFor)}, not WAITING for the busy line`);
  }
  say('1001 hears', '"OK. We\'ll call you back when the line is free." The call ends.');
  const agentResult = await agentCall.done();
  if (agentResult.code !== 0 || agentResult.killed) throw new StoryError(`the agent's call did not end as expected:\n${describeSipp(agentResult)}`);

  // 3. The other call ends; grace.
  const agentPhone = await startSipp({
    scenario: 'agent-recall-key1.xml', scenarioDir: SCENARIOS, port: PORTS.agentUas.sip, mediaPort: PORTS.agentUas.media,
    remote: null, pauseMs: 7500, timeoutMs: storyTimeoutMs, label: "agent 1001's phone",
  }).ready();
  await sleep(3000);
  mark = svc.logs.length;
  await ctx.client!.channels.hangup({ channelId: other }).catch(() => undefined);
  say('2001', 'hangs up the other call: the line is free');
  await svc.wait('the line seen free', (l) => l.requestId === id && l.event === 'request.transition' && l.transition === 'prospect-free', 10000, mark);
  const freedAt = Date.now();
  say('service', `2001's line is free: a grace of ${grace} before anyone is rung (${String(requestById(id).state)})`);

  // Nothing rings during the grace; a short countdown.
  const isInvite = (m: SipMessage) => m.direction === 'received' && m.method === 'INVITE';
  let invite: SipMessage | undefined;
  let nextTick = 10;
  let headsUpShown = false;
  while (!invite) {
    if (!headsUpShown && svc.first((l) => l.requestId === id && l.event === 'recall.heads_up', mark)) {
      headsUpShown = true;
      await showHeadsUp(pageBase, id);
    }
    // The recall: the first INVITE after the service started ringing the agent.
    invite = svc.first((l) => l.requestId === id && l.event === 'recall.ringing_agent', mark) ? agentPhone.messages().find(isInvite) : undefined;
    if (invite) break;
    const waited = (Date.now() - freedAt) / 1000;
    if (waited >= nextTick && waited < graceS) {
      say('service', `grace: ${Math.ceil(graceS - waited)} s left; 1001's phone is quiet`);
      nextTick += 10;
    }
    if (!agentPhone.running) throw new StoryError(`the agent's phone stopped before the recall:\n${describeSipp(await agentPhone.done())}`);
    if (waited > graceS + 30) throw new StoryError(`the agent's phone was not rung within ${graceS + 30} s after the line freed`);
    await sleep(100);
  }
  if (!headsUpShown && seconds(headsUp) > 0) throw new StoryError('the recall rang without a heads-up on the callbacks page');
  const rangAfter = (Date.now() - freedAt) / 1000;
  if (rangAfter < graceS - 0.5) throw new StoryError(`the agent was rung ${rangAfter.toFixed(1)} s after the line freed: before the ${grace} grace ended`);

  // 4. The agent's phone rings with the label.
  const view = callerView(invite);
  const label = view.from.display ?? '';
  say('1001 sees', `the phone rings: "${label}" <${view.from.user ?? ''}>  (${rangAfter.toFixed(1)} s after the line freed)`);
  note(`INVITE From: ${invite.header('From') ?? ''}`);
  // The label the service sent (recall.ringing_agent's callerId: "<name>" <number>).
  const expected = /^"(.*)" </.exec(String(svc.first((l) => l.requestId === id && l.event === 'recall.ringing_agent', mark)?.callerId ?? ''))?.[1] ?? '';
  if (label !== expected) throw new StoryError(`the agent's phone showed "${label}", not "${expected}" (the label the service sent)`);
  if (!label.includes('Anna Schmidt')) throw new StoryError(`the agent's phone showed "${label}", not the prospect's name from the CRM`);
  if (view.from.user === '2001') throw new StoryError("the agent's phone showed the prospect's number: it must show the service number");
  if (view.from.user !== serviceNumber) throw new StoryError(`the agent's phone showed number ${view.from.user}, not the service number ${serviceNumber}`);
  await svc.wait('the agent answering', (l) => l.requestId === id && l.event === 'recall.agent_answered', 15000, mark);
  say('1001', 'answers');
  say('1001 hears', '"Callback. Press 1 to connect, 2 for later, 3 to cancel. The number: 2 0 0 1."');
  const chose = await svc.wait('a key in the recall menu', (l) => l.requestId === id && l.event === 'recall.agent_key', 30000, mark);
  say('1001', `presses ${String(chose.key)}`);
  if (chose.key !== '1') throw new StoryError(`the service heard key ${String(chose.key)}, not 1`);
  await svc.wait('the service dialling the prospect', (l) => l.requestId === id && l.event === 'recall.dialling_prospect', 20000, mark);
  say('1001 hears', '"Connecting." and then ringback while 2001\'s phone rings');

  // 5. The prospect's phone rings with the agent's number and answers.
  const recallInvite = await prospectPhone.waitMessage(
    'the recall INVITE to the prospect',
    (m) => m.direction === 'received' && m.method === 'INVITE' && callerView(m).from.user === AGENT.user,
    20000,
  );
  const pview = callerView(recallInvite);
  say('2001 sees', `the phone rings: "${pview.from.display ?? ''}" <${pview.from.user ?? ''}> (the agent's own caller ID)`);
  await svc.wait('the prospect answering', (l) => l.requestId === id && l.event === 'recall.prospect_answered', 20000, mark);
  say('2001', 'answers');
  const finished = await svc.wait('the callback finishing', (l) => l.requestId === id && l.event === 'request.finished', 20000, mark);
  if (finished.state !== 'COMPLETED') throw new StoryError(`the callback ended ${String(finished.state)} (${String(finished.reason ?? finished.outcome ?? '')}), not COMPLETED`);
  say('connected', 'agent 1001 and prospect 2001 are talking; the callback is COMPLETED');

  // Asterisk updates the agent's display once the two are bridged (a re-INVITE with the connected line).
  const update = await agentPhone
    .waitMessage('a connected-line update', (m) => isInvite(m) && m.header('Call-ID') === invite!.header('Call-ID') && m.header('CSeq') !== invite!.header('CSeq'), 3000)
    .catch(() => undefined);
  const shown = update ? callerView(update).rpid ?? callerView(update).pai : undefined;
  if (shown) say('1001 sees', `the display now shows "${shown.display ?? ''}" <${shown.user ?? ''}>`);

  // 6. The agent hangs up after a short talk.
  const agentEnd = await agentPhone.done();
  if (agentEnd.code !== 0 || agentEnd.killed) throw new StoryError(`the agent's phone did not end the call cleanly:\n${describeSipp(agentEnd)}`);
  say('1001', 'hangs up; 2001\'s phone gets the BYE');
  const prospectEnd = await Promise.race([prospectPhone.done(), sleep(10000).then(() => undefined)]);
  if (!prospectEnd || prospectEnd.code !== 0 || prospectEnd.killed) {
    throw new StoryError(`the prospect's phone did not end cleanly:\n${prospectEnd ? describeSipp(prospectEnd) : 'still running 10 s after the agent hung up'}`);
  }

  // The request as the store has it.
  const final = requestById(id);
  process.stdout.write('\nThe request in the store (considerate-callback list --json):\n');
  const fields = ['id', 'agent', 'prospect', 'state', 'outcome', 'attempts', 'snoozes', 'createdAt', 'updatedAt', 'reason'];
  for (const k of fields) if (final[k] !== undefined && final[k] !== null) process.stdout.write(`  ${k.padEnd(10)} ${String(final[k])}\n`);
  if (final.state !== 'COMPLETED') throw new StoryError(`the store says ${String(final.state)}, not COMPLETED`);
  const show = spawnSync(process.execPath, [CLI, 'show', id, '--config', CONFIG_OUT], { encoding: 'utf8', cwd: ROOT });
  if (show.status === 0 && show.stdout.trim()) {
    process.stdout.write(`\nIts history (considerate-callback show ${id}):\n${show.stdout.replace(/^/gm, '  ').trimEnd()}\n`);
  }
  process.stdout.write(`\nThe story happened as told in ${((Date.now() - t0) / 1000).toFixed(0)} s: busy → # → name from the CRM → grace → heads-up → "${label}" → 1 → connected.\n`);
}

async function cleanUp(ctx: Ctx): Promise<void> {
  const step = async (what: string, fn: () => unknown): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`demo: clean-up: ${what} failed: ${(err as Error).message}\n`);
    }
  };
  await step('stopping the service', () => ctx.service?.stop());
  if (ctx.client) await step("hanging up the demo's calls", () => hangUpLeftovers(ctx.client!, ctx.requestId ?? 'none'));
  await step('stopping the SIPp phones', () => stopAllSipp());
  await step('stopping the fake CRM', () => ctx.crm?.stop());
  for (const r of ctx.registered) await step(`unregistering ${r.user}`, () => unregister(r.user, r.password, r.port, SCENARIOS));
  await step('closing ARI', () => {
    try {
      ctx.client?.stop();
    } catch {
      // never started
    }
  });
  if (ctx.startedPbx && !ctx.opts.keepPbx) {
    await step('stopping the sandbox', () => pbx(['down'], ctx.opts.quietPbx));
    note('the sandbox PBX is stopped again (it was not running before the demo)');
  }
  ctx.lock?.release();
}

async function main(): Promise<number> {
  const ctx: Ctx = { opts: parseArgs(process.argv.slice(2)), startedPbx: false, registered: [] };
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\ndemo: ${sig}: cleaning up\n`);
    void cleanUp(ctx).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 0;
  try {
    await story(ctx);
  } catch (err) {
    const e = err as Error & { exitCode?: number };
    code = e.exitCode ?? 1;
    process.stdout.write(`\n${stamp()}  FAILED    the story did not happen as told: ${e.message}\n`);
    if (!(err instanceof StoryError)) process.stdout.write(`${e.stack ?? ''}\n`);
    if (ctx.service?.logs.length) process.stdout.write(`\nthe service's last log lines (all of them in ${path.relative(ROOT, SERVICE_LOG)}):\n${ctx.service.tail(15)}\n`);
  }
  if (!stopping) await cleanUp(ctx);
  return code;
}

void main().then((code) => process.exit(code));

