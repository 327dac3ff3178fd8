/**
 * The prospect's own clock: which IANA time zone a prospect number's calling hours are read in. Pure: the
 * libphonenumber lookup (an I/O-bound library call) is done by the shell (src/zones/prospect-zones.ts) and its answer
 * passed in.
 *
 * Order: an admin override by prefix (longest match wins; prefixes are written as the number is dialled, e.g.
 * "+1808" or "0049", or in E.164 "+49…"); then the number's own zone from the libphonenumber data when the number
 * is international ("+…" or the international prefix) and the data name exactly one zone (country, and area
 * code where a country spans zones); otherwise the configured calling-hours zone (national and internal numbers,
 * unknown or ambiguous ranges such as a US toll-free number that covers every North American zone).
 */
import type { ZoneSource } from './policy';

export interface ZoneRules {
  /** The configured calling-hours zone: the fallback. */
  fallback: string;
  /** Prefix → IANA zone, e.g. { "+1808": "Pacific/Honolulu" }. */
  overrides: Readonly<Record<string, string>>;
  /** Dialled before a country code instead of '+', e.g. "00" (Europe) or "011" (North America); "" = none. */
  internationalPrefix: string;
  /** Look the number's zone up in the libphonenumber data (false: overrides and fallback only). */
  fromNumber: boolean;
}

export interface ZoneChoice {
  timeZone: string;
  source: ZoneSource;
  /** Human note for logs, `show` and `explain`, e.g. 'from +1 212 (America/New_York)' or 'national number'. */
  note: string;
}

/** '+12125551234' for '+12125551234' and (prefix '00') '0012125551234'; null for national and internal numbers. */
export function toE164(number: string, internationalPrefix: string): string | null {
  if (/^\+[0-9]{4,}$/.test(number)) return number;
  if (internationalPrefix !== '' && number.startsWith(internationalPrefix) && /^[0-9]+$/.test(number)) {
    const rest = number.slice(internationalPrefix.length);
    return rest.length >= 4 && !rest.startsWith('0') ? `+${rest}` : null;
  }
  return null;
}

/** The override for a number: the longest prefix that matches the number as dialled or its E.164 form. */
export function overrideFor(number: string, e164: string | null, overrides: Readonly<Record<string, string>>): { prefix: string; zone: string } | null {
  let best: { prefix: string; zone: string } | null = null;
  for (const [prefix, zone] of Object.entries(overrides)) {
    const hit = number.startsWith(prefix) || (e164 !== null && e164.startsWith(prefix));
    if (hit && (best === null || prefix.length > best.prefix.length)) best = { prefix, zone };
  }
  return best;
}

/**
 * The zone for a number. `lookup` is the libphonenumber answer for its E.164 form (the zones of the longest
 * matching prefix, or null when unknown); it is only consulted for international numbers without an override.
 */
export function chooseZone(number: string, rules: ZoneRules, lookup: readonly string[] | null | undefined): ZoneChoice {
  const e164 = toE164(number, rules.internationalPrefix);
  const o = overrideFor(number, e164, rules.overrides);
  if (o) return { timeZone: o.zone, source: 'override', note: `override for prefix ${o.prefix}` };
  if (e164 === null) return { timeZone: rules.fallback, source: 'default', note: 'national or internal number' };
  if (!rules.fromNumber) return { timeZone: rules.fallback, source: 'default', note: 'zones from numbers switched off' };
  const zones = (lookup ?? []).filter((z) => isTimeZone(z));
  if (zones.length === 1) return { timeZone: zones[0], source: 'number', note: `from the number ${e164}` };
  if (zones.length === 0) return { timeZone: rules.fallback, source: 'default', note: `no zone known for ${e164}` };
  return { timeZone: rules.fallback, source: 'default', note: `${e164} spans ${zones.length} zones (add an override by prefix)` };
}

/** Problems with the override table, naming the entry (empty when valid). */
export function validateZoneOverrides(value: unknown, key = 'callingHours.zoneOverrides'): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [`${key}: expected an object of prefix → time zone, e.g. {"+1808": "Pacific/Honolulu"}`];
  }
  const problems: string[] = [];
  for (const [prefix, zone] of Object.entries(value as Record<string, unknown>)) {
    if (!/^\+?[0-9]{1,15}$/.test(prefix)) problems.push(`${key}: prefix ${JSON.stringify(prefix)} must be digits with an optional leading +`);
    if (typeof zone !== 'string' || !isTimeZone(zone)) problems.push(`${key}.${prefix}: unknown time zone ${JSON.stringify(zone)}`);
  }
  return problems;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
