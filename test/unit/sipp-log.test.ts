/**
 * The SIPp helper's parsers (test/integration/sipp.ts), on a messages log as SIPp 3.6 writes it with
 * -trace_msg (SIP lines end in CRLF, SIPp's own lines in LF). No SIPp or Asterisk needed.
 */
import { callerView, findMessage, ladder, parseMessagesLog, parseNameAddr } from '../integration/sipp';

const crlf = (lines: string[]) => lines.map((l) => `${l}\r\n`).join('');

// Abridged from a real run of uas-agent-key1.xml against the sandbox (ARI originate to PJSIP/1001).
const LOG =
  '----------------------------------------------- 2026-11-27 08:37:57.827918\n' +
  'UDP message received [1091] bytes :\n\n' +
  crlf([
    'INVITE sip:1001@127.0.0.1:5073 SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPj25fec4c8',
    'From: "Callback: 2001" <sip:9000@127.0.0.1>;tag=de4047b1',
    'To: <sip:1001@127.0.0.1>',
    'Contact: <sip:asterisk@127.0.0.1:5060>',
    'Call-ID: ab0f2bc1-c7f7',
    'CSeq: 14879 INVITE',
    'Remote-Party-ID: "Callback: 2001" <sip:9000@127.0.0.1>;party=calling;privacy=off;screen=no',
    'Alert-Info: <http://127.0.0.1/Bellcore-dr4>',
    'Content-Type: application/sdp',
    'Content-Length:   42',
    '',
    'v=0',
    'm=audio 10162 RTP/AVP 0 8 3 101',
    '',
  ]) +
  '\n' +
  '----------------------------------------------- 2026-11-27 08:37:57.828085\n' +
  'UDP message sent (377 bytes):\n\n' +
  crlf([
    'SIP/2.0 180 Ringing',
    'Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPj25fec4c8',
    'From: "Callback: 2001" <sip:9000@127.0.0.1>;tag=de4047b1',
    'To: <sip:1001@127.0.0.1>;tag=1237SIPpTag011',
    'Call-ID: ab0f2bc1-c7f7',
    'CSeq: 14879 INVITE',
    'Content-Length: 0',
    '',
  ]) +
  '\n' +
  '----------------------------------------------- 2026-11-27 08:38:02.041010\n' +
  'UDP message received [355] bytes :\n\n' +
  crlf(['BYE sip:1001@127.0.0.1:5073 SIP/2.0', 'f: <sip:9000@127.0.0.1>;tag=x', 'i: ab0f2bc1-c7f7', 'CSeq: 14880 BYE', 'Reason: Q.850', ' ;cause=16', 'l: 0', '']) +
  '\n';

describe('SIPp messages log', () => {
  const msgs = parseMessagesLog(LOG);

  it('splits it into messages with direction, start line, headers and body', () => {
    expect(ladder(msgs)).toEqual(['received INVITE', 'sent 180 Ringing', 'received BYE']);
    expect(msgs[0]).toMatchObject({ direction: 'received', time: '2026-11-27 08:37:57.827918', method: 'INVITE', status: undefined });
    expect(msgs[0].body).toBe('v=0\nm=audio 10162 RTP/AVP 0 8 3 101');
    expect(msgs[1]).toMatchObject({ direction: 'sent', method: undefined, status: 180, cseqMethod: 'INVITE' });
  });

  it('looks headers up case-insensitively, by compact form, with folded lines joined', () => {
    expect(msgs[0].header('call-id')).toBe('ab0f2bc1-c7f7');
    expect(msgs[0].header('Content-Length')).toBe('42');
    expect(msgs[2].header('From')).toBe('<sip:9000@127.0.0.1>;tag=x');
    expect(msgs[2].header('Call-ID')).toBe('ab0f2bc1-c7f7');
    expect(msgs[2].header('Reason')).toBe('Q.850 ;cause=16');
    expect(msgs[2].header('P-Asserted-Identity')).toBeUndefined();
  });

  it('finds messages by direction, method, status', () => {
    expect(findMessage(msgs, { direction: 'received', method: 'INVITE' })).toBe(msgs[0]);
    expect(findMessage(msgs, { status: 180, cseqMethod: 'INVITE' })).toBe(msgs[1]);
    expect(findMessage(msgs, { direction: 'sent', method: 'INVITE' })).toBeUndefined();
  });

  it('an empty or truncated log gives what is complete', () => {
    expect(parseMessagesLog('')).toEqual([]);
    expect(ladder(parseMessagesLog(LOG.slice(0, LOG.indexOf('UDP message sent'))))).toEqual(['received INVITE']);
  });
});

describe('what the phone shows', () => {
  it('From display name and user, Remote-Party-ID, Alert-Info of a recall INVITE', () => {
    const v = callerView(parseMessagesLog(LOG)[0]);
    expect(v.requestUri).toBe('sip:1001@127.0.0.1:5073');
    expect(v.from).toMatchObject({ display: 'Callback: 2001', user: '9000', host: '127.0.0.1', params: { tag: 'de4047b1' } });
    expect(v.to).toMatchObject({ display: undefined, user: '1001' });
    expect(v.rpid).toMatchObject({ display: 'Callback: 2001', user: '9000', params: { party: 'calling', privacy: 'off' } });
    expect(v.pai).toBeUndefined();
    expect(v.alertInfo).toBe('<http://127.0.0.1/Bellcore-dr4>');
    expect(v.callId).toBe('ab0f2bc1-c7f7');
  });

  it.each([
    ['"Agent 1001" <sip:1001@127.0.0.1:5060>;tag=1', { display: 'Agent 1001', user: '1001', host: '127.0.0.1:5060', params: { tag: '1' } }],
    ['"say \\"hi\\"" <sips:a%2Bb@h>', { display: 'say "hi"', user: 'a+b', host: 'h' }],
    ['Bob <sip:bob@example.com>', { display: 'Bob', user: 'bob', host: 'example.com' }],
    ['<sip:example.com>', { display: undefined, user: undefined, host: 'example.com' }],
    ['sip:9000@127.0.0.1;tag=abc', { display: undefined, uri: 'sip:9000@127.0.0.1', user: '9000', params: { tag: 'abc' } }],
    ['<tel:+4930123>', { uri: 'tel:+4930123', user: '+4930123', host: undefined }],
    ['"Callback: 2001" <sip:asterisk@127.0.0.1>', { display: 'Callback: 2001', user: 'asterisk' }],
  ])('parseNameAddr(%j)', (value, want) => {
    expect(parseNameAddr(value)).toMatchObject(want);
  });
});
