// The demo's browser phones (served at /phones when config web.phones is on; src/http/phones.ts):
// JsSIP user agents for the demo PBX's WebRTC endpoints, over the app's WebSocket relay /phones/ws.
// Bundled with JsSIP by scripts/build-web.mjs (no CDN).
import JsSIP from 'jssip';

const ACCOUNTS = [
  { key: 'agent', title: 'Agent 1001', user: 'webrtc1001', password: 'agent1001', shortcuts: [['*71', '*71 2995 busy'], ['2995', 'call 2995'], ['*72', '*72 2995 free'], ['2001', 'call 2001'], ['*82', '*82 pending']] },
  { key: 'prospect', title: 'Prospect 2001', user: 'webrtc2001', password: 'prospect2001', shortcuts: [['1001', 'call 1001']] },
];
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/phones/ws`;
const phones = {};
window.phones = phones;

const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};

function makePhone(acc) {
  const card = el('section', { class: 'phone', 'data-testid': `phone-${acc.key}` });
  const reg = el('span', { class: 'reg', 'data-testid': 'reg' }, 'registering…');
  const h = el('h2', {}, acc.title);
  h.append(reg);
  const display = el('div', { class: 'display' });
  const cid = el('div', { class: 'cid', 'data-testid': 'cid' }, acc.title);
  const num = el('div', { class: 'num', 'data-testid': 'cid-number' }, '');
  const status = el('div', { class: 'status', 'data-testid': 'status' }, 'idle');
  display.append(cid, num, status);
  const dial = el('div', { class: 'dial' });
  const input = el('input', { inputmode: 'tel', placeholder: 'number', 'aria-label': 'number to dial', 'data-testid': 'number' });
  dial.append(input);
  const keypad = el('div', { class: 'keypad' });
  for (const k of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#']) {
    const b = el('button', { type: 'button', 'data-key': k, 'data-testid': `key-${k}` }, k);
    b.addEventListener('click', () => key(k));
    keypad.append(b);
  }
  const calls = el('div', { class: 'calls' });
  const call = el('button', { type: 'button', class: 'call', 'data-testid': 'call' }, 'Call');
  const answer = el('button', { type: 'button', class: 'answer', 'data-testid': 'answer' }, 'Answer');
  const hangup = el('button', { type: 'button', class: 'hangup', 'data-testid': 'hangup' }, 'Hang up');
  calls.append(call, answer, hangup);
  const shortcuts = el('div', { class: 'shortcuts' });
  for (const [n, label] of acc.shortcuts) {
    const b = el('button', { type: 'button' }, label);
    b.addEventListener('click', () => {
      input.value = n;
      dialNow();
    });
    shortcuts.append(b);
  }
  const audio = el('audio', { autoplay: '' });
  card.append(h, display, dial, keypad, calls, shortcuts, audio);
  document.getElementById('phones').append(card);

  const socket = new JsSIP.WebSocketInterface(wsUrl);
  const ua = new JsSIP.UA({ sockets: [socket], uri: `sip:${acc.user}@${location.hostname}`, password: acc.password, display_name: acc.title, register: true, session_timers: false });
  const phone = { ua, session: null, registered: false, received: [], sentDtmf: [], callerId: null, state: 'idle' };
  phones[acc.key] = phone;

  const setState = (s) => {
    phone.state = s;
    status.textContent = s;
    call.disabled = !!phone.session;
    answer.disabled = !(phone.session && phone.session.direction === 'incoming' && !phone.session.isEstablished());
    hangup.disabled = !phone.session;
  };
  const showPeer = (name, number) => {
    cid.textContent = name || number || '';
    num.textContent = number ? `<${number}>` : '';
  };

  function key(k) {
    if (phone.session && phone.session.isEstablished()) {
      phone.session.sendDTMF(k, { transportType: 'RFC2833', duration: 160, interToneGap: 80 });
      phone.sentDtmf.push(k);
      status.textContent = `${phone.state} · sent ${k}`;
    } else {
      input.value += k;
    }
  }
  function dialNow() {
    const target = input.value.trim();
    if (!target || phone.session) return;
    showPeer(target, '');
    const session = ua.call(`sip:${target}@${location.hostname}`, {
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: [] },
      rtcOfferConstraints: { offerToReceiveAudio: true },
    });
    attach(session);
  }
  function attach(session) {
    phone.session = session;
    phone.pc = null;
    setState(session.direction === 'incoming' ? 'ringing' : 'calling');
    const hookPc = (pc) => {
      phone.pc = pc;
      pc.addEventListener('track', (e) => {
        audio.srcObject = e.streams[0] || new MediaStream([e.track]);
      });
    };
    if (session.connection) hookPc(session.connection);
    session.on('peerconnection', (e) => hookPc(e.peerconnection));
    session.on('progress', () => setState(session.direction === 'incoming' ? 'ringing' : 'ringing…'));
    session.on('accepted', () => setState('connected'));
    session.on('confirmed', () => setState('connected'));
    const end = (e) => {
      phone.lastEnd = e && e.cause;
      phone.session = null;
      setState(`idle (${(e && e.cause) || 'ended'})`);
    };
    session.on('ended', end);
    session.on('failed', end);
  }
  call.addEventListener('click', dialNow);
  answer.addEventListener('click', () => {
    if (phone.session && phone.session.direction === 'incoming') phone.session.answer({ mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } });
  });
  hangup.addEventListener('click', () => phone.session && phone.session.terminate());
  ua.on('registered', () => {
    phone.registered = true;
    reg.textContent = 'registered';
    reg.className = 'reg ok';
  });
  ua.on('unregistered', () => {
    phone.registered = false;
    reg.textContent = 'not registered';
    reg.className = 'reg';
  });
  ua.on('registrationFailed', (e) => {
    phone.registered = false;
    reg.textContent = `registration failed: ${e.cause}`;
    reg.className = 'reg bad';
  });
  ua.on('newRTCSession', (e) => {
    if (e.originator !== 'remote') return;
    if (phone.session) {
      e.session.terminate({ status_code: 486 });
      return;
    }
    const ri = e.session.remote_identity;
    phone.callerId = { name: ri.display_name || '', number: ri.uri.user };
    phone.received.push(phone.callerId);
    showPeer(ri.display_name, ri.uri.user);
    attach(e.session);
  });
  setState('idle');
  ua.start();
}

/** For tests and the curious: audio packets received on a phone's call (RTCPeerConnection.getStats). */
window.audioPacketsReceived = async (which) => {
  const pc = phones[which] && phones[which].pc;
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && (s.kind === 'audio' || s.mediaType === 'audio')) n += s.packetsReceived || 0;
  });
  return n;
};

for (const acc of ACCOUNTS) makePhone(acc);
