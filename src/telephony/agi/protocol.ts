/**
 * The FastAGI wire protocol, pure: the `agi_*` environment block Asterisk sends first, and the replies
 * to commands. No I/O here (see server.ts).
 *
 * Asterisk opens a TCP connection for `AGI(agi://host:port/script,arg1,arg2)` and sends lines
 * `agi_name: value` ending with an empty line. Values may contain ':' (`agi_request: agi://127.0.0.1:4573/offer`),
 * so a line is split at the first ": " only. Then the server writes one command per line and Asterisk
 * answers each with one reply line:
 *
 *   200 result=35 endpos=9120       success; result and extra key=value fields
 *   200 result=1 (timeout)          success with a parenthesised note (GET DATA: "(timeout)")
 *   510 Invalid or unknown command
 *   511 Command Not Permitted on a dead channel or intercept routine
 *   520-Invalid command syntax.  Proper usage follows:   (multi-line, up to "520 End of proper usage.")
 *
 * When the channel hangs up, Asterisk also sends a lone `HANGUP` line, unprompted (AGISIGHUP); it is not a
 * reply to the pending command.
 */

export interface AgiEnv {
  /** Every agi_* variable by its full name (agi_channel, agi_callerid, agi_arg_1, …). */
  vars: Record<string, string>;
  /** agi_arg_1, agi_arg_2, … in order. */
  args: string[];
  /** The script name: "offer" for agi://127.0.0.1:4573/offer (without a query string or leading '/'). */
  script: string;
}

/** Parses the environment block (the lines before the empty line). */
export function parseAgiEnv(lines: readonly string[]): AgiEnv {
  const vars: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    // "agi_request: agi://h:4573/offer": split at the first colon, drop the one space that follows it.
    const value = line.slice(i + 1).replace(/^ /, '').replace(/\r$/, '');
    vars[name] = value;
  }
  const args: string[] = [];
  for (let n = 1; `agi_arg_${n}` in vars; n++) args.push(vars[`agi_arg_${n}`]);
  return { vars, args, script: scriptName(vars) };
}

/** The script from agi_network_script, or else from the path of agi_request. */
export function scriptName(vars: Record<string, string>): string {
  let s = vars.agi_network_script;
  if (s === undefined) {
    const req = vars.agi_request ?? '';
    const m = /^[a-z]+:\/\/[^/]*\/?(.*)$/i.exec(req);
    s = m ? m[1] : req;
  }
  return s.replace(/^\/+/, '').split('?')[0];
}

/**
 * The query of the script URL (`agi://host:port/offer?secret=…` → secret=…), from agi_network_script or
 * else from agi_request. The dialplan passes the FastAGI shared secret this way (see server.ts).
 */
export function scriptQuery(vars: Record<string, string>): URLSearchParams {
  const s = vars.agi_network_script ?? vars.agi_request ?? '';
  const q = s.indexOf('?');
  return new URLSearchParams(q >= 0 ? s.slice(q + 1) : '');
}

/**
 * Splits a byte stream into lines without ever re-scanning what it has seen (linear in the input) and
 * without holding more than `maxLine` bytes of an unfinished line: `push` returns the complete lines, or
 * throws {@link LineTooLong} when a line grows beyond the limit.
 */
export class LineSplitter {
  private partial = '';

  constructor(readonly maxLine: number) {}

  push(chunk: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', start)) {
      const piece = chunk.slice(start, i);
      if (this.partial.length + piece.length > this.maxLine) throw new LineTooLong(this.maxLine);
      lines.push((this.partial + piece).replace(/\r$/, ''));
      this.partial = '';
      start = i + 1;
    }
    const rest = chunk.length - start;
    if (this.partial.length + rest > this.maxLine) throw new LineTooLong(this.maxLine);
    if (rest > 0) this.partial += chunk.slice(start);
    return lines;
  }
}

export class LineTooLong extends Error {
  constructor(readonly maxLine: number) {
    super(`a line longer than ${maxLine} characters`);
    this.name = 'LineTooLong';
  }
}

export interface AgiReply {
  code: number;
  /** The number after result= (NaN when absent). */
  result: number;
  /** The text after result= as sent (GET VARIABLE returns text in `data`). */
  resultText: string;
  /** The parenthesised part, e.g. "timeout" or a variable's value. */
  data?: string;
  /** Further key=value fields, e.g. { endpos: '9120' }. */
  extra: Record<string, string>;
  /** The raw line(s). */
  raw: string;
}

/** Parses one complete reply (a single line, or the lines of a 520 block joined by '\n'). */
export function parseAgiReply(raw: string): AgiReply {
  const first = raw.split('\n')[0];
  const m = /^(\d{3})[ -](.*)$/.exec(first);
  if (!m) return { code: 0, result: NaN, resultText: '', extra: {}, raw };
  const code = Number(m[1]);
  let rest = m[2];
  let data: string | undefined;
  const paren = /\((.*)\)/.exec(rest);
  if (paren) {
    data = paren[1];
    rest = `${rest.slice(0, paren.index)}${rest.slice(paren.index + paren[0].length)}`;
  }
  const extra: Record<string, string> = {};
  let resultText = '';
  for (const part of rest.trim().split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (k === 'result') resultText = v;
    else extra[k] = v;
  }
  const result = /^-?\d+$/.test(resultText) ? Number(resultText) : NaN;
  return { code, result, resultText, data, extra, raw };
}

/**
 * Splits the byte stream after the environment block into replies and HANGUP notices. Feed it lines;
 * it returns what is complete.
 */
export class ReplyReader {
  private block: string[] | null = null;

  /** One line (without its newline) → a reply, a hangup notice, or nothing yet (inside a 520 block). */
  line(text: string): { type: 'reply'; reply: AgiReply } | { type: 'hangup' } | undefined {
    const line = text.replace(/\r$/, '');
    if (this.block) {
      this.block.push(line);
      if (/^\d{3} /.test(line)) {
        const raw = this.block.join('\n');
        this.block = null;
        return { type: 'reply', reply: parseAgiReply(raw) };
      }
      return undefined;
    }
    if (line === 'HANGUP') return { type: 'hangup' };
    if (line === '') return undefined;
    if (/^\d{3}-/.test(line)) {
      this.block = [line];
      return undefined;
    }
    return { type: 'reply', reply: parseAgiReply(line) };
  }
}

/** Quotes an argument for an AGI command line (STREAM FILE name "digits"). */
export function agiQuote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\r\n]/g, ' ')}"`;
}

/** The key a STREAM FILE / WAIT FOR DIGIT result stands for (35 → '#'), or undefined for 0 / -1. */
export function resultDigit(result: number): string | undefined {
  return result > 0 ? String.fromCharCode(result) : undefined;
}
