/**
 * The ARI client's frames masked from a pool of random bytes (src/telephony/ari/ws-mask.ts) instead of ws 6's
 * randomBytes(4) per frame: the frames are still valid (a ws server reads every message back, across the pool's
 * refills and all three length encodings), each frame gets fresh mask bytes, and the header is ws 6's own.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { installPooledMasks, nextMask, pooledFrame } from '../../src/telephony/ari/ws-mask';

const wsLib = (p: string) => createRequire(require.resolve('ari-client'))(p) as Record<string, unknown>;
interface Sock { on(e: string, f: (x: unknown) => void): void; once(e: string, f: () => void): void; send(d: string): void; close(): void }
interface Server extends Sock { address(): AddressInfo | string; close(cb?: () => void): void }
const WebSocket = wsLib('ws') as unknown as { new (url: string): Sock; Server: new (o: object) => Server };
const originalFrame = (wsLib('ws/lib/sender') as { frame: (d: Buffer, o: object) => Buffer[] }).frame;
const mask = wsLib('ws/lib/buffer-util').mask as (s: Buffer, m: Buffer, o: Buffer, off: number, len: number) => void;

function unmasked(frame: Buffer[]): { header: Buffer; key: Buffer; payload: Buffer } {
  const all = Buffer.concat(frame);
  const len7 = all[1] & 0x7f;
  const offset = len7 === 126 ? 8 : len7 === 127 ? 14 : 6;
  const key = all.subarray(offset - 4, offset);
  const payload = Buffer.from(all.subarray(offset));
  for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return { header: all.subarray(0, offset - 4), key, payload };
}

describe('pooled WebSocket masks', () => {
  it('are installed into ari-client’s ws 6 (and only once)', () => {
    expect((wsLib('ws/package.json') as { version: string }).version).toMatch(/^6\./);
    expect(installPooledMasks()).toBe(true);
    expect(installPooledMasks()).toBe(true);
    expect((wsLib('ws/lib/sender') as { frame: unknown }).frame).not.toBe(originalFrame);
  });

  it('build ws 6’s header, and the payload unmasks to the data, for every length encoding and both copy modes', () => {
    const frame = pooledFrame(mask);
    for (const size of [0, 1, 125, 126, 65535, 65536, 70000]) {
      for (const readOnly of [true, false]) {
        const data = Buffer.alloc(size, 'x');
        data.write(`size ${size}`.slice(0, size));
        const theirs = unmasked(originalFrame(Buffer.from(data), { opcode: 1, fin: true, mask: true, readOnly }));
        const built = frame(Buffer.from(data), { opcode: 1, fin: true, mask: true, readOnly });
        // one buffer, so ws 6's sendFrame writes it in one write (not corked header and payload)
        expect(built).toHaveLength(1);
        const ours = unmasked(built);
        expect(ours.header).toEqual(theirs.header);
        expect(ours.payload.equals(data)).toBe(true);
      }
    }
    // unmasked frames (a server's) are passed through as ws 6 does
    const plain = frame(Buffer.from('abc'), { opcode: 1, fin: true, mask: false });
    expect(Buffer.concat(plain)).toEqual(Buffer.concat(originalFrame(Buffer.from('abc'), { opcode: 1, fin: true, mask: false })));
  });

  it('gives every frame fresh random bytes, across the pool’s refills', () => {
    const seen = new Set<number>();
    const n = 10_000; // about five refills of the pool
    for (let i = 0; i < n; i++) seen.add(nextMask().readUInt32BE(0));
    // 32 random bits each: a repeat among 10 000 is rare (p ≈ 1 %); a reused pool or a constant would repeat thousands
    expect(seen.size).toBeGreaterThanOrEqual(n - 2);
  });

  it('a mask handed out is not overwritten by the next refill', () => {
    const first = nextMask();
    const copy = Buffer.from(first);
    for (let i = 0; i < 5000; i++) nextMask();
    expect(first).toEqual(copy);
  });

  it('carry a client’s messages to a ws server intact (small, medium and large, over several refills)', async () => {
    installPooledMasks();
    const server = new WebSocket.Server({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', r));
    const got: string[] = [];
    const sent: string[] = [];
    const done = new Promise<void>((resolve) => {
      server.on('connection', (s) => (s as Sock).on('message', (m) => {
        got.push(String(m));
        if (got.length === 3000) resolve();
      }));
    });
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await new Promise<void>((r) => client.once('open', r));
    for (let i = 0; i < 3000; i++) {
      const body = i % 500 === 0 ? 'y'.repeat(70_000 + i) : i % 7 === 0 ? `{"n":${i},"pad":"${'z'.repeat(200)}"}` : `{"n":${i}}`;
      sent.push(body);
      client.send(body);
    }
    await done;
    client.close();
    await new Promise<void>((r) => server.close(r));
    expect(got).toEqual(sent);
  });
});
