/**
 * The test kit's own pure parts: the sandbox's ports from the environment (the one place they are set),
 * the JSON-lines reader, and the silenced swagger notice.
 */
import { PassThrough } from 'node:stream';
import { onJsonLines } from '../../testkit/json-lines';
import { sandboxFrom } from '../../testkit/sandbox';

describe('sandboxFrom', () => {
  it('defaults to the demo PBX ports and <repo>/.sandbox', () => {
    const s = sandboxFrom({});
    expect(s.sipPort).toBe(5060);
    expect(s.httpPort).toBe(8088);
    expect(s.rtp).toEqual({ start: 10000, end: 12000 });
    expect(s.ari.url).toBe('http://127.0.0.1:8088');
    expect(s.sip).toBe('127.0.0.1:5060');
    expect(s.dir).toMatch(/\.sandbox$/);
    expect(s.lockDir).toBe(`${s.dir}/test.lock`);
    expect(s.testPhones).toEqual({ agentUac: { sip: 5071, media: 6071 }, prospectUas: { sip: 5072, media: 6072 }, agentUas: { sip: 5073, media: 6075 } });
  });

  it('follows the environment, and derives the phones from the SIP port', () => {
    const s = sandboxFrom({ CC_SANDBOX_DIR: '/tmp/sb2', CC_PBX_SIP_PORT: '5090', CC_PBX_HTTP_PORT: '8090', CC_PBX_RTP_START: '20000', CC_PBX_RTP_END: '20999' });
    expect(s).toMatchObject({ dir: '/tmp/sb2', sipPort: 5090, httpPort: 8090, rtp: { start: 20000, end: 20999 }, lockDir: '/tmp/sb2/test.lock' });
    expect(s.ari.url).toBe('http://127.0.0.1:8090');
    expect(s.testPhones.agentUac).toEqual({ sip: 5101, media: 6101 });
    expect(s.demoPhones.agentUas).toEqual({ sip: 5113, media: 6110 });
  });

  it("keeps one sandbox's phones apart, and two sandboxes 24 ports apart: no SIP or media port (+2) is used twice", () => {
    const ports = (s: ReturnType<typeof sandboxFrom>) => [s.sipPort, ...[s.testPhones, s.demoPhones].flatMap((p) => Object.values(p).flatMap((x) => [x.sip, x.media, x.media + 2]))];
    const one = ports(sandboxFrom({}));
    expect(new Set(one).size).toBe(one.length);
    for (const other of ['5084', '5090', '5160']) {
      const b = new Set(ports(sandboxFrom({ CC_PBX_SIP_PORT: other })));
      expect([other, one.filter((p) => b.has(p))]).toEqual([other, []]);
    }
  });

  it.each([['CC_PBX_SIP_PORT', 'abc'], ['CC_PBX_HTTP_PORT', '70000'], ['CC_PBX_RTP_START', '0'], ['CC_PBX_RTP_END', '1.5']])('refuses %s=%s naming the variable', (name, value) => {
    expect(() => sandboxFrom({ [name]: value })).toThrow(new RegExp(`${name} must be a port number.*"${value.replace('.', '\\.')}"`));
  });
});

describe('onJsonLines', () => {
  it('parses lines split across chunks, marks non-JSON as raw, and tees each line', async () => {
    const stream = new PassThrough();
    const got: Array<Record<string, unknown>> = [];
    const teed: string[] = [];
    onJsonLines(stream, (l) => got.push(l), (c) => teed.push(c));
    stream.write('{"level":"info","message":"a","event":"x"}\n{"level":"in');
    stream.write('fo","message":"b"}\r\nnot json\n');
    stream.end('{"message":"last"}');
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([
      { level: 'info', message: 'a', event: 'x' },
      { level: 'info', message: 'b' },
      { level: 'raw', message: 'not json' },
      { message: 'last' },
    ]);
    expect(teed).toHaveLength(4);
  });
});

describe('quiet-swagger', () => {
  it("silences swagger-client's global deprecation notice", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('../../src/telephony/ari/quiet-swagger');
    const spy = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      (globalThis as unknown as { log: (m: string) => void }).log('This API is using a deprecated version of Swagger!');
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
