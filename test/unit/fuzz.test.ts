/**
 * Hostile input through every pure entry that feeds a dial string: random and crafted strings
 * (long, unicode, `&`, `,`, `@`, `/`, newlines, NUL) never crash, and whatever is accepted is plain.
 */
import { parseOfferArgs } from '../../src/core/offer';
import { defaultNumberRules, describeInput, validateAgentDevice, validateProspectNumber, validateWatchDevice } from '../../src/core/validate';
import { ConfigError, loadConfig } from '../../src/config/load';
import { mulberry32 as rng } from '../support/rng';


const ALPHABET = ['0', '1', '9', '+', '&', ',', '@', '/', '\n', '\r', '\0', ' ', ';', '|', '$', '{', '}', '(', ')', '"', "'", '\\', 'A', 'z', '٣', '２', 'é', '😀', '\u202e', '-', '.', '_', ':', '%'];

function randomString(r: () => number): string {
  const len = Math.floor(r() * r() * 300);
  let s = '';
  for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

const CRAFTED = [
  '123&PJSIP/evil',
  '123@other',
  '2001,,tT',
  '2001\nPJSIP/evil',
  '${SHELL(rm -rf /)}',
  '$(reboot)',
  '+',
  '++49',
  '0'.repeat(21),
  '9'.repeat(10_000),
  '２００１',
  '٢٠٠١',
  '2001\u0000',
  'PJSIP/1001&PJSIP/1002',
  'Local/1001@agents/n',
  'PJSIP/1001)',
];

const SEEDS = Array.from({ length: 20 }, (_, i) => 1000 + i);

describe('fuzz: validation never crashes and accepts only plain values', () => {
  it.each(SEEDS)('seed %i: 500 random strings', (seed) => {
    const r = rng(seed);
    for (let i = 0; i < 500; i++) {
      const s = randomString(r);
      const n = validateProspectNumber(s);
      if (n.ok) expect(n.value).toMatch(/^\+?[0-9]{2,20}$/);
      else expect(n.reason.length).toBeLessThan(300);
      const d = validateAgentDevice(s);
      if (d.ok) expect(d.value).toMatch(/^(PJSIP|SIP|IAX2|DAHDI|Local)\/[A-Za-z0-9+][A-Za-z0-9_.+-]*(@[A-Za-z0-9][A-Za-z0-9_-]*)?$/);
      const w = validateWatchDevice(s);
      if (w.ok) expect(w.value).not.toMatch(/[&,\s/]{2}|[&,\n]/);
      const args = parseOfferArgs(['offer', s, randomString(r), randomString(r)], defaultNumberRules);
      if (args.ok) expect(args.value.prospect).toMatch(/^\+?[0-9]+$/);
      expect(() => describeInput(s)).not.toThrow();
    }
  });

  it.each(CRAFTED)('crafted %j is refused as a prospect number with a readable reason', (s) => {
    const n = validateProspectNumber(s);
    expect(n.ok).toBe(false);
    if (!n.ok) expect(n.reason).toMatch(/prospect number/);
  });

  it.each(CRAFTED)('crafted %j never becomes an agent device with more than one device or options', (s) => {
    const d = validateAgentDevice(s);
    if (d.ok) expect(d.value).not.toMatch(/[&,\n)]/);
  });

  it.each(CRAFTED.filter((s) => !s.includes('${number}')))('a config device template %j that is not a plain device is refused', (s) => {
    const template = `${s}\${number}`;
    let problems: string[] = [];
    try {
      loadConfig({ env: { CC_ARI_PASSWORD: 'x' }, overrides: { 'prospects.internal': JSON.stringify([{ pattern: '^2', device: template }]) } });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    const sample = template.split('${number}').join('2001');
    if (!validateWatchDevice(sample).ok) expect(problems.join('\n')).toMatch(/prospects\.internal\[0\]\.device/);
  });
});
