// The failure path: when a CodeDeploy deployment fails, decide whether the agent is to blame, upgrade
// it on the failed instances, and deploy the same revision again, a bounded number of times. The
// rules live in policy.ts; this file runs them in order and reports the decision.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { clock } from "../common/clock.js";
import { errorMessage } from "../common/errors.js";
import type { Lease } from "../common/lease.js";
import { logger, metrics } from "../common/powertools.js";
import type { FailureConfig } from "../config.js";
import { METRIC, type MetricName } from "../contract.js";
import { type ClassifiedTarget, classifyTarget } from "./classify.js";
import {
  agentSignature,
  capReason,
  dryRunReason,
  type FailureDecision,
  laterDeploymentReason,
  launchDeploymentReason,
  verdictAfterUpgrade,
  verdictBeforeUpgrade,
  whyNotRedeployable,
  whySkip,
} from "./policy.js";
import {
  chainOf,
  createRedeployment,
  findLaterDeployment,
  getDeployment,
  type RedeployMarker,
  redeploymentInput,
} from "./redeploy.js";
import { listFailedTargets } from "./targets.js";
import { changedAgents, summarizeUpgrade, type UpgradeResult, upgradeAgents } from "./upgrade.js";

export type { FailureDecision } from "./policy.js";
export type { NotUpgraded, UpgradedAgent } from "./upgrade.js";

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

export interface FailureJob {
  deploymentId: string;
  /** Lambda request id: holder of the deployment lease (an async retry keeps the same id). */
  requestId: string;
  /** AWS-time ms by which the invocation must have reported. */
  deadline: number;
}

export interface FailureDependencies {
  config: FailureConfig;
  lease: Lease;
}

/** Another invocation is working on this failure right now; thrown so this one is retried later. */
export class DeploymentLeaseHeldError extends Error {
  override name = "DeploymentLeaseHeldError";
}

const METRIC_BY_DECISION: Record<FailureDecision, MetricName> = {
  REDEPLOYED: METRIC.redeployCreated,
  SKIPPED: METRIC.redeploySkipped,
  GAVE_UP: METRIC.redeployGaveUp,
  DRY_RUN: METRIC.redeployDryRun,
};

type Outcome = Omit<FailureReport, "elapsedSeconds">;

/** Repairs one failed deployment if the agent is to blame; errors are rethrown for Lambda to retry. */
export async function repairFailedDeployment(
  job: FailureJob,
  deps: FailureDependencies,
): Promise<FailureReport> {
  const startedAt = clock.now();
  logger.appendKeys({ deploymentId: job.deploymentId });
  let outcome: Outcome;
  try {
    outcome = await new DeploymentRepair(job, deps).run();
  } catch (error) {
    // Not a decision: the invocation fails so Lambda retries it and, in the end, the failure destination keeps it.
    logger.error("Deployment failure not handled; the invocation is retried", {
      errorName: error instanceof Error ? error.name : typeof error,
      error: errorMessage(error),
    });
    throw error;
  }
  const report: FailureReport = {
    ...outcome,
    elapsedSeconds: Math.round((clock.now() - startedAt) / 100) / 10,
  };
  recordDecision(report);
  return report;
}

/** One structured log line and one metric per decision, whatever the branch. */
function recordDecision(report: FailureReport): void {
  logger.info(`Deployment ${report.deploymentId}: ${report.decision}`, {
    decision: report.decision,
    reason: report.reason,
    report,
  });
  metrics.addMetric(METRIC_BY_DECISION[report.decision], MetricUnit.Count, 1);
  const changed = changedAgents(report).length;
  if (changed > 0) metrics.addMetric(METRIC.agentUpgraded, MetricUnit.Count, changed);
}

class DeploymentRepair {
  private readonly config: FailureConfig;
  private chain: RedeployMarker;
  private failedTargets: ClassifiedTarget[] = [];
  private upgrade: UpgradeResult = { upgraded: [], notUpgraded: [] };

  constructor(
    private readonly job: FailureJob,
    private readonly deps: FailureDependencies,
  ) {
    this.config = deps.config;
    this.chain = { originalDeploymentId: job.deploymentId, attempt: 0 };
  }

  private outcome(decision: FailureDecision, reason: string, redeploymentId?: string): Outcome {
    return {
      deploymentId: this.job.deploymentId,
      decision,
      reason,
      upgraded: this.upgrade.upgraded,
      notUpgraded: this.upgrade.notUpgraded,
      ...(redeploymentId ? { redeploymentId } : {}),
      originalDeploymentId: this.chain.originalDeploymentId,
      attempt: this.chain.attempt + 1,
      failedTargets: this.failedTargets,
    };
  }

  async run(): Promise<Outcome> {
    const id = this.job.deploymentId;
    // Events carry no reason (only ids and the state), and are best effort: GetDeployment is the truth.
    // https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-codedeploy.html
    const failed = await getDeployment(id);
    this.chain = chainOf(failed, id);

    const skip = whySkip(failed, id, this.config.TARGET_DEPLOYMENT_GROUPS);
    if (skip === "launch-deployment") {
      await this.readFailedTargets();
      const instances = this.failedTargets.map((target) => target.instanceId);
      return this.outcome("SKIPPED", launchDeploymentReason(id, instances));
    }
    if (skip) return this.outcome("SKIPPED", skip);

    const capped = capReason(id, this.chain, this.config.MAX_REDEPLOYS);
    if (capped) {
      await this.readFailedTargets();
      return this.outcome("GAVE_UP", capped);
    }
    const notRedeployable = whyNotRedeployable(failed);
    if (notRedeployable) return this.outcome("GAVE_UP", `Cannot redeploy ${id}: ${notRedeployable}.`);

    // A dry run changes nothing, so it needs no lease.
    if (this.config.DRY_RUN) return this.decide(failed);
    const key = `deployment#${id}`;
    if (!(await this.deps.lease.acquire(key, this.job.requestId, this.job.deadline))) {
      throw new DeploymentLeaseHeldError(
        `Another invocation holds the lease ${key}; this one is retried after it finishes`,
      );
    }
    try {
      return await this.decide(failed);
    } finally {
      await this.releaseLease(key);
    }
  }

  /**
   * Shortening our own lease to now releases it, so a duplicate waiting on it goes ahead at once. A
   * failed release is logged, not thrown: it must not hide the outcome, and the lease lapses at the
   * deadline by itself.
   */
  private async releaseLease(key: string): Promise<void> {
    try {
      await this.deps.lease.acquire(key, this.job.requestId, clock.now());
    } catch (error) {
      logger.warn("Could not release the deployment lease; it lapses at the deadline", {
        key,
        error: errorMessage(error),
      });
    }
  }

  private async readFailedTargets(): Promise<void> {
    const records = await listFailedTargets(this.job.deploymentId);
    this.failedTargets = records.map(classifyTarget);
  }

  private async decide(failed: DeploymentInfo): Promise<Outcome> {
    const id = this.job.deploymentId;
    const later = await findLaterDeployment(failed, id, this.chain);
    if (later) {
      const redeploymentId = later.kind === "redeployment" ? later.deploymentId : undefined;
      return this.outcome("SKIPPED", laterDeploymentReason(id, later), redeploymentId);
    }

    await this.readFailedTargets();
    const policy = this.config.REDEPLOY_WHEN;
    const signature = agentSignature(failed, id, this.failedTargets);
    const facts = { id, failed, failedTargets: this.failedTargets, signature, policy };
    const early = verdictBeforeUpgrade(facts);
    if (early) return this.outcome(early.decision, early.reason);

    const targets = this.failedTargets.map((target) => target.instanceId);
    if (this.config.DRY_RUN) return this.outcome("DRY_RUN", dryRunReason(targets, signature, policy));

    this.upgrade = await upgradeAgents(
      { failed, instanceIds: targets, correlationId: id, deadline: this.job.deadline },
      this.config,
    );
    const verdict = verdictAfterUpgrade({
      ...facts,
      changed: changedAgents(this.upgrade),
      upgradeSummary: summarizeUpgrade(this.upgrade),
    });
    if ("decision" in verdict) return this.outcome(verdict.decision, verdict.reason);

    const attempt = this.chain.attempt + 1;
    const input = redeploymentInput(failed, {
      originalDeploymentId: this.chain.originalDeploymentId,
      attempt,
    });
    const redeploymentId = await createRedeployment(input);
    return this.outcome(
      "REDEPLOYED",
      `Redeployed ${id} as ${redeploymentId} (attempt ${attempt} of ${this.config.MAX_REDEPLOYS}): ${verdict.redeployBecause}.`,
      redeploymentId,
    );
  }
}
