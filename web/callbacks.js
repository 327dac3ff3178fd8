// The callbacks page (served by the service at /callbacks; src/http/web.ts). Live through server-sent
// events: a snapshot, then one `request` event per change. The one-second timer only redraws the grace
// countdown from data already here; it never asks the server.
const SVG = 'http://www.w3.org/2000/svg';
const STAGES = [
  { state: 'WAITING', label: ['waiting for', 'the line'] },
  { state: 'GRACE', label: ['grace'] },
  { state: 'DUE', label: ['due'] },
  { state: 'RINGING_AGENT', label: ['ringing', 'the agent'] },
  { state: 'CONNECTING', label: ['connecting'] },
];
const END_LABEL = { COMPLETED: 'connected', CANCELLED: 'cancelled', EXPIRED: 'expired', FAILED: 'failed' };
const csrf = document.querySelector('meta[name="cc-csrf"]').getAttribute('content');
const requests = new Map();
let clockOffset = 0; // server time minus browser time
let source;

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const svg = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};
const now = () => Date.now() + clockOffset;
const secondsLeft = (iso) => Math.max(0, Math.ceil((Date.parse(iso) - now()) / 1000));
const fmtLeft = (s) => (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`);
const timeOf = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function filterQuery() {
  const q = new URLSearchParams();
  if ($('f-agent').value) q.set('agent', $('f-agent').value);
  if ($('f-state').value) q.set('state', $('f-state').value);
  return q.toString();
}

function connect() {
  if (source) source.close();
  requests.clear();
  render();
  source = new EventSource(`/callbacks/api/events?${filterQuery()}`);
  source.addEventListener('open', () => {
    setLive(true);
    void fetch('/callbacks/api/pauses', { credentials: 'same-origin' })
      .then((res) => res.json())
      .then((list) => Array.isArray(list) && renderPauses(list))
      .catch(() => undefined);
  });
  source.addEventListener('error', () => setLive(false));
  source.addEventListener('snapshot', (e) => {
    requests.clear();
    for (const r of JSON.parse(e.data)) upsert(r);
    render();
  });
  source.addEventListener('request', (e) => {
    const r = JSON.parse(e.data);
    upsert(r);
    render();
    if (opened.has(r.id)) void refreshDetails(r.id);
  });
  source.addEventListener('pauses', (e) => renderPauses(JSON.parse(e.data)));
}

// --- the heads-up before a recall (policy.headsUp): shown at the top, and a browser notification ---------------
const notified = new Set(); // `${id}@${dueAt}`: one notification per due time
const headsUpOn = (r) => r.headsUp && r.dueAt && Date.parse(r.dueAt) > now();
/** The prospect as the agent knows them: the CRM's name (and company) with the number, else the number. */
const whoOf = (r) => (r.contact ? `${r.contact.name}${r.contact.company ? ` (${r.contact.company})` : ''} · ${r.prospect}` : r.prospect);

function renderHeadsUp() {
  const box = $('heads-up');
  const items = [...requests.values()].filter(headsUpOn).sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt));
  box.hidden = items.length === 0;
  box.replaceChildren(
    ...items.map((r) => {
      const div = el('div', { class: 'hu', 'data-testid': 'heads-up-item', 'data-id': r.id });
      div.append(
        el('strong', {}, `Callback soon: ${whoOf(r)}`),
        el('span', { class: 'hu-when', 'data-testid': 'heads-up-when', 'data-due': r.dueAt }, ` at ${timeOf(r.dueAt)} (in ${fmtLeft(secondsLeft(r.dueAt))}) · ${r.agent}`),
      );
      const snooze = el('button', { type: 'button', 'data-testid': 'heads-up-snooze' }, 'Snooze');
      const cancel = el('button', { type: 'button', 'data-testid': 'heads-up-cancel' }, 'Cancel');
      snooze.addEventListener('click', () => void post('/callbacks/api/snooze', { id: r.id }));
      cancel.addEventListener('click', () => {
        if (window.confirm(`Cancel the callback from ${r.agent} to ${r.prospect}?`)) void post('/callbacks/api/cancel', { id: r.id });
      });
      div.append(snooze, cancel);
      return div;
    }),
  );
  for (const r of items) notify(r);
}

/**
 * A browser notification for a heads-up (once per due time), with the page's permission. Clicking it brings
 * the page forward, where the heads-up offers Snooze and Cancel (a page without a service worker cannot put
 * buttons into the notification itself).
 */
function notify(r) {
  const key = `${r.id}@${r.dueAt}`;
  if (notified.has(key) || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  notified.add(key);
  const n = new Notification(`Callback soon: ${whoOf(r)}`, {
    body: `Due at ${timeOf(r.dueAt)} for ${r.agent}. Open the page to snooze or cancel.`,
    tag: `cc-heads-up-${r.id}`,
    requireInteraction: true,
  });
  n.addEventListener('click', () => {
    window.focus();
    n.close();
  });
}

// --- "hold my callbacks" ------------------------------------------------------------------------------------
function renderPauses(list) {
  $('pauses').replaceChildren(
    ...list.map((p) => {
      const li = el('li', { 'data-testid': 'paused-agent', 'data-agent': p.agent }, `${p.agent} paused ${p.until ? `until ${timeOf(p.until)}` : 'until resumed'} (${p.by}) `);
      const resume = el('button', { type: 'button', 'data-testid': 'resume' }, 'Resume');
      resume.addEventListener('click', () => void post('/callbacks/api/resume', { agent: p.agent }));
      li.append(resume);
      return li;
    }),
  );
}

$('p-pause').addEventListener('click', async () => {
  const agent = $('p-agent').value.trim();
  let until;
  if ($('p-until').value) {
    const [h, m] = $('p-until').value.split(':').map(Number);
    const d = new Date(now());
    d.setHours(h, m, 0, 0);
    if (d.getTime() <= now()) d.setDate(d.getDate() + 1);
    until = d.toISOString();
  }
  const { body } = await post('/callbacks/api/pause', { agent, until });
  if (body.error) window.alert(body.error);
});
$('p-notify').addEventListener('click', () => {
  if (typeof Notification !== 'undefined') void Notification.requestPermission();
});

function setLive(on) {
  $('live').textContent = on ? 'live' : 'reconnecting…';
  $('live').className = `live ${on ? 'on' : 'off'}`;
}

function upsert(r) {
  clockOffset = Date.parse(r.serverNow) - Date.now();
  requests.set(r.id, r);
  const agents = $('f-agent');
  if (![...agents.options].some((o) => o.value === r.agent)) agents.append(el('option', { value: r.agent }, r.agent));
}

/** The timeline picture: five stages on a line, the current one ringed, the grace with its countdown. */
function timeline(r) {
  const w = 440;
  const h = 104;
  const margin = 42;
  const step = (w - 2 * margin) / (STAGES.length - 1 + (r.terminal ? 1 : 0) || 1);
  const picture = svg('svg', { viewBox: `0 0 ${w} ${h}`, class: 'timeline', role: 'img', 'data-testid': 'timeline' });
  const current = r.terminal ? lastStage(r) : r.stage;
  picture.append(svg('title', {}, `${r.prospect}: ${r.state} — ${r.reason}`));
  const xs = STAGES.map((_, i) => margin + i * step);
  if (r.terminal) xs.push(margin + STAGES.length * step);
  picture.append(svg('line', { x1: xs[0], y1: 30, x2: xs[xs.length - 1], y2: 30, stroke: '#cbd5e1', 'stroke-width': 4 }));
  if (current > 0) picture.append(svg('line', { x1: xs[0], y1: 30, x2: xs[Math.min(current, xs.length - 1)], y2: 30, stroke: '#1f6feb', 'stroke-width': 4 }));
  STAGES.forEach((s, i) => {
    const done = i < current || (r.terminal && i <= current);
    const here = !r.terminal && i === r.stage;
    const fill = here ? (s.state === 'GRACE' ? '#d97706' : '#1f6feb') : done ? '#93c5fd' : '#fff';
    const g = svg('g', { 'data-stage': s.state, class: here ? 'stage current' : 'stage' });
    g.append(svg('circle', { cx: xs[i], cy: 30, r: here ? 13 : 10, fill, stroke: here || done ? '#1f6feb' : '#94a3b8', 'stroke-width': 2 }));
    if (s.state === 'GRACE' && r.grace && (here || r.state === 'WAITING')) {
      const total = r.grace.from ? Math.max(1, (Date.parse(r.grace.until) - Date.parse(r.grace.from)) / 1000) : 1;
      const left = secondsLeft(r.grace.until);
      if (here) {
        const frac = Math.min(1, left / total);
        const R = 19;
        const c = 2 * Math.PI * R;
        picture.append(svg('circle', { cx: xs[i], cy: 30, r: R, fill: 'none', stroke: '#fde68a', 'stroke-width': 4 }));
        picture.append(
          svg('circle', {
            cx: xs[i], cy: 30, r: R, fill: 'none', stroke: '#d97706', 'stroke-width': 4,
            'stroke-dasharray': `${(c * frac).toFixed(1)} ${c.toFixed(1)}`, transform: `rotate(-90 ${xs[i]} 30)`, 'data-testid': 'grace-arc',
          }),
        );
        g.append(svg('text', { x: xs[i], y: 98, 'text-anchor': 'middle', class: 'count', 'data-testid': 'grace-left', 'data-grace-until': r.grace.until }, `${fmtLeft(left)} left`));
      }
    }
    const label = svg('text', { x: xs[i], y: 64, 'text-anchor': 'middle' });
    s.label.forEach((line, n) => label.append(svg('tspan', { x: xs[i], dy: n === 0 ? 0 : 13 }, line)));
    g.append(label);
    picture.append(g);
  });
  if (r.terminal) {
    const x = xs[xs.length - 1];
    const ok = r.state === 'COMPLETED';
    picture.append(svg('rect', { x: x - 12, y: 18, width: 24, height: 24, rx: 4, fill: ok ? '#15803d' : '#b91c1c' }));
    picture.append(svg('text', { x, y: 64, 'text-anchor': 'middle', 'font-weight': 700 }, END_LABEL[r.state] || r.state.toLowerCase()));
  }
  return picture;
}

/** For a finished request: how far it got (a cancelled grace stays at the grace). */
function lastStage(r) {
  if (r.state === 'COMPLETED') return STAGES.length;
  return Math.max(0, r.reached);
}

function card(r) {
  const li = el('li', { class: `req${r.terminal ? ' terminal' : ''}${headsUpOn(r) ? ' heads-up-on' : ''}`, 'data-id': r.id, 'data-state': r.state, 'data-testid': 'request' });
  const head = el('div', { class: 'req-head' });
  const who = whoOf(r);
  head.append(el('span', { class: 'prospect', 'data-testid': 'prospect' }, who), el('span', { class: `state ${r.state}`, 'data-testid': 'state' }, r.state), el('span', { class: 'agent' }, r.agent), el('span', { class: 'rid' }, r.id));
  li.append(head, timeline(r));
  li.append(el('p', { class: 'reason', 'data-testid': 'reason' }, r.reason));
  li.append(el('p', { class: 'profile', 'data-testid': 'profile' }, `profile: ${r.profile || 'default'} · ${r.policy}`));
  if (r.wakeAt && !r.terminal) li.append(el('p', { class: 'wake' }, `next check ${timeOf(r.wakeAt)}${r.waitingFor ? ` · waiting for: ${r.waitingFor}` : ''}`));
  const actions = el('div', { class: 'actions' });
  const cancel = el('button', { type: 'button', class: 'cancel', 'data-testid': 'cancel' }, 'Cancel');
  const snooze = el('button', { type: 'button', class: 'snooze', 'data-testid': 'snooze' }, 'Snooze');
  const why = el('button', { type: 'button', class: 'why', 'data-testid': 'why' }, 'Why? (history)');
  cancel.disabled = snooze.disabled = r.terminal || r.state === 'CONNECTING';
  cancel.addEventListener('click', () => act('cancel', r, li));
  snooze.addEventListener('click', () => act('snooze', r, li));
  why.addEventListener('click', () => details(r, li));
  actions.append(cancel, snooze, why);
  li.append(actions);
  return li;
}

async function post(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-cc-csrf': csrf }, body: JSON.stringify(body), credentials: 'same-origin' });
  return { ok: res.ok, body: await res.json().catch(() => ({})) };
}

async function act(kind, r, li) {
  if (kind === 'cancel' && !window.confirm(`Cancel the callback from ${r.agent} to ${r.prospect}?`)) return;
  const { body } = await post(`/callbacks/api/${kind}`, { id: r.id });
  note(li, body.done ? `${kind === 'cancel' ? 'Cancelled' : 'Snoozed'}: ${body.reason}` : body.note || body.error || 'failed');
}

function note(li, text) {
  let n = li.querySelector('.note');
  if (!n) li.append((n = el('p', { class: 'note', 'data-testid': 'note' })));
  n.textContent = text;
  notes.set(li.dataset.id, text);
}
const notes = new Map();
const opened = new Map();

async function fetchShow(id) {
  const res = await fetch(`/callbacks/api/request?id=${encodeURIComponent(id)}`, { credentials: 'same-origin' });
  const body = await res.json();
  return body.show || body.error;
}

async function refreshDetails(id) {
  opened.set(id, await fetchShow(id));
  render();
}

async function details(r, li) {
  if (opened.has(r.id)) {
    opened.delete(r.id);
    render();
    return;
  }
  opened.set(r.id, await fetchShow(r.id));
  li.append(el('pre', { 'data-testid': 'show' }, opened.get(r.id)));
}

function render() {
  const list = $('requests');
  const items = [...requests.values()].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  list.replaceChildren(
    ...items.map((r) => {
      const li = card(r);
      if (notes.has(r.id)) note(li, notes.get(r.id));
      if (opened.has(r.id)) li.append(el('pre', { 'data-testid': 'show' }, opened.get(r.id)));
      return li;
    }),
  );
  $('empty').hidden = items.length > 0;
  renderHeadsUp();
}

function tick() {
  for (const t of document.querySelectorAll('[data-testid="heads-up-when"]')) {
    const left = secondsLeft(t.getAttribute('data-due'));
    if (left === 0) renderHeadsUp();
    else t.textContent = t.textContent.replace(/\(in [^)]*\)/, `(in ${fmtLeft(left)})`);
  }
  for (const t of document.querySelectorAll('[data-testid="grace-left"]')) {
    const left = secondsLeft(t.getAttribute('data-grace-until'));
    t.textContent = `${fmtLeft(left)} left`;
    const arc = t.closest('svg').querySelector('[data-testid="grace-arc"]');
    const r = requests.get(t.closest('li').dataset.id);
    if (arc && r && r.grace && r.grace.from) {
      const total = Math.max(1, (Date.parse(r.grace.until) - Date.parse(r.grace.from)) / 1000);
      const c = 2 * Math.PI * 19;
      arc.setAttribute('stroke-dasharray', `${(c * Math.min(1, left / total)).toFixed(1)} ${c.toFixed(1)}`);
    }
  }
}

function showTab() {
  const explain = location.hash === '#explain';
  $('list-view').hidden = explain;
  $('explain-view').hidden = !explain;
  $('tab-list').className = `tab${explain ? '' : ' on'}`;
  $('tab-explain').className = `tab${explain ? ' on' : ''}`;
}

$('explain-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('explain-out').textContent = 'running…';
  const { body } = await post('/callbacks/api/explain', {
    timeline: $('x-timeline').value,
    keys: $('x-keys').value || undefined,
    external: $('x-external').checked,
  });
  $('explain-out').textContent = body.text || body.error || 'failed';
});
$('f-agent').addEventListener('change', connect);
$('f-state').addEventListener('change', connect);
window.addEventListener('hashchange', showTab);
showTab();
connect();
setInterval(tick, 1000);
