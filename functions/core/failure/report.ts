// What the failure path tells about each failure it handles: the report the function returns, one
// structured log line with it, one metric per decision and the count of agents the upgrade changed.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logger, metrics } from "../common/powertools.js";
import { METRIC, type MetricName } from "../contract.js";
import type { ClassifiedTarget } from "./classify.js";
import type { FailureDecision } from "./policy.js";
import { changedAgents, type UpgradeResult } from "./upgrade.js";

export interface FailureReport extends UpgradeResult {
  deploymentId: string;
  decision: FailureDecision;
  /** Plain words; AWS ids (deployments, instances, commands) to look further. */
  reason: string;
  redeploymentId?: string;
  /** The first failed deployment of the chain this one belongs to (itself unless it is a redeployment). */
  originalDeploymentId: string;
  /** The redeployment attempt this decision is about: 1 for the first redeployment of a failure. */
  attempt: number;
  failedTargets: ClassifiedTarget[];
  elapsedSeconds: number;
}

const METRIC_BY_DECISION: Record<FailureDecision, MetricName> = {
  REDEPLOYED: METRIC.redeployCreated,
  SKIPPED: METRIC.redeploySkipped,
  GAVE_UP: METRIC.redeployGaveUp,
  DRY_RUN: METRIC.redeployDryRun,
  DEFERRED: METRIC.redeployDeferred,
};

/** One structured log line and one metric per decision, whatever the branch. */
export function recordDecision(report: FailureReport): void {
  logger.info(`Deployment ${report.deploymentId}: ${report.decision}`, {
    decision: report.decision,
    reason: report.reason,
    report,
  });
  metrics.addMetric(METRIC_BY_DECISION[report.decision], MetricUnit.Count, 1);
  const changed = changedAgents(report).length;
  if (changed > 0) metrics.addMetric(METRIC.agentUpgraded, MetricUnit.Count, changed);
}
