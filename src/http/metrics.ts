/**
 * Prometheus metrics (prom-client), one registry per service. Names follow Prometheus conventions
 * (`considerate_callback_` prefix, `_total` counters, `_seconds` durations); labels carry only small
 * fixed sets (state, outcome, cause, result), never a phone number, an agent or a request id.
 *
 * The metrics are fed from the service's stable signals: the engine's persisted decisions
 * (`Engine.onDecision`), the ARI connection's `connected`/`disconnected`/`standby` events, the webhook
 * sender's attempts; the pending gauge is read from the store at scrape time.
 */
import client from 'prom-client';
import type { AppliedDecision } from '../engine';
import { CALLBACK_STATES, TERMINAL_STATES, type CallbackState } from '../core/policy';

export const PREFIX = 'considerate_callback_';

/** The fixed label values of originate failures: the free-text reason is mapped onto these. */
export const ORIGINATE_CAUSES = ['agent_originate', 'agent_channel_gone', 'prospect_originate', 'bridge', 'other'] as const;
export type OriginateCause = (typeof ORIGINATE_CAUSES)[number];

/** Maps a recall failure's reason (recall flow, free text with numbers in it) onto a fixed cause. */
export function originateCause(reason: string): OriginateCause {
  if (/^originate to /.test(reason)) return 'agent_originate';
  if (/agent channel is gone/.test(reason)) return 'agent_channel_gone';
  if (/^dialling /.test(reason)) return 'prospect_originate';
  if (/^bridging /.test(reason)) return 'bridge';
  return 'other';
}

/** Observations of a recall attempt's legs, as a fixed (leg, result) pair. */
const ATTEMPT_RESULTS: Record<string, [string, string]> = {
  agentAnswered: ['agent', 'answered'],
  agentNoAnswer: ['agent', 'no_answer'],
  agentHungUp: ['agent', 'hung_up'],
  prospectAnswered: ['prospect', 'answered'],
  prospectBusy: ['prospect', 'busy'],
  prospectNoAnswer: ['prospect', 'no_answer'],
};

export interface MetricsSources {
  /** Non-terminal requests per state, read at scrape time. */
  pendingByState(): Record<string, number> | Promise<Record<string, number>>;
  version: string;
}

/**
 * How often the event loop's lateness is sampled (ms), by prom-client's `nodejs_eventloop_lag_*` gauges and the
 * service's own figure (service.stopped). Each sample is a timer that wakes an idle loop: at 5 and 10 ms (the two
 * monitors' former intervals) the idle service spent 12–13 ms of CPU per second, at 20 ms 7–8 (issue 23). A
 * stall is still measured whole, by the first sample after it; only fewer short gaps are seen.
 */
export const LOOP_SAMPLE_MS = 20;

export class ServiceMetrics {
  readonly registry = new client.Registry();
  private readonly outcomes: client.Counter<'outcome'>;
  private readonly optIns: client.Counter<'result'>;
  private readonly connectSeconds: client.Histogram;
  private readonly lateness: client.Histogram;
  private readonly ariConnected: client.Gauge;
  private readonly ariReconnects: client.Counter;
  private readonly leaseHeld: client.Gauge;
  private readonly leaseStandby: client.Gauge;
  private readonly leaseLost: client.Counter;
  private readonly originateFailures: client.Counter<'cause'>;
  private readonly attempts: client.Counter<'leg' | 'result'>;
  private readonly webhookDeliveries: client.Counter<'result'>;
  private readonly webhookSeconds: client.Histogram;
  private everConnected = false;

  constructor(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: LOOP_SAMPLE_MS });
    new client.Gauge({
      name: `${PREFIX}build_info`,
      help: 'Always 1; the labels tell the running version.',
      labelNames: ['version', 'nodejs_version'],
      registers,
    }).set({ version: sources.version, nodejs_version: process.versions.node }, 1);
    const pendingStates = CALLBACK_STATES.filter((s) => !(TERMINAL_STATES as readonly string[]).includes(s));
    new client.Gauge({
      name: `${PREFIX}requests_pending`,
      help: 'Callback requests not yet finished, by state (read from the store at scrape time).',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await sources.pendingByState();
        for (const s of pendingStates) this.set({ state: s }, counts[s] ?? 0);
      },
    });
    this.outcomes = new client.Counter({
      name: `${PREFIX}outcomes_total`,
      help: 'Requests that finished, by outcome (completed, cancelled, expired, max-attempts, prospect-no-answer, agent-unavailable, snooze-limit).',
      labelNames: ['outcome'],
      registers,
    });
    this.optIns = new client.Counter({
      name: `${PREFIX}opt_ins_total`,
      help: 'Opt-ins (# at the busy signal) stored: created a request, or refreshed a pending one.',
      labelNames: ['result'],
      registers,
    });
    this.connectSeconds = new client.Histogram({
      name: `${PREFIX}opt_in_to_connect_seconds`,
      help: 'Time from the opt-in (#) to the agent and the prospect being connected.',
      buckets: [60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800],
      registers,
    });
    this.lateness = new client.Histogram({
      name: `${PREFIX}scheduler_lateness_seconds`,
      help: 'How late the scheduler decided a request after its wake-up time.',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300],
      registers,
    });
    this.ariConnected = new client.Gauge({ name: `${PREFIX}ari_connected`, help: '1 while the ARI connection is up and this instance serves the app.', registers });
    this.ariReconnects = new client.Counter({ name: `${PREFIX}ari_reconnects_total`, help: 'ARI connections made after the first one (each follows a loss).', registers });
    this.leaseHeld = new client.Gauge({ name: `${PREFIX}lease_held`, help: '1 while this instance holds the one-active-instance lease on the PBX.', registers });
    this.leaseStandby = new client.Gauge({ name: `${PREFIX}lease_standby`, help: '1 while another instance holds the lease and this one stands by.', registers });
    this.leaseLost = new client.Counter({ name: `${PREFIX}lease_lost_total`, help: 'Times this instance found its lease taken by another instance while active.', registers });
    this.originateFailures = new client.Counter({
      name: `${PREFIX}originate_failures_total`,
      help: `Recall calls that could not be set up, by cause (${ORIGINATE_CAUSES.join(', ')}).`,
      labelNames: ['cause'],
      registers,
    });
    this.attempts = new client.Counter({
      name: `${PREFIX}recall_leg_results_total`,
      help: 'Results of the recall legs: the agent (answered, no_answer, hung_up) and the prospect (answered, busy, no_answer).',
      labelNames: ['leg', 'result'],
      registers,
    });
    this.webhookDeliveries = new client.Counter({
      name: `${PREFIX}webhook_deliveries_total`,
      help: 'CRM webhook attempts, by result (delivered, retry, given_up).',
      labelNames: ['result'],
      registers,
    });
    this.webhookSeconds = new client.Histogram({
      name: `${PREFIX}webhook_delivery_seconds`,
      help: 'How long the CRM took to answer one webhook POST (or until the timeout).',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    // Series that exist from the start (a zero is a fact; a missing series looks like a broken exporter).
    for (const c of ORIGINATE_CAUSES) this.originateFailures.inc({ cause: c }, 0);
    for (const r of ['delivered', 'retry', 'given_up']) this.webhookDeliveries.inc({ result: r }, 0);
    for (const o of ['completed', 'cancelled', 'expired']) this.outcomes.inc({ outcome: o }, 0);
    this.ariConnected.set(0);
    this.leaseHeld.set(0);
    this.leaseStandby.set(0);
  }

  /** A persisted decision of the engine. */
  decision({ before, decision, observation, at }: AppliedDecision): void {
    const after = decision.request;
    if (observation.type === 'optIn') this.optIns.inc({ result: before ? 'refreshed' : 'created' });
    if (observation.type === 'tick' && before?.wakeAt != null && at >= before.wakeAt) {
      this.lateness.observe((at - before.wakeAt) / 1000);
    }
    const leg = ATTEMPT_RESULTS[observation.type];
    if (leg) this.attempts.inc({ leg: leg[0], result: leg[1] });
    if (observation.type === 'recallFailed') this.originateFailures.inc({ cause: originateCause(observation.reason) });
    const ended = after.outcome && (!before || before.state !== after.state) && isFinal(after.state);
    if (ended) {
      this.outcomes.inc({ outcome: after.outcome as string });
      if (after.state === 'COMPLETED') this.connectSeconds.observe(Math.max(0, at - after.createdAt) / 1000);
    }
  }

  ariUp(): void {
    if (this.everConnected) this.ariReconnects.inc();
    this.everConnected = true;
    this.ariConnected.set(1);
    this.leaseHeld.set(1);
    this.leaseStandby.set(0);
  }

  ariDown(reason: string): void {
    this.ariConnected.set(0);
    this.leaseHeld.set(0);
    if (reason === 'lease lost') this.leaseLost.inc();
  }

  standby(): void {
    this.leaseStandby.set(1);
    this.leaseHeld.set(0);
  }

  webhookAttempt(result: 'delivered' | 'retry' | 'given_up', seconds: number): void {
    this.webhookDeliveries.inc({ result });
    this.webhookSeconds.observe(seconds);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

function isFinal(state: CallbackState): boolean {
  return (TERMINAL_STATES as readonly string[]).includes(state);
}
