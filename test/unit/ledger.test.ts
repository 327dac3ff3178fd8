import { cancelOne } from '../../src/cli/requests';
import { newRequest, type CallbackRequest, type Decision } from '../../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig } from '../../testkit/policy';
import { Engine } from '../../src/engine';
import { Ledger, guards, type LedgerStore } from '../../src/ledger';
import type { StoredEvent } from '../../src/store/contract';
import { SqliteStore } from '../../src/store/sqlite';
import { outboxRowsFor } from '../../src/webhook/payload';
import { engineWorld } from '../../testkit/engine';

const T0 = Date.UTC(2026, 10, 25, 9, 0, 0); // a Wednesday, 10:00 in Berlin
const policy = makePolicyConfig({ ...defaultPolicyConfig, graceMs: 60_000 });

/** A store holding one request 'r1' (agent 1001 → prospect 2001, watched line), created at T0 through the ledger. */
async function seeded(): Promise<SqliteStore<CallbackRequest>> {
  const store = SqliteStore.open<CallbackRequest>(':memory:');
  const ledger = new Ledger({ store, policy, clock: () => T0, outbox: outboxRowsFor });
  const made = newRequest({ id: 'r1', agent: 'PJSIP/1001', agentCallerId: { name: 'A', number: '1001' }, prospect: '2001', language: 'en', mode: 'device' }, policy, T0);
  await store.createOrRefresh('PJSIP/1001', '2001', 10, () => ledger.rows(made, T0), () => {
    throw new Error('not pending yet');
  });
  return store;
}

async function engineOn(store: SqliteStore<CallbackRequest>, at: number): Promise<Engine> {
  return (await engineWorld({ store, policy, at, prospectDevice: (n) => `PJSIP/${n}`, outbox: outboxRowsFor, started: false, pbxUp: false })).engine;
}

/** The ledger's store with its reads and versioned writes replaced (a racing service, a write that always loses). */
const withReads = (store: SqliteStore<CallbackRequest>, parts: Pick<LedgerStore, 'get' | 'transition'>): LedgerStore => ({
  createOrRefresh: store.createOrRefresh.bind(store),
  appendEvents: store.appendEvents.bind(store),
  enqueueOutbox: store.enqueueOutbox.bind(store),
  ...parts,
});

const history = async (store: SqliteStore<CallbackRequest>, id = 'r1') => (await store.events(id)).map(({ id: _rowId, ...e }: StoredEvent) => e);
const outbox = async (store: SqliteStore<CallbackRequest>) => (await store.outbox()).map(({ id: _rowId, ...row }) => row);

describe('the ledger: one place that applies a decision', () => {
  it.each([
    ['WAITING', async (_e: Engine) => undefined],
    ['GRACE', async (e: Engine) => void (await e.observe('r1', { type: 'prospectState', busy: false }))],
  ])('the CLI cancel and the engine write the same request, history and outbox rows (from %s)', async (state, prepare) => {
    const viaEngine = await seeded();
    const viaCli = await seeded();
    await prepare(await engineOn(viaEngine, T0 + 1000));
    await prepare(await engineOn(viaCli, T0 + 1000));
    expect((await viaEngine.get('r1'))!.request.state).toBe(state);
    const now = { t: T0 + 5000 };
    const decided = await (await engineOn(viaEngine, now.t)).cancel('r1', 'cli (alice)');
    expect(decided?.request.state).toBe('CANCELLED');
    const outcome = await cancelOne(viaCli, 'r1', 'cli (alice)', { now: now.t, cfg: policy, outbox: outboxRowsFor });
    expect(outcome).toMatchObject({ cancelled: true, from: state, state: 'CANCELLED' });
    expect(await viaCli.get('r1')).toEqual(await viaEngine.get('r1'));
    expect(await history(viaCli)).toEqual(await history(viaEngine));
    expect((await history(viaCli)).at(-1)).toMatchObject({ type: 'cancelled', from: state, to: 'CANCELLED' });
    expect(await outbox(viaCli)).toEqual(await outbox(viaEngine));
    expect((await outbox(viaCli)).map((r) => r.event)).toEqual(['requested', 'cancelled']);
  });

  it('refuses a decision made on a stale version: nothing of it is written', async () => {
    const store = await seeded();
    const ledger = new Ledger({ store, policy, clock: () => T0 + 1000, outbox: outboxRowsFor });
    const seen = (await store.get('r1'))!;
    // Someone else moves the request on after we read it.
    expect((await ledger.apply('r1', { type: 'prospectState', busy: false })).status).toBe('applied');
    const before = { request: await store.get('r1'), events: await history(store), outbox: await outbox(store) };
    const late: Decision = ledger.decide(seen.request, { type: 'cancel', by: 'late' });
    expect(await ledger.commit(late, seen.version, T0 + 2000)).toBeUndefined();
    expect({ request: await store.get('r1'), events: await history(store), outbox: await outbox(store) }).toEqual(before);
    // A caller that pins the version it saw is told so, and nothing is written either.
    expect(await ledger.apply('r1', { type: 'cancel', by: 'late' }, { expectedVersion: seen.version })).toEqual({ status: 'stale', version: seen.version + 1 });
    expect(await history(store)).toEqual(before.events);
    // With the current version it goes through.
    expect(await ledger.apply('r1', { type: 'cancel', by: 'on time' }, { expectedVersion: seen.version + 1 })).toMatchObject({ status: 'applied', version: seen.version + 2 });
  });

  it('re-reads and decides afresh when it loses the race, so both changes are in the history', async () => {
    const store = await seeded();
    const other = new Ledger({ store, policy, clock: () => T0 + 1000 });
    let raced = false;
    const racing = {
      get: async (id: string) => await store.get(id),
      transition: async (...args: Parameters<typeof store.transition>) => {
        if (!raced) {
          raced = true;
          expect((await other.apply('r1', { type: 'prospectState', busy: false })).status).toBe('applied');
        }
        return await store.transition(...args);
      },
    };
    const ledger = new Ledger({ store: withReads(store, racing), policy, clock: () => T0 + 2000 });
    const r = await ledger.apply('r1', { type: 'cancel', by: 'cli' });
    expect(r).toMatchObject({ status: 'applied', version: 3 });
    expect(r.status === 'applied' && r.before.state).toBe('GRACE');
    expect((await await history(store)).map((e) => e.to)).toEqual(['WAITING', 'GRACE', 'CANCELLED']);
  });

  it('gives up with "conflict" when the request keeps changing', async () => {
    const store = await seeded();
    const ledger = new Ledger({ store: withReads(store, { get: async (id) => await store.get(id), transition: async () => undefined }), policy });
    expect(await ledger.apply('r1', { type: 'cancel', by: 'cli' }, { maxTries: 4 })).toEqual({ status: 'conflict' });
  });

  it('a guard or a dry run writes nothing; an unknown id is not found', async () => {
    const store = await seeded();
    const ledger = new Ledger({ store, policy, clock: () => T0 + 1000, outbox: outboxRowsFor });
    const events = await history(store);
    expect(await ledger.apply('r1', { type: 'cancel', by: 'cli' }, { guard: () => 'no, thanks' })).toMatchObject({ status: 'refused', reason: 'no, thanks' });
    expect(await ledger.apply('r1', { type: 'cancel', by: 'cli' }, { dryRun: true })).toMatchObject({ status: 'dry-run', decision: { request: { state: 'CANCELLED' } } });
    expect(await history(store)).toEqual(events);
    expect((await store.get('r1'))!.version).toBe(1);
    expect(await ledger.apply('nope', { type: 'tick' })).toEqual({ status: 'not-found' });
  });

  it('the named operator guards are checked inside the write: a request that starts dialling between read and write is left alone', async () => {
    const store = await seeded();
    // The service moves r1 on to CONNECTING right after the operator's first read (the page's old pre-read race).
    let reads = 0;
    const racing = {
      get: async (id: string) => {
        const seen = await store.get(id);
        if (reads++ === 0 && seen) await store.transition({ ...seen.request, state: 'CONNECTING', wakeAt: null }, seen.version, []);
        return seen;
      },
      transition: store.transition.bind(store),
    };
    const ledger = new Ledger({ store: withReads(store, racing), policy, clock: () => T0 + 1000, outbox: outboxRowsFor });
    const pageGuard = guards.all(guards.notFinished('cancel'), guards.notDialling('cancel'));
    expect(await ledger.apply('r1', { type: 'cancel', by: 'web' }, { guard: pageGuard })).toMatchObject({
      status: 'refused',
      reason: 'not cancelled: the prospect is being dialled right now',
    });
    expect((await store.get('r1'))!.request.state).toBe('CONNECTING');
    // The CLI's --force keeps only the finished-request guard; a finished request is refused by both.
    expect(await ledger.apply('r1', { type: 'cancel', by: 'cli' }, { guard: guards.notFinished('cancel') })).toMatchObject({ status: 'applied' });
    expect(await ledger.apply('r1', { type: 'cancel', by: 'web' }, { guard: pageGuard })).toMatchObject({ status: 'refused', reason: 'already CANCELLED; nothing to cancel' });
  });
});
