/**
 * The pure part of the `ceiling` part's simulated PBX (bench/ari-sim.ts): what it says, built from what the real
 * Asterisk 22 said in the recorded offer (bench/fixtures/ari-offer-capture.json, made by bench/ceiling-capture.ts).
 *
 * Every event and every REST answer the simulator sends is the recorded one with the call's own ids, names,
 * numbers and times put in: the same fields, the same order of keys, the same formats (Asterisk's timestamps
 * `2026-12-07T08:04:17.552+0000`). {@link offerScript} is the order in which the recorded call's events came, each
 * tied to what caused it (the call arriving, the agent's key, a REST request of the service, a prompt's end).
 */

/** One recorded REST exchange and one recorded event (see bench/ceiling-capture.ts). */
export interface CaptureRest {
  t: number;
  method: string;
  path: string;
  requestBody?: string;
  status: number;
  body: string;
  contentType?: string;
}
export interface CaptureEvent {
  t: number;
  event: Record<string, unknown>;
}
export interface CaptureFile {
  recordedAt: string;
  asterisk: string;
  app: string;
  offerChannel: string;
  agentDevice: string;
  rest: CaptureRest[];
  events: CaptureEvent[];
  keySentAt: number;
  /** Length of each prompt (media URI → ms), from the sandbox's sound files. */
  mediaMs: Record<string, number>;
}

/** A simulated call: its channel and what the dialplan's routine hands the app. */
export interface SimCall {
  channelId: string;
  /** Channel name, e.g. `PJSIP/sim17-0000001a`. */
  name: string;
  /** The agent's device (Stasis arg 3), e.g. `PJSIP/sim17`. */
  agent: string;
  /** The number the agent dialled (Stasis arg 2). */
  prospect: string;
  callerName: string;
  callerNumber: string;
  language: string;
  /** ms since the epoch. */
  createdAt: number;
}

/** Asterisk's own timestamp format (UTC): `2026-12-07T08:04:17.552+0000`. */
export function asteriskTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

/** The Stasis() arguments the dialplan's routine gives for a busy offer (dialplan/considerate-callback.conf). */
export function offerArgs(call: Pick<SimCall, 'prospect' | 'agent'>): string[] {
  return ['offer', call.prospect, call.agent, '17', ''];
}

function clone<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

/** The recorded channel object with the call's own fields (the keys in the recorded order). */
export function channelJson(template: Record<string, unknown>, call: SimCall, app: string, state: string): Record<string, unknown> {
  const ch = clone(template);
  ch.id = call.channelId;
  ch.name = call.name;
  ch.state = state;
  ch.caller = { name: call.callerName, number: call.callerNumber };
  ch.connected = { name: call.callerName, number: call.callerNumber };
  const dp = ch.dialplan as Record<string, unknown> | undefined;
  if (dp) dp.app_data = [app, ...offerArgs(call)].join(',');
  ch.creationtime = asteriskTime(call.createdAt);
  ch.language = call.language;
  return ch;
}

/** A recorded channel event (StasisStart, ChannelDtmfReceived, StasisEnd, …) for this call, at `now`. */
export function channelEvent(template: Record<string, unknown>, call: SimCall, app: string, state: string, now: number): Record<string, unknown> {
  const e = clone(template);
  e.timestamp = asteriskTime(now);
  e.channel = channelJson(template.channel as Record<string, unknown>, call, app, state);
  if (Array.isArray(e.args)) e.args = offerArgs(call);
  e.application = app;
  return e;
}

/** The playback object Asterisk reports (in the REST answer `state: queued`, in events `playing`/`done`). */
export function playbackJson(template: Record<string, unknown>, p: { id: string; media: string; channelId: string; language?: string }, state: string): Record<string, unknown> {
  const pb = clone(template);
  pb.id = p.id;
  pb.media_uri = p.media;
  pb.target_uri = `channel:${p.channelId}`;
  if (p.language !== undefined) pb.language = p.language;
  else delete pb.language;
  pb.state = state;
  return pb;
}

/** A recorded playback event (PlaybackStarted, PlaybackFinished) for this playback, at `now`. */
export function playbackEvent(template: Record<string, unknown>, p: { id: string; media: string; channelId: string; language?: string }, app: string, state: string, now: number): Record<string, unknown> {
  const e = clone(template);
  e.timestamp = asteriskTime(now);
  e.playback = playbackJson(template.playback as Record<string, unknown>, p, state);
  e.application = app;
  return e;
}

/** What caused an event of the recorded offer. */
export type Cause = 'arrival' | 'answer' | 'key' | 'play' | 'stopPlayback' | 'promptEnd' | 'hangup';

export interface ScriptStep {
  cause: Cause;
  type: string;
  /** The recorded event (template). */
  event: Record<string, unknown>;
}

const REQUEST_CAUSES: Array<[RegExp, string, Cause]> = [
  [/^\/ari\/channels\/[^/]+\/answer$/, 'POST', 'answer'],
  [/^\/ari\/channels\/[^/]+\/play\/[^/?]+/, 'POST', 'play'],
  [/^\/ari\/playbacks\/[^/?]+/, 'DELETE', 'stopPlayback'],
  [/^\/ari\/channels\/[^/?]+(\?|$)/, 'DELETE', 'hangup'],
];

/** Which of the service's call requests a REST path is (undefined: not one of the call's own requests). */
export function requestCause(method: string, pathAndQuery: string): Cause | undefined {
  for (const [re, m, cause] of REQUEST_CAUSES) if (m === method && re.test(pathAndQuery)) return cause;
  return undefined;
}

/**
 * The recorded offer's events in order, each with its cause: the last thing that happened before it on that call
 * (the call arriving, the `#` sent, one of the service's requests answered — the recorder notes a request when its
 * answer has come, so an event caused by it can arrive a moment before — or, for a PlaybackFinished without a stop
 * request before it, the prompt's end).
 */
export function offerScript(capture: CaptureFile): ScriptStep[] {
  const id = capture.offerChannel;
  const onCall = (path: string) => path.includes(encodeURIComponent(id)) || path.includes(id);
  const requests = capture.rest
    .map((r) => ({ t: r.t, cause: requestCause(r.method, r.path), path: r.path }))
    .filter((r): r is { t: number; cause: Cause; path: string } => r.cause !== undefined && (r.cause !== 'stopPlayback' || r.path.includes(id)) && (r.cause === 'stopPlayback' || onCall(r.path)));
  const marks: Array<{ t: number; cause: Cause }> = [{ t: capture.keySentAt, cause: 'key' }, ...requests.map((r) => ({ t: r.t, cause: r.cause }))];
  const mine = capture.events.filter((e) => {
    const ev = e.event as { channel?: { id?: string }; playback?: { target_uri?: string } };
    return ev.channel?.id === id || ev.playback?.target_uri === `channel:${id}`;
  });
  const stopped = new Set<string>();
  for (const r of requests) if (r.cause === 'stopPlayback') stopped.add(decodeURIComponent(r.path.split('/').pop()?.split('?')[0] ?? ''));
  return mine.map((e) => {
    const type = String(e.event.type);
    let cause: Cause;
    if (type === 'StasisStart') cause = 'arrival';
    else if (type === 'ChannelDtmfReceived') cause = 'key';
    else if (type === 'PlaybackFinished') cause = stopped.has(String((e.event.playback as { id?: string }).id)) ? 'stopPlayback' : 'promptEnd';
    else if (type === 'PlaybackStarted') cause = 'play';
    else {
      // the last mark at or before it (5 ms of slack: the recorder notes a request when its answer is back)
      const before = marks.filter((m) => m.t <= e.t + 5).sort((a, b) => b.t - a.t)[0];
      cause = before?.cause ?? 'arrival';
    }
    return { cause, type, event: e.event };
  });
}

/** The recorded event of `type` that `cause` brought (the first), or undefined when the recorded call had none. */
export function templateFor(script: readonly ScriptStep[], cause: Cause, type?: string): ScriptStep[] {
  return script.filter((s) => s.cause === cause && (type === undefined || s.type === type));
}

/** Length of a WAV file's audio in ms (its `fmt ` byte rate and `data` size), or undefined when it is not one. */
export function wavMs(buf: Buffer): number | undefined {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') return undefined;
  let byteRate: number | undefined;
  for (let at = 12; at + 8 <= buf.length; ) {
    const id = buf.toString('ascii', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    if (id === 'fmt ' && at + 16 <= buf.length) byteRate = buf.readUInt32LE(at + 8 + 8);
    if (id === 'data') return byteRate ? Math.round((size / byteRate) * 1000) : undefined;
    at += 8 + size + (size % 2);
  }
  return undefined;
}
