// The launch path: every instance a launch hook holds in Pending:Wait gets the CodeDeploy agent from
// Systems Manager, verified, before the hook is completed. Each call looks at the world (lifecycle
// state, SSM registration, installs already sent) and takes the next step, so duplicates, retries and
// replays resume the work instead of repeating it.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { ensureAgents } from "../agent/engine.js";
import { type AgentResult, agentSettings, type EnsureMode } from "../agent/types.js";
import { clock } from "../common/clock.js";
import { mapLimit } from "../common/concurrency.js";
import type { Lease } from "../common/lease.js";
import { metrics } from "../common/powertools.js";
import type { LaunchConfig } from "../config.js";
import { METRIC, WAITING_STATES } from "../contract.js";
import {
  completeAction,
  describeLifecycleStates,
  type InstanceState,
  type LifecycleAction,
  LifecycleCalls,
  recordHeartbeat,
} from "./lifecycle.js";
import { recordOutcome, reportBakedAgent } from "./report.js";
import { fillLaunchStarts, newestPerInstance, outOfScope, resolveHook } from "./scope.js";
import type {
  BakedAgentReport,
  LaunchContext,
  LaunchOutcome,
  LaunchOutcomeKind,
  LaunchRequest,
} from "./types.js";

export type { LaunchContext, LaunchOutcome, LaunchOutcomeKind, LaunchRequest } from "./types.js";

/** Per-instance calls (leases, heartbeats) run side by side, at most this many at once. */
const AWS_CALLS_IN_FLIGHT = 10;
/**
 * Completions and heartbeats of one invocation go one at a time: a scale-out runs many invocations
 * at once, and parallel completions only add throttled retries (a 1,000-instance burst measured 2.77
 * Auto Scaling calls per instance with 5 in flight, 1.98 with 1, at the same hook-to-complete times).
 */
const LIFECYCLE_CALLS_IN_FLIGHT = 1;
const ACTION_ENDED = "the lifecycle action ended while the agent was being set up";

export async function reconcileLaunches(
  requests: readonly LaunchRequest[],
  config: LaunchConfig,
  context: LaunchContext & { lease: Lease },
): Promise<LaunchOutcome[]> {
  return new LaunchReconciler(config, context).run(requests);
}

class LaunchReconciler {
  private readonly startedAt = clock.now();
  private readonly outcomes = new Map<string, LaunchOutcome>();
  /** The requests still being worked on, by instance. */
  private readonly work = new Map<string, LaunchRequest>();
  private readonly heartbeatMs = new Map<string, number>();
  private readonly lastBeat = new Map<string, number>();
  private readonly endedActions = new Set<string>();
  /** What Auto Scaling says of each instance (state, AMI, launch template). */
  private states = new Map<string, InstanceState>();
  private readonly lifecycle: LifecycleCalls;

  constructor(
    private readonly config: LaunchConfig,
    private readonly context: LaunchContext & { lease: Lease },
  ) {
    this.lifecycle = new LifecycleCalls(LIFECYCLE_CALLS_IN_FLIGHT, context.deadline);
  }

  async run(requests: readonly LaunchRequest[]): Promise<LaunchOutcome[]> {
    const inScope = requests.filter((request) => {
      const skip = outOfScope(request, this.config);
      if (skip) this.record(request, "SKIPPED", skip);
      return !skip;
    });
    for (const [instanceId, request] of newestPerInstance(inScope)) this.work.set(instanceId, request);
    await this.resolveHooks();
    await this.dropFinishedWaits();
    await fillLaunchStarts([...this.work.values()]);
    await this.confirmOurActionsOpen();
    await this.leaseInstances();

    const results = await this.ensureAgents();
    await mapLimit(
      results.filter((result) => result.status === "PENDING"),
      AWS_CALLS_IN_FLIGHT,
      (result) => this.completeIfOurs(result),
    );
    // Hand the instances back at once, so the next delivery need not wait for the lease to lapse.
    await mapLimit([...this.work.values()], AWS_CALLS_IN_FLIGHT, (request) =>
      this.context.lease.release(`agent#${request.instanceId}`, this.context.correlationId),
    );
    return this.report(requests);
  }

  /** Records the outcome of one instance (the last one recorded is reported). */
  private record(
    request: LaunchRequest,
    outcome: LaunchOutcomeKind,
    reason: string,
    extra: Partial<LaunchOutcome> = {},
  ): void {
    const since = request.startedAt ?? this.startedAt;
    this.outcomes.set(request.instanceId, {
      instanceId: request.instanceId,
      autoScalingGroupName: request.group,
      lifecycleHookName: request.hook,
      outcome,
      reason,
      elapsedSeconds: Math.max(0, Math.round((clock.now() - since) / 100) / 10),
      ...extra,
    });
  }

  private drop(request: LaunchRequest, outcome: LaunchOutcomeKind, reason: string, extra = {}): void {
    this.record(request, outcome, reason, extra);
    this.work.delete(request.instanceId);
  }

  private async resolveHooks(): Promise<void> {
    for (const request of [...this.work.values()]) {
      const resolution = await resolveHook(request, this.config);
      if ("skip" in resolution) {
        this.drop(request, "SKIPPED", resolution.skip);
        continue;
      }
      request.hook = resolution.hook;
      this.heartbeatMs.set(request.instanceId, resolution.heartbeatTimeoutSeconds * 1000);
    }
  }

  /** An instance no longer waiting needs nothing, and no SSM call. */
  private async dropFinishedWaits(): Promise<void> {
    this.states = this.work.size > 0 ? await describeLifecycleStates([...this.work.keys()]) : new Map();
    for (const request of [...this.work.values()]) {
      const state = this.states.get(request.instanceId);
      if (state && WAITING_STATES.has(state.lifecycleState)) continue;
      this.drop(
        request,
        "ALREADY_COMPLETED",
        state
          ? `instance is ${state.lifecycleState}; its launch wait is over`
          : "instance is no longer in the group (terminated or detached)",
      );
    }
  }

  /**
   * Pending:Wait does not say which hook holds the instance: after our CONTINUE, CodeDeploy's own
   * launch hook may hold it while its launch deployment runs, and an install then would restart the
   * agent under that deployment. An event carries our action's token; for a sweep or a replay, a
   * heartbeat by instance id tells whether our action is still open ("No active Lifecycle Action
   * found" when it is not: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html).
   */
  private async confirmOurActionsOpen(): Promise<void> {
    if (this.config.DRY_RUN) return;
    const unconfirmed = [...this.work.values()].filter((request) => request.source !== "event");
    const open = await mapLimit(unconfirmed, AWS_CALLS_IN_FLIGHT, (request) =>
      this.lifecycle.retrying(() => recordHeartbeat(this.actionOf(request))),
    );
    for (const [index, request] of unconfirmed.entries()) {
      if (open[index] === false) {
        this.drop(
          request,
          "ALREADY_COMPLETED",
          "our lifecycle action is not open (another hook, such as CodeDeploy's launch hook, holds the instance); left alone",
        );
      } else if (open[index] === true) {
        this.lastBeat.set(request.instanceId, clock.now());
      }
    }
  }

  /** Two invocations must never work on one instance at once (duplicated events, sweep, replays). */
  private async leaseInstances(): Promise<void> {
    const candidates = [...this.work.values()];
    const leased = await mapLimit(candidates, AWS_CALLS_IN_FLIGHT, (request) =>
      this.context.lease.acquire(
        `agent#${request.instanceId}`,
        this.context.correlationId,
        this.context.deadline,
      ),
    );
    for (const [index, request] of candidates.entries()) {
      if (leased[index]) continue;
      this.drop(
        request,
        "PENDING",
        "another invocation is working on this instance; retried on the next delivery",
        {
          busyElsewhere: true,
        },
      );
    }
  }

  /** Install and verify, heartbeating long waits; each instance is completed as soon as it is settled. */
  private async ensureAgents(): Promise<AgentResult[]> {
    const byMode = new Map<EnsureMode, LaunchRequest[]>();
    for (const request of this.work.values()) {
      // Leaving the warm pool: the agent was installed on the way in; verify it, install only if needed.
      const mode: EnsureMode = request.origin === "WarmPool" ? "verify-first" : "install";
      byMode.set(mode, [...(byMode.get(mode) ?? []), request]);
    }
    const settings = agentSettings(this.config);
    const results = await Promise.all(
      [...byMode].map(([mode, group]) => {
        const earliest = Math.min(...group.map((request) => request.startedAt ?? this.startedAt));
        const timeoutMs = this.config.REGISTRATION_TIMEOUT_SECONDS * 1000;
        return ensureAgents(
          {
            instanceIds: group.map((request) => request.instanceId),
            mode,
            // Installs sent since the launch began are this launch's own (a minute of slack for clock skew).
            since: group.every((request) => request.startedAt !== undefined) ? earliest - 60_000 : undefined,
            // Each instance's own: a fresh launch batched with an old one gets its full time.
            registrationDeadline: this.startedAt + timeoutMs,
            registrationDeadlines: new Map(
              group.map((request) => [request.instanceId, (request.startedAt ?? this.startedAt) + timeoutMs]),
            ),
            deadline: this.context.deadline,
            correlationId: this.context.correlationId,
            onTick: (now, pending) => this.heartbeatDue(now, pending),
            onSettled: (result) => this.completeIfOurs(result),
          },
          settings,
        );
      }),
    );
    return results.flat();
  }

  private actionOf(request: LaunchRequest): LifecycleAction {
    return {
      group: request.group,
      hook: request.hook ?? "",
      instanceId: request.instanceId,
      token: request.source === "event" ? request.token : undefined,
    };
  }

  /**
   * Heartbeats the actions whose wait has passed half the hook's heartbeat timeout; returns the
   * instances whose action ended meanwhile, so the engine stops working on them.
   */
  private async heartbeatDue(now: number, pending: string[]): Promise<string[]> {
    if (this.config.DRY_RUN) return [];
    // Without a known start (replay, sweep) the wait may already be old: beat at once.
    const due = pending
      .map((instanceId) => this.work.get(instanceId))
      .filter((request) => request !== undefined)
      .filter((request) => {
        const last = this.lastBeat.get(request.instanceId) ?? request.startedAt ?? 0;
        return now - last >= (this.heartbeatMs.get(request.instanceId) ?? 0) / 2;
      });
    // A throttled heartbeat is tried again on the next round; half the heartbeat timeout is left.
    const alive = await mapLimit(due, AWS_CALLS_IN_FLIGHT, (request) =>
      this.lifecycle.once(() => recordHeartbeat(this.actionOf(request))),
    );
    const stop: string[] = [];
    for (const [index, request] of due.entries()) {
      if (alive[index] === "throttled") continue;
      if (alive[index]) {
        this.lastBeat.set(request.instanceId, now);
        metrics.addMetric(METRIC.heartbeats, MetricUnit.Count, 1);
      } else {
        this.endedActions.add(request.instanceId);
        stop.push(request.instanceId);
      }
    }
    return stop;
  }

  /** Completes the lifecycle action for a settled instance, or keeps a pending one waiting. */
  private async completeIfOurs(result: AgentResult): Promise<void> {
    const request = this.work.get(result.instanceId);
    if (!request) return;
    const ids: Partial<LaunchOutcome> = {
      installCommandIds: result.installCommandIds,
      verifyCommandIds: result.verifyCommandIds,
      agentVersion: result.agentVersion,
    };
    // Named whatever the launch's end: when the baked agent is older than the fix, CodeDeploy's launch
    // deployment fails on it and ends the launch before the agent is replaced, and that is the case
    // where the AMI matters most. A pending instance is named when it settles.
    const bakedAgent =
      request.origin === "WarmPool" || result.status === "PENDING"
        ? undefined
        : this.bakedAgentReport(request, result);
    if (bakedAgent) ids.bakedAgent = bakedAgent;
    if (result.status === "STOPPED" || this.endedActions.has(request.instanceId)) {
      this.record(request, "ALREADY_COMPLETED", ACTION_ENDED, ids);
      return;
    }
    if (result.status === "DRY_RUN") {
      // A dry run holds nothing: its hook's default result is CONTINUE, and the action is completed
      // with CONTINUE at once rather than left to time out.
      const completion = await this.lifecycle.retrying(() =>
        completeAction(this.actionOf(request), "CONTINUE"),
      );
      const reason = `${result.reason}, then complete the lifecycle action`;
      if (completion === "COMPLETED")
        this.record(request, "CONTINUE", `${reason}; completed CONTINUE so the launch is not held`, ids);
      else this.record(request, "SKIPPED", reason, ids);
      return;
    }
    if (result.status === "PENDING") {
      // Keep the instance waiting until the next delivery resumes the work.
      const beat = this.config.DRY_RUN
        ? "alive"
        : await this.lifecycle.retrying(() => recordHeartbeat(this.actionOf(request)));
      if (beat === false) this.record(request, "ALREADY_COMPLETED", ACTION_ENDED, ids);
      else this.record(request, "PENDING", result.reason, ids);
      return;
    }
    const ok = result.status === "VERIFIED" || result.status === "INSTALLED";
    const lifecycleResult = ok ? "CONTINUE" : this.config.FAILURE_RESULT;
    const completion = await this.lifecycle.retrying(() =>
      completeAction(this.actionOf(request), lifecycleResult),
    );
    if (completion === "throttled") {
      // The agent is in place; the next delivery finds the install done, verifies and completes.
      this.record(
        request,
        "PENDING",
        `${result.reason}; completing the lifecycle action (${lifecycleResult}) stayed throttled until the time budget ran out, resumes on the next delivery`,
        ids,
      );
    } else if (completion === "ALREADY_COMPLETED") {
      this.record(
        request,
        "ALREADY_COMPLETED",
        `${result.reason}; the lifecycle action had already ended`,
        ids,
      );
    } else {
      const reason = ok ? result.reason : `${result.reason}; completed ${lifecycleResult} (FAILURE_RESULT)`;
      this.record(request, lifecycleResult, reason, ids);
    }
  }

  private bakedAgentReport(request: LaunchRequest, result: AgentResult): BakedAgentReport | undefined {
    return reportBakedAgent(request, result, this.states.get(request.instanceId));
  }

  /** One outcome per instance, in the order of the requests; each logged and counted once. */
  private report(requests: readonly LaunchRequest[]): LaunchOutcome[] {
    const report = requests
      .map((request) => this.outcomes.get(request.instanceId))
      .filter((outcome) => outcome !== undefined);
    const unique = [...new Map(report.map((outcome) => [outcome.instanceId, outcome])).values()];
    for (const outcome of unique) recordOutcome(outcome);
    return unique;
  }
}
