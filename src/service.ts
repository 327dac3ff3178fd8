/**
 * The service: wires configuration, store, ARI connection and the call flows together.
 * Everything here is plumbing; decisions live in src/core.
 */
import type { Channel, StasisStart } from 'ari-client';
import { Config } from './config/load';
import { AriConnection, AriClient, errorText } from './asterisk/connection';
import { OfferFlow, OfferRequestInput, OfferSink } from './asterisk/offer-flow';
import { Logger } from './log';
import { RequestStore, openRequestStore, optIn } from './requests';

export interface ServiceOptions {
  config: Config;
  log: Logger;
  clock?: () => number;
}

export class Service {
  readonly store: RequestStore;
  readonly ari: AriConnection;
  private readonly offer: OfferFlow;
  private readonly clock: () => number;

  constructor(private readonly opts: ServiceOptions) {
    const { config, log } = opts;
    this.clock = opts.clock ?? Date.now;
    this.store = openRequestStore(config.store.path);
    this.ari = new AriConnection({
      url: config.ari.url,
      username: config.ari.username,
      password: config.ari.password,
      app: config.ari.app,
      reconnectMaxMs: config.ari.reconnectMaxMs,
      log: log.child({ component: 'ari' }),
    });
    const sink: OfferSink = {
      optIn: (input: OfferRequestInput) => optIn(this.store, input, config, this.clock()),
    };
    this.offer = new OfferFlow(
      this.ari,
      sink,
      {
        keyTimeoutMs: config.offer.keyTimeoutMs,
        closingTimeoutMs: config.offer.closingTimeoutMs,
        languages: config.offer.languages,
        defaultLanguage: config.offer.defaultLanguage,
        prompts: config.prompts,
        numbers: config.numbers,
      },
      log.child({ component: 'offer' }),
    );
    this.ari.onAri('StasisStart', (event: StasisStart, channel: Channel) => this.route(event, channel));
  }

  private route(event: StasisStart, channel: Channel): void {
    const client = this.ari.client;
    if (!client) return;
    const args = ([] as string[]).concat(event.args ?? []);
    if (args[0] === 'offer') {
      this.offer.start(client, channel, args);
      return;
    }
    this.refuse(client, channel, args);
  }

  private refuse(client: AriClient, channel: Channel, args: string[]): void {
    this.opts.log.warn('channel entered the app with unknown arguments; sending it back to the dialplan', {
      channelId: channel.id,
      args,
    });
    client.channels.continueInDialplan({ channelId: channel.id }).catch((err: unknown) => {
      this.opts.log.warn('could not return channel to the dialplan', { channelId: channel.id, error: errorText(err) });
    });
  }

  start(): void {
    this.opts.log.info('considerate-callback starting', { store: this.store.file, ari: this.opts.config.ari.url, app: this.opts.config.ari.app });
    this.ari.start();
  }

  async stop(): Promise<void> {
    await this.ari.stop();
    this.store.close();
    this.opts.log.info('considerate-callback stopped');
  }
}
