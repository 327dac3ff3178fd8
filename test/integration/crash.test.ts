/**
 * Nothing lost, nothing twice: kill -9 the service at random points of the requests' lives (while they
 * wait, while they are due, while the agent's phone rings, while the agent listens to the menu, while
 * the prospect is dialled), restart it at once, and check what Asterisk actually did.
 *
 * CC_CRASH_KILLS sets the number of kills (default 30); `npm run soak` runs a longer version. The same run
 * on PostgreSQL (store.url; each restart first waits for the killed instance's lease to expire, then takes
 * it with a new epoch) has CC_CRASH_KILLS_PG kills (default 5).
 */
import { FAST_RECALL, ServiceProcess, TestAri, TestPhone, describePbx, simLine, sleep } from './harness';
import { mulberry32 as rng } from '../support/rng';
import type { CallbackRequest } from '../../src/core/policy';
import { SqliteStore } from '../../src/store/sqlite';
import { PgStore } from '../../src/store/postgres';
import { freshDatabase } from '../../testkit/pg';

const KILLS_SQLITE = Number(process.env.CC_CRASH_KILLS ?? 30);
const KILLS_PG = Number(process.env.CC_CRASH_KILLS_PG ?? 5);
const SEED = Number(process.env.CC_CRASH_SEED ?? Date.now() % 100000);
const AGENTS = ['1001', '1002', '1003', '1004'].map((x) => `Local/${x}@cc-test-phone`);


const BASE_CONFIG = {
  ...FAST_RECALL,
  ari: { leaseTtl: '3s' },
  prospects: { internal: [] },
  policy: {
    ...FAST_RECALL.policy,
    firstProbeDelay: '2s',
    backoff: ['2s'],
    snooze: '2s',
    maxSnoozes: 20,
    maxAttempts: 20,
    noAnswerRetries: 10,
    agentWrapUp: '1s',
    agentRingTimeout: '6s',
    menuTimeout: '3s',
    prospectRingTimeout: '6s',
    recallSafetyMargin: '3s',
  },
};

async function crashRun(backend: 'sqlite' | 'postgres', KILLS: number, ari: TestAri, phone: TestPhone): Promise<void> {
  {
    const db = backend === 'postgres' ? await freshDatabase('crash') : undefined;
    const CONFIG = db ? { ...BASE_CONFIG, store: { url: db.url }, pbx: { id: 'crash' } } : BASE_CONFIG;
    const random = rng(SEED);
    // One test app connection for both runs (a closed one may unregister the app under a new one); this
    // run's rings are those after `from`.
    const from = ari.events.length;
    await ari.hangupStale('cc-test-phone');
    let svc = await new ServiceProcess(CONFIG).start();
    const dir = svc.dir;
    const restart = async (why: string) => {
      await svc.stop('SIGKILL');
      kills.push(why);
      svc = new ServiceProcess(CONFIG, dir);
      await svc.start();
    };
    const kills: string[] = [];

    // The agents' handsets: answer every recall, press 1 a moment later, hang up once connected.
    const handled = new Set<string>();
    let phoneRunning = true;
    const phoneLoop = (async () => {
      while (phoneRunning) {
        for (const ring of phone.rings(from)) {
          const id = TestPhone.id(ring);
          if (handled.has(id)) continue;
          handled.add(id);
          void (async () => {
            await sleep(150);
            await phone.answer(ring).catch(() => undefined);
            await sleep(1200);
            await ari.press(id, '1').catch(() => undefined);
          })();
        }
        await sleep(50);
      }
    })();

    try {
      // Rounds until the kills are done: in each, every agent opts in (some processes are killed right
      // after the # was written), then the requests live their lives, interrupted again and again.
      const confirmed: string[] = [];
      const finished = () => {
        const list = svc.list();
        return list.length === confirmed.length && list.every((r) => ['COMPLETED', 'CANCELLED', 'EXPIRED', 'FAILED'].includes(String(r.state)));
      };
      for (let round = 0; kills.length < KILLS; round++) {
        simLine('INUSE');
        for (const [i, agent] of AGENTS.entries()) {
          const mark = svc.logs.length;
          const leg = await ari.agentDials('2995', { agent });
          await ari.answered(leg);
          await svc.waitLog((l) => l.event === 'offer.started', 15000, mark);
          await ari.press(leg, '#');
          const line = await svc.waitLog((l) => l.event === 'offer.opted_in' && l.result === 'created', 10000, mark);
          confirmed.push(String(line.requestId));
          if ((i + round) % 2 === 0) await restart('right after the # was written');
          else await ari.gone(leg);
        }
        simLine('NOT_INUSE');
        while (kills.length < KILLS && !finished()) {
          await sleep(300 + random() * 3500);
          const states = svc.list().filter((r) => !confirmed.slice(0, -AGENTS.length).includes(String(r.id))).map((r) => String(r.state));
          await restart(`while ${[...new Set(states)].sort().join('/')}`);
        }
        const deadline = Date.now() + 120000;
        while (!finished() && Date.now() < deadline) await sleep(500);
        if (!finished()) break;
      }

      // 1. Every request the agents were told about exists and reached a correct end.
      const list = svc.list();
      expect(list.map((r) => r.id).sort()).toEqual([...confirmed].sort());
      const summary = list.map((r) => `${r.id} ${r.state} ${r.outcome} attempts=${r.attempts} snoozes=${r.snoozes}`).join('\n');
      expect({ summary, states: list.map((r) => r.state) }).toEqual({ summary, states: list.map(() => 'COMPLETED') });

      // 2. What Asterisk did: every ring of an agent used a new channel, and no agent had two rings at once.
      const rings = phone.rings(from);
      const ids = rings.map((r) => TestPhone.id(r));
      expect(new Set(ids).size).toBe(ids.length);
      for (const agent of AGENTS) {
        const ext = agent.split('/')[1].split('@')[0];
        const spans = rings
          .filter((r) => (r.args as string[])[1] === ext)
          .map((r) => {
            const id = TestPhone.id(r);
            const start = Date.parse(String(r.timestamp));
            const end = ari.events.find((e) => (e.type === 'StasisEnd' || e.type === 'ChannelDestroyed') && (e.channel as { id: string }).id === id);
            return { id, start, end: end ? Date.parse(String(end.timestamp)) : Infinity };
          })
          .sort((a, b) => a.start - b.start);
        const overlaps = spans.slice(1).filter((b, i) => b.start < spans[i].end).map((b, i) => `${spans[i].id} [${spans[i].start}–${spans[i].end}] overlaps ${b.id} [${b.start}–${b.end}]`);
        expect({ agent, overlaps }).toEqual({ agent, overlaps: [] });
      }

      // 3. Each request was connected exactly once, by its history in the store (a log line can die with
      //    a killed process; the committed history cannot).
      const history = db ? await PgStore.open<CallbackRequest>(db.url, { allPbx: true }) : SqliteStore.open<CallbackRequest>(svc.storePath, { readonly: true });
      try {
        for (const r of list) {
          const answered = (await history.events(String(r.id))).filter((e) => e.type === 'prospect-answered');
          expect({ id: r.id, connected: answered.length }).toEqual({ id: r.id, connected: 1 });
        }
      } finally {
        await history.close();
      }
      expect(kills.length).toBeGreaterThanOrEqual(Math.min(KILLS, 4));
      process.stderr.write(`[crash ${backend}] seed ${SEED}: ${kills.length} kills (${[...new Set(kills)].join('; ')}), ${rings.length} rings\n`);
    } finally {
      phoneRunning = false;
      await phoneLoop;
      await svc.stop();
      simLine('NOT_INUSE');
      await db?.drop();
    }
  }
}

describePbx(`kill -9 at random points (seed ${SEED})`, () => {
  let ari: TestAri;
  let phone: TestPhone;
  beforeAll(async () => {
    ari = await TestAri.connect();
    phone = await TestPhone.attach(ari);
  });
  afterAll(async () => {
    await ari?.close();
  });
  it(`SQLite, ${KILLS_SQLITE} kills: every request reaches a correct end, no agent is rung twice at once, no confirmed # is lost`, () => crashRun('sqlite', KILLS_SQLITE, ari, phone), 15 * 60 * 1000);
  it(`PostgreSQL, ${KILLS_PG} kills: the same, each restart taking the lease over with a new epoch`, () => crashRun('postgres', KILLS_PG, ari, phone), 15 * 60 * 1000);
});
