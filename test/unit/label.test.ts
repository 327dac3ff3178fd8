/**
 * The recall's label (src/core/label.ts): the whole number survives a 16-character display.
 */
import { DEFAULT_RECALL_LABEL, displayNumber, labelProblems, recallLabel, spokenGroups } from '../../src/core/label';
import { menuMedia } from '../../src/flows/recall';
import { loadConfig } from '../../src/config/load';

const T = '${prefix}${number}';

describe('displayNumber', () => {
  it.each([
    ['004930123456', '030 123456'],
    ['+4930123456', '030 123456'],
    ['030123456', '030 123456'],
    ['0012125551234', '+1 212 555 1234'],
    ['+441632960983', '+44 1632 960983'],
    ['2995', '2995'],
    ['1234567890123456789', '1234567890123456789'],
  ])('%s → %s', (input, spaced) => {
    const n = displayNumber(input, DEFAULT_RECALL_LABEL);
    expect(n.spaced).toBe(spaced);
    expect(n.compact).toBe(spaced.replace(/ /g, ''));
  });
});

describe('recallLabel (width 16)', () => {
  it.each([
    ['2995', 'en', 'Callback: 2995'],
    ['2995', 'de', 'Rückruf: 2995'],
    ['004930123456', 'en', 'CB 030 123456'],
    ['004930123456', 'de', 'RR 030 123456'],
    ['0049301234567890', 'en', 'CB 0301234567890'],
    ['0012125551234', 'en', 'CB +12125551234'],
    ['2995', 'fr', 'Callback: 2995'], // no prefixes for fr: English ones
  ])('%s (%s) → %s', (prospect, language, label) => {
    const got = recallLabel(T, DEFAULT_RECALL_LABEL, prospect, language);
    expect(got).toBe(label);
    expect(got.length).toBeLessThanOrEqual(16);
  });

  it('every number up to 16 digits stays whole on a 16-character display, in every language', () => {
    for (let digits = 3; digits <= 16; digits++) {
      for (const prospect of ['0'.repeat(1) + '3'.repeat(digits - 1), `00${'7'.repeat(Math.max(1, digits - 2))}`, '9'.repeat(digits)]) {
        for (const language of ['en', 'de', 'xx']) {
          const label = recallLabel(T, DEFAULT_RECALL_LABEL, prospect, language);
          expect(label.length).toBeLessThanOrEqual(16);
          const compact = displayNumber(prospect, DEFAULT_RECALL_LABEL).compact;
          if (compact.length <= 16) expect(label.replace(/ /g, '')).toContain(compact);
        }
      }
    }
  });

  it('a number longer than the display keeps its end, marked as cut', () => {
    expect(recallLabel(T, { ...DEFAULT_RECALL_LABEL, width: 10 }, '1234567890123', 'en')).toBe('…567890123');
  });

  it('a template whose words do not fit: the words are cut, never the number', () => {
    const label = recallLabel('Rückruf für ${number} bitte', { ...DEFAULT_RECALL_LABEL, prefixes: { en: [''] } }, '004930123456', 'en');
    expect(label).toHaveLength(16);
    expect(label).toContain('030123456');
  });

  it('the old template "Callback: ${prospect}" still works where it fits', () => {
    expect(recallLabel('Callback: ${prospect}', DEFAULT_RECALL_LABEL, '2995', 'en')).toBe('Callback: 2995');
  });
});

describe('config check: the template against the declared display width', () => {
  it('the defaults pass', () => {
    expect(labelProblems(T, DEFAULT_RECALL_LABEL)).toEqual([]);
  });

  it('a prefix that leaves no room for a 12-digit number is refused by the loader, naming the keys', () => {
    expect(() => loadConfig({ overrides: { 'recall.labelPrefix': '{"en": ["Callback: "]}' }, env: {}, partial: true })).toThrow(
      /recall\.labelPrefix: with its shortest prefix "Callback: " \(en\).*needs 22 characters, more than recall\.displayWidth \(16\)/,
    );
    // The same prefix with a wider display is fine.
    expect(() => loadConfig({ overrides: { 'recall.labelPrefix': '{"en": ["Callback: "]}', 'recall.displayWidth': '24' }, env: {}, partial: true })).not.toThrow();
  });

  it('bad label settings get a clear error', () => {
    expect(() => loadConfig({ overrides: { 'recall.displayWidth': '4' }, env: {}, partial: true })).toThrow(/recall\.displayWidth/);
    expect(() => loadConfig({ overrides: { 'recall.numberCountry': 'Germany' }, env: {}, partial: true })).toThrow(/recall\.numberCountry: expected a two-letter country code/);
    expect(() => loadConfig({ overrides: { 'recall.labelPrefix': '{"en": ["<b>"]}' }, env: {}, partial: true })).toThrow(/recall\.labelPrefix.*angle brackets/);
    expect(() => loadConfig({ overrides: { 'recall.callerIdName': 'Callback' }, env: {}, partial: true })).toThrow(/recall\.callerIdName: expected a text containing \$\{number\}/);
  });
});

describe('spokenGroups: the number read out the way people say it', () => {
  it.each([
    ['2995', ['2995']],
    ['12345678', ['123', '456', '78']],
    ['004930123456', ['030', '123', '456']],
    ['0049301234567', ['030', '123', '4567']],
    ['0012125551234', ['00', '1', '212', '555', '1234']],
  ])('%s → %j', (prospect, groups) => {
    expect(spokenGroups(prospect, DEFAULT_RECALL_LABEL)).toEqual(groups);
  });
});

describe('menuMedia: what the agent hears first', () => {
  const prompts = { recallIntro: 'sound:cc-recall-intro', recallMenu: 'sound:cc-recall-menu', recallNumber: 'sound:cc-recall-number' };
  it.each(['2995', '12345678', '004930123456'])('%s: "Callback." and the menu come before any digit, whatever the length', (prospect) => {
    const media = menuMedia(prompts, prospect);
    expect(media.slice(0, 2)).toEqual(['sound:cc-recall-intro', 'sound:cc-recall-menu']);
    const digits = media.filter((m) => m.startsWith('digits:'));
    // The number follows and repeats: every digit twice.
    expect(digits.join('').replace(/digits:/g, '')).toBe(spokenGroups(prospect, DEFAULT_RECALL_LABEL).join('').repeat(2));
  });
});
