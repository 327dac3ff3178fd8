/**
 * The ARI port against a scripted ARI: a fake REST client that records every request, and an event
 * source the test fires ARI events through (as AriConnection.onAri would deliver them).
 */
import { EventEmitter } from 'node:events';
import type { CallbackRequest, Observation } from '../../../src/core/policy';
import { RecallFlow } from '../../../src/flows/recall';
import { AriCallPort, AriSwitchboard, FAILED_PLAYBACK_GRACE_MS, expandMedia } from '../../../src/telephony/ari/port';
import { AriRestError } from '../../../src/telephony/ari/rest-error';
import { AriRouter } from '../../../src/telephony/ari/router';
import { StasisEntry } from '../../../src/telephony/ari/stasis';
import { capturedLog, settle } from '../fake-port';

class FakeAri extends EventEmitter {
  readonly requests: string[] = [];
  failPlay?: string;
  /** Asterisk's refusal of a play request (status and message), e.g. 404 when the channel is gone. */
  refusePlay?: { status: number; message: string };
  onAri(event: string, handler: (...args: never[]) => unknown): void {
    this.on(event, handler as (...args: unknown[]) => void);
  }
  rest = {
    answer: async (channelId: string) => void this.requests.push(`answer ${channelId}`),
    play: async (channelId: string, p: { media: string; lang?: string; playbackId: string }) => {
      this.requests.push(`play ${channelId} ${p.media} ${p.lang ?? '-'} ${p.playbackId}`);
      if (this.failPlay === p.media) throw new Error('404 Channel not found');
      if (this.refusePlay) throw new AriRestError(this.refusePlay.status, `play: ${this.refusePlay.status} ${this.refusePlay.message}`, 'play');
    },
    stopPlayback: async (playbackId: string) => void this.requests.push(`stop ${playbackId}`),
    hangup: async (channelId: string, reason?: string) => void this.requests.push(`hangup ${channelId} ${reason ?? ''}`.trim()),
    originate: async (p: { endpoint: string; channelId: string }) => void this.requests.push(`originate ${p.endpoint} ${p.channelId}`),
    createBridge: async (id: string) => void this.requests.push(`createBridge ${id}`),
    addToBridge: async (id: string, channelId: string) => void this.requests.push(`addToBridge ${id} ${channelId}`),
    destroyBridge: async (id: string) => void this.requests.push(`destroyBridge ${id}`),
    continueInDialplan: async (channelId: string) => void this.requests.push(`continue ${channelId}`),
    listChannels: async () => [] as { id: string }[],
    listBridges: async () => [] as { id: string }[],
  };
  /** The playback ids of the play requests sent so far, in order. */
  playbacks(): string[] {
    return this.requests.filter((r) => r.startsWith('play ')).map((r) => r.split(' ').at(-1)!);
  }
  finished(playbackId: string, state = 'done'): void {
    this.emit('PlaybackFinished', { playback: { id: playbackId, state } });
  }
  dtmf(channelId: string, digit: string): void {
    this.emit('ChannelDtmfReceived', { channel: { id: channelId }, digit });
  }
}

function setup() {
  const ari = new FakeAri();
  const router = new AriRouter(ari);
  return { ari, router, port: (id = 'c1', language = 'en') => new AriCallPort(ari.rest, router, id, { language }) };
}

describe('the ARI prompt helper', () => {
  it('reads digits out as sound files a key can stop (never as one digits: playback)', () => {
    expect(expandMedia(['sound:a', 'digits:+20 01', 'tone:ring'])).toEqual(['sound:a', 'sound:digits/2', 'sound:digits/0', 'sound:digits/0', 'sound:digits/1', 'tone:ring']);
  });

  it('queues one playback per item in order, in the channel language, and ends when the last one has finished', async () => {
    const { ari, port } = setup();
    const p = port('c1', 'de');
    let outcome: unknown;
    void p.play(['sound:intro', 'digits:12'], { stopKeys: '1' }).then((o) => (outcome = o));
    await settle();
    expect(ari.requests.map((r) => r.split(' ').slice(0, 4).join(' '))).toEqual(['play c1 sound:intro de', 'play c1 sound:digits/1 de', 'play c1 sound:digits/2 de']);
    const ids = ari.playbacks();
    ari.finished(ids[0]);
    ari.finished(ids[1]);
    await settle();
    expect(outcome).toBeUndefined();
    ari.finished(ids[2]);
    await settle();
    expect(outcome).toEqual({ type: 'finished', failed: undefined });
  });

  it('a stop key while the digits are read out stops the digit that plays AND everything still queued, right after the key', async () => {
    const { ari, port } = setup();
    const p = port();
    const outcome = p.play(['sound:cc-recall-intro', 'digits:2001', 'sound:cc-recall-menu'], { stopKeys: '123' });
    await settle();
    const ids = ari.playbacks();
    expect(ids).toHaveLength(6);
    ari.finished(ids[0]);
    ari.finished(ids[1]); // "2" said; "0" is playing now
    ari.dtmf('c1', '1');
    expect(await outcome).toMatchObject({ type: 'key', digit: '1' });
    // The stop requests go out once what the key set off has reached its first wait (one turn of the event loop):
    // not before the key's outcome is handed on.
    expect(ari.requests.filter((r) => r.startsWith('stop '))).toEqual([]);
    await settle(1);
    // Every playback that had not finished is stopped (the one playing and the queued ones).
    expect(ari.requests.filter((r) => r.startsWith('stop ')).sort()).toEqual(ids.slice(2).map((id) => `stop ${id}`).sort());
  });

  it('a key that arrives while the list is still being queued stops what was queued and queues nothing more', async () => {
    const { ari, port } = setup();
    const p = port();
    const outcome = p.play(['sound:a', 'sound:b', 'sound:c'], { stopKeys: '#' });
    ari.dtmf('c1', '#');
    expect(await outcome).toMatchObject({ type: 'key', digit: '#' });
    await settle();
    const plays = ari.playbacks();
    expect(plays).toHaveLength(1);
    expect(ari.requests).toContain(`stop ${plays[0]}`);
  });

  it('keys that are not stop keys are ignored by the prompt; with nobody waiting they are dropped', async () => {
    const { ari, port } = setup();
    const p = port();
    let outcome: unknown;
    void p.play(['sound:a'], { stopKeys: '12' }).then((o) => (outcome = o));
    await settle();
    ari.dtmf('c1', '9');
    await settle();
    expect(outcome).toBeUndefined();
    ari.finished(ari.playbacks()[0]);
    await settle();
    expect(outcome).toMatchObject({ type: 'finished' });
    ari.dtmf('c1', '1');
    const wait = p.waitKey(1000, '12');
    ari.dtmf('c1', '2');
    expect(await wait).toMatchObject({ type: 'key', digit: '2' });
  });

  it('the guard timer ends a list whose end is never reported, and stops it', async () => {
    const { ari, port } = setup();
    const p = port();
    const outcome = await p.play(['tone:ring'], { guardMs: 20 });
    expect(outcome).toEqual({ type: 'timeout' });
    expect(ari.requests.at(-1)).toMatch(/^stop c1-p/);
  });

  it('a failed playback (missing sound) counts as played and is named', async () => {
    const { ari, port } = setup();
    const p = port();
    ari.failPlay = 'sound:missing';
    const outcome = p.play(['sound:missing', 'sound:b']);
    await settle();
    ari.finished(ari.playbacks()[1]);
    expect(await outcome).toEqual({ type: 'finished', failed: { media: 'sound:missing', error: '404 Channel not found' } });
  });

  it.each([
    [404, 'Channel not found'],
    [409, 'Channel not in Stasis application'],
  ])('a play Asterisk refuses with %i (%s: the caller hung up before its event came) ends as a hang-up, not a failed prompt', async (status, message) => {
    const { ari, port } = setup();
    const p = port();
    ari.refusePlay = { status, message };
    expect(await p.play(['sound:cc-confirm', 'sound:b'])).toEqual({ type: 'hangup' });
    // nothing more was queued after the refusal
    expect(ari.playbacks()).toHaveLength(1);
  });

  it('a playback Asterisk reports failed because the channel is being hung up (# then hang-up at once) ends as a hang-up when the hang-up follows', async () => {
    const { ari, port } = setup();
    const p = port();
    const outcome = p.play(['sound:cc-confirm']);
    await settle();
    ari.finished(ari.playbacks()[0], 'failed');
    await new Promise((r) => setTimeout(r, 50)); // the hang-up's events a moment later, as from Asterisk
    ari.emit('StasisEnd', { channel: { id: 'c1' } });
    expect(await outcome).toEqual({ type: 'hangup' });
  });

  it('a failed playback with the channel still up is a failed prompt naming the media, once the grace for a hang-up has passed', async () => {
    const { ari, port } = setup();
    const p = port();
    let outcome: unknown;
    void p.play(['sound:missing']).then((o) => (outcome = o));
    await settle();
    ari.finished(ari.playbacks()[0], 'failed');
    await settle();
    expect(outcome).toBeUndefined();
    await new Promise((r) => setTimeout(r, FAILED_PLAYBACK_GRACE_MS + 50));
    expect(outcome).toEqual({ type: 'finished', failed: { media: 'sound:missing' } });
  });

  it('any other refusal of a play (500) is a failed prompt that names the media', async () => {
    const { ari, port } = setup();
    const p = port();
    ari.refusePlay = { status: 500, message: 'Internal Server Error' };
    const outcome = p.play(['sound:cc-confirm']);
    expect(await outcome).toEqual({ type: 'finished', failed: { media: 'sound:cc-confirm', error: 'play: 500 Internal Server Error' } });
  });

  it('events are routed by channel: another call gets neither the keys nor the hang-up', async () => {
    const { ari, port } = setup();
    const a = port('a');
    const b = port('b');
    const wa = a.waitKey(1000);
    const wb = b.waitKey(30);
    ari.dtmf('a', '5');
    ari.emit('ChannelDestroyed', { channel: { id: 'a' }, cause: 16 });
    expect(await wa).toMatchObject({ type: 'key', digit: '5' });
    expect(await wb).toEqual({ type: 'timeout' });
    expect(a.gone).toBe(true);
    expect(b.gone).toBe(false);
    expect(await a.play(['sound:x'])).toEqual({ type: 'hangup' });
  });

  it('a hang-up ends the prompt and the wait as hang-ups, and tells onGone the cause once', async () => {
    const { ari, port } = setup();
    const p = port();
    const causes: (number | undefined)[] = [];
    p.onGone((c) => causes.push(c));
    const outcome = p.play(['sound:a']);
    ari.emit('StasisEnd', { channel: { id: 'c1' } });
    ari.emit('ChannelDestroyed', { channel: { id: 'c1' }, cause: 16 });
    expect(await outcome).toEqual({ type: 'hangup' });
    expect(causes).toEqual([undefined]);
  });
});

describe('the recall menu over the ARI port (the late-dial fix)', () => {
  it('1 pressed while the prospect digits are read out: every queued menu playback is stopped and the prospect is dialled at once', async () => {
    const ari = new FakeAri();
    const router = new AriRouter(ari);
    const reports: Observation[] = [];
    const { log } = capturedLog();
    const flow = new RecallFlow(new AriSwitchboard(ari.rest, router, 'app'), { observe: (_id, o) => reports.push(o) > 0, stateOf: () => 'RINGING_AGENT' }, {
      outboundContext: 'cc-outbound',
      alertInfo: '',
      menuTimeoutMs: 8000,
      prompts: { recallIntro: 'sound:intro', recallMenu: 'sound:menu', recallNumber: 'sound:number', connecting: 'sound:c', stillBusy: 'sound:s', noAnswer: 'sound:n', snoozed: 'sound:z', cancelled: 'sound:x' },
    }, log);
    const request = { id: 'r1', agent: 'PJSIP/1001', prospect: '2001', language: 'en' } as CallbackRequest;
    await flow.execute(request, { type: 'ringAgent', attempt: 1, channelId: 'ccb-r1-1', callerId: { name: 'Callback: 2001', number: '9000' }, timeoutMs: 30000 });
    flow.onStasisStart('ccb-r1-1', ['recall', 'r1']);
    await flow.execute(request, { type: 'announce', channelId: 'ccb-r1-1', prompt: 'menu' });
    await settle();
    const ids = ari.playbacks();
    // intro, menu, then the number twice, digit by digit: no uninterruptible digits: playback reaches Asterisk.
    const number = ['sound:number', 'sound:digits/2', 'sound:digits/0', 'sound:digits/0', 'sound:digits/1'];
    expect(ari.requests.filter((r) => r.startsWith('play ')).map((r) => r.split(' ')[2])).toEqual(['sound:intro', 'sound:menu', ...number, ...number]);
    for (const id of ids.slice(0, 4)) ari.finished(id);
    ari.dtmf('ccb-r1-1', '1');
    await settle();
    expect(reports).toEqual([{ type: 'agentAnswered' }, { type: 'agentKey', key: '1' }]);
    expect(ari.requests.filter((r) => r.startsWith('stop ')).sort()).toEqual(ids.slice(4).map((id) => `stop ${id}`).sort());
    // The engine now asks for the prospect: nothing of the menu is left to wait for.
    await flow.execute(request, { type: 'dialProspect', attempt: 1, channelId: 'ccb-r1-1-p', agentChannelId: 'ccb-r1-1', callerId: { name: 'A', number: '1001' }, timeoutMs: 30000 });
    expect(ari.requests.slice(-4).map((r) => r.split(' ').slice(0, 3).join(' '))).toEqual([
      'createBridge ccb-r1-1-b',
      'addToBridge ccb-r1-1-b ccb-r1-1',
      'play ccb-r1-1 tone:ring',
      'originate Local/2001@cc-outbound ccb-r1-1-p',
    ]);
  });
});

describe('the Stasis entry', () => {
  it('runs a call flow on a port of its own, hangs up a channel the flow left up, and sends unknown arguments back to the dialplan', async () => {
    const ari = new FakeAri();
    const router = new AriRouter(ari);
    const { log, lines } = capturedLog();
    let finish!: () => void;
    const seen: string[] = [];
    const entry = new StasisEntry(ari, ari.rest, router, {
      calls: {
        offer: async (port, args) => {
          seen.push(`${port.channelId} ${port.language} ${port.caller.number} ${args.join(',')}`);
          await new Promise<void>((r) => (finish = r));
        },
      },
      originated: { recall: (id) => seen.push(`recall ${id}`) },
    }, [], { app: 'app', log });
    ari.emit('StasisStart', { args: ['offer', '2001'] }, { id: 'c1', language: 'de', caller: { name: 'A', number: '1001' } });
    ari.emit('StasisStart', { args: ['recall', 'r1'] }, { id: 'ccb-r1-1', language: 'en', caller: {} });
    ari.emit('StasisStart', { args: ['evil'] }, { id: 'c9', language: 'en', caller: {} });
    expect(seen).toEqual(['c1 de 1001 offer,2001', 'recall ccb-r1-1']);
    expect(entry.calls).toBe(1);
    finish();
    await settle();
    expect(entry.calls).toBe(0);
    expect(ari.requests).toEqual(['continue c9', 'hangup c1 normal']);
    expect(lines.find((l) => l.event === 'service.unknown_stasis_args')).toMatchObject({ args: ['evil'], channelId: 'c9' });
  });

  it('after a reconnection, a call whose channel vanished ends as hung up', async () => {
    const ari = new FakeAri();
    const router = new AriRouter(ari);
    const { log } = capturedLog();
    let outcome: unknown;
    const entry = new StasisEntry(ari, ari.rest, router, {
      calls: { offer: async (port) => (outcome = await port.waitKey(60_000)) },
      originated: {},
    }, [], { app: 'app', log });
    ari.emit('StasisStart', { args: ['offer'] }, { id: 'c1', language: 'en', caller: {} });
    await entry.reconcile();
    await settle();
    expect(outcome).toEqual({ type: 'hangup' });
  });
});
