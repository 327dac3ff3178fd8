/**
 * Keeps a flood of the same warning (bad connections, bad input) from flooding the log: the first
 * occurrence of a kind in a window is logged as is; the others in the window are counted and summed up in
 * one line when the window ends (`suppressed: N`, same `event`). A test (or a monitor) still sees the
 * first line of every kind and the count of the rest.
 */
import { EventCatalogue, EventName, emit } from './events';
import type { Logger } from './log';

/** Events a throttle may log: their fields accept the summary's `suppressed` and `windowMs`. */
type Throttled = { [E in EventName]: EventCatalogue[E] extends { suppressed?: number; windowMs?: number } ? E : never }[EventName];

export class LogThrottle {
  private readonly windows = new Map<string, { suppressed: number; timer: NodeJS.Timeout; event: Throttled; fields: Record<string, unknown>; message: string }>();

  constructor(
    private readonly log: () => Logger,
    private readonly windowMs = 10_000,
    private readonly maxKinds = 100,
  ) {}

  /** Logs at warn unless a line of this `kind` was logged within the window; then only counts it. */
  warn<E extends Throttled>(kind: string, event: E, message: string, fields: EventCatalogue[E]): void {
    const open = this.windows.get(kind);
    if (open) {
      open.suppressed += 1;
      return;
    }
    // Kinds are few (one per reason); a flood of distinct kinds is capped too and then only counted under one.
    if (this.windows.size >= this.maxKinds) return this.warn('(other)', event, message, fields);
    emit(this.log(), 'warn', event, message, fields);
    const timer = setTimeout(() => {
      const w = this.windows.get(kind);
      this.windows.delete(kind);
      if (w && w.suppressed > 0) this.summary(w);
    }, this.windowMs);
    timer.unref();
    this.windows.set(kind, { suppressed: 0, timer, event, fields: fields as Record<string, unknown>, message });
  }

  /** Logs the pending summaries now and stops the timers. */
  flush(): void {
    for (const [kind, w] of this.windows) {
      clearTimeout(w.timer);
      this.windows.delete(kind);
      if (w.suppressed > 0) this.summary(w);
    }
  }

  private summary(w: { suppressed: number; event: Throttled; fields: Record<string, unknown>; message: string }): void {
    emit(this.log(), 'warn', w.event, `${w.message} (repeated)`, { ...w.fields, suppressed: w.suppressed, windowMs: this.windowMs } as never);
  }
}
