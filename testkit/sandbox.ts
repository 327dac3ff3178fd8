/**
 * The Asterisk sandbox as tests, the demo and the bench see it: where it lives, its ports, its public
 * demo credentials and the SIPp phones' ports. The one place these are set is the environment, read
 * here and by scripts/pbx.sh with the same defaults:
 *
 *   CC_SANDBOX_DIR     chroot, pid file, log and the test lock (default <repo>/.sandbox)
 *   CC_PBX_SIP_PORT    PJSIP UDP port (default 5060)
 *   CC_PBX_HTTP_PORT   HTTP/ARI port (default 8088)
 *   CC_PBX_RTP_START   first RTP port (default 10000)
 *   CC_PBX_RTP_END     last RTP port (default 12000)
 *
 * Two sandboxes run side by side when each has its own directory and ports. The SIPp phones' ports are
 * derived from the SIP port, so the phones of two sandboxes do not collide either: tests use
 * SIP port + 11..13, the demo SIP port + 21..23; media ports SIP port + 1000 + (11..22), each phone's
 * pair (SIPp binds its media port and media port + 2) disjoint from the others'. Sandboxes whose SIP
 * ports are 24 or more apart share no port.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The repository: the nearest folder up from here with our package.json (also from a compiled copy in .tools-dist/). */
function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'considerate-callback') return dir;
    } catch {
      // no package.json here
    }
    if (path.dirname(dir) === dir) throw new Error(`testkit: no considerate-callback package.json above ${from}`);
  }
}

export const ROOT = findRoot(__dirname);

function port(name: string, fallback: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port number (1-65535), got "${raw}"`);
  return n;
}

export interface PhonePorts {
  agentUac: { sip: number; media: number };
  prospectUas: { sip: number; media: number };
  agentUas: { sip: number; media: number };
}

export interface Sandbox {
  dir: string;
  sipPort: number;
  httpPort: number;
  rtp: { start: number; end: number };
  /** `127.0.0.1:<sip port>`: where SIPp phones send their requests. */
  sip: string;
  /** The demo PBX's ARI (asterisk-conf/ari.conf; public demo credentials). */
  ari: { url: string; username: string; password: string };
  /** The integration tests' lock: one user of a sandbox at a time. */
  lockDir: string;
  statusFile: string;
  /** SIPp phones of the integration tests. SIPp binds the media port and media port + 2. */
  testPhones: PhonePorts;
  /** SIPp phones of `npm run demo`: not the tests' (a BYE Asterisk still retransmits to a test phone must not reach them). */
  demoPhones: PhonePorts;
}

export function sandboxFrom(env: NodeJS.ProcessEnv = process.env): Sandbox {
  const dir = env.CC_SANDBOX_DIR ? path.resolve(env.CC_SANDBOX_DIR) : path.join(ROOT, '.sandbox');
  const sipPort = port('CC_PBX_SIP_PORT', 5060, env);
  const httpPort = port('CC_PBX_HTTP_PORT', 8088, env);
  const rtp = { start: port('CC_PBX_RTP_START', 10000, env), end: port('CC_PBX_RTP_END', 12000, env) };
  const media = sipPort + 1000;
  return {
    dir,
    sipPort,
    httpPort,
    rtp,
    sip: `127.0.0.1:${sipPort}`,
    ari: { url: `http://127.0.0.1:${httpPort}`, username: 'considerate', password: 'demo-ari-secret' },
    lockDir: path.join(dir, 'test.lock'),
    statusFile: path.join(dir, 'pbx-status.json'),
    testPhones: {
      agentUac: { sip: sipPort + 11, media: media + 11 },
      prospectUas: { sip: sipPort + 12, media: media + 12 },
      agentUas: { sip: sipPort + 13, media: media + 15 },
    },
    demoPhones: {
      agentUac: { sip: sipPort + 21, media: media + 16 },
      prospectUas: { sip: sipPort + 22, media: media + 19 },
      agentUas: { sip: sipPort + 23, media: media + 20 },
    },
  };
}

/** This process's sandbox (from its environment). */
export const SANDBOX = sandboxFrom();

/** The demo accounts of asterisk-conf/pjsip.conf (public; never reuse them on a real PBX). */
export const ACCOUNTS = {
  agent: { user: '1001', password: 'agent1001' },
  prospect: { user: '2001', password: 'prospect2001' },
} as const;

export const SCENARIOS = path.join(ROOT, 'testkit/scenarios');
export const PBX_SCRIPT = path.join(ROOT, 'scripts/pbx.sh');
/** The built CLI (`npm run build`). */
export const CLI = path.join(ROOT, 'dist/cli/main.js');
