/**
 * The lean event path (src/telephony/ari/connection.ts leanEvents): the client's WebSocket messages are parsed
 * once and emitted on the client as ari-client emits them, without ari-client's resource objects; a message
 * that is not an ARI event is named and dropped, never thrown inside the socket's listener.
 */
import { EventEmitter } from 'node:events';
import { leanEvents, type AriClient } from '../../src/telephony/ari/connection';

function fakeClient(): { client: AriClient & EventEmitter; ws: EventEmitter; ariClientSaw: string[] } {
  const ws = new EventEmitter();
  const ariClientSaw: string[] = [];
  // ari-client's own listener (processMessage): must not see messages once the lean path is on.
  ws.on('message', (m: string) => ariClientSaw.push(m));
  const client = Object.assign(new EventEmitter(), { _ws: ws }) as unknown as AriClient & EventEmitter;
  return { client, ws, ariClientSaw };
}

describe('ARI events without ari-client resource objects', () => {
  it('emits each event once as (event, channel) on the client, in order; ari-client no longer parses them', () => {
    const { client, ws, ariClientSaw } = fakeClient();
    const bad: string[] = [];
    expect(leanEvents(client, (why) => bad.push(why))).toBe(true);
    // A second connection report does not add a second listener.
    expect(leanEvents(client, (why) => bad.push(why))).toBe(false);
    const seen: Array<[string, unknown, unknown]> = [];
    client.on('StasisStart', (e: unknown, ch: unknown) => seen.push(['StasisStart', e, ch]));
    client.on('ChannelDtmfReceived', (e: unknown, ch: unknown) => seen.push(['ChannelDtmfReceived', e, ch]));
    client.on('PlaybackFinished', (e: unknown, x: unknown) => seen.push(['PlaybackFinished', e, x]));
    const channel = { id: 'c-1', language: 'de', caller: { name: 'Ann', number: '1001' } };
    ws.emit('message', JSON.stringify({ type: 'StasisStart', args: ['offer', '2991', 'PJSIP/1001'], channel }));
    ws.emit('message', Buffer.from(JSON.stringify({ type: 'ChannelDtmfReceived', digit: '#', channel: { id: 'c-1' } })));
    ws.emit('message', JSON.stringify({ type: 'PlaybackFinished', playback: { id: 'p-1', state: 'done' } }));
    expect(seen.map((s) => s[0])).toEqual(['StasisStart', 'ChannelDtmfReceived', 'PlaybackFinished']);
    expect(seen[0][1]).toMatchObject({ args: ['offer', '2991', 'PJSIP/1001'] });
    expect(seen[0][2]).toEqual(channel);
    expect(seen[1][1]).toMatchObject({ digit: '#' });
    expect(seen[2][2]).toBeUndefined();
    expect(ariClientSaw).toEqual([]);
    expect(bad).toEqual([]);
  });

  it('a message that is not an event (not JSON, no type, null) is named and dropped; the next event still arrives', () => {
    const { client, ws } = fakeClient();
    const bad: Array<[string, string]> = [];
    leanEvents(client, (why, sample) => bad.push([why, sample]));
    const seen: string[] = [];
    client.on('StasisEnd', (e: { channel: { id: string } }) => seen.push(e.channel.id));
    expect(() => ws.emit('message', '{"type":"StasisEnd", broken')).not.toThrow();
    expect(() => ws.emit('message', JSON.stringify({ channel: { id: 'x' } }))).not.toThrow();
    expect(() => ws.emit('message', 'null')).not.toThrow();
    expect(() => ws.emit('message', JSON.stringify({ type: 42 }))).not.toThrow();
    expect(() => ws.emit('message', 'x'.repeat(10_000))).not.toThrow();
    ws.emit('message', JSON.stringify({ type: 'StasisEnd', channel: { id: 'c-2' } }));
    expect(bad.map((b) => b[0])).toEqual(['not JSON', 'no event type', 'no event type', 'no event type', 'not JSON']);
    expect(bad[4][1].length).toBeLessThanOrEqual(120);
    expect(seen).toEqual(['c-2']);
  });

  it('a client without a socket (a test double) is left as it is', () => {
    const client = new EventEmitter() as unknown as AriClient;
    expect(leanEvents(client, () => undefined)).toBe(false);
  });
});
