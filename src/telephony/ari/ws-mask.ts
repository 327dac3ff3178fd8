/**
 * The masks of the frames the ARI client sends, from a pool of random bytes (what ws ≥ 8 does) instead of
 * ws 6's `crypto.randomBytes(4)` per frame.
 *
 * ari-client 2.2 pins ws ^6, whose `Sender.frame` asks the crypto binding for four bytes for every frame a client
 * sends: under the sustained load (every ARI request goes out as a frame on the app's socket, ws-rest.ts) that was
 * 3 % of the service's CPU per offered call (issue 23). The masks are the same CSPRNG's bytes, each used once
 * (RFC 6455 § 5.3 asks for a fresh unpredictable mask per frame; § 10.3 says why); the frame is byte for byte what
 * ws 6 builds. Installed once, for ws 6 only (a later ws keeps its own pool and is left alone).
 */
import { createRequire } from 'node:module';
import { pooledRandomBytes } from '../../ids';

interface FrameOptions {
  opcode: number;
  readOnly?: boolean;
  fin?: boolean;
  mask?: boolean;
  rsv1?: boolean;
}
type Frame = (data: Buffer, options: FrameOptions) => Buffer[];
type Masker = (source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number) => void;

/** Four fresh random bytes (from the process's pool, src/ids.ts; handed out once, never changed by a refill). */
export function nextMask(): Buffer {
  return pooledRandomBytes(4);
}

/**
 * ws 6's frame, with the mask from {@link nextMask} (lib/sender.js of ws 6.2), and a masked frame always in one
 * buffer: ws 6 merges only a read-only payload and hands a string's (every ARI request) back as header and payload,
 * which its `sendFrame` writes corked, two writes and an uncork: the socket's writev path, its arrays, callbacks and
 * a tick, 7 KiB per offered call of the 266 KiB the service allocated (bench/cpu-call.ts --gc, issue 23). The bytes
 * on the wire are the same.
 */
export function pooledFrame(applyMask: Masker): Frame {
  return (data, options) => {
    const merge = options.mask;
    let offset = options.mask ? 6 : 2;
    let payloadLength = data.length;
    if (data.length >= 65536) {
      offset += 8;
      payloadLength = 127;
    } else if (data.length > 125) {
      offset += 2;
      payloadLength = 126;
    }
    const target = Buffer.allocUnsafe(merge ? data.length + offset : offset);
    target[0] = options.fin ? options.opcode | 0x80 : options.opcode;
    if (options.rsv1) target[0] |= 0x40;
    target[1] = payloadLength;
    if (payloadLength === 126) {
      target.writeUInt16BE(data.length, 2);
    } else if (payloadLength === 127) {
      target.writeUInt32BE(0, 2);
      target.writeUInt32BE(data.length, 6);
    }
    if (!options.mask) return [target, data];
    const mask = nextMask();
    target[1] |= 0x80;
    target[offset - 4] = mask[0];
    target[offset - 3] = mask[1];
    target[offset - 2] = mask[2];
    target[offset - 1] = mask[3];
    if (merge) {
      applyMask(data, mask, target, offset, data.length);
      return [target];
    }
    applyMask(data, mask, data, 0, data.length);
    return [target, data];
  };
}

let installed: boolean | undefined;

/** Puts {@link pooledFrame} in ws 6's Sender (once); false when the ws found is not 6.x (left as it is). */
export function installPooledMasks(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  try {
    // ari-client's own ws, resolved from where ari-client is.
    const fromAriClient = createRequire(require.resolve('ari-client'));
    const version = (fromAriClient('ws/package.json') as { version?: string }).version ?? '';
    if (!version.startsWith('6.')) return installed;
    const Sender = fromAriClient('ws/lib/sender') as { frame: Frame };
    const { mask } = fromAriClient('ws/lib/buffer-util') as { mask: Masker };
    if (typeof Sender.frame !== 'function' || typeof mask !== 'function') return installed;
    Sender.frame = pooledFrame(mask);
    installed = true;
  } catch {
    // not the layout of ws 6: leave ws as it is
  }
  return installed;
}
