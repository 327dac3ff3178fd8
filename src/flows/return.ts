/**
 * Returning a recall: the agent dials the service number (`recall.callerIdNumber`, the number a recall comes
 * from) — from the phone's list of missed calls, as they return any missed call — and reaches their callbacks:
 * `Stasis(considerate-callback,return,<agent device>)` (dialplan `[considerate-callback-return]`).
 *
 * - The most recent missed or due callback first ({@link orderReturn}), with the recall's own menu ("Callback.
 *   Press 1 to connect, 2 for later, 3 to cancel. The number: …"): the request's recall starts on this call
 *   (policy observation `agentReturned`), so 1, 2, 3, no key, a busy prospect and the history are exactly those
 *   of a recall that rang the agent.
 * - When that recall gives the call back (2, 3, the prospect busy or not answering), the next callback follows,
 *   then the rest; after the last, or when nothing is pending, a short "No callbacks for you." and goodbye.
 * - A connected call ends the list; so does the agent hanging up.
 * Written over a {@link CallPort}; the recall on it runs in the recall flow (which bridges over ARI), so the
 * service routes this entry from Stasis only.
 */
import type { CallbackRequest } from '../core/policy';
import { chooseLanguage, describeInput, validateAgentDevice } from '../core/validate';
import { emit } from '../logging/events';
import type { Logger } from '../logging/log';
import type { CallPort } from '../telephony/port';
import type { ReturnOutcome } from './recall';

export interface ReturnSource {
  /** Pending requests (WAITING, GRACE, DUE) of this agent. */
  pendingOf(agent: string): CallbackRequest[] | Promise<CallbackRequest[]>;
  /** Runs the request's recall on this call; resolves when the recall gives the call back. */
  takeOver(requestId: string, port: CallPort): Promise<ReturnOutcome>;
}

export interface ReturnFlowOptions {
  prompts: { noCallbacks: string };
  languages: readonly string[];
  defaultLanguage: string;
  /** At most this many callbacks are offered on one call. */
  maxOffered?: number;
}

/** A callback the agent missed (rung at least once) or that is due now. */
function missedOrDue(r: CallbackRequest): boolean {
  return r.state === 'DUE' || r.rings > 0;
}

/**
 * The order the agent hears their callbacks in: missed or due ones first, the most recently changed first
 * (the recall they just missed); then the rest in the order they would be called (earliest wake-up, oldest).
 */
export function orderReturn(requests: readonly CallbackRequest[]): CallbackRequest[] {
  const first = requests.filter(missedOrDue).sort((a, b) => b.updatedAt - a.updatedAt || b.createdAt - a.createdAt);
  const rest = requests.filter((r) => !missedOrDue(r)).sort((a, b) => (a.wakeAt ?? Infinity) - (b.wakeAt ?? Infinity) || a.createdAt - b.createdAt);
  return [...first, ...rest];
}

export class ReturnFlow {
  constructor(
    private readonly source: ReturnSource,
    private readonly opts: ReturnFlowOptions,
    private readonly log: Logger,
  ) {}

  /** Runs on the agent's call; `args` = ['return', <agent device>]. Hangs up at the end; never rejects. */
  async run(port: CallPort, args: readonly string[]): Promise<void> {
    const log = this.log.child({ channelId: port.channelId });
    const device = validateAgentDevice(args[1]);
    if (!device.ok) {
      emit(log, 'warn', 'return.refused', 'service number call refused: bad agent device from the dialplan', { reason: device.reason, agent: describeInput(args[1]) });
      await port.hangup().catch(() => undefined);
      return;
    }
    const alog = log.child({ agent: device.value });
    let offered = 0;
    let reason = 'hung up';
    try {
      await port.setLanguage(chooseLanguage(port.language, this.opts.languages, this.opts.defaultLanguage));
      await port.answer();
      const list = orderReturn(await this.source.pendingOf(device.value));
      emit(alog, 'info', 'return.asked', 'the agent called the service number', { pending: list.length, first: list[0]?.id, firstProspect: list[0]?.prospect });
      reason = 'list done';
      for (const request of list.slice(0, this.opts.maxOffered ?? 20)) {
        if (port.gone) break;
        const outcome = await this.source.takeOver(request.id, port);
        if (outcome !== 'skipped') offered++;
        emit(alog, 'info', 'return.offered', 'a callback was offered on the agent\'s call', { requestId: request.id, prospect: request.prospect, outcome });
        if (outcome === 'gone' || outcome === 'connected') {
          reason = outcome === 'gone' ? 'hung up' : 'connected';
          break;
        }
      }
      if (!port.gone && reason === 'list done') await port.play([this.opts.prompts.noCallbacks]);
    } catch (err) {
      reason = 'failed';
      alog.log(port.gone ? 'debug' : 'warn', 'service number call failed', { error: err instanceof Error ? err.message : String(err) });
    }
    if (port.gone && reason === 'list done') reason = 'hung up';
    emit(alog, 'info', 'return.ended', 'the agent\'s call to the service number ended', { offered, reason });
    if (!port.gone) await port.hangup().catch(() => undefined);
  }
}
