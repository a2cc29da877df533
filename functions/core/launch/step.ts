// One step of the launch path over a batch: every input (a launch event, SSM's command event, an
// overdue launch message, a sweep or a replay payload) becomes the launch's record or an observation
// of it, each launch is taken one step further with the agent work's step (agent/work.ts), and its
// lifecycle action is completed once the work has ended. The same step serves both drivers
// (drivers.ts): step-and-return for the launch queue, run-until-done for a replay and for polling.
//
// Invariants, held by conditional writes (records.ts), not by timing:
// - at most one install in flight per instance: an install goes out only after its `sending` step was
//   stored over the version read, and a stale `sending` is looked up on the instance before any resend;
// - never a completion from a stale record: the `finishing` step is stored before the call;
// - never an install after the lifecycle action ended: Auto Scaling is asked right before a send,
//   and a heartbeat window that lapsed ends the launch.
import type { CommandInvocation } from "@aws-sdk/client-ssm";
import type { CommandSignal } from "../../schemas/command-event.js";
import { end, newJob, onInstallEnded } from "../agent/job.js";
import { type AgentSettings, agentSettings, expectedVersion } from "../agent/settings.js";
import { judgeInstall } from "../agent/verdicts.js";
import { advanceWork } from "../agent/work.js";
import { mapLimit } from "../common/concurrency.js";
import type { LaunchConfig } from "../config.js";
import { WAITING_STATES } from "../contract.js";
import { deploymentsInFlight } from "./deployments.js";
import {
  completeAction,
  describeLifecycleStates,
  type LifecycleAction,
  LifecycleCalls,
  recordHeartbeat,
} from "./lifecycle.js";
import type { LaunchRecord, RecordStore } from "./records.js";
import { nameBakedAgents, outcomeOf, recordOutcome } from "./report.js";
import { fillLaunchStarts, newestPerInstance, outOfScope, resolveHook } from "./scope.js";
import type { LaunchOutcome, LaunchRequest } from "./types.js";

const CALLS_IN_FLIGHT = 10;
/** A launch whose record another invocation changed meanwhile is looked at again this soon. */
const CHANGED_ELSEWHERE_SECONDS = 5;
/** How often Auto Scaling is asked whether an instance slow to register still waits. */
const STATE_CHECK_MS = 60_000;
/** Two starts this close are one launch (an event's time and its scaling activity's differ a little). */
const SAME_START_MS = 60_000;

export interface StepInput {
  requests: readonly LaunchRequest[];
  signals: readonly CommandSignal[];
}

export interface StepContext {
  store: RecordStore;
  now: () => number;
  /** AWS-time ms by which the step's work must stop (the Lambda deadline minus a reserve). */
  deadline: number;
  /** When the invocation ends for good (its Lambda timeout): the steps it takes are its own until then. */
  heldUntil: number;
  correlationId: string;
  /** Run until done: installs are followed every poll interval instead of waiting for their events. */
  follow?: boolean;
  /** A later step of a run until done: launches it finished meanwhile are reported as they ended. */
  continuing?: boolean;
}

export interface Stepped {
  instances: LaunchOutcome[];
  /** When each unfinished launch is next due, in seconds from now. */
  resumeAfterSeconds: Map<string, number>;
  /** Launches whose signalled end was not read yet: their command events come back when it is due. */
  unread: Set<string>;
}

export async function stepLaunches(
  input: StepInput,
  config: LaunchConfig,
  context: StepContext,
): Promise<Stepped> {
  return new LaunchStep(config, context).run(input);
}

class LaunchStep {
  private readonly hand = new Map<string, LaunchRecord>();
  private readonly outcomes = new Map<string, LaunchOutcome>();
  private readonly resume = new Map<string, number>();
  private readonly signalled = new Set<string>();
  /** Each record as it was read or made, to store only what changed. */
  private readonly stored = new Map<string, string>();
  private readonly lifecycle: LifecycleCalls;
  private readonly settings: AgentSettings;

  constructor(
    private readonly config: LaunchConfig,
    private readonly context: StepContext,
  ) {
    // Completions go one at a time: a scale-out runs many invocations at once, and parallel
    // completions only add throttled retries.
    this.lifecycle = new LifecycleCalls(1, context.deadline);
    this.settings = agentSettings(config);
  }

  async run(input: StepInput): Promise<Stepped> {
    const requests = await this.inScope(input.requests);
    const ids = [...new Set([...requests.keys(), ...input.signals.map((signal) => signal.instanceId)])];
    const known = ids.length > 0 ? await this.context.store.read(ids) : new Map<string, LaunchRecord>();
    await this.takeRequests(requests, known);
    for (const signal of input.signals) {
      const record = this.hand.get(signal.instanceId) ?? known.get(signal.instanceId);
      if (record?.phase !== "installing" || record.commandId !== signal.commandId) continue;
      this.hold(record);
      this.signalled.add(record.instanceId);
    }

    await this.heartbeat();
    await this.checkSlowRegistrations();
    const expected = [...this.hand.values()].some((record) => !["finishing", "done"].includes(record.phase))
      ? await expectedVersion(this.settings)
      : "";
    const { due, dropped, unread } = await advanceWork([...this.active()], {
      settings: this.settings,
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
      stillWanted: (records) => this.stillWanted(records),
      deploymentsInFlight: (records) => deploymentsInFlight(records),
      settleOthers: (ended) => this.settleOthers(ended, expected),
    });
    for (const record of dropped) this.changedElsewhere(record);
    for (const [id, at] of due) this.resume.set(id, at);

    for (const record of this.active()) this.decideResult(record);
    await nameBakedAgents([...this.hand.values()]);
    await mapLimit(
      [...this.hand.values()].filter((record) => record.phase === "finishing"),
      CALLS_IN_FLIGHT,
      (record) => this.complete(record),
    );
    const changed = [...this.hand.values()].filter(
      (record) => this.stored.get(record.instanceId) !== JSON.stringify(record),
    );
    await mapLimit(changed, CALLS_IN_FLIGHT, async (record) => {
      if (!(await this.take(record))) this.changedElsewhere(record);
    });
    for (const record of this.hand.values()) this.report(record);
    // A launch comes back in time for its next heartbeat, however long its work waits.
    for (const record of this.active()) {
      const beatAt = (record.lastBeatAt ?? record.startedAt) + (record.heartbeatTimeoutSeconds * 1000) / 2;
      this.resume.set(record.instanceId, Math.min(this.resume.get(record.instanceId) ?? beatAt, beatAt));
    }
    const instances = [...this.outcomes.values()];
    for (const outcome of instances) recordOutcome(outcome);
    const now = this.context.now();
    const resumeAfterSeconds = new Map(
      [...this.resume].map(([id, at]) => [id, Math.min(900, Math.max(1, Math.ceil((at - now) / 1000)))]),
    );
    return { instances, resumeAfterSeconds, unread };
  }

  private *active(): Iterable<LaunchRecord> {
    for (const record of this.hand.values())
      if (record.phase !== "done" && record.phase !== "finishing") yield record;
  }

  /** In-scope requests, one per instance, each with its hook resolved. */
  private async inScope(requests: readonly LaunchRequest[]): Promise<Map<string, LaunchRequest>> {
    const kept = requests.filter((request) => {
      const skip = outOfScope(request, this.config);
      if (skip)
        this.outcomes.set(request.instanceId, outcomeOf(request, "SKIPPED", skip, this.context.now()));
      return !skip;
    });
    const work = newestPerInstance(kept);
    for (const [instanceId, request] of work) {
      const resolution = await resolveHook(request, this.config);
      if ("skip" in resolution) {
        this.outcomes.set(instanceId, outcomeOf(request, "SKIPPED", resolution.skip, this.context.now()));
        work.delete(instanceId);
        continue;
      }
      request.hook = resolution.hook;
      request.heartbeatTimeoutSeconds = resolution.heartbeatTimeoutSeconds;
    }
    return work;
  }

  /**
   * A request continues its launch's record, or starts a new one. The one rule for "the same launch":
   * the same token when both carry one, else starts within a minute of each other (or no start known).
   * A sweep or a replay carries no token: when the record says the launch is done, or there is none,
   * a heartbeat by instance id asks Auto Scaling whether our action is open at all (it may be
   * CodeDeploy's own hook that holds the instance, https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html).
   */
  private async takeRequests(
    requests: Map<string, LaunchRequest>,
    known: Map<string, LaunchRecord>,
  ): Promise<void> {
    const toConfirm: LaunchRequest[] = [];
    for (const [instanceId, request] of requests) {
      const record = known.get(instanceId);
      if (record && sameLaunch(record, request)) {
        if (record.phase !== "done") this.hold(record);
        else if (this.context.continuing) this.report(record);
        // Otherwise a duplicate of a launch already done: nothing to do, nothing to report.
        continue;
      }
      if (record && request.startedAt !== undefined && request.startedAt < record.startedAt - SAME_START_MS) {
        // A late duplicate of an earlier launch of this instance (into its warm pool, say): the
        // record is about a newer one, which this request must not replace.
        if (request.source !== "event") {
          const reason = "an earlier launch of this instance; a newer one is in hand";
          this.outcomes.set(instanceId, outcomeOf(request, "ALREADY_COMPLETED", reason, this.context.now()));
        }
        continue;
      }
      if (request.source === "event") this.hand.set(instanceId, this.newRecord(request, record));
      else toConfirm.push(request);
    }
    if (toConfirm.length === 0) return;
    await fillLaunchStarts(toConfirm);
    const open = await mapLimit(toConfirm, CALLS_IN_FLIGHT, (request) =>
      this.lifecycle.retrying(() => recordHeartbeat(actionOf(request))),
    );
    for (const [index, request] of toConfirm.entries()) {
      if (open[index] === false) {
        const reason =
          "our lifecycle action is not open (another hook, such as CodeDeploy's launch hook, holds the instance); left alone";
        this.outcomes.set(
          request.instanceId,
          outcomeOf(request, "ALREADY_COMPLETED", reason, this.context.now()),
        );
        continue;
      }
      const record = this.newRecord(request, known.get(request.instanceId));
      if (open[index] === true) record.lastBeatAt = this.context.now();
      this.hand.set(request.instanceId, record);
    }
  }

  private newRecord(request: LaunchRequest, previous: LaunchRecord | undefined): LaunchRecord {
    const record: LaunchRecord = {
      ...newJob(request.instanceId),
      group: request.group,
      hook: request.hook ?? "",
      ...(request.token ? { token: request.token } : {}),
      ...(request.origin ? { origin: request.origin } : {}),
      startedAt: request.startedAt ?? this.context.now(),
      heartbeatTimeoutSeconds: request.heartbeatTimeoutSeconds ?? 3600,
      // A new launch of an instance replaces the record of its earlier one (a warm pool's exit).
      version: previous?.version ?? 0,
    };
    // A dry run holds nothing: it sends nothing and lets the instance in at once.
    if (this.config.DRY_RUN)
      end(record, { ok: true, reason: `dry run: would install ${this.settings.agentPackage} now` });
    return record;
  }

  /** Stores the record if it is still at the version read; false when it changed elsewhere. */
  private async take(record: LaunchRecord): Promise<boolean> {
    if (!(await this.context.store.write(record))) return false;
    this.stored.set(record.instanceId, JSON.stringify(record));
    return true;
  }

  private hold(record: LaunchRecord): void {
    if (!this.stored.has(record.instanceId) && record.version > 0)
      this.stored.set(record.instanceId, JSON.stringify(record));
    this.hand.set(record.instanceId, record);
  }

  private changedElsewhere(record: LaunchRecord): void {
    this.hand.delete(record.instanceId);
    this.resume.set(record.instanceId, this.context.now() + CHANGED_ELSEWHERE_SECONDS * 1000);
    this.outcomes.set(record.instanceId, {
      ...outcomeOf(
        record,
        "PENDING",
        "another invocation moved this launch on meanwhile; looked at again shortly",
        this.context.now(),
      ),
    });
  }

  /** A launch that waits long keeps its action alive; a window that lapsed means the action is over. */
  private async heartbeat(): Promise<void> {
    const now = this.context.now();
    const lapsed = (record: LaunchRecord) =>
      now - (record.lastBeatAt ?? record.startedAt) >= record.heartbeatTimeoutSeconds * 1000;
    for (const record of this.active())
      if (lapsed(record)) close(record, "our lifecycle action's heartbeat window ran out");
    if (this.config.DRY_RUN) return;
    const due = [...this.active()].filter(
      (record) =>
        now - (record.lastBeatAt ?? record.startedAt) >= (record.heartbeatTimeoutSeconds * 1000) / 2,
    );
    const alive = await mapLimit(due, CALLS_IN_FLIGHT, (record) =>
      this.lifecycle.once(() => recordHeartbeat(actionOf(record))),
    );
    for (const [index, record] of due.entries()) {
      if (alive[index] === true) record.lastBeatAt = now;
      else if (alive[index] === false)
        close(record, "the lifecycle action ended while the agent was being set up");
    }
  }

  /** An instance slow to register may have been terminated or detached: Auto Scaling says, once a minute. */
  private async checkSlowRegistrations(): Promise<void> {
    const now = this.context.now();
    const due = [...this.active()].filter(
      (record) =>
        record.phase === "registering" && now - (record.stateCheckedAt ?? record.startedAt) >= STATE_CHECK_MS,
    );
    await this.stillWaiting(due);
  }

  /** Right before installs go out: only instances whose launch wait goes on get one. */
  private async stillWanted(records: LaunchRecord[]): Promise<LaunchRecord[]> {
    await this.stillWaiting(records);
    return records.filter((record) => record.phase === "ready");
  }

  private async stillWaiting(records: LaunchRecord[]): Promise<void> {
    if (records.length === 0) return;
    const states = await describeLifecycleStates(records.map((record) => record.instanceId));
    for (const record of records) {
      record.stateCheckedAt = this.context.now();
      const state = states.get(record.instanceId);
      if (state && WAITING_STATES.has(state.lifecycleState)) continue;
      close(
        record,
        state
          ? `instance is ${state.lifecycleState}; its launch wait is over`
          : "instance is no longer in the group (terminated or detached)",
      );
    }
  }

  /**
   * One read of a command shows every instance of it that has ended: those whose records still wait
   * on that command are settled now, so their events, still on the way, find them done.
   */
  private async settleOthers(ended: Map<string, CommandInvocation>, expected: string): Promise<void> {
    const records = await this.context.store.read([...ended.keys()]);
    for (const [instanceId, invocation] of ended) {
      const record = records.get(instanceId);
      if (
        this.hand.has(instanceId) ||
        record?.phase !== "installing" ||
        record.commandId !== invocation.CommandId
      )
        continue;
      onInstallEnded(
        record,
        judgeInstall(invocation, this.settings, expected),
        this.context.now(),
        this.settings.installAttempts,
      );
      record.expectedVersion ??= expected;
      this.stored.set(instanceId, "");
      this.hand.set(instanceId, record);
    }
  }

  /**
   * Fail open: a launch whose agent could not be verified is let in (CONTINUE) unless the failure is
   * the instance's own and the stage asked for ABANDON; CodeDeploy's own hook then judges it by its
   * deployment, as it would without us.
   */
  private decideResult(record: LaunchRecord): void {
    if (record.phase !== "finishing" || record.result) return;
    const ended = record.ended;
    if (!ended || ended.ok) {
      record.result = "CONTINUE";
      return;
    }
    const abandon = ended.fault === "instance" && this.config.FAILURE_RESULT === "ABANDON";
    record.result = abandon ? "ABANDON" : "CONTINUE";
    record.reason = abandon
      ? `${ended.reason}; completed ABANDON (FAILURE_RESULT)`
      : `${ended.reason}; completed CONTINUE (${ended.fault === "instance" ? "FAILURE_RESULT" : "not the instance's own fault"})`;
  }

  /** The completion is stored as this invocation's step before it is sent. */
  private async complete(record: LaunchRecord): Promise<void> {
    if ((record.heldUntil ?? 0) > this.context.now()) return;
    this.decideResult(record);
    record.heldUntil = this.context.heldUntil;
    if (!(await this.take(record))) {
      this.changedElsewhere(record);
      return;
    }
    const result = record.result ?? "CONTINUE";
    const completion = await this.lifecycle.retrying(() => completeAction(actionOf(record), result));
    record.heldUntil = undefined;
    if (completion === "throttled") {
      record.heldUntil = this.context.now();
      this.resume.set(record.instanceId, this.context.now() + CHANGED_ELSEWHERE_SECONDS * 1000);
      return;
    }
    record.phase = "done";
    record.outcome = completion === "ALREADY_COMPLETED" ? "ALREADY_COMPLETED" : result;
    if (completion === "ALREADY_COMPLETED")
      record.reason = `${record.reason}; the lifecycle action had already ended`;
  }

  private report(record: LaunchRecord): void {
    const outcome = record.phase === "done" ? (record.outcome ?? "ALREADY_COMPLETED") : "PENDING";
    this.outcomes.set(record.instanceId, {
      ...outcomeOf(record, outcome, record.reason, this.context.now()),
      ...(record.agentVersion ? { agentVersion: record.agentVersion } : {}),
      ...(record.commandIds.length > 0 ? { installCommandIds: record.commandIds } : {}),
      ...(record.bakedAgent ? { bakedAgent: record.bakedAgent } : {}),
    });
    if (outcome === "PENDING" && !this.resume.has(record.instanceId))
      this.resume.set(record.instanceId, this.context.now() + this.config.RESUME_AFTER_SECONDS * 1000);
  }
}

export function sameLaunch(record: LaunchRecord, request: LaunchRequest): boolean {
  if (request.token && record.token) return request.token === record.token;
  if (request.startedAt === undefined) return true;
  return Math.abs(request.startedAt - record.startedAt) <= SAME_START_MS;
}

/** The lifecycle action ended without us (terminated, completed elsewhere, timed out): done. */
function close(record: LaunchRecord, reason: string): void {
  record.phase = "done";
  record.outcome = "ALREADY_COMPLETED";
  record.reason = reason;
}

function actionOf(launch: {
  group: string;
  hook?: string;
  instanceId: string;
  token?: string;
}): LifecycleAction {
  return { group: launch.group, hook: launch.hook ?? "", instanceId: launch.instanceId, token: launch.token };
}
