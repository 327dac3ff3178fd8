import {
  chooseLanguage,
  describeInput,
  sanitizeCallerIdName,
  sanitizeCallerIdNumber,
  validateAgentDevice,
  validateWatchDevice,
  validateProspectNumber,
} from '../../src/core/validate';

describe('validateProspectNumber', () => {
  it.each([
    ['2001', '2001'],
    ['+4930123456', '+4930123456'],
    [' 2001 ', '2001'],
    ['00493012345678901', '00493012345678901'],
    ['12', '12'],
  ])('accepts %j as %j', (input, value) => {
    expect(validateProspectNumber(input)).toEqual({ ok: true, value });
  });

  it.each([
    ['123&PJSIP/evil', /contains "&"/],
    ['123@other', /contains "@"/],
    ['123,tT', /contains ","/],
    ['12 34', /contains " "/],
    ['2001\nPJSIP/evil', /contains "\\n"/],
    ['+', /contains|digits/],
    ['1+2', /contains "\+"/],
    ['２００１', /contains "２"/],
    ['', /empty/],
    ['   ', /empty/],
    ['1', /has 1 digits; expected 2 to 20/],
    ['9'.repeat(200), /has 200 digits/],
  ])('refuses %j', (input, reason) => {
    const r = validateProspectNumber(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('refuses non-strings', () => {
    expect(validateProspectNumber(undefined)).toEqual({ ok: false, reason: 'prospect number is empty' });
    expect(validateProspectNumber(2001)).toEqual({ ok: false, reason: 'prospect number is empty' });
  });

  it('honours configured length rules', () => {
    expect(validateProspectNumber('123', { minDigits: 4, maxDigits: 6 }).ok).toBe(false);
    expect(validateProspectNumber('1234567', { minDigits: 4, maxDigits: 6 }).ok).toBe(false);
    expect(validateProspectNumber('+123456', { minDigits: 4, maxDigits: 6 })).toEqual({ ok: true, value: '+123456' });
  });

  it('keeps the log line short for huge input', () => {
    const r = validateProspectNumber('x'.repeat(10_000));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeLessThan(200);
  });
});

describe('validateAgentDevice', () => {
  it.each(['PJSIP/1001', 'SIP/agent-7', 'IAX2/a.b', 'Local/1001@agents', 'PJSIP/+4930'])('accepts %j', (d) => {
    expect(validateAgentDevice(d)).toEqual({ ok: true, value: d });
  });
  it.each([
    ['PJSIP/1001&PJSIP/evil', /not allowed/],
    ['PJSIP/1001,,tT', /not allowed/],
    ['PJSIP/1001@ctx', /not allowed/],
    ['Local/1@a@b', /not allowed/],
    ['Local/1@a b', /not allowed/],
    ['1001', /TECH\/resource/],
    ['/1001', /TECH\/resource/],
    ['Evil/1001', /unsupported technology "Evil"/],
    ['PJSIP/', /not allowed/],
    ['', /empty/],
  ])('refuses %j', (d, reason) => {
    const r = validateAgentDevice(d);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});

describe('caller ID and language helpers', () => {
  it('sanitizes caller ID names and numbers', () => {
    expect(sanitizeCallerIdName('Agent "1001" <x>\n')).toBe('Agent 1001 x');
    expect(sanitizeCallerIdName('Jürgen Müller')).toBe('Jürgen Müller');
    expect(sanitizeCallerIdName('a'.repeat(100))).toHaveLength(40);
    expect(sanitizeCallerIdName(undefined)).toBe('');
    expect(sanitizeCallerIdNumber('1001')).toBe('1001');
    expect(sanitizeCallerIdNumber('+49 30')).toBe('');
    expect(sanitizeCallerIdNumber('1001&x')).toBe('');
  });

  it('chooses a prompt language', () => {
    expect(chooseLanguage('de', ['en', 'de'], 'en')).toBe('de');
    expect(chooseLanguage('de_AT', ['en', 'de'], 'en')).toBe('de');
    expect(chooseLanguage('fr', ['en', 'de'], 'en')).toBe('en');
    expect(chooseLanguage('../../etc', ['en', 'de'], 'en')).toBe('en');
    expect(chooseLanguage(undefined, ['en', 'de'], 'de')).toBe('de');
  });

  it('describes untrusted input safely', () => {
    expect(describeInput('a\nb')).toBe('"a\\nb"');
    expect(describeInput(undefined)).toBe('(missing)');
    expect(describeInput('y'.repeat(50))).toBe(`"${'y'.repeat(40)}…(50 chars)"`);
  });
});

describe('validateWatchDevice', () => {
  it.each(['PJSIP/2001', 'Custom:prospect2995', 'Stasis:line-7'])('accepts %j', (d) => {
    expect(validateWatchDevice(d)).toEqual({ ok: true, value: d });
  });
  it.each(['Custom:a&b', 'Custom:', 'Foo:bar', 'PJSIP/2001&PJSIP/x'])('refuses %j', (d) => {
    expect(validateWatchDevice(d).ok).toBe(false);
  });
});
