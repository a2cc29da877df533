// The failure path: when a CodeDeploy deployment fails, decide whether the agent is to blame, bring the
// agent current on every instance the redeploy will reach, and deploy the same revision again, a
// bounded number of times. The rules live in policy.ts; this file runs them in order and reports the
// decision (report.ts). What cannot be done yet (a busy group, a rollback to come, a duplicate at work)
// is deferred (retry-queue.ts).
import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { clock } from "../common/clock.js";
import { errorMessage } from "../common/errors.js";
import type { Lease } from "../common/lease.js";
import { logger } from "../common/powertools.js";
import type { FailureConfig } from "../config.js";
import { type ClassifiedTarget, classifyTarget } from "./classify.js";
import {
  agentSignature,
  busyGroupReason,
  capReason,
  dryRunReason,
  type FailureDecision,
  laterDeploymentReason,
  launchDeploymentReason,
  noScopeReason,
  otherStageReason,
  outdatedReason,
  rollbackWaitReason,
  rollbackWaitSeconds,
  verdictAfterUpgrade,
  verdictBeforeUpgrade,
  whyNotRedeployable,
  whySkip,
} from "./policy.js";
import {
  createRedeployment,
  findChain,
  findLaterDeployment,
  getDeployment,
  type RedeployMarker,
  redeploymentInput,
} from "./redeploy.js";
import { type FailureReport, recordDecision } from "./report.js";
import { type Deferral, deferFailure, type RetryMessage } from "./retry-queue.js";
import { listActiveDeployments, listDeploymentInstanceIds, listFailedTargets } from "./targets.js";
import {
  changedAgents,
  emptyUpgrade,
  summarizeUpgrade,
  type UpgradeResult,
  upgradeAgents,
} from "./upgrade.js";

export type { FailureDecision } from "./policy.js";
export type { FailureReport } from "./report.js";
export type { CurrentAgent, NotUpgraded, UpgradedAgent } from "./upgrade.js";

export interface FailureJob {
  deploymentId: string;
  /** Lease holder: the Lambda request id (an async retry keeps it), or the retry message's id. */
  requestId: string;
  /** AWS-time ms by which the invocation must have reported. */
  deadline: number;
  /** AWS-time ms the function first saw this failure; a deferred failure carries it on the retry queue. */
  firstSeenAt?: number;
}

export interface FailureDependencies {
  config: FailureConfig;
  lease: Lease;
}

export { DeploymentLeaseHeldError, RedeployDeferredError } from "./retry-queue.js";

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

class DeploymentRepair {
  private readonly config: FailureConfig;
  /** What this failure puts on the retry queue when it has to wait. */
  private readonly retryMessage: RetryMessage;
  private chain: RedeployMarker;
  private failedTargets: ClassifiedTarget[] = [];
  private upgrade: UpgradeResult = emptyUpgrade();

  constructor(
    private readonly job: FailureJob,
    private readonly deps: FailureDependencies,
  ) {
    this.config = deps.config;
    this.retryMessage = { deploymentId: job.deploymentId, firstSeenAt: job.firstSeenAt ?? clock.now() };
    this.chain = { originalDeploymentId: job.deploymentId, attempt: 0 };
  }

  private outcome(decision: FailureDecision, reason: string, redeploymentId?: string): Outcome {
    return {
      deploymentId: this.job.deploymentId,
      decision,
      reason,
      upgraded: this.upgrade.upgraded,
      notUpgraded: this.upgrade.notUpgraded,
      alreadyCurrent: this.upgrade.alreadyCurrent,
      ...(redeploymentId ? { redeploymentId } : {}),
      originalDeploymentId: this.chain.originalDeploymentId,
      attempt: this.chain.attempt + 1,
      failedTargets: this.failedTargets,
    };
  }

  async run(): Promise<Outcome> {
    const id = this.job.deploymentId;
    // A stage acts only on what it names: with no deployment group named, not even GetDeployment.
    if (this.config.TARGET_DEPLOYMENT_GROUPS.length === 0) {
      return this.outcome("SKIPPED", noScopeReason(id, this.config.STAGE));
    }
    // Events carry no reason (only ids and the state), and are best effort: GetDeployment is the truth.
    // https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-codedeploy.html
    const failed = await getDeployment(id);
    this.chain = await findChain(failed, id);

    const skip = whySkip(failed, id, this.config.TARGET_DEPLOYMENT_GROUPS);
    if (skip === "launch-deployment") {
      await this.readFailedTargets();
      const instances = this.failedTargets.map((target) => target.instanceId);
      return this.outcome("SKIPPED", launchDeploymentReason(id, instances));
    }
    if (skip) return this.outcome("SKIPPED", skip);
    const otherStage = otherStageReason(id, this.chain, this.config.STAGE);
    if (otherStage) return this.outcome("SKIPPED", otherStage);

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
      return this.defer({
        kind: "lease-held",
        reason: `Another invocation holds the lease ${key} and is working on this failure: no agent touched, nothing redeployed`,
      });
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
    const group = `${failed.applicationName}/${failed.deploymentGroupName}`;
    const later = await this.laterDeployment(failed);
    if (later) return later;
    const rollbackWait = rollbackWaitSeconds(failed, clock.now(), this.config.ROLLBACK_WAIT_SECONDS);
    if (rollbackWait !== undefined) {
      const reason = rollbackWaitReason(id, group, this.config.ROLLBACK_WAIT_SECONDS);
      return this.defer({ kind: "rollback", reason, afterSeconds: rollbackWait });
    }

    await this.readFailedTargets();
    const policy = this.config.REDEPLOY_WHEN;
    const signature = agentSignature(failed, id, this.failedTargets);
    const facts = { id, failed, failedTargets: this.failedTargets, signature, policy };
    const early = verdictBeforeUpgrade(facts);
    if (early) return this.outcome(early.decision, early.reason);

    // One deployment at a time per group: while another runs, no agent is restarted under it and the
    // redeploy could not be created anyway.
    const active = await listActiveDeployments(
      failed.applicationName ?? "",
      failed.deploymentGroupName ?? "",
    );
    if (active.length > 0) return this.defer({ kind: "busy-group", reason: busyGroupReason(group, active) });

    const failedIds = this.failedTargets.map((target) => target.instanceId);
    // A redeploy goes to the whole group: the instances CodeDeploy skipped or finished keep whatever
    // agent they run, and fail the redeploy if it is outdated.
    const others = (await listDeploymentInstanceIds(id)) ?? [];
    if (this.config.DRY_RUN) {
      return this.outcome("DRY_RUN", dryRunReason(failedIds, others, signature, policy));
    }
    this.upgrade = await upgradeAgents(
      {
        failed,
        failedInstanceIds: failedIds,
        otherInstanceIds: others,
        correlationId: id,
        deadline: this.job.deadline,
      },
      this.config,
    );
    // A deployment ran on some instances, or started in the group while the agents were being brought
    // current: their agents were left alone, and the failure waits for the group like any busy group.
    const busy = this.upgrade.notUpgraded.filter((agent) => agent.busy);
    if (busy.length > 0) {
      // Unless what started is a rollback, or another stage's redeployment, of this very failure.
      const later = await this.laterDeployment(failed);
      if (later) return later;
      const reason = `${busyGroupReason(group, [])}: ${busy.map((agent) => `${agent.instanceId} (${agent.reason})`).join("; ")}`;
      return this.defer({ kind: "busy-group", reason });
    }
    const failedSet = new Set(failedIds);
    const verdict = verdictAfterUpgrade({
      ...facts,
      // Only an agent that failed the deployment can explain it: an upgrade elsewhere proves nothing.
      changed: changedAgents(this.upgrade).filter((agent) => failedSet.has(agent.instanceId)),
      upgradeSummary: summarizeUpgrade(this.upgrade),
    });
    if ("decision" in verdict) return this.outcome(verdict.decision, verdict.reason);

    // The upgrade took a while: a rollback, a newer deployment or a duplicate's redeployment may exist now.
    const laterStill = await this.laterDeployment(failed);
    if (laterStill) return laterStill;
    // Every instance the redeploy reaches must run a current agent first: one the service could not
    // bring current (outside the stage's scope, an install that failed) would fail it again.
    const outdated = this.upgrade.notUpgraded.filter((agent) => agent.reachable);
    if (outdated.length > 0) return this.outcome("GAVE_UP", outdatedReason(id, outdated));
    const attempt = this.chain.attempt + 1;
    const input = redeploymentInput(failed, {
      originalDeploymentId: this.chain.originalDeploymentId,
      attempt,
      stage: this.config.STAGE,
    });
    const created = await createRedeployment(input);
    if ("busy" in created) {
      const reason = `${busyGroupReason(group, [])} (${created.busy})`;
      return this.defer({ kind: "busy-group", reason, cause: created.cause });
    }
    return this.outcome(
      "REDEPLOYED",
      `Redeployed ${id} as ${created.deploymentId} (attempt ${attempt} of ${this.config.MAX_REDEPLOYS}): ${verdict.redeployBecause}.`,
      created.deploymentId,
    );
  }

  private async laterDeployment(failed: DeploymentInfo): Promise<Outcome | undefined> {
    const id = this.job.deploymentId;
    const later = await findLaterDeployment(failed, id, this.chain, this.config.STAGE);
    if (!later) return undefined;
    const redeploymentId =
      later.kind === "redeployment" || later.kind === "other-stage" ? later.deploymentId : undefined;
    return this.outcome("SKIPPED", laterDeploymentReason(id, later), redeploymentId);
  }

  private async defer(deferral: Deferral): Promise<Outcome> {
    const verdict = await deferFailure(deferral, this.retryMessage, this.config);
    return this.outcome(verdict.decision, verdict.reason);
  }
}
