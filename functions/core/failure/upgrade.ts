// Upgrading the agent on the failed instances of a deployment, with the engine the launch path uses,
// but never on an instance a running deployment covers: the agent restart would fail it.
import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { ensureAgents } from "../agent/engine.js";
import { findFirstObservedVersions } from "../agent/history.js";
import { type AgentResult, agentSettings } from "../agent/types.js";
import { clock } from "../common/clock.js";
import { errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import type { FailureConfig } from "../config.js";
import { findBusyInstances } from "./targets.js";

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

export interface UpgradeResult {
  upgraded: UpgradedAgent[];
  notUpgraded: NotUpgraded[];
}

export interface UpgradeJob {
  failed: DeploymentInfo;
  instanceIds: readonly string[];
  /** Correlates the commands of every run of this job (the deployment id). */
  correlationId: string;
  /** AWS-time ms by which the invocation must have reported. */
  deadline: number;
}

/** The time budget ran out with agents still being upgraded; thrown so the retry resumes them. */
export class UpgradeUnfinishedError extends Error {
  override name = "UpgradeUnfinishedError";
}

/** Upgrades the agent on the instances no deployment is running on, and says what changed. */
export async function upgradeAgents(job: UpgradeJob, config: FailureConfig): Promise<UpgradeResult> {
  const result: UpgradeResult = { upgraded: [], notUpgraded: [] };
  if (job.instanceIds.length === 0) return result;
  const free = await leaveBusyAlone(job, result);
  if (free.length === 0) return result;

  const now = clock.now();
  const results = await ensureAgents(
    {
      instanceIds: free,
      mode: "upgrade",
      since: job.failed.completeTime?.getTime(),
      // Failed targets are long-lived instances: one that is not Online with SSM by now is stopped,
      // terminated or cut off, and must not hold up the others for long.
      registrationDeadline: Math.min(
        now + config.REGISTRATION_TIMEOUT_SECONDS * 1000,
        job.deadline - config.POLL_INTERVAL_MS,
      ),
      deadline: job.deadline,
      correlationId: job.correlationId,
    },
    agentSettings(config),
  );
  const pending = results.filter((agent) => agent.status === "PENDING");
  if (pending.length > 0) {
    throw new UpgradeUnfinishedError(
      `The time budget ran out while upgrading the agent on ${pending.map((agent) => `${agent.instanceId} (${agent.reason})`).join(", ")}; the retry resumes it`,
    );
  }
  const firstSeen = await firstObservedVersions(results, job, config);
  for (const agent of results) {
    const earlier = firstSeen.get(agent.instanceId);
    // Found current because an earlier run of this job upgraded it (nothing to install this time).
    const upgradedEarlier = earlier !== undefined && earlier !== agent.agentVersion;
    if (
      (agent.status === "VERIFIED" || agent.status === "INSTALLED") &&
      (agent.installed || upgradedEarlier)
    ) {
      result.upgraded.push({
        instanceId: agent.instanceId,
        from: firstSeen.get(agent.instanceId) ?? agent.versionBefore ?? "unknown",
        // With verification switched off the new version is not known; the reinstall counts as a change.
        to: agent.agentVersion ?? (agent.status === "INSTALLED" ? "reinstalled" : "unknown"),
      });
    } else if (agent.status !== "VERIFIED") {
      result.notUpgraded.push({ instanceId: agent.instanceId, reason: agent.reason });
    }
  }
  return result;
}

/** The agents an upgrade changed (version, or a missing/stopped agent now running). */
export function changedAgents(result: UpgradeResult): UpgradedAgent[] {
  return result.upgraded.filter((agent) => agent.from !== agent.to);
}

/** "agent upgraded on i-1 (1.6.0 -> 1.8.1); not upgraded: i-2 (...)" */
export function summarizeUpgrade(result: UpgradeResult): string {
  const parts: string[] = [];
  if (result.upgraded.length > 0) {
    parts.push(
      `agent upgraded on ${result.upgraded.map((agent) => `${agent.instanceId} (${agent.from} -> ${agent.to})`).join(", ")}`,
    );
  }
  if (result.notUpgraded.length > 0) {
    parts.push(
      `not upgraded: ${result.notUpgraded.map((item) => `${item.instanceId} (${item.reason})`).join("; ")}`,
    );
  }
  return parts.length > 0 ? parts.join("; ") : "no agent needed upgrading";
}

/**
 * Upgrading restarts the agent, which fails the lifecycle event in progress (aws-codedeploy-agent#78,
 * #402): instances an active deployment of the group covers are reported and left alone. Returns the
 * others.
 */
async function leaveBusyAlone(job: UpgradeJob, result: UpgradeResult): Promise<string[]> {
  const busy = await findBusyInstances(
    job.failed.applicationName ?? "",
    job.failed.deploymentGroupName ?? "",
  );
  const free: string[] = [];
  for (const instanceId of job.instanceIds) {
    const busyWith = busy.unknown[0] ?? busy.byInstance.get(instanceId);
    if (!busyWith) {
      free.push(instanceId);
      continue;
    }
    const why = busy.unknown.includes(busyWith)
      ? `deployment ${busyWith} is about to start in the group and its instances are not known yet`
      : `deployment ${busyWith} is running on it`;
    result.notUpgraded.push({
      instanceId,
      reason: `${why}: restarting its agent now would fail that deployment`,
    });
  }
  return free;
}

/**
 * When this invocation found an agent already at its new version, an earlier run of this same job
 * may have upgraded it (a retry after another deployment blocked the redeploy): use the version
 * that earlier run saw first.
 */
async function firstObservedVersions(
  results: AgentResult[],
  job: UpgradeJob,
  config: FailureConfig,
): Promise<Map<string, string>> {
  const unchanged = results.filter(
    (agent) =>
      (agent.status === "VERIFIED" || agent.installed) &&
      agent.versionBefore !== undefined &&
      agent.versionBefore === agent.agentVersion,
  );
  const since = job.failed.completeTime?.getTime();
  if (unchanged.length === 0 || since === undefined) return new Map();
  try {
    return await findFirstObservedVersions(
      agentSettings(config).checkDocument,
      unchanged.map((agent) => agent.instanceId),
      since,
      `agentfix verify ${job.correlationId}`,
    );
  } catch (error) {
    // The decision stands on this invocation's own observations; the history only refines it.
    logger.warn("Could not read earlier agent verifications", { error: errorMessage(error) });
    return new Map();
  }
}
