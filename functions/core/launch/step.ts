// One step of the launch path over a batch: every input (a launch event, SSM's command event, an overdue
// launch message, a sweep or a replay payload) becomes the launch's record or an observation of it; each
// launch goes one step further with the agent work (agent/work.ts) and the lifecycle transitions
// (action.ts), and its action is completed once the work has ended.
//
// Invariants, held by conditional writes (records.ts), not by timing:
// - at most one install in flight per instance: an install goes out only after its `sending` step was
//   stored over the version read, and a stale `sending` is looked up on the instance before any resend;
// - never a completion from a stale record: the `finishing` step is stored before the call;
// - never an install after the lifecycle action ended: Auto Scaling is asked right before a send,
//   a heartbeat window that lapsed ends the launch, and an event of an earlier launch replaces nothing.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { expectedVersion } from "../agent/settings.js";
import { advanceWork } from "../agent/work.js";
import { mapLimit } from "../common/concurrency.js";
import { metrics } from "../common/powertools.js";
import type { LaunchConfig } from "../config.js";
import { METRIC, type MetricName } from "../contract.js";
import {
  beatDueAt,
  close,
  completedByUs,
  completionRetryMs,
  completionUrgency,
  decideResult,
  earlierLaunch,
  newLaunch,
  onBeat,
  onCompleted,
  onStateSeen,
  openForSure,
  sameLaunch,
  windowLapsed,
} from "./action.js";
import { deploymentsInFlight } from "./deployments.js";
import {
  completeAction,
  describeLifecycleStates,
  inTurns,
  lifecycleCalls,
  recordHeartbeat,
} from "./lifecycle.js";
import type { LaunchRecord } from "./records.js";
import { nameBakedAgents, outcomeOf, recordOutcome, tellBreakers } from "./report.js";
import { fillLaunchStarts, inScope } from "./scope.js";
import type { LaunchOutcome, LaunchRequest, LaunchWork, StepContext, Stepped } from "./types.js";

const CALLS_IN_FLIGHT = 10;
/** A launch whose record another invocation changed meanwhile is looked at again this soon. */
const CHANGED_ELSEWHERE_MS = 5_000;
/** How often Auto Scaling is asked whether an instance slow to register still waits. */
const STATE_CHECK_MS = 60_000;
/** Step-and-return: one step over the batch (the launch queue's driver; drivers.ts has the other). */
export function stepOnce(input: LaunchWork, config: LaunchConfig, context: StepContext): Promise<Stepped> {
  return new LaunchStep(config, context).run(input);
}

class LaunchStep {
  private readonly hand = new Map<string, LaunchRecord>();
  private readonly outcomes = new Map<string, LaunchOutcome>();
  private readonly resume = new Map<string, number>();
  private readonly signalled = new Set<string>();
  /** Each record as it was read, to store only what changed. */
  private readonly stored = new Map<string, string>();
  /**
   * The metrics of this step's settled installs and named baked agents, counted once their records
   * are stored: what two invocations settle (one's write fails) is counted once, by the one whose
   * write stands.
   */
  private readonly uncounted = new Map<string, readonly MetricName[]>();
  /** Completions and heartbeats go one at a time: parallel ones in a scale-out only add throttling. */
  private readonly lifecycle: ReturnType<typeof lifecycleCalls>;

  constructor(
    private readonly config: LaunchConfig,
    private readonly context: StepContext,
  ) {
    this.lifecycle = lifecycleCalls(1, context.deadline);
  }

  async run(input: LaunchWork): Promise<Stepped> {
    const { requests, skipped } = await inScope(input.requests, this.config);
    for (const [request, reason] of skipped)
      this.outcomes.set(request.instanceId, outcomeOf(request, "SKIPPED", reason, this.context.now()));
    const ids = [...new Set([...requests.keys(), ...input.signals.map((signal) => signal.instanceId)])];
    const known = ids.length > 0 ? await this.context.store.read(ids) : new Map<string, LaunchRecord>();
    await this.takeRequests(requests, known);
    for (const signal of input.signals) {
      const record = this.hand.get(signal.instanceId) ?? known.get(signal.instanceId);
      const installing = record?.phase === "installing" && record.commandId === signal.commandId;
      // An end already read whose completion is still to come (throttled, say) is completed now.
      const finishing = record?.phase === "finishing" && record.commandIds.includes(signal.commandId);
      if (!record || !(installing || finishing)) continue;
      this.hold(record);
      this.signalled.add(record.instanceId);
    }
    await this.heartbeat();
    const now = this.context.now();
    const stateCheckDue = (record: LaunchRecord) =>
      now - (record.stateCheckedAt ?? record.startedAt) >= STATE_CHECK_MS;
    await this.stillWaiting(
      this.active().filter((record) => record.phase === "registering" && stateCheckDue(record)),
    );
    const expected = this.active().length > 0 ? await expectedVersion(this.config) : "";
    const { due, dropped, unread } = await advanceWork(this.active(), {
      config: this.config,
      expected,
      cadence: {
        registrationPollMs: this.config.REGISTRATION_POLL_SECONDS * 1000,
        overdueMs: this.config.COMMAND_OVERDUE_SECONDS * 1000,
        ...(this.context.follow ? { followMs: this.config.POLL_INTERVAL_MS } : {}),
      },
      now: this.context.now,
      heldUntil: this.context.heldUntil,
      correlationId: this.context.correlationId,
      signalled: this.signalled,
      take: (record) => this.take(record),
      registration: (record) => ({
        since: record.startedAt,
        deadline: record.startedAt + this.config.REGISTRATION_TIMEOUT_SECONDS * 1000,
      }),
      marks: (commandIds) => this.context.store.marks(commandIds),
      claimRead: (commandId, seen, next) => this.context.store.claimRead(commandId, seen, next),
      stillWanted: async (records) => {
        await this.stillWaiting(records.filter((record) => !openForSure(record, this.context.now())));
        return records.filter((record) => record.phase === "ready");
      },
      deploymentsInFlight,
      othersWaiting: async (commandId, instanceIds) => {
        const notInHand = instanceIds.filter((id) => !this.hand.has(id));
        const waiting = [...(await this.context.store.read(notInHand)).values()].filter(
          (record) => record.phase === "installing" && record.commandId === commandId,
        );
        for (const record of waiting) this.hold(record);
        return waiting;
      },
      count: (record, counted) => this.countOnStore(record.instanceId, counted),
    });
    for (const record of dropped) this.changedElsewhere(record);
    for (const [id, at] of due) this.resume.set(id, at);

    await this.finish();
    const changed = [...this.hand.values()].filter(
      (record) => this.stored.get(record.instanceId) !== JSON.stringify(record),
    );
    await mapLimit(changed, CALLS_IN_FLIGHT, async (record) => {
      if (!(await this.take(record))) this.changedElsewhere(record);
    });
    for (const record of this.hand.values()) this.report(record);
    // A command event that brought its launch to a completion still to come (throttled, held by
    // another invocation, or moved on elsewhere meanwhile) comes back for it: the launch's own
    // message may not be due for minutes (it waits for the install's overdue look).
    for (const instanceId of this.signalled)
      if (this.hand.get(instanceId)?.phase === "finishing" || !this.hand.has(instanceId))
        unread.add(instanceId);
    // A launch comes back in time for its next heartbeat, however long its work waits.
    for (const record of this.active())
      this.resume.set(
        record.instanceId,
        Math.min(this.resume.get(record.instanceId) ?? Infinity, beatDueAt(record)),
      );
    const instances = [...this.outcomes.values()];
    for (const outcome of instances) recordOutcome(outcome);
    const end = this.context.now();
    const resumeAfterSeconds = new Map(
      [...this.resume].map(([id, at]) => [id, Math.min(900, Math.max(1, Math.ceil((at - end) / 1000)))]),
    );
    return { instances, resumeAfterSeconds, unread };
  }

  private active(): LaunchRecord[] {
    return [...this.hand.values()].filter(
      (record) => record.phase !== "done" && record.phase !== "finishing",
    );
  }

  /**
   * A request continues its launch's record (action.ts: sameLaunch), or starts a new one. A sweep or
   * a replay carries no token: when the record is done, or there is none, a heartbeat by instance id
   * asks Auto Scaling whether our action is open at all (CodeDeploy's own hook may be what holds the
   * instance, https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html).
   */
  private async takeRequests(requests: Map<string, LaunchRequest>, known: Map<string, LaunchRecord>) {
    const toConfirm: LaunchRequest[] = [];
    const now = this.context.now();
    const dryRun = this.config.DRY_RUN
      ? `dry run: would install ${this.config.AGENT_PACKAGE} now`
      : undefined;
    for (const [instanceId, request] of requests) {
      const record = known.get(instanceId);
      // The sweep's look-ahead is dropped once its launch's event came (the record carries the event's
      // token); a look-ahead that took the launch up is its launch message from then on.
      if (request.ifEventLost && record?.token && sameLaunch(record, request)) continue;
      if (
        record &&
        sameLaunch(record, request) &&
        (record.phase !== "done" ||
          request.source === "event" ||
          ownMessageBack(record, request) ||
          this.context.continuing)
      ) {
        // A duplicate event of a launch already done needs nothing and reports nothing, but to a run
        // by hand; nor does the sweep's message of a launch we completed (it comes back after another
        // invocation completed it). A replay of a done launch asks Auto Scaling below whether ours is open.
        if (record.phase !== "done") this.hold(record);
        else if (this.context.continuing) this.report(record);
      } else if (record && earlierLaunch(record, request)) {
        if (request.source !== "event") {
          const reason = "an earlier launch of this instance; a newer one is in hand";
          this.outcomes.set(instanceId, outcomeOf(request, "ALREADY_COMPLETED", reason, now));
        }
      } else if (request.source === "event")
        this.hand.set(instanceId, newLaunch(request, record, now, dryRun));
      else toConfirm.push(request);
    }
    if (toConfirm.length === 0) return;
    await fillLaunchStarts(toConfirm);
    const open = await mapLimit(toConfirm, CALLS_IN_FLIGHT, (request) =>
      this.lifecycle(() => recordHeartbeat(request)),
    );
    for (const [index, request] of toConfirm.entries()) {
      if (open[index] === false) {
        const reason =
          "our lifecycle action is not open (another hook, such as CodeDeploy's launch hook, holds the instance); left alone";
        this.outcomes.set(request.instanceId, outcomeOf(request, "ALREADY_COMPLETED", reason, now));
        continue;
      }
      const record = newLaunch(request, known.get(request.instanceId), now, dryRun);
      if (open[index] === true) record.lastBeatAt = now;
      this.hand.set(request.instanceId, record);
    }
  }

  /** Stores the record if it is still at the version read; false when it changed elsewhere. */
  private async take(record: LaunchRecord): Promise<boolean> {
    if (!(await this.context.store.write(record))) return false;
    this.stored.set(record.instanceId, JSON.stringify(record));
    for (const metric of this.uncounted.get(record.instanceId) ?? [])
      metrics.addMetric(metric, MetricUnit.Count, 1);
    this.uncounted.delete(record.instanceId);
    return true;
  }

  private countOnStore(instanceId: string, names: readonly MetricName[]): void {
    this.uncounted.set(instanceId, [...(this.uncounted.get(instanceId) ?? []), ...names]);
  }

  private hold(record: LaunchRecord): void {
    if (!this.stored.has(record.instanceId)) this.stored.set(record.instanceId, JSON.stringify(record));
    this.hand.set(record.instanceId, record);
  }

  private changedElsewhere(record: LaunchRecord): void {
    this.hand.delete(record.instanceId);
    this.resume.set(record.instanceId, this.context.now() + CHANGED_ELSEWHERE_MS);
    const reason = "another invocation moved this launch on meanwhile; looked at again shortly";
    this.outcomes.set(record.instanceId, outcomeOf(record, "PENDING", reason, this.context.now()));
  }

  /** A launch that waits long keeps its action alive; a window that lapsed means the action is over. */
  private async heartbeat(): Promise<void> {
    const now = this.context.now();
    for (const record of this.active())
      if (windowLapsed(record, now)) close(record, "our lifecycle action's heartbeat window ran out");
    if (this.config.DRY_RUN) return;
    const due = this.active().filter((record) => now >= beatDueAt(record));
    const alive = await mapLimit(due, CALLS_IN_FLIGHT, (record) =>
      this.lifecycle(() => recordHeartbeat(record), { retry: false }),
    );
    for (const [index, record] of due.entries()) onBeat(record, alive[index] ?? "throttled", now);
  }

  /** Auto Scaling says whether these instances still wait on a launch (batched, 50 per call). */
  private async stillWaiting(records: LaunchRecord[]): Promise<void> {
    if (records.length === 0) return;
    const states = await describeLifecycleStates(records.map((record) => record.instanceId));
    for (const record of records)
      onStateSeen(record, states.get(record.instanceId)?.lifecycleState, this.context.now());
  }

  /**
   * Each launch whose work ended is completed, one call at a time, each try going to the launch most
   * urgent at that moment (action.ts). Its `finishing` step is stored at its first try, not before, so
   * no stale invocation completes it too and a launch still in line when the budget runs out is not
   * held. With ABANDON, group breakers are consulted.
   */
  private async finish(): Promise<void> {
    const finishing = [...this.hand.values()].filter((record) => record.phase === "finishing");
    for (const record of await nameBakedAgents(finishing))
      this.countOnStore(record.instanceId, [METRIC.outdatedAgentInAmi]);
    const abandon = this.config.FAILURE_RESULT === "ABANDON";
    const breakers = new Map<string, boolean>();
    if (abandon)
      for (const group of new Set(finishing.map((record) => record.group)))
        breakers.set(group, (await this.context.store.breaker(group)).open);
    const now = this.context.now();
    const line: LaunchRecord[] = [];
    for (const record of finishing) {
      // Held by an invocation that may still complete it (one cut off, say): back when that hold ends.
      if ((record.heldUntil ?? 0) > now) {
        this.resume.set(record.instanceId, record.heldUntil ?? 0);
        continue;
      }
      // A launch waits for its completion from its install's end as SSM reports it, not from when we read it.
      record.finishingSince ??= Math.min(now, record.ended?.at ?? now);
      decideResult(record, this.config.FAILURE_RESULT, breakers.get(record.group) ?? false);
      line.push(record);
    }
    const taken = new Set<string>();
    const left = await inTurns(line, {
      urgency: completionUrgency,
      retryMs: completionRetryMs,
      deadline: this.context.deadline,
      attempt: (record) =>
        this.lifecycle(
          async () => {
            if (!taken.has(record.instanceId)) {
              record.heldUntil = this.context.heldUntil;
              if (!(await this.take(record))) return "changed" as const;
              taken.add(record.instanceId);
            }
            return completeAction(record, record.result ?? "CONTINUE");
          },
          { retry: false },
        ),
      answered: (record, answer) =>
        answer === "changed"
          ? this.changedElsewhere(record)
          : onCompleted(record, answer, this.context.now()),
    });
    for (const record of left) {
      onCompleted(record, "throttled", this.context.now());
      this.resume.set(record.instanceId, this.context.now() + completionRetryMs(record, this.context.now()));
    }
    if (abandon) await tellBreakers(this.context.store, finishing, breakers);
  }

  private report(record: LaunchRecord): void {
    const outcome = record.phase === "done" ? (record.outcome ?? "ALREADY_COMPLETED") : "PENDING";
    this.outcomes.set(record.instanceId, {
      ...outcomeOf(record, outcome, record.reason, this.context.now()),
      ...(record.agentVersion ? { agentVersion: record.agentVersion } : {}),
      ...(record.commandIds.length > 0 ? { installCommandIds: record.commandIds } : {}),
      ...(record.bakedAgent ? { bakedAgent: record.bakedAgent } : {}),
      ...(record.ended && !record.ended.ok && record.ended.fault ? { fault: record.ended.fault } : {}),
    });
    if (outcome === "PENDING" && !this.resume.has(record.instanceId))
      this.resume.set(record.instanceId, this.context.now() + this.config.RESUME_AFTER_SECONDS * 1000);
  }
}

/**
 * The sweep replays a done launch only when our action was not ours to complete (ALREADY_COMPLETED): a
 * sweep payload for a launch we completed is its own launch message, back after another invocation
 * (a command event's) completed it.
 */
function ownMessageBack(record: LaunchRecord, request: LaunchRequest): boolean {
  return request.source === "sweep" && completedByUs(record);
}
