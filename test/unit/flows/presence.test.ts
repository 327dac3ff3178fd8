import { Presence, lineState } from '../../../src/flows/presence';
import { FakeDeviceStates, capturedLog, settle } from '../fake-port';

function setup() {
  const devices = new FakeDeviceStates();
  const seen: [string, { busy: boolean } | undefined, string][] = [];
  const { log, lines } = capturedLog();
  const presence = new Presence(devices, log, (device, state, raw) => seen.push([device, state, raw]));
  return { devices, presence, seen, lines };
}

describe('presence over fake device states', () => {
  it('maps Asterisk states: NOT_INUSE free; in use, ringing, on hold, unavailable busy; unknown says nothing', () => {
    expect(lineState('NOT_INUSE')).toEqual({ busy: false });
    for (const s of ['INUSE', 'BUSY', 'RINGING', 'RINGINUSE', 'ONHOLD', 'UNAVAILABLE']) expect(lineState(s)).toEqual({ busy: true });
    expect(lineState('UNKNOWN')).toBeUndefined();
    expect(lineState('INVALID')).toBeUndefined();
  });

  it('a watched device is subscribed and read once; changes are reported once each; unwatched devices are ignored', async () => {
    const { devices, presence, seen, lines } = setup();
    devices.states.set('PJSIP/2001', 'INUSE');
    presence.watch('PJSIP/2001');
    presence.watch('PJSIP/2001');
    await settle();
    expect(devices.subscribed).toEqual(['PJSIP/2001']);
    expect(seen).toEqual([['PJSIP/2001', { busy: true }, 'INUSE']]);
    devices.change('PJSIP/2001', 'INUSE');
    devices.change('PJSIP/2999', 'NOT_INUSE');
    devices.change('PJSIP/2001', 'NOT_INUSE');
    expect(seen.slice(1)).toEqual([['PJSIP/2001', { busy: false }, 'NOT_INUSE']]);
    expect(lines.filter((l) => l.event === 'presence.device_state').map((l) => l.state)).toEqual(['INUSE', 'NOT_INUSE']);
  });

  it('while disconnected nothing is asked; refresh() subscribes every watched device again and reads its state', async () => {
    const { devices, presence, seen } = setup();
    devices.connected = false;
    presence.watch('PJSIP/1001');
    await settle();
    expect(devices.subscribed).toEqual([]);
    devices.connected = true;
    devices.states.set('PJSIP/1001', 'NOT_INUSE');
    await presence.refresh();
    expect(devices.subscribed).toEqual(['PJSIP/1001']);
    expect(seen).toEqual([['PJSIP/1001', { busy: false }, 'NOT_INUSE']]);
  });

  it('a device that cannot be watched is a warning, not a crash', async () => {
    const { devices, presence, lines } = setup();
    devices.failFor.add('PJSIP/bad');
    presence.watch('PJSIP/bad');
    await settle();
    expect(lines.find((l) => l.event === 'presence.watch_failed')).toMatchObject({ level: 'warn', device: 'PJSIP/bad' });
  });
});
