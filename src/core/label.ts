/**
 * The recall's label on the agent's phone: a caller-ID name that fits a desk phone's display.
 *
 * Many desk phones show about 16 characters per line; `Callback: 004930123456` (22) is cut to
 * `Callback: 004930` and the one part that tells numbers apart is gone. So the label is built from
 * - the prospect's number in the form people read it: national format for numbers of the home country
 *   (`004930123456` → `030 123456`), international format for others (`+1 212 555 1234`), as dialled
 *   for internal numbers (`2995`);
 * - a prefix per language that admins choose (`recall.labelPrefix`), a list from long to short: the
 *   longest one that leaves the whole number on the display is used (`Callback: 2995`, `CB 030 123456`);
 * - the template (`recall.callerIdName`, `${prefix}`, `${number}`; `${prospect}` is the number as stored).
 * The number is never cut while it fits the display on its own; only the words around it are.
 * Pure: libphonenumber-js formats from data in memory.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

export interface RecallLabelConfig {
  /** Prefixes per language, long to short (`{"en": ["Callback: ", "CB "]}`); `*` for any other language. */
  prefixes: Readonly<Record<string, readonly string[]>>;
  /** Characters the agents' phones show on one line. */
  width: number;
  /** The home country (ISO 3166 alpha-2): its numbers are shown in national format. */
  country: string;
  /** The international dialling prefix (`00`): `0049…` is an international number. */
  internationalPrefix: string;
}

export const DEFAULT_RECALL_LABEL: RecallLabelConfig = {
  prefixes: { en: ['Callback: ', 'CB '], de: ['Rückruf: ', 'RR '] },
  width: 16,
  country: 'DE',
  internationalPrefix: '00',
};

/** A 12-digit number, the length `config check` makes sure every prefix list leaves room for. */
export const CHECK_DIGITS = 12;

/** The number as people read it, with spaces between its parts, and the same without spaces. */
export function displayNumber(prospect: string, cfg: Pick<RecallLabelConfig, 'country' | 'internationalPrefix'>): { spaced: string; compact: string } {
  let e164: string | null = null;
  if (prospect.startsWith('+')) e164 = prospect;
  else if (cfg.internationalPrefix !== '' && prospect.startsWith(cfg.internationalPrefix)) e164 = `+${prospect.slice(cfg.internationalPrefix.length)}`;
  let spaced = prospect;
  try {
    if (e164) {
      const p = parsePhoneNumberFromString(e164);
      if (p) spaced = p.country === cfg.country.toUpperCase() ? p.formatNational() : p.formatInternational();
    } else if (prospect.length >= 6 && prospect.startsWith('0')) {
      const p = parsePhoneNumberFromString(prospect, cfg.country.toUpperCase() as CountryCode);
      if (p?.isPossible()) spaced = p.formatNational();
    }
  } catch {
    spaced = prospect;
  }
  // libphonenumber may add brackets or dashes in some countries: keep digits, +, and single spaces.
  spaced = spaced.replace(/[^0-9+ ]/g, ' ').replace(/ +/g, ' ').trim();
  if (spaced.replace(/ /g, '') === '') spaced = prospect;
  return { spaced, compact: spaced.replace(/ /g, '') };
}

/** The prefixes for a language: its own, else `*`, else `en`, else none. */
export function prefixesFor(cfg: Pick<RecallLabelConfig, 'prefixes'>, language: string): readonly string[] {
  const list = cfg.prefixes[language] ?? cfg.prefixes['*'] ?? cfg.prefixes.en ?? [''];
  return list.length > 0 ? list : [''];
}

function render(template: string, prefix: string, number: string, prospect: string): string {
  return template.split('${prefix}').join(prefix).split('${number}').join(number).split('${prospect}').join(prospect);
}

/** The caller-ID name of a recall: see the file comment. At most 60 characters in any case. */
export function recallLabel(template: string, cfg: RecallLabelConfig, prospect: string, language: string): string {
  const n = displayNumber(prospect, cfg);
  const prefixes = prefixesFor(cfg, language);
  const shows = template.includes('${number}') ? 'number' : template.includes('${prospect}') ? 'prospect' : 'none';
  for (const prefix of prefixes) {
    for (const form of shows === 'number' ? [n.spaced, n.compact] : [n.spaced]) {
      const label = render(template, prefix, form, prospect);
      if (label.length <= cfg.width) return label;
    }
  }
  // Nothing fits: the shortest prefix, the compact number, and the words around the number cut.
  const prefix = prefixes[prefixes.length - 1];
  const number = shows === 'prospect' ? prospect : n.compact;
  const MARK = '\u0000';
  const marked = shows === 'none' ? render(template, prefix, '', prospect) : render(template.split('${prospect}').join(MARK).split('${number}').join(MARK), prefix, MARK, MARK);
  if (shows === 'none') return marked.slice(0, Math.min(cfg.width, 60));
  if (number.length > cfg.width) return `…${number.slice(-(cfg.width - 1))}`;
  const at = marked.indexOf(MARK);
  const before = marked.slice(0, at);
  const after = marked.slice(at + 1).split(MARK).join(number);
  const room = cfg.width - number.length;
  const keepAfter = after.slice(0, Math.max(0, room - Math.min(before.length, room)));
  const keepBefore = before.slice(0, room - keepAfter.length);
  return (keepBefore + number + keepAfter).slice(0, 60);
}

/**
 * The label with the prospect's name (from the CRM look-up) instead of the number: the template with `${number}`
 * (and `${prospect}`) replaced by the name, with the longest prefix that fits; null when even the shortest prefix
 * leaves no room for the whole name, so the caller falls back to the number. A name is never cut: a cut name
 * ("Callback: Dr. Hans-Pe") could be the wrong person, the number never is.
 */
export function namedRecallLabel(template: string, cfg: Pick<RecallLabelConfig, 'prefixes' | 'width'>, name: string, language: string): string | null {
  const clean = name.replace(/["<>\\\p{Cc}]/gu, '').replace(/\s+/g, ' ').trim();
  if (clean === '' || (!template.includes('${number}') && !template.includes('${prospect}'))) return null;
  for (const prefix of prefixesFor(cfg, language)) {
    const label = render(template, prefix, clean, clean);
    if (label.length <= cfg.width) return label;
  }
  return null;
}

/**
 * What `config check` says about a label configuration: the template shows the number, and with each
 * language's shortest prefix a {@link CHECK_DIGITS}-digit number still fits the declared width.
 */
export function labelProblems(template: string, cfg: RecallLabelConfig): string[] {
  const problems: string[] = [];
  if (!template.includes('${number}') && !template.includes('${prospect}')) {
    problems.push('recall.callerIdName: expected a text containing ${number} (or ${prospect}), e.g. "${prefix}${number}"');
    return problems;
  }
  const sample = '0'.repeat(CHECK_DIGITS);
  for (const [language, list] of Object.entries(cfg.prefixes)) {
    const shortest = list.length > 0 ? list[list.length - 1] : '';
    const label = render(template, shortest, sample, sample);
    if (label.length > cfg.width) {
      problems.push(
        `recall.labelPrefix: with its shortest prefix "${shortest}" (${language}) and recall.callerIdName "${template}", a ${CHECK_DIGITS}-digit number needs ${label.length} characters, more than recall.displayWidth (${cfg.width}): add a shorter prefix`,
      );
    }
  }
  return problems;
}

/**
 * The number as it is read out to the agent, in groups the way people say numbers: the national format's
 * parts for home numbers (`030 123 456`), the international prefix and the international format's parts for
 * others (`00 1 212 555 1234`), parts longer than four digits in threes (the last group at least two).
 */
export function spokenGroups(prospect: string, cfg: Pick<RecallLabelConfig, 'country' | 'internationalPrefix'>): string[] {
  const spaced = displayNumber(prospect, cfg).spaced;
  const parts = spaced.split(' ').filter((p) => p !== '');
  const groups: string[] = [];
  for (const part of parts) {
    const digits = part.startsWith('+') ? part.slice(1) : part;
    if (part.startsWith('+')) groups.push(cfg.internationalPrefix || '00');
    if (digits.length <= 4) {
      if (digits !== '') groups.push(digits);
      continue;
    }
    let rest = digits;
    while (rest.length > 4) {
      groups.push(rest.slice(0, 3));
      rest = rest.slice(3);
    }
    groups.push(rest);
  }
  return groups.filter((g) => /^[0-9]+$/.test(g));
}
