/**
 * The baseline of the offer-latency benchmark: a bare ari-client app (app name CC_ARI_APP, default
 * `considerate-callback`; the bench runs it next to the service under its own name) that only answers
 * each `offer` channel and plays the offer prompt (and hangs up on `#`). No store, no logging, no
 * state machine.
 *
 *   node .tools-dist/bench/bare-ari.js   # prints {"event":"bench.ready"} on stdout once registered
 */
import * as ari from 'ari-client';
import '../src/telephony/ari/quiet-swagger';
import type { Channel, StasisStart } from 'ari-client';

const url = process.env.CC_ARI_URL ?? 'http://127.0.0.1:8088';
const app = process.env.CC_ARI_APP ?? 'considerate-callback';

async function main(): Promise<void> {
  const client = await ari.connect(url, process.env.CC_ARI_USERNAME ?? 'considerate', process.env.CC_ARI_PASSWORD ?? 'demo-ari-secret');
  client.on('StasisStart', (event: StasisStart, channel: Channel) => {
    if (event.args[0] !== 'offer') return;
    void (async () => {
      try {
        await client.channels.answer({ channelId: channel.id });
        await client.channels.play({ channelId: channel.id, media: 'sound:cc-offer', lang: channel.language });
      } catch {
        // the caller hung up meanwhile
      }
    })();
  });
  client.on('ChannelDtmfReceived', (event: { digit: string }, channel: Channel) => {
    if (event.digit === '#') client.channels.hangup({ channelId: channel.id }).catch(() => undefined);
  });
  await client.start(app);
  process.stdout.write(`${JSON.stringify({ level: 'info', message: 'ready', event: 'bench.ready' })}\n`);
  process.on('SIGTERM', () => {
    client.stop();
    process.exit(0);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
