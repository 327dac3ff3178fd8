/**
 * The operations wiring (src/app/operations.ts) against a real engine and a fake ARI connection: the off
 * switch, a port in use (logged, the service runs on), readiness following the connection, and the lamp
 * following the engine's decisions and re-synced on a (re)connection.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { AriConnection } from '../../src/telephony/ari/connection';
import { loadConfig } from '../../src/config/load';
import type { CallbackRequest } from '../../src/core/policy';
import type { Engine } from '../../src/engine';
import { createLogger } from '../../src/logging/log';
import { Operations } from '../../src/app/operations';
import { SqliteStore } from '../../src/store/sqlite';
import { engineWorld } from '../../testkit/engine';

class FakeAri extends EventEmitter {
  connected = false;
  standby = false;
  readonly lamps: Array<[string, string]> = [];
  readonly pbx = new Map<string, string>();
  /** The lean REST client's two device-state calls the lamp uses. */
  readonly rest = {
    setDeviceState: async (deviceName: string, deviceState: string) => {
      if (!this.connected) throw new Error('not connected');
      this.lamps.push([deviceName, deviceState]);
      this.pbx.set(deviceName, deviceState);
    },
    listDeviceStates: async () => [...this.pbx].map(([name, state]) => ({ name, state })),
  };
}

async function setup(set: Record<string, unknown>, leaseElsewhere?: () => boolean) {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.setEncoding('utf8').on('data', (c: string) => c.split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
  const log = createLogger({ format: 'json', stream, level: 'debug' });
  const config = loadConfig({ env: {}, overrides: { 'ari.password': 'x', 'http.port': 0, ...set } });
  const store = SqliteStore.open<CallbackRequest>(':memory:');
  const { engine } = await engineWorld({ store, log, policy: config.policy, clock: Date.now, prospectDevice: () => undefined, started: false, pbxUp: false });
  const ari = new FakeAri();
  const ops = new Operations({ config, log, engine, ari: ari as unknown as AriConnection, store, leaseElsewhere });
  started.push(ops);
  return { ops, ari, engine, lines, store };
}

const optIn = async (engine: Engine, agent: string) => {
  const r = await engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect: '+4930123', language: 'en', channelId: 'c' });
  if (r.result === 'full' || r.result === 'closed') throw new Error(r.result);
  return r.requestId;
};

const started: Operations[] = [];
afterEach(async () => {
  for (const o of started.splice(0)) await o.stop();
});

const flush = () => new Promise((r) => setTimeout(r, 20));

describe('Operations', () => {
  it('http.enabled=false: no listener at all', async () => {
    const { ops } = await setup({ 'http.enabled': false });
    expect(ops.http).toBeUndefined();
    expect(await ops.start()).toBeUndefined();
    await ops.stop();
  });

  it('a port in use is logged as http.listen_failed and start() carries on', async () => {
    const blocker = http.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as AddressInfo).port;
    const { ops, lines } = await setup({ 'http.port': port });
    expect(await ops.start()).toBeUndefined();
    expect(lines.find((l) => l.event === 'http.listen_failed')).toMatchObject({ level: 'warn', port, bind: '127.0.0.1' });
    await ops.stop();
    await new Promise((r) => blocker.close(r));
  });

  it('/readyz follows the ARI connection; the metrics see it too', async () => {
    const { ops, ari } = await setup({});
    const port = await ops.start();
    const base = `http://127.0.0.1:${port}`;
    let r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ standby: false, checks: { ari: { ok: false, detail: 'not connected to ARI' }, store: { ok: true } } });
    ari.connected = true;
    ari.emit('connected');
    r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(200);
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('considerate_callback_ari_connected 1');
    ari.connected = false;
    ari.standby = true;
    ari.emit('disconnected', 'lease lost');
    ari.emit('standby', 'other');
    r = await fetch(`${base}/readyz`);
    expect(await r.json()).toMatchObject({ ready: false, standby: true, checks: { lease: { ok: false, detail: 'held by another instance' } } });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toContain('considerate_callback_lease_lost_total 1');
    expect(text).toContain('considerate_callback_lease_standby 1');
    await ops.stop();
  });

  it('with PostgreSQL: /readyz says standby while the database lease is another instance\'s', async () => {
    let elsewhere = true;
    const { ops, ari } = await setup({}, () => elsewhere);
    const base = `http://127.0.0.1:${await ops.start()}`;
    let r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ ready: false, standby: true, checks: { ari: { ok: false, detail: 'standing by: another instance serves the app' }, store: { ok: true } } });
    // The lease came to us, ARI not connected yet: not ready, and not a stand-by either.
    elsewhere = false;
    r = await fetch(`${base}/readyz`);
    expect(await r.json()).toMatchObject({ ready: false, standby: false, checks: { ari: { ok: false, detail: 'not connected to ARI' } } });
    ari.connected = true;
    r = await fetch(`${base}/readyz`);
    expect(await r.json()).toMatchObject({ ready: true, standby: false });
    await ops.stop();
  });

  it('the lamp follows the decisions and is re-synced on a connection (a leftover lamp is switched off)', async () => {
    const { ops, ari, engine } = await setup({ 'http.enabled': false });
    ari.pbx.set('Stasis:cc-1009', 'INUSE'); // an agent whose callbacks ended while the service was down
    ari.connected = true;
    const id = await optIn(engine, 'PJSIP/1001');
    await flush();
    expect(ari.lamps).toEqual([['Stasis:cc-1001', 'INUSE']]);
    ari.emit('connected');
    await flush();
    expect(ari.lamps.slice(1).sort()).toEqual([['Stasis:cc-1001', 'INUSE'], ['Stasis:cc-1009', 'NOT_INUSE']]);
    await engine.cancel(id, 'test');
    await flush();
    expect(ari.lamps[ari.lamps.length - 1]).toEqual(['Stasis:cc-1001', 'NOT_INUSE']);
    await ops.stop();
  });

  it('lamp.enabled=false: no device state is ever set', async () => {
    const { ops, ari, engine } = await setup({ 'http.enabled': false, 'lamp.enabled': false });
    ari.connected = true;
    await optIn(engine, 'PJSIP/1001');
    ari.emit('connected');
    await flush();
    expect(ops.lamp).toBeUndefined();
    expect(ari.lamps).toEqual([]);
  });
});
