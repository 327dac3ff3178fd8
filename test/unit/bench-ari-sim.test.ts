import fs from 'node:fs';
import path from 'node:path';
import { loopLagFromMetrics } from '../../bench/ceiling';
import { type CaptureFile, type SimCall, asteriskTime, channelEvent, offerArgs, offerScript, playbackEvent, requestCause, wavMs } from '../../bench/ari-sim-events';

const capture = JSON.parse(fs.readFileSync(path.join(__dirname, '../../bench/fixtures/ari-offer-capture.json'), 'utf8')) as CaptureFile;

/** Asterisk's timestamp as ms since the epoch. */
const at = (ts: string) => Date.parse(ts.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));

describe('simulated PBX: the recorded offer (bench/fixtures/ari-offer-capture.json)', () => {
  const script = offerScript(capture);

  it('is a real offer with # as Asterisk 22 sent it to the service: the events in order, each tied to its cause', () => {
    expect(capture.asterisk).toMatch(/^22\./);
    expect(script.map((s) => `${s.type} ← ${s.cause}`)).toEqual([
      'StasisStart ← arrival',
      'ChannelDtmfReceived ← key',
      'PlaybackFinished ← stopPlayback',
      'PlaybackFinished ← promptEnd',
      'StasisEnd ← hangup',
    ]);
  });

  it('the builder gives back every recorded event exactly when given the recorded call (ids, names, args, times)', () => {
    const ss = script[0].event as { channel: Record<string, unknown> & { caller: { name: string; number: string }; creationtime: string }; args: string[] };
    const call: SimCall = {
      channelId: String(ss.channel.id),
      name: String(ss.channel.name),
      agent: ss.args[2],
      prospect: ss.args[1],
      callerName: ss.channel.caller.name,
      callerNumber: ss.channel.caller.number,
      language: String(ss.channel.language),
      createdAt: at(ss.channel.creationtime),
    };
    for (const step of script) {
      const e = step.event as { timestamp: string; application: string; channel?: { state: string }; playback?: { id: string; media_uri: string; language?: string; state: string } };
      const rebuilt = e.playback
        ? playbackEvent(step.event, { id: e.playback.id, media: e.playback.media_uri, channelId: call.channelId, language: e.playback.language }, e.application, e.playback.state, at(e.timestamp))
        : channelEvent(step.event, call, e.application, String(e.channel?.state), at(e.timestamp));
      // the same object, keys in the same order: the JSON on the wire is byte for byte the recorded one
      expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(step.event));
    }
  });

  it("a simulated call's StasisStart carries its own channel and the dialplan's Stasis() arguments", () => {
    const call: SimCall = { channelId: 'sim-1-7', name: 'PJSIP/sim7-00000007', agent: 'PJSIP/sim7', prospect: '3000007', callerName: 'Agent 7', callerNumber: 'sim7', language: 'en', createdAt: Date.UTC(2026, 11, 7, 9, 0, 0, 5) };
    const e = channelEvent(script[0].event, call, 'considerate-callback', 'Ring', Date.UTC(2026, 11, 7, 9, 0, 0, 9)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(e.type).toBe('StasisStart');
    expect(e.args).toEqual(['offer', '3000007', 'PJSIP/sim7', '17', '']);
    expect(e.application).toBe('considerate-callback');
    expect(e.timestamp).toBe('2026-12-07T09:00:00.009+0000');
    expect(e.channel).toMatchObject({ id: 'sim-1-7', name: 'PJSIP/sim7-00000007', state: 'Ring', caller: { name: 'Agent 7', number: 'sim7' }, creationtime: '2026-12-07T09:00:00.005+0000', language: 'en' });
    expect(e.channel.dialplan.app_data).toBe('considerate-callback,offer,3000007,PJSIP/sim7,17,');
    // the template is not changed by building from it
    expect((script[0].event as { channel: { id: string } }).channel.id).toBe(capture.offerChannel);
  });

  it('knows the length of the prompts from the sound files (the confirmation as long as Asterisk played it)', () => {
    expect(capture.mediaMs['sound:cc-offer']).toBeGreaterThan(1500); // the # comes while the offer still plays
    const confirmPlay = capture.rest.find((r) => r.method === 'POST' && r.path.includes('cc-confirm'));
    const confirmEnd = capture.events.filter((e) => e.event.type === 'PlaybackFinished').pop();
    expect(confirmPlay && confirmEnd).toBeTruthy();
    expect(Math.abs((confirmEnd?.t ?? 0) - (confirmPlay?.t ?? 0) - capture.mediaMs['sound:cc-confirm'])).toBeLessThan(200);
  });
});

describe('simulated PBX: pure helpers', () => {
  it('tells the call requests of the service apart by method and path', () => {
    expect(requestCause('POST', '/ari/channels/c1/answer')).toBe('answer');
    expect(requestCause('POST', '/ari/channels/c1/play/p1?media=sound%3Acc-offer&lang=en')).toBe('play');
    expect(requestCause('DELETE', '/ari/playbacks/p1')).toBe('stopPlayback');
    expect(requestCause('DELETE', '/ari/channels/c1?reason=normal')).toBe('hangup');
    expect(requestCause('DELETE', '/ari/channels/c1')).toBe('hangup');
    expect(requestCause('GET', '/ari/channels')).toBeUndefined();
    expect(requestCause('POST', '/ari/channels/c1/continue')).toBeUndefined();
    expect(requestCause('DELETE', '/ari/bridges/b1')).toBeUndefined();
  });

  it('writes times as Asterisk does and the arguments as the dialplan gives them', () => {
    expect(asteriskTime(Date.UTC(2026, 0, 2, 3, 4, 5, 6))).toBe('2026-01-02T03:04:05.006+0000');
    expect(offerArgs({ prospect: '2991', agent: 'PJSIP/1001' })).toEqual(['offer', '2991', 'PJSIP/1001', '17', '']);
  });

  it('reads the length of a WAV file from its header, and nothing from something else', () => {
    const wav = (rate: number, bytes: number, extra = Buffer.alloc(0)) => {
      const fmt = Buffer.alloc(24);
      fmt.write('fmt ', 0, 'ascii');
      fmt.writeUInt32LE(16, 4);
      fmt.writeUInt16LE(1, 8);
      fmt.writeUInt16LE(1, 10);
      fmt.writeUInt32LE(rate, 12);
      fmt.writeUInt32LE(rate * 2, 16);
      const head = Buffer.alloc(12);
      head.write('RIFF', 0, 'ascii');
      head.write('WAVE', 8, 'ascii');
      const data = Buffer.alloc(8);
      data.write('data', 0, 'ascii');
      data.writeUInt32LE(bytes, 4);
      return Buffer.concat([head, fmt, extra, data, Buffer.alloc(bytes)]);
    };
    expect(wavMs(wav(8000, 16000))).toBe(1000);
    const list = Buffer.alloc(10);
    list.write('LIST', 0, 'ascii');
    list.writeUInt32LE(2, 4);
    expect(wavMs(wav(16000, 8000, list))).toBe(250);
    expect(wavMs(Buffer.from('not a wav file at all'))).toBeUndefined();
  });
});

describe("the ceiling part reads the service's own event-loop figure from its /metrics", () => {
  it("takes prom-client's gauges (seconds, with the service's 20 ms sampling interval in them) as lateness in ms", () => {
    const text = [
      '# HELP nodejs_eventloop_lag_p50_seconds The 50th percentile of the recorded event loop delays.',
      '# TYPE nodejs_eventloop_lag_p50_seconds gauge',
      'nodejs_eventloop_lag_p50_seconds 0.020125',
      'nodejs_eventloop_lag_p99_seconds 0.0625',
      'nodejs_eventloop_lag_max_seconds 0.32',
      'nodejs_eventloop_lag_min_seconds 0.0199',
    ].join('\n');
    expect(loopLagFromMetrics(text)).toEqual({ p50: 0.13, p99: 42.5, max: 300 });
    expect(loopLagFromMetrics('nodejs_eventloop_lag_min_seconds 0.0099')).toBeUndefined();
    expect(loopLagFromMetrics('nodejs_eventloop_lag_p50_seconds 0.001\nnodejs_eventloop_lag_p99_seconds 0.002\nnodejs_eventloop_lag_max_seconds 0.003')).toEqual({ p50: 0, p99: 0, max: 0 });
  });
});

describe('simulated PBX: REST over its WebSocket, as Asterisk 22.10 does it', () => {
  it('answers RESTRequest messages with a RESTResponse of the same request_id; its event filter drops them unless RESTResponse is allowed', async () => {
    const { AriSim } = await import('../../bench/ari-sim');
    const { WebSocket } = await import('../../bench/ws');
    const sim = new AriSim({ capture, username: 'u', password: 'p' });
    await sim.start();
    const ws = new WebSocket(`${sim.url.replace('http', 'ws')}/ari/events?app=app&api_key=u:p`);
    const got: Array<Record<string, unknown>> = [];
    try {
      await new Promise<void>((resolve, reject) => {
        ws.on('open', () => resolve());
        ws.on('error', (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
      });
      ws.on('message', (m: unknown) => got.push(JSON.parse(String(m)) as Record<string, unknown>));
      const filter = (allowed: string[]) =>
        fetch(`${sim.url}/ari/applications/app/eventFilter`, {
          method: 'PUT',
          headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}`, 'content-type': 'application/json' },
          body: JSON.stringify({ allowed: allowed.map((type) => ({ type })) }),
        });
      const ask = async (id: string) => {
        ws.send(JSON.stringify({ type: 'RESTRequest', request_id: id, method: 'PUT', uri: 'deviceStates/Stasis%3Acc-1001', query_strings: [{ name: 'deviceState', value: 'INUSE' }] }));
        ws.send(JSON.stringify({ type: 'RESTRequest', request_id: `${id}-get`, method: 'GET', uri: 'deviceStates/Stasis%3Acc-1001' }));
        await new Promise((r) => setTimeout(r, 200));
      };
      expect((await filter(['StasisStart', 'RESTResponse'])).status).toBe(200);
      await ask('a');
      expect(got.map((m) => [m.type, m.request_id, m.status_code, m.message_body])).toEqual([
        ['RESTResponse', 'a', 204, undefined],
        ['RESTResponse', 'a-get', 200, '{"name":"Stasis:cc-1001","state":"INUSE"}'],
      ]);
      expect((await filter(['StasisStart'])).status).toBe(200);
      await ask('b');
      expect(got).toHaveLength(2);
    } finally {
      ws.terminate();
      await sim.stop();
    }
  });
});
