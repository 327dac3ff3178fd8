/**
 * Group commit: decisions arriving together share one durable commit.
 *
 * `GroupCommit` is the process's queue of decisions (the engine's `exclusive`). Decisions still run one at a
 * time — each reads what the one before it wrote — but the queue moves on as soon as a decision's writes are
 * *staged* (in the open group transaction of the Db port, src/store/db.ts `group`, a SAVEPOINT each), not when
 * they are durable. When no decision is waiting any more (on PostgreSQL after one more turn of the event loop, so
 * that events which arrived together join; see GroupTx.linger), or after `maxGroup` decisions, the group commits once, and only then does each
 * decision's caller get its answer and do its side effects (`afterCommit`: telephony actions, webhooks, the
 * decision listeners) run. When the commit fails, every decision of the group fails: its caller gets the
 * error, none of its side effects ran, nothing of it is in the store. A crash between staging and commit
 * leaves nothing durable (the transaction was never committed) and nobody told. On PostgreSQL the COMMIT may go in
 * the message of the group's last opt-ins (GroupBatch; `settle`): one round trip instead of two for an opt-in alone.
 *
 * When the driver makes the commit durable after it (SQLite's sync off the event loop, src/store/wal-sync.ts;
 * GroupTx.commit resolves with `durable`), the next group is staged and committed while this one's sync runs, and
 * this group's callers are answered and its side effects run when `durable` resolves — groups in commit order. A
 * failed sync fails the group like a failed COMMIT (its rows may be in the file, but nobody was told and none of
 * its side effects ran). Each side effect is handed the moment the group became durable (performance.now()), so
 * the offer's "# → durable" is measured to that moment, not to when its turn among the side effects came.
 *
 * `staging` carries the decision being staged through its awaits (AsyncLocalStorage), so the drivers send that
 * decision's statements to the group's connection while everything else keeps reading committed rows; the same scope
 * carries the decision's place in the queue (`decision`), where `afterCommit` finds it. One AsyncLocalStorage, not
 * one here and one per queue: while any is enabled (Node 20) every promise of the process runs an init hook that
 * copies each instance's value onto the new promise (a loop of awaits: 0.05-0.08 µs more per promise with one
 * instance, 0.11-0.14 with two); with one instead of two the service allocated 213-218 KiB per call instead of 241
 * and scavenged 16 times per 1000 calls instead of 18 (bench/cpu-call.ts --gc at 50 calls/s, 2026-12-08).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { GroupBatch, GroupTx } from './db';

/** The decision being staged, as the driver that opened the group sees it (see `stagedOn`). */
export interface StageScope {
  /** The Db whose group this is: another Db's statements are not routed. */
  readonly owner: object;
  /** False once the decision is staged: work it left running (not awaited) no longer goes to the group. */
  active: boolean;
  /** Nested `tx` savepoints, for their names. */
  depth: number;
  /** Statements other than atomic ones this decision sent (PostgreSQL's group batching, src/store/postgres.ts). */
  plain: number;
  /** The queue's decision staged in this scope (GroupCommit sets it as the decision starts; see afterCommit). */
  decision?: StagedDecision;
}

/** A decision of a GroupCommit queue as its scope carries it (afterCommit). */
export interface StagedDecision {
  /** The queue it belongs to: another queue's afterCommit does not take its side effects. */
  readonly queue: object;
  /** True until it is staged: a side effect asked for later (by work it left running) runs at once. */
  staging: boolean;
  /** Side effects, carried out in order once the group is durable (given that moment, performance.now()). */
  effects: ((durableAt: number) => void)[];
}

const staging = new AsyncLocalStorage<StageScope>();

/** Runs `fn` as a decision staged in `owner`'s group; see StageScope. */
export async function asStaged<T>(owner: object, fn: () => Promise<T>, scope: StageScope = newScope(owner)): Promise<T> {
  try {
    return await staging.run(scope, fn);
  } finally {
    scope.active = false;
  }
}

export function newScope(owner: object): StageScope {
  return { owner, active: true, depth: 0, plain: 0 };
}

/** The staged decision whose statement this is, when it belongs to `owner`'s open group. */
export function stagedOn(owner: object): StageScope | undefined {
  const s = staging.getStore();
  return s && s.active && s.owner === owner ? s : undefined;
}

interface Item extends StagedDecision {
  f: () => Promise<unknown>;
  quick: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  value?: unknown;
  /** Its place in the group (side effects run in this order; with batching decisions end out of order). */
  order?: number;
}

/** The owner of a decision's scope when the store has no group (NO_GROUP): no Db's, so no statement is routed. */
const NO_OWNER = {};

/** A store without group commit (a test's fake): each decision on its own, as it writes. */
const NO_GROUP: GroupTx = { linger: false, stage: (fn) => fn(), commit: async () => undefined, rollback: async () => undefined };

export interface GroupCommitOptions {
  /** Opens the group transaction (the store's `group`); absent: no grouping, each decision commits as it writes. */
  open?: (opts: { quick: boolean }) => Promise<GroupTx>;
  /** Most decisions in one group (PostgreSQL: each savepoint is a subtransaction; keep well under 64). Default 16. */
  maxGroup?: number;
  /** A side effect threw (it is logged by the caller; the others still run). */
  onEffectError?: (err: unknown) => void;
  /**
   * Test seam: called with the group's size just before its COMMIT, or before the message of opt-ins that carries it
   * (GroupBatch.flush; the size then counts them): a crash here loses the whole group.
   */
  beforeCommit?: (size: number) => Promise<void> | void;
}

export class GroupCommit {
  private readonly waiting: Item[] = [];
  private pumping = false;
  /**
   * Whether a decision arrived while the last message (a batch, a COMMIT) was on its way: then the next batch goes
   * without the COMMIT (see settle), as decisions are likely to keep arriving and the group's one COMMIT after them
   * costs one sync for all of them instead of one per message.
   */
  private busy = false;
  private readonly max: number;
  /** Groups committed whose sync is still to come (GroupTx.commit's `durable`), in commit order. */
  private tail: Promise<void> = Promise.resolve();
  /** Groups committed and the decisions in them (metrics, bench, tests). */
  readonly stats = { groups: 0, decisions: 0, largest: 0, failedCommits: 0 };

  constructor(private readonly opts: GroupCommitOptions = {}) {
    this.max = Math.max(1, opts.maxGroup ?? 16);
  }

  /**
   * Runs `f` when the decisions before it are staged; resolves with its value once its group is durable (and its
   * side effects have run), rejects with its own error, or with the group's commit error.
   */
  run<T>(f: () => Promise<T>, opts: { quick?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ queue: this, f, quick: opts.quick ?? false, resolve: resolve as (v: unknown) => void, reject, effects: [], staging: false });
      void this.pump();
    });
  }

  /**
   * A side effect of the decision being staged: it runs after the group's commit, and never when the decision or
   * the commit fails. Called outside a decision, it runs at once.
   */
  afterCommit(fn: (durableAt: number) => void): void {
    const item = staging.getStore()?.decision;
    if (item?.staging && item.queue === this) item.effects.push(fn);
    else fn(performance.now());
  }

  /** The group is durable (at `at`): its side effects run in order, then its callers hear back. */
  private finish(staged: Item[], at: number): void {
    staged.sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
    this.count(staged.length);
    this.answer(staged, at);
  }

  private count(decisions: number): void {
    this.stats.groups++;
    this.stats.decisions += decisions;
    this.stats.largest = Math.max(this.stats.largest, decisions);
  }

  /** Durable decisions' side effects, in the order given, then their callers. */
  private answer(staged: Item[], at: number): void {
    for (const i of staged) {
      for (const effect of i.effects) {
        try {
          effect(at);
        } catch (err) {
          this.opts.onEffectError?.(err);
        }
      }
      i.resolve(i.value);
    }
  }

  /** The group's commit (or its sync) failed: every decision of it fails, none of its side effects runs. */
  private fail(staged: Item[], err: unknown): void {
    this.stats.failedCommits++;
    for (const i of staged) {
      i.effects = [];
      i.reject(err);
    }
  }

  /** Stages one decision; resolves true when it is staged, false when it failed (its caller already told). */
  private stageOne(tx: GroupTx, item: Item): Promise<boolean> {
    item.staging = true;
    return tx.stage(() => this.within(item)).then(
      (value) => {
        item.staging = false;
        item.value = value;
        return true;
      },
      (err: unknown) => {
        item.staging = false;
        item.effects = [];
        item.reject(err);
        return false;
      },
    );
  }

  /**
   * Runs the decision in its scope: the one the driver's `stage` opened for it (each stage runs its `fn` in a new
   * scope, asStaged), which then also carries the decision; or, when the store stages nothing itself (NO_GROUP, a
   * test's fake), a scope of its own that routes no statement.
   */
  private within(item: Item): Promise<unknown> {
    const scope = staging.getStore();
    if (scope?.active && scope.decision === undefined) {
      scope.decision = item;
      return item.f();
    }
    const own = newScope(NO_OWNER);
    own.decision = item;
    return asStaged(NO_OWNER, item.f, own);
  }

  /**
   * Sends the held statements in one message and hands each decision its rows in order, letting it run to its end
   * before the next one hears back (a decision reads what the ones before it wrote). `last`: no decision waits any
   * more, so the group's COMMIT may go in the same message (GroupBatch.flush): then every decision staged so far is
   * durable and answered at once, and so is each held one that sends nothing after it, as soon as it ends; one that
   * goes on (a refresh) stays in `staged`, for the group's next commit.
   */
  private async settle(batch: GroupBatch, held: { item: Item; done: Promise<boolean> }[], staged: Item[], last = false): Promise<void> {
    let commit = last && !this.busy && batch.committable();
    if (commit) {
      try {
        await this.opts.beforeCommit?.(staged.length + held.length);
      } catch (err) {
        batch.fail(err);
        commit = false;
      }
    }
    const out = held.splice(0);
    const { deliver, committed, error } = await batch.flush(commit);
    this.busy = this.waiting.length > 0;
    const at = performance.now();
    // The COMMIT (or the statements before it) failed: the decisions staged before fail with it, the held ones hear it.
    if (commit && !committed) this.fail(staged.splice(0), error);
    // Committed: the decisions staged before are answered in queue order among the held ones, each as it ends.
    const ready = committed ? staged.splice(0).sort((a, b) => (a.order ?? 0) - (b.order ?? 0)) : [];
    let durable = ready.length;
    const answerUpTo = (order: number) => {
      let k = 0;
      while (k < ready.length && (ready[k].order ?? 0) < order) k++;
      if (k > 0) this.answer(ready.splice(0, k), at);
    };
    for (let i = 0; i < out.length; i++) {
      const heard = batch.listen();
      const sent = batch.sent();
      deliver(i);
      if (!(await this.follow(batch, out[i].done, heard))) continue;
      if (committed && batch.sent() === sent) {
        durable++;
        answerUpTo(out[i].item.order ?? 0);
        this.answer([out[i].item], at);
      } else staged.push(out[i].item);
    }
    answerUpTo(Infinity);
    if (durable > 0) this.count(durable);
  }

  /** Waits for a decision to end; an atomic statement it holds meanwhile goes at once, alone. */
  private async follow(batch: GroupBatch, done: Promise<boolean>, heard: Promise<'atomic' | 'barrier'> = batch.listen()): Promise<boolean> {
    for (;;) {
      const how = await Promise.race([done.then(() => 'done' as const), heard]);
      if (how === 'done') {
        batch.quiet();
        return done;
      }
      heard = batch.listen();
      if (how === 'atomic') (await batch.flush()).deliver(0);
      else batch.release();
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.waiting.length > 0) {
        const first = this.waiting[0];
        let tx: GroupTx;
        try {
          tx = this.opts.open ? await this.opts.open({ quick: first.quick }) : NO_GROUP;
        } catch (err) {
          // The group could not begin (the database is down or locked): this decision fails, the next one tries again.
          this.waiting.shift();
          first.reject(err);
          continue;
        }
        const staged: Item[] = [];
        /** Decisions whose atomic statement is held for the group's next message (tx.batch), in order. */
        const held: { item: Item; done: Promise<boolean> }[] = [];
        let count = 0;
        for (;;) {
          const item = this.waiting.shift();
          if (!item) break;
          item.order = count++;
          // An opt-in (quick) may share a round trip with the opt-ins after it (see GroupBatch); others go alone.
          const batch = item.quick ? tx.batch : undefined;
          const heard = batch?.listen();
          const done = this.stageOne(tx, item);
          /** Whether it was staged, once known (without batching: at once, no second wait for `done`). */
          let ok: boolean | undefined;
          const how = heard ? await Promise.race([done.then(() => 'done' as const), heard]) : ((ok = await done), 'done' as const);
          // Whether the next queued decision may join the held ones (after one turn of the event loop, if none yet).
          const more = async () => count < this.max && (this.waiting.length > 0 || (tx.linger && (await nextTurn(), this.waiting.length > 0))) && this.waiting[0].quick;
          if (how === 'atomic') {
            held.push({ item, done });
            if (await more()) continue;
            await this.settle(batch!, held, staged, true);
          } else if (how === 'barrier') {
            // This decision needs a statement after the held ones: they go first (and their decisions on), then it.
            await this.settle(batch!, held, staged);
            batch!.release();
            if (await this.follow(batch!, done)) staged.push(item);
          } else {
            batch?.quiet();
            if (ok ?? (await done)) staged.push(item);
            // It ended without a statement held or waiting (a refusal before the store): the held ones still go.
            if (held.length > 0) {
              if (await more()) continue;
              await this.settle(batch!, held, staged, true);
            }
          }
          if (count >= this.max || !this.opts.open) break;
          // The queue drained: one turn of the event loop lets events that arrived together join the group (where
          // the driver says it pays off, see GroupTx.linger).
          if (this.waiting.length === 0 && tx.linger) await nextTurn();
          if (this.waiting.length === 0) break;
        }
        let committed: { durable: Promise<number> } | void;
        try {
          if (staged.length === 0) {
            await tx.rollback();
            continue;
          }
          if (this.opts.beforeCommit) await this.opts.beforeCommit(staged.length);
          committed = await tx.commit();
          this.busy = this.waiting.length > 0;
        } catch (err) {
          if (staged.length > 0) await tx.rollback().catch(() => undefined);
          this.fail(staged, err);
          continue;
        }
        if (committed) {
          // Durable later (the sync runs in the thread pool): the next group goes on meanwhile; answered in order.
          const durable = committed.durable;
          this.tail = this.tail.then(() =>
            durable.then(
              (at) => this.finish(staged, at),
              (err: unknown) => this.fail(staged, err),
            ),
          );
        } else {
          this.finish(staged, performance.now());
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
