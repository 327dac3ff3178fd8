/**
 * Records, once, what the real Asterisk 22 of the sandbox says to the service during one busy-signal offer with
 * `#`, so that the `ceiling` part's simulated PBX (bench/ari-sim.ts) answers and speaks as it does:
 *
 *   node .tools-dist/bench/ceiling-capture.js     # sandbox running (scripts/pbx.sh up), with your CC_* ports
 *
 * A recording proxy sits between the real service (the built dist, default SQLite store) and the sandbox's ARI:
 * every REST request the service makes and Asterisk's answer (the API description ari-client loads at start
 * included), and every message Asterisk sends on the service's /ari/events WebSocket (after the service's event
 * filter, as the service really receives them), with the time each passed. A bench ARI app (subscribeAll)
 * originates Local/2991@cc-test-agent as agent PJSIP/capture1 (the always-busy simulator: the ;2 half enters
 * Stasis(<app>,offer,…) through the dialplan's routine) and sends `#` on the ;1 half 1.5 s after the offer
 * answered, as SIPp's uac-busy-pound.xml does; the call ends when the service hangs up after the confirmation.
 *
 * Written to bench/fixtures/ari-offer-capture.json (committed): the simulator replays its API description, its
 * answers and, per call, its events in order and shape.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as ari from 'ari-client';
import '../src/telephony/ari/quiet-swagger';
import { SANDBOX } from '../testkit/sandbox';
import { ServiceProcess } from '../testkit/service-process';
import { ROOT, log, sleep, writeJson } from './common';
import { type CaptureFile, wavMs } from './ari-sim-events';
import { WebSocket, type WsSocket } from './ws';

export const CAPTURE_FILE = path.join(ROOT, 'bench', 'fixtures', 'ari-offer-capture.json');

type RecordedRest = CaptureFile['rest'][number];
type RecordedEvent = CaptureFile['events'][number];

/** A proxy that records REST exchanges and the events WebSocket (Asterisk → client). */
async function recorder(target: URL): Promise<{ url: string; rest: RecordedRest[]; events: RecordedEvent[]; t0: number; close(): Promise<void> }> {
  const rest: RecordedRest[] = [];
  const events: RecordedEvent[] = [];
  const t0 = Date.now();
  const sockets = new Set<WsSocket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const out = http.request(
        // The client's own Host header: Asterisk builds the API description's basePath from it, so ari-client loads
        // the resource descriptions through this proxy too (and they are recorded).
        { hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (ares) => {
          const back: Buffer[] = [];
          ares.on('data', (c: Buffer) => back.push(c));
          ares.on('end', () => {
            const text = Buffer.concat(back).toString('utf8');
            rest.push({
              t: Date.now() - t0,
              method: req.method ?? '',
              path: req.url ?? '',
              requestBody: body.length ? body.toString('utf8') : undefined,
              status: ares.statusCode ?? 0,
              body: text,
              contentType: ares.headers['content-type'],
            });
            const headers = { ...ares.headers };
            delete headers['content-length'];
            delete headers['transfer-encoding'];
            res.writeHead(ares.statusCode ?? 502, headers);
            res.end(text);
          });
        },
      );
      out.on('error', (err) => {
        res.writeHead(502);
        res.end(err.message);
      });
      out.end(body);
    });
  });
  const wss = new WebSocket.Server({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    // The client's socket is accepted only once Asterisk's is open (the app registered): the client sees the
    // connection when Asterisk has it, as without the proxy.
    const upstream = new WebSocket(`ws://${target.host}${req.url}`);
    upstream.on('error', () => socket.destroy());
    upstream.on('open', () => wss.handleUpgrade(req, socket, head, (client) => {
      sockets.add(client).add(upstream);
      upstream.on('message', (data) => {
        const text = data.toString();
        try {
          events.push({ t: Date.now() - t0, event: JSON.parse(text) as Record<string, unknown> });
        } catch {
          // not JSON: passed on as it is
        }
        if (client.readyState === WebSocket.OPEN) client.send(text);
      });
      upstream.on('close', () => client.close());
      upstream.on('error', () => client.terminate());
      client.on('close', () => upstream.close());
      client.on('error', () => upstream.terminate());
    }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    rest,
    events,
    t0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Ev {
  type: string;
  channel?: { id: string };
  playback?: { target_uri?: string };
}

async function main(): Promise<void> {
  const rec = await recorder(new URL(SANDBOX.ari.url));
  const app = `cc-capture-${process.pid}`;
  const svc = new ServiceProcess(
    { ari: { url: rec.url, app }, log: { level: 'info' }, policy: { firstProbeDelay: '1h' } },
    { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'cc-capture-')) },
  );
  const bench = await ari.connect(SANDBOX.ari.url, SANDBOX.ari.username, SANDBOX.ari.password);
  const seen: Ev[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (bench as any).on('*', (e: Ev) => seen.push(e));
  const benchApp = `cc-capture-bench-${process.pid}`;
  await bench.start(benchApp, true);
  let keySentAt = 0;
  const agentSide = `capture-${process.pid}-a`;
  const offerSide = `capture-${process.pid}-o`;
  const agentDevice = 'PJSIP/capture1';
  const info = (await (await fetch(`${SANDBOX.ari.url}/ari/asterisk/info`, { headers: { authorization: `Basic ${Buffer.from(`${SANDBOX.ari.username}:${SANDBOX.ari.password}`).toString('base64')}` } })).json()) as {
    system?: { version?: string };
  };
  try {
    await svc.start();
    await sleep(1500); // the start-up requests (event filter, lease, reconciliation, subscriptions) settle
    log(`capture: one offer with # through the recording proxy (service app ${app})…`);
    await bench.channels.originate({
      endpoint: 'Local/2991@cc-test-agent',
      app: benchApp,
      appArgs: 'agent',
      channelId: agentSide,
      otherChannelId: offerSide,
      callerId: '"Capture" <1001>',
      timeout: 30,
      variables: { CC_TEST_AGENT: agentDevice, CC_TEST_LANGUAGE: 'en', CC_APP: app },
    } as Parameters<typeof bench.channels.originate>[0]);
    const until = async (pred: () => boolean, ms: number, what: string) => {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`capture: no ${what} within ${ms} ms`);
        await sleep(10);
      }
    };
    // the offer answered: the ;1 half enters the bench app (SIPp's 200 OK); # 1.5 s later, as uac-busy-pound.xml
    await until(() => seen.some((e) => e.type === 'StasisStart' && e.channel?.id === agentSide), 10000, 'StasisStart of the agent half');
    await sleep(1500);
    keySentAt = Date.now() - rec.t0;
    await bench.channels.sendDTMF({ channelId: agentSide, dtmf: '#', duration: 100 } as Parameters<typeof bench.channels.sendDTMF>[0]);
    await until(() => seen.some((e) => e.type === 'ChannelDestroyed' && e.channel?.id === offerSide), 20000, 'ChannelDestroyed of the offer half');
    await svc.waitLog((l) => l.event === 'offer.ended', 5000);
    await sleep(1000);
  } finally {
    await svc.stop();
    bench.stop();
    await rec.close();
    fs.rmSync(svc.dir, { recursive: true, force: true });
  }
  const opted = svc.logs.find((l) => l.event === 'offer.opted_in');
  if (!opted) throw new Error(`capture: the service did not store the opt-in\n${svc.tail(20)}`);
  const capture: CaptureFile = {
    recordedAt: new Date().toISOString(),
    asterisk: info.system?.version ?? 'unknown',
    app,
    offerChannel: offerSide,
    agentDevice,
    rest: rec.rest,
    events: rec.events,
    keySentAt,
    mediaMs: promptLengths(),
  };
  writeJson(CAPTURE_FILE, capture);
  log(
    `capture: ${rec.rest.length} REST exchanges, ${rec.events.length} events (${[...new Set(rec.events.map((e) => String(e.event.type)))].join(', ')}) written to ${path.relative(ROOT, CAPTURE_FILE)}`,
  );
}

/** The length of every prompt of the app (`sound:cc-…`) in the sandbox's English sounds, from the WAV files. */
function promptLengths(): Record<string, number> {
  const dir = path.join(SANDBOX.dir, 'rootfs', 'usr', 'share', 'asterisk', 'sounds', 'en_US_f_Allison');
  const out: Record<string, number> = {};
  for (const f of fs.readdirSync(dir).filter((n) => /^cc-.*\.wav$/.test(n)).sort()) {
    const ms = wavMs(fs.readFileSync(path.join(dir, f)));
    if (ms !== undefined) out[`sound:${f.replace(/\.wav$/, '')}`] = ms;
  }
  return out;
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
