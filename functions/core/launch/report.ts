// What the launch path reports besides its outcome: each outcome's log line and metrics, and the
// AMI that bakes an outdated agent in.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { versionSatisfies } from "../agent/scripts.js";
import type { AgentResult } from "../agent/types.js";
import { logger, metrics } from "../common/powertools.js";
import { METRIC, type MetricName } from "../contract.js";
import type { InstanceState } from "./lifecycle.js";
import type { BakedAgentReport, LaunchOutcome, LaunchOutcomeKind, LaunchRequest } from "./types.js";

/**
 * An instance that started an outdated agent at boot: its AMI bakes one in, and CodeDeploy's launch
 * deployment can pick it up before anyone can replace it. Named with its AMI and launch template,
 * counted, and the fix said; CodeDeploy's guide recommends an AMI whose agent is stopped
 * (https://docs.aws.amazon.com/codedeploy/latest/userguide/troubleshooting-auto-scaling.html).
 */
export function reportBakedAgent(
  request: LaunchRequest,
  result: AgentResult,
  state: InstanceState | undefined,
): BakedAgentReport | undefined {
  const running = result.runningBefore;
  const expected = result.expectedVersion;
  if (!running || !expected || versionSatisfies(running, expected)) return undefined;
  const ami = state?.imageId ?? "the group's AMI";
  metrics.addMetric(METRIC.outdatedAgentInAmi, MetricUnit.Count, 1);
  const report: BakedAgentReport = {
    ...(state?.imageId ? { imageId: state.imageId } : {}),
    ...(state?.launchTemplate ? { launchTemplate: state.launchTemplate } : {}),
    agentVersion: running,
    expectedVersion: expected,
    fix: `${ami} starts CodeDeploy agent ${running} at boot, older than ${expected}: build the AMI without the agent, or with the codedeploy-agent service stopped and disabled, and let the launch hook install it`,
  };
  logger.warn("AMI bakes an outdated CodeDeploy agent", {
    instanceId: request.instanceId,
    autoScalingGroupName: request.group,
    ...report,
  });
  return report;
}

const OUTCOME_METRIC: Record<LaunchOutcomeKind, MetricName> = {
  CONTINUE: METRIC.launchContinued,
  ABANDON: METRIC.launchAbandoned,
  ALREADY_COMPLETED: METRIC.launchAlreadyCompleted,
  SKIPPED: METRIC.launchSkipped,
  PENDING: METRIC.launchPending,
};

export function recordOutcome(outcome: LaunchOutcome): void {
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
