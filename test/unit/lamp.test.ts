/**
 * The agent's lamp: the pure rule (states → NOT_INUSE / INUSE / RINGING), the device name, and the
 * adapter against a fake PBX port: only changes are sent, a resync after a connection sends everything
 * and clears leftover cc- lamps, a failed update is retried, nothing is sent while disconnected.
 */
import { PassThrough } from 'node:stream';
import type { CallbackState } from '../../src/core/policy';
import { Lamp, lampDevice, lampState, type LampPort, type LampState } from '../../src/flows/lamp';
import { createLogger } from '../../src/logging/log';

describe('lampState', () => {
  it.each<[CallbackState[], LampState]>([
    [[], 'NOT_INUSE'],
    [['COMPLETED', 'CANCELLED', 'EXPIRED', 'FAILED'], 'NOT_INUSE'],
    [['WAITING'], 'INUSE'],
    [['GRACE'], 'INUSE'],
    [['CONNECTING'], 'INUSE'],
    [['WAITING', 'DUE'], 'RINGING'],
    [['RINGING_AGENT'], 'RINGING'],
    [['GRACE', 'RINGING_AGENT', 'COMPLETED'], 'RINGING'],
  ])('%j → %s', (states, lamp) => expect(lampState(states)).toBe(lamp));
});

describe('lampDevice', () => {
  it.each([
    ['PJSIP/1001', 'Stasis:cc-1001'],
    ['SIP/agent-7', 'Stasis:cc-agent-7'],
    ['Local/1001@from-internal', 'Stasis:cc-1001'],
    ['PJSIP/a b&c', 'Stasis:cc-a_b_c'],
    ['1001', 'Stasis:cc-1001'],
  ])('%s → %s', (agent, device) => expect(lampDevice(agent)).toBe(device));
});

function fake() {
  const sent: Array<[string, LampState]> = [];
  const pbx = new Map<string, string>();
  let failNext = 0;
  const port: LampPort = {
    set: async (device, state) => {
      if (failNext > 0) {
        failNext--;
        throw new Error('HTTP 500');
      }
      sent.push([device, state]);
      pbx.set(device, state);
    },
    list: async () => [...pbx].map(([name, state]) => ({ name, state })),
  };
  return { port, sent, pbx, fail: (n: number) => (failNext = n) };
}

function setup(states: Record<string, CallbackState[]>, connected = { up: true }) {
  const f = fake();
  const lamp = new Lamp({
    port: () => (connected.up ? f.port : undefined),
    statesOf: (agent) => states[agent] ?? [],
    agents: () => Object.keys(states).filter((a) => (states[a] ?? []).length > 0),
    log: createLogger({ format: 'json', stream: new PassThrough() }),
  });
  return { lamp, ...f };
}

describe('Lamp', () => {
  it('sends a state only when it changes', async () => {
    const states: Record<string, CallbackState[]> = { 'PJSIP/1001': ['WAITING'] };
    const { lamp, sent } = setup(states);
    await lamp.update('PJSIP/1001');
    await lamp.update('PJSIP/1001');
    states['PJSIP/1001'] = ['DUE'];
    await lamp.update('PJSIP/1001');
    states['PJSIP/1001'] = ['RINGING_AGENT'];
    await lamp.update('PJSIP/1001');
    states['PJSIP/1001'] = [];
    await lamp.update('PJSIP/1001');
    expect(sent).toEqual([
      ['Stasis:cc-1001', 'INUSE'],
      ['Stasis:cc-1001', 'RINGING'],
      ['Stasis:cc-1001', 'NOT_INUSE'],
    ]);
  });

  it('updates of one agent are applied in order even when fired together', async () => {
    const states: Record<string, CallbackState[]> = { 'PJSIP/1001': ['WAITING'] };
    const { lamp, sent } = setup(states);
    const a = lamp.update('PJSIP/1001');
    states['PJSIP/1001'] = ['DUE'];
    const b = lamp.update('PJSIP/1001');
    await Promise.all([a, b]);
    expect(sent.map((s) => s[1])).toEqual(['RINGING']);
  });

  it('a resync sends every state again and switches off leftover cc- lamps of agents with nothing pending', async () => {
    const states: Record<string, CallbackState[]> = { 'PJSIP/1001': ['GRACE'] };
    const { lamp, sent, pbx } = setup(states);
    pbx.set('Stasis:cc-1002', 'INUSE'); // from an earlier run; 1002's request was cancelled meanwhile
    pbx.set('Stasis:cc-1003', 'NOT_INUSE');
    pbx.set('Stasis:other', 'INUSE'); // not ours
    await lamp.update('PJSIP/1001');
    await lamp.refresh(true);
    expect(sent).toEqual([
      ['Stasis:cc-1001', 'INUSE'],
      ['Stasis:cc-1001', 'INUSE'],
      ['Stasis:cc-1002', 'NOT_INUSE'],
    ]);
    expect(pbx.get('Stasis:other')).toBe('INUSE');
  });

  it('a failed update is retried at the next refresh; nothing is sent while disconnected', async () => {
    const states: Record<string, CallbackState[]> = { 'PJSIP/1001': ['WAITING'] };
    const connected = { up: false };
    const { lamp, sent, fail } = setup(states, connected);
    await lamp.update('PJSIP/1001');
    expect(sent).toEqual([]);
    connected.up = true;
    fail(1);
    await lamp.update('PJSIP/1001');
    expect(sent).toEqual([]);
    await lamp.refresh(false);
    expect(sent).toEqual([['Stasis:cc-1001', 'INUSE']]);
    // an agent whose last request ended is still refreshed (its lamp goes off)
    states['PJSIP/1001'] = [];
    await lamp.refresh(false);
    expect(sent).toEqual([['Stasis:cc-1001', 'INUSE'], ['Stasis:cc-1001', 'NOT_INUSE']]);
  });
});
