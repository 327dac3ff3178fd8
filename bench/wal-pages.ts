/**
 * Pages per opt-in COMMIT on SQLite: what one opt-in writes into the WAL, counted exactly, and on which b-tree.
 *
 *   node .tools-dist/bench/wal-pages.js [opt-ins] [pending before] [--outbox] [--life]
 *
 * The store's own path (Engine.optIn → createOrRefresh → the group's COMMIT), one opt-in after the other into a file
 * that already holds `pending before` requests of other agents (default 2000, so the b-trees have their real depth),
 * every opt-in a new request of a new agent/prospect pair. Checkpoints are held off during the counted opt-ins, so
 * the WAL only grows: the frames a COMMIT appended are the bytes between the WAL's length before and after it
 * (24-byte frame header + one page each); each frame's page number is read from its header and named with the
 * `dbstat` virtual table (which table or index owns the page). `--outbox` adds a webhook outbox row per opt-in, as
 * a service with a CRM webhook writes. `--life` then takes every counted request through the rest of a request's
 * life, one transition (Store.transition: the row, one history row) per COMMIT, phase by phase: GRACE, DUE, the
 * recall (RINGING_AGENT, CONNECTING) and COMPLETED, so that a schema which moves the opt-in's pages to a later
 * transition shows it. Prints one JSON line: frames per COMMIT (p50/max), WAL bytes per COMMIT, and the frames per
 * b-tree summed over the run; with --life the same per phase and the frames of a whole life (the means summed).
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CallbackRequest } from '../src/core/policy';
import { Engine } from '../src/engine';
import { SqliteStore } from '../src/store/sqlite';
import { OutboxInsert } from '../src/store/contract';
import { round, stats } from './common';
import { policy, prospectDevice, silent } from './scale';

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const withOutbox = process.argv.includes('--outbox');
  const withLife = process.argv.includes('--life');
  const n = Number(args[0] ?? 200);
  const before = Number(args[1] ?? 2000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-wal-pages-'));
  const file = path.join(dir, 'callbacks.db');
  const wal = `${file}-wal`;
  // Checkpoints: SQLite's own inside the COMMIT (no worker thread writing meanwhile), held off below.
  const store = SqliteStore.open<CallbackRequest>(file, { checkpoint: 'commit' });
  let k = 0;
  const outbox = withOutbox
    ? (decision: { request: CallbackRequest }, at: number): OutboxInsert[] => [
        { key: `${decision.request.id}:requested`, requestId: decision.request.id, event: 'callback.requested', createdAt: at, body: JSON.stringify({ id: decision.request.id, at }) },
      ]
    : undefined;
  const engine = new Engine({ store, policy, log: silent, clock: Date.now, maxPendingPerAgent: 1_000_000, prospectDevice, outbox: outbox as never });
  engine.setPbxUp(true);
  const optIn = async () => {
    const i = k++;
    const r = await engine.optIn({ agent: `PJSIP/a${i}`, agentCallerId: { name: 'A', number: '1' }, prospect: `+49301${String(i).padStart(7, '0')}`, language: 'en', channelId: `c${i}` });
    if (r.result !== 'created') throw new Error(`opt-in ${i}: ${r.result}`);
  };
  for (let i = 0; i < before; i++) await optIn();
  // From here on no checkpoint: the WAL only grows, and every COMMIT's frames are the bytes it appended.
  const side = new Database(file);
  side.pragma('wal_checkpoint(TRUNCATE)');
  side.close();
  (store as unknown as { db: { db: Database.Database } }).db.db.pragma('wal_autocheckpoint = 0');
  const pageSize = 4096;
  const frame = 24 + pageSize;
  const size = () => (fs.existsSync(wal) ? fs.statSync(wal).size : 0);
  /** The frames one COMMIT appended and their page numbers. */
  const counted = async (commit: () => Promise<void>, perCommit: number[], pages: number[]) => {
    const s0 = size();
    await commit();
    const s1 = size();
    const from = s0 === 0 ? 32 : s0;
    const frames = (s1 - from) / frame;
    perCommit.push(frames);
    const fd = fs.openSync(wal, 'r');
    const head = Buffer.alloc(4);
    for (let f = 0; f < frames; f++) {
      fs.readSync(fd, head, 0, 4, from + f * frame);
      pages.push(head.readUInt32BE(0));
    }
    fs.closeSync(fd);
  };
  const perCommit: number[] = [];
  const pages: number[] = [];
  const first = k;
  for (let i = 0; i < n; i++) await counted(optIn, perCommit, pages);
  // The rest of each counted request's life: one transition per COMMIT, as the engine's ledger writes it.
  const phases: { name: string; state: string; wake: (now: number) => number | null; perCommit: number[]; pages: number[]; owner?: Map<number, string> }[] = withLife
    ? [
        { name: 'grace', state: 'GRACE', wake: (now) => now + 60_000, perCommit: [], pages: [] },
        { name: 'due', state: 'DUE', wake: () => null, perCommit: [], pages: [] },
        { name: 'ringing', state: 'RINGING_AGENT', wake: (now) => now + 30_000, perCommit: [], pages: [] },
        { name: 'connecting', state: 'CONNECTING', wake: (now) => now + 30_000, perCommit: [], pages: [] },
        { name: 'completed', state: 'COMPLETED', wake: () => null, perCommit: [], pages: [] },
      ]
    : [];
  // Which b-tree each page belongs to (dbstat reads the current state, WAL included), taken after each phase: a page
  // that a later phase frees (a finished request leaving the pending indexes) and reuses belongs to another tree then.
  const owners = () => {
    const reader = new Database(file, { readonly: true });
    const owner = new Map<number, string>();
    for (const row of reader.prepare('SELECT name, pageno FROM dbstat').all() as { name: string; pageno: number }[]) owner.set(row.pageno, row.name);
    reader.close();
    return owner;
  };
  const optInOwner = owners();
  const ids: string[] = [];
  for (let i = first; i < first + n; i++) ids.push((await store.findPending(`PJSIP/a${i}`, `+49301${String(i).padStart(7, '0')}`))!.request.id);
  for (const phase of phases) {
    for (const id of ids) {
      const { request, version } = (await store.get(id))!;
      const now = Date.now();
      const next = { ...request, state: phase.state, updatedAt: now, wakeAt: phase.wake(now) } as CallbackRequest;
      const event = { requestId: id, at: now, type: 'transition', from: request.state, to: phase.state, reason: 'bench', data: { wakeAt: next.wakeAt } };
      await counted(
        async () => {
          if ((await store.transition(next, version, [event])) === undefined) throw new Error(`${id}: ${phase.state} lost`);
        },
        phase.perCommit,
        phase.pages,
      );
    }
    phase.owner = owners();
  }
  const reader = new Database(file, { readonly: true });
  const schema = reader.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string };
  reader.close();
  const perTree = (ps: readonly number[], owner: Map<number, string>) => {
    const byTree: Record<string, number> = {};
    for (const p of ps) {
      const name = p === 1 ? 'page 1 (header, sqlite_schema)' : (owner.get(p) ?? 'freelist/other');
      byTree[name] = (byTree[name] ?? 0) + 1;
    }
    return Object.fromEntries(Object.entries(byTree).sort((a, b) => b[1] - a[1]).map(([name, c]) => [name, round(c / n, 2)]));
  };
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const s = stats(perCommit);
  const out = {
    schema: schema.value,
    outbox: withOutbox,
    optIns: n,
    pendingBefore: before,
    framesPerCommit: { p50: s.p50, mean: round(perCommit.reduce((a, b) => a + b, 0) / n, 2), max: s.max },
    walBytesPerCommit: round((perCommit.reduce((a, b) => a + b, 0) / n) * frame, 0),
    perTreePerCommit: perTree(pages, optInOwner),
    ...(withLife
      ? {
          life: {
            framesPerLife: round(mean(perCommit) + phases.reduce((a, ph) => a + mean(ph.perCommit), 0), 2),
            phases: Object.fromEntries(
              phases.map((ph) => [ph.name, { framesPerCommit: { p50: stats(ph.perCommit).p50, mean: round(mean(ph.perCommit), 2), max: stats(ph.perCommit).max }, perTreePerCommit: perTree(ph.pages, ph.owner!) }]),
            ),
          },
        }
      : {}),
  };
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
