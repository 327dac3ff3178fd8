/**
 * Validation of everything that reaches us from the dialplan, the CLI or a config file and may end up
 * in a dial string. Pure functions; they return a result instead of throwing so that callers can log a
 * precise reason and end the call gracefully.
 *
 * Dial strings are a small language of their own: `&` separates devices, `,` separates Dial()
 * arguments, `@` selects a context, `/` a technology. A prospect number therefore may only contain
 * digits with an optional leading `+`, and an agent device must be a plain `TECH/resource`.
 */

export type Validation<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface NumberRules {
  /** Fewest digits a prospect number may have (internal extensions can be short). */
  minDigits: number;
  /** Most digits; E.164 allows 15, trunk prefixes add a few. */
  maxDigits: number;
}

/** The defaults of `numbers.minDigits` / `numbers.maxDigits`. */
export const defaultNumberRules: NumberRules = { minDigits: 2, maxDigits: 20 };

/** The most digits any configuration may allow (`numbers.maxDigits` ≤ this); the policy's own sanity bound. */
export const MAX_NUMBER_DIGITS = 30;

/** Shows an untrusted string in a log line: quoted, control characters escaped, length capped. */
export function describeInput(input: unknown, max = 40): string {
  if (input === undefined) return '(missing)';
  if (input === null) return '(null)';
  const text = String(input);
  const cut = text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
  return JSON.stringify(cut);
}

/**
 * The prospect-number rule, written once: digits with an optional leading `+`, `minDigits` to `maxDigits`
 * digits, surrounding blanks dropped. The offer (both entries), the policy's `newRequest`, the configuration's
 * bounds and `explain` all use this function.
 */
export function validateProspectNumber(input: unknown, rules: NumberRules = defaultNumberRules): Validation<string> {
  if (typeof input !== 'string' || input.trim() === '') {
    return { ok: false, reason: 'prospect number is empty' };
  }
  const raw = input.trim();
  if (!/^\+?[0-9]+$/.test(raw)) {
    const bad = [...raw].find((c, i) => !(/[0-9]/.test(c) || (c === '+' && i === 0)));
    return {
      ok: false,
      reason: `prospect number ${describeInput(raw)} contains ${describeInput(bad)}; only digits and a leading + are allowed`,
    };
  }
  const digits = raw.replace(/^\+/, '').length;
  if (digits < rules.minDigits || digits > rules.maxDigits) {
    return {
      ok: false,
      reason: `prospect number ${describeInput(raw)} has ${digits} digits; expected ${rules.minDigits} to ${rules.maxDigits}`,
    };
  }
  return { ok: true, value: raw };
}

const TECH = /^(PJSIP|SIP|IAX2|DAHDI|Local)$/;
const RESOURCE = /^[A-Za-z0-9+][A-Za-z0-9_.+-]{0,63}$/;
const CONTEXT = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * An agent device as Asterisk names it: `PJSIP/1001`, or `Local/1001@agents` for setups that ring
 * agents through the dialplan. Anything else (a second device after `&`, Dial options after `,`,
 * whitespace) is refused.
 */
export function validateAgentDevice(input: unknown): Validation<string> {
  if (typeof input !== 'string' || input.trim() === '') {
    return { ok: false, reason: 'agent device is empty' };
  }
  const raw = input.trim();
  const slash = raw.indexOf('/');
  if (slash <= 0) return { ok: false, reason: `agent device ${describeInput(raw)} is not of the form TECH/resource` };
  const tech = raw.slice(0, slash);
  const rest = raw.slice(slash + 1);
  if (!TECH.test(tech)) {
    return { ok: false, reason: `agent device ${describeInput(raw)} uses unsupported technology ${describeInput(tech)}` };
  }
  const [resource, context, ...more] = rest.split('@');
  const contextOk = context === undefined ? true : tech === 'Local' && CONTEXT.test(context);
  if (more.length > 0 || !RESOURCE.test(resource) || !contextOk) {
    return { ok: false, reason: `agent device ${describeInput(raw)} contains characters not allowed in a device name` };
  }
  return { ok: true, value: raw };
}

/** A caller ID name as we store and show it: printable, no quotes or angle brackets, at most 40 chars. */
export function sanitizeCallerIdName(input: unknown): string {
  if (typeof input !== 'string') return '';
  return input
    .replace(/[\p{Cc}\p{Cf}"<>\\]/gu, '')
    .trim()
    .slice(0, 40);
}

/** A caller ID number: digits with an optional leading +, else empty. */
export function sanitizeCallerIdNumber(input: unknown): string {
  if (typeof input !== 'string') return '';
  const raw = input.trim();
  return /^\+?[0-9]{1,20}$/.test(raw) ? raw : '';
}

/** Language codes as Asterisk uses them (`en`, `de`, `en_GB`); anything else yields undefined. */
export function normalizeLanguage(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const raw = input.trim();
  return /^[a-z]{2,3}([_-][A-Za-z]{2})?$/.test(raw) ? raw : undefined;
}

/** Picks the prompt language: the channel's if we ship or were given prompts for it, else the fallback. */
export function chooseLanguage(channelLanguage: unknown, supported: readonly string[], fallback: string): string {
  const lang = normalizeLanguage(channelLanguage);
  if (!lang) return fallback;
  if (supported.includes(lang)) return lang;
  const base = lang.slice(0, 2);
  return supported.includes(base) ? base : fallback;
}

const STATE_DEVICE = /^(Custom|Stasis):[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/;

/**
 * A device whose state is only watched, never dialled (an internal prospect's line): a dialable device
 * as above, or a custom device state such as `Custom:prospect2995`.
 */
export function validateWatchDevice(input: unknown): Validation<string> {
  if (typeof input === 'string' && STATE_DEVICE.test(input.trim())) return { ok: true, value: input.trim() };
  const dialable = validateAgentDevice(input);
  return dialable.ok ? dialable : { ok: false, reason: dialable.reason.replace(/^agent device/, 'device') };
}
