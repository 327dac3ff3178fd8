/**
 * ARI REST over the app's WebSocket against the real Asterisk 22 of the sandbox (src/telephony/ari/ws-rest.ts):
 * the connection probes the socket, then the requests without a body go over it — answers, Asterisk's errors and
 * events on the same socket, many requests at once each with its own answer (sent in one turn: one socket write) — and the attack: a socket on which
 * Asterisk stops answering (22.10 leaves a `PUT eventFilter` with a `message_body` unanswered, and every request
 * after it on that socket) gives a clear timeout error, never a hang, and the requests after it go over HTTP.
 * The calls' flows over the WebSocket: offer.test.ts, recall.test.ts and the others run the service, which uses it.
 */
import { PassThrough } from 'node:stream';
import { AriConnection } from '../../src/telephony/ari/connection';
import { AriRestError } from '../../src/telephony/ari/rest';
import { createLogger } from '../../src/logging/log';
import { ARI, describePbx, waitFor } from './harness';

function connection(app: string, extra: Partial<ConstructorParameters<typeof AriConnection>[0]> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
  const conn = new AriConnection({
    url: ARI.url,
    username: ARI.username,
    password: ARI.password,
    app,
    log: createLogger({ format: 'json', stream, level: 'debug' }),
    reconnectMaxMs: 500,
    ...extra,
  });
  return { conn, lines };
}

/** A device state read over plain HTTP, beside the connection. */
async function httpState(device: string): Promise<string> {
  const r = await fetch(`${ARI.url}/ari/deviceStates/${encodeURIComponent(device)}`, {
    headers: { authorization: `Basic ${Buffer.from(`${ARI.username}:${ARI.password}`).toString('base64')}` },
  });
  return ((await r.json()) as { state: string }).state;
}

describePbx('ARI REST over the WebSocket (real Asterisk 22)', () => {
  it('sends the requests without a body on the socket: answers, Asterisk errors, events beside them, 60 at once', async () => {
    const app = `cc-restws-${process.pid}`;
    const device = `Stasis:cc-restws-${process.pid}`;
    const { conn, lines } = connection(app, { batchRequests: true });
    const changes: string[] = [];
    conn.onAri('DeviceStateChanged', (e: { device_state: { name: string; state: string } }) => {
      if (e.device_state.name === device) changes.push(e.device_state.state);
    });
    try {
      conn.start();
      await conn.waitConnected(20000);
      await waitFor('the WebSocket transport', () => lines.some((l) => l.event === 'ari.rest_transport'), 10000);
      expect(lines.find((l) => l.event === 'ari.rest_transport')).toMatchObject({ transport: 'websocket' });
      expect(conn.rest.ws.ready).toBe(true);
      const onSocket = jest.spyOn(conn.rest.ws, 'request');

      await conn.rest.setDeviceState(device, 'INUSE');
      expect(await httpState(device)).toBe('INUSE');
      await conn.rest.subscribe(app, `deviceState:${device}`);
      await conn.rest.setDeviceState(device, 'NOT_INUSE');
      expect(await conn.rest.deviceState(device)).toBe('NOT_INUSE');
      await waitFor('the change event on the same socket', () => changes.includes('NOT_INUSE'), 10000);

      const err = (await conn.rest.hangup(`no-such-channel-${process.pid}`).catch((e: unknown) => e)) as AriRestError;
      expect(err).toBeInstanceOf(AriRestError);
      expect(err.status).toBe(404);
      expect(err.message).toBe(`DELETE /channels/no-such-channel-${process.pid}: 404 Channel not found`);

      // Many requests in flight at once: each answer finds its own request.
      const states = ['INUSE', 'NOT_INUSE', 'RINGING', 'ONHOLD', 'BUSY'];
      const devices = Array.from({ length: 30 }, (_, i) => `${device}-${i}`);
      const before = { ...conn.rest.ws.counts };
      await Promise.all(devices.map((d, i) => conn.rest.setDeviceState(d, states[i % states.length])));
      // sent in one turn of the event loop: one socket write for the 30 (ari.batchRequests), each answered by Asterisk
      expect(conn.rest.ws.counts).toEqual({ frames: before.frames + 30, writes: before.writes + 1 });
      const read = await Promise.all(devices.map((d) => conn.rest.deviceState(d)));
      expect(read).toEqual(devices.map((_, i) => states[i % states.length]));
      expect(await httpState(devices[7])).toBe(states[7 % states.length]);

      // every one of them went over the socket, none is left waiting
      expect(onSocket).toHaveBeenCalledTimes(5 + 60);
      expect(conn.rest.ws.inFlight).toBe(0);
      expect(lines.filter((l) => l.event === 'ari.stray_answer')).toEqual([]);
    } finally {
      await conn.stop();
    }
  }, 60000);

  it('attack: Asterisk stops answering on the socket → the request fails after its limit with a clear error, the next ones go over HTTP', async () => {
    const app = `cc-restws-stall-${process.pid}`;
    const device = `Stasis:cc-restws-stall-${process.pid}`;
    const { conn, lines } = connection(app, { restTimeoutMs: 1500 });
    try {
      conn.start();
      await conn.waitConnected(20000);
      await waitFor('the WebSocket transport', () => lines.some((l) => l.event === 'ari.rest_transport'), 10000);
      expect(conn.rest.ws.ready).toBe(true);
      await conn.rest.setDeviceState(device, 'INUSE');
      // What Asterisk 22.10 does not answer, sent on the socket as another client could: from here on it answers no request there.
      const ws = (conn.client as unknown as { _ws: { send(d: string): void } })._ws;
      ws.send(JSON.stringify({ type: 'RESTRequest', request_id: 'wedge', method: 'PUT', uri: `applications/${app}/eventFilter`, content_type: 'application/json', message_body: '{"allowed":[{"type":"StasisStart"}]}' }));
      const err = (await conn.rest.deviceState(device).catch((e: unknown) => e)) as AriRestError;
      expect(err).toBeInstanceOf(AriRestError);
      expect(err.status).toBe(0);
      expect(err.message).toBe(`GET /deviceStates/${encodeURIComponent(device)}: no answer within 1500 ms on the ARI WebSocket`);
      expect(lines.find((l) => l.event === 'ari.rest_transport' && l.level === 'warn')).toMatchObject({ transport: 'http' });
      expect(conn.rest.ws.ready).toBe(false);
      // The next requests go over HTTP and are answered.
      await conn.rest.setDeviceState(device, 'NOT_INUSE');
      expect(await conn.rest.deviceState(device)).toBe('NOT_INUSE');
      expect(conn.connected).toBe(true);
    } finally {
      await conn.stop();
    }
  }, 60000);

  it('ari.restOverWebSocket false: everything over HTTP', async () => {
    const app = `cc-restws-off-${process.pid}`;
    const { conn, lines } = connection(app, { restOverWebSocket: false });
    try {
      conn.start();
      await conn.waitConnected(20000);
      await conn.rest.setDeviceState(`Stasis:${app}`, 'INUSE');
      expect(await conn.rest.deviceState(`Stasis:${app}`)).toBe('INUSE');
      expect(conn.rest.ws.ready).toBe(false);
      expect(lines.filter((l) => l.event === 'ari.rest_transport')).toEqual([]);
    } finally {
      await conn.stop();
    }
  }, 60000);
});
