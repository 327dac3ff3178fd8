/**
 * What the store does per opt-in and per call on SQLite, counted: statements executed (better-sqlite3's get / all /
 * run / iterate and exec, by kind), rows they returned, JSON values parsed (and their characters), and the CPU
 * (user + system µs from process.cpuUsage) per operation, on the store's own path (Engine.optIn → createOrRefresh →
 * the group's COMMIT, synchronous = FULL as the service runs it).
 *
 *   node .tools-dist/bench/store-counts.js [operations per kind] [pending before] [--sql] [--only=new,refresh,…]
 *
 * The file first holds `pending before` requests of other agents (default 2000), so the b-trees have their depth.
 * Kinds: `new` (an opt-in of a new agent/prospect pair), `refresh` (the same pair again, as every call of the load
 * part after the first; the engine started, so each decision re-arms its timer), the reads of one offered call beside its opt-in: `offerOutlook` (the offer's promise
 * and place), `statesOf` (the lamp's read, as src/app/operations.ts makes it), `prospectPlace`, `nextWake`, and `call`
 * (the outlook, the refresh and the lamp's read after its decision: one call of the load part). Prints
 * one JSON line: per kind, per operation: statements by kind, execs by their first word, rows, JSON parses and
 * characters parsed, CPU µs (user, system).
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CALLBACK_STATES, CallbackRequest, TERMINAL_STATES, headsUpActive } from '../src/core/policy';
import { SqliteStore } from '../src/store/sqlite';
import { Engine } from '../src/engine';
import { round } from './common';
import { benchRequest, policy, prospectDevice, silent } from './scale';

const counts = { get: 0, all: 0, run: 0, iterate: 0, rows: 0, parses: 0, parsedChars: 0 };
const execs: Record<string, number> = {};
/** With --sql: each statement's text, how often it ran and the µs it took in all. */
const bySql = new Map<string, { n: number; us: number }>();
const verbose = process.argv.includes('--sql');

function patch(): void {
  const probe = new Database(':memory:');
  const Statement = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (...a: unknown[]) => unknown>;
  probe.close();
  for (const m of ['get', 'all', 'run'] as const) {
    const orig = Statement[m];
    Statement[m] = function (this: unknown, ...a: unknown[]) {
      counts[m]++;
      const t0 = verbose ? performance.now() : 0;
      const r = orig.apply(this, a);
      if (verbose) {
        const sql = `${m} ${(this as { source: string }).source.replace(/\s+/g, ' ').slice(0, 160)}`;
        const e = bySql.get(sql) ?? { n: 0, us: 0 };
        e.n++;
        e.us += (performance.now() - t0) * 1000;
        bySql.set(sql, e);
      }
      if (m === 'get' && r !== undefined) counts.rows++;
      if (m === 'all') counts.rows += (r as unknown[]).length;
      return r;
    };
  }
  const origExec = Database.prototype.exec;
  Database.prototype.exec = function exec(this: Database.Database, sql: string) {
    for (const part of sql.split(';')) {
      const word = part.trim().split(/\s/)[0];
      if (word) execs[word.toUpperCase()] = (execs[word.toUpperCase()] ?? 0) + 1;
    }
    return origExec.call(this, sql);
  };
  const origParse = JSON.parse;
  JSON.parse = function parse(text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) {
    counts.parses++;
    counts.parsedChars += text.length;
    return origParse(text, reviver);
  } as typeof JSON.parse;
}

function reset(): void {
  for (const k of Object.keys(counts) as (keyof typeof counts)[]) counts[k] = 0;
  for (const k of Object.keys(execs)) delete execs[k];
  bySql.clear();
}

const OPEN_STATES = CALLBACK_STATES.filter((s) => !(TERMINAL_STATES as readonly string[]).includes(s));

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const n = Number(args[0] ?? 300);
  const before = Number(args[1] ?? 2000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-store-counts-'));
  const file = path.join(dir, 'callbacks.db');
  const store = SqliteStore.open<CallbackRequest>(file, { checkpoint: 'background', sync: 'commit' });
  const now = Date.now();
  // The fill, written directly (one transaction): other agents' pending requests.
  const fill = new Database(file);
  const ins = fill.prepare('INSERT INTO requests(id, agent, prospect, state, created_at, updated_at, wake_at, version, data) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)');
  fill.transaction(() => {
    for (let i = 0; i < before; i++) {
      const r = benchRequest(i, now + 3_600_000);
      ins.run(r.id, r.agent, r.prospect, r.state, r.createdAt, r.updatedAt, r.wakeAt, JSON.stringify(r));
    }
  })();
  fill.close();
  // As the service runs it: started (each decision re-arms the timer: nextWake), the lamp's read after each decision
  // (during the `call` kind only).
  const engine = new Engine({ store, policy, log: silent, clock: Date.now, maxPendingPerAgent: 1_000_000, prospectDevice, pauseWatchMs: 3_600_000 });
  engine.setPbxUp(true);
  await engine.start();
  let lamp = false;
  engine.onDecision(({ decision }) => {
    if (lamp) void statesOf(decision.request.agent);
  });
  const statesOf = async (agent: string) => {
    const t = engine.now();
    return (await engine.store.list({ agent, states: OPEN_STATES })).map((r) => (headsUpActive(r, t) ? 'HEADS_UP' : r.state));
  };
  patch();
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const out: Record<string, unknown> = { n, before };
  const agent = 'PJSIP/load';
  const prospect = '+4930999000001';
  let k = 0;
  const kinds: Record<string, () => Promise<unknown>> = {
    new: async () => {
      const i = k++;
      const r = await engine.optIn({ agent: `PJSIP/n${i}`, agentCallerId: { name: 'A', number: '1' }, prospect: `+49301${String(i).padStart(7, '0')}`, language: 'en', channelId: `c${i}` });
      if (r.result !== 'created') throw new Error(`new: ${r.result}`);
    },
    refresh: async () => {
      const i = k++;
      const r = await engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect, language: 'en', channelId: `c${i}` });
      if (r.result !== 'refreshed') throw new Error(`refresh: ${r.result}`);
    },
    offerOutlook: () => engine.offerOutlook(agent, prospect),
    statesOf: () => statesOf(agent),
    prospectPlace: () => engine.store.prospectPlace(prospect, agent, 3),
    nextWake: () => engine.store.nextWake(),
    // One offered call of the load part: the offer's outlook, the opt-in (a refresh), the lamp after the decision.
    call: async () => {
      lamp = true;
      try {
        await engine.offerOutlook(agent, prospect);
        await kinds.refresh();
      } finally {
        lamp = false;
      }
    },
  };
  // The refresh pair exists before the counted refreshes (its first opt-in is a new request).
  await engine.optIn({ agent, agentCallerId: { name: 'A', number: '1' }, prospect, language: 'en', channelId: 'c-first' });
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
  for (const [name, op] of Object.entries(kinds)) {
    if (only && !only.includes(name)) continue;
    for (let w = 0; w < 30; w++) {
      await turn();
      await op();
    }
    reset();
    let cpu = { user: 0, system: 0 };
    for (let j = 0; j < n; j++) {
      await turn();
      const c0 = process.cpuUsage();
      await op();
      const c = process.cpuUsage(c0);
      cpu = { user: cpu.user + c.user, system: cpu.system + c.system };
    }
    const per = (x: number) => round(x / n, 2);
    out[name] = {
      statements: { get: per(counts.get), all: per(counts.all), run: per(counts.run) },
      execs: Object.fromEntries(Object.entries(execs).map(([w, c]) => [w, per(c)])),
      rows: per(counts.rows),
      jsonParses: per(counts.parses),
      parsedChars: per(counts.parsedChars),
      cpuUs: { user: per(cpu.user), system: per(cpu.system) },
      ...(verbose ? { sql: Object.fromEntries([...bySql].map(([q, c]) => [q, { n: per(c.n), us: per(c.us) }])) } : {}),
    };
  }
  out.load = os.loadavg().map((x) => round(x, 2));
  engine.stop();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
