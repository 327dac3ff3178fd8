/**
 * The state table (src/core/policy/transitions.ts) against the machine and against the README:
 *  - random walks through the machine: every event it records is a row of the table (the machine would throw
 *    otherwise), and every row of the table is reached by some walk (the table claims nothing the machine cannot do);
 *  - the state diagram of docs/architecture.md ("How it works") has exactly the table's arrows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CALLBACK_STATES, START, TRANSITIONS, checkTransition, decide, isTerminal, newRequest, transitionList, type AgentKey, type CallbackRequest, type Observation, type PolicyConfig } from '../../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../../testkit/policy';
import { mulberry32 } from '../../support/rng';
import { HOUR, MINUTE, SECOND, T0, input } from './helpers';

const key = (t: { from: string; event: string; to: string }) => `${t.from} --${t.event}--> ${t.to}`;

function randomConfig(r: () => number): PolicyConfig {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  return makePolicyConfig({
    ...defaultPolicyConfig,
    graceMs: pick([0, 5 * MINUTE]),
    firstProbeDelayMs: pick([0, 10 * MINUTE]),
    backoffMs: [pick([0, 10 * MINUTE])],
    maxAttempts: pick([1, 2, 3]),
    maxSnoozes: pick([0, 1, 3]),
    noAnswerRetries: pick([0, 1]),
    menuRepeats: pick([1, 2]),
    maxAgeMs: pick([20 * MINUTE, 8 * HOUR]),
    recoveryDelayMs: pick([0, 10 * SECOND]),
    headsUpMs: pick([0, MINUTE]),
  });
}

function randomObservation(r: () => number): Observation {
  const keys: AgentKey[] = ['1', '2', '3', 'none'];
  const all: Observation[] = [
    { type: 'tick' },
    { type: 'tick' },
    { type: 'tick' },
    { type: 'prospectState', busy: r() < 0.5 },
    { type: 'prospectState', busy: r() < 0.5 },
    r() < 0.5 ? { type: 'refresh' } : { type: 'tick' },
    r() < 0.3 ? { type: 'cancel', by: 'test' } : { type: 'tick' },
    r() < 0.3 ? { type: 'snooze', by: 'web' } : { type: 'tick' },
    { type: 'agentAnswered' },
    r() < 0.3 ? { type: 'agentReturned' } : { type: 'tick' },
    { type: 'agentNoAnswer' },
    { type: 'agentKey', key: keys[Math.floor(r() * keys.length)] },
    { type: 'agentKey', key: '1' },
    { type: 'agentHungUp' },
    { type: 'recallFailed', reason: 'test' },
    { type: 'recallInterrupted', reason: 'test' },
    { type: 'prospectAnswered' },
    { type: 'prospectBusy' },
    { type: 'prospectNoAnswer' },
  ];
  return all[Math.floor(r() * all.length)];
}

/** Every (from, event, to) the machine recorded in `walks` random walks. */
function walk(walks: number): Set<string> {
  const seen = new Set<string>();
  for (let w = 0; w < walks; w++) {
    const r = mulberry32(7000 + w);
    let cfg = randomConfig(r);
    let now = T0 + Math.floor(r() * 12) * HOUR; // also outside calling hours
    const created = newRequest(input(r() < 0.5 ? 'device' : 'timed', `w${w}`), cfg, now);
    let req: CallbackRequest = created.request;
    for (const e of created.events) seen.add(key({ from: e.from ?? START, event: e.type, to: e.to }));
    for (let step = 0; step < 60 && !isTerminal(req.state); step++) {
      // Time passes: sometimes a little, sometimes to the request's next wake-up.
      const jump = r();
      if (jump < 0.4 && req.wakeAt !== null) now = Math.max(now, req.wakeAt);
      else now += Math.floor(r() * 10) * MINUTE + SECOND;
      // Now and then an admin lowers policy.maxAttempts while requests wait (and restarts the service).
      if (r() < 0.05) cfg = makePolicyConfig({ ...cfg, maxAttempts: 1 });
      const agent = { busy: r() < 0.2, since: now - Math.floor(r() * 2) * MINUTE };
      const d = decide(req, randomObservation(r), { now, cfg, agent });
      for (const e of d.events) seen.add(key({ from: e.from ?? START, event: e.type, to: e.to }));
      req = d.request;
    }
  }
  return seen;
}

describe('the state table', () => {
  it('is what the machine does: every event recorded is a row, and every row is reached', () => {
    const seen = walk(10000);
    const table = new Set(transitionList().map(key));
    expect([...seen].filter((t) => !table.has(t))).toEqual([]);
    expect([...table].filter((t) => !seen.has(t))).toEqual([]);
  });

  it('has no row for a terminal state, and names only real states', () => {
    for (const from of Object.keys(TRANSITIONS)) expect([START, ...CALLBACK_STATES.filter((s) => !isTerminal(s))]).toContain(from);
    for (const t of transitionList()) expect(CALLBACK_STATES).toContain(t.to);
  });

  it('refuses a step it does not know, loudly', () => {
    expect(() => checkTransition('WAITING', 'agent-accepted', 'CONNECTING')).toThrow(/policy bug: WAITING --agent-accepted--> CONNECTING is not in the state table/);
    expect(() => checkTransition(null, 'created', 'DUE')).toThrow(/START --created--> DUE/);
    expect(() => checkTransition('COMPLETED', 'cancelled', 'CANCELLED')).toThrow();
    expect(() => checkTransition('DUE', 'ring-agent', 'RINGING_AGENT')).not.toThrow();
  });
});

/**
 * The state diagram of docs/architecture.md: the fenced block under "### The request's states" in "How it works". An arrow is
 * a line `FROM · FROM … ──event──► TO | TO …  <text>`; `(new)` is START. Lines without `►` are commentary.
 */
function readmeArrows(): Set<string> {
  const readme = fs.readFileSync(path.join(__dirname, '../../../docs/architecture.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## How it works'));
  const heading = section.indexOf("### The request's states");
  expect(heading).toBeGreaterThan(-1);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(section.slice(heading))?.[1] ?? '';
  const arrows = new Set<string>();
  for (const line of block.split('\n')) {
    if (!line.includes('►')) continue;
    const m = /^\s*(.+?)\s+─+([a-z-]+)─*►\s+([A-Z_]+(?:\s*\|\s*[A-Z_]+)*)(?:\s{2,}.*)?$/.exec(line);
    if (!m) throw new Error(`docs/architecture.md state diagram: cannot read the arrow ${JSON.stringify(line)}`);
    const froms = m[1].split('·').map((s) => s.trim()).map((s) => (s === '(new)' ? START : s));
    const tos = m[3].split('|').map((s) => s.trim());
    for (const from of froms) for (const to of tos) arrows.add(key({ from, event: m[2], to }));
  }
  return arrows;
}

describe("the state diagram of docs/architecture.md", () => {
  it('has every arrow of the table, and no other', () => {
    const arrows = readmeArrows();
    const table = new Set(transitionList().map(key));
    expect([...arrows].filter((a) => !table.has(a))).toEqual([]);
    expect([...table].filter((t) => !arrows.has(t))).toEqual([]);
  });
});
