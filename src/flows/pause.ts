/**
 * "Hold my callbacks": the agent's pause feature code (*73 in the demo dialplan):
 * `Stasis(considerate-callback,pause,<agent device>)`.
 *
 * One code toggles: not paused → paused (until resumed), paused → resumed. The agent hears which
 * (prompts.paused / prompts.resumed), and the pause lamp (`Stasis:ccp-<agent>`) follows. The pause itself
 * is the engine's (durable, in the store); while it holds nothing rings the agent and due requests wait in
 * order. Written over a {@link CallPort}.
 */
import { chooseLanguage, describeInput, validateAgentDevice } from '../core/validate';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { CallPort } from '../telephony/port';

export interface PauseControl {
  /** Pauses when not paused, else resumes; says which it did. */
  togglePause(agent: string, by: string): Promise<{ paused: boolean }>;
}

export interface PauseFlowOptions {
  prompts: { paused: string; resumed: string; error: string };
  languages: readonly string[];
  defaultLanguage: string;
}

export class PauseFlow {
  constructor(
    private readonly control: PauseControl,
    private readonly opts: PauseFlowOptions,
    private readonly log: Logger,
  ) {}

  /** Runs the feature code on a call; `args` = ['pause', <agent device>]. Hangs up at the end; never rejects. */
  async run(port: CallPort, args: readonly string[]): Promise<void> {
    const log = this.log.child({ channelId: port.channelId });
    const device = validateAgentDevice(args[1]);
    if (!device.ok) {
      emit(log, 'warn', 'pause.refused', 'pause feature code refused: bad agent device from the dialplan', { reason: device.reason, agent: describeInput(args[1]) });
      await port.hangup().catch(() => undefined);
      return;
    }
    const alog = log.child({ agent: device.value });
    try {
      await port.setLanguage(chooseLanguage(port.language, this.opts.languages, this.opts.defaultLanguage));
      await port.answer();
      let prompt = this.opts.prompts.error;
      try {
        const r = await this.control.togglePause(device.value, 'phone');
        prompt = r.paused ? this.opts.prompts.paused : this.opts.prompts.resumed;
      } catch (err) {
        alog.error('could not pause or resume the callbacks', { error: err instanceof Error ? err.message : String(err) });
      }
      await port.play([prompt]);
    } catch (err) {
      alog.log(port.gone ? 'debug' : 'warn', 'pause feature code call failed', { error: err instanceof Error ? err.message : String(err) });
    }
    if (!port.gone) await port.hangup().catch(() => undefined);
  }
}
