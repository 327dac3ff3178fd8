/**
 * Why the prompt helper reads digits out as sound files: how long a channel stays busy after a STOP of
 * a `digits:` playback, against the same digits as one `sound:digits/<d>` playback each.
 *
 *   npx tsc -p tsconfig.tools.json && node .tools-dist/bench/digits-stop.js
 *
 * A channel (`Local/answer@cc-sim`, answered) enters a scratch app; eight digits are queued; 1.5 s later
 * every playback is stopped (as a key does) and a beep is queued. The figure is the time from the stop
 * to the beep's PlaybackStarted: what a bridge or the next prompt would wait (in the recall menu, the
 * prospect's dial).
 */
import * as ari from 'ari-client';
import { AriRest } from '../src/telephony/ari/rest';
import { SANDBOX } from '../testkit/sandbox';
import { sleep } from './common';

async function once(mode: 'digits:' | 'sound files'): Promise<number> {
  const { url, username, password } = SANDBOX.ari;
  const rest = new AriRest({ url, username, password });
  const client = await ari.connect(url, username, password);
  const app = `cc-digits-${process.pid}-${mode === 'digits:' ? 'a' : 'b'}`;
  const channelId = `${app}-chan`;
  let stoppedAt = 0;
  const result = new Promise<number>((resolve) => {
    client.on('PlaybackStarted', (e: { playback: { id: string } }) => {
      if (e.playback.id === `${app}-after`) resolve(Date.now() - stoppedAt);
    });
  });
  client.on('StasisStart', (_e: unknown, ch: { id: string }) => {
    void (async () => {
      const items = mode === 'digits:' ? ['digits:20012001'] : [...'20012001'].map((d) => `sound:digits/${d}`);
      const ids = items.map((_, i) => `${app}-${i}`);
      for (const [i, media] of items.entries()) await rest.play(ch.id, { media, playbackId: ids[i] });
      await sleep(1500);
      stoppedAt = Date.now();
      await Promise.all(ids.map((id) => rest.stopPlayback(id).catch(() => undefined)));
      await rest.play(ch.id, { media: 'sound:beep', playbackId: `${app}-after` });
    })();
  });
  await client.start(app);
  await rest.originate({ endpoint: 'Local/answer@cc-sim', channelId, app, appArgs: 'x', callerId: 'x', timeout: 10 });
  const ms = await result;
  await rest.hangup(channelId).catch(() => undefined);
  client.stop();
  rest.close();
  return ms;
}

async function main(): Promise<void> {
  for (const mode of ['digits:', 'sound files'] as const) {
    const ms = await once(mode);
    console.log(`${mode.padEnd(12)} stop → next playback started: ${ms} ms`);
  }
  process.exit(0);
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
