/**
 * The one secret mask. Logs (src/logging/log.ts), configuration errors (src/config/load.ts) and `config check`
 * (src/cli/config-cmd.ts) all print through it, so a secret is hidden the same way everywhere:
 *
 * - credentials inside a URL (`http://user:password@host` → `http://********@host`);
 * - secret-looking query parameters (`?api_key=…`, `token=`, `password=`, `secret=`, `sig=` …);
 * - the values of secret-named fields (`password`, `secret`, `token`, `apiKey`, …) in objects;
 * - the literal secrets handed over (ARI password, webhook secret), raw, URL-encoded and JSON-escaped.
 */

export const MASK = '********';

/** Field names whose string values are secrets wherever they appear. */
export const SECRET_KEY = /password|secret|token|api_?key|credential|authorization/i;

/** Query parameters whose values are secrets. */
const SECRET_PARAM = /^(?:api_?key|key|token|access_token|auth|authorization|password|passwd|pass|pwd|secret|sig|signature|credentials?)$/i;

/**
 * `scheme://user:password@host` and `scheme://token@host`: the whole user-info is masked, up to the last `@`
 * of the word (a password written unencoded may itself hold `@` and `/`; masking too much is the safe side).
 */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s"'<>]*@/gi;
/** `?name=value` / `&name=value` in a URL-ish text. */
const QUERY_PARAM = /([?&;])([^=&\s#"'<>]+)=([^&\s#"'<>]*)/g;

/** Masks URL credentials and secret query parameters in any text. */
export function maskUrls(text: string): string {
  // Most log values (ids, numbers, event names) hold neither `://` (URL_USERINFO) nor `=` (QUERY_PARAM): nothing
  // can match, so skip both regular expressions (they were a tenth of the service's logging time in the profile).
  if (!text.includes('=') && !text.includes('://')) return text;
  return text
    .replace(URL_USERINFO, `$1${MASK}@`)
    .replace(QUERY_PARAM, (whole, sep: string, name: string, value: string) => {
      let plain = name;
      try {
        plain = decodeURIComponent(name);
      } catch {
        // a malformed escape: judge the name as written
      }
      return SECRET_PARAM.test(plain) && value !== '' ? `${sep}${name}=${MASK}` : whole;
    });
}

/** Secrets shorter than this are not searched for in free text: masking "x" would garble every line. */
const MIN_LITERAL = 4;

/** The forms a literal secret may take in text: raw, URL-encoded, JSON-escaped. */
function forms(secrets: readonly string[]): string[] {
  const all = new Set<string>();
  for (const s of secrets) {
    if (typeof s !== 'string' || s.length < MIN_LITERAL) continue;
    all.add(s);
    all.add(encodeURIComponent(s));
    all.add(JSON.stringify(s).slice(1, -1));
  }
  // Longest first, so that a secret containing another is masked whole.
  return [...all].sort((a, b) => b.length - a.length);
}

export interface Masker {
  /** Any text: URL credentials, secret query parameters and the literal secrets masked. */
  text(text: string): string;
  /** Any value, deeply: strings as {@link text}, secret-named fields masked whole. */
  value<T>(value: T): T;
  /** One field of an object, as {@link value} would mask it inside `{ [key]: value }` (without building that object). */
  field<T>(key: string, value: T): T;
}

/** {@link SECRET_KEY}'s verdict per field name, remembered: a log line asks it for each of its fields. */
const secretKeys = new Map<string, boolean>();
function secretKey(key: string): boolean {
  let secret = secretKeys.get(key);
  if (secret === undefined) {
    secret = SECRET_KEY.test(key);
    if (secretKeys.size < 1000) secretKeys.set(key, secret);
  }
  return secret;
}

/** A mask that also hides the given literal secrets. */
export function masker(secrets: readonly string[] = []): Masker {
  const literal = forms(secrets);
  const text = (t: string): string => {
    let out = maskUrls(t);
    for (const f of literal) if (out.includes(f)) out = out.split(f).join(MASK);
    return out;
  };
  const deep = (value: unknown, key: string, depth: number): unknown => {
    if (typeof value === 'string') return value !== '' && secretKey(key) ? MASK : text(value);
    if (depth > 8 || value === null || typeof value !== 'object') return value;
    if (value instanceof RegExp) return value.source;
    if (value instanceof Error) return deep({ name: value.name, message: value.message, stack: value.stack }, key, depth + 1);
    if (Array.isArray(value)) return value.map((v) => deep(v, key, depth + 1));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v, k, depth + 1)]));
  };
  return { text, value: <T>(v: T) => deep(v, '', 0) as T, field: <T>(k: string, v: T) => deep(v, k, 1) as T };
}

/** Masks secrets in a value for display (no literal secrets known): secret-named fields and URL credentials. */
export function maskSecrets<T>(value: T): T {
  return masker().value(value);
}
