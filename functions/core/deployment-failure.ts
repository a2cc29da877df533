import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { type AgentResult, agentSettings, ensureAgents } from "./agent.js";
import {
  AGENT_ISSUE,
  type ClassifiedTarget,
  classifyTarget,
  isNonAgentErrorCode,
} from "./classify-failure.js";
import { clock } from "./common/clock.js";
import { errorMessage } from "./common/errors.js";
import type { Lease } from "./common/lease.js";
import { logger, metrics } from "./common/powertools.js";
import type { FailureConfig } from "./config.js";
import { METRIC, type MetricName } from "./contract.js";
import { findFirstObservedVersions } from "./deployment-history.js";
import { findBusyInstances, listFailedTargets } from "./deployment-targets.js";
import {
  chainOf,
  createRedeployment,
  findLaterDeployment,
  getDeployment,
  type RedeployMarker,
  redeploymentInput,
  whyNotRedeployable,
} from "./redeploy.js";

/**
 * The failure path: when a CodeDeploy deployment fails, decide whether the agent is to blame,
 * upgrade it on the failed instances, and deploy the same revision again, a bounded number of times.
 * Sources for every rule: reference pitfalls D1-D4 and A3, and the AWS pages cited where they apply.
 */
export type FailureDecision = "REDEPLOYED" | "SKIPPED" | "GAVE_UP" | "DRY_RUN";

export interface UpgradedAgent {
  instanceId: string;
  /** Version before the upgrade; "none" when no agent was installed, "unknown" when it printed none. */
  from: string;
  to: string;
}

export interface NotUpgraded {
  instanceId: string;
  reason: string;
}

export interface FailureReport {
  deploymentId: string;
  decision: FailureDecision;
  /** Plain words; AWS ids (deployments, instances, commands) to look further. */
  reason: string;
  upgraded: UpgradedAgent[];
  notUpgraded: NotUpgraded[];
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

/** The time budget ran out with agents still being upgraded; thrown so the retry resumes them. */
export class UpgradeUnfinishedError extends Error {
  override name = "UpgradeUnfinishedError";
}

const METRIC_BY_DECISION: Record<FailureDecision, MetricName> = {
  REDEPLOYED: METRIC.redeployCreated,
  SKIPPED: METRIC.redeploySkipped,
  GAVE_UP: METRIC.redeployGaveUp,
  DRY_RUN: METRIC.redeployDryRun,
};

/** Creators whose deployments are never redeployed, and why (DeploymentInfo.creator, API reference). */
const SKIPPED_CREATORS: Record<string, string> = {
  autoscalingTermination:
    "it is a termination deployment (creator autoscalingTermination): its instance is going away",
  codeDeployRollback: "it is a rollback (creator codeDeployRollback): redeploying would fight the rollback",
  CloudFormationRollback:
    "it is a rollback (creator CloudFormationRollback): redeploying would fight the rollback",
  CodeDeployAutoUpdate:
    "it updates outdated instances after a scale-out (creator CodeDeployAutoUpdate): CodeDeploy runs its own follow-ons",
};

type Outcome = Omit<FailureReport, "elapsedSeconds">;

export async function handleDeploymentFailure(
  job: FailureJob,
  deps: FailureDependencies,
): Promise<FailureReport> {
  const startedAt = clock.now();
  logger.appendKeys({ deploymentId: job.deploymentId });
  let outcome: Outcome;
  try {
    outcome = await new FailureRun(job, deps).run();
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
  const changed = report.upgraded.filter((agent) => agent.from !== agent.to).length;
  if (changed > 0) metrics.addMetric(METRIC.agentUpgraded, MetricUnit.Count, changed);
}

class FailureRun {
  private readonly config: FailureConfig;
  private chain: RedeployMarker;
  private failedTargets: ClassifiedTarget[] = [];
  private upgraded: UpgradedAgent[] = [];
  private notUpgraded: NotUpgraded[] = [];

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
      upgraded: this.upgraded,
      notUpgraded: this.notUpgraded,
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

    const skip = await this.whySkip(failed);
    if (skip) return this.outcome("SKIPPED", skip);

    const next = this.chain.attempt + 1;
    if (next > this.config.MAX_REDEPLOYS) {
      await this.readFailedTargets();
      const history =
        this.chain.attempt === 0
          ? `it is the original failure and MAX_REDEPLOYS is ${this.config.MAX_REDEPLOYS}`
          : `it is redeployment ${this.chain.attempt} of ${this.chain.originalDeploymentId} and MAX_REDEPLOYS is ${this.config.MAX_REDEPLOYS}`;
      return this.outcome("GAVE_UP", `Not redeploying ${id}: the attempt cap is reached (${history}).`);
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

  /** Step 1: failures this service must leave alone. */
  private async whySkip(failed: DeploymentInfo): Promise<string | undefined> {
    const id = this.job.deploymentId;
    const group = `${failed.applicationName}/${failed.deploymentGroupName}`;
    if (failed.computePlatform && failed.computePlatform !== "Server") {
      return `${id} is a ${failed.computePlatform} deployment: no CodeDeploy agent is involved.`;
    }
    if (failed.status !== "Failed") return `${id} is ${failed.status ?? "of unknown status"}, not Failed.`;
    const scope = this.config.TARGET_DEPLOYMENT_GROUPS;
    if (scope.length > 0 && !scope.includes(group)) {
      return `${group} is not one of the deployment groups in scope (TARGET_DEPLOYMENT_GROUPS).`;
    }
    const creator = failed.creator ?? "";
    if (creator === "autoscaling") {
      // CodeDeploy abandons the new instance and Auto Scaling replaces it; a redeploy targets nothing
      // useful (https://docs.aws.amazon.com/codedeploy/latest/userguide/integrations-aws-auto-scaling.html).
      await this.readFailedTargets();
      const instances = this.failedTargets.map((target) => target.instanceId);
      const which = instances.length > 0 ? `instance ${instances.join(", ")}` : "its new instance";
      return (
        `${id} is a launch deployment (creator autoscaling) for ${which}: CodeDeploy abandons that instance ` +
        "and Auto Scaling replaces it; the replacement gets a current agent from the launch path."
      );
    }
    const creatorReason = SKIPPED_CREATORS[creator];
    if (creatorReason) return `${id} is not redeployed: ${creatorReason}.`;
    const rollbackId = failed.rollbackInfo?.rollbackDeploymentId;
    if (rollbackId) return `Rollback ${rollbackId} of ${id} is already under way.`;
    const code = failed.errorInformation?.code;
    if (isNonAgentErrorCode(code)) {
      const message = failed.errorInformation?.message;
      return `${id} failed with ${code}${message ? ` (${message})` : ""}: an agent cannot cause that.`;
    }
    return undefined;
  }

  private async readFailedTargets(): Promise<void> {
    const records = await listFailedTargets(this.job.deploymentId);
    this.failedTargets = records.map(classifyTarget);
  }

  private async decide(failed: DeploymentInfo): Promise<Outcome> {
    const id = this.job.deploymentId;
    const later = await findLaterDeployment(failed, id, this.chain);
    if (later?.kind === "redeployment") {
      return this.outcome(
        "SKIPPED",
        `${id} was already redeployed as ${later.deploymentId} (attempt ${later.attempt}); not creating another.`,
        later.deploymentId,
      );
    }
    if (later?.kind === "rollback")
      return this.outcome("SKIPPED", `Rollback ${later.deploymentId} followed ${id}.`);
    if (later?.kind === "superseded") {
      return this.outcome(
        "SKIPPED",
        `${later.deploymentId} (creator ${later.creator}) was created after ${id}: redeploying the older revision would undo it.`,
      );
    }
    if (later?.kind === "too-many") {
      return this.outcome(
        "SKIPPED",
        `${later.count} deployments were created in the group after ${id}; too many to rule out an existing redeployment.`,
      );
    }

    await this.readFailedTargets();
    const agentIssue = failed.errorInformation?.code === AGENT_ISSUE;
    const agentTargets = this.failedTargets.filter((target) => target.classification === "AGENT");
    const signature = agentIssue
      ? `${id} failed with AGENT_ISSUE`
      : agentTargets.length > 0
        ? `an agent problem on ${describeTargets(agentTargets)}`
        : undefined;
    const policy = this.config.REDEPLOY_WHEN;

    if (!signature && policy !== "agent-changed") {
      return this.outcome(
        policy === "never" ? "SKIPPED" : "GAVE_UP",
        `${this.withoutAgentSignature(failed)}; REDEPLOY_WHEN is ${policy}, so the agent is not upgraded and nothing is redeployed.`,
      );
    }
    if (!signature && this.failedTargets.length === 0) {
      return this.outcome(
        "GAVE_UP",
        `No failed instance was found for ${id} and it shows no agent signature: an agent upgrade has nothing to fix.`,
      );
    }

    const targets = this.failedTargets.map((target) => target.instanceId);
    if (this.config.DRY_RUN) {
      const upgrade =
        targets.length > 0 ? `would upgrade the agent on ${targets.join(", ")}` : "would upgrade no agent";
      const then =
        policy === "never"
          ? "and not redeploy (REDEPLOY_WHEN is never)"
          : signature
            ? `and redeploy (${signature})`
            : "and redeploy only if that changes an agent";
      return this.outcome("DRY_RUN", `Dry run: ${upgrade} ${then}.`);
    }

    const changed = await this.upgradeAgents(failed, targets);

    if (policy === "never") {
      return this.outcome(
        "SKIPPED",
        `REDEPLOY_WHEN is never: ${this.upgradeSummary()}; not redeploying ${id}.`,
      );
    }
    let why: string;
    if (signature) {
      why = `${signature}; ${this.upgradeSummary()}`;
    } else if (changed.length > 0) {
      why = `the upgrade changed the agent on ${changed.map((agent) => `${agent.instanceId} (${agent.from} -> ${agent.to})`).join(", ")}`;
    } else {
      return this.outcome(
        "GAVE_UP",
        `${this.withoutAgentSignature(failed)} and ${this.upgradeSummary()}: a retry would only fail again.`,
      );
    }
    const input = redeploymentInput(failed, {
      originalDeploymentId: this.chain.originalDeploymentId,
      attempt: this.chain.attempt + 1,
    });
    const redeploymentId = await createRedeployment(input);
    return this.outcome(
      "REDEPLOYED",
      `Redeployed ${id} as ${redeploymentId} (attempt ${this.chain.attempt + 1} of ${this.config.MAX_REDEPLOYS}): ${why}.`,
      redeploymentId,
    );
  }

  /**
   * Step 5: upgrade the agent on failed instances no deployment is running on. Returns the agents the
   * upgrade changed (version, or a missing/stopped agent now running).
   */
  private async upgradeAgents(failed: DeploymentInfo, targets: string[]): Promise<UpgradedAgent[]> {
    if (targets.length === 0) return [];
    const busy = await findBusyInstances(failed.applicationName ?? "", failed.deploymentGroupName ?? "");
    const free: string[] = [];
    for (const instanceId of targets) {
      const busyWith = busy.unknown[0] ?? busy.byInstance.get(instanceId);
      if (!busyWith) {
        free.push(instanceId);
        continue;
      }
      const why = busy.unknown.includes(busyWith)
        ? `deployment ${busyWith} is about to start in the group and its instances are not known yet`
        : `deployment ${busyWith} is running on it`;
      // Upgrading restarts the agent, which fails the lifecycle event in progress (aws-codedeploy-agent#78, #402).
      this.notUpgraded.push({
        instanceId,
        reason: `${why}: restarting its agent now would fail that deployment`,
      });
    }
    if (free.length === 0) return [];

    const now = clock.now();
    const correlationId = this.job.deploymentId;
    const results = await ensureAgents(
      {
        instanceIds: free,
        mode: "upgrade",
        since: failed.completeTime?.getTime(),
        // Failed targets are long-lived instances: one that is not Online with SSM by now is stopped,
        // terminated or cut off, and must not hold up the others for long.
        registrationDeadline: Math.min(
          now + this.config.REGISTRATION_TIMEOUT_SECONDS * 1000,
          this.job.deadline - this.config.POLL_INTERVAL_MS,
        ),
        deadline: this.job.deadline,
        correlationId,
      },
      agentSettings(this.config),
    );
    const pending = results.filter((result) => result.status === "PENDING");
    if (pending.length > 0) {
      throw new UpgradeUnfinishedError(
        `The time budget ran out while upgrading the agent on ${pending.map((result) => `${result.instanceId} (${result.reason})`).join(", ")}; the retry resumes it`,
      );
    }
    const firstSeen = await this.firstObservedVersions(results, failed);
    for (const result of results) {
      if ((result.status === "VERIFIED" || result.status === "INSTALLED") && result.installed) {
        this.upgraded.push({
          instanceId: result.instanceId,
          from: firstSeen.get(result.instanceId) ?? result.versionBefore ?? "unknown",
          // With verification switched off the new version is not known; the reinstall counts as a change.
          to: result.agentVersion ?? (result.status === "INSTALLED" ? "reinstalled" : "unknown"),
        });
      } else if (result.status !== "VERIFIED") {
        this.notUpgraded.push({ instanceId: result.instanceId, reason: result.reason });
      }
    }
    return this.upgraded.filter((agent) => agent.from !== agent.to);
  }

  /**
   * When this invocation found an agent already at its new version, an earlier run of this same job
   * may have upgraded it (a retry after another deployment blocked the redeploy): use the version
   * that earlier run saw first.
   */
  private async firstObservedVersions(
    results: AgentResult[],
    failed: DeploymentInfo,
  ): Promise<Map<string, string>> {
    const unchanged = results.filter(
      (result) =>
        result.installed &&
        result.versionBefore !== undefined &&
        result.versionBefore === result.agentVersion,
    );
    const since = failed.completeTime?.getTime();
    if (unchanged.length === 0 || since === undefined) return new Map();
    try {
      return await findFirstObservedVersions(
        unchanged.map((result) => result.instanceId),
        since,
        `agentfix verify ${this.job.deploymentId}`,
      );
    } catch (error) {
      // The decision stands on this invocation's own observations; the history only refines it.
      logger.warn("Could not read earlier agent verifications", { error: errorMessage(error) });
      return new Map();
    }
  }

  private upgradeSummary(): string {
    const parts: string[] = [];
    if (this.upgraded.length > 0) {
      parts.push(
        `agent upgraded on ${this.upgraded.map((agent) => `${agent.instanceId} (${agent.from} -> ${agent.to})`).join(", ")}`,
      );
    }
    if (this.notUpgraded.length > 0) {
      parts.push(
        `not upgraded: ${this.notUpgraded.map((item) => `${item.instanceId} (${item.reason})`).join("; ")}`,
      );
    }
    return parts.length > 0 ? parts.join("; ") : "no agent needed upgrading";
  }

  private withoutAgentSignature(failed: DeploymentInfo): string {
    const application = this.failedTargets.filter((target) => target.classification === "APPLICATION");
    if (application.length > 0) return `The application failed (${describeTargets(application)})`;
    if (this.failedTargets.length > 0) {
      return `No agent signature in the failure (${describeTargets(this.failedTargets)})`;
    }
    const code = failed.errorInformation?.code;
    return `No agent signature in the failure${code ? ` (${code})` : ""}`;
  }
}

/** "ScriptFailed in ApplicationStart on i-1; ..." for up to three targets. */
function describeTargets(targets: ClassifiedTarget[]): string {
  const shown = targets.slice(0, 3).map((target) => {
    const what = target.errorCode ?? target.message ?? target.classification.toLowerCase();
    const where = target.lifecycleEvent ? ` in ${target.lifecycleEvent}` : "";
    return `${what}${where} on ${target.instanceId}`;
  });
  const more = targets.length > 3 ? ` and ${targets.length - 3} more` : "";
  return `${shown.join("; ")}${more}`;
}
