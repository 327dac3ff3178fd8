/**
 * What a flow may ask of a call, whatever the transport: the `CallPort`.
 *
 * The flows (src/flows/) are written once against these interfaces; ARI (src/telephony/ari/) and
 * FastAGI (src/telephony/agi/) implement them, and test/unit/fake-port.ts fakes them for unit tests.
 * Rules every implementation keeps:
 * - `play` plays a list of media in order. A key in `stopKeys` stops the item that plays AND everything
 *   still queued, and resolves at once with the key; the guard timer bounds a list whose end is never
 *   reported. `digits:<n>` items read the digits out one by one, each of which a key can interrupt.
 * - A call that is gone resolves every pending and later `play`/`waitKey` with `{ type: 'hangup' }`;
 *   `answer`/`hangup` on it may reject (the flow decides what that means).
 * - Keys pressed while nobody plays or waits are dropped (a key never leaks into a later menu).
 */

/** How a `play` ended. */
export type PlayOutcome =
  /** Every item has been played. `failed` names an item that could not be played (a missing sound). */
  | { type: 'finished'; failed?: { media: string; error?: string } }
  /** A stop key; everything still queued was stopped. `at`: performance.now() when the key reached the port. */
  | { type: 'key'; digit: string; at: number }
  /** The guard timer fired first; the rest was stopped. */
  | { type: 'timeout' }
  | { type: 'hangup' };

/** How a `waitKey` ended. */
export type KeyOutcome = { type: 'key'; digit: string; at: number } | { type: 'timeout' } | { type: 'hangup' };

export interface PlayOptions {
  /** Keys that stop the list (e.g. '#0123456789*'); none by default. */
  stopKeys?: string;
  /** Longest the whole list may take (default 60 s). */
  guardMs?: number;
}

export interface CallPort {
  /** The channel's id on the PBX (ARI channel id, AGI uniqueid). */
  readonly channelId: string;
  /** The channel's language as the PBX reports it, if any. */
  readonly language: string | undefined;
  /** The caller ID as the PBX reports it (raw; flows sanitise it). */
  readonly caller: { name?: string; number?: string };
  /** True once the call is gone (hung up, left the app). */
  readonly gone: boolean;
  answer(): Promise<void>;
  /** The language prompts are played in from now on (AGI sets CHANNEL(language) when it differs). */
  setLanguage(language: string): Promise<void>;
  play(media: readonly string[], opts?: PlayOptions): Promise<PlayOutcome>;
  /** Stops whatever `play` is playing (its promise resolves as `finished`). Nothing playing: nothing. */
  stop(): Promise<void>;
  /** Waits up to `ms` for a key (any key unless `keys` is given). */
  waitKey(ms: number, keys?: string): Promise<KeyOutcome>;
  hangup(reason?: 'normal' | 'busy'): Promise<void>;
  /**
   * Declines the call because the dialplan handed over bad input: ARI hangs it up as busy; AGI sets
   * CC_OFFER_OUTCOME=refused and returns it to the dialplan (which plays busy).
   */
  refuse(): Promise<void>;
  /** Runs `fn` once when the call is gone (at once if it already is); `cause`: the hang-up cause if known. */
  onGone(fn: (cause?: number) => void): void;
}

/** What a recall needs beyond one call: calls it originates and bridges (ARI only). */
export interface Switchboard {
  /** Originates a call into the app on a given channel id; resolves when the PBX accepted the request. */
  originate(p: {
    endpoint: string;
    channelId: string;
    appArgs: string;
    callerId: string;
    timeoutSec: number;
    variables?: Record<string, string>;
  }): Promise<void>;
  /** A port for a channel this process owns (events for it are routed to the port). */
  port(channelId: string, info?: { language?: string; caller?: { name?: string; number?: string } }): SwitchboardPort;
  createBridge(bridgeId: string, name: string): Promise<void>;
  addToBridge(bridgeId: string, channelId: string): Promise<void>;
  destroyBridge(bridgeId: string): Promise<void>;
  /** Hangs up any channel by id (also one without a port). */
  hangupChannel(channelId: string): Promise<void>;
}

/** A CallPort on a channel the switchboard originated: it also learns the Dial status. */
export interface SwitchboardPort extends CallPort {
  /** The last Dial status reported for this channel as the dialled peer (BUSY, NOANSWER, ANSWER, …). */
  readonly dialStatus: string | undefined;
  /** Stops routing this channel's events here (the flow is done with it). */
  release(): void;
}

/** Device states, for presence. */
export interface DeviceStates {
  /** Subscribes to a device's state changes (again after a reconnection). */
  subscribe(device: string): Promise<void>;
  /** The device's current state (NOT_INUSE, INUSE, …). */
  get(device: string): Promise<string>;
  /** Registers the listener for state changes of subscribed devices. */
  onChange(fn: (device: string, state: string) => void): void;
  /** True while the PBX can be asked. */
  readonly connected: boolean;
}
