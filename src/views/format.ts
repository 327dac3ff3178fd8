/** Times as the read models print them (CLI and web page alike). */
import { tz } from '@date-fns/tz';
import { format } from 'date-fns';

/** A local time in a zone: '2026-03-10 10:45:00'. */
export function localTime(timeZone: string, at: number, pattern = 'yyyy-MM-dd HH:mm:ss'): string {
  return format(at, pattern, { in: tz(timeZone) });
}

export function iso(at: number | null | undefined): string | null {
  return at === null || at === undefined ? null : new Date(at).toISOString();
}

/** "in 4m 10s" / "3m ago", rounded to seconds. */
export function relative(at: number, now: number): string {
  const s = Math.round((at - now) / 1000);
  const abs = Math.abs(s);
  const text =
    abs < 60 ? `${abs}s` : abs < 3600 ? `${Math.floor(abs / 60)}m${abs % 60 ? ` ${abs % 60}s` : ''}` : `${Math.floor(abs / 3600)}h ${Math.floor((abs % 3600) / 60)}m`;
  return s === 0 ? 'now' : s > 0 ? `in ${text}` : `${text} ago`;
}
