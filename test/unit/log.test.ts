import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logging/log';

function capture(format: 'json' | 'pretty', secrets: string[]) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ format, secrets, stream, level: 'debug' });
  return { log, text: () => chunks.join('') };
}

describe('logging', () => {
  it('writes JSON lines with the call fields', async () => {
    const { log, text } = capture('json', []);
    log.child({ requestId: 'r1', channelId: 'c1' }).info('callback requested', { prospect: '2001' });
    await new Promise((r) => setImmediate(r));
    const line = JSON.parse(text().trim());
    expect(line).toMatchObject({ level: 'info', message: 'callback requested', requestId: 'r1', channelId: 'c1', prospect: '2001' });
    expect(typeof line.timestamp).toBe('string');
  });

  it.each(['json', 'pretty'] as const)('never writes a secret (%s), wherever it hides', async (format) => {
    const secret = 'p@ss:w/rd+%';
    const { log, text } = capture(format, [secret]);
    log.warn(`connect failed for http://considerate:${secret}@127.0.0.1:8088`, {
      url: `ws://127.0.0.1:8088/ari/events?api_key=considerate:${encodeURIComponent(secret)}`,
      nested: { deeper: [`x${secret}y`] },
      password: 'another-one',
      error: new Error(`bad ${secret}`),
    });
    await new Promise((r) => setImmediate(r));
    const out = text();
    expect(out).toContain('********');
    expect(out).not.toContain(secret);
    expect(out).not.toContain('another-one');
    expect(out).toContain('connect failed');
  });
});
