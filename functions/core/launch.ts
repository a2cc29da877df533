import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { type AgentResult, agentSettings, type EnsureMode, ensureAgents } from "./agent.js";
import { backoffDelay } from "./common/clients.js";
import { clock } from "./common/clock.js";
import { limiter, mapLimit } from "./common/concurrency.js";
import { isTransient } from "./common/errors.js";
import type { Lease } from "./common/lease.js";
import { logger, metrics } from "./common/powertools.js";
import type { LaunchConfig } from "./config.js";
import { LAUNCH_TRANSITION, METRIC, type MetricName, WAITING_STATES } from "./contract.js";
import {
  completeAction,
  describeLifecycleStates,
  findLaunchHooks,
  type LifecycleAction,
  recordHeartbeat,
} from "./lifecycle.js";

/**
 * The launch path: every instance a launch hook holds in Pending:Wait gets the CodeDeploy agent from
 * Systems Manager, verified, before the hook is completed. Each call looks at the world (lifecycle
 * state, SSM registration, installs already sent) and takes the next step, so duplicates, retries and
 * replays resume the work instead of repeating it.
 */
/** Per-instance calls (leases, heartbeats) run side by side, at most this many at once. */
const AWS_CALLS_IN_FLIGHT = 10;
/**
 * Completions and heartbeats of one invocation go one at a time: a scale-out runs many invocations
 * at once, and parallel completions only add throttled retries (a 1,000-instance burst measured 2.77
 * Auto Scaling calls per instance with 5 in flight, 1.98 with 1, at the same hook-to-complete times).
 */
const LIFECYCLE_CALLS_IN_FLIGHT = 1;

export type LaunchOutcomeKind = "CONTINUE" | "ABANDON" | "ALREADY_COMPLETED" | "SKIPPED" | "PENDING";

/** One instance to reconcile, from an event, a replay or the sweep. */
export interface LaunchRequest {
  instanceId: string;
  group: string;
  /** Absent on replay: resolved from the group's hooks. */
  hook?: string;
  token?: string;
  transition?: string;
  origin?: string;
  destination?: string;
  /** AWS-time ms when the lifecycle action started, when known (the event's time). */
  startedAt?: number;
  source: "event" | "replay" | "sweep";
}

export interface LaunchOutcome {
  instanceId: string;
  autoScalingGroupName: string;
  lifecycleHookName?: string;
  outcome: LaunchOutcomeKind;
  reason: string;
  agentVersion?: string;
  elapsedSeconds: number;
  installCommandIds?: string[];
  verifyCommandIds?: string[];
  /** PENDING only: another invocation holds the instance, so a quick retry would only find it busy. */
  busyElsewhere?: boolean;
}

export interface LaunchContext {
  /** AWS-time ms by which the work must stop (the Lambda deadline minus a reserve). */
  deadline: number;
  /** Correlates logs, SSM command comments and leases (the Lambda request id). */
  correlationId: string;
  lease: Lease;
}

export async function reconcileLaunches(
  requests: readonly LaunchRequest[],
  config: LaunchConfig,
  context: LaunchContext,
): Promise<LaunchOutcome[]> {
  const startedAt = clock.now();
  const outcomes = new Map<string, LaunchOutcome>();
  const decide = (
    request: LaunchRequest,
    outcome: LaunchOutcomeKind,
    reason: string,
    extra: Partial<LaunchOutcome> = {},
  ) => {
    const since = request.startedAt ?? startedAt;
    outcomes.set(request.instanceId, {
      instanceId: request.instanceId,
      autoScalingGroupName: request.group,
      lifecycleHookName: request.hook,
      outcome,
      reason,
      elapsedSeconds: Math.max(0, Math.round((clock.now() - since) / 100) / 10),
      ...extra,
    });
  };

  // 1. Scope. A duplicate of an instance in the same batch is handled once; the newest event wins.
  const work = new Map<string, LaunchRequest>();
  for (const request of requests) {
    const skip = outOfScope(request, config);
    if (skip) {
      decide(request, "SKIPPED", skip);
      continue;
    }
    const known = work.get(request.instanceId);
    if (!known || (request.startedAt ?? 0) >= (known.startedAt ?? 0)) work.set(request.instanceId, request);
  }

  // Replays may leave the hook out: it is the group's one hook of ours.
  const heartbeatMs = new Map<string, number>();
  for (const request of work.values()) {
    const hooks = await findLaunchHooks(request.group, config.LIFECYCLE_HOOK_NAME || request.hook || "");
    const hook = request.hook ? hooks.find((candidate) => candidate.name === request.hook) : hooks[0];
    if (!request.hook && hooks.length > 1) {
      decide(
        request,
        "SKIPPED",
        `group ${request.group} has ${hooks.length} launch hooks of ours (${hooks.map((h) => h.name).join(", ")}); name one with lifecycleHookName`,
      );
      work.delete(request.instanceId);
    } else if (!hook && !request.hook) {
      decide(request, "SKIPPED", `group ${request.group} has no launch lifecycle hook of ours`);
      work.delete(request.instanceId);
    } else {
      request.hook = request.hook ?? hook?.name;
      // Unknown hooks (not described yet, or cached before they were created) get the documented default.
      heartbeatMs.set(request.instanceId, (hook?.heartbeatTimeoutSeconds ?? 3600) * 1000);
    }
  }

  // 2. Lifecycle state: an instance no longer waiting needs nothing, and no SSM call.
  const states = work.size > 0 ? await describeLifecycleStates([...work.keys()]) : new Map();
  for (const request of [...work.values()]) {
    const state = states.get(request.instanceId);
    if (!state || !WAITING_STATES.has(state.lifecycleState)) {
      decide(
        request,
        "ALREADY_COMPLETED",
        state
          ? `instance is ${state.lifecycleState}; its launch wait is over`
          : "instance is no longer in the group (terminated or detached)",
      );
      work.delete(request.instanceId);
    }
  }

  // Two invocations must never work on one instance at once (duplicated events, sweep, replays).
  const candidates = [...work.values()];
  const leased = await mapLimit(candidates, AWS_CALLS_IN_FLIGHT, (request) =>
    context.lease.acquire(`agent#${request.instanceId}`, context.correlationId, context.deadline),
  );
  for (const [index, request] of candidates.entries()) {
    if (!leased[index]) {
      decide(
        request,
        "PENDING",
        "another invocation is working on this instance; retried on the next delivery",
        {
          busyElsewhere: true,
        },
      );
      work.delete(request.instanceId);
    }
  }

  // 3-9. Install and verify, heartbeating long waits, then complete.
  const lastBeat = new Map<string, number>();
  const actionOf = (request: LaunchRequest): LifecycleAction => ({
    group: request.group,
    hook: request.hook ?? "",
    instanceId: request.instanceId,
    token: request.source === "event" ? request.token : undefined,
  });
  const endedActions = new Set<string>();
  const lifecycleSlots = limiter(LIFECYCLE_CALLS_IN_FLIGHT);
  const onTick = async (now: number, pending: string[]) => {
    if (config.DRY_RUN) return [];
    // Without a known start (replay, sweep) the wait may already be old: beat at once.
    const due = pending
      .map((instanceId) => work.get(instanceId))
      .filter((request) => request !== undefined)
      .filter((request) => {
        const last = lastBeat.get(request.instanceId) ?? request.startedAt ?? 0;
        return now - last >= (heartbeatMs.get(request.instanceId) ?? 0) / 2;
      });
    // A throttled heartbeat is tried again on the next round; half the heartbeat timeout is left.
    const alive = await mapLimit(due, AWS_CALLS_IN_FLIGHT, (request) =>
      lifecycleSlots(() =>
        recordHeartbeat(actionOf(request)).catch((error: unknown) => {
          if (isTransient(error)) return "throttled" as const;
          throw error;
        }),
      ),
    );
    const stop: string[] = [];
    for (const [index, request] of due.entries()) {
      if (alive[index] === "throttled") continue;
      if (alive[index]) {
        lastBeat.set(request.instanceId, now);
        metrics.addMetric(METRIC.heartbeats, MetricUnit.Count, 1);
      } else {
        endedActions.add(request.instanceId);
        stop.push(request.instanceId);
      }
    }
    return stop;
  };

  const byMode = new Map<EnsureMode, LaunchRequest[]>();
  for (const request of work.values()) {
    // Leaving the warm pool: the agent was installed on the way in; verify it, install only if needed.
    const mode: EnsureMode = request.origin === "WarmPool" ? "verify-first" : "install";
    byMode.set(mode, [...(byMode.get(mode) ?? []), request]);
  }
  const settings = agentSettings(config);
  const results = (
    await Promise.all(
      [...byMode].map(([mode, group]) => {
        const earliest = Math.min(...group.map((request) => request.startedAt ?? startedAt));
        return ensureAgents(
          {
            instanceIds: group.map((request) => request.instanceId),
            mode,
            // Installs sent since the launch began are this launch's own (a minute of slack for clock skew).
            since: group.every((request) => request.startedAt !== undefined) ? earliest - 60_000 : undefined,
            registrationDeadline: earliest + config.REGISTRATION_TIMEOUT_SECONDS * 1000,
            deadline: context.deadline,
            correlationId: context.correlationId,
            onTick,
            // Each instance is completed as soon as its agent is verified, not when the batch is.
            onSettled: async (result) => {
              const request = work.get(result.instanceId);
              if (request) await settle(request, result);
            },
          },
          settings,
        );
      }),
    )
  ).flat();

  await mapLimit(
    results.filter((result) => result.status === "PENDING"),
    AWS_CALLS_IN_FLIGHT,
    async (result) => {
      const request = work.get(result.instanceId);
      if (request) await settle(request, result);
    },
  );
  // Hand the instances back at once, so the next delivery need not wait for the lease to lapse.
  await mapLimit([...work.values()], AWS_CALLS_IN_FLIGHT, (request) =>
    context.lease.release(`agent#${request.instanceId}`, context.correlationId),
  );

  async function settle(request: LaunchRequest, result: AgentResult): Promise<void> {
    const ids = {
      installCommandIds: result.installCommandIds,
      verifyCommandIds: result.verifyCommandIds,
      agentVersion: result.agentVersion,
    };
    const ended = "the lifecycle action ended while the agent was being set up";
    if (result.status === "STOPPED" || endedActions.has(request.instanceId)) {
      decide(request, "ALREADY_COMPLETED", ended, ids);
      return;
    }
    if (result.status === "DRY_RUN") {
      decide(request, "SKIPPED", `${result.reason}, then complete the lifecycle action`, ids);
      return;
    }
    if (result.status === "PENDING") {
      // Keep the instance waiting until the next delivery resumes the work.
      const beat = config.DRY_RUN ? "alive" : await lifecycleCall(() => recordHeartbeat(actionOf(request)));
      if (beat === false) decide(request, "ALREADY_COMPLETED", ended, ids);
      else decide(request, "PENDING", result.reason, ids);
      return;
    }
    const ok = result.status === "VERIFIED" || result.status === "INSTALLED";
    const lifecycleResult = ok ? "CONTINUE" : config.FAILURE_RESULT;
    const completion = await lifecycleCall(() => completeAction(actionOf(request), lifecycleResult));
    if (completion === "throttled") {
      // The agent is in place; the next delivery finds the install done, verifies and completes.
      decide(
        request,
        "PENDING",
        `${result.reason}; completing the lifecycle action (${lifecycleResult}) stayed throttled until the time budget ran out, resumes on the next delivery`,
        ids,
      );
    } else if (completion === "ALREADY_COMPLETED") {
      decide(request, "ALREADY_COMPLETED", `${result.reason}; the lifecycle action had already ended`, ids);
    } else {
      const reason = ok ? result.reason : `${result.reason}; completed ${lifecycleResult} (FAILURE_RESULT)`;
      decide(request, lifecycleResult, reason, ids);
    }
  }

  /**
   * A lifecycle call, a few at a time: a scale-out completes hundreds of actions at once, and Auto
   * Scaling throttles completions and heartbeats when "too many instances launch too quickly"
   * (https://docs.aws.amazon.com/codedeploy/latest/userguide/troubleshooting-auto-scaling.html).
   * Throttling beyond the SDK's own retries is retried here until the time budget runs out, and then
   * reported as "throttled" rather than failing the whole batch.
   */
  async function lifecycleCall<T>(call: () => Promise<T>): Promise<T | "throttled"> {
    return lifecycleSlots(async () => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          return await call();
        } catch (error) {
          const wait = backoffDelay(attempt, 1_000, 15_000);
          if (!isTransient(error) || clock.now() + wait >= context.deadline) {
            if (isTransient(error)) return "throttled";
            throw error;
          }
          await clock.sleep(wait);
        }
      }
    });
  }

  const report = requests
    .map((request) => outcomes.get(request.instanceId))
    .filter((outcome) => outcome !== undefined);
  const unique = [...new Map(report.map((outcome) => [outcome.instanceId, outcome])).values()];
  for (const outcome of unique) recordOutcome(outcome);
  return unique;
}

function outOfScope(request: LaunchRequest, config: LaunchConfig): string | undefined {
  if (request.transition && request.transition !== LAUNCH_TRANSITION) {
    return `transition ${request.transition} is not a launch`;
  }
  if (config.TARGET_GROUPS.length > 0 && !config.TARGET_GROUPS.includes(request.group)) {
    return `group ${request.group} is not in scope (TARGET_GROUPS)`;
  }
  if (request.hook && config.LIFECYCLE_HOOK_NAME && request.hook !== config.LIFECYCLE_HOOK_NAME) {
    return `hook ${request.hook} is not this service's hook (${config.LIFECYCLE_HOOK_NAME})`;
  }
  if (
    request.destination &&
    request.destination !== "AutoScalingGroup" &&
    request.destination !== "WarmPool"
  ) {
    return `destination ${request.destination} is not a launch into the group or its warm pool`;
  }
  return undefined;
}

const OUTCOME_METRIC: Record<LaunchOutcomeKind, MetricName> = {
  CONTINUE: METRIC.launchContinued,
  ABANDON: METRIC.launchAbandoned,
  ALREADY_COMPLETED: METRIC.launchAlreadyCompleted,
  SKIPPED: METRIC.launchSkipped,
  PENDING: METRIC.launchPending,
};

function recordOutcome(outcome: LaunchOutcome): void {
  metrics.addMetric(OUTCOME_METRIC[outcome.outcome], MetricUnit.Count, 1);
  if (outcome.outcome === "CONTINUE" || outcome.outcome === "ABANDON") {
    metrics.addMetric(METRIC.timeToComplete, MetricUnit.Seconds, outcome.elapsedSeconds);
  }
  const log = outcome.outcome === "ABANDON" ? logger.warn.bind(logger) : logger.info.bind(logger);
  log(`launch ${outcome.outcome}: ${outcome.reason}`, {
    instanceId: outcome.instanceId,
    autoScalingGroupName: outcome.autoScalingGroupName,
    lifecycleHookName: outcome.lifecycleHookName,
    outcome: outcome.outcome,
    agentVersion: outcome.agentVersion,
    elapsedSeconds: outcome.elapsedSeconds,
  });
}
