/**
 * Configuration hardening: every value that reaches Asterisk is refused when it could change what Asterisk
 * does, durations a timer cannot hold are refused, a JSON file with a duplicate key is refused, and secrets
 * are masked wherever they are printed. Each test performs the attack.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ConfigError, loadConfig } from '../../src/config/load';
import { createLogger, escapeControl } from '../../src/logging/log';
import { MASK, maskSecrets, maskUrls, masker } from '../../src/logging/mask';
import { securityRefusals, securityWarnings } from '../../src/config/security';

const ENV = { CC_ARI_PASSWORD: 'pw-1234' };

function problems(overrides: Record<string, unknown>, file?: string): string[] {
  try {
    loadConfig({ env: ENV, overrides, file });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

function tmpFile(name: string, text: string): string {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-cfgh-')), name);
  fs.writeFileSync(f, text);
  return f;
}

describe('values that reach Asterisk', () => {
  it.each(['cc&PJSIP/evil', 'a,b', 'ctx@other', 'cc/n', 'cc outbound', 'cc\nexten', 'cc\x00', '', 'x'.repeat(80)])(
    'recall.outboundContext %j is refused, naming the key',
    (context) => {
      const p = problems({ 'recall.outboundContext': context });
      expect(p).toHaveLength(1);
      expect(p[0]).toMatch(/^recall\.outboundContext: expected /);
    },
  );

  it('a plain context is accepted', () => {
    expect(loadConfig({ env: ENV, overrides: { 'recall.outboundContext': 'from-internal_2.out-1' } }).recall.outboundContext).toBe('from-internal_2.out-1');
  });

  it.each(['<http://x/dr4>\r\nX-Evil: 1', '<http://x/dr4>\nINVITE', 'a\u2028b', 'a\x1bb', 'x'.repeat(257)])('recall.alertInfo %j is refused', (value) => {
    const p = problems({ 'recall.alertInfo': value });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^recall\.alertInfo: expected /);
  });

  it('an Alert-Info on one line is accepted, and empty means none', () => {
    expect(loadConfig({ env: ENV, overrides: { 'recall.alertInfo': '<http://127.0.0.1/Bellcore-dr4>;info=x' } }).recall.alertInfo).toBe('<http://127.0.0.1/Bellcore-dr4>;info=x');
    expect(loadConfig({ env: ENV }).recall.alertInfo).toBe('');
  });

  it.each([
    ['prompts.offer', 'sound:cc-offer\nHANGUP'],
    ['prompts.confirm', 'sound:cc-confirm\r\nEXEC Dial PJSIP/900'],
    ['prompts.goodbye', 'sound:cc goodbye'],
    ['prompts.full', 'sound:a,sound:b'],
    ['prompts.error', 'http://example.com/x.wav'],
    ['prompts.recallMenu', 'cc-recall-menu'],
    ['prompts.pendingMenu', 'sound:"x"'],
    ['prompts.cancelled', 'sound:'],
  ])('%s %j is refused, naming the key', (key, value) => {
    const p = problems({ [key]: value });
    expect(p).toHaveLength(1);
    expect(p[0].startsWith(`${key}: expected an ARI media URI`)).toBe(true);
  });

  it('ARI media URIs of every scheme are accepted', () => {
    const cfg = loadConfig({
      env: ENV,
      overrides: { 'prompts.offer': 'sound:custom/cc-offer', 'prompts.confirm': 'recording:my-confirm', 'prompts.goodbye': 'tone:busy;tonezone=de', 'prompts.full': 'digits:42' },
    });
    expect(cfg.prompts).toMatchObject({ offer: 'sound:custom/cc-offer', confirm: 'recording:my-confirm', goodbye: 'tone:busy;tonezone=de', full: 'digits:42' });
  });

  it('every prompts.* key is checked as a media URI', () => {
    const keys = Object.keys(JSON.parse(JSON.stringify(loadConfig({ env: ENV }).prompts)) as object);
    expect(keys.length).toBeGreaterThan(10);
    for (const k of [...keys.map((x) => `prompts.${x}`), 'prompts.pendingCount', 'prompts.pendingMenu']) {
      expect(problems({ [k]: 'sound:x\nHANGUP' })[0]).toMatch(new RegExp(`^${k.replace('.', '\\.')}: expected an ARI media URI`));
    }
  });

  it.each([
    ['recall.callerIdName', 'Callback\n${prospect}', /^recall\.callerIdName: must not contain .*control characters/],
    ['recall.callerIdName', '"Boss" <${prospect}>', /^recall\.callerIdName: must not contain quotes/],
    ['recall.callerIdName', 'Callback', /^recall\.callerIdName: expected a text containing \$\{number\}/],
    ['recall.callerIdNumber', '100;evil', /^recall\.callerIdNumber: expected digits/],
    ['recall.callerIdNumber', '100\n', /^recall\.callerIdNumber: expected digits/],
  ])('caller-ID template %s %j is refused', (key, value, message) => {
    const p = problems({ [key]: value });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(message);
  });

  it.each([
    ['ari.app', 'cc&x'],
    ['ari.app', 'cc app'],
    ['ari.username', 'user:extra'],
    ['ari.username', 'user\n'],
  ])('%s %j is refused', (key, value) => {
    expect(problems({ [key]: value })[0]).toMatch(new RegExp(`^${key.replace('.', '\\.')}: expected a name`));
  });

  it('the same checks apply to values from the environment', () => {
    try {
      loadConfig({ env: { ...ENV, CC_ARI_APP: 'cc\nEXEC' } });
      throw new Error('accepted');
    } catch (err) {
      expect((err as ConfigError).problems[0]).toMatch(/^ari\.app: expected a name/);
    }
  });
});

describe('durations a timer can hold', () => {
  it('a duration of 25 days is refused with a clear error (a Node timer would fire at once)', () => {
    expect(problems({ 'policy.maxAge': '25d' })).toEqual(['policy.maxAge: expected a duration of at most 24d (a timer cannot hold 2^31-1 ms or more), got "25d"']);
    expect(problems({ 'policy.snooze': '600h' })[0]).toMatch(/^policy\.snooze: expected a duration of at most 24d/);
    expect(problems({ 'webhook.backoff': '5s,30d' })[0]).toMatch(/^webhook\.backoff: expected a duration of at most 24d/);
  });

  it('24 days is still accepted', () => {
    expect(loadConfig({ env: ENV, overrides: { 'policy.firstProbeDelay': '24d' } }).policy.firstProbeDelayMs).toBe(24 * 86_400_000);
  });
});

describe('duplicate keys', () => {
  it('a JSON file with a duplicate key is refused, naming the key and where', () => {
    const f = tmpFile('cc.json', '{\n  "ari": { "password": "first-secret" },\n  "policy": { "grace": "5m", "grace": "1m" }\n}\n');
    const p = problems({}, f);
    expect(p).toEqual([`${f}: duplicate key policy.grace (line 3 column 30): each key may appear once`]);
  });

  it('a duplicate section is refused too, and the secret is not echoed', () => {
    const f = tmpFile('cc.json', '{"ari": {"password": "first-secret"}, "ari": {"password": "second-secret"}}');
    const p = problems({}, f);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/duplicate key ari \(line 1 column \d+\)/);
    expect(p.join()).not.toMatch(/first-secret|second-secret/);
  });

  it('a YAML file with a duplicate key is refused', () => {
    const f = tmpFile('cc.yaml', 'ari:\n  password: x1234\npolicy:\n  grace: 5m\n  grace: 1m\n');
    expect(problems({}, f)[0]).toMatch(/is not valid YAML: Map keys must be unique/);
  });
});

describe('the one secret mask', () => {
  it('masks URL credentials and secret query parameters in any text', () => {
    expect(maskUrls('connect to http://considerate:s3cret@pbx:8088/ari failed')).toBe(`connect to http://${MASK}@pbx:8088/ari failed`);
    expect(maskUrls('ws://pbx:8088/ari/events?app=cc&api_key=considerate:s3cret&subscribeAll=true')).toBe(`ws://pbx:8088/ari/events?app=cc&api_key=${MASK}&subscribeAll=true`);
    expect(maskUrls('https://crm.example/hook?token=abc123&id=7')).toBe(`https://crm.example/hook?token=${MASK}&id=7`);
    expect(maskUrls('https://crm.example/hook?access_token=abc&password=p&sig=xyz')).toBe(`https://crm.example/hook?access_token=${MASK}&password=${MASK}&sig=${MASK}`);
    expect(maskUrls('http://u:p@ss:w/rd+%@pbx:8088')).toBe(`http://${MASK}@pbx:8088`);
    expect(maskUrls('https://crm.example/hook?id=7&page=2')).toBe('https://crm.example/hook?id=7&page=2');
  });

  it('masks literal secrets in every encoding, and secret-named fields', () => {
    const m = masker(['p@ss:w/rd+%']);
    expect(m.text(`a p@ss:w/rd+% b ${encodeURIComponent('p@ss:w/rd+%')} c`)).toBe(`a ${MASK} b ${MASK} c`);
    expect(m.value({ nested: { password: 'x', apiKey: 'y', token: 'z', other: 'keep' } })).toEqual({ nested: { password: MASK, apiKey: MASK, token: MASK, other: 'keep' } });
    expect(maskSecrets({ ari: { url: 'http://u:pw@pbx:8088' } })).toEqual({ ari: { url: `http://${MASK}@pbx:8088` } });
  });

  it('a configuration error never prints ari.url credentials', () => {
    const p = problems({ 'ari.url': 'ftp://admin:hunter22@pbx:8088' });
    expect(p).toEqual([`ari.url: expected an http:// or https:// URL, got "ftp://${MASK}@pbx:8088"`]);
  });

  it('webhook.url with a token in its query is accepted, and masked for display', () => {
    const cfg = loadConfig({ env: ENV, overrides: { 'webhook.url': 'https://crm.example/hook?token=abc123' } });
    expect(cfg.webhook.url).toBe('https://crm.example/hook?token=abc123');
    expect(JSON.stringify(maskSecrets(cfg))).not.toContain('abc123');
  });

  it.each(['json', 'pretty'] as const)('the %s log masks ari.url credentials and query tokens it was never told about', async (format) => {
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const log = createLogger({ format, stream, level: 'debug' });
    log.info('connecting to ARI at http://considerate:hunter22@pbx:8088', { url: 'ws://pbx:8088/ari/events?api_key=considerate:hunter22', webhook: 'https://crm/x?token=tok-987' });
    await new Promise((r) => setImmediate(r));
    const out = chunks.join('');
    expect(out).toContain('connecting to ARI');
    expect(out).not.toContain('hunter22');
    expect(out).not.toContain('tok-987');
  });
});

describe('control characters in the human-readable log', () => {
  async function pretty(message: string, fields: Record<string, unknown>): Promise<string> {
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const log = createLogger({ format: 'pretty', stream, isTTY: false, level: 'debug' });
    log.info(message, fields);
    await new Promise((r) => setImmediate(r));
    return chunks.join('');
  }

  it('a channel name with a newline cannot forge a second log line', async () => {
    const out = await pretty('offer started', { channel: 'PJSIP/1001-0001\n2026-12-01T00:00:00.000Z info callback completed requestId=forged' });
    expect(out.trimEnd().split('\n')).toHaveLength(1);
    expect(out).toContain('channel=PJSIP/1001-0001\\n2026');
  });

  it('a channel name with an escape sequence cannot clear the screen', async () => {
    const out = await pretty('caller \x1b[2J\x1b[H hung up\r', { channel: 'PJSIP/\x1b[2J1001', nested: { name: 'a\x07b' } });
    expect(out.trimEnd()).not.toMatch(/\p{Cc}/u);
    expect(out).toContain('caller \\x1b[2J\\x1b[H hung up\\r');
    expect(out).toContain('channel=PJSIP/\\x1b[2J1001');
    expect(out.trimEnd().split('\n')).toHaveLength(1);
  });

  it('JSON lines stay one line per entry as well', async () => {
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    createLogger({ format: 'json', stream, level: 'debug' }).info('x\ny', { channel: 'a\x1b[2Jb\nc' });
    await new Promise((r) => setImmediate(r));
    const out = chunks.join('');
    expect(out.trimEnd().split('\n')).toHaveLength(1);
    expect(out).not.toContain('\x1b');
    expect(JSON.parse(out)).toMatchObject({ message: 'x\ny', channel: 'a\x1b[2Jb\nc' });
  });

  it('escapeControl keeps printable text and Unicode as it is', () => {
    expect(escapeControl('Grüße, 电话 ☎')).toBe('Grüße, 电话 ☎');
    expect(escapeControl('a\u2028b\u0085c')).toBe('a\\u2028b\\x85c');
  });
});

describe('duplicate keys in JSON from --set or the environment', () => {
  it('is refused as in a file', () => {
    const p = problems({ 'callingHours.windows': '{"mon": [["09:00","12:00"]], "mon": [["13:00","18:00"]]}' });
    expect(p).toEqual(['callingHours.windows: duplicate key mon (at character 30): each key may appear once']);
  });
});

describe('the HTTP listener\'s open combinations (issue 19)', () => {
  const cfg = (overrides: Record<string, unknown>) => loadConfig({ env: ENV, overrides });
  it('the defaults leave nothing open: no warning, no refusal', () => {
    expect(securityWarnings(cfg({})).filter((w) => w.startsWith('http.') || w.startsWith('web.'))).toEqual([]);
    expect(securityRefusals(cfg({}))).toEqual([]);
  });

  it('warns on a non-loopback bind (plain HTTP; a generated token), the phones off loopback, "*" hosts, http.auth none', () => {
    const w = securityWarnings(cfg({ 'http.bind': '0.0.0.0', 'web.phones': true }));
    expect(w.some((x) => x.startsWith('http.bind: 0.0.0.0') && x.includes('http.token is empty'))).toBe(true);
    expect(w.some((x) => x.startsWith('web.phones:'))).toBe(true);
    expect(securityWarnings(cfg({ 'http.bind': '0.0.0.0', 'http.token': 'long-random' })).find((x) => x.startsWith('http.bind:'))).not.toContain('http.token is empty');
    expect(securityWarnings(cfg({ 'http.allowedHosts': '["*"]' })).some((x) => x.startsWith('http.allowedHosts:'))).toBe(true);
    expect(securityWarnings(cfg({ 'http.auth': 'none' })).some((x) => x.startsWith('http.auth: none — anyone on this host'))).toBe(true);
  });

  it('refuses http.auth none off loopback, with the phones, or with "*" hosts — unless http.allowOpen, then only warns', () => {
    expect(securityRefusals(cfg({ 'http.auth': 'none' }))).toEqual([]);
    expect(securityRefusals(cfg({ 'http.auth': 'none', 'http.bind': '0.0.0.0' }))).toEqual([expect.stringContaining('http.bind 0.0.0.0')]);
    expect(securityRefusals(cfg({ 'http.auth': 'none', 'web.phones': true }))).toEqual([expect.stringContaining('web.phones')]);
    expect(securityRefusals(cfg({ 'http.auth': 'none', 'http.allowedHosts': '["*"]' }))).toEqual([expect.stringContaining('"*"')]);
    const allowed = cfg({ 'http.auth': 'none', 'http.bind': '0.0.0.0', 'http.allowOpen': true });
    expect(securityRefusals(allowed)).toEqual([]);
    expect(securityWarnings(allowed).some((x) => x.includes('(allowed by http.allowOpen)'))).toBe(true);
  });

  it('checks http.allowedHosts and http.allowedOrigins', () => {
    expect(problems({ 'http.allowedOrigins': '["https://cc.example.com/path"]' }).join()).toContain('http.allowedOrigins');
    expect(problems({ 'http.allowedHosts': '["cc.example.com:443"]' }).join()).toContain('http.allowedHosts');
    expect(cfg({ 'http.allowedHosts': '["cc.example.com"]', 'http.allowedOrigins': '["https://cc.example.com"]' }).http.allowedHosts).toEqual(['cc.example.com']);
  });
});
