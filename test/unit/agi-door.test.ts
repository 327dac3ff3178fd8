/**
 * The FastAGI door, attacked over real TCP: each attack is performed against a running AgiServer while a
 * legitimate AGI session (a scripted Asterisk: environment, then one reply per command) is served.
 */
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { AgiServer, AgiServerOptions, type AgiHandler } from '../../src/telephony/agi/server';
import { LineSplitter, LineTooLong, scriptQuery } from '../../src/telephony/agi/protocol';
import { createLogger } from '../../src/logging/log';
import { OfferDriver } from '../../src/flows/offer';
import { AgiCallPort, offerArgsFromAgi } from '../../src/telephony/agi/port';
import { DEFAULT_AGENT_DEVICES, DEFAULT_PROSPECT_DENY } from '../../src/core/dial-policy';
import { type CallbackRequest } from '../../src/core/policy';
import { SqliteStore } from '../../src/store/sqlite';
import { engineWorld } from '../../testkit/engine';

const SECRET = 's3cret-door';

interface Harness {
  server: AgiServer;
  port: number;
  lines: Array<Record<string, unknown>>;
  handled: string[];
}

const servers: AgiServer[] = [];
const clients: net.Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(opts: Partial<AgiServerOptions> = {}): Promise<Harness> {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    for (const l of chunk.split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const handled: string[] = [];
  const offer: AgiHandler = async (session) => {
    handled.push(session.env.vars.agi_uniqueid);
    await session.command('ANSWER');
    await session.command('SET VARIABLE CC_OK 1');
  };
  const server = new AgiServer({
    host: '127.0.0.1',
    port: 0,
    log: createLogger({ format: 'json', stream, level: 'debug' }),
    handlers: { offer },
    secret: SECRET,
    ...opts,
  });
  servers.push(server);
  const port = await server.listen();
  return { server, port, lines, handled };
}

/** A well-behaved Asterisk: sends the environment, answers every command with 200; resolves with the commands at close. */
function legitSession(port: number, opts: { script?: string; secret?: string; id?: string } = {}): Promise<string[]> {
  const script = opts.script ?? 'offer';
  const query = opts.secret === undefined ? `?secret=${SECRET}` : opts.secret === '' ? '' : `?secret=${opts.secret}`;
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    clients.push(c);
    const got: string[] = [];
    let buf = '';
    c.setEncoding('utf8');
    c.on('connect', () => {
      c.write(
        [
          'agi_network: yes',
          `agi_network_script: ${script}${query}`,
          `agi_request: agi://127.0.0.1:${port}/${script}${query}`,
          'agi_channel: PJSIP/1001-00000001',
          `agi_uniqueid: ${opts.id ?? 'legit'}`,
          'agi_arg_1: 2001',
          '',
          '',
        ].join('\n'),
      );
    });
    c.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        got.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        c.write('200 result=0\n');
      }
    });
    c.on('close', () => resolve(got));
    c.on('error', reject);
  });
}

const SERVED = ['ANSWER', 'SET VARIABLE CC_OK 1'];

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    clients.push(c);
    c.on('error', (err) => (c.connecting ? reject(err) : undefined));
  });
}

const closed = (c: net.Socket) => new Promise<void>((r) => (c.destroyed ? r() : c.once('close', () => r())));
const rejected = (h: Harness, reason: string) => h.lines.filter((l) => l.event === 'agi.refused' && l.reason === reason);

describe('FastAGI door: attacks over TCP, a real session served meanwhile', () => {
  it('a 10 MB line without a newline is cut off at the line limit; a legitimate session is served meanwhile', async () => {
    const h = await start();
    const attacker = await connect(h.port);
    attacker.on('error', () => undefined);
    const big = Buffer.alloc(10 * 1024 * 1024, 0x41);
    attacker.write(big);
    const served = legitSession(h.port);
    await closed(attacker);
    expect(await served).toEqual(SERVED);
    expect(h.server.refused.get('line-too-long')).toBe(1);
    expect(rejected(h, 'line-too-long')).toHaveLength(1);
    expect(h.handled).toEqual(['legit']);
  });

  it('2 000 idle connections: the cap holds, the oldest unidentified ones make room, a real call is served, the log is not flooded', async () => {
    const h = await start({ maxSessions: 100, limits: { envTimeoutMs: 60_000 } });
    const idle: net.Socket[] = [];
    for (let i = 0; i < 2000; i += 100) {
      idle.push(...(await Promise.all(Array.from({ length: 100 }, () => connect(h.port)))));
    }
    for (const c of idle) c.on('error', () => undefined);
    expect(await legitSession(h.port)).toEqual(SERVED);
    expect(h.server.sessions).toBeLessThanOrEqual(100);
    expect(h.server.refused.get('too-many-sessions')).toBeGreaterThanOrEqual(1900);
    // One line for the first refusal of the window; the rest are counted, not logged one by one.
    expect(rejected(h, 'too-many-sessions').length).toBeLessThanOrEqual(2);
    await h.server.close();
    const summary = h.lines.filter((l) => l.event === 'agi.refused' && typeof l.suppressed === 'number');
    expect(summary.map((l) => l.suppressed)).toEqual([expect.any(Number)]);
    expect(Number(summary[0].suppressed)).toBeGreaterThanOrEqual(1899);
  });

  it('slow-loris environment (a line now and then, never the empty line) is cut at the environment timeout', async () => {
    const h = await start({ limits: { envTimeoutMs: 400 } });
    const attacker = await connect(h.port);
    attacker.on('error', () => undefined);
    const drip = setInterval(() => attacker.writable && attacker.write('agi_x: y\n'), 50);
    const served = legitSession(h.port);
    await closed(attacker);
    clearInterval(drip);
    expect(await served).toEqual(SERVED);
    expect(rejected(h, 'env-timeout')).toHaveLength(1);
  });

  it('an environment with too many lines is refused', async () => {
    const h = await start();
    const attacker = await connect(h.port);
    attacker.on('error', () => undefined);
    attacker.write(Array.from({ length: 300 }, (_, i) => `agi_v${i}: x`).join('\n') + '\n');
    await closed(attacker);
    expect(rejected(h, 'env-too-large')).toHaveLength(1);
    expect(await legitSession(h.port)).toEqual(SERVED);
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])('script name %s is not a handler (own properties only)', async (script) => {
    const h = await start();
    expect(await legitSession(h.port, { script })).toEqual([]);
    expect(rejected(h, 'unknown-script')).toHaveLength(1);
    expect(h.handled).toEqual([]);
    expect(await legitSession(h.port)).toEqual(SERVED);
  });

  it('a wrong or missing secret is refused before any handler runs, and the secret is never logged', async () => {
    const h = await start();
    expect(await legitSession(h.port, { secret: 'guess', id: 'a' })).toEqual([]);
    expect(await legitSession(h.port, { secret: '', id: 'b' })).toEqual([]);
    expect(h.handled).toEqual([]);
    expect(h.server.refused.get('bad-secret')).toBe(2);
    expect(await legitSession(h.port)).toEqual(SERVED);
    expect(JSON.stringify(h.lines)).not.toContain(SECRET);
    expect(JSON.stringify(h.lines)).not.toContain('guess');
  });

  it('a peer not on the allowlist is refused at once; an allowed one is served', async () => {
    const closedDoor = await start({ allowedPeers: ['10.1.2.3'] });
    expect(await legitSession(closedDoor.port)).toEqual([]);
    expect(rejected(closedDoor, 'peer-not-allowed')).toHaveLength(1);
    const open = await start({ allowedPeers: ['127.0.0.1'] });
    expect(await legitSession(open.port)).toEqual(SERVED);
  });

  it('a session that goes silent after its environment, with no command waiting, is closed at the idle timeout', async () => {
    const h = await start({ idleTimeoutMs: 200, handlers: { offer: () => new Promise<void>(() => undefined) } });
    expect(await legitSession(h.port)).toEqual([]);
    expect(rejected(h, 'idle-timeout')).toHaveLength(1);
  });

  it('warns loudly when bound to anything but loopback', async () => {
    const exposed = await start({ host: '0.0.0.0' });
    expect(exposed.lines.filter((l) => l.event === 'agi.exposed')).toHaveLength(1);
    const local = await start({ host: '127.0.0.1' });
    expect(local.lines.filter((l) => l.event === 'agi.exposed')).toHaveLength(0);
  });

  it('agi.listening says whether a secret is required in words the log mask leaves readable', async () => {
    const withSecret = await start();
    const line = withSecret.lines.find((l) => l.event === 'agi.listening');
    expect(line).toMatchObject({ auth: 'secret required', message: expect.stringContaining('secret: required') });
    expect(JSON.stringify(line)).not.toContain('********');
    const without = await start({ secret: '' });
    expect(without.lines.find((l) => l.event === 'agi.listening')).toMatchObject({ auth: 'no secret', message: expect.stringContaining('secret: none') });
  });

  it('without a secret configured, sessions are served as before', async () => {
    const h = await start({ secret: '' });
    expect(await legitSession(h.port, { secret: '' })).toEqual(SERVED);
  });
});

describe('toll fraud through FastAGI: the dial policy holds even with the door open', () => {
  /** A scripted Asterisk whose caller presses # during the offer; resolves with the commands it was sent. */
  function optInOver(port: number, prospect: string, agent: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      clients.push(c);
      const got: string[] = [];
      let buf = '';
      c.setEncoding('utf8');
      c.on('connect', () =>
        c.write(`agi_network: yes\nagi_network_script: offer\nagi_channel: ${agent}-0000002a\nagi_uniqueid: u-${prospect}\nagi_language: en\nagi_arg_1: ${prospect}\nagi_arg_2: ${agent}\nagi_arg_3: 17\n\n`),
      );
      c.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const cmd = buf.slice(0, i);
          buf = buf.slice(i + 1);
          got.push(cmd);
          c.write(cmd.startsWith('STREAM FILE cc-offer') ? '200 result=35 endpos=800\n' : '200 result=0\n');
        }
      });
      c.on('close', () => resolve(got));
      c.on('error', reject);
    });
  }

  it.each([
    ['a premium-rate prospect', '0900123456', 'PJSIP/1001'],
    ['an IAX2 trunk as the agent', '2001', 'IAX2/trunk'],
    ['Local/ into a context that is not allowed', '2001', 'Local/0900123@from-trunk'],
  ])('%s: nothing is stored, the caller hears the error prompt; a real opt-in still works', async (_what, prospect, agent) => {
    const store = SqliteStore.open<CallbackRequest>(':memory:');
    const { engine } = await engineWorld({
      store,
      clock: Date.now,
      prospectDevice: () => undefined,
      dialPolicy: { agentDevices: [...DEFAULT_AGENT_DEVICES], prospectAllow: [], prospectDeny: [...DEFAULT_PROSPECT_DENY] },
      maxPendingTotal: 1000,
      started: false,
      pbxUp: false,
    });
    const log = createLogger({ format: 'json', stream: new PassThrough(), level: 'error' });
    const driver = new OfferDriver(
      { optIn: (input) => engine.optIn(input) },
      {
        keyTimeoutMs: 300,
        closingTimeoutMs: 1000,
        languages: ['en'],
        defaultLanguage: 'en',
        prompts: { offer: 'sound:cc-offer', confirm: 'sound:cc-confirm', goodbye: 'sound:cc-goodbye', full: 'sound:cc-full', error: 'sound:cc-error' },
        numbers: { minDigits: 2, maxDigits: 20 },
      },
      log,
    );
    const offer: AgiHandler = async (session) => {
      await driver.run(new AgiCallPort(session), offerArgsFromAgi(session), 'agi');
    };
    const h = await start({ secret: '', handlers: { offer } });
    const attack = await optInOver(h.port, prospect, agent);
    expect(attack.some((c) => c.startsWith('STREAM FILE cc-error'))).toBe(true);
    expect(await store.list()).toEqual([]);
    const real = await optInOver(h.port, '2001', 'PJSIP/1001');
    expect(real.some((c) => c.startsWith('STREAM FILE cc-confirm'))).toBe(true);
    expect((await store.list()).map((r) => [r.agent, r.prospect])).toEqual([['PJSIP/1001', '2001']]);
    await store.close();
  });
});

describe('LineSplitter', () => {
  it('splits across chunks, strips CR, and refuses a line over the limit without holding it', async () => {
    const s = new LineSplitter(10);
    expect(s.push('ab')).toEqual([]);
    expect(s.push('c\r\nde\nf')).toEqual(['abc', 'de']);
    expect(s.push('gh\n')).toEqual(['fgh']);
    expect(() => s.push('x'.repeat(11))).toThrow(LineTooLong);
    const t = new LineSplitter(10);
    expect(() => ['aaaa', 'aaaa', 'aaaa'].forEach((c) => t.push(c))).toThrow(LineTooLong);
  });

  it('stays linear: a megabyte of short lines in one chunk', async () => {
    const s = new LineSplitter(100);
    expect(s.push('a\n'.repeat(500_000))).toHaveLength(500_000);
  });

  it('the secret comes from the script query', async () => {
    expect(scriptQuery({ agi_network_script: 'offer?secret=a%20b' }).get('secret')).toBe('a b');
    expect(scriptQuery({ agi_request: 'agi://h:1/offer?secret=x' }).get('secret')).toBe('x');
    expect(scriptQuery({ agi_network_script: 'offer' }).get('secret')).toBeNull();
  });
});
