/**
 * The one way a test (or a benchmark) builds an engine: `engineWorld(spec)` gives the engine over a store (a fresh
 * SQLite store in memory unless one is given), a fake clock, and fake ports that record what the engine dispatched —
 * the telephony actions, the notifications, the devices it asked to watch, the outbox kicks. Tests read as
 * specifications through it:
 *
 * ```ts
 * const w = await engineWorld({ policy: { graceMs: 60_000 } });
 * const id = await w.given.optedIn('PJSIP/1001', '2001');   // given an opt-in for an internal line
 * await w.when.lineFrees('2001');                             // when the prospect's line frees
 * await w.when.timePasses(60_000);                            // and the grace is over
 * expect(await w.then.stateOf(id)).toBe('RINGING_AGENT');     // then the agent is rung, once
 * expect(w.then.rings()).toEqual(['PJSIP/1001']);
 * ```
 *
 * Numbers starting with "20" are internal lines (`PJSIP/<number>`, watched) unless the spec says otherwise; every
 * other number is external (timed probes). The PBX is up and the engine started unless the spec says not.
 */
import { PassThrough } from 'node:stream';
import { type Action, type CallbackRequest, type Observation, type PolicyConfig } from '../src/core/policy';
import { defaultPolicyConfig, makePolicyConfig, type PolicyConfigInput } from './policy';
import { Engine, type EngineOptions, type OptInInput, type OptInResult, type RequestStore, type Telephony } from '../src/engine';
import { createLogger, type Logger } from '../src/logging/log';
import { SqliteStore } from '../src/store/sqlite';

/** A Wednesday, 10:00 in Berlin: inside the default calling hours. */
export const T0 = Date.UTC(2026, 10, 25, 9, 0, 0);

export type TelephonyAction = Exclude<Action, { type: 'notify' }>;

/** A telephony action the engine dispatched, with the request it was for and the fake clock's time. */
export interface Dispatched {
  requestId: string;
  agent: string;
  prospect: string;
  action: TelephonyAction;
  at: number;
}

export interface EngineSpec extends Partial<Omit<EngineOptions, 'store' | 'policy' | 'clock' | 'log' | 'telephony' | 'maxPendingPerAgent' | 'prospectDevice'>> {
  /** The store; default a fresh SQLite store in memory (closed by `close`). */
  store?: RequestStore & { close?: () => Promise<void> };
  /** The policy: the defaults with these overrides (a complete PolicyConfig is taken as it is). */
  policy?: PolicyConfigInput | PolicyConfig;
  /** The fake clock's start (default T0); or `clock` for another one (a real `Date.now`). */
  at?: number;
  clock?: () => number;
  log?: Logger;
  maxPendingPerAgent?: number;
  /** An internal prospect's device; default: numbers starting with "20" → `PJSIP/<number>`, others external. */
  prospectDevice?: (prospect: string) => string | undefined;
  /** What carrying out a telephony action does besides being recorded (default nothing); false: no telephony at all. */
  telephony?: false | Telephony;
  /** Start the engine (default true) with the PBX up (default true). */
  started?: boolean;
  pbxUp?: boolean;
}

export interface EngineWorld {
  engine: Engine;
  store: RequestStore;
  /** The fake clock's time. */
  readonly now: number;
  /** Every telephony action dispatched, in order. */
  dispatched: Dispatched[];
  notified: { requestId: string; event: string }[];
  watched: string[];
  /** Times the engine said an outbox row was queued outside a decision. */
  outboxKicks: number;
  given: {
    /** An opt-in that was stored (created or refreshed); its request id. */
    optedIn(agent: string, prospect: string, extra?: Partial<OptInInput>): Promise<string>;
  };
  when: {
    optIn(agent: string, prospect: string, extra?: Partial<OptInInput>): Promise<OptInResult>;
    /** The fake clock moves on; then the engine's wake-up runs as its timer would (`tick`). */
    timePasses(ms: number): Promise<void>;
    /** The fake clock moves on, nothing else. */
    clockMoves(ms: number): void;
    lineFrees(prospect: string): Promise<void>;
    lineBusy(prospect: string): Promise<void>;
    agentBusy(agent: string): Promise<void>;
    agentFree(agent: string): Promise<void>;
    observed(requestId: string, observation: Observation): Promise<boolean>;
  };
  then: {
    stateOf(requestId: string): Promise<string | undefined>;
    request(requestId: string): Promise<CallbackRequest>;
    /** The types of the request's history, oldest first. */
    history(requestId: string): Promise<string[]>;
    /** The agents rung, in order. */
    rings(): string[];
    /** The telephony actions' types dispatched for this request, in order. */
    actionsFor(requestId: string): string[];
  };
  /** Stops the engine; closes the store when the world made it. */
  close(): Promise<void>;
}

const quiet = () => createLogger({ format: 'json', stream: new PassThrough() });

/** The policy of a spec: the defaults with its overrides, checked. */
export function specPolicy(policy: EngineSpec['policy'] = {}): PolicyConfig {
  return makePolicyConfig({ ...defaultPolicyConfig, ...(policy as PolicyConfigInput) });
}

export async function engineWorld(spec: EngineSpec = {}): Promise<EngineWorld> {
  const { store: given, policy, at, clock, log, maxPendingPerAgent, prospectDevice, telephony, started, pbxUp, ...options } = spec;
  const store = given ?? SqliteStore.open<CallbackRequest>(':memory:');
  let t = at ?? T0;
  const now = clock ?? (() => t);
  const device = prospectDevice ?? ((n: string) => (n.startsWith('20') ? `PJSIP/${n}` : undefined));
  const lineOf = (prospect: string) => device(prospect) ?? `PJSIP/${prospect}`;
  const world: Omit<EngineWorld, 'engine' | 'given' | 'when' | 'then' | 'close' | 'now'> = { store, dispatched: [], notified: [], watched: [], outboxKicks: 0 };
  const engine = new Engine({
    ...options,
    store,
    policy: specPolicy(policy),
    log: log ?? quiet(),
    clock: now,
    maxPendingPerAgent: maxPendingPerAgent ?? 10,
    prospectDevice: device,
    telephony:
      telephony === false
        ? undefined
        : {
            execute: async (request, action) => {
              world.dispatched.push({ requestId: request.id, agent: request.agent, prospect: request.prospect, action, at: now() });
              await telephony?.execute(request, action);
            },
          },
    notify: (request, action) => {
      world.notified.push({ requestId: request.id, event: action.event });
      options.notify?.(request, action);
    },
    watch: (d) => {
      world.watched.push(d);
      options.watch?.(d);
    },
    outboxQueued: () => {
      world.outboxKicks++;
      options.outboxQueued?.();
    },
  });
  const optIn = (agent: string, prospect: string, extra: Partial<OptInInput> = {}) =>
    engine.optIn({ agent, agentCallerId: { name: 'Agent', number: agent.replace(/\D/g, '').slice(-4) || '1' }, prospect, language: 'en', channelId: `c-${agent}-${prospect}`, ...extra });
  if (started ?? true) await engine.start();
  if (pbxUp ?? true) engine.setPbxUp(true);
  const full: EngineWorld = {
    ...world,
    engine,
    get now() {
      return now();
    },
    given: {
      async optedIn(agent, prospect, extra) {
        const r = await optIn(agent, prospect, extra);
        if (r.result !== 'created' && r.result !== 'refreshed') throw new Error(`the opt-in was not stored: ${JSON.stringify(r)}`);
        return r.requestId;
      },
    },
    when: {
      optIn,
      async timePasses(ms) {
        t += ms;
        await engine.tick();
      },
      clockMoves(ms) {
        t += ms;
      },
      lineFrees: (prospect) => engine.deviceState(lineOf(prospect), { busy: false }),
      lineBusy: (prospect) => engine.deviceState(lineOf(prospect), { busy: true }),
      agentBusy: (agent) => engine.deviceState(agent, { busy: true }),
      agentFree: (agent) => engine.deviceState(agent, { busy: false }),
      observed: async (requestId, observation) => (await engine.observe(requestId, observation)) !== undefined,
    },
    then: {
      stateOf: async (id) => (await store.get(id))?.request.state,
      async request(id) {
        const v = await store.get(id);
        if (!v) throw new Error(`no request ${id}`);
        return v.request;
      },
      history: async (id) => (await store.events(id)).map((e) => e.type),
      rings: () => world.dispatched.filter((d) => d.action.type === 'ringAgent').map((d) => d.agent),
      actionsFor: (id) => world.dispatched.filter((d) => d.requestId === id).map((d) => d.action.type),
    },
    async close() {
      engine.stop();
      if (!given) await (store as SqliteStore<CallbackRequest>).close();
    },
  };
  // The recorders are shared: `dispatched` etc. of the world are the arrays the ports push to.
  Object.defineProperty(full, 'outboxKicks', { get: () => world.outboxKicks });
  return full;
}
