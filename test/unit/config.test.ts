import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Config, ConfigError, loadConfig, maskSecrets } from '../../src/config/load';
import { Field, schema } from '../../src/config/schema';

function file(content: unknown): string {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-cfg-')), 'config.json');
  fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults, the file, then the environment', () => {
    const cfg = loadConfig({
      file: file({ ari: { password: 'from-file', url: 'http://pbx:8088/' }, offer: { keyTimeout: '8s' } }),
      env: { CC_ARI_PASSWORD: 'from-env', CC_LOG_LEVEL: 'debug' },
    });
    expect(cfg.ari).toEqual({ url: 'http://pbx:8088', username: 'considerate', password: 'from-env', app: 'considerate-callback', reconnectMaxMs: 10000, leaseTtlMs: 15000, restOverWebSocket: true, batchRequests: false });
    expect(cfg.offer.keyTimeoutMs).toBe(8000);
    expect(cfg.offer.closingTimeoutMs).toBe(15000);
    expect(cfg.log.level).toBe('debug');
    expect(cfg.prompts.offer).toBe('sound:cc-offer');
  });

  it('command-line overrides win over everything', () => {
    const cfg = loadConfig({ env: { CC_ARI_PASSWORD: 'x', CC_LOG_LEVEL: 'warn' }, overrides: { 'log.level': 'error' } });
    expect(cfg.log.level).toBe('error');
  });

  it('names every wrong key, type and value', () => {
    const p = problems(() =>
      loadConfig({
        file: file({ ari: { pasword: 'x', url: 'ftp://x' }, offer: { keyTimeout: '6 seconds', maxPendingPerAgent: 0 }, log: { level: 'loud' } }),
        env: {},
      }),
    );
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^ari\.pasword: unknown key \(known in this section: .*ari\.password/),
        'ari.url: expected an http:// or https:// URL, got "ftp://x"',
        'ari.password: required (set it in the file or with CC_ARI_PASSWORD)',
        'offer.keyTimeout: expected a duration such as "30s", "5m" or "1h30m", got "6 seconds"',
        'offer.maxPendingPerAgent: expected a whole number from 1 to 1000, got 0',
        'log.level: expected one of error, warn, info, debug, got "loud"',
      ]),
    );
  });

  it('refuses a broken file with the parser\'s reason', () => {
    expect(problems(() => loadConfig({ file: file('{ "ari": { "password": "x", } '), env: {} }))[0]).toMatch(/is not valid JSON/);
    expect(problems(() => loadConfig({ file: file('[1,2]'), env: {} }))[0]).toMatch(/must contain a JSON object/);
    expect(problems(() => loadConfig({ file: '/nonexistent/cc.json', env: {} }))[0]).toMatch(/cannot read \/nonexistent\/cc.json/);
  });

  it('reads numbers and lists from environment text, and checks cross-field rules', () => {
    expect(problems(() => loadConfig({ env: { CC_ARI_PASSWORD: 'x' }, overrides: { 'numbers.minDigits': '9', 'numbers.maxDigits': '4' } }))).toEqual([
      'numbers.minDigits: must not be larger than numbers.maxDigits',
    ]);
    const cfg = loadConfig({ env: { CC_ARI_PASSWORD: 'x' }, overrides: { 'offer.languages': 'en, fr', 'offer.defaultLanguage': 'fr' } });
    expect(cfg.offer.languages).toEqual(['en', 'fr']);
  });

  it('masks secrets for display', () => {
    const cfg = loadConfig({ env: { CC_ARI_PASSWORD: 'p@ss:w/rd+%' } });
    expect(JSON.stringify(maskSecrets(cfg))).not.toContain('p@ss');
    expect(cfg.ari.password).toBe('p@ss:w/rd+%');
  });

  it('partial loading (list, show) does not need the ARI password', () => {
    expect(loadConfig({ env: {}, partial: true }).store.path).toBe('./data/callbacks.db');
  });
});

describe('the Config object comes from the schema', () => {
  it('every key lands at its `at` path with its parsed value, and nothing else is there', () => {
    const cfg = loadConfig({ env: { CC_ARI_PASSWORD: 'x' } }) as unknown as Record<string, unknown>;
    const leaves = new Set<string>();
    const walk = (v: unknown, p: string) => {
      if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RegExp) && !(p === 'policy.callingHours.windows') && !(p === 'zones.overrides') && !(p === 'policy.recallLabel.prefixes') && !(p === 'profiles')) {
        for (const [k, x] of Object.entries(v)) walk(x, p ? `${p}.${k}` : k);
      } else leaves.add(p);
    };
    walk(cfg, '');
    const paths = Object.entries(schema as Record<string, Field>).map(([key, f]) => f.at ?? key);
    // policy.openingHorizonDays is the policy's own constant, not a configuration key; the label's international
    // prefix is zones.internationalPrefix (callingHours.internationalPrefix) again, handed to the label's rule.
    expect([...leaves].sort()).toEqual([...paths, 'policy.openingHorizonDays', 'policy.recallLabel.internationalPrefix'].sort());
    expect(cfg.ari).toMatchObject({ reconnectMaxMs: 10_000 });
    expect((cfg.pending as { prompts: unknown }).prompts).toEqual({ count: 'sound:cc-pending-count', menu: 'sound:cc-pending-menu' });
  });

  it('the Config type follows the schema (checked by the compiler)', () => {
    const cfg: Config = loadConfig({ env: { CC_ARI_PASSWORD: 'x' } });
    const ms: number = cfg.policy.graceMs;
    const level: 'error' | 'warn' | 'info' | 'debug' = cfg.log.level;
    const rule: RegExp | undefined = cfg.prospects.internal[0]?.pattern;
    // @ts-expect-error: no such key in the schema
    expect(cfg.ari.nope).toBeUndefined();
    // @ts-expect-error: agi.port is a number
    const port: string = cfg.agi.port;
    expect([ms, level, rule, typeof port]).toEqual([300_000, 'info', undefined, 'number']);
  });
});

describe("the prospect's clock keys", () => {
  const env = { CC_ARI_PASSWORD: 'x' };
  it('zone rules land under zones, the fallback stays callingHours.timeZone', () => {
    const cfg = loadConfig({ env, overrides: { 'callingHours.zoneOverrides': { '+1808': 'Pacific/Honolulu' }, 'callingHours.internationalPrefix': '011' } });
    expect(cfg.zones).toEqual({ fromNumber: true, overrides: { '+1808': 'Pacific/Honolulu' }, internationalPrefix: '011' });
    expect(cfg.policy).toMatchObject({ afterHours: 'carry-over', carryOverDays: 1 });
  });

  it('a bad override names its entry; a bad international prefix, after-hours choice or carry-over is refused', () => {
    expect(problems(() => loadConfig({ env, overrides: { 'callingHours.zoneOverrides': { '+44': 'Mars/Base' } } }))).toEqual([
      'callingHours.zoneOverrides.+44: unknown time zone "Mars/Base"',
    ]);
    expect(problems(() => loadConfig({ env, overrides: { 'callingHours.zoneOverrides': ['+44'] } }))[0]).toMatch(/^callingHours\.zoneOverrides: expected an object of prefix/);
    expect(problems(() => loadConfig({ env, overrides: { 'callingHours.internationalPrefix': '0a' } }))[0]).toMatch(/^callingHours\.internationalPrefix: expected digits/);
    expect(problems(() => loadConfig({ env, overrides: { 'policy.afterHours': 'maybe' } }))[0]).toMatch(/^policy\.afterHours: expected one of carry-over, decline/);
    expect(problems(() => loadConfig({ env, overrides: { 'policy.carryOverDays': 0 } }))[0]).toMatch(/^policy\.carryOverDays: expected a whole number from 1 to 14/);
    expect(problems(() => loadConfig({ env, overrides: { 'prompts.queue': 'sound:cc-queue-${position} x' } }))[0]).toMatch(/^prompts\.queue: expected an ARI media URI/);
  });
});
