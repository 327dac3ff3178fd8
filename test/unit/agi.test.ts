/**
 * FastAGI: the wire protocol (pure), and the server + offer adapter against a scripted fake Asterisk
 * over a real TCP socket. The real thing is in test/integration/agi.test.ts.
 */
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { AgiCallPort, deviceFromChannel, featureArgsFromAgi, offerArgsFromAgi, soundName } from '../../src/telephony/agi/port';
import { OfferDriver, type OfferPreparation, type OfferRequestInput } from '../../src/flows/offer';
import { ReplyReader, agiQuote, parseAgiEnv, parseAgiReply, resultDigit, scriptName } from '../../src/telephony/agi/protocol';
import { AgiServer, type AgiSession } from '../../src/telephony/agi/server';
import type { OptInResult } from '../../src/engine';
import { createLogger } from '../../src/logging/log';

const quiet = () => createLogger({ format: 'json', stream: new PassThrough(), level: 'error' });

describe('FastAGI protocol', () => {
  it('parses the environment block, keeping values with colons whole', () => {
    const env = parseAgiEnv([
      'agi_network: yes',
      'agi_network_script: offer',
      'agi_request: agi://127.0.0.1:4573/offer',
      'agi_channel: PJSIP/1001-0000002a',
      'agi_uniqueid: 1712345678.42',
      'agi_callerid: 1001',
      'agi_calleridname: Agent: 1001',
      'agi_arg_1: 2001',
      'agi_arg_2: PJSIP/1001',
      'agi_arg_3: 17',
    ]);
    expect(env.script).toBe('offer');
    expect(env.args).toEqual(['2001', 'PJSIP/1001', '17']);
    expect(env.vars.agi_request).toBe('agi://127.0.0.1:4573/offer');
    expect(env.vars.agi_calleridname).toBe('Agent: 1001');
  });

  it('takes the script from agi_request when agi_network_script is missing', () => {
    expect(scriptName({ agi_request: 'agi://10.0.0.1:4573/offer?x=1' })).toBe('offer');
    expect(scriptName({ agi_request: 'agi://[::1]:4573/offer' })).toBe('offer');
    expect(scriptName({ agi_network_script: '/offer' })).toBe('offer');
  });

  it.each([
    ['200 result=35 endpos=9120', { code: 200, result: 35, extra: { endpos: '9120' } }],
    ['200 result=0 endpos=0', { code: 200, result: 0 }],
    ['200 result=-1', { code: 200, result: -1 }],
    ['200 result=123 (timeout)', { code: 200, result: 123, data: 'timeout' }],
    ['200 result=1 (en)', { code: 200, result: 1, data: 'en' }],
    ['510 Invalid or unknown command', { code: 510 }],
    ['511 Command Not Permitted on a dead channel or intercept routine', { code: 511 }],
  ])('parses %j', (line, want) => {
    expect(parseAgiReply(line)).toMatchObject(want);
  });

  it('joins a 520 usage block and tells HANGUP notices from replies', () => {
    const r = new ReplyReader();
    expect(r.line('HANGUP')).toEqual({ type: 'hangup' });
    expect(r.line('520-Invalid command syntax.  Proper usage follows:')).toBeUndefined();
    expect(r.line(' Usage: STREAM FILE <filename> <escape digits>')).toBeUndefined();
    const done = r.line('520 End of proper usage.');
    expect(done).toMatchObject({ type: 'reply', reply: { code: 520 } });
    expect(done && done.type === 'reply' && done.reply.raw.split('\n')).toHaveLength(3);
    expect(r.line('200 result=0')).toMatchObject({ type: 'reply', reply: { code: 200, result: 0 } });
  });

  it('maps results to keys and quotes arguments', () => {
    expect(resultDigit(35)).toBe('#');
    expect(resultDigit(49)).toBe('1');
    expect(resultDigit(0)).toBeUndefined();
    expect(resultDigit(-1)).toBeUndefined();
    expect(agiQuote('#0123456789*')).toBe('"#0123456789*"');
    expect(agiQuote('a"b\nc')).toBe('"a\\"b c"');
    expect(deviceFromChannel('PJSIP/1001-0000002a')).toBe('PJSIP/1001');
    expect(deviceFromChannel('PJSIP/agent-a-0000002a')).toBe('PJSIP/agent-a');
    expect(soundName('sound:cc-offer')).toBe('cc-offer');
  });

  it("a feature code's arguments as Stasis() passes them: the agent from the dialplan, else from the channel", () => {
    const session = (args: string[]) => ({ env: { script: 'pause', vars: { agi_channel: 'PJSIP/1002-0000001f' }, args } }) as unknown as AgiSession;
    expect(featureArgsFromAgi('pause', session(['PJSIP/1001']))).toEqual(['pause', 'PJSIP/1001']);
    expect(featureArgsFromAgi('pending', session([]))).toEqual(['pending', 'PJSIP/1002']);
    expect(featureArgsFromAgi('pending', session(['']))).toEqual(['pending', 'PJSIP/1002']);
  });
});

/** A scripted Asterisk: sends the environment, then answers each command line with `reply(command)`. */
async function fakeAsterisk(
  port: number,
  env: Record<string, string>,
  reply: (command: string, n: number) => string | string[] | null,
): Promise<string[]> {
  const commands: string[] = [];
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(`${Object.entries(env).map(([k, v]) => `${k}: ${v}\n`).join('')}\n`);
    });
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const cmd = buf.slice(0, i);
        buf = buf.slice(i + 1);
        commands.push(cmd);
        const r = reply(cmd, commands.length);
        if (r === null) {
          sock.end();
          return;
        }
        for (const line of ([] as string[]).concat(r)) sock.write(`${line}\n`);
      }
    });
    sock.on('close', () => resolve(commands));
    sock.on('error', reject);
  });
}

const ENV = {
  agi_network: 'yes',
  agi_network_script: 'offer',
  agi_request: 'agi://127.0.0.1:4573/offer',
  agi_channel: 'PJSIP/1001-0000002a',
  agi_language: 'en',
  agi_uniqueid: '1712345678.42',
  agi_callerid: '1001',
  agi_calleridname: 'Agent 1001',
  agi_arg_1: '2001',
};

const OPTS = {
  keyTimeoutMs: 300,
  closingTimeoutMs: 1000,
  languages: ['en', 'de'],
  defaultLanguage: 'en',
  prompts: { offer: 'sound:cc-offer', confirm: 'sound:cc-confirm', goodbye: 'sound:cc-goodbye', full: 'sound:cc-full', error: 'sound:cc-goodbye' },
  numbers: { minDigits: 2, maxDigits: 20 },
};

describe('FastAGI offer with the promise and the queue (prepare)', () => {
  let server: AgiServer;
  let port: number;
  const stored: OfferRequestInput[] = [];
  let prep: OfferPreparation = { context: { promise: 'regular', position: 1 } };
  let result: OptInResult = { result: 'created', requestId: 'r1', promise: 'regular' };

  beforeAll(async () => {
    const driver = new OfferDriver({ optIn: ({ marks: _marks, ...i }) => (stored.push(i), result), prepare: async () => prep }, OPTS, quiet());
    const offer = async (session: AgiSession) => {
      await driver.run(new AgiCallPort(session), offerArgsFromAgi(session), 'agi');
    };
    server = new AgiServer({ host: '127.0.0.1', port: 0, log: quiet(), handlers: { offer } });
    port = await server.listen();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    stored.length = 0;
  });

  it('second in the queue: "you are second" (keys work), then the offer; the zone goes with the opt-in', async () => {
    prep = { context: { promise: 'regular', position: 2 }, timeZone: 'America/New_York', zoneSource: 'number' };
    result = { result: 'created', requestId: 'r1', promise: 'regular', position: 2 };
    const cmds = await fakeAsterisk(port, ENV, (c) => (c.startsWith('STREAM FILE cc-offer') ? '200 result=35' : '200 result=0 endpos=100'));
    expect(cmds).toEqual(['ANSWER', 'STREAM FILE cc-queue-2 "#0123456789*"', 'STREAM FILE cc-offer "#0123456789*"', 'STREAM FILE cc-confirm ""', 'HANGUP']);
    expect(stored[0]).toMatchObject({ prospect: '2001', timeZone: 'America/New_York', zoneSource: 'number' });
  });

  it('after hours, carried over: the next-calling-day offer and confirmation', async () => {
    prep = { context: { promise: 'next-calling-day', position: 1 } };
    result = { result: 'created', requestId: 'r1', promise: 'next-calling-day' };
    const cmds = await fakeAsterisk(port, ENV, (c) => (c.startsWith('STREAM FILE cc-offer-next-day') ? '200 result=35' : '200 result=0'));
    expect(cmds).toEqual(['ANSWER', 'STREAM FILE cc-offer-next-day "#0123456789*"', 'STREAM FILE cc-confirm-next-day ""', 'HANGUP']);
  });

  it('after hours, declined: the reason only, no key waited for, nothing stored', async () => {
    prep = { context: { promise: 'declined' } };
    const cmds = await fakeAsterisk(port, ENV, () => '200 result=0');
    expect(cmds).toEqual(['ANSWER', 'STREAM FILE cc-closed ""', 'HANGUP']);
    expect(stored).toEqual([]);
  });
});

describe('FastAGI offer against a scripted Asterisk', () => {
  let server: AgiServer;
  let port: number;
  const stored: OfferRequestInput[] = [];
  let result: OptInResult = { result: 'created', requestId: 'r1' };

  beforeAll(async () => {
    const driver = new OfferDriver({ optIn: ({ marks: _marks, ...i }) => (stored.push(i), result) }, OPTS, quiet());
    const offer = async (session: AgiSession) => {
      await driver.run(new AgiCallPort(session), offerArgsFromAgi(session), 'agi');
    };
    server = new AgiServer({ host: '127.0.0.1', port: 0, log: quiet(), handlers: { offer } });
    port = await server.listen();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    stored.length = 0;
    result = { result: 'created', requestId: 'r1' };
  });

  it('# during the prompt (result 35) stores once, confirms, hangs up', async () => {
    const cmds = await fakeAsterisk(port, ENV, (c) => (c.startsWith('STREAM FILE cc-offer') ? '200 result=35 endpos=800' : '200 result=0'));
    expect(cmds).toEqual(['ANSWER', 'STREAM FILE cc-offer "#0123456789*"', 'STREAM FILE cc-confirm ""', 'HANGUP']);
    expect(stored).toEqual([
      { agent: 'PJSIP/1001', agentCallerId: { name: 'Agent 1001', number: '1001' }, prospect: '2001', language: 'en', channelId: '1712345678.42' },
    ]);
  });

  it('# after the prompt (WAIT FOR DIGIT) stores', async () => {
    const cmds = await fakeAsterisk(port, ENV, (c) => (c.startsWith('WAIT FOR DIGIT') ? '200 result=35' : '200 result=0 endpos=100'));
    expect(cmds[2]).toMatch(/^WAIT FOR DIGIT \d+$/);
    expect(Number(cmds[2].split(' ')[3])).toBeLessThanOrEqual(300);
    expect(cmds.slice(3)).toEqual(['STREAM FILE cc-confirm ""', 'HANGUP']);
    expect(stored).toHaveLength(1);
  });

  it('no key: timeout → goodbye, nothing stored', async () => {
    const cmds = await fakeAsterisk(port, ENV, () => '200 result=0');
    expect(cmds.slice(2)).toEqual([expect.stringMatching(/^WAIT FOR DIGIT/), 'STREAM FILE cc-goodbye ""', 'HANGUP']);
    expect(stored).toHaveLength(0);
  });

  it('a full agent hears cc-full', async () => {
    result = { result: 'full', pending: 10 };
    const cmds = await fakeAsterisk(port, ENV, (c) => (c.startsWith('STREAM FILE cc-offer') ? '200 result=35' : '200 result=0'));
    expect(cmds).toContain('STREAM FILE cc-full ""');
  });

  it('a hang-up notice during the prompt ends the session without storing', async () => {
    const cmds = await fakeAsterisk(port, ENV, (c) => {
      if (c.startsWith('STREAM FILE cc-offer')) return ['HANGUP', '200 result=-1 endpos=400'];
      if (c === 'CHANNEL STATUS') return '511 Command Not Permitted on a dead channel or intercept routine';
      return '200 result=0';
    });
    expect(cmds).toEqual(['ANSWER', 'STREAM FILE cc-offer "#0123456789*"']);
    expect(stored).toHaveLength(0);
  });

  it('the connection closing mid-command ends the session', async () => {
    const cmds = await fakeAsterisk(port, ENV, (c) => (c.startsWith('STREAM FILE') ? null : '200 result=0'));
    expect(cmds).toHaveLength(2);
    expect(stored).toHaveLength(0);
  });

  it('a missing prompt file (-1, channel alive) counts as played', async () => {
    const cmds = await fakeAsterisk(port, ENV, (c) => {
      if (c.startsWith('STREAM FILE cc-offer')) return '200 result=-1 endpos=0';
      if (c === 'CHANNEL STATUS') return '200 result=6';
      if (c.startsWith('WAIT FOR DIGIT')) return '200 result=35';
      return '200 result=0';
    });
    expect(cmds).toContain('STREAM FILE cc-confirm ""');
    expect(stored).toHaveLength(1);
  });

  it('refuses a malformed prospect: no request, the call goes back to the dialplan', async () => {
    const cmds = await fakeAsterisk(port, { ...ENV, agi_arg_1: '123&PJSIP/evil' }, () => '200 result=1');
    expect(cmds).toEqual(['SET VARIABLE CC_OFFER_OUTCOME refused']);
    expect(stored).toHaveLength(0);
  });

  it('an unknown script is closed at once', async () => {
    const cmds = await fakeAsterisk(port, { ...ENV, agi_network_script: 'other', agi_request: 'agi://127.0.0.1/other' }, () => '200 result=0');
    expect(cmds).toEqual([]);
  });

  it('a syntax error (520 block) does not wedge the session', async () => {
    const cmds = await fakeAsterisk(port, ENV, (c) =>
      c === 'ANSWER' ? ['520-Invalid command syntax.  Proper usage follows:', 'Usage: ANSWER', '520 End of proper usage.'] : '200 result=0',
    );
    expect(cmds).toEqual(['ANSWER']);
    expect(stored).toHaveLength(0);
  });

  it('a German channel keeps its language; an unsupported one is switched to the default', async () => {
    await fakeAsterisk(port, { ...ENV, agi_language: 'de' }, (c) => (c.startsWith('STREAM FILE cc-offer') ? '200 result=35' : '200 result=0'));
    expect(stored[0].language).toBe('de');
    const cmds = await fakeAsterisk(port, { ...ENV, agi_language: 'fr' }, () => '200 result=0');
    expect(cmds[0]).toBe('SET VARIABLE CHANNEL(language) en');
  });
});
