// What the launch path reports besides its outcome: each outcome's log line and metrics, and the
// AMI that bakes an outdated agent in.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { isAcceptable } from "../agent/verified.js";
import { logger, metrics } from "../common/powertools.js";
import { METRIC, type MetricName } from "../contract.js";
import { describeLifecycleStates } from "./lifecycle.js";
import type { LaunchRecord, RecordStore } from "./records.js";
import type { LaunchOutcome } from "./types.js";

export function outcomeOf(
  launch: { instanceId: string; group: string; hook?: string; startedAt?: number },
  outcome: LaunchOutcome["outcome"],
  reason: string,
  now: number,
): LaunchOutcome {
  return {
    instanceId: launch.instanceId,
    autoScalingGroupName: launch.group,
    ...(launch.hook ? { lifecycleHookName: launch.hook } : {}),
    outcome,
    reason,
    elapsedSeconds: Math.max(0, Math.round((now - (launch.startedAt ?? now)) / 100) / 10),
  };
}

/**
 * Instances that started an outdated agent at boot: their AMI bakes one in, and CodeDeploy's launch
 * deployment can pick it up before anyone can replace it. Each is named with its AMI and launch
 * template, and the fix said: CodeDeploy's guide recommends an AMI whose agent is stopped
 * (https://docs.aws.amazon.com/codedeploy/latest/userguide/troubleshooting-auto-scaling.html).
 * Returns the records it named; the step counts each once its record is stored.
 */
export async function nameBakedAgents(records: readonly LaunchRecord[]): Promise<LaunchRecord[]> {
  const baked = records.filter(
    (record) =>
      record.origin !== "WarmPool" &&
      !record.bakedAgent &&
      record.runningBefore &&
      record.expectedVersion &&
      !isAcceptable(record.runningBefore, record.expectedVersion),
  );
  if (baked.length === 0) return [];
  const states = await describeLifecycleStates(baked.map((record) => record.instanceId));
  for (const record of baked) {
    const state = states.get(record.instanceId);
    const running = record.runningBefore ?? "";
    const expected = record.expectedVersion ?? "";
    const ami = state?.imageId ?? "the group's AMI";
    record.bakedAgent = {
      ...(state?.imageId ? { imageId: state.imageId } : {}),
      ...(state?.launchTemplate ? { launchTemplate: state.launchTemplate } : {}),
      agentVersion: running,
      expectedVersion: expected,
      fix: `${ami} starts CodeDeploy agent ${running} at boot, older than ${expected}: build the AMI without the agent, or with the codedeploy-agent service stopped and disabled, and let the launch hook install it`,
    };
    logger.warn("AMI bakes an outdated CodeDeploy agent", {
      instanceId: record.instanceId,
      autoScalingGroupName: record.group,
      ...record.bakedAgent,
    });
  }
  return baked;
}

const OUTCOME_METRIC: Record<LaunchOutcome["outcome"], MetricName> = {
  CONTINUE: METRIC.launchContinued,
  ABANDON: METRIC.launchAbandoned,
  ALREADY_COMPLETED: METRIC.launchAlreadyCompleted,
  SKIPPED: METRIC.launchSkipped,
  PENDING: METRIC.launchPending,
};

export function recordOutcome(outcome: LaunchOutcome): void {
  metrics.addMetric(OUTCOME_METRIC[outcome.outcome], MetricUnit.Count, 1);
  if (outcome.outcome === "CONTINUE" && outcome.fault)
    metrics.addMetric(METRIC.launchFailedOpen, MetricUnit.Count, 1);
  if (outcome.outcome === "CONTINUE" || outcome.outcome === "ABANDON")
    metrics.addMetric(METRIC.timeToComplete, MetricUnit.Seconds, outcome.elapsedSeconds);
  const log = outcome.outcome === "ABANDON" ? logger.warn.bind(logger) : logger.info.bind(logger);
  log(`launch ${outcome.outcome}: ${outcome.reason}`, {
    instanceId: outcome.instanceId,
    autoScalingGroupName: outcome.autoScalingGroupName,
    lifecycleHookName: outcome.lifecycleHookName,
    outcome: outcome.outcome,
    agentVersion: outcome.agentVersion,
    elapsedSeconds: outcome.elapsedSeconds,
    ...(outcome.fault ? { fault: outcome.fault } : {}),
  });
}

/** Each group's breaker is told how its launches ended; its opening or closing is said once. */
export async function tellBreakers(
  store: RecordStore,
  finishing: readonly LaunchRecord[],
  before: ReadonlyMap<string, boolean>,
): Promise<void> {
  for (const [group, wasOpen] of before) {
    const ended = finishing.filter((record) => record.group === group && record.phase === "done");
    const verified = ended.filter((record) => record.ended?.ok).length;
    const ownFailures = ended.filter((record) => record.ended?.fault === "instance").length;
    if (verified + ownFailures === 0) continue;
    const now = await store.noteEnded(group, { verified, ownFailures });
    if (now.open === wasOpen) continue;
    if (now.open) metrics.addMetric(METRIC.breakerOpened, MetricUnit.Count, 1);
    const log = now.open ? logger.warn.bind(logger) : logger.info.bind(logger);
    log(
      now.open
        ? `breaker of ${group} opened after ${now.failures} launches in a row failed: they are let in (CONTINUE) until one verifies again`
        : `breaker of ${group} closed: a launch verified again`,
      { autoScalingGroupName: group, breakerOpen: now.open, failures: now.failures },
    );
  }
}
