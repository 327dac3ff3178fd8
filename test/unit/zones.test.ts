/** The prospect's own clock: the zone of a number (pure choice, and the libphonenumber-backed lookup). */
import { chooseZone, overrideFor, toE164, validateZoneOverrides, type ZoneRules } from '../../src/core/zones';
import { ProspectZones } from '../../src/zones/prospect-zones';

const rules: ZoneRules = { fallback: 'Europe/Berlin', overrides: {}, internationalPrefix: '00', fromNumber: true };

describe('toE164', () => {
  it.each([
    ['+12125551234', '+12125551234'],
    ['0012125551234', '+12125551234'],
    ['00441632960000', '+441632960000'],
    ['0301234567', null], // national
    ['2001', null], // internal
    ['000123', null], // 00 followed by 0: not a country code
    ['+12', null], // too short to be a number
  ])('%s → %s', (n, e) => expect(toE164(n, '00')).toBe(e));

  it('honours another international prefix, or none', () => {
    expect(toE164('01112125551234', '011')).toBe('+12125551234');
    expect(toE164('0012125551234', '')).toBeNull();
  });
});

describe('chooseZone', () => {
  it('one zone from the data: the prospect is called in it', () => {
    expect(chooseZone('+12125551234', rules, ['America/New_York'])).toEqual({ timeZone: 'America/New_York', source: 'number', note: 'from the number +12125551234' });
  });

  it('national and internal numbers: the configured zone, without asking the data', () => {
    expect(chooseZone('0301234567', rules, ['Asia/Tokyo'])).toMatchObject({ timeZone: 'Europe/Berlin', source: 'default', note: 'national or internal number' });
    expect(chooseZone('2001', rules, null)).toMatchObject({ timeZone: 'Europe/Berlin', source: 'default' });
  });

  it('unknown or ambiguous ranges: the configured zone, and says why', () => {
    expect(chooseZone('+18005551234', rules, ['America/New_York', 'America/Chicago'])).toMatchObject({
      timeZone: 'Europe/Berlin',
      source: 'default',
      note: '+18005551234 spans 2 zones (add an override by prefix)',
    });
    expect(chooseZone('+99912345', rules, null)).toMatchObject({ timeZone: 'Europe/Berlin', note: 'no zone known for +99912345' });
    expect(chooseZone('+12125551234', rules, ['Not/AZone'])).toMatchObject({ timeZone: 'Europe/Berlin', source: 'default' });
  });

  it('admin overrides by prefix win, longest first, as dialled or in E.164', () => {
    const r = { ...rules, overrides: { '+1': 'America/Chicago', '+1808': 'Pacific/Honolulu', '030': 'Europe/Berlin', '0033': 'Europe/Paris' } };
    expect(chooseZone('+18085551234', r, ['Pacific/Honolulu'])).toMatchObject({ timeZone: 'Pacific/Honolulu', source: 'override', note: 'override for prefix +1808' });
    expect(chooseZone('0018005551234', r, ['America/New_York', 'America/Chicago'])).toMatchObject({ timeZone: 'America/Chicago', source: 'override' });
    expect(chooseZone('0033123456789', r, null)).toMatchObject({ timeZone: 'Europe/Paris', source: 'override' });
    expect(overrideFor('0301234', null, r.overrides)).toEqual({ prefix: '030', zone: 'Europe/Berlin' });
  });

  it('zoneFromNumber off: overrides and the configured zone only', () => {
    expect(chooseZone('+12125551234', { ...rules, fromNumber: false }, ['America/New_York'])).toMatchObject({ timeZone: 'Europe/Berlin', source: 'default' });
  });
});

describe('validateZoneOverrides', () => {
  it('names each bad entry', () => {
    expect(validateZoneOverrides({ '+1808': 'Pacific/Honolulu' })).toEqual([]);
    expect(validateZoneOverrides({ '+1x': 'Pacific/Honolulu', '+44': 'Mars/Base' })).toEqual([
      'callingHours.zoneOverrides: prefix "+1x" must be digits with an optional leading +',
      'callingHours.zoneOverrides.+44: unknown time zone "Mars/Base"',
    ]);
    expect(validateZoneOverrides(['x'])).toHaveLength(1);
  });
});

describe('ProspectZones (libphonenumber data)', () => {
  const zones = new ProspectZones(rules);
  it.each([
    ['+12125551234', 'America/New_York', 'number'], // New York, area code 212
    ['0013105551234', 'America/Los_Angeles', 'number'], // Los Angeles, area code 310, dialled with 00
    ['+81312345678', 'Asia/Tokyo', 'number'],
    ['+61212345678', 'Australia/Sydney', 'number'],
    ['+4930123456', 'Europe/Berlin', 'number'],
    ['+18005551234', 'Europe/Berlin', 'default'], // toll-free: every North American zone
    ['0301234567', 'Europe/Berlin', 'default'],
    ['2001', 'Europe/Berlin', 'default'],
  ])('%s → %s (%s)', async (n, zone, source) => {
    await expect(zones.resolve(n)).resolves.toMatchObject({ timeZone: zone, source });
  });

  it('answers again from its cache', async () => {
    const a = await zones.resolve('+12125551234');
    expect(await zones.resolve('+12125551234')).toBe(a);
  });
});
