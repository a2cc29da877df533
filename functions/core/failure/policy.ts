// Every rule of the failure path about what to leave alone and when to redeploy, in one place:
// which deployments are never touched (creators, rollbacks, codes an agent cannot cause), when the
// attempt cap is reached, which later deployments make a redeploy harmful, and whether what was found
// (an agent signature, an agent the upgrade changed) justifies deploying the same revision again.
// Sources: https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_DeploymentInfo.html and
// https://docs.aws.amazon.com/codedeploy/latest/userguide/error-codes.html
import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { inScope } from "../config.js";
import type { RedeployWhen } from "../contract.js";
import { AGENT_ISSUE, type ClassifiedTarget, isNonAgentErrorCode } from "./classify.js";

/** DEFERRED: the failure comes back later through the retry queue (a busy group, a rollback to come). */
export type FailureDecision = "REDEPLOYED" | "SKIPPED" | "GAVE_UP" | "DRY_RUN" | "DEFERRED";

/**
 * Creators whose deployments are never redeployed, and why (DeploymentInfo.creator, API reference).
 *
 * A failed automatic rollback (creator codeDeployRollback) is not among them. A rollback is left
 * alone while it may still run: the deployment it rolls back is skipped once the rollback exists,
 * and no agent is touched in a group with an active deployment. But once the rollback itself has
 * failed, nothing is left to fight: the rollback was CodeDeploy's (and the team's configured) answer
 * to the first failure, and redeploying its revision, the last one that deployed successfully,
 * finishes what it set out to do. So a failed rollback is treated like any failure: redeployed only
 * when the agent is to blame (an agent signature, or an agent the upgrade changed), after every
 * instance it reaches was checked, and counted in the chain of the deployment it rolled back
 * (rollbackInfo.rollbackTriggeringDeploymentId), so the attempt cap holds across deployment,
 * rollback and redeployments. Never the failed deployment's own revision: that would undo the rollback.
 */
const SKIPPED_CREATORS: Record<string, string> = {
  autoscalingTermination:
    "it is a termination deployment (creator autoscalingTermination): its instance is going away",
  CloudFormationRollback:
    "it is a rollback (creator CloudFormationRollback): redeploying would fight the rollback",
  CodeDeployAutoUpdate:
    "it updates outdated instances after a scale-out (creator CodeDeployAutoUpdate): CodeDeploy runs its own follow-ons",
};

/** Creators of rollbacks: a rollback after the failure is handling it. */
export const ROLLBACK_CREATORS: ReadonlySet<string> = new Set([
  "codeDeployRollback",
  "CloudFormationRollback",
]);
/** Creators whose later deployments do not replace the failed revision (launches, terminations, catch-up). */
export const FOLLOW_ON_CREATORS: ReadonlySet<string> = new Set([
  "autoscaling",
  "autoscalingTermination",
  "CodeDeployAutoUpdate",
]);

/** Why a stage whose TARGET_DEPLOYMENT_GROUPS is empty leaves every failure alone. */
export function noScopeReason(id: string, stage: string): string {
  return `Stage ${stage} names no deployment groups (TARGET_DEPLOYMENT_GROUPS is empty; * means every group): ${id} is left alone, no agent touched, nothing redeployed.`;
}

/** Why the failed deployment is left alone; "launch-deployment" needs its instance named by the caller. */
export function whySkip(
  failed: DeploymentInfo,
  id: string,
  deploymentGroupsInScope: readonly string[],
): string | "launch-deployment" | undefined {
  const group = `${failed.applicationName}/${failed.deploymentGroupName}`;
  if (failed.computePlatform && failed.computePlatform !== "Server") {
    return `${id} is a ${failed.computePlatform} deployment: no CodeDeploy agent is involved.`;
  }
  if (failed.status !== "Failed") return `${id} is ${failed.status ?? "of unknown status"}, not Failed.`;
  if (!inScope(deploymentGroupsInScope, group)) {
    return `${group} is not one of the deployment groups in scope (TARGET_DEPLOYMENT_GROUPS).`;
  }
  // A blue/green deployment runs on a replacement environment (copied Auto Scaling group or
  // discovered instances) and reroutes traffic; repeating it needs a replacement environment this
  // service does not manage, and an in-place style redeploy does not apply to it.
  // https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-groups-create-blue-green.html
  if (failed.deploymentStyle?.deploymentType === "BLUE_GREEN") {
    return `${id} is a blue/green deployment: repeating it needs a replacement environment this service does not manage, so it is left alone (no agent upgraded, nothing redeployed).`;
  }
  const creator = failed.creator ?? "";
  if (creator === "autoscaling") return "launch-deployment";
  const creatorReason = SKIPPED_CREATORS[creator];
  if (creatorReason) return `${id} is not redeployed: ${creatorReason}.`;
  const rollbackId = failed.rollbackInfo?.rollbackDeploymentId;
  if (rollbackId) {
    return `Rollback ${rollbackId} of ${id} followed the failure: ${id} is left to it (no agent touched, nothing redeployed); if the rollback fails, its own failure is handled.`;
  }
  const code = failed.errorInformation?.code;
  if (isNonAgentErrorCode(code)) {
    const message = failed.errorInformation?.message;
    return `${id} failed with ${code}${message ? ` (${message})` : ""}: an agent cannot cause that.`;
  }
  return undefined;
}

/**
 * A launch deployment: CodeDeploy abandons the new instance and Auto Scaling replaces it; a redeploy
 * targets nothing useful (https://docs.aws.amazon.com/codedeploy/latest/userguide/integrations-aws-auto-scaling.html).
 */
export function launchDeploymentReason(id: string, instanceIds: readonly string[]): string {
  const which = instanceIds.length > 0 ? `instance ${instanceIds.join(", ")}` : "its new instance";
  return (
    `${id} is a launch deployment (creator autoscaling) for ${which}: CodeDeploy abandons that instance ` +
    "and Auto Scaling replaces it; the replacement gets a current agent from the launch path."
  );
}

/**
 * Why a stage leaves alone a failure whose chain another stage claimed (the failed deployment, or
 * the deployment a failed rollback rolled back, carries that stage's redeploy marker), or undefined
 * when the chain is this stage's, an earlier release's (a marker naming no stage) or nobody's yet.
 */
export function otherStageReason(
  id: string,
  chain: { originalDeploymentId: string; attempt: number; stage?: string },
  stage: string,
): string | undefined {
  if (chain.stage === undefined || chain.stage === stage) return undefined;
  return `${id} is in the chain of redeployments of ${chain.originalDeploymentId} that stage ${chain.stage} made (attempt ${chain.attempt}): the failure is that stage's; stage ${stage} touches no agent and redeploys nothing.`;
}

/** Why the chain of redeployments may not grow, or undefined while it may. */
export function capReason(
  id: string,
  chain: { originalDeploymentId: string; attempt: number; stage?: string },
  maxRedeploys: number,
): string | undefined {
  if (chain.attempt + 1 <= maxRedeploys) return undefined;
  const history =
    chain.attempt === 0
      ? `it is the original failure and MAX_REDEPLOYS is ${maxRedeploys}`
      : `it is redeployment ${chain.attempt} of ${chain.originalDeploymentId}${chain.stage === undefined ? " (made by an earlier release, which named no stage)" : ""} and MAX_REDEPLOYS is ${maxRedeploys}`;
  return `Not redeploying ${id}: the attempt cap is reached (${history}).`;
}

/**
 * Seconds left to wait for the automatic rollback the failed deployment asked for
 * (autoRollbackConfiguration enabled on DEPLOYMENT_FAILURE), or undefined when no rollback is to
 * come or the wait is over. CodeDeploy creates the rollback after the failure
 * (https://docs.aws.amazon.com/codedeploy/latest/userguide/deployments-rollback-and-redeploy.html);
 * an agent restarted before it starts would fail it, and a redeploy would race it. A rollback is not
 * itself rolled back, and CodeDeploy creates none when no earlier revision deployed successfully:
 * that case is only told apart by waiting.
 */
export function rollbackWaitSeconds(
  failed: DeploymentInfo,
  now: number,
  waitSeconds: number,
): number | undefined {
  const rollback = failed.autoRollbackConfiguration;
  if (!rollback?.enabled || !rollback.events?.includes("DEPLOYMENT_FAILURE")) return undefined;
  if (ROLLBACK_CREATORS.has(failed.creator ?? "") || failed.rollbackInfo?.rollbackDeploymentId)
    return undefined;
  const remainingMs = (failed.completeTime?.getTime() ?? now) + waitSeconds * 1000 - now;
  return remainingMs > 0 ? Math.ceil(remainingMs / 1000) : undefined;
}

/** Why the failure waits for its automatic rollback. */
export function rollbackWaitReason(id: string, group: string, waitSeconds: number): string {
  return `Automatic rollback on failure is configured for ${id} in ${group}: waiting up to ${waitSeconds} s after the failure for CodeDeploy to create it before any agent is touched or anything redeployed`;
}

/** Why the failure waits for the deployments running in its group. */
export function busyGroupReason(group: string, active: readonly string[]): string {
  const which =
    active.length > 0 ? `deployment ${active.join(", ")} is running` : "another deployment is running";
  return `${which} in ${group} (one deployment at a time per group): no agent is restarted under it, and the redeploy waits until the group is free`;
}

/** Why a failure that waited too long for its busy group is given up. */
export function busyGaveUpReason(reason: string, firstSeenAt: number, maxHours: number): string {
  return `${reason}; the group has been busy since ${new Date(firstSeenAt).toISOString()}, longer than BUSY_GROUP_RETRY_HOURS (${maxHours} h): not redeploying; deploy again by hand once the group is free.`;
}

/** Why a failed deployment cannot be created again as it was, or undefined when it can. */
/** Instances the redeploy would reach without a current agent. */
export function outdatedReason(
  id: string,
  agents: readonly { instanceId: string; reason: string }[],
): string {
  const shown = agents
    .slice(0, 5)
    .map((agent) => `${agent.instanceId} (${agent.reason})`)
    .join("; ");
  const more = agents.length > 5 ? ` and ${agents.length - 5} more` : "";
  return `Not redeploying ${id}: the redeploy would reach agents that could not be brought current: ${shown}${more}.`;
}

export function whyNotRedeployable(failed: DeploymentInfo): string | undefined {
  if (failed.deploymentMode === "RESTART") return undefined;
  const revision = failed.revision;
  if (!revision?.revisionType) return "the failed deployment has no revision to deploy again";
  // "The content property of the appSpecContent object in the returned revision is always null."
  // (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_AppSpecContent.html)
  if (revision.revisionType === "AppSpecContent") return "its AppSpecContent revision cannot be read back";
  return undefined;
}

/** What the deployments created in the group after the failed one say about redeploying it. */
export type LaterDeployment =
  | { kind: "redeployment"; deploymentId: string; attempt: number }
  | { kind: "other-stage"; deploymentId: string; attempt: number; stage: string }
  | { kind: "rollback"; deploymentId: string }
  | { kind: "superseded"; deploymentId: string; creator: string }
  | { kind: "too-many"; count: number };

/** Why a later deployment rules out a redeploy (each kind rules it out). */
export function laterDeploymentReason(id: string, later: LaterDeployment): string {
  switch (later.kind) {
    case "redeployment":
      return `${id} was already redeployed as ${later.deploymentId} (attempt ${later.attempt}); not creating another.`;
    case "other-stage":
      return `${id} was already redeployed by stage ${later.stage} as ${later.deploymentId} (attempt ${later.attempt}): the failure is that stage's; no agent touched, nothing redeployed.`;
    case "rollback":
      return `Rollback ${later.deploymentId} followed ${id}.`;
    case "superseded":
      return `${later.deploymentId} (creator ${later.creator}) was created after ${id}: redeploying the older revision would undo it.`;
    case "too-many":
      return `${later.count} deployments were created in the group after ${id}; too many to rule out an existing redeployment.`;
  }
}

/** The agent signature of the failure, in words, or undefined when it shows none. */
export function agentSignature(
  failed: DeploymentInfo,
  id: string,
  failedTargets: readonly ClassifiedTarget[],
): string | undefined {
  if (failed.errorInformation?.code === AGENT_ISSUE) return `${id} failed with AGENT_ISSUE`;
  const agentTargets = failedTargets.filter((target) => target.classification === "AGENT");
  return agentTargets.length > 0 ? `an agent problem on ${describeTargets(agentTargets)}` : undefined;
}

export interface Verdict {
  decision: FailureDecision;
  reason: string;
}

/**
 * Before any agent is touched: a failure without an agent signature is left alone unless the policy
 * lets an agent the upgrade changes justify a redeploy, and there is a failed instance to upgrade.
 */
export function verdictBeforeUpgrade(input: {
  id: string;
  failed: DeploymentInfo;
  failedTargets: readonly ClassifiedTarget[];
  signature: string | undefined;
  policy: RedeployWhen;
}): Verdict | undefined {
  const { id, signature, policy, failedTargets } = input;
  if (!signature && policy !== "agent-changed") {
    return {
      decision: policy === "never" ? "SKIPPED" : "GAVE_UP",
      reason: `${withoutAgentSignature(input.failed, failedTargets)}; REDEPLOY_WHEN is ${policy}, so the agent is not upgraded and nothing is redeployed.`,
    };
  }
  if (!signature && failedTargets.length === 0) {
    return {
      decision: "GAVE_UP",
      reason: `No failed instance was found for ${id} and it shows no agent signature: an agent upgrade has nothing to fix.`,
    };
  }
  return undefined;
}

/** What a dry run would do once the failure passed every rule above. */
export function dryRunReason(
  targets: readonly string[],
  others: readonly string[],
  signature: string | undefined,
  policy: RedeployWhen,
) {
  const rest = others.filter((id) => !targets.includes(id));
  const check = rest.length > 0 ? `, check it on ${rest.length} other instance(s) the redeploy reaches,` : "";
  const upgrade =
    targets.length > 0
      ? `would upgrade the agent on ${targets.join(", ")}${check}`
      : `would upgrade no failed instance's agent${check}`;
  const then =
    policy === "never"
      ? "and not redeploy (REDEPLOY_WHEN is never)"
      : signature
        ? `and redeploy (${signature})`
        : "and redeploy only if that changes an agent";
  return `Dry run: ${upgrade} ${then}.`;
}

/**
 * After the upgrade: redeploy on an agent signature, or when the upgrade changed the agent on a failed
 * instance (the morning case: a ScriptFailed that a newer agent cures); otherwise a retry would only
 * fail again. Returns why to redeploy, or the verdict that ends the run.
 */
export function verdictAfterUpgrade(input: {
  id: string;
  failed: DeploymentInfo;
  failedTargets: readonly ClassifiedTarget[];
  signature: string | undefined;
  policy: RedeployWhen;
  changed: readonly { instanceId: string; from: string; to: string }[];
  upgradeSummary: string;
}): { redeployBecause: string } | Verdict {
  const { id, signature, policy, changed, upgradeSummary } = input;
  if (policy === "never") {
    return {
      decision: "SKIPPED",
      reason: `REDEPLOY_WHEN is never: ${upgradeSummary}; not redeploying ${id}.`,
    };
  }
  if (signature) return { redeployBecause: `${signature}; ${upgradeSummary}` };
  if (changed.length > 0) {
    return {
      redeployBecause: `the upgrade changed the agent on ${changed.map((agent) => `${agent.instanceId} (${agent.from} -> ${agent.to})`).join(", ")}`,
    };
  }
  return {
    decision: "GAVE_UP",
    reason: `${withoutAgentSignature(input.failed, input.failedTargets)} and ${upgradeSummary}: a retry would only fail again.`,
  };
}

function withoutAgentSignature(failed: DeploymentInfo, failedTargets: readonly ClassifiedTarget[]): string {
  const application = failedTargets.filter((target) => target.classification === "APPLICATION");
  if (application.length > 0) return `The application failed (${describeTargets(application)})`;
  if (failedTargets.length > 0)
    return `No agent signature in the failure (${describeTargets(failedTargets)})`;
  const code = failed.errorInformation?.code;
  return `No agent signature in the failure${code ? ` (${code})` : ""}`;
}

/** "ScriptFailed in ApplicationStart on i-1; ..." for up to three targets. */
function describeTargets(targets: readonly ClassifiedTarget[]): string {
  const shown = targets.slice(0, 3).map((target) => {
    const what = target.errorCode ?? target.message ?? target.classification.toLowerCase();
    const where = target.lifecycleEvent ? ` in ${target.lifecycleEvent}` : "";
    return `${what}${where} on ${target.instanceId}`;
  });
  const more = targets.length > 3 ? ` and ${targets.length - 3} more` : "";
  return `${shown.join("; ")}${more}`;
}
