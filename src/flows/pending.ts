/**
 * The agent's feature code (*82 in the dialplan): `Stasis(considerate-callback,pending,<agent device>)`.
 *
 * The agent hears "Callbacks pending: <count>", the next one's number, and "Press 1 to cancel the next
 * callback, 2 to cancel all, or hang up." Cancelling goes through the engine (`engine.cancel(id, 'agent')`),
 * so it is the same version-guarded transition, history entry and webhook notification as any other cancel.
 * "Next" is the pending request that would be called first (earliest wake-up). Written over a
 * {@link CallPort}; a key stops the whole announcement (count, digits and menu) at once.
 */
import type { CallbackRequest } from '../core/policy';
import { chooseLanguage, describeInput, validateAgentDevice } from '../core/validate';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { CallPort } from '../telephony/port';

export interface PendingSource {
  /** Pending requests of this agent. */
  pendingOf(agent: string): CallbackRequest[] | Promise<CallbackRequest[]>;
  /** Cancels one request as the agent; true if it was cancelled. */
  cancel(requestId: string): boolean | Promise<boolean>;
}

export interface PendingFlowOptions {
  prompts: { count: string; menu: string; cancelled: string; goodbye: string };
  menuTimeoutMs: number;
  languages: readonly string[];
  defaultLanguage: string;
}

const MENU_KEYS = '12';

/** Pending requests in the order they would be called: earliest wake-up first, then oldest. */
export function orderPending(requests: readonly CallbackRequest[]): CallbackRequest[] {
  return [...requests].sort((a, b) => (a.wakeAt ?? Infinity) - (b.wakeAt ?? Infinity) || a.createdAt - b.createdAt);
}

export class PendingFlow {
  constructor(
    private readonly source: PendingSource,
    private readonly opts: PendingFlowOptions,
    private readonly log: Logger,
  ) {}

  /** Runs the feature code on a call; `args` = ['pending', <agent device>]. Hangs up at the end; never rejects. */
  async run(port: CallPort, args: readonly string[]): Promise<void> {
    const log = this.log.child({ channelId: port.channelId });
    const device = validateAgentDevice(args[1]);
    if (!device.ok) {
      emit(log, 'warn', 'pending.refused', 'feature code refused: bad agent device from the dialplan', { reason: device.reason, agent: describeInput(args[1]) });
      await port.hangup().catch(() => undefined);
      return;
    }
    const alog = log.child({ agent: device.value });
    try {
      await port.setLanguage(chooseLanguage(port.language, this.opts.languages, this.opts.defaultLanguage));
      await this.menu(port, device.value, alog);
    } catch (err) {
      alog.log(port.gone ? 'debug' : 'warn', 'feature code call failed', { error: err instanceof Error ? err.message : String(err) });
    }
    if (!port.gone) await port.hangup().catch(() => undefined);
  }

  private async menu(port: CallPort, agent: string, log: Logger): Promise<void> {
    await port.answer();
    const pending = orderPending(await this.source.pendingOf(agent));
    const next = pending[0];
    emit(log, 'info', 'pending.asked', 'agent asked for pending callbacks', { pending: pending.length, next: next?.id, nextProspect: next?.prospect });
    if (!next) {
      await port.play([this.opts.prompts.count, 'digits:0']);
      return;
    }
    const played = await port.play(
      [this.opts.prompts.count, `digits:${pending.length}`, `digits:${next.prospect.replace(/^\+/, '')}`, this.opts.prompts.menu],
      { stopKeys: MENU_KEYS },
    );
    if (played.type === 'hangup') return;
    const key = played.type === 'key' ? played : await port.waitKey(this.opts.menuTimeoutMs, MENU_KEYS);
    if (key.type === 'hangup') return;
    const choice = key.type === 'key' ? key.digit : undefined;
    if (choice === '1' || choice === '2') {
      const targets = choice === '1' ? [next] : pending;
      let n = 0;
      for (const r of targets) {
        const ok = await this.source.cancel(r.id);
        if (ok) n++;
        const fields = { requestId: r.id, prospect: r.prospect, key: choice };
        if (ok) emit(log, 'info', 'pending.cancelled', 'callback cancelled by the agent', fields);
        else emit(log, 'info', 'pending.cancel_failed', 'callback could not be cancelled (it changed meanwhile)', fields);
      }
      if (n > 0) await port.play([this.opts.prompts.cancelled]);
      return;
    }
    emit(log, 'info', 'pending.no_choice', 'no cancellation chosen', { key: choice ?? 'none' });
  }
}
