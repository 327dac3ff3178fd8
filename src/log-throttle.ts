/**
 * Keeps a flood of the same warning (bad connections, bad input) from flooding the log: the first
 * occurrence of a kind in a window is logged as is; the others in the window are counted and summed up in
 * one line when the window ends (`suppressed: N`, same `event`). A test (or a monitor) still sees the
 * first line of every kind and the count of the rest.
 */
import type { Logger } from './log';

export class LogThrottle {
  private readonly windows = new Map<string, { suppressed: number; timer: NodeJS.Timeout; fields: Record<string, unknown>; message: string }>();

  constructor(
    private readonly log: () => Logger,
    private readonly windowMs = 10_000,
    private readonly maxKinds = 100,
  ) {}

  /** Logs at warn unless a line of this `kind` was logged within the window; then only counts it. */
  warn(kind: string, message: string, fields: Record<string, unknown> = {}): void {
    const open = this.windows.get(kind);
    if (open) {
      open.suppressed += 1;
      return;
    }
    // Kinds are few (one per reason); a flood of distinct kinds is capped too and then only counted under one.
    if (this.windows.size >= this.maxKinds) return this.warn('(other)', message, fields);
    this.log().warn(message, fields);
    const timer = setTimeout(() => {
      const w = this.windows.get(kind);
      this.windows.delete(kind);
      if (w && w.suppressed > 0) this.log().warn(`${w.message} (repeated)`, { ...w.fields, suppressed: w.suppressed, windowMs: this.windowMs });
    }, this.windowMs);
    timer.unref();
    this.windows.set(kind, { suppressed: 0, timer, fields, message });
  }

  /** Logs the pending summaries now and stops the timers. */
  flush(): void {
    for (const [kind, w] of this.windows) {
      clearTimeout(w.timer);
      this.windows.delete(kind);
      if (w.suppressed > 0) this.log().warn(`${w.message} (repeated)`, { ...w.fields, suppressed: w.suppressed, windowMs: this.windowMs });
    }
  }
}
